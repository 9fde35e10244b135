#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Tests of the lab's own machinery that need no VM: the cpio writer (read
back with GNU cpio), the image cache, scenario headers, the runner's parsing
of the result protocol (fed a made-up serial stream, including a dying and a
hanging lab host) and bench/run's summary. Prints TAP."""
import importlib.machinery
import importlib.util
import io
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from lablib import assets, cpio, labhost, scenarios  # noqa: E402


class CpioTest(unittest.TestCase):
    def test_archive_reads_back_with_gnu_cpio(self):
        buf = io.BytesIO()
        c = cpio.Cpio(buf)
        c.dir("/a/b")
        c.data("/a/b/file", b"hello\n", 0o755)
        c.symlink("/a/link", "/a/b/file")
        c.chardev("/dev/console", 5, 1)
        c.close()
        self.assertEqual(len(buf.getvalue()) % 512, 0)
        listing = subprocess.run(["cpio", "-itv", "--quiet"], input=buf.getvalue(),
                                 capture_output=True, check=True).stdout.decode()
        lines = {ln.split()[-1] if "->" not in ln else ln.split()[-3]: ln
                 for ln in listing.splitlines()}
        self.assertTrue(lines["a/b"].startswith("d"))
        self.assertTrue(lines["a/b/file"].startswith("-rwxr-xr-x"))
        self.assertIn(" 6 ", lines["a/b/file"])
        self.assertTrue(lines["a/link"].startswith("l"))
        self.assertTrue(lines["dev/console"].startswith("c"))
        self.assertIn("5,", lines["dev/console"])
        data = subprocess.run(["cpio", "-i", "--to-stdout", "--quiet", "a/b/file"],
                              input=buf.getvalue(), capture_output=True, check=True).stdout
        self.assertEqual(data, b"hello\n")


class ImageCacheTest(unittest.TestCase):
    def test_rebuilt_only_when_an_input_changes(self):
        with tempfile.TemporaryDirectory() as d:
            old = assets.CACHE
            assets.CACHE = d
            try:
                src = os.path.join(d, "input")
                with open(src, "w") as f:
                    f.write("one")

                def build():
                    img = assets.Image("t")
                    img.file("/x", src)
                    return img.build()

                first = build()
                mtime = os.stat(first).st_mtime_ns
                self.assertEqual(build(), first)
                self.assertEqual(os.stat(first).st_mtime_ns, mtime)
                with open(src, "w") as f:
                    f.write("two")
                second = build()
                self.assertNotEqual(second, first)
                self.assertFalse(os.path.exists(first))
            finally:
                assets.CACHE = old


class ScenarioHeaderTest(unittest.TestCase):
    def test_header_fields(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "blk-x.host")
            with open(p, "w") as f:
                f.write("# SPDX-License-Identifier: Apache-2.0\n# desc: does x\n# timeout: 42\n"
                        "# needs: qemu\n# guest-modules: virtio_blk\nvmm_start\n# desc: not me\n")
            s = scenarios.Scenario(p)
            self.assertEqual((s.name, s.desc, s.timeout), ("blk-x", "does x", 42))
            self.assertEqual((s.needs, s.guest_modules), ({"qemu"}, ["virtio_blk"]))

    def test_every_shipped_scenario_parses(self):
        for kind in ("test", "bench", "demo"):
            for s in scenarios.load(kind).values():
                self.assertTrue(s.desc, s.name)


