"""Helpers for erg serve's tests: test workers (serve_backend.py), an erg
serve in front of them, and raw HTTP/1.1 over sockets (so malformed input
and pipelining can be sent as bytes)."""
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ergtest import ERG, OUT, ROOT, TMP, _ergs, _started, check, fail, log  # noqa: E402,F401

BACKEND = os.path.join(ROOT, "tests", "integration", "serve_backend.py")


def start_backend(name, port=0):
    """A test worker in its own process group; returns (Popen, port)."""
    p = subprocess.Popen([sys.executable, BACKEND, str(port), name], stdout=subprocess.PIPE, text=True,
                         start_new_session=True)
    _started.append(p)
    line = p.stdout.readline().split()
    if len(line) != 2 or line[0] != "ready":
        fail("test worker %s did not start: %r" % (name, line))
    return p, int(line[1])


def free_port():
    """A port nobody listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Serve:
    """erg serve on a free port; .port, .pid, .stop()."""

    def __init__(self, config_text, *args):
        self.config = os.path.join(TMP, "serve-%d.ini" % len(_ergs))
        with open(self.config, "w") as f:
            f.write(config_text)
        self.err_path = os.path.join(TMP, "serve-%d.err" % len(_ergs))
        self.out_path = os.path.join(TMP, "serve-%d.out" % len(_ergs))
        cmd = [ERG, "serve", "--config", self.config, "--listen", "127.0.0.1:0"] + list(args)
        self.proc = subprocess.Popen(cmd, stdout=open(self.out_path, "w"), stderr=open(self.err_path, "w"))
        self.pid = self.proc.pid
        _ergs.append(self)
        self.port = None
        for _ in range(600):
            with open(self.err_path) as f:
                m = re.search(r"listening on [^ ]*:(\d+) ", f.read())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                fail("erg serve exited %d: %s" % (self.proc.returncode, open(self.err_path).read()))
            time.sleep(0.05)
        if not self.port:
            fail("erg serve did not say where it listens: %s" % open(self.err_path).read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                fail("erg serve did not stop within 60 s of SIGINT")
        return self.proc.returncode

    def stderr(self):
        return open(self.err_path).read()

    def stdout(self):
        return open(self.out_path).read()

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def connect(self, timeout=60):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s


class Response:
    def __init__(self, status, headers, body, raw_body, complete):
        self.status = status
        self.headers = headers      # lower-case name -> value
        self.body = body            # decoded (de-chunked)
        self.raw_body = raw_body    # as received after the head
        self.complete = complete    # the framing ended properly

    def json(self):
        return json.loads(self.body)


class Reader:
    """Reads HTTP/1.1 responses off a socket, one after the other."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False

    def _more(self):
        if self.eof:
            return False
        try:
            d = self.sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def _until(self, sep):
        while sep not in self.buf:
            if not self._more():
                return None
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _take(self, n):
        while len(self.buf) < n:
            if not self._more():
                return None
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, head_request=False):
        """The next response, or None if the connection ended first."""
        while True:
            head = self._until(b"\r\n\r\n")
            if head is None:
                return None
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            if status != 100:
                break
        headers = {}
        for ln in lines[1:]:
            if ln:
                k, v = ln.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        if head_request or status in (204, 304):
            return Response(status, headers, b"", b"", True)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body, raw = b"", b""
            while True:
                line = self._until(b"\r\n")
                if line is None:
                    return Response(status, headers, body, raw, False)
                raw += line
                size = int(line.split(b";")[0], 16)
                data = self._take(size + 2)
                if data is None:
                    return Response(status, headers, body, raw + self.buf, False)
                raw += data
                body += data[:-2]
                if size == 0:
                    return Response(status, headers, body, raw, True)
        if "content-length" in headers:
            n = int(headers["content-length"])
            data = self._take(n)
            if data is None:
                return Response(status, headers, self.buf, self.buf, False)
            return Response(status, headers, data, data, True)
        while self._more():
            pass
        body, self.buf = self.buf, b""
        return Response(status, headers, body, body, True)

    def closed(self):
        """True once the peer has closed (after what is buffered)."""
        while self._more():
            pass
        return self.eof


def request_bytes(method, path, body=None, headers=None, close=False):
    h = {"Host": "erg-test"}
    if body is not None:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        h["Content-Type"] = "application/json"
        h["Content-Length"] = str(len(body))
    if close:
        h["Connection"] = "close"
    h.update(headers or {})
    head = "%s %s HTTP/1.1\r\n" % (method, path) + "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
    return head.encode() + (body or b"")


def call(serve, method, path, body=None, headers=None):
    """One request on a fresh connection; returns the Response."""
    s = serve.connect()
    try:
        s.sendall(request_bytes(method, path, body, headers, close=True))
        r = Reader(s).response()
    finally:
        s.close()
    if r is None:
        fail("%s %s: the connection ended without a response" % (method, path))
    return r


def raw(serve, data, timeout=60):
    """Send bytes; returns (Response or None, whether erg closed after it)."""
    s = serve.connect(timeout)
    try:
        s.sendall(data)
        rd = Reader(s)
        r = rd.response()
        closed = rd.closed()
    finally:
        s.close()
    return r, closed


def wait_for(cond, what, timeout=60, explain=None):
    """Poll cond until it is true (no timing is asserted: timeout only stops a
    hang); on a timeout, explain() says what was seen instead."""
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    if explain:
        log(explain())
    fail("%s: not within %d s" % (what, timeout))


def fd_census(pid, port):
    """erg's descriptors: client connections (local port = port, not
    listening), sockets in CLOSE_WAIT (the peer closed, erg did not: a leak),
    other sockets (listeners, worker connections, rings) and the rest."""
    inodes = {}
    for name in ("/proc/%d/net/tcp" % pid, "/proc/%d/net/tcp6" % pid):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    p = line.split()
                    inodes[p[9]] = (int(p[1].rsplit(":", 1)[1], 16), int(p[3], 16))
        except OSError:
            pass
    out = {"clients": 0, "close_wait": 0, "sockets": 0, "other": 0}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if not link.startswith("socket:["):
            out["other"] += 1
            continue
        lport, state = inodes.get(link[8:-1], (0, 0))
        if state == 0x08:
            out["close_wait"] += 1
        elif lport == port and state != 0x0A:
            out["clients"] += 1
        else:
            out["sockets"] += 1
    return out
