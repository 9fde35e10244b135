#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""keel-img against qemu-img in the same run, same flags (issue 4, make bench).

  bench/img.py [--build DIR] [--out FILE] [--dir SCRATCH] [--quick]

Writes build/bench/img.json: a list of {"metric", "unit", "better", "keel",
"peers": {"qemu-img": N}}. Each figure is the median of several alternating
runs (keel, qemu, keel, qemu...) so page-cache and device state favour
neither tool. bench/run (make bench) calls this script.

  qcow2 4k randwrite fresh   bench -w -s 4k -d 32 -i io_uring -t none over a
                             fresh thin 1 GiB qcow2; "random": a step of
                             100003 blocks, coprime with the block count, so
                             every request lands somewhere new
  qcow2 4k randread filled   the same reads from a fully written image
  qcow2 64k seqwrite fresh   bench -w -s 64k -d 32 -i io_uring -t none
  convert 2 GiB half-sparse  raw (1 MiB data / 1 MiB hole) -> qcow2, and back
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GiB = 1 << 30
STEP = 4096 * 100003


def sh(*args):
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"bench/img.py: {' '.join(map(str, args))} failed:\n{p.stdout}{p.stderr}")
    return p.stdout


def bench_seconds(tool, img, *flags):
    out = sh(tool, "bench", *flags, img)
    m = re.search(r"Run completed in ([0-9.]+) seconds", out)
    if not m:
        sys.exit(f"bench/img.py: no timing from {tool}: {out}")
    return float(m.group(1))


def fresh_qcow2(path, size=GiB):
    if os.path.exists(path):
        os.unlink(path)
    sh("qemu-img", "create", "-f", "qcow2", path, size)


def alternate(runs, fn):
    """fn(tool) -> value; returns medians {tool: value}, tools alternating.
    Dirty pages of the previous run are written back first, so neither
    tool pays for the other's writeback."""
    vals = {"keel": [], "qemu": []}
    for i in range(runs):
        for t in (("keel", "qemu") if i % 2 == 0 else ("qemu", "keel")):
            os.sync()
            vals[t].append(fn(t))
    return {t: statistics.median(v) for t, v in vals.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--dir", default=os.environ.get("TMPDIR", "/var/tmp"))
    ap.add_argument("--quick", action="store_true", help="fewer runs and requests")
    a = ap.parse_args()
    keel = os.path.join(a.build, "src/img/keel-img")
    out = a.out or os.path.join(a.build, "bench", "img.json")
    if not os.access(keel, os.X_OK) or not shutil.which("qemu-img"):
        sys.exit("bench/img.py: needs build/src/img/keel-img and qemu-img (qemu-utils)")
    tools = {"keel": keel, "qemu": "qemu-img"}
    runs = 3 if a.quick else 5
    count = 20000 if a.quick else 50000
    scratch = os.path.join(a.dir, f"keel-bench-img-{os.getpid()}")
    os.makedirs(scratch)
    img = os.path.join(scratch, "b.qcow2")
    results = []

    def add(metric, unit, better, med):
        results.append({"metric": metric, "unit": unit, "better": better,
                        "keel": round(med["keel"], 3), "peers": {"qemu-img": round(med["qemu"], 3)}})
        print(f"{metric}: keel {med['keel']:.1f} {unit}, qemu-img {med['qemu']:.1f} {unit} "
              f"({(med['keel'] / med['qemu'] if better == 'higher' else med['qemu'] / med['keel']):.2f}x)",
              flush=True)

    try:
        common = ["-d", "32", "-i", "io_uring", "-t", "none"]

        def randwrite(t):
            fresh_qcow2(img)
            return count / bench_seconds(tools[t], img, "-w", "-c", count, "-s", "4k", "-S", STEP, *common)
        add("qcow2 4k random write, fresh thin image, QD32 O_DIRECT io_uring", "IOPS", "higher",
            alternate(runs, randwrite))

        fresh_qcow2(img)
        sh("qemu-img", "bench", "-w", "-c", GiB // 65536, "-s", "64k", *common, img)

        def randread(t):
            n = count * 2  # reads are short: more of them for a steadier figure
            return n / bench_seconds(tools[t], img, "-c", n, "-s", "4k", "-S", STEP, *common)
        add("qcow2 4k random read, filled image, QD32 O_DIRECT io_uring", "IOPS", "higher",
            alternate(runs, randread))

        def seqwrite(t):
            fresh_qcow2(img)
            n = GiB // 65536
            return n * 65536 / 1e6 / bench_seconds(tools[t], img, "-w", "-c", n, "-s", "64k", *common)
        add("qcow2 64k sequential write, fresh image, QD32 O_DIRECT io_uring", "MB/s", "higher",
            alternate(runs, seqwrite))

        src = os.path.join(scratch, "half.raw")
        with open(src, "wb") as f:
            f.truncate(2 * GiB)
            chunk = os.urandom(1 << 20)
            for off in range(0, 2 * GiB, 2 << 20):
                f.seek(off)
                f.write(chunk)
        dst = os.path.join(scratch, "conv.qcow2")
        back = os.path.join(scratch, "back.raw")

        def convert(t, *args):
            for p in (dst if args[-1] == dst else back,):
                if os.path.exists(p):
                    os.unlink(p)
            t0 = time.monotonic()
            sh(tools[t], "convert", *args)
            return time.monotonic() - t0
        sh("qemu-img", "convert", "-O", "qcow2", src, dst)  # warm the page cache
        # page-cache bound and noisy on a shared machine: more runs
        add("convert 2 GiB half-sparse raw to qcow2", "s", "lower",
            alternate(runs + 2, lambda t: convert(t, "-O", "qcow2", src, dst)))
        add("convert 2 GiB half-sparse qcow2 to raw", "s", "lower",
            alternate(runs + 2, lambda t: convert(t, "-f", "qcow2", "-O", "raw", dst, back)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
