#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Native figures for snapshot, restore and live migration (make bench):
keel-vmm on this machine's KVM with a 256 MiB mini guest, written as
build/bench/<metric>.json in the project's bench format. The VMM's own costs
(snapshot write, restore start-up, migration of pages and state) do not need
a Linux guest; the lab's migrate-local scenario adds the Linux figure.
QEMU cannot run this guest (it has only a 64-bit entry point), so no peer is
measured here; 'peers' stays empty.

Usage: bench_snapshot.py OUTDIR   (KEEL_VMM, KEEL_MINIGUEST in the environment)
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from vmmproc import Vmm, free_port  # noqa: E402

VMM = os.environ["KEEL_VMM"]
KERNEL = os.environ["KEEL_MINIGUEST"]
MEM = "256M"
RUNS = 5


def boot(cmdline, cpus=2):
    return Vmm(VMM, ["--kernel", KERNEL, "--cmdline", cmdline, "--memory", MEM, "--cpus", str(cpus),
                     "--console", "stdio"])


def snapshot_figures(work):
    create, restore = [], []
    for i in range(RUNS):
        d = os.path.join(work, f"snap{i}")
        with boot("w") as v:
            time.sleep(0.5)
            t0 = time.monotonic()
            st, r = v.request("PUT", "/v1/vm/snapshot", {"path": d})
            create.append((time.monotonic() - t0) * 1000)
            assert st == 200, r
        t0 = time.monotonic()
        p = subprocess.Popen([VMM, "--restore", d, "--console", "stdio"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
        p.stdout.read(1)  # the guest's first '.' after the restore
        restore.append((time.monotonic() - t0) * 1000)
        p.kill()
        p.wait()
        shutil.rmtree(d)
    return create, restore


def migrate_once(cmdline):
    port = free_port()
    dst = subprocess.Popen([VMM, "--incoming", f"tcp:127.0.0.1:{port}", "--console", "none"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    with boot(cmdline, cpus=1) as v:
        time.sleep(1.0)
        st, r = v.request("POST", "/v1/vm/migrate", {"uri": f"tcp:127.0.0.1:{port}"})
        assert st == 202, r
        v.wait_exit(60)
        m = re.search(r"migrated to \S+: (\d+) rounds, (\d+) MiB sent, downtime (\d+) ms, total (\d+) ms",
                      v.stderr())
        assert m, v.stderr()
    dst.kill()
    dst.wait()
    return [int(x) for x in m.groups()]


def obj(metric, unit, samples, desc, **extra):
    return {"metric": metric, "unit": unit, "better": "lower", "keel": round(statistics.median(samples), 2),
            "peers": {}, "samples": [round(s, 2) for s in samples], "description": desc,
            "where": "native (build machine's KVM, mini guest)",
            "config": {"memory": MEM, "runs": len(samples)}, **extra}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="keel-bench-snap-")
    try:
        create, restore = snapshot_figures(work)
        idle = [migrate_once("n") for _ in range(RUNS)]
        dirty = [migrate_once("m") for _ in range(RUNS)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    objs = [
        obj("snapshot-create", "ms", create, "PUT /v1/vm/snapshot of a running 256 MiB guest: "
            "request to reply (pause, state, memory file written and fsynced, resume)"),
        obj("restore-latency", "ms", restore, "keel-vmm --restore start to the guest's first output "
            "(process start, KVM set-up, state load; memory mapped lazily)"),
        obj("miniguest-migrate-idle-total", "ms", [x[3] for x in idle], "live migration of an idle 256 MiB "
            "guest over loopback TCP: migrate call to the target running"),
        obj("miniguest-migrate-idle-downtime", "ms", [x[2] for x in idle], "source paused to target running"),
        obj("miniguest-migrate-dirty-total", "ms", [x[3] for x in dirty], "the same with the guest rewriting "
            "16 MiB continuously"),
        obj("miniguest-migrate-dirty-downtime", "ms", [x[2] for x in dirty], "source paused to target running, "
            "dirtying guest"),
        obj("miniguest-migrate-dirty-sent", "MiB", [x[1] for x in dirty], "MiB sent, dirtying guest"),
    ]
    # One object per file, as bench/run reads the native benchmarks' output.
    for o in objs:
        with open(os.path.join(out, o["metric"] + ".json"), "w") as f:
            json.dump(o, f, indent=1)
            f.write("\n")
    for o in objs:
        print(f"{o['metric']:25} {o['unit']:4} {o['keel']:>10}  samples {o['samples']}")


if __name__ == "__main__":
    main()
