#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Compatibility with qemu-img in both directions (issue 4, "What must be
shown"): images qemu-img makes read back identical through keel-img; images
keel-img and the block layer write pass qemu-img check and compare; and
qemu-img info agrees with what keel-img created."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from imgtest import (keel, main, qemu, qemu_check_clean, qemu_io, random_file, run,  # noqa: E402
                     same_file, test, WORKLOAD)

MB = 1 << 20


def j(*p):
    return os.path.join(*p)


@test
def qemu_compressed_zlib_and_zstd_read_back(d):
    random_file(j(d, "ref.raw"), 24 * MB, 1)
    for ctype in ("zlib", "zstd"):
        img = j(d, f"c-{ctype}.qcow2")
        qemu("convert", "-c", "-O", "qcow2", "-o", f"compression_type={ctype}",
             j(d, "ref.raw"), img)
        assert "compressed" in qemu("check", "--output=json", img).stdout
        keel("convert", "-O", "raw", img, j(d, "out.raw"))
        assert same_file(j(d, "ref.raw"), j(d, "out.raw")), ctype


@test
def qemu_backing_chain_reads_back(d):
    random_file(j(d, "base.raw"), 16 * MB, 2)
    qemu("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", j(d, "mid.qcow2"))
    qemu_io(j(d, "mid.qcow2"), "write -P 0x11 1M 3M", "write -z 8M 1M", "discard 12M 64k")
    qemu("create", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", j(d, "top.qcow2"))
    qemu_io(j(d, "top.qcow2"), "write -P 0x22 2M 100k", "write -P 0x33 15M 1M")
    qemu("convert", "-O", "raw", j(d, "top.qcow2"), j(d, "ref.raw"))
    keel("convert", "-O", "raw", j(d, "top.qcow2"), j(d, "out.raw"))
    assert same_file(j(d, "ref.raw"), j(d, "out.raw"))
    # and the map agrees with qemu-img's
    km = json.loads(keel("map", "--output=json", j(d, "top.qcow2")).stdout)
    qm = json.loads(qemu("map", "--output=json", j(d, "top.qcow2")).stdout)
    strip = lambda m: [(e["start"], e["length"], e["depth"], e["zero"], e["data"]) for e in m]  # noqa
    assert strip(km) == strip(qm), (km, qm)


@test
def qemu_internal_snapshots_read_back(d):
    img = j(d, "s.qcow2")
    qemu("create", "-f", "qcow2", img, "8M")
    qemu_io(img, "write -P 0x41 0 2M")
    qemu("snapshot", "-c", "one", img)
    qemu("convert", "-O", "raw", img, j(d, "one.raw"))
    qemu_io(img, "write -P 0x42 1M 2M", "discard 0 64k")
    qemu("snapshot", "-c", "two", img)
    qemu("convert", "-O", "raw", img, j(d, "two.raw"))
    qemu_io(img, "write -P 0x43 4M 1M")
    lst = keel("snapshot", "-l", img).stdout
    assert "one" in lst and "two" in lst, lst
    keel("snapshot", "-a", "one", img)
    keel("convert", "-O", "raw", img, j(d, "out.raw"))
    assert same_file(j(d, "one.raw"), j(d, "out.raw"))
    qemu_check_clean(img)
    keel("snapshot", "-a", "two", img)
    keel("convert", "-O", "raw", img, j(d, "out.raw"))
    assert same_file(j(d, "two.raw"), j(d, "out.raw"))
    keel("snapshot", "-d", "one", img)
    qemu_check_clean(img)
    assert "one" not in qemu("snapshot", "-l", img).stdout


def mirror(d, img, ref, seed, ops, aio="io_uring", cache="writeback"):
    p = run(WORKLOAD, "mirror", img, ref, seed, ops, aio, cache, check=False)
    assert p.returncode == 0, p.stderr


@test
def keel_workloads_pass_qemu_check_and_compare(d):
    for n, (aio, cache) in enumerate([("io_uring", "none"), ("threads", "writeback"),
                                      ("sync", "writethrough"), ("io_uring", "unsafe")]):
        img, ref = j(d, f"w{n}.qcow2"), j(d, f"w{n}.raw")
        keel("create", "-q", "-f", "qcow2", img, "64M")
        open(ref, "wb").truncate(64 * MB)
        mirror(d, img, ref, 100 + n, 3000, aio, cache)
        qemu_check_clean(img)
        qemu("compare", "-f", "qcow2", "-F", "raw", img, ref)


@test
def keel_workload_over_backing_file(d):
    random_file(j(d, "base.raw"), 32 * MB, 3)
    keel("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", j(d, "o.qcow2"))
    run("cp", "--sparse=always", j(d, "base.raw"), j(d, "ref.raw"))
    mirror(d, j(d, "o.qcow2"), j(d, "ref.raw"), 7, 3000)
    qemu_check_clean(j(d, "o.qcow2"))
    qemu("compare", "-f", "qcow2", "-F", "raw", j(d, "o.qcow2"), j(d, "ref.raw"))
    # base unchanged: the linked clone wrote only to its overlay
    random_file(j(d, "base2.raw"), 32 * MB, 3)
    assert same_file(j(d, "base.raw"), j(d, "base2.raw"))


@test
def keel_workload_on_qemu_compressed_image(d):
    random_file(j(d, "ref.raw"), 16 * MB, 4)
    qemu("convert", "-c", "-O", "qcow2", j(d, "ref.raw"), j(d, "c.qcow2"))
    mirror(d, j(d, "c.qcow2"), j(d, "ref.raw"), 8, 2000)
    qemu_check_clean(j(d, "c.qcow2"))
    qemu("compare", "-f", "qcow2", "-F", "raw", j(d, "c.qcow2"), j(d, "ref.raw"))


@test
def keel_snapshots_seen_by_qemu(d):
    img = j(d, "s.qcow2")
    keel("create", "-q", "-f", "qcow2", img, "16M")
    open(j(d, "ref.raw"), "wb").truncate(16 * MB)
    mirror(d, img, j(d, "ref.raw"), 9, 500)
    keel("snapshot", "-c", "first", img)
    run("cp", j(d, "ref.raw"), j(d, "first.raw"))
    mirror(d, img, j(d, "ref.raw"), 10, 500)  # copy-on-write of shared clusters
    qemu_check_clean(img)
    qemu("compare", "-f", "qcow2", "-F", "raw", img, j(d, "ref.raw"))
    info = json.loads(qemu("info", "--output=json", img).stdout)
    assert [s["name"] for s in info["snapshots"]] == ["first"], info
    qemu("snapshot", "-a", "first", img)  # qemu applies ours
    qemu("compare", "-f", "qcow2", "-F", "raw", img, j(d, "first.raw"))
    keel("snapshot", "-d", "first", img)
    qemu_check_clean(img)


@test
def qemu_info_agrees_with_keel_create(d):
    keel("create", "-q", "-f", "raw", j(d, "b.raw"), "10M")
    keel("create", "-q", "-f", "qcow2", "-b", "b.raw", "-F", "raw", j(d, "o.qcow2"))
    qi = json.loads(qemu("info", "--output=json", j(d, "o.qcow2")).stdout)
    assert qi["virtual-size"] == 10 * MB and qi["backing-filename"] == "b.raw", qi
    assert qi["backing-filename-format"] == "raw" and qi["cluster-size"] == 65536, qi
    ki = json.loads(keel("info", "--output=json", j(d, "o.qcow2")).stdout)
    for k in ("virtual-size", "backing-filename", "backing-filename-format", "cluster-size",
              "format", "format-specific"):
        assert ki[k] == qi[k], (k, ki[k], qi[k])
    keel("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096,refcount_bits=8",
         j(d, "small.qcow2"), "3G")
    qi = json.loads(qemu("info", "--output=json", j(d, "small.qcow2")).stdout)
    assert qi["cluster-size"] == 4096 and qi["virtual-size"] == 3 << 30, qi
    assert qi["format-specific"]["data"]["refcount-bits"] == 8, qi
    qemu_check_clean(j(d, "small.qcow2"))


@test
def keel_check_matches_qemu_on_leaks_and_corruption(d):
    img = j(d, "l.qcow2")
    qemu("create", "-f", "qcow2", img, "8M")
    qemu_io(img, "write 0 1M")
    # a leak: the file grows by a cluster nothing references, counted 1
    leak = (os.path.getsize(img) + 65535) // 65536
    os.truncate(img, (leak + 1) * 65536)
    with open(img, "r+b") as f:
        hdr = f.read(64)
        rt = int.from_bytes(hdr[48:56], "big")
        f.seek(rt)
        rb = int.from_bytes(f.read(8), "big")
        f.seek(rb + leak * 2)
        f.write((1).to_bytes(2, "big"))
    assert qemu("check", img, check=False).returncode == 3
    p = keel("check", img, check=False)
    assert p.returncode == 3 and "1 leaked clusters were found" in p.stdout, p.stdout
    assert f"Leaked cluster {leak} refcount=1 reference=0" in p.stderr, p.stderr
    p = keel("check", "-r", "leaks", img, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    qemu_check_clean(img)
    # a corruption: a data cluster's refcount dropped to 0
    with open(img, "r+b") as f:
        f.seek(rb + 5 * 2)
        f.write((0).to_bytes(2, "big"))
    assert qemu("check", img, check=False).returncode == 2
    p = keel("check", img, check=False)
    assert p.returncode == 2 and "errors were found on the image" in p.stdout, p.stdout
    p = keel("check", "-r", "all", img, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    qemu_check_clean(img)
    assert keel("check", "--output=json", img).stdout.count('"check-errors": 0') == 1
    p = keel("check", j(d, "x"), check=False)
    assert p.returncode == 1
    open(j(d, "r.raw"), "wb").truncate(MB)
    p = keel("check", j(d, "r.raw"), check=False)
    assert p.returncode == 63 and "does not support checks" in p.stderr


@test
def convert_commit_rebase_resize(d):
    random_file(j(d, "src.raw"), 2 * 16 * MB, 5)
    keel("convert", "-O", "qcow2", j(d, "src.raw"), j(d, "a.qcow2"))
    qemu_check_clean(j(d, "a.qcow2"))
    qemu("compare", j(d, "src.raw"), j(d, "a.qcow2"))
    # thin: holes of the raw file stay unallocated
    assert int(json.loads(qemu("info", "--output=json", j(d, "a.qcow2")).stdout)["actual-size"]) < 28 * MB
    keel("create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", j(d, "top.qcow2"))
    qemu_io(j(d, "top.qcow2"), "write -P 0x5a 3M 1M")
    qemu("convert", "-O", "raw", j(d, "top.qcow2"), j(d, "want.raw"))
    keel("commit", "-q", j(d, "top.qcow2"))
    qemu_check_clean(j(d, "a.qcow2"))
    qemu("compare", j(d, "want.raw"), j(d, "a.qcow2"))
    qemu("compare", j(d, "want.raw"), j(d, "top.qcow2"))
    # rebase top onto nothing: it must still show the same disk
    keel("rebase", "-b", "", j(d, "top.qcow2"))
    qemu_check_clean(j(d, "top.qcow2"))
    assert "backing" not in qemu("info", j(d, "top.qcow2")).stdout
    qemu("compare", j(d, "want.raw"), j(d, "top.qcow2"))
    keel("resize", j(d, "top.qcow2"), "+1G")
    qi = json.loads(qemu("info", "--output=json", j(d, "top.qcow2")).stdout)
    assert qi["virtual-size"] == 32 * MB + (1 << 30), qi
    qemu_check_clean(j(d, "top.qcow2"))
    p = keel("resize", j(d, "top.qcow2"), "16M", check=False)
    assert p.returncode == 1 and "--shrink" in p.stderr
    keel("resize", "--shrink", j(d, "top.qcow2"), "16M")
    qemu_check_clean(j(d, "top.qcow2"))
    qemu("compare", "-f", "qcow2", "-F", "raw", j(d, "top.qcow2"), j(d, "want.raw"), check=False)


@test
def convert_into_an_overlay_keeps_zeroes_over_the_backing_file(d):
    random_file(j(d, "base.raw"), 8 * MB, 6, holes=False)
    qemu("create", "-f", "qcow2", "-b", "base.raw", "-F", "raw", j(d, "top.qcow2"))
    qemu_io(j(d, "top.qcow2"), "write -P 2 1M 1M", "write -z 4M 64k", "write -P 0 6M 64k")
    keel("convert", "-O", "qcow2", "-B", "base.raw", "-F", "raw", j(d, "top.qcow2"), j(d, "out.qcow2"))
    qemu_check_clean(j(d, "out.qcow2"))
    qemu("compare", j(d, "top.qcow2"), j(d, "out.qcow2"))
    # only what the top held was copied
    assert int(json.loads(qemu("info", "--output=json", j(d, "out.qcow2")).stdout)["actual-size"]) < 2 * MB


@test
def every_subcommand_has_help(d):
    for c in ("create", "info", "check", "convert", "resize", "snapshot", "commit", "rebase",
              "map", "bench"):
        p = keel(c, "--help")
        assert p.stdout.startswith(f"usage: keel-img {c}"), p.stdout
    assert keel("bogus", check=False).returncode == 1


sys.exit(main())
