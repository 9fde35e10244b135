#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The control API end to end: keel-vmm with --api-socket running the mini
guest (tests/vmm/miniguest.S) on this machine's KVM. Pause stops the guest's
counter and resume continues it, the power button reaches the guest, reset
and stop do what they say, statistics count real exits and bytes, and every
error case answers with its status, code and message. `keel-vmm ctl` is
checked for its output and exit codes.

Environment: KEEL_VMM, KEEL_MINIGUEST.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import tap  # noqa: E402
from tap import check, test  # noqa: E402
from vmmproc import Vmm  # noqa: E402

VMM = os.environ["KEEL_VMM"]
KERNEL = os.environ["KEEL_MINIGUEST"]


def vm(cmdline, *extra, cpus=1):
    return Vmm(VMM, ["--kernel", KERNEL, "--cmdline", cmdline, "--memory", "64M",
                     "--cpus", str(cpus), "--console", "stdio", *extra])


def ctl(sock, *args, opts=()):
    p = subprocess.run([VMM, "ctl", *opts, sock, *args], capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def expect_error(v, method, path, status, code, message, body=None, **kw):
    st, reply = v.request(method, path, body, **kw)
    check(st == status, f"{method} {path}: status {st}, expected {status}: {reply}")
    err = reply.get("error", {})
    check(err.get("code") == code, f"{method} {path}: code {err.get('code')!r}, expected {code!r}")
    check(err.get("message") == message,
          f"{method} {path}: message {err.get('message')!r}, expected {message!r}")


@test
def info_reports_state_and_configuration():
    with vm("n", cpus=2) as v:
        v.wait_count(1)
        st, r = v.request("GET", "/v1/vm")
        check(st == 200, f"status {st}")
        check(r["state"] == "running", f"state {r['state']}")
        check(r["config"]["cpus"] == 2 and r["config"]["memory_mib"] == 64, f"config {r['config']}")
        check(r["config"]["cmdline"] == "n" and r["config"]["kernel"] == KERNEL, f"{r}")
        check(r["boots"] == 1, f"boots {r['boots']}")


@test
def pause_stops_the_counter_and_resume_continues_it():
    with vm("n", cpus=2) as v:
        v.wait_count(3)
        st, r = v.request("POST", "/v1/vm/pause")
        check(st == 200 and r == {"state": "paused"}, f"pause: {st} {r}")
        frozen = v.counts()
        time.sleep(1.0)
        check(v.counts() == frozen, f"the counter moved while paused: {frozen[-1]} -> {v.counts()[-1]}")
        st, r = v.request("GET", "/v1/vm")
        check(r["state"] == "paused", f"state {r['state']}")
        st, r = v.request("POST", "/v1/vm/resume")
        check(st == 200 and r == {"state": "running"}, f"resume: {st} {r}")
        v.wait_count(frozen[-1] + 3)
        c = v.counts()
        check(c == list(range(len(c))), f"the count skipped or restarted: {c}")
        st, r = v.request("GET", "/v1/vm/stats/vcpus")
        check(all(x["pauses"] == 1 for x in r["vcpus"]), f"pauses {[x['pauses'] for x in r['vcpus']]}")


@test
def pause_many_times_loses_nothing():
    with vm("n", cpus=4) as v:
        v.wait_count(1)
        for _ in range(20):
            check(v.request("POST", "/v1/vm/pause")[0] == 200, "pause failed")
            check(v.request("POST", "/v1/vm/resume")[0] == 200, "resume failed")
        n = v.counts()[-1]
        v.wait_count(n + 2)
        c = v.counts()
        check(c == list(range(len(c))), f"count sequence broken: {c}")


@test
def power_button_reaches_the_guest_and_it_powers_off():
    with vm("b") as v:
        v.wait_line(lambda l: l == "armed")
        st, r = v.request("POST", "/v1/vm/power-button")
        check(st == 202 and r["state"] in ("shutting-down", "stopped"), f"{st} {r}")
        rc = v.wait_exit()
        check(rc == 0, f"exit {rc}: {v.stderr()!r}")
        check("power button" in v.lines, f"console {v.lines}")
        check(not os.path.exists(v.sock), "the API socket file was left behind")


@test
def reset_reboots_the_guest():
    with vm("n") as v:
        v.wait_count(2)
        st, r = v.request("POST", "/v1/vm/reset")
        check(st == 202, f"reset: {st} {r}")
        deadline = time.time() + 20
        while time.time() < deadline:
            c = v.counts()
            if c.count(0) == 2 and c[-1] >= 1:
                break
            time.sleep(0.1)
        check(v.counts().count(0) == 2, f"no second boot: {v.counts()}")
        st, r = v.request("GET", "/v1/vm")
        check(r["boots"] == 2 and r["state"] == "running", f"{r}")


@test
def reset_while_paused_reboots():
    with vm("n", "--no-reboot") as v:
        v.wait_count(1)
        v.request("POST", "/v1/vm/pause")
        st, r = v.request("POST", "/v1/vm/reset")
        check(st == 202, f"reset: {st} {r}")
        rc = v.wait_exit()
        check(rc == 0 and "exiting (--no-reboot)" in v.stderr(), f"exit {rc}: {v.stderr()!r}")


@test
def stop_ends_keel_vmm_with_zero():
    with vm("n", cpus=2) as v:
        v.wait_count(1)
        v.request("POST", "/v1/vm/pause")
        st, r = v.request("POST", "/v1/vm/stop")
        check(st == 202 and r == {"state": "stopped"}, f"stop: {st} {r}")
        rc = v.wait_exit()
        check(rc == 0, f"exit {rc}: {v.stderr()!r}")


@test
def statistics_count_real_work():
    with vm("n", cpus=2) as v:
        v.wait_count(5)
        st, r = v.request("GET", "/v1/vm/stats/vcpus")
        check(st == 200 and len(r["vcpus"]) == 2, f"{st} {r}")
        boot = r["vcpus"][0]
        check(boot["exits"]["io"] > 50, f"io exits {boot['exits']}")
        check(boot["exits_total"] >= boot["exits"]["io"], f"{boot}")
        check(boot["io_handling"]["count"] == boot["exits"]["io"] or
              boot["io_handling"]["count"] >= boot["exits"]["io"] - 2, f"{boot['io_handling']}")
        check(sum(b["count"] for b in boot["io_handling"]["buckets"]) == boot["io_handling"]["count"],
              f"buckets do not add up: {boot['io_handling']}")
        st, r = v.request("GET", "/v1/vm/stats/devices")
        devs = {d["name"]: d for d in r["devices"]}
        check(set(devs) == {"com1", "rtc", "i8042", "reset-control", "acpi-pm", "pci-host"}, f"{set(devs)}")
        sent = sum(len(l) + 1 for l in v.lines)
        tx = devs["com1"]["counters"]["tx_bytes"]
        check(tx >= sent, f"com1 tx_bytes {tx}, console had {sent}")
        check(devs["com1"]["type"] == "uart-16550", f"{devs['com1']}")


@test
def requests_that_do_not_fit_the_state_are_refused():
    with vm("n") as v:
        v.wait_count(1)
        expect_error(v, "POST", "/v1/vm/resume", 409, "invalid_state",
                     "cannot resume: the VM is running, not paused")
        v.request("POST", "/v1/vm/pause")
        expect_error(v, "POST", "/v1/vm/pause", 409, "invalid_state",
                     "cannot pause: the VM is already paused")
        expect_error(v, "POST", "/v1/vm/power-button", 409, "invalid_state",
                     "cannot power-button: the VM is paused: resume it so the guest can see the button")


@test
def malformed_requests_are_refused():
    with vm("n") as v:
        v.wait_count(1)
        expect_error(v, "GET", "/v1/nothing", 404, "not_found", "no such endpoint: /v1/nothing")
        expect_error(v, "DELETE", "/v1/vm", 405, "method_not_allowed",
                     "DELETE is not allowed on /v1/vm (allowed: GET)")
        expect_error(v, "POST", "/v1/vm/pause", 400, "unknown_field",
                     "POST /v1/vm/pause takes no fields", body={"now": True})
        expect_error(v, "POST", "/v1/vm/pause", 400, "bad_json",
                     "malformed JSON: unexpected end of input", raw_body=b'{"a":')
        expect_error(v, "POST", "/v1/vm/pause", 400, "bad_json",
                     "the body must be a JSON object", raw_body=b'[]')
        expect_error(v, "POST", "/v1/vm/pause", 413, "payload_too_large",
                     "the body is larger than 16384 bytes", raw_body=b" " * 20000)
        expect_error(v, "POST", "/v1/vm/pause", 415, "unsupported_media_type",
                     "the body must be application/json, not text/plain",
                     raw_body=b"{}", headers={"Content-Type": "text/plain"})
        st, r = v.request("GET", "/v1/vm")
        check(r["state"] == "running", f"a refused request changed the state: {r}")


@test
def ctl_prints_and_exits_as_documented():
    with vm("n") as v:
        v.wait_count(1)
        rc, out, err = ctl(v.sock, "info")
        check(rc == 0 and "state: running" in out and "cpus: 1" in out, f"{rc} {out!r} {err!r}")
        rc, out, err = ctl(v.sock, "pause")
        check(rc == 0 and out == "state: paused\n", f"{rc} {out!r} {err!r}")
        rc, out, err = ctl(v.sock, "pause")
        check(rc == 1 and out == "", f"{rc} {out!r}")
        check(err == "keel-vmm ctl: cannot pause: the VM is already paused (HTTP 409, invalid_state)\n",
              f"{err!r}")
        rc, out, err = ctl(v.sock, "stats", "devices")
        check(rc == 0 and out.startswith("com1 (uart-16550): tx_bytes="), f"{rc} {out!r}")
        rc, out, err = ctl(v.sock, "request", "GET", "/v1/vm", opts=["--json"])
        check(rc == 0 and '"state":"paused"' in out, f"{rc} {out!r}")
        rc, out, err = ctl(v.sock, "frobnicate")
        check(rc == 2 and "unknown command 'frobnicate'" in err, f"{rc} {err!r}")
        rc, out, err = ctl(v.sock, "stop")
        check(rc == 0, f"{rc} {err!r}")
        check(v.wait_exit() == 0, "keel-vmm did not exit 0")
    rc, out, err = ctl("/nonexistent/api.sock", "info")
    check(rc == 3 and err.startswith("keel-vmm ctl: cannot connect to /nonexistent/api.sock"), f"{rc} {err!r}")


@test
def openapi_document_lists_exactly_the_served_endpoints():
    import re
    doc = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "api", "openapi.yaml")
    text = open(doc).read()
    documented = {}
    path = None
    for line in text.splitlines():
        m = re.match(r"^  (/\S+):$", line)
        if m:
            path = m.group(1)
            documented[path] = set()
        m = re.match(r"^    (get|post|put|delete|patch):$", line)
        if m and path:
            documented[path].add(m.group(1).upper())
        if line.startswith("components:"):
            break
    check(len(documented) >= 8, f"parsed {documented}")
    src = open(os.path.join(os.path.dirname(__file__), "..", "..", "src", "vmm", "control.c")).read()
    served = set(re.findall(r'\{ "([A-Z]+)", "(/v1/[^"]*)"', src))
    doc_pairs = {(m, p) for p, ms in documented.items() for m in ms}
    check(served == doc_pairs, f"served but not documented: {served - doc_pairs}; "
          f"documented but not served: {doc_pairs - served}")
    with vm("n") as v:
        v.wait_count(1)
        for path, methods in documented.items():
            st, r = v.request("PATCH", path)
            check(st == 405, f"PATCH {path}: {st} (is it served?)")
            allowed = set(r["error"]["message"].split("(allowed: ")[1].rstrip(")").split(", "))
            check(allowed == methods, f"{path}: served {allowed}, documented {methods}")


@test
def api_socket_errors_are_one_line():
    d = "/tmp/keel-test-notadir-%d" % os.getpid()
    open(d, "w").close()
    try:
        rc, out, err = tap.run([VMM, "--kernel", KERNEL, "--cmdline", "h", "--memory", "64M",
                                "--api-socket", d])
        check(rc == 1 and err == f"keel-vmm: error: --api-socket {d}: exists and is not a socket\n",
              f"{rc} {err!r}")
    finally:
        os.unlink(d)


if __name__ == "__main__":
    tap.main()
