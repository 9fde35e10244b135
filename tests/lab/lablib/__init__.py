# SPDX-License-Identifier: Apache-2.0
"""The lab's Python side: assets (kernel, initramfs images), scenario
metadata, and running scenarios in an emulated AMD-V host or directly on a
machine with hardware virtualization. See tests/lab/README.md."""
