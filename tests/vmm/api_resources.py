#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The control API's resource control end to end, with the mini guest on
this machine's KVM: disk and group limits set and read back (and applied:
the device tests show the limiter works), memory options changed at run
time and seen in the process's own /proc entries, the balloon's size, vCPU
and I/O thread pins read from /proc, the NUMA binding moved, and every
refusal with its status, code and one-sentence message. `keel-vmm ctl`'s
resource commands are checked for output and exit codes.

Environment: KEEL_VMM, KEEL_MINIGUEST.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import tap  # noqa: E402
from tap import check, test  # noqa: E402
from vmmproc import Vmm, free_port, incoming  # noqa: E402

VMM = os.environ["KEEL_VMM"]
KERNEL = os.environ["KEEL_MINIGUEST"]
DISK = tempfile.NamedTemporaryFile(prefix="keel-qos-", suffix=".img", delete=False).name
os.truncate(DISK, 64 << 20)


def vm(*extra, cpus=1, memory="64M"):
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        raise tap.Skip("no usable /dev/kvm on this machine")
    return Vmm(VMM, ["--kernel", KERNEL, "--cmdline", "n", "--memory", memory,
                     "--cpus", str(cpus), "--console", "stdio", *extra])


def ctl(sock, *args):
    p = subprocess.run([VMM, "ctl", sock, *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def refused(v, method, path, body, status, code, message):
    st, r = v.request(method, path, body)
    err = r.get("error", {})
    check(st == status and err.get("code") == code and err.get("message") == message,
          f"{method} {path} {body}: {st} {err}; expected {status} {code} {message!r}")


def host_cpus():
    return open("/sys/devices/system/cpu/online").read().strip()


def task_cpus(pid, tid):
    for line in open(f"/proc/{pid}/task/{tid}/status"):
        if line.startswith("Cpus_allowed_list:"):
            return line.split()[1]
    return None


@test
def disk_and_group_limits_change_at_run_time():
    with vm("--disk", f"path={DISK},iops=500,group=db", "--disk-group", "name=db,bw=10M") as v:
        v.wait_count(1)
        st, r = v.request("GET", "/v1/vm/qos")
        check(st == 200, f"{st} {r}")
        d = r["disks"][0]
        check(d["path"] == DISK and d["group"] == "db", f"{d}")
        check(d["limits"]["iops"] == {"average": 500, "burst": 0, "peak": 0}, f"{d}")
        check(d["limits"]["bw"] is None and d["throttle"]["waiting"] == 0, f"{d}")
        g = r["disk_groups"]
        check(len(g) == 1 and g[0]["group"] == "db" and g[0]["limits"]["bw"]["average"] == 10 << 20
              and g[0]["limits"]["iops"] is None, f"{g}")
        # A limit named is replaced whole, the others stay.
        st, r = v.request("PUT", "/v1/vm/qos/disk", {
            "disk": 0, "iops_rd": {"average": 300, "burst": 900, "peak": 600}, "bw_wr": None})
        check(st == 200, f"{st} {r}")
        check(r["limits"]["iops"]["average"] == 500, f"{r}")
        check(r["limits"]["iops_rd"] == {"average": 300, "burst": 900, "peak": 600}, f"{r}")
        st, r = v.request("PUT", "/v1/vm/qos/disk", {"disk": 0, "iops": None})
        check(st == 200 and r["limits"]["iops"] is None, f"{st} {r}")
        st, r = v.request("PUT", "/v1/vm/qos/disk-group", {"group": "db", "bw": {"average": 1 << 20}})
        check(st == 200 and r["limits"]["bw"]["average"] == 1 << 20, f"{st} {r}")
        rc, out, err = ctl(v.sock, "qos-disk", "0", "iops-wr=200", "iops-wr-burst=50")
        check(rc == 0 and "iops_wr=200/50/0" in out, f"{rc} {out!r} {err!r}")
        rc, out, err = ctl(v.sock, "qos")
        check(rc == 0 and out.startswith(f"disk 0 ({DISK}) group db:") and "group db: bw=1048576/0/0"
              in out, f"{out!r}")


@test
def disk_limit_refusals():
    with vm("--disk", f"path={DISK}") as v:
        v.wait_count(1)
        refused(v, "PUT", "/v1/vm/qos/disk", {"disk": 0, "iops": {"average": -5}}, 400, "bad_field",
                "field 'average' must be between 0 and 18446744073709551615")
        refused(v, "PUT", "/v1/vm/qos/disk", {"disk": 0, "iops": {"average": 20000000}}, 400,
                "bad_field", "disk 0: iops 20000000 is absurd: at most 10000000 per second")
        refused(v, "PUT", "/v1/vm/qos/disk", {"disk": 0, "bw": {"average": 1 << 20, "peak": 1000}},
                400, "bad_field", "disk 0: bw-peak 1000 is below bw 1048576 (the peak is the "
                "fastest rate, the average the long-run one)")
        refused(v, "PUT", "/v1/vm/qos/disk", {"disk": 0, "iops": {"burst": 5}}, 400, "bad_field",
                "disk 0: iops-burst needs iops (the average) as well")
        refused(v, "PUT", "/v1/vm/qos/disk", {"disk": 0, "iops": 5}, 400, "bad_field",
                "field 'iops' must be an object {average, burst, peak} or null")
        refused(v, "PUT", "/v1/vm/qos/disk", {"disk": 1, "iops": None}, 400, "bad_field",
                "field 'disk' must be between 0 and 0")
        refused(v, "PUT", "/v1/vm/qos/disk", {"iops": None}, 400, "bad_field",
                "field 'disk' (the disk's index, 0 to 0) is required")
        refused(v, "PUT", "/v1/vm/qos/disk", {"disk": 0, "iops_max": None}, 400, "unknown_field",
                "unknown field 'iops_max'")
        refused(v, "PUT", "/v1/vm/qos/disk", {"disk": 0, "group": "x"}, 400, "bad_field",
                "a disk's group is set at start (--disk group=); change the group's limits "
                "with PUT /v1/vm/qos/disk-group")
        refused(v, "PUT", "/v1/vm/qos/disk-group", {"group": "x"}, 404, "not_found",
                "no --disk-group named 'x'")
        refused(v, "PUT", "/v1/vm/qos/net", {"net": 0}, 404, "not_found", "the VM has no NIC")
        rc, out, err = ctl(v.sock, "qos-disk", "0", "iops=-5")
        check(rc == 2 and "a limit cannot be negative" in err, f"{rc} {err!r}")


def vmflags(pid):
    """The VmFlags of keel-vmm's biggest mapping: guest RAM."""
    best, flags, size = 0, "", 0
    for line in open(f"/proc/{pid}/smaps"):
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
        if m:
            size = int(m.group(2), 16) - int(m.group(1), 16)
        elif line.startswith("VmFlags:") and size > best:
            best, flags = size, line.split()[1:]
    return flags


@test
def memory_options_change_at_run_time():
    with vm(memory="128M,mergeable=on,thp=off") as v:
        v.wait_count(1)
        pid = v.p.pid
        st, r = v.request("GET", "/v1/vm/memory")
        check(st == 200 and r["size_mib"] == 128 and r["backing"] == "anon", f"{st} {r}")
        check(r["mergeable"] and not r["thp"] and not r["mlock"] and r["hugepages"] is None, f"{r}")
        check(r["process_rss_kib"] > 0 and "pages_sharing" in r["ksm"], f"{r}")
        check("mg" in vmflags(pid) and "nh" in vmflags(pid), f"{vmflags(pid)}")
        st, r = v.request("PUT", "/v1/vm/memory", {"mergeable": False, "thp": True, "mlock": True})
        check(st == 200 and not r["mergeable"] and r["thp"] and r["mlock"], f"{st} {r}")
        flags = vmflags(pid)
        check("mg" not in flags and "hg" in flags and "lf" in flags, f"{flags}")
        check(r["process_locked_kib"] > 0, f"{r}")
        rc, out, err = ctl(v.sock, "memory", "mlock=off")
        check(rc == 0 and "mlock: false" in out, f"{rc} {out!r} {err!r}")
        refused(v, "PUT", "/v1/vm/memory", {"mlock": "yes"}, 400, "bad_field",
                "field 'mlock' must be true or false")
    with vm("--memory-backing", "memfd") as v:
        v.wait_count(1)
        refused(v, "PUT", "/v1/vm/memory", {"mergeable": True}, 409, "unsupported",
                "mergeable: KSM merges only anonymous memory of small pages; this VM's RAM is "
                "a memfd")


@test
def balloon_size_and_refusals():
    with vm() as v:
        v.wait_count(1)
        refused(v, "GET", "/v1/vm/balloon", None, 409, "unsupported",
                "the VM has no balloon device (start keel-vmm with --balloon)")
    with vm("--balloon", "deflate-on-oom=on") as v:
        v.wait_count(1)
        st, r = v.request("GET", "/v1/vm/balloon")
        # The mini guest has no balloon driver: the device waits for one.
        check(st == 200 and r["size_mib"] == 0 and not r["driver_ok"], f"{st} {r}")
        check(r["guest_stats"]["free_memory"] is None and r["guest_stats_age_ms"] is None, f"{r}")
        st, r = v.request("PUT", "/v1/vm/balloon", {"size_mib": 16})
        check(st == 200 and r["size_mib"] == 16 and r["actual_mib"] == 0, f"{st} {r}")
        refused(v, "PUT", "/v1/vm/balloon", {"size_mib": 40}, 400, "bad_field",
                "size_mib 40 would leave the guest less than 32 of its 64 MiB (at most 32)")
        refused(v, "PUT", "/v1/vm/balloon", {"size_mib": -1}, 400, "bad_field",
                "field 'size_mib' must be between 0 and 18446744073709551615")
        refused(v, "PUT", "/v1/vm/balloon", {}, 400, "bad_field",
                "field 'size_mib' (the balloon's size) is required")
        rc, out, err = ctl(v.sock, "balloon", "8M")
        check(rc == 0 and "size_mib: 8" in out, f"{rc} {out!r} {err!r}")
        rc, out, err = ctl(v.sock, "balloon", "lots")
        check(rc == 2, f"{rc} {err!r}")


@test
def pins_read_back_from_proc():
    with vm("--pin", "vcpu0=0", "--pin", "io=0", cpus=2) as v:
        v.wait_count(1)
        pid = v.p.pid
        st, r = v.request("GET", "/v1/vm/cpus")
        check(st == 200 and len(r["vcpus"]) == 2, f"{st} {r}")
        v0, v1 = r["vcpus"]
        check(v0["pin"] == "0" and v0["affinity"] == "0" and task_cpus(pid, v0["tid"]) == "0", f"{r}")
        # Unpinned vCPUs run where keel-vmm could at start, not on the I/O set.
        check(v1["pin"] is None and task_cpus(pid, v1["tid"]) == host_cpus(), f"{r}")
        check(r["io"]["pin"] == "0" and all(t["affinity"] == "0" for t in r["io"]["threads"]), f"{r}")
        check(all(task_cpus(pid, t["tid"]) == "0" for t in r["io"]["threads"]), f"{r}")
        last = host_cpus().split("-")[-1].split(",")[-1]
        st, r = v.request("PUT", "/v1/vm/cpus/pinning", {"vcpu1": last, "vcpu0": None, "io": None})
        check(st == 200, f"{st} {r}")
        check(task_cpus(pid, r["vcpus"][1]["tid"]) == last, f"{r}")
        check(task_cpus(pid, r["vcpus"][0]["tid"]) == host_cpus(), f"{r}")
        check(all(task_cpus(pid, t["tid"]) == host_cpus() for t in r["io"]["threads"]), f"{r}")
        refused(v, "PUT", "/v1/vm/cpus/pinning", {"vcpu2": "0"}, 400, "bad_field",
                "pin vcpu2: the VM has 2 vCPUs (vcpu0 to vcpu1)")
        refused(v, "PUT", "/v1/vm/cpus/pinning", {"io": "999"}, 400, "bad_field",
                f"pin io: host CPU 999 does not exist (this host has CPUs {host_cpus()})")
        refused(v, "PUT", "/v1/vm/cpus/pinning", {"disk": "0"}, 400, "bad_field",
                "pin 'disk=0': 'disk' is not vcpuN, vcpus or io")
        refused(v, "PUT", "/v1/vm/cpus/pinning", {"io": 3}, 400, "bad_field",
                "field 'io' must be a host CPU list like \"0-3,8\" or null")
        rc, out, err = ctl(v.sock, "pin", "vcpu0=0")
        check(rc == 0 and re.search(r"^vcpu0 tid \d+ node 0: host CPUs 0 \(pin 0\)$", out, re.M),
              f"{rc} {out!r} {err!r}")


@test
def numa_binding_moves():
    nodes = open("/sys/devices/system/node/online").read().strip()
    with vm("--numa", "cpus=0,memory=64M,host-nodes=0", "--numa", "cpus=1,memory=64M", cpus=2,
            memory="128M") as v:
        v.wait_count(1)
        st, r = v.request("GET", "/v1/vm/numa")
        check(st == 200 and len(r["nodes"]) == 2, f"{st} {r}")
        n0, n1 = r["nodes"]
        check(n0["cpus"] == "0" and n0["memory_mib"] == 64 and n0["host_nodes"] == "0"
              and n0["policy"] == "bind", f"{r}")
        check(n1["host_nodes"] is None and n1["policy"] == "none", f"{r}")
        # The mini guest runs from node 0's memory, which is all on host node 0.
        check(list(n0["host_usage_mib"].keys()) == ["0"], f"{n0}")
        st, r = v.request("GET", "/v1/vm/cpus")
        check([c["node"] for c in r["vcpus"]] == [0, 1], f"{r}")
        st, r = v.request("PUT", "/v1/vm/numa", {"node": 1, "host_nodes": "0", "policy": "preferred"})
        check(st == 200 and r["nodes"][1]["policy"] == "preferred", f"{st} {r}")
        refused(v, "PUT", "/v1/vm/numa", {"node": 1, "host_nodes": "63"}, 400, "bad_field",
                f"--numa node 1: host node 63 does not exist (this host has nodes {nodes})")
        refused(v, "PUT", "/v1/vm/numa", {"node": 2}, 400, "bad_field",
                "field 'node' must be between 0 and 1")
        refused(v, "PUT", "/v1/vm/numa", {"node": 0, "policy": "bind", "host_nodes": ""}, 400,
                "bad_field", "policy bind with host_nodes '': bind and interleave take host "
                "nodes, preferred one, none no host nodes")
        rc, out, err = ctl(v.sock, "numa")
        check(rc == 0 and out.startswith("node 0: vCPUs 0, 64 MiB, host nodes 0 (bind)"), f"{out!r}")
    with vm() as v:
        v.wait_count(1)
        refused(v, "PUT", "/v1/vm/numa", {"node": 0}, 409, "unsupported",
                "the VM has no guest NUMA nodes (--numa)")


@test
def numa_nodes_and_the_balloon_survive_snapshot_restore_and_migration():
    """--numa and --balloon come with the VM (a restore or a target refuses
    them on its command line): the layout in force (node 1 changed through
    the API), the balloon's options and its target go along, and a restored
    VM counts on, with node 1's vCPU still in node 1."""
    d = tempfile.mkdtemp(prefix="keel-numa-snap-")
    snap = os.path.join(d, "snap")
    args = ("--numa", "cpus=0,memory=64M,host-nodes=0", "--numa", "cpus=1,memory=64M",
            "--balloon", "deflate-on-oom=on,stats-interval=7")
    try:
        with vm(*args, cpus=2, memory="128M") as v:
            v.wait_count(2)
            st, r = v.request("PUT", "/v1/vm/numa", {"node": 1, "host_nodes": "0",
                                                     "policy": "preferred"})
            check(st == 200, f"{st} {r}")
            st, r = v.request("PUT", "/v1/vm/balloon", {"size_mib": 16})
            check(st == 200, f"{st} {r}")
            st, r = v.request("PUT", "/v1/vm/snapshot", {"path": snap})
            check(st == 200, f"snapshot: {st} {r}")
            numa_before = v.request("GET", "/v1/vm/numa")[1]
            balloon_before = v.request("GET", "/v1/vm/balloon")[1]
            at = v.counts()[-1]
        for n in numa_before["nodes"]:
            n.pop("host_usage_mib", None)
        with Vmm(VMM, ["--restore", snap, "--console", "stdio"]) as w:
            w.wait_count(at + 3)
            st, r = w.request("GET", "/v1/vm/numa")
            for n in r["nodes"]:
                n.pop("host_usage_mib", None)
            check(st == 200 and r == numa_before, f"restored NUMA {st} {r}, was {numa_before}")
            st, r = w.request("GET", "/v1/vm/balloon")
            # Its options came too: otherwise the device (offering other features) refuses its state.
            check(st == 200 and r["size_mib"] == 16 and r == balloon_before,
                  f"balloon {st} {r}, was {balloon_before}")
            st, r = w.request("GET", "/v1/vm/cpus")
            check([c["node"] for c in r["vcpus"]] == [0, 1], f"{r}")
            # And on to another process by live migration.
            port = free_port()
            with incoming(VMM, port) as t:
                st, r = w.request("POST", "/v1/vm/migrate", {"uri": f"tcp:127.0.0.1:{port}"})
                check(st == 202, f"migrate: {st} {r}")
                rc = w.wait_exit()
                check(rc == 0, f"source exit {rc}: {w.stderr()!r}")
                t.wait_count(w.counts()[-1] + 3)
                check("--numa" not in t.stderr(), f"{t.stderr()!r}")
        tap.expect_error([VMM, "--restore", snap, "--console", "none", "--balloon", "on"],
                         "keel-vmm: error: --balloon cannot be given with --restore: the snapshot "
                         "has the VM's configuration")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    try:
        tap.main()
    finally:
        os.unlink(DISK)
