#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Every bad input keel-vmm must refuse: one stderr line naming what is wrong,
exit status 1, no crash. Runs the real binary; needs no working KVM except
where a test says so.

Environment: KEEL_VMM (the binary), KEEL_MINIGUEST (a valid bzImage).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import tap  # noqa: E402
from tap import check, expect_error, test  # noqa: E402

VMM = os.environ["KEEL_VMM"]
KERNEL = os.environ["KEEL_MINIGUEST"]
E = r"keel-vmm: error: "


def kvm_usable():
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


def vmm(*args):
    return [VMM, *args]


@test
def missing_kernel_flag():
    expect_error(vmm(), E + r"--kernel is required: the Linux bzImage to boot \(see --help\)")


@test
def unknown_option():
    expect_error(vmm("--kernel", KERNEL, "--frobnicate"),
                 E + r"unknown option '--frobnicate' \(see --help\)")


@test
def option_missing_value():
    expect_error(vmm("--kernel"), E + r"option '--kernel' needs a value \(see --help\)")


@test
def flag_given_a_value():
    expect_error(vmm("--kernel", KERNEL, "--no-reboot=yes"),
                 E + r"option '--no-reboot' takes no value \(see --help\)")


@test
def option_given_twice():
    expect_error(vmm("--kernel", KERNEL, "--cpus", "1", "--cpus", "2"),
                 E + r"option '--cpus' given twice")


@test
def stray_argument():
    expect_error(vmm("--kernel", KERNEL, "extra"), E + r"unexpected argument 'extra' \(see --help\)")


@test
def zero_vcpus():
    expect_error(vmm("--kernel", KERNEL, "--cpus", "0"), E + r"--cpus 0: a VM needs at least 1 vCPU")


@test
def malformed_vcpus():
    for bad in ("two", "-1", "2x", ""):
        expect_error(vmm("--kernel", KERNEL, "--cpus", bad),
                     E + re.escape(f"--cpus '{bad}': not a number of vCPUs"))


@test
def too_many_vcpus_for_keel():
    expect_error(vmm("--kernel", KERNEL, "--cpus", "256"),
                 E + r"--cpus 256: at most 255 vCPUs are supported")


@test
def too_many_vcpus_for_kvm():
    """Above what KVM allows on this host (KVM_CAP_MAX_VCPUS), when that is below our own limit."""
    if not kvm_usable():
        raise tap.Skip("needs /dev/kvm")
    import fcntl
    KVM_CHECK_EXTENSION = 0xAE03
    KVM_CAP_MAX_VCPUS = 66
    with open("/dev/kvm", "rb+", buffering=0) as f:
        limit = fcntl.ioctl(f, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS)
    if limit >= 255:
        # The host allows more than we do: our own limit is the one that bites.
        expect_error(vmm("--kernel", KERNEL, "--cpus", "256"), E + r"--cpus 256: at most 255 vCPUs are supported")
        return
    n = limit + 1
    expect_error(vmm("--kernel", KERNEL, "--cpus", str(n)),
                 E + re.escape(f"--cpus {n}: KVM on this host allows at most {limit} vCPUs"))


@test
def memory_too_small():
    expect_error(vmm("--kernel", KERNEL, "--memory", "16M"), E + r"--memory 16M: at least 32 MiB is needed")


@test
def memory_malformed():
    expect_error(vmm("--kernel", KERNEL, "--memory", "lots"),
                 E + r"--memory 'lots': not a size \(examples: 512, 512M, 2G\)")
    expect_error(vmm("--kernel", KERNEL, "--memory", "12Q"),
                 E + r"--memory '12Q': not a size \(examples: 512, 512M, 2G\)")
    expect_error(vmm("--kernel", KERNEL, "--memory", "33000K"),
                 E + r"--memory 33000K: must be a whole number of MiB")


@test
def memory_larger_than_host():
    expect_error(vmm("--kernel", KERNEL, "--memory", "64T"),
                 E + r"--memory 67108864 MiB is more than this host's \d+ MiB of RAM")


@test
def bad_memory_backing():
    expect_error(vmm("--kernel", KERNEL, "--memory-backing", "hugetlb"),
                 E + r"--memory-backing 'hugetlb': use anon or memfd")


@test
def bad_console():
    expect_error(vmm("--kernel", KERNEL, "--console", "telnet"),
                 E + r"--console telnet: unknown kind \(expected stdio, pty, unix:PATH or none\)")
    expect_error(vmm("--kernel", KERNEL, "--console", "unix:"), E + r"--console unix: needs a socket path \(unix:PATH\)")


@test
def bad_name():
    expect_error(vmm("--kernel", KERNEL, "--name", "a b"),
                 E + r"--name 'a b': use 1 to 64 letters, digits, '\.', '_' or '-'")


