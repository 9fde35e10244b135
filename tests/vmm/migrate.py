#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Live migration end to end between two keel-vmm processes on this
machine's KVM with the mini guest: the counter, a memory-dirtying guest
(every page rewritten and checked each pass) and a guest driving a virtio
disk (whose rings and read data only the device writes) continue on the
target, also on a qcow2 image the target takes over mid-allocation (and
qemu-img finds it clean); a target with another disk refuses and the
source runs on;
progress is readable while it runs; cancel and a connection broken at each
step leave exactly the VM the design says running (docs/migration.md).
Connection breaks are made by a proxy between the two that cuts the stream
at a chosen message.

Environment: KEEL_VMM, KEEL_MINIGUEST, KEEL_IMG.
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import tap  # noqa: E402
from tap import check, test  # noqa: E402
from vmmproc import Vmm, blk_passes, free_port, incoming, joined_console  # noqa: E402

VMM = os.environ["KEEL_VMM"]
KERNEL = os.environ["KEEL_MINIGUEST"]
HELLO, PAGES, STATE, GO, READY, RUNNING, ABORT = range(1, 8)


def source(cmdline="n", cpus=2, devices=()):
    return Vmm(VMM, ["--kernel", KERNEL, "--cmdline", cmdline, "--memory", "64M",
                     "--cpus", str(cpus), "--console", "stdio", *devices])


def target(port, devices=()):
    return incoming(VMM, port, devices)


def migrate(src, port, **extra):
    st, r = src.request("POST", "/v1/vm/migrate", {"uri": f"tcp:127.0.0.1:{port}", **extra})
    check(st == 202 and r == {"state": "migrating"}, f"migrate: {st} {r}")


def wait_status(src, want, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if src.p.poll() is not None:
            return None
        st, r = src.request("GET", "/v1/vm/migration")
        if r["status"] in want:
            return r
        time.sleep(0.05)
    raise tap.Failure(f"migration status never became {want}")


def consecutive(c):
    return c == list(range(c[0], c[0] + len(c)))


@test
def migrate_a_counting_guest():
    port = free_port()
    with target(port) as dst, source() as src:
        src.wait_count(3)
        migrate(src, port)
        rc = src.wait_exit()
        check(rc == 0, f"source exit {rc}: {src.stderr()!r}")
        check("migrated to" in src.stderr() and "downtime" in src.stderr(), f"{src.stderr()!r}")
        last = src.counts()[-1]
        dst.wait_count(last + 3)
        c = [int(l.split()[1]) for l in joined_console(src, dst) if l.startswith("count ")]
        check(c[0] == 0 and consecutive(c), f"the count broke across the migration at {last}: {c}")
        check(dst.p.poll() is None, "the target stopped")


@test
def migrate_a_guest_dirtying_memory_keeps_every_page_right():
    port = free_port()
    with target(port) as dst, source("m", cpus=1) as src:
        src.wait_line(lambda l: l == "pass 3 ok")
        # Held in round one by the proxy, so the progress is read while it runs.
        px = Proxy(port, hold_after_bytes=4 << 20)
        migrate(src, px.port, max_downtime_ms=50)
        check(px.held.wait(30), "the migration never sent 4 MiB")
        st, seen = src.request("GET", "/v1/vm/migration")
        px.release()
        check(st == 200 and seen["status"] == "active" and seen["phase"] == "precopy"
              and seen["bytes_sent"] >= 4 << 20 and seen["rounds"] == 0, f"progress: {st} {seen}")
        for key in ("dirty_rate_pages_per_s", "expected_downtime_ms", "bandwidth_bytes_per_s",
                    "dirty_pages", "pages_sent", "max_downtime_ms"):
            check(key in seen, f"progress lacks {key}: {seen}")
        rc = src.wait_exit()
        check(rc == 0, f"source exit {rc}: {src.stderr()!r}")
        # Three whole passes on the target, past the line the migration may have split.
        dst.wait_line(lambda l: sum(x.startswith("pass ") for x in dst.lines) >= 4, timeout=60)
        passes = [l for l in joined_console(src, dst) if l.startswith("pass ")]
        check(all(l.endswith(" ok") for l in passes),
              f"a pass found a wrong page: {[l for l in passes if not l.endswith(' ok')]}")
        nums = [int(l.split()[1]) for l in passes]
        check(nums == list(range(1, len(nums) + 1)), f"passes not continuous: {nums}")


def make_disk(mib=8):
    f = tempfile.NamedTemporaryFile(prefix="keel-mig-disk-", delete=False)
    f.truncate(mib << 20)
    f.close()
    return f.name



@test
def migrate_a_guest_using_its_disk():
    """The device's writes into guest RAM (used ring, read data) must reach
    the target: without them in the dirty log the guest waits forever for a
    completion it cannot see, or reads stale data."""
    disk = make_disk()
    devs = ["--disk", f"path={disk}", "--rng"]
    try:
        for downtime in (50, 1):
            port = free_port()
            with target(port, devs) as dst, source("v", cpus=1, devices=devs) as src:
                src.wait_line(lambda l: l == "blk 32 ok")
                migrate(src, port, max_downtime_ms=downtime)
                rc = src.wait_exit()
                check(rc == 0, f"source exit {rc}: {src.stderr()!r}")
                last = blk_passes(src.lines)[-1][0]
                dst.wait_line(lambda l: blk_passes([l]) and blk_passes([l])[0][0] >= last + 160)
                p = blk_passes(joined_console(src, dst))
                check(all(ok for _, ok in p), f"a pass failed: {[n for n, ok in p if not ok]}")
                nums = [n for n, _ in p]
                check(nums == list(range(16, 16 * len(nums) + 1, 16)),
                      f"passes broke across the migration (source's last {last}): {nums}")
    finally:
        os.unlink(disk)


def qcow2_blocks(path):
    """The first word of each 4 KiB block the mini guest writes (0..255)."""
    raw = path + ".raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", path, raw], check=True)
    try:
        with open(raw, "rb") as f:
            data = f.read(256 * 4096)
    finally:
        os.unlink(raw)
    return [struct.unpack_from("<Q", data, k * 4096)[0] for k in range(256)]


