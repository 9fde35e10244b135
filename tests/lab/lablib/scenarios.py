# SPDX-License-Identifier: Apache-2.0
"""Scenario discovery. A scenario is NAME.host (host side, busybox sh,
sourced after host/lab.sh) with a header of "# key: value" lines:
  desc            one line for --list (required)
  timeout         seconds for the whole scenario (default 300)
  needs           space-separated: qemu (QEMU must be in the emulated host),
                  scratch (a real filesystem for disk images: $LAB_SCRATCH),
                  peer (a second host on a network link, with a disk both
                  see: $LAB_SHARED_DEV; lab.sh's peer_run drives it),
                  numa (the emulated host gets two NUMA nodes, a CPU and
                  half its memory each), smp (the emulated host gets two
                  CPUs instead of one)
  guest-modules   guest kernel modules the guest init loads (dependencies
                  are added and ordered)
  guest-tools     programs from this machine (e.g. mke2fs fio) copied into
                  the guest's initramfs with their libraries
  host-tools      the same for the lab host (e.g. qemu-img iperf3)
plus any NAME.guest files the host side names in vmm_start (guest side,
sourced by the guest's /init). *.lib files beside them are shared helpers."""
import glob
import os

from .assets import LAB, ROOT

DIRS = {
    "test": os.path.join(LAB, "scenarios"),
    "bench": os.path.join(ROOT, "bench", "scenarios"),
    "demo": os.path.join(LAB, "demo"),
}


class Scenario:
    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)[:-len(".host")]
        self.desc = ""
        self.timeout = 300
        self.needs = set()
        self.guest_modules = []
        self.guest_tools = []
        self.host_tools = []
        with open(path) as f:
            for line in f:
                if not line.startswith("#"):
                    break
                key, sep, val = line[1:].strip().partition(":")
                if not sep:
                    continue
                val = val.strip()
                if key == "desc":
                    self.desc = val
                elif key == "timeout":
                    self.timeout = int(val)
                elif key == "needs":
                    self.needs = set(val.split())
                elif key == "guest-modules":
                    self.guest_modules = val.split()
                elif key == "guest-tools":
                    self.guest_tools = val.split()
                elif key == "host-tools":
                    self.host_tools = val.split()
        if not self.desc:
            raise ValueError(f"{path}: no '# desc:' line")

    def host_files(self):
        d = os.path.dirname(self.path)
        return [self.path] + sorted(glob.glob(os.path.join(d, "*.lib")))


def load(kind="test"):
    return {s.name: s for s in (Scenario(p) for p in
                                sorted(glob.glob(os.path.join(DIRS[kind], "*.host"))))}
