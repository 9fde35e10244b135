#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Snapshot and restore end to end on this machine's KVM with the mini guest
(tests/vmm/miniguest.S, the counter): a snapshot taken through the API and
restored in a new keel-vmm continues the count where it stopped; a guest
driving a virtio disk carries on after its keel-vmm was killed and the
snapshot restored; a restore with other devices than the saved VM's, and
every damaged or foreign snapshot, is refused with one line and exit 1.

Environment: KEEL_VMM, KEEL_MINIGUEST.
"""
import os
import shutil
import subprocess
import struct
import sys
import tempfile
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import tap  # noqa: E402
from tap import check, test  # noqa: E402
from vmmproc import Vmm, blk_passes, joined_console  # noqa: E402

VMM = os.environ["KEEL_VMM"]
KERNEL = os.environ["KEEL_MINIGUEST"]
WORK = tempfile.mkdtemp(prefix="keel-snap-test-")


def vm(cmdline="n", cpus=2, memory="64M"):
    return Vmm(VMM, ["--kernel", KERNEL, "--cmdline", cmdline, "--memory", memory,
                     "--cpus", str(cpus), "--console", "stdio"])


def restored(d, *extra):
    return Vmm(VMM, ["--restore", d, "--console", "stdio", *extra])


def take_snapshot(v, d):
    st, r = v.request("PUT", "/v1/vm/snapshot", {"path": d})
    check(st == 200, f"snapshot: {st} {r}")
    return r


_good = None


def good_snapshot():
    """One snapshot of a counting 2-vCPU guest, shared by the damage tests."""
    global _good
    if _good is None:
        d = os.path.join(WORK, "good")
        with vm() as v:
            v.wait_count(3)
            take_snapshot(v, d)
        _good = d
    return _good


def damaged(name, fn):
    d = os.path.join(WORK, name)
    shutil.copytree(good_snapshot(), d)
    fn(d)
    return d


def restore_fails(d, message):
    tap.expect_error([VMM, "--restore", d, "--console", "none"], "keel-vmm: error: " + message,
                     timeout=60)


@test
def restore_continues_the_count():
    d = os.path.join(WORK, "count")
    with vm(cpus=2) as v:
        v.wait_count(5)
        v.request("POST", "/v1/vm/pause")
        at = v.counts()[-1]
        r = take_snapshot(v, d)
        check(r["state"] == "paused", f"a paused VM must stay paused: {r}")
        v.request("POST", "/v1/vm/stop")
        check(v.wait_exit() == 0, "the first keel-vmm did not exit 0")
        first = v
    check(sorted(os.listdir(d)) == ["memory", "state"], f"files {os.listdir(d)}")
    with restored(d) as v:
        v.wait_count(at + 5)
        c = [int(l.split()[1]) for l in joined_console(first, v) if l.startswith("count ")]
        check(c == list(range(len(c))), f"the count broke across the restore (paused at {at}): {c}")
        check(v.counts()[0] <= at + 2, f"restored count starts at {v.counts()[0]}, paused at {at}")
        st, r = v.request("GET", "/v1/vm")
        check(r["state"] == "running" and r["config"]["cpus"] == 2 and r["config"]["memory_mib"] == 64,
              f"{r}")
        check(r["config"]["kernel"] == KERNEL, f"{r}")


def blk_vm(disk, *extra):
    """The mini guest's virtio-blk driver (pass N writes block N % 256 and reads it back)."""
    return Vmm(VMM, ["--kernel", KERNEL, "--cmdline", "v", "--memory", "64M", "--console", "stdio",
                     "--disk", f"path={disk}", *extra])


def make_disk(name, mib=8):
    path = os.path.join(WORK, name)
    with open(path, "wb") as f:
        f.truncate(mib << 20)
    return path