@test
def migrate_a_guest_allocating_qcow2_clusters():
    """The source's qcow2 driver holds tables and refcounts in its caches
    and allocates while pre-copy runs; it must write them back before the
    switch-over and never touch the image again, and the target must read
    the metadata as the source left it (opened before, while it was still
    changing). 4 KiB clusters: each of the guest's 256 blocks is a cluster
    allocation, so the source allocates the first ones and the target the
    rest. Then the image is clean and each block holds a pass of its own."""
    disk = tempfile.mktemp(prefix="keel-mig-", suffix=".qcow2")
    subprocess.run([os.environ["KEEL_IMG"], "create", "-f", "qcow2", "-o", "cluster_size=4096",
                    disk, "8M"], check=True, capture_output=True)
    devs = ["--disk", f"path={disk},format=qcow2,cache=writeback"]
    try:
        port = free_port()
        with target(port, devs) as dst, source("v", cpus=1, devices=devs) as src:
            src.wait_line(lambda l: l == "blk 32 ok")
            migrate(src, port)
            rc = src.wait_exit()
            check(rc == 0, f"source exit {rc}: {src.stderr()!r}")
            dst.wait_line(lambda l: l == "blk 320 ok", timeout=60)
            p = blk_passes(joined_console(src, dst))
            check(all(ok for _, ok in p), f"a pass failed: {[n for n, ok in p if not ok]}")
            dst.p.send_signal(signal.SIGTERM)
            check(dst.wait_exit() == 128 + signal.SIGTERM, f"target: {dst.stderr()!r}")
        chk = subprocess.run(["qemu-img", "check", disk], capture_output=True, text=True)
        check(chk.returncode == 0, f"qemu-img check: {chk.returncode} {chk.stdout}{chk.stderr}")
        words = qcow2_blocks(disk)
        wrong = [k for k, w in enumerate(words) if w % 256 != k or w == 0]
        check(not wrong, f"blocks holding another block's pass: {[(k, words[k]) for k in wrong[:8]]}")
    finally:
        os.unlink(disk)


