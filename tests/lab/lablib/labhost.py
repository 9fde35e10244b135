# SPDX-License-Identifier: Apache-2.0
"""Runs a plan of scenarios: in an emulated AMD-V host (QEMU TCG with
-cpu EPYC,+svm,+npt, the default on machines without hardware
virtualization) or directly on a machine whose /dev/kvm is backed by VT-x or
AMD-V. Either way host/run-scenarios runs the scenarios and its output is
parsed here the same way."""
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time

from . import assets
from .assets import LAB, ROOT, log

LOGS = os.path.join(ROOT, "build", "lab", "logs")
WORK = os.path.join(ROOT, "build", "lab", "work")
MARK = "KEEL-LAB: "
HOST_BOOT_SECONDS = 180  # emulated host kernel + KVM modules, generous for a loaded machine
HOST_SLACK_SECONDS = 60  # past a scenario's own timeout before the host is called hung
CLOCK_SKEW_MAX = 60
# The scratch disk of scenarios with "needs: scratch": a sparse ext4 image
# made here, an NVMe disk of the emulated host (the driver is built into its
# kernel) mounted on /scratch. Disk images there behave as on a server: ext4
# has O_DIRECT (cache=none), punch hole (DISCARD) and real block counts,
# which the tmpfs the lab host otherwise lives in lacks (O_DIRECT). Its
# flushes stop at this machine's page cache (cache=unsafe): the image is
# thrown away after the run.
SCRATCH_NAME = "scratch.img"  # in the run's work directory
SCRATCH_GIB = 16
SCRATCH_SERIAL = "keel-lab-scratch"  # host/init finds the NVMe disk by its serial
# Scenarios with "needs: peer" get a second emulated host, the peer, linked
# to the main one by QEMU's -netdev socket (a virtio-net NIC each, on
# 10.0.9.0/24) and both attached to one raw image, the shared disk: a LUN
# both hosts see, as live migration with disks needs. Its file is opened by
# both QEMUs (file.locking=off) with the build machine's page cache
# between them, so each host sees the other's writes once they leave its
# own cache: keel-vmm uses it with cache=none (O_DIRECT) in the hosts. The
# peer runs only an agent (host/peer-run) that the scenario drives.
SHARED_NAME = "shared.img"
SHARED_GIB = 4
SHARED_SERIAL = "keel-lab-shared"
MAIN_ADDR, PEER_ADDR, PEER_PORT = "10.0.9.1", "10.0.9.2", 7100
HOST_MEMORY_MIB = PEER_MEMORY_MIB = 3072
# More for the emulated host's kernel command line (debugging, e.g. nokaslr).
HOST_APPEND = " " + os.environ.get("KEEL_LAB_HOST_APPEND", "")
ATTEMPTS = 3  # runs of a scenario that keeps failing in the emulated lab
HOST_BOOTS = 8  # lab host boots per Run at most: one per death or round of re-runs
# EPYC features TCG cannot emulate: QEMU drops them anyway, with a warning
# each; asking without them keeps the logs (and make demo) quiet.
TCG_MISSING = ",".join("-" + f for f in (
    "rdseed", "sha-ni", "fxsr-opt", "misalignsse", "3dnowprefetch", "osvw",
    "topoext", "nrip-save", "xsavec"))


def hardware_virt():
    """(True, why) when /dev/kvm is backed by VT-x/AMD-V; quick, no boot."""
    forced = os.environ.get("KEEL_LAB_MODE")
    if forced in ("emulated", "direct"):
        return forced == "direct", f"KEEL_LAB_MODE={forced}"
    if os.path.exists("/sys/module/kvm_pvm"):
        return False, "/dev/kvm is kvm_pvm, a software hypervisor that cannot boot Linux"
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l for l in f if l.startswith("flags")), "").split()
    except OSError:
        flags = []
    if "vmx" not in flags and "svm" not in flags:
        return False, "the CPU shows no vmx/svm"
    mod = next((m for m in ("kvm_intel", "kvm_amd") if os.path.exists(f"/sys/module/{m}")), None)
    if not mod:
        return False, "neither kvm_intel nor kvm_amd is loaded"
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        return False, f"/dev/kvm: {e.strerror}"
    return True, f"{mod} with {'vmx' if 'vmx' in flags else 'svm'}"


def free_port():
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


def tcp_listening(port):
    """Whether something on this machine listens on TCP port (from /proc/net/tcp,
    without connecting: QEMU's -netdev socket,listen takes the first connection)."""
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.split(":")[1], 16) == port:
                    return True
    except OSError:
        pass
    return False


