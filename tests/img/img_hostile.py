#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Hostile qcow2 metadata (issue 4, "Safety"): each damaged image gets one
clear error naming the problem, and no crash."""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imgtest import keel, main, qemu, run, test, WORKLOAD  # noqa: E402


def fresh(d, name="h.qcow2", extra=()):
    p = os.path.join(d, name)
    keel("create", "-q", "-f", "qcow2", *extra, p, "64M")
    return p


def patch(path, off, fmt, val):
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(struct.pack(fmt, val))


def expect_open_error(path, msg, fmt="qcow2"):
    p = keel("info", "-f", fmt, path, check=False)
    assert p.returncode == 1, f"info succeeded on a hostile image:\n{p.stdout}"
    assert p.stderr.count("\n") == 1, f"not one line: {p.stderr!r}"
    assert msg in p.stderr, f"expected {msg!r} in {p.stderr!r}"
    assert "Sanitizer" not in p.stderr


HEADER_CASES = [
    # (name, offset, struct format, value, expected message)
    ("bad_magic", 0, ">I", 0x12345678, "not a qcow2 image (bad magic)"),
    ("version_4", 4, ">I", 4, "unsupported qcow2 version 4"),
    ("cluster_bits_8", 20, ">I", 8, "qcow2 cluster bits 8 out of range (9..21)"),
    ("cluster_bits_30", 20, ">I", 30, "qcow2 cluster bits 30 out of range (9..21)"),
    ("absurd_l1_size", 36, ">I", 0x10000000, "qcow2 L1 size 268435456 is absurd"),
    ("l1_too_small", 36, ">I", 0, "qcow2 L1 size 0 too small for the virtual size"),
    ("l1_unaligned", 40, ">Q", 0x30200, "L1 table offset 0x30200 is not cluster aligned"),
    ("l1_in_header", 40, ">Q", 0, "L1 table offset 0x0 is not cluster aligned or points into the header"),
    ("l1_past_eof", 40, ">Q", 1 << 40, "L1 table at 0x10000000000 runs past the end of the file"),
    ("reftable_past_eof", 48, ">Q", 1 << 40, "refcount table at 0x10000000000 runs past the end"),
    ("reftable_in_header", 48, ">Q", 0, "refcount table offset 0x0 is not cluster aligned or points into the header"),
    ("absurd_reftable", 56, ">I", 1 << 20, "refcount table of 1048576 clusters is absurd"),
    ("absurd_snapshots", 60, ">I", 1 << 20, "qcow2 snapshot count 1048576 is absurd"),
    ("encrypted", 32, ">I", 1, "encrypted qcow2 images are not supported"),
    ("extended_l2", 72, ">Q", 1 << 4, "qcow2 extended L2 entries (subclusters) are not supported"),
    ("data_file", 72, ">Q", 1 << 2, "qcow2 external data files are not supported"),
    ("unknown_incompat", 72, ">Q", 1 << 40, "qcow2 unknown incompatible features 0x10000000000"),
    ("refcount_order_7", 96, ">I", 7, "qcow2 refcount order 7 out of range (0..6)"),
    ("header_length", 100, ">I", 13, "qcow2 header length 13 is invalid"),
    ("absurd_size", 24, ">Q", 1 << 63, "qcow2 virtual size 9223372036854775808 is absurd"),
    ("backing_name_outside", 8, ">Q", 65530, "qcow2 backing file name at 0xfffa is outside the header cluster"),
]


def header_case(name, off, fmt, val, msg):
    def t(d):
        p = fresh(d)
        if name == "backing_name_outside":
            patch(p, 16, ">I", 100)
        patch(p, off, fmt, val)
        expect_open_error(p, msg)
    t.__name__ = "header_" + name
    return t


for c in HEADER_CASES:
    test(header_case(*c))


@test
def truncated_header(d):
    p = fresh(d)
    os.truncate(p, 50)
    expect_open_error(p, "truncated qcow2 header (50 bytes)")


@test
def probe_never_follows_a_raw_image_into_a_backing_file(d):
    # a raw disk whose guest wrote something qcow2-like is still raw unless
    # the operator says qcow2; the probe only takes real qcow2 headers
    p = os.path.join(d, "guest.raw")
    with open(p, "wb") as f:
        f.write(b"QFI\xfb" + b"\0\0\0\x09" + b"\0" * 1000)
        f.truncate(1 << 20)
    out = keel("info", p).stdout
    assert "file format: raw" in out, out


@test
def backing_name_longer_than_a_cluster(d):
    # found by fuzz_qcow2: with 512-byte clusters, a 768-byte name made the
    # bounds check wrap around
    p = fresh(d, extra=("-o", "cluster_size=512"))
    patch(p, 8, ">Q", 0xff00000000000001)
    patch(p, 16, ">I", 768)
    expect_open_error(p, "qcow2 backing file name at 0xff00000000000001 is outside the header cluster")


@test
def l1_entry_past_eof_and_into_header(d):
    p = fresh(d)
    qemu("resize", p, "64M")
    with open(p, "rb") as f:
        l1 = struct.unpack(">Q", f.read(48)[40:48])[0]
    patch(p, l1, ">Q", (1 << 63) | (1 << 40))
    expect_open_error(p, "qcow2 L1 entry 0 points to 0x10000000000, past the end of the file")
    patch(p, l1, ">Q", 1 << 63)
    expect_open_error(p, "qcow2 L1 entry 0 points into the header")
    patch(p, l1, ">Q", (1 << 63) | 0x10200)
    expect_open_error(p, "qcow2 L1 entry 0 points to 0x10200, not cluster aligned")


@test
def reftable_entry_past_eof(d):
    p = fresh(d)
    patch(p, 0x10000 + 8, ">Q", 1 << 40)
    expect_open_error(p, "qcow2 refcount table entry 1 points to 0x10000000000, past the end of the file")


@test
def l2_entry_past_eof_fails_the_read_not_the_process(d):
    p = fresh(d)
    run("qemu-io", "-c", "write 0 64k", p)
    with open(p, "rb") as f:
        l1 = struct.unpack(">Q", f.read(48)[40:48])[0]
        f.seek(l1)
        l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
    patch(p, l2, ">Q", (1 << 63) | (1 << 40))
    r = keel("convert", "-O", "raw", p, os.path.join(d, "o.raw"), check=False)
    assert r.returncode == 1, r
    assert "a data cluster at 0x10000000000 points past the end of the file" in r.stderr, r.stderr
    assert "Sanitizer" not in r.stderr
    patch(p, l2, ">Q", (1 << 63) | 0x200)
    r = keel("convert", "-O", "raw", p, os.path.join(d, "o.raw"), check=False)
    assert r.returncode == 1 and "not cluster aligned" in r.stderr, r.stderr


@test
def backing_chain_loop(d):
    a, b = os.path.join(d, "a.qcow2"), os.path.join(d, "b.qcow2")
    keel("create", "-q", "-f", "qcow2", a, "1M")
    keel("create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", b)
    keel("rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", a)
    p = keel("info", "--backing-chain", b, check=False)
    assert p.returncode == 1 and "backing chain loops back to" in p.stderr, p.stderr
    keel("rebase", "-u", "-b", "a.qcow2", "-F", "qcow2", a)
    p = keel("info", "--backing-chain", a, check=False)
    assert p.returncode == 1 and "loops back to" in p.stderr, p.stderr


@test
def refcount_overflow(d):
    p = fresh(d, extra=("-o", "refcount_bits=1"))
    run("qemu-io", "-c", "write 0 128k", p)
    r = keel("snapshot", "-c", "s", p, check=False)
    assert r.returncode == 1 and "refcount overflow" in r.stderr, r.stderr
    assert qemu("check", p, check=False).returncode in (0, 3)


@test
def missing_backing_file(d):
    p = fresh(d)
    keel("rebase", "-u", "-b", "gone.raw", "-F", "raw", p)
    r = keel("info", "--backing-chain", p, check=False)
    assert r.returncode == 1 and "gone.raw: cannot open: No such file or directory" in r.stderr


sys.exit(main())