@test
def a_guest_using_its_disk_resumes_after_kill_and_restore():
    disk, d = make_disk("blk.img"), os.path.join(WORK, "blk")
    with blk_vm(disk, "--rng") as v:
        v.wait_line(lambda l: l == "blk 64 ok")
        v.request("POST", "/v1/vm/pause")
        r = take_snapshot(v, d)
        check(r["state"] == "paused", f"{r}")
        at = blk_passes(v.lines)[-1][0]
        v.p.kill()  # no clean exit: the snapshot (and the flushed disk) must do
        first = v
    with restored(d, "--disk", f"path={disk}", "--rng") as v:
        v.wait_line(lambda l: blk_passes([l]) and blk_passes([l])[0][0] >= at + 64)
        p = blk_passes(joined_console(first, v))
        check(all(ok for _, ok in p), f"a pass failed: {[n for n, ok in p if not ok]}")
        nums = [n for n, _ in p]
        check(nums == list(range(16, 16 * len(nums) + 1, 16)),
              f"the passes broke across the restore (paused at {at}): {nums}")
    # Block n holds the last pass written there.
    with open(disk, "rb") as f:
        blk = f.read(4096 * 256)
    last = nums[-1]
    for b in (last % 256, (last - 1) % 256):
        got = struct.unpack_from("<Q", blk, 4096 * b)[0]
        check(got >= last - 256 and got % 256 == b, f"block {b} holds pass {got}, last pass {last}")


@test
def a_restore_with_other_devices_is_refused():
    disk, d = make_disk("blk2.img"), os.path.join(WORK, "blk2")
    with blk_vm(disk) as v:
        v.wait_line(lambda l: l == "blk 16 ok")
        take_snapshot(v, d)
    restore_fails(d, rf"--restore {d}: pci-host: PCI slot 1: the saved VM has virtio-blk \(1af4:1042\) "
                     r"there, this VM has nothing: give it the saved VM's --disk, --net and --rng "
                     r"options, in the same order")
    big = make_disk("big.img", 16)
    tap.expect_error([VMM, "--restore", d, "--console", "none", "--disk", f"path={big}"],
                     rf"keel-vmm: error: --restore {d}: virtio-blk0: the saved disk has 16384 sectors, "
                     rf"{big} has 32768: not the same disk", timeout=60)
    tap.expect_error([VMM, "--restore", d, "--console", "none", "--disk", f"path={disk},readonly=on"],
                     rf"keel-vmm: error: --restore {d}: virtio-blk0: the saved device offered features "
                     r"0x[0-9a-f]+, this one offers 0x[0-9a-f]+: .*", timeout=60)
    tap.expect_error([VMM, "--restore", d, "--console", "none", "--disk", f"path={disk}", "--rng"],
                     rf"keel-vmm: error: --restore {d}: pci-host: PCI slot 2: the saved VM has nothing "
                     r"there, this VM has virtio-rng \(1af4:1044\): .*", timeout=60)


@test
def snapshot_of_a_running_vm_lets_it_run_on():
    d = os.path.join(WORK, "running")
    with vm(cpus=1) as v:
        v.wait_count(2)
        r = take_snapshot(v, d)
        check(r["state"] == "running", f"{r}")
        n = v.counts()[-1]
        v.wait_count(n + 3)
        c = v.counts()
        check(c == list(range(len(c))), f"the count broke across the snapshot: {c}")


@test
def a_restored_vm_can_be_snapshotted_and_restored_again():
    d2 = os.path.join(WORK, "second")
    with restored(good_snapshot()) as v:
        start = v.counts()[0] if v.counts() else None
        v.wait_count(10)
        v.request("POST", "/v1/vm/pause")
        at = v.counts()[-1]
        take_snapshot(v, d2)
        first = v
    with restored(d2) as v:
        v.wait_count(at + 3)
        c = [int(l.split()[1]) for l in joined_console(first, v) if l.startswith("count ")]
        check(c == list(range(c[0], c[0] + len(c))) and v.counts()[0] <= at + 2,
              f"second restore: {c} (paused at {at}; first restore started at {start})")


@test
def a_restored_vm_boots_afresh_on_reset():
    # The restore's vCPUs take CPUID and MSRs from the snapshot; a reset's
    # new vCPUs must get the boot set-up again, or the guest cannot boot.
    with restored(good_snapshot()) as v:
        v.wait_line(lambda l: l.startswith("count "))
        check(v.counts()[0] > 0, f"the restored count starts at {v.counts()[0]}")
        st, r = v.request("POST", "/v1/vm/reset")
        check(st == 202, f"reset: {st} {r}")
        v.wait_line(lambda l: l == "count 0", timeout=30)  # the guest booted again
        v.wait_count(3)
        st, r = v.request("GET", "/v1/vm")
        check(r["state"] == "running", f"after the reset: {r}")
        d = os.path.join(WORK, "after-reset")
        take_snapshot(v, d)
    for cpu in ("vcpu/0", "vcpu/1"):
        body = section(d, cpu)
        nent = struct.unpack_from("<I", body, 8)[0]  # after the APIC ID and TSC kHz
        check(nent > 0, f"{cpu} has no CPUID after the reset: its boot set-up was skipped")