@test
def bad_log_level():
    expect_error(vmm("--kernel", KERNEL, "--log-level", "loud"),
                 E + r"--log-level 'loud': use error, warn, info or debug")


@test
def no_kvm_device():
    expect_error(vmm("--kernel", KERNEL, "--kvm-device", "/nonexistent/kvm"),
                 E + r"/nonexistent/kvm does not exist: is the kvm module loaded and does this host have hardware virtualization\?")


@test
def no_permission_on_kvm():
    if os.geteuid() != 0 or not os.path.exists("/dev/kvm"):
        raise tap.Skip("needs root (to drop to an unprivileged user) and /dev/kvm")
    if os.stat("/dev/kvm").st_mode & 0o006:
        raise tap.Skip("/dev/kvm is world-accessible here; cannot test a permission error")
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        k = os.path.join(d, "kernel")
        shutil.copy(KERNEL, k)
        os.chmod(k, 0o644)
        vm = os.path.join(d, "keel-vmm")
        shutil.copy(VMM, vm)
        os.chmod(vm, 0o755)
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", vm, "--kernel", k]
        expect_error(cmd, E + r"no permission to open /dev/kvm: run as root or add this user to the group that owns it \(usually 'kvm'\)")


@test
def missing_kvm_capability():
    if not kvm_usable():
        raise tap.Skip("needs /dev/kvm")
    env = dict(os.environ, KEEL_TEST_HIDE_KVM_CAPS="KVM_CAP_PIT2")
    expect_error(vmm("--kernel", KERNEL), E + r"KVM on this host lacks KVM_CAP_PIT2 \(in-kernel i8254 timer\)", env=env)


@test
def kernel_missing():
    expect_error(vmm("--kernel", "/nonexistent/bzImage"),
                 E + r"--kernel /nonexistent/bzImage: No such file or directory")


@test
def kernel_is_a_directory():
    expect_error(vmm("--kernel", "/tmp"), E + r"--kernel /tmp: not a regular file")


@test
def kernel_not_a_bzimage():
    with tempfile.NamedTemporaryFile() as f:
        f.write(b"\x7fELF" + bytes(4096))
        f.flush()
        expect_error(vmm("--kernel", f.name),
                     E + re.escape(f"--kernel {f.name}: not a bzImage: no \"HdrS\" boot header signature"))


@test
def kernel_empty():
    with tempfile.NamedTemporaryFile() as f:
        expect_error(vmm("--kernel", f.name),
                     E + re.escape(f"--kernel {f.name}: not a bzImage: no \"HdrS\" boot header signature"))


@test
def kernel_too_old():
    with open(KERNEL, "rb") as src:
        img = bytearray(src.read())
    img[0x206:0x208] = (0x0206).to_bytes(2, "little")
    with tempfile.NamedTemporaryFile() as f:
        f.write(img)
        f.flush()
        expect_error(vmm("--kernel", f.name),
                     E + re.escape(f"--kernel {f.name}: boot protocol 2.06 is too old: 64-bit boot needs 2.12 (Linux 3.8) or later"))


@test
def kernel_32bit_only():
    with open(KERNEL, "rb") as src:
        img = bytearray(src.read())
    img[0x236:0x238] = (0).to_bytes(2, "little")
    with tempfile.NamedTemporaryFile() as f:
        f.write(img)
        f.flush()
        expect_error(vmm("--kernel", f.name),
                     E + re.escape(f"--kernel {f.name}: kernel has no 64-bit entry point (XLF_KERNEL_64 clear): a 64-bit kernel is required"))


@test
def initrd_missing():
    expect_error(vmm("--kernel", KERNEL, "--initrd", "/nonexistent/initrd"),
                 E + r"--initrd /nonexistent/initrd: No such file or directory")


@test
def initrd_larger_than_memory_allows():
    if not kvm_usable():
        raise tap.Skip("needs /dev/kvm (the check runs once guest RAM exists)")
    with tempfile.NamedTemporaryFile() as f:
        f.truncate(40 << 20)  # sparse: costs no disk
        expect_error(vmm("--kernel", KERNEL, "--initrd", f.name, "--memory", "48M"),
                     E + re.escape(f"--kernel {KERNEL}: initrd (40 MiB) does not fit in guest memory between the kernel's end at 17 MiB and 48 MiB: raise --memory"))


@test
def help_and_version_succeed():
    rc, out, err = tap.run(vmm("--help"))
    check(rc == 0 and "--kernel PATH" in out and "--no-reboot" in out and "Exit status" in out,
          f"--help: rc={rc} out={out[:200]!r}")
    rc, out, err = tap.run(vmm("--version"))
    check(rc == 0 and re.fullmatch(r"keel-vmm \d+\.\d+\.\d+\n", out), f"--version: {out!r}")


if __name__ == "__main__":
    tap.main()