class HostSetUpTest(unittest.TestCase):
    def scenario(self, name, needs):
        s = scenarios.Scenario.__new__(scenarios.Scenario)
        s.name, s.needs = name, set(needs)
        return s

    def test_numa_nodes_only_when_a_scenario_needs_them(self):
        plain = labhost.Run([self.scenario("a", [])], "keel")
        self.assertEqual(plain._numa_devices(), [])
        numa = labhost.Run([self.scenario("a", []), self.scenario("n", ["numa", "qemu"])], "keel")
        half = labhost.HOST_MEMORY_MIB // 2
        self.assertEqual(numa._numa_devices(), [
            "-object", f"memory-backend-ram,id=hostnode0,size={half}M",
            "-numa", "node,nodeid=0,cpus=0,memdev=hostnode0",
            "-object", f"memory-backend-ram,id=hostnode1,size={half}M",
            "-numa", "node,nodeid=1,cpus=1,memdev=hostnode1"])

    @unittest.skipUnless(shutil.which("busybox"), "no busybox (scripts/deps lab)")
    def test_qemu_gets_the_devices_keel_is_given(self):
        lab_sh = os.path.join(HERE, "host", "lab.sh")
        out = subprocess.run(["busybox", "sh", "-c", f". {lab_sh}; vmm_qemu_devices --rng --balloon on"],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out)
        self.assertEqual(out.stdout.split(), [
            "-object", "rng-random,id=rng0,filename=/dev/urandom", "-device",
            "virtio-rng-pci,rng=rng0", "-device", "virtio-balloon-pci"])
        out = subprocess.run(["busybox", "sh", "-c",
                              f". {lab_sh}; vmm_qemu_devices --balloon deflate-on-oom=on"],
                             capture_output=True, text=True)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("--balloon deflate-on-oom=on has no QEMU counterpart", out.stdout)


class FakeProc:
    returncode = 0

    def wait(self):
        return 0


class ProtocolTest(unittest.TestCase):
    def watch(self, text, names, end=True, slack=None):
        text = text.replace("date=1", f"date={int(time.time())}")
        with tempfile.TemporaryDirectory() as d:
            old = labhost.LOGS, labhost.HOST_SLACK_SECONDS
            labhost.LOGS = d
            if slack is not None:
                labhost.HOST_SLACK_SECONDS = slack
            try:
                scen = []
                for n in names:
                    s = scenarios.Scenario.__new__(scenarios.Scenario)
                    s.name, s.timeout = n, 0 if slack is not None else 300
                    scen.append(s)
                run = labhost.Run(scen, "keel")
                run.direct = False
                q = queue.Queue()
                for line in text.splitlines(True):
                    q.put(line.encode())
                if end:
                    q.put(None)
                run.logs = {}
                trouble = run._watch(FakeProc(), q)
                for f in run.logs.values():
                    f.close()
                path = os.path.join(d, names[0] + ".log")
                log = open(path).read() if os.path.exists(path) else ""
                return run, trouble, log
            finally:
                labhost.LOGS, labhost.HOST_SLACK_SECONDS = old

    def test_results_figures_and_logs(self):
        run, trouble, log = self.watch(
            "SeaBIOS\nKEEL-LAB: HOST-UP date=1 cpus=2\nKEEL-LAB: BEGIN a\nguest says hi\n"
            "KEEL-LAB: FIGURE a boot.keel 12.5 ms\nKEEL-LAB: PASS a\nKEEL-LAB: END a\n"
            "KEEL-LAB: BEGIN b\nKEEL-LAB: FAIL b: guest nproc is 1, expected 4\n"
            "KEEL-LAB: END b\nKEEL-LAB: DONE\n", ["a", "b"])
        r = run.results
        self.assertIsNone(trouble)
        self.assertEqual(r.status["a"], (True, ""))
        self.assertFalse(r.status["b"][0])
        self.assertIn("guest nproc is 1, expected 4", r.status["b"][1])
        self.assertEqual(r.figures, [("a", "boot.keel", 12.5, "ms")])
        self.assertIn("guest says hi", log)

    def test_host_death_fails_the_scenario_and_marks_it_for_a_retry(self):
        run, trouble, _ = self.watch(
            "KEEL-LAB: HOST-UP date=1\nKEEL-LAB: BEGIN a\nKernel panic - not syncing\n", ["a", "b"])
        self.assertEqual(trouble, "lab host died in a")
        self.assertFalse(run.results.status["a"][0])
        self.assertNotIn("b", run.results.status)

    def test_a_hung_host_times_the_scenario_out(self):
        run, trouble, _ = self.watch("KEEL-LAB: HOST-UP date=1\nKEEL-LAB: BEGIN a\n",
                                     ["a", "b"], end=False, slack=0)
        self.assertEqual(trouble, "host hung in a")
        self.assertIn("timeout after 0s", run.results.status["a"][1])

    def retried(self, outcomes, direct=False):
        """Run.run over scenarios a and b where boot i of the lab host
        leaves outcomes[i] ({name: passed}; a name left out was not reached)."""
        ss = []
        for n in ("a", "b"):
            s = scenarios.Scenario.__new__(scenarios.Scenario)
            s.name, s.timeout = n, 300
            ss.append(s)
        run = labhost.Run(ss, "keel")
        boots = iter(outcomes)

        def once(_direct):
            for n, ok in next(boots).items():
                run.results.status[n] = (ok, "" if ok else f"{n} broke")
            return None

        run._run_once = once
        return run.run(direct)

    def test_a_failed_scenario_runs_again_on_a_fresh_host(self):
        r = self.retried([{"a": False, "b": True}, {"a": True}])
        self.assertEqual(r.status["a"], (True, ""))
        self.assertEqual(r.retries, [("a", 1, "a broke")])

    def test_three_failed_attempts_fail_the_scenario(self):
        r = self.retried([{"a": False, "b": True}, {"a": False}, {"a": False}])
        self.assertEqual(r.status["a"], (False, "a broke"))
        self.assertEqual([t[1] for t in r.retries], [1, 2])

    def test_lab_host_cpus(self):
        def cpus(needs, **kw):
            s = scenarios.Scenario.__new__(scenarios.Scenario)
            s.name, s.timeout, s.needs = "a", 300, set(needs)
            return labhost.Run([s], "keel", **kw)._host_cpus()

        old = os.environ.pop("KEEL_LAB_HOST_CPUS", None)
        try:
            self.assertEqual(cpus([]), 1)
            self.assertEqual(cpus(["scratch"]), 1)
            self.assertEqual(cpus(["numa"]), 2)
            self.assertEqual(cpus(["smp"]), 2)
            self.assertEqual(cpus([], host_cpus=2), 2)
        finally:
            if old is not None:
                os.environ["KEEL_LAB_HOST_CPUS"] = old

    def test_no_second_attempt_on_hardware_virtualization(self):
        r = self.retried([{"a": False, "b": True}], direct=True)
        self.assertEqual(r.status["a"], (False, "a broke"))
        self.assertEqual(r.retries, [])