class Results:
    def __init__(self, names):
        self.names = list(names)
        self.status = {}  # name -> (passed, reason)
        self.figures = []  # (scenario, key, value, unit)
        self.notes = []
        self.retries = []  # (scenario, attempt, why it failed) per failed attempt run again
        self.host_date = None

    def forget(self, name):
        """Drops what scenario NAME reported, before it runs again: only
        the attempt that decides it leaves figures and notes."""
        del self.status[name]
        self.figures = [f for f in self.figures if f[0] != name]
        self.notes = [n for n in self.notes if not n.startswith(name + " ")]

    def fail_rest(self, reason):
        for n in self.names:
            self.status.setdefault(n, (False, reason))


class Run:
    """One boot of the lab (emulated host or direct) over a plan."""

    def __init__(self, scenarios, vmm, verbose=False, keep=False, demo=False, timeout=None,
                 extra_env=None, host_cpus=None):
        self.scenarios = scenarios
        self.vmm = vmm
        self.verbose = verbose
        self.keep = keep
        self.demo = demo
        self.timeout = timeout
        self.host_cpus = host_cpus  # the emulated host's CPUs (None: _host_cpus())
        # Variables for the scenarios (they travel in /lab/env).
        self.extra_env = dict(extra_env or {}, LAB_VMM=vmm)
        self.results = Results(s.name for s in scenarios)
        self.seen_logs = set()
        # Per run, so that make check and make bench may run side by side.
        self.work = os.path.join(WORK, f"run-{os.getpid()}")
        self.scratch_img = os.path.join(self.work, SCRATCH_NAME)
        self.shared_img = os.path.join(self.work, SHARED_NAME)
        self.peer = None

    def _timeout(self, s):
        return self.timeout or s.timeout

    def _plan(self):
        return "".join(f"{s.name} {self._timeout(s)}\n" for s in self.scenarios)

    def _binaries(self):
        bins = {}
        for name in assets.PROJECT_BINARIES:
            path = assets.find_binary(name)
            if path:
                bins[name] = path
        return bins

    def _needs_scratch(self):
        return any("scratch" in s.needs for s in self.scenarios)

    def _make_scratch(self):
        os.makedirs(self.work, exist_ok=True)
        if os.path.exists(self.scratch_img):
            os.unlink(self.scratch_img)
        with open(self.scratch_img, "wb") as f:
            f.truncate(SCRATCH_GIB << 30)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "keel-scratch", "-E",
                        "lazy_itable_init=1,lazy_journal_init=1", self.scratch_img], check=True)

    def _needs_peer(self):
        return any("peer" in s.needs for s in self.scenarios)

    def _host_cpus(self):
        """One CPU unless a scenario needs two (numa: one per node; smp) or
        the caller asked (benchmarks keep the two their figures were taken
        with). With one CPU the emulated host sends itself no IPIs, and an
        IPI that lands on a CPU in KVM_RUN is what sets off its faults
        (tests/lab/README.md): of the ten scenarios that failed most on two
        CPUs (1 to 3 failed attempts each), eight passed at the first attempt
        on one and one at the second."""
        if any(n in s.needs for s in self.scenarios for n in ("numa", "smp")):
            return 2
        return self.host_cpus or int(os.environ.get("KEEL_LAB_HOST_CPUS", "1"))

    def _numa_devices(self):
        """Two host NUMA nodes (one CPU and half the memory each) when a
        scenario of the run needs them; the kernel reads them from the SRAT
        QEMU builds, so guest NUMA bindings have a second node to go to."""
        if not any("numa" in s.needs for s in self.scenarios):
            return []
        half = HOST_MEMORY_MIB // 2
        out = []
        for n in (0, 1):
            out += ["-object", f"memory-backend-ram,id=hostnode{n},size={half}M",
                    "-numa", f"node,nodeid={n},cpus={n},memdev=hostnode{n}"]
        return out

    def _make_shared(self):
        os.makedirs(self.work, exist_ok=True)
        with open(self.shared_img, "wb") as f:
            f.truncate(SHARED_GIB << 30)

    def _env_file(self):
        return "".join(f"{k}='{v}'\n" for k, v in sorted(self.extra_env.items()))

    # --- emulated host -----------------------------------------------------
    def _emulated_cmd(self, k):
        guest = assets.guest_image(k, self.scenarios)
        # Per boot: a fresh host for the scenarios left may need neither.
        for key in ("LAB_SCRATCH_SERIAL", "LAB_SHARED_SERIAL", "LAB_MAIN_ADDR", "LAB_PEER_ADDR",
                    "LAB_PEER_PORT", "LAB_PEER_WORK"):
            self.extra_env.pop(key, None)
        if self._needs_scratch():
            self.extra_env["LAB_SCRATCH_SERIAL"] = SCRATCH_SERIAL
        if self._needs_peer():
            self.extra_env.update(LAB_SHARED_SERIAL=SHARED_SERIAL, LAB_MAIN_ADDR=MAIN_ADDR,
                                  LAB_PEER_ADDR=PEER_ADDR, LAB_PEER_PORT=PEER_PORT,
                                  LAB_PEER_WORK="/tmp/peer")
        layers = [assets.host_base_image(k),
                  assets.payload_image(self._plan(), self._env_file(), guest,
                                       self.scenarios, self._binaries())]
        if self.vmm.startswith("qemu") or any("qemu" in s.needs for s in self.scenarios):
            layers.append(assets.qemu_image())
        disks, append = self._numa_devices(), ""
        if self._needs_scratch():
            self._make_scratch()
            disks += ["-drive", f"file={self.scratch_img},if=none,id=scratch,format=raw,cache=unsafe,"
                     "discard=unmap", "-device", f"nvme,drive=scratch,serial={SCRATCH_SERIAL}"]
        if self._needs_peer():
            self._make_shared()
            self.link_port = free_port()
            disks += self._peer_devices("main", f"listen=127.0.0.1:{self.link_port}")
            append = " keel.role=main"
        os.makedirs(self.work, exist_ok=True)
        self.initrd = os.path.join(self.work, "host-initrd.cpio")
        with open(self.initrd, "wb") as out:
            for layer in layers:
                with open(layer, "rb") as f:
                    shutil.copyfileobj(f, out)
        return self._host_cmd(k, HOST_MEMORY_MIB, disks, append)

    def _host_cmd(self, k, memory_mib, devices, append):
        return ["qemu-system-x86_64", "-M", "q35", "-accel", "tcg,thread=multi",
                "-cpu", "EPYC,+svm,+npt," + TCG_MISSING, "-smp", str(self._host_cpus()),
                "-m", str(memory_mib),
                "-nic", "none"] + devices + [
                # The host's RTC follows this machine's clock (UTC), so the
                # emulated host's and its guests' dates are real dates.
                "-rtc", "base=utc,clock=host",
                "-kernel", k.vmlinuz, "-initrd", self.initrd,
                "-append", "console=ttyS0 quiet panic=-1" + append + HOST_APPEND,
                "-nographic", "-no-reboot"]

    def _peer_devices(self, role, socket_arg):
        """The link NIC (main listens, the peer connects) and the shared disk."""
        mac = "52:54:00:00:09:" + ("01" if role == "main" else "02")
        return ["-netdev", f"socket,id=link,{socket_arg}",
                "-device", f"virtio-net-pci,netdev=link,mac={mac},romfile=",
                "-drive", f"file={self.shared_img},if=none,id=shared,format=raw,cache=writeback,"
                "file.locking=off",
                "-device", f"nvme,drive=shared,serial={SHARED_SERIAL}"]

    def _start_peer(self, k):
        """The peer host, once the main host's QEMU listens on the link."""
        deadline = time.monotonic() + 60
        while not tcp_listening(self.link_port):
            if time.monotonic() > deadline:
                raise RuntimeError("the main lab host never listened on its link to the peer")
            time.sleep(0.2)
        cmd = self._host_cmd(k, PEER_MEMORY_MIB,
                             self._peer_devices("peer", f"connect=127.0.0.1:{self.link_port}"),
                             " keel.role=peer")
        self.peer_log = open(os.path.join(LOGS, "peer.log"), "ab")
        self.peer = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.peer_log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def _stop_peer(self):
        if not self.peer:
            return
        if self.peer.poll() is None:
            try:
                os.killpg(self.peer.pid, 9)
            except OSError:
                self.peer.kill()
        self.peer.wait()
        self.peer_log.close()
        self.peer = None
        if not self.keep and os.path.exists(self.shared_img):
            os.unlink(self.shared_img)

    # --- direct on hardware virtualization ---------------------------------
    def _direct_cmd(self, k):
        d = os.path.join(self.work, "direct")
        shutil.rmtree(d, ignore_errors=True)
        for sub in ("bin", "guest", "scenarios", "lib", "busybox"):
            os.makedirs(os.path.join(d, sub))
        os.symlink(k.vmlinuz, os.path.join(d, "guest", "vmlinuz"))
        os.symlink(assets.guest_image(k, self.scenarios), os.path.join(d, "guest", "initrd"))
        for s in self.scenarios:
            for path in s.host_files():
                shutil.copy(path, os.path.join(d, "scenarios"))
        for name in ("lab.sh", "run-scenarios"):
            shutil.copy(os.path.join(LAB, "host", name), os.path.join(d, "lib"))
        for name, path in self._binaries().items():
            os.symlink(path, os.path.join(d, "bin", name))
        # The scenarios are written for busybox: give them its applets first.
        for applet in subprocess.run([assets.BUSYBOX, "--list"], capture_output=True,
                                     text=True, check=True).stdout.split():
            os.symlink(assets.BUSYBOX, os.path.join(d, "busybox", applet))
        with open(os.path.join(d, "plan"), "w") as f:
            f.write(self._plan())
        scratch = {}
        if self._needs_scratch():
            scratch["LAB_SCRATCH_ROOT"] = os.path.join(d, "scratch")
            os.makedirs(scratch["LAB_SCRATCH_ROOT"])
        if self._needs_peer():
            # One machine: the peer is this machine, the shared disk a file.
            self._make_shared()
            scratch.update(LAB_PEER_LOCAL="1", LAB_PEER_ADDR="127.0.0.1", LAB_MAIN_ADDR="127.0.0.1",
                           LAB_PEER_WORK=os.path.join(d, "tmp", "peer"),
                           LAB_SHARED_DEV=self.shared_img)
        self.env = dict(os.environ, **self.extra_env, **scratch, LAB_DIR=d,
                        LAB_TMP=os.path.join(d, "tmp"),
                        PATH=os.path.join(d, "busybox") + ":" + os.environ.get("PATH", ""))
        return [assets.BUSYBOX, "sh", os.path.join(d, "lib", "run-scenarios"),
                os.path.join(d, "plan")]

    def start(self, direct):
        k = assets.kernel()
        self.env = None
        cmd = self._direct_cmd(k) if direct else self._emulated_cmd(k)
        self.direct = direct
        os.makedirs(LOGS, exist_ok=True)
        proc = subprocess.Popen(cmd, stdin=None if self.demo else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=self.env, start_new_session=not self.demo)
        if not direct and self._needs_peer():
            try:
                self._start_peer(k)
            except (OSError, RuntimeError):
                os.killpg(proc.pid, 9)
                proc.wait()
                raise
        return proc

    def run(self, direct):
        """Runs every scenario; when the lab host dies or hangs in one, the
        rest get a fresh host. In the emulated lab a scenario that failed
        is run again on a fresh host, ATTEMPTS times in all: nested SVM
        under TCG now and then panics or wedges the emulated host, loses a
        wake-up of a guest vCPU or triple-faults a guest (tests/lab/README.md,
        "Faults of the emulated host"; seen with QEMU as the VMM too), which
        says nothing about the VMM under test. A scenario passes when one
        attempt passes; every failed attempt is reported (Results.retries).
        Directly on hardware virtualization there is one attempt."""
        todo = list(self.scenarios)
        attempts = {s.name: 1 for s in todo}
        for boot in range(HOST_BOOTS):
            self.scenarios = todo
            trouble = self._run_once(direct)
            for s in todo:
                st = self.results.status.get(s.name)
                if not st or st[0] or direct or attempts[s.name] >= ATTEMPTS:
                    continue
                self.results.retries.append((s.name, attempts[s.name], st[1]))
                log(f"{s.name} failed (attempt {attempts[s.name]} of {ATTEMPTS}): {st[1]}; "
                    "running it again on a fresh lab host")
                attempts[s.name] += 1
                self.results.forget(s.name)
            todo = [s for s in todo if s.name not in self.results.status]
            if not todo:
                break
            if boot < HOST_BOOTS - 1:
                log(f"{trouble or 'scenarios to run again'}; a fresh lab host for the "
                    f"{len(todo)} scenario(s) left")
            else:
                self.results.fail_rest(f"not run: {trouble or 'out of lab host boots'}")
        return self.results

    def _run_once(self, direct):
        """One boot; returns None, or what went wrong with the lab host."""
        try:
            proc = self.start(direct)
        except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
            self.results.fail_rest(f"lab set-up failed: {e}")
            return None
        lines = queue.Queue()

        def reader():
            for raw in iter(proc.stdout.readline, b""):
                lines.put(raw)
            lines.put(None)

        threading.Thread(target=reader, daemon=True).start()
        try:
            return self._watch(proc, lines)
        finally:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, 9) if not self.demo else proc.kill()
                except OSError:
                    proc.kill()
            proc.wait()
            self._stop_peer()
            for f in self.logs.values():
                f.close()
            if not self.keep and os.path.exists(self.scratch_img):
                os.unlink(self.scratch_img)

    def _log(self, name):
        if name not in self.logs:
            # Appended to when a fresh lab host continues this run.
            mode = "ab" if name in self.seen_logs else "wb"
            self.seen_logs.add(name)
            self.logs[name] = open(os.path.join(LOGS, f"{name}.log"), mode)
        return self.logs[name]

    def _watch(self, proc, lines):
        r = self.results
        self.logs = {}
        current = "host"
        self._log("host")
        deadline = time.monotonic() + (5 if self.direct else HOST_BOOT_SECONDS)
        started = self.direct
        byname = {s.name: s for s in self.scenarios}
        while True:
            try:
                raw = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raw = ""
            if raw is None:  # the host (or direct runner) ended
                proc.wait()
                if current != "host" and current not in r.status:
                    r.status[current] = (False, f"lab host died during it (exit {proc.returncode}; "
                                         f"log: {self._path(current)})")
                if current != "host":
                    return f"lab host died in {current}"
                return f"lab host ended early (exit {proc.returncode}; log: {self._path('host')})"
            if raw == "" or time.monotonic() > deadline:
                if time.monotonic() < deadline:
                    continue
                if not started:
                    r.fail_rest(f"not run: emulated host did not come up in {HOST_BOOT_SECONDS}s "
                                f"(log: {self._path('host')})")
                    return None
                if current == "host":
                    return "lab host hung between scenarios"
                t = self._timeout(byname[current])
                r.status[current] = (False, f"timeout after {t}s (log: {self._path(current)})")
                # The host's own runner enforces the timeout: silence past
                # it means the emulated host itself stopped, as in a death.
                return f"host hung in {current}"
            self._log(current).write(raw)
            self._log(current).flush()
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            mark = line.find(MARK)
            # The demo shows the VM, not the lab host's firmware and boot.
            if self.verbose or (self.demo and mark < 0 and current != "host"):
                sys.stdout.write(line + "\n") if self.demo else sys.stderr.write(line + "\n")
                (sys.stdout if self.demo else sys.stderr).flush()
            if mark < 0:
                continue
            words = line[mark + len(MARK):].split(" ", 2)
            kind = words[0]
            if kind == "HOST-UP":
                started = True
                self._check_host_clock(line)
            elif kind == "HOST-FAIL":
                r.fail_rest("emulated host: " + line[mark + len(MARK) + 10:])
                return None
            elif kind == "BEGIN" and len(words) > 1 and words[1] in byname:
                current = words[1]
                started = True
                deadline = time.monotonic() + self._timeout(byname[current]) + HOST_SLACK_SECONDS
            elif kind in ("PASS", "FAIL") and len(words) > 1:
                name = words[1].rstrip(":")
                reason = words[2] if len(words) > 2 else ""
                if kind == "FAIL":
                    reason = f"{reason} (log: {self._path(name)})"
                r.status[name] = (kind == "PASS", reason)
            elif kind == "END":
                current = "host"
                deadline = time.monotonic() + HOST_SLACK_SECONDS
            elif kind == "FIGURE" and len(words) > 2:
                f = words[2].split()
                if len(f) == 3:
                    r.figures.append((words[1], f[0], float(f[1]), f[2]))
            elif kind == "NOTE":
                r.notes.append(line[mark + len(MARK) + 5:])
            elif kind == "DONE":
                r.fail_rest("not run: the lab host skipped it")
                return None

    def _check_host_clock(self, line):
        for w in line.split():
            if w.startswith("date="):
                skew = int(w[5:]) - time.time()
                self.results.host_date = int(w[5:])
                if abs(skew) > CLOCK_SKEW_MAX:
                    log(f"warning: emulated host clock is {skew:.0f}s off this machine's")

    @staticmethod
    def _path(name):
        return os.path.relpath(os.path.join(LOGS, f"{name}.log"), ROOT)


    def clean(self):
        """Removes this run's work files (the host initramfs, the direct tree)."""
        shutil.rmtree(self.work, ignore_errors=True)