@test
def snapshot_requests_that_cannot_be_done_are_refused():
    d = good_snapshot()
    with vm(cpus=1) as v:
        v.wait_count(1)
        st, r = v.request("PUT", "/v1/vm/snapshot", {"path": d})
        check(st == 409 and r["error"]["code"] == "exists" and
              r["error"]["message"] == f"snapshot failed: {d} already holds a snapshot", f"{st} {r}")
        st, r = v.request("PUT", "/v1/vm/snapshot", {})
        check(st == 400 and r["error"]["message"] == "field 'path' (the snapshot's directory) is required",
              f"{st} {r}")
        st, r = v.request("PUT", "/v1/vm/snapshot", {"path": d, "compress": True})
        check(st == 400 and r["error"]["message"] == "unknown field 'compress'", f"{st} {r}")
        st, r = v.request("PUT", "/v1/vm/snapshot", {"path": 7})
        check(st == 400 and r["error"]["message"] == "field 'path' must be a string", f"{st} {r}")
        st, r = v.request("GET", "/v1/vm")
        check(r["state"] == "running", f"{r}")


def rewrite_state(d, fn):
    """fn(header bytearray, payload bytearray); checksums are recomputed after."""
    p = os.path.join(d, "state")
    data = open(p, "rb").read()
    h, payload = bytearray(data[:64]), bytearray(data[64:])
    fn(h, payload)
    struct.pack_into("<Q", h, 16, len(payload))
    struct.pack_into("<I", h, 24, zlib.crc32(payload))
    struct.pack_into("<I", h, 60, zlib.crc32(bytes(h[:60])))
    open(p, "wb").write(bytes(h) + bytes(payload))


def sections(d):
    """{tag: body} of a snapshot's state file."""
    payload, pos, out = open(os.path.join(d, "state"), "rb").read()[64:], 0, {}
    while pos < len(payload):
        n = struct.unpack_from("<H", payload, pos)[0]
        ln = struct.unpack_from("<I", payload, pos + 6 + n)[0]
        out[payload[pos + 2:pos + 2 + n].decode()] = payload[pos + 10 + n:pos + 10 + n + ln]
        pos += 10 + n + ln
    return out


def section(d, tag):
    got = sections(d)
    check(tag in got, f"no section {tag} in {sorted(got)}")
    return got[tag]


def bump_section_version(tag, version):
    def fn(h, payload):
        pos = 0
        while pos < len(payload):
            n = struct.unpack_from("<H", payload, pos)[0]
            name = payload[pos + 2:pos + 2 + n].decode()
            ln = struct.unpack_from("<I", payload, pos + 6 + n)[0]
            if name == tag:
                struct.pack_into("<I", payload, pos + 2 + n, version)
                return
            pos += 10 + n + ln
        raise tap.Failure(f"no section {tag}")
    return fn


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x40]))


