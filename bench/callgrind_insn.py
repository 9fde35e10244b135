#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Instructions per 4 KiB virtio-blk request, counted by valgrind's callgrind,
for machines where the CPU's instruction counter cannot be read (a VM without
a virtual PMU, perf_event_paranoid): bench_virtio writes the metric itself
when it can. Runs `bench_virtio --blk-requests N` under callgrind for two
values of N and divides the difference of the total instruction counts
(Ir) by the difference of N, so start-up and teardown cancel out. Writes
build/bench/virtio_blk_native_insn_per_4k_request.json in make bench's format."""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METRIC = "virtio_blk_native_insn_per_4k_request"


def total_ir(exe, requests, workdir):
    """The Ir total of one callgrind run of bench_virtio."""
    out = os.path.join(workdir, f"callgrind.{requests}")
    # Only what runs inside the event loop's dispatch counts: the device
    # (kick, virtqueue, block layer, interrupt), not the test's mini driver.
    r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        "--toggle-collect=event_loop_run_once",
                        exe, "--blk-requests", str(requests)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        last = r.stderr.strip().splitlines()[-1:] or ["no message"]
        raise RuntimeError(f"callgrind run with {requests} requests failed: {last[0]}")
    with open(out) as f:
        for line in f:
            m = re.match(r"(?:summary|totals):\s+(\d+)", line)
            if m:
                return int(m.group(1))
    raise RuntimeError(f"no instruction total in {out}")


def counted_by_cpu(path):
    """Whether bench_virtio wrote the metric from the hardware counter (its
    objects have no "where"; ours say callgrind, and are counted again)."""
    try:
        with open(path) as f:
            return "where" not in json.load(f)
    except (OSError, ValueError):
        return False


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench"),
                    help="directory for the JSON file (default build/bench)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"),
                    help="the build directory holding tests/devices/bench_virtio (default build)")
    ap.add_argument("--small", type=int, default=1024, help="requests in the first run")
    ap.add_argument("--large", type=int, default=4096, help="requests in the second run")
    ap.add_argument("--force", action="store_true",
                    help="count even when the hardware counter already gave the figure")
    args = ap.parse_args(argv)
    path = os.path.join(args.out, METRIC + ".json")
    if counted_by_cpu(path) and not args.force:
        print(f"callgrind_insn: {METRIC} came from the CPU's counter: skipped")
        return 0
    exe = os.path.join(args.build, "tests", "devices", "bench_virtio")
    if not os.access(exe, os.X_OK):
        print(f"callgrind_insn: {exe} is not built: skipped")
        return 0
    if not shutil.which("valgrind"):
        print("callgrind_insn: valgrind is not installed (scripts/deps bench): skipped",
              file=sys.stderr)
        return 1
    if args.large <= args.small:
        print("callgrind_insn: --large must exceed --small", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="keel-callgrind-") as tmp:
        try:
            small = total_ir(exe, args.small, tmp)
            large = total_ir(exe, args.large, tmp)
        except RuntimeError as e:
            print(f"callgrind_insn: {e}", file=sys.stderr)
            return 1
    per_request = (large - small) / (args.large - args.small)
    obj = {"metric": METRIC, "unit": "instructions", "better": "lower",
           "keel": round(per_request, 1), "peers": {},
           "description": "user-space instructions of the device per 4 KiB virtio-blk read "
                          "(synchronous engine, RAM-backed image, QD32, EVENT_IDX): callgrind "
                          "Ir inside the event loop's dispatch (not the test's driver), "
                          f"{args.large} less {args.small} requests",
           "where": "native, valgrind callgrind"}
    os.makedirs(args.out, exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    print(f"callgrind_insn: {per_request:.1f} instructions per request")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
