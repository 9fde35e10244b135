# SPDX-License-Identifier: Apache-2.0
"""A keel-vmm process under test: its console read line by line on a
thread, its control API reached over the UNIX socket with raw HTTP/1.1
(so the tests do not share code with keel-vmm's own client)."""
import json
import os
import socket
import subprocess
import tempfile
import threading
import time


class Vmm:
    def __init__(self, vmm, args, api=True):
        self.dir = tempfile.mkdtemp(prefix="keel-test-")
        self.sock = os.path.join(self.dir, "api.sock") if api else None
        cmd = [vmm, *args]
        if api:
            cmd += ["--api-socket", self.sock]
        self.lines = []
        self.cond = threading.Condition()
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.err = ""
        threading.Thread(target=self._read_out, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()
        if api:
            deadline = time.time() + 20
            while not os.path.exists(self.sock):
                if self.p.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"keel-vmm did not open its API socket: {self.stderr()!r}")
                time.sleep(0.02)

    def _read_out(self):
        for line in self.p.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def _read_err(self):
        for line in self.p.stderr:
            self.err += line

    def stderr(self):
        return self.err

    def wait_line(self, pred, timeout=20):
        """The first console line (from the start) for which pred is true."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for l in self.lines:
                    if pred(l):
                        return l
                left = deadline - time.time()
                if left <= 0 or self.p.poll() is not None:
                    raise RuntimeError(f"no matching console line; last: {self.lines[-3:]!r}")
                self.cond.wait(min(left, 0.2))

    def counts(self):
        with self.cond:
            return [int(l.split()[1]) for l in self.lines if l.startswith("count ")]

    def wait_count(self, n, timeout=20):
        self.wait_line(lambda l: l.startswith("count ") and int(l.split()[1]) >= n, timeout)

    def request(self, method, path, body=None, raw_body=None, headers=None, timeout=60):
        """(status, parsed JSON reply) for one request."""
        data = raw_body if raw_body is not None else (
            json.dumps(body).encode() if body is not None else b"")
        head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        for k, v in (headers or {"Content-Type": "application/json"}).items():
            head += f"{k}: {v}\r\n"
        head += f"Content-Length: {len(data)}\r\n\r\n"
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.sock)
        try:
            s.sendall(head.encode() + data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (413) and close before reading it all
        reply = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            reply += chunk
        s.close()
        status = int(reply.split(b" ", 2)[1])
        body = reply.split(b"\r\n\r\n", 1)[1]
        return status, json.loads(body)

    def wait_exit(self, timeout=30):
        try:
            return self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise RuntimeError("keel-vmm did not exit")

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.kill()