@test
def a_target_with_another_disk_refuses_and_the_source_runs_on():
    disk, other = make_disk(), make_disk(16)
    try:
        port = free_port()
        with target(port, ["--disk", f"path={other}"]) as dst, \
                source("v", cpus=1, devices=["--disk", f"path={disk}"]) as src:
            src.wait_line(lambda l: l == "blk 16 ok")
            migrate(src, port)
            # Pre-copy runs its course first (the target refuses at the state).
            r = wait_status(src, ("failed",), timeout=120)
            check(r is not None and "the target gave up" in r["error"] and
                  "virtio-blk0: the saved disk has 16384 sectors" in r["error"], f"{r}")
            st, info = src.request("GET", "/v1/vm")
            check(info["state"] == "running", f"{info}")
            n = blk_passes(src.lines)[-1][0]
            src.wait_line(lambda l: blk_passes([l]) and blk_passes([l])[0][0] >= n + 32)
            check(all(ok for _, ok in blk_passes(src.lines)), "a pass failed on the source")
            check(dst.wait_exit() == 1 and "not the same disk" in dst.stderr(), f"{dst.stderr()!r}")
    finally:
        os.unlink(disk)
        os.unlink(other)


class Proxy:
    """Forwards source <-> target; cut(type) closes both sides just before the
    source's message of that type would reach the target; drop_running closes
    both when the target's RUNNING comes (it never reaches the source)."""

    def __init__(self, target_port, cut=None, cut_after_bytes=None, drop_running=False,
                 hold_after_bytes=None):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1)
        self.port = self.lsock.getsockname()[1]
        self.target_port, self.cut, self.cut_after = target_port, cut, cut_after_bytes
        self.drop_running = drop_running
        # hold_after_bytes: forwarding stops there until release() (a migration held mid-way).
        self.hold_after, self.held, self.gate = hold_after_bytes, threading.Event(), threading.Event()
        self.done = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _close(self, *socks):
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.done.set()

    def _recv(self, s, n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                raise EOFError
            b += c
        return b

    def _run(self):
        a, _ = self.lsock.accept()
        b = socket.create_connection(("127.0.0.1", self.target_port))
        threading.Thread(target=self._back, args=(a, b), daemon=True).start()
        sent = 0
        try:
            while True:
                h = self._recv(a, 16)
                typ, _, ln = struct.unpack("<IIQ", h)
                if typ == self.cut or (self.cut_after is not None and sent >= self.cut_after):
                    break
                if self.hold_after is not None and sent >= self.hold_after and not self.gate.is_set():
                    self.held.set()
                    self.gate.wait()
                b.sendall(h + self._recv(a, ln))
                sent += 16 + ln
        except (EOFError, OSError):
            pass
        self._close(a, b)

    def release(self):
        self.gate.set()

    def _back(self, a, b):
        try:
            while True:
                h = self._recv(b, 16)
                typ, _, ln = struct.unpack("<IIQ", h)
                if typ == RUNNING and self.drop_running:
                    break
                a.sendall(h + self._recv(b, ln))
        except (EOFError, OSError):
            pass
        self._close(a, b)


def source_keeps_running(src, why):
    r = wait_status(src, ("failed", "cancelled"))
    check(r is not None, f"the source exited ({why}): {src.stderr()!r}")
    st, info = src.request("GET", "/v1/vm")
    check(info["state"] == "running", f"source state {info['state']} ({why})")
    n = src.counts()[-1]
    src.wait_count(n + 2)
    return r


@test
def no_target_leaves_the_source_running():
    with source() as src:
        src.wait_count(1)
        migrate(src, free_port())
        r = source_keeps_running(src, "nothing listens")
        check(r["status"] == "failed" and "cannot connect" in r["error"], f"{r}")


@test
def connection_broken_during_precopy_leaves_the_source():
    port = free_port()
    with target(port) as dst, source() as src:
        src.wait_count(1)
        px = Proxy(port, cut_after_bytes=20000)
        migrate(src, px.port)
        r = source_keeps_running(src, "cut during pre-copy")
        check(r["status"] == "failed" and "the VM stays here" not in r["error"], f"{r}")
        check(dst.wait_exit() == 1, f"target: {dst.stderr()!r}")
        check("--incoming" in dst.stderr(), f"{dst.stderr()!r}")


@test
def connection_broken_before_the_state_leaves_the_source():
    port = free_port()
    with target(port) as dst, source() as src:
        src.wait_count(1)
        px = Proxy(port, cut=STATE)
        migrate(src, px.port)
        source_keeps_running(src, "cut before STATE")
        check(dst.wait_exit() == 1, f"target exit: {dst.stderr()!r}")


@test
def target_that_cannot_load_the_state_aborts_and_the_source_runs():
    port = free_port()
    with target(port) as dst, source() as src:
        src.wait_count(1)
        px = Proxy(port, cut=GO)  # READY passes back, GO never reaches the target
        migrate(src, px.port)
        r = wait_status(src, ("unknown", "failed"))
        check(r is not None and r["status"] == "unknown", f"{r}")
        check("may be running" in r["error"], f"{r}")
        st, info = src.request("GET", "/v1/vm")
        check(info["state"] == "paused", f"after GO the source must not run on its own: {info}")
        check(dst.wait_exit() == 1, f"target: {dst.stderr()!r}")
        check("no go-ahead from the source" in dst.stderr(), f"{dst.stderr()!r}")


@test
def lost_confirmation_leaves_only_the_target_running():
    port = free_port()
    with target(port) as dst, source() as src:
        src.wait_count(2)
        px = Proxy(port, drop_running=True)
        migrate(src, px.port)
        r = wait_status(src, ("unknown",))
        st, info = src.request("GET", "/v1/vm")
        check(info["state"] == "paused", f"source: {info}")
        n = src.counts()[-1]
        time.sleep(0.5)
        check(src.counts()[-1] == n, "the source ran on")
        dst.wait_count(n + 3)
        check(dst.p.poll() is None, "the target is not running")


@test
def cancel_leaves_the_source_running():
    # A target that takes everything and never answers READY: the source waits in the switch-over.
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    port = ls.getsockname()[1]
    conns = []

    def sink():
        c, _ = ls.accept()
        conns.append(c)
        while c.recv(1 << 20):
            pass
    threading.Thread(target=sink, daemon=True).start()
    with source() as src:
        src.wait_count(1)
        migrate(src, port)
        wait_status(src, ("active",))
        deadline = time.time() + 20
        while time.time() < deadline:
            st, r = src.request("GET", "/v1/vm/migration")
            if r.get("phase") == "switch-over":
                break
            time.sleep(0.05)
        check(r.get("phase") == "switch-over", f"never reached the switch-over: {r}")
        st, r = src.request("POST", "/v1/vm/migration/cancel")
        check(st == 202, f"cancel: {st} {r}")
        r = source_keeps_running(src, "cancelled")
        check(r["status"] == "cancelled", f"{r}")
        st, r = src.request("POST", "/v1/vm/migration/cancel")
        check(st == 409 and r["error"]["message"] == "cannot migrate-cancel: no migration is in progress",
              f"{st} {r}")
    ls.close()


@test
def migrate_request_errors():
    with source() as src:
        src.wait_count(1)
        st, r = src.request("POST", "/v1/vm/migrate", {})
        check(st == 400 and r["error"]["message"] == "field 'uri' (tcp:HOST:PORT of the target) is required",
              f"{st} {r}")
        st, r = src.request("POST", "/v1/vm/migrate", {"uri": "udp:x:1"})
        check(st == 400 and r["error"]["message"] == "cannot migrate: 'udp:x:1' is not tcp:HOST:PORT",
              f"{st} {r}")
        st, r = src.request("POST", "/v1/vm/migrate", {"uri": "tcp:127.0.0.1:1", "max_downtime_ms": 0})
        check(st == 400 and r["error"]["message"] == "field 'max_downtime_ms' must be between 1 and 60000",
              f"{st} {r}")
        st, r = src.request("GET", "/v1/vm/migration")
        check(st == 200 and r == {"status": "none"}, f"{st} {r}")


@test
def incoming_flag_errors():
    tap.expect_error([VMM, "--incoming", "localhost:5"], r"keel-vmm: error: --incoming 'localhost:5': give tcp:HOST:PORT")
    tap.expect_error([VMM, "--incoming", "tcp:127.0.0.1:5", "--cpus", "2"],
                     r"keel-vmm: error: --cpus cannot be given with --incoming: the source has the VM's configuration")


if __name__ == "__main__":
    tap.main()