@test
def damaged_snapshots_are_refused_with_one_line():
    g = good_snapshot()
    restore_fails(os.path.join(WORK, "nothing"),
                  rf"--restore {WORK}/nothing: {WORK}/nothing/state: No such file or directory")

    def truncate(name, size):
        def fn(d):
            with open(os.path.join(d, name), "r+b") as f:
                f.truncate(size)
        return fn

    size = os.path.getsize(os.path.join(g, "state"))
    d = damaged("truncated", truncate("state", size - 100))
    restore_fails(d, rf"--restore {d}: {d}/state: truncated: {size - 164} bytes of state, "
                     rf"the header says {size - 64}")
    d = damaged("tiny", truncate("state", 10))
    restore_fails(d, rf"--restore {d}: {d}/state: too short for a snapshot header")
    d = damaged("trailing", lambda d: open(os.path.join(d, "state"), "ab").write(b"x"))
    restore_fails(d, rf"--restore {d}: {d}/state: has trailing data: {size - 63} bytes of state, "
                     rf"the header says {size - 64}")
    d = damaged("magic", lambda d: flip(os.path.join(d, "state"), 0))
    restore_fails(d, rf"--restore {d}: {d}/state: not a keel-vmm snapshot")
    d = damaged("header", lambda d: flip(os.path.join(d, "state"), 33))
    restore_fails(d, rf"--restore {d}: {d}/state: the header is corrupted \(checksum mismatch\)")
    d = damaged("payload", lambda d: flip(os.path.join(d, "state"), size - 1))
    restore_fails(d, rf"--restore {d}: {d}/state: the state is corrupted \(checksum mismatch\)")
    d = damaged("version", lambda d: rewrite_state(d, lambda h, p: struct.pack_into("<I", h, 8, 2)))
    restore_fails(d, rf"--restore {d}: {d}/state: snapshot format version 2, this keel-vmm reads version 1")
    d = damaged("section", lambda d: rewrite_state(d, bump_section_version("com1", 2)))
    restore_fails(d, rf"--restore {d}: com1: state version 2, this keel-vmm reads version 1")
    d = damaged("cpu", lambda d: rewrite_state(d, bump_section_version("vcpu/1", 9)))
    restore_fails(d, rf"--restore {d}: vcpu/1: state version 9, this keel-vmm reads version 1")
    d = damaged("extra", lambda d: rewrite_state(
        d, lambda h, p: p.extend(struct.pack("<H", 11) + b"virtio-blk0" + struct.pack("<II", 1, 0))))
    restore_fails(d, rf"--restore {d}: the state has a section 'virtio-blk0' that this VM has no use for")
    d = damaged("framing", lambda d: rewrite_state(d, lambda h, p: p.extend(b"\x05\x00ab")))
    restore_fails(d, rf"--restore {d}: {d}/state: state section header cut short at byte {size - 64}")

    msize = os.path.getsize(os.path.join(g, "memory"))
    d = damaged("memshort", truncate("memory", msize - 4096))
    restore_fails(d, rf"--restore {d}: {d}/memory: truncated: {msize - 8192} bytes of guest memory, "
                     rf"{msize - 4096} expected")
    d = damaged("memgone", lambda d: os.unlink(os.path.join(d, "memory")))
    restore_fails(d, rf"--restore {d}: {d}/memory: No such file or directory")
    d = damaged("memheader", lambda d: flip(os.path.join(d, "memory"), 20))
    restore_fails(d, rf"--restore {d}: {d}/memory: not a keel-vmm memory file, or its header is corrupted")
    other = os.path.join(WORK, "other")
    with vm(cpus=2) as v:
        v.wait_count(1)
        take_snapshot(v, other)
    d = damaged("foreign", lambda d: shutil.copy(os.path.join(other, "memory"), os.path.join(d, "memory")))
    restore_fails(d, rf"--restore {d}: {d}/memory: belongs to another snapshot")


@test
def ctl_snapshot_and_migration_commands():
    d = os.path.join(WORK, "ctl dir with space")
    with vm(cpus=1) as v:
        v.wait_count(1)
        p = subprocess.run([VMM, "ctl", v.sock, "snapshot", d], capture_output=True, text=True)
        check(p.returncode == 0 and "state: running" in p.stdout and f"path: {d}" in p.stdout,
              f"{p.returncode} {p.stdout!r} {p.stderr!r}")
        check(os.path.exists(os.path.join(d, "state")), "no snapshot written")
        p = subprocess.run([VMM, "ctl", v.sock, "migration"], capture_output=True, text=True)
        check(p.returncode == 0 and p.stdout == "status: none\n", f"{p.stdout!r}")
        p = subprocess.run([VMM, "ctl", v.sock, "migrate-cancel"], capture_output=True, text=True)
        check(p.returncode == 1 and "no migration is in progress" in p.stderr, f"{p.stderr!r}")
        p = subprocess.run([VMM, "ctl", v.sock, "migrate", "tcp:127.0.0.1:9", "0"], capture_output=True, text=True)
        check(p.returncode == 2, f"{p.returncode} {p.stderr!r}")


@test
def configuration_flags_do_not_mix_with_restore():
    tap.expect_error([VMM, "--restore", good_snapshot(), "--cpus", "4"],
                     r"keel-vmm: error: --cpus cannot be given with --restore: the snapshot has the VM's configuration")
    tap.expect_error([VMM, "--restore", good_snapshot(), "--kernel", KERNEL],
                     r"keel-vmm: error: --kernel cannot be given with --restore: .*")


if __name__ == "__main__":
    try:
        tap.main()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
