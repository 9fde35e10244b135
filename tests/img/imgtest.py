# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for the img suite: TAP output, a scratch directory, and
running keel-img / qemu-img / the workload driver."""
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

KEEL_IMG = sys.argv[1]
WORKLOAD = sys.argv[2]
_tests = []


def test(fn):
    _tests.append(fn)
    return fn


def run(*args, check=True, **kw):
    """Runs a command; returns CompletedProcess (text). Fails loudly."""
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {p.returncode}\n"
                             f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def keel(*args, **kw):
    return run(KEEL_IMG, *args, **kw)


def qemu(*args, **kw):
    return run("qemu-img", *args, **kw)


def qemu_io(img, *cmds, fmt="qcow2"):
    args = ["qemu-io", "-f", fmt]
    for c in cmds:
        args += ["-c", c]
    return run(*args, img)


def random_file(path, size, seed, holes=True):
    """A raw file of `size` bytes in 64 KiB blocks: some holes, some random
    bytes, some compressible text (so qemu-img convert -c compresses it)."""
    import random
    r = random.Random(seed)
    words = [bytes(r.choice(b"abcdefgh") for _ in range(r.randint(2, 9))) for _ in range(50)]
    with open(path, "wb") as f:
        f.truncate(size)
        for off in range(0, size, 65536):
            x = r.random()
            if holes and x < 0.35:
                continue
            n = min(65536, size - off)
            if x < 0.7:
                data = b" ".join(r.choice(words) for _ in range(n // 3))[:n]
                data += b"." * (n - len(data))
            else:
                data = r.randbytes(n)
            f.seek(off)
            f.write(data)


def same_file(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def qemu_check_clean(img, allow_leaks=False):
    p = qemu("check", img, check=False)
    ok = p.returncode == 0 or (allow_leaks and p.returncode == 3)
    assert ok, f"qemu-img check {img}: exit {p.returncode}\n{p.stdout}{p.stderr}"
    return p


def main():
    if not shutil.which("qemu-img"):
        print("1..0 # SKIP qemu-img (qemu-utils) is not installed")
        return 0
    print(f"1..{len(_tests)}", flush=True)
    failed = 0
    for i, fn in enumerate(_tests, 1):
        d = tempfile.mkdtemp(prefix="keel-img-", dir=os.environ.get("TMPDIR", "/var/tmp"))
        try:
            fn(d)
            print(f"ok {i} - {fn.__name__}", flush=True)
        except Exception:
            failed += 1
            for line in traceback.format_exc().splitlines():
                print(f"# {line}")
            print(f"not ok {i} - {fn.__name__}", flush=True)
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return 1 if failed else 0
