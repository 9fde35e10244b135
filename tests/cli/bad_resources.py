#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Every resource-control flag keel-vmm must refuse (docs/resources.md):
one stderr line naming what is wrong, exit status 1. Impossible NUMA
layouts, pins to CPUs or vCPUs that do not exist, limits that are negative
or absurd, memory options that do not go together, and a host with too few
huge pages.

Environment: KEEL_VMM (the binary), KEEL_MINIGUEST (a valid bzImage).
"""
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import tap  # noqa: E402
from tap import expect_error, test  # noqa: E402

VMM = os.environ["KEEL_VMM"]
KERNEL = os.environ["KEEL_MINIGUEST"]
E = r"keel-vmm: error: "


def vmm(*args):
    return [VMM, "--kernel", KERNEL, *args]


def refuses(args, message):
    expect_error(vmm(*args), E + re.escape(message))


def host_cpus():
    return open("/sys/devices/system/cpu/online").read().strip()


def host_nodes():
    return open("/sys/devices/system/node/online").read().strip()


@test
def pins_to_cpus_that_do_not_exist():
    refuses(["--pin", "vcpu0=99"], f"--pin vcpu0: host CPU 99 does not exist (this host has CPUs {host_cpus()})")
    refuses(["--pin", "io=0,99"], f"--pin io: host CPU 99 does not exist (this host has CPUs {host_cpus()})")
    refuses(["--cpus", "2", "--pin", "vcpus=98"],
            f"--pin vcpus: host CPU 98 does not exist (this host has CPUs {host_cpus()})")
    refuses(["--cpus", "2", "--pin", "vcpu1=0,97-98"],
            f"--pin vcpu1: host CPU 97 does not exist (this host has CPUs {host_cpus()})")
    refuses(["--pin", "io=5000"],
            f"--pin io: host CPU list '5000' goes beyond any host (this host has CPUs {host_cpus()})")
    refuses(["--cpus", "2", "--pin", "vcpu2=0"], "--pin vcpu2: the VM has 2 vCPUs (vcpu0 to vcpu1)")
    refuses(["--pin", "disk0=1"], "--pin 'disk0=1': 'disk0' is not vcpuN, vcpus or io")
    refuses(["--pin", "vcpu-1=1"], "--pin 'vcpu-1=1': 'vcpu-1' is not vcpuN, vcpus or io")
    refuses(["--pin", "io=a"], "--pin io: 'a' is not a list of host CPUs like 2 or 0-3,8")
    refuses(["--pin", "io=3-1"], "--pin io: '3-1' is not a list of host CPUs like 2 or 0-3,8")
    refuses(["--pin", "io"], "--pin 'io': give WHAT=CPUS, WHAT being vcpuN, vcpus or io")


@test
def impossible_numa_layouts():
    two = ["--cpus", "2", "--memory", "256M"]
    refuses(two + ["--numa", "cpus=0,memory=128M", "--numa", "cpus=1,memory=64M"],
            "--numa: the nodes' memory adds up to 192 MiB; --memory is 256 MiB")
    refuses(["--cpus", "3", "--memory", "256M", "--numa", "cpus=0,memory=128M", "--numa",
             "cpus=1-2,memory=128M"],
            "--numa: node 1 has 2 vCPUs and node 0 has 1; every node needs as many (each node is "
            "one socket)")
    refuses(two + ["--numa", "cpus=1,memory=128M", "--numa", "cpus=0,memory=128M"],
            "--numa node 0: vCPU 0 is in no node (nodes take the vCPUs in order, each one block, "
            "node 0 from vCPU 0)")
    # A vCPU in two nodes, and vCPUs in none between two nodes.
    refuses(two + ["--numa", "cpus=0-1,memory=128M", "--numa", "cpus=1,memory=128M"],
            "--numa node 1: vCPU 1 is already in node 0 (a vCPU belongs to one node; nodes take "
            "the vCPUs in order, each one block)")
    refuses(["--cpus", "4", "--memory", "256M", "--numa", "cpus=0-1,memory=128M", "--numa",
             "cpus=0-1,memory=128M"],
            "--numa node 1: vCPU 0 is already in node 0 (a vCPU belongs to one node; nodes take "
            "the vCPUs in order, each one block)")
    refuses(["--cpus", "3", "--memory", "256M", "--numa", "cpus=0,memory=128M", "--numa",
             "cpus=2,memory=128M"],
            "--numa node 1: vCPU 1 is in no node (nodes take the vCPUs in order, each one block, "
            "node 0 from vCPU 0)")
    refuses(["--cpus", "6", "--memory", "256M", "--numa", "cpus=0,memory=128M", "--numa",
             "cpus=3,memory=128M"],
            "--numa node 1: vCPUs 1-2 are in no node (nodes take the vCPUs in order, each one "
            "block, node 0 from vCPU 0)")
    refuses(two + ["--numa", "cpus=0,memory=512M", "--numa", "cpus=1,memory=128M"],
            "--numa: the nodes' memory adds up to 640 MiB; --memory is 256 MiB")
    refuses(two + ["--numa", "cpus=0-2,memory=256M"],
            "--numa node 0: cpus 0-2 is beyond the VM's 2 vCPUs (0-1)")
    refuses(["--cpus", "4", "--memory", "256M", "--numa", "cpus=0-1,memory=256M"],
            "--numa: the nodes have vCPUs 0-1; the VM has 4 (every vCPU needs a node)")
    refuses(two + ["--numa", "cpus=0,memory=16M", "--numa", "cpus=1,memory=240M"],
            "--numa node 0: memory 16 MiB must be at least 32 MiB and a multiple of 2 MiB")
    refuses(two + ["--numa", "cpus=0,memory=127M", "--numa", "cpus=1,memory=129M"],
            "--numa node 0: memory 127 MiB must be at least 32 MiB and a multiple of 2 MiB")
    refuses(two + ["--numa", "cpus=0,memory=128M,distances=20:10", "--numa", "cpus=1,memory=128M"],
            "--numa node 0: distances needs 2 values: 10 for node 0 itself, 11 to 254 for the "
            "others")
    refuses(two + ["--numa", "cpus=0,memory=128M,distances=10:20:20", "--numa", "cpus=1,memory=128M"],
            "--numa node 0: distances needs 2 values: 10 for node 0 itself, 11 to 254 for the "
            "others")
    refuses(["--numa", "cpus=0,memory=512M,distances=10:300"],
            "--numa node 0: distances '10:300' is not a list of 10 to 254 like 10:20")
    refuses(["--numa", "cpus=0,memory=512M,policy=interleave"],
            "--numa node 0: policy=interleave needs host-nodes=")
    refuses(["--numa", "cpus=0,memory=512M,host-nodes=0-1,policy=preferred"],
            "--numa node 0: policy=preferred takes one host node")
    refuses(["--numa", "cpus=0,memory=512M,policy=spread"],
            "--numa node 0: policy 'spread' is not bind, preferred or interleave")
    refuses(["--numa", "cpus=0"], "--numa node 0: give cpus= and memory=")
    refuses(["--numa", "cpus=0,memory=512M,socket=1"],
            "--numa: unknown key 'socket' (cpus, memory, host-nodes, policy, distances)")
    refuses(["--numa", "cpus=0,memory=-512M"],
            "--numa node 0: memory '-512M' is not a size (examples: 512M, 2G)")
    refuses(["--numa", "cpus=0,memory=512M,host-nodes=63"],
            f"--numa node 0: host node 63 does not exist (this host has nodes {host_nodes()})")
    refuses(two + ["--numa", "cpus=0,memory=128M,host-nodes=0", "--numa",
                   "cpus=1,memory=128M,host-nodes=62"],
            f"--numa node 1: host node 62 does not exist (this host has nodes {host_nodes()})")
    refuses(["--numa", "cpus=0,memory=512M,host-nodes=64"],
            "--numa node 0: host-nodes '64' is not below 64")


@test
def disk_limits_negative_or_absurd():
    img = tempfile.NamedTemporaryFile(suffix=".img")
    d = f"path={img.name}"
    refuses(["--disk", d + ",iops=-5"], "--disk: iops -5: a limit cannot be negative")
    refuses(["--disk", d + ",bw-wr=-1M"], "--disk: bw-wr -1M: a limit cannot be negative")
    refuses(["--disk", d + ",iops=99999999"],
            "--disk: iops 99999999 is absurd: at most 10000000 per second")
    refuses(["--disk", d + ",bw=1T,bw-burst=2T"],
            "--disk: bw-burst 2199023255552 is absurd: at most 1099511627776 bytes")
    refuses(["--disk", d + ",iops=500,iops-peak=100"],
            "--disk: iops-peak 100 is below iops 500 (the peak is the fastest rate, the average "
            "the long-run one)")
    refuses(["--disk", d + ",iops-rd-burst=10"], "--disk: iops-rd-burst needs iops-rd (the average) as well")
    refuses(["--disk", d + ",group=db"], f"--disk {img.name}: group 'db' is not a --disk-group")
    refuses(["--disk-group", "name=db", "--disk-group", "name=db,iops=5"],
            "--disk-group: name 'db' given twice")
    refuses(["--disk-group", "iops=5"], "--disk-group: name=NAME is required")
    refuses(["--disk-group", "name=a/b"], "--disk-group: name 'a/b': use 1 to 31 letters, digits, '.', '_' or '-'")
    refuses(["--disk-group", "name=db,iops=-1"], "--disk-group: iops -1: a limit cannot be negative")
    refuses(["--disk-group", "name=db,iops-wr=-3"], "--disk-group: iops-wr -3: a limit cannot be negative")
    refuses(["--disk-group", "name=db,bw=5T"],
            "--disk-group: bw 5497558138880 is absurd: at most 1099511627776 bytes per second")
    refuses(["--disk", d + ",bw=-0"], "--disk: bw -0: a limit cannot be negative")
    refuses(["--disk", d + ",bw-rd=2T"],
            "--disk: bw-rd 2199023255552 is absurd: at most 1099511627776 bytes per second")
    refuses(["--disk", d + ",iops=10,iops-peak=20000000"],
            "--disk: iops-peak 20000000 is absurd: at most 10000000 per second")
    # Beyond 64 bits: named as written, not as a clamped number.
    refuses(["--disk", d + ",iops=99999999999999999999999"],
            "--disk: iops 99999999999999999999999 is absurd: at most 10000000 per second")
    refuses(["--disk", d + ",bw=99999999999999999999G"],
            "--disk: bw 99999999999999999999G is absurd: at most 1099511627776 bytes per second")
    refuses(["--disk", d + ",iops=1.5"], "--disk: iops '1.5' is not a whole number of operations")
    refuses(["--disk", d + ",bw=abc"], "--disk: bw 'abc' is not a number of bytes (examples: 500K, 10M)")


@test
def nic_shaping_negative_or_absurd():
    refuses(["--net", "tap=kq0,tx-average=-50M"], "--net: tx-average -50M: a limit cannot be negative")
    refuses(["--net", "tap=kq0,rx-average=2000G"],
            "--net: rx-average 2000000000000 is absurd: at most 1000000000000 bit/s")
    refuses(["--net", "tap=kq0,tx-average=50M,tx-peak=10M"],
            "--net: tx-peak 10000000 is below tx-average 50000000 (bit/s)")
    refuses(["--net", "tap=kq0,rx-burst=1M"], "--net: rx-burst needs rx-average as well")
    refuses(["--net", "tap=kq0,tx-average=fast"],
            "--net: tx-average 'fast' is not a rate in bit/s (examples: 500k, 50M, 1G)")
    refuses(["--net", "tap=kq0,tx-average=50M,tx-burst=-1"], "--net: tx-burst -1: a limit cannot be negative")
    refuses(["--net", "tap=kq0,rx-average=50M,rx-peak=-1"], "--net: rx-peak -1: a limit cannot be negative")
    refuses(["--net", "tap=kq0,tx-average=50M,tx-burst=100G"],
            "--net: tx-burst 107374182400 is absurd: at most 68719476736 bytes")
    refuses(["--net", "tap=kq0,tx-average=99999999999999999999999"],
            "--net: tx-average 99999999999999999999999 is absurd: at most 1000000000000 bit/s")
    refuses(["--net", "tap=kq0,tx-average=0,tx-peak=5M"], "--net: tx-peak needs tx-average as well")


@test
def runtime_limits_negative_or_absurd():
    """keel-vmm ctl checks limits before it asks the VM: exit 2, one line."""
    sock = "/nonexistent/keel-qos.sock"

    def ctl_refuses(args, message):
        expect_error([VMM, "ctl", sock, *args],
                     r"keel-vmm ctl: " + re.escape(message) + r" \(see keel-vmm ctl --help\)", code=2)

    ctl_refuses(["qos-disk", "0", "iops=-5"], "qos-disk: iops -5: a limit cannot be negative")
    ctl_refuses(["qos-disk", "0", "iops=99999999"],
                "qos-disk: iops 99999999 is absurd: at most 10000000 per second")
    ctl_refuses(["qos-disk", "0", "iops=500", "iops-peak=10"],
                "qos-disk: iops-peak 10 is below iops 500 (the peak is the fastest rate, the average "
                "the long-run one)")
    ctl_refuses(["qos-group", "db", "bw=-1"], "qos-group: bw -1: a limit cannot be negative")
    ctl_refuses(["qos-net", "0", "tx-average=-1M"], "qos-net: tx-average -1M: a limit cannot be negative")
    ctl_refuses(["qos-net", "0", "rx-average=1M", "rx-burst=100G"],
                "qos-net: rx-burst 107374182400 is absurd: at most 68719476736 bytes")
    ctl_refuses(["qos-net", "0", "tx-peak=5M"], "qos-net: tx-peak needs tx-average as well")
    ctl_refuses(["qos-disk", "x", "iops=5"], "qos-disk: 'x' is not a disk number (0, 1, ...)")
    ctl_refuses(["qos-disk", "0", "speed=5"],
                "'speed' is not a disk limit (iops, iops-rd, iops-wr, bw, bw-rd, bw-wr, each also "
                "-burst or -peak)")


@test
def memory_options_that_do_not_go_together():
    refuses(["--memory", "1G,hugepages=4M"], "--memory: hugepages '4M' is not 2M, 1G or off")
    refuses(["--memory", "1G,mergeable=on,hugepages=2M"],
            "--memory: mergeable=on cannot go with hugepages (KSM merges only small pages)")
    refuses(["--memory", "1G,hugepages=2M,thp=on"],
            "--memory: thp is about small pages; it cannot go with hugepages")
    refuses(["--memory", "1G,mergeable=on", "--memory-backing", "memfd"],
            "--memory mergeable=on: KSM merges only private anonymous memory, not "
            "--memory-backing memfd")
    refuses(["--memory", "1500M,hugepages=1G"],
            "--memory 1500M: with hugepages=1G the size must be a multiple of 1024 MiB")
    refuses(["--memory", "1G,prealloc=maybe"], "--memory: prealloc 'maybe' is not on or off")
    refuses(["--memory", "1G,swap=off"],
            "--memory: unknown key 'swap' (hugepages, thp, prealloc, mergeable, mlock)")
    refuses(["--memory", "lots,mlock=on"], "--memory 'lots': not a size (examples: 512, 512M, 2G)")


@test
def too_few_huge_pages():
    d = "/sys/kernel/mm/hugepages/hugepages-1048576kB"
    if not os.path.isdir(d):
        raise tap.Skip("this host has no 1 GiB huge pages at all")
    free = int(open(d + "/free_hugepages").read()) - int(open(d + "/resv_hugepages").read())
    if free >= 2:
        raise tap.Skip("this host has free 1 GiB huge pages")
    refuses(["--memory", "2G,hugepages=1G"],
            f"guest RAM of 2048 MiB needs 2 huge pages of 1024 MiB; this host has {max(free, 0)} "
            f"free (raise {d}/nr_hugepages)")


@test
def balloon_options():
    refuses(["--balloon", "stats-interval=-1"], "--balloon: stats-interval '-1' is not 0 to 3600 seconds")
    refuses(["--balloon", "size=1G"],
            "--balloon: unknown key 'size' (deflate-on-oom, free-page-reporting, stats-interval)")


if __name__ == "__main__":
    tap.main()
