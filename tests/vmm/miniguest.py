#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""keel-vmm end to end on this machine's /dev/kvm with the mini guest
(tests/vmm/miniguest.S): the boot protocol's 64-bit entry, port I/O
dispatch, the serial console both ways, ACPI poweroff, the three reset
paths with and without --no-reboot, a triple fault, and signals. These run
on any KVM, including the build machines' software hypervisor that cannot
boot Linux; the Linux guests are proved in the lab (tests/lab).

Environment: KEEL_VMM, KEEL_MINIGUEST.
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import tap  # noqa: E402
from tap import check, test  # noqa: E402

VMM = os.environ["KEEL_VMM"]
KERNEL = os.environ["KEEL_MINIGUEST"]


def need_kvm():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        raise tap.Skip("no usable /dev/kvm on this machine")


def boot(cmdline, *extra, input=None, timeout=60):
    need_kvm()
    cmd = [VMM, "--kernel", KERNEL, "--cmdline", cmdline, "--memory", "64M", *extra]
    return tap.run(cmd, timeout=timeout, input=input)


@test
def poweroff_exits_zero():
    rc, out, err = boot("h")
    check(rc == 0, f"exit {rc}; stderr {err!r}")
    check(out == "hello from the mini guest\n", f"console output {out!r}")


@test
def poweroff_with_memfd_backing():
    rc, out, err = boot("h", "--memory-backing", "memfd")
    check(rc == 0 and out == "hello from the mini guest\n", f"exit {rc}; out {out!r} err {err!r}")


@test
def poweroff_with_four_vcpus():
    rc, out, err = boot("h", "--cpus", "4")
    check(rc == 0 and "hello from the mini guest" in out, f"exit {rc}; out {out!r} err {err!r}")


@test
def console_input_reaches_guest():
    rc, out, err = boot("e", input="Z")
    check(rc == 0, f"exit {rc}; stderr {err!r}")
    check(out == "ready\ngot Z\n", f"console output {out!r}")


@test
def reboot_restarts_the_guest():
    rc, out, err = boot("r")
    check(rc == 0, f"exit {rc}; stderr {err!r}")
    check(out == "boot 1\nboot 2\nboot 3\n", f"console output {out!r}")
    check(err.count("guest rebooted; restarting it") == 2, f"stderr {err!r}")


@test
def no_reboot_turns_i8042_reset_into_exit():
    rc, out, err = boot("r", "--no-reboot")
    check(rc == 0, f"exit {rc}; stderr {err!r}")
    check(out == "boot 1\n", f"console output {out!r}")
    check("guest rebooted; exiting (--no-reboot)" in err, f"stderr {err!r}")


@test
def acpi_reset_register_resets():
    rc, out, err = boot("a", "--no-reboot")
    check(rc == 0 and "exiting (--no-reboot)" in err, f"exit {rc}; stderr {err!r}")


@test
def port_cf9_resets():
    rc, out, err = boot("c", "--no-reboot")
    check(rc == 0 and "exiting (--no-reboot)" in err, f"exit {rc}; stderr {err!r}")


@test
def sleep_state_other_than_s5_does_not_power_off():
    rc, out, err = boot("p")
    check(rc == 0 and out == "still here\n", f"exit {rc}; out {out!r}; stderr {err!r}")


@test
def triple_fault_exits_two_with_registers():
    rc, out, err = boot("t")
    check(rc == 2, f"exit {rc}, expected 2; stderr {err!r}")
    check("triple fault" in err, f"stderr {err!r}")
    check("rip=" in err and "cr0=" in err and "cs " in err, f"no register dump: {err!r}")


@test
def sigterm_stops_the_vm():
    need_kvm()
    p = subprocess.Popen([VMM, "--kernel", KERNEL, "--cmdline", "s", "--memory", "64M", "--cpus", "2"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    check(p.poll() is None, "keel-vmm ended before the signal")
    p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        raise tap.Failure("keel-vmm did not stop within 20 s of SIGTERM")
    check(p.returncode == 128 + signal.SIGTERM, f"exit {p.returncode}; stderr {err!r}")


if __name__ == "__main__":
    tap.main()
