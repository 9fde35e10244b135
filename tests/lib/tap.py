# SPDX-License-Identifier: Apache-2.0
"""A tiny TAP producer for the black-box tests written in Python."""
import re
import subprocess
import sys
import traceback

_tests = []


def test(fn):
    """Registers a test function; its name is the test's name."""
    _tests.append(fn)
    return fn


class Failure(Exception):
    pass


class Skip(Exception):
    """The test cannot run on this machine (reported as a TAP SKIP, not a pass)."""


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def run(cmd, timeout=60, stdin=subprocess.DEVNULL, env=None, input=None):
    """Runs cmd, returns (exit code, stdout, stderr) as text."""
    p = subprocess.run(cmd, stdin=None if input is not None else stdin,
                       input=input, capture_output=True, text=True,
                       timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def expect_error(cmd, pattern, code=1, env=None, timeout=60):
    """cmd must exit with `code` and print exactly one stderr line matching pattern."""
    rc, out, err = run(cmd, env=env, timeout=timeout)
    lines = [l for l in err.splitlines() if l.strip()]
    check(rc == code, f"exit code {rc}, expected {code}; stderr: {err!r}")
    check(len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {err!r}")
    check(re.fullmatch(pattern, lines[0]) is not None,
          f"stderr {lines[0]!r} does not match {pattern!r}")


def main():
    only = sys.argv[1:] or None
    selected = [t for t in _tests if not only or t.__name__ in only]
    print(f"1..{len(selected)}", flush=True)
    failed = 0
    for i, t in enumerate(selected, 1):
        try:
            t()
            print(f"ok {i} - {t.__name__}", flush=True)
        except Skip as e:
            print(f"ok {i} - {t.__name__} # SKIP {e}", flush=True)
        except Exception as e:  # every failure, including timeouts, is a test failure
            failed += 1
            for line in (str(e) or traceback.format_exc()).splitlines():
                print(f"# {line}")
            print(f"not ok {i} - {t.__name__}", flush=True)
    sys.exit(1 if failed else 0)