class BenchSummaryTest(unittest.TestCase):
    def setUp(self):
        loader = importlib.machinery.SourceFileLoader(
            "bench_run", os.path.join(assets.ROOT, "bench", "run"))
        spec = importlib.util.spec_from_loader("bench_run", loader)
        self.bench = importlib.util.module_from_spec(spec)
        loader.exec_module(self.bench)

    def test_median_ratio_and_null_keel(self):
        figs = [("s", "boot-to-init.keel", v, "ms") for v in (30, 10, 20)] + \
               [("s", "boot-to-init.qemu-microvm", v, "ms") for v in (40, 50, 60)]
        o = self.bench.summarise("boot-to-init", self.bench.collect(figs)["boot-to-init"], "w", "c")
        self.assertEqual((o["keel"], o["peers"]["qemu-microvm"], o["peers"]["qemu-q35"]),
                         (20, 50, None))
        self.assertEqual(o["ratios"], {"qemu-microvm": 0.4, "qemu-q35": None})
        self.assertEqual((o["better"], o["unit"]), ("lower", "ms"))
        o = self.bench.summarise("vmm-private-memory", {"qemu-q35": [2048]}, "w", "c")
        self.assertIsNone(o["keel"])
        self.assertEqual(o["peers"]["qemu-q35"], 2.0)




def main():
    tests = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    flat = []

    def walk(t):
        if isinstance(t, unittest.TestSuite):
            for x in t:
                walk(x)
        else:
            flat.append(t)

    walk(tests)
    print(f"1..{len(flat)}")
    failed = 0
    for i, t in enumerate(flat, 1):
        r = unittest.TestResult()
        t.run(r)
        ok = r.wasSuccessful()
        failed += not ok
        print(f"{'ok' if ok else 'not ok'} {i} - {t.id().split('.', 1)[1]}")
        for _, tb in r.errors + r.failures:
            print("# " + tb.replace("\n", "\n# "))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
