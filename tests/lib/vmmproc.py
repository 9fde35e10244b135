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
        self.partial_last = False  # the last line had no newline (cut off at exit)
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
                self.partial_last = not line.endswith("\n")
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
        """The counter's values so far, without a last line cut off at exit."""
        with self.cond:
            lines = self.lines[:-1] if self.partial_last else self.lines
            return [int(l.split()[1]) for l in lines if l.startswith("count ")]

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
        try:
            s.connect(self.sock)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise ConnectionError(f"{method} {path}: {e}") from None
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
        if not reply:
            raise ConnectionError(f"{method} {path}: no reply (keel-vmm exited?)")
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


def joined_console(first, second):
    """The console of a VM that moved from `first` to `second` (a migration or
    a restore): a line the first left unfinished continues on the second."""
    a, b = list(first.lines), list(second.lines)
    if first.partial_last and a and b:
        return a[:-1] + [a[-1] + b[0]] + b[1:]
    return a + b


def blk_passes(lines):
    """(pass, ok) of every whole "blk N ok|BAD" line of the mini guest's
    virtio-blk driver (its command line "v")."""
    out = []
    for l in lines:
        w = l.split()
        if len(w) == 3 and w[0] == "blk" and w[1].isdigit() and w[2] in ("ok", "BAD"):
            out.append((int(w[1]), w[2] == "ok"))
    return out


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on (for --incoming)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def incoming(vmm, port, extra=(), timeout=10):
    """A keel-vmm --incoming on 127.0.0.1:port, returned once it listens
    (it serves no API until the VM runs)."""
    v = Vmm(vmm, ["--incoming", f"tcp:127.0.0.1:{port}", "--console", "stdio", *extra], api=False)
    deadline = time.time() + timeout
    while "waiting for a migration" not in v.stderr():
        if time.time() > deadline or v.p.poll() is not None:
            v.kill()
            raise RuntimeError(f"the target did not listen: {v.stderr()!r}")
        time.sleep(0.02)
    return v

