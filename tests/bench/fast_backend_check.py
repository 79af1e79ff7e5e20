#!/usr/bin/env python3
"""Checks the benchmark backend (tests/bench/fast_backend) over real loopback
sockets, so that make bench measures proxies against a backend that frames
HTTP/1.1 correctly: answers, SSE streams, pipelining, any split of the bytes,
HTTP/1.0, the errors of user/serve/http_parse.h, and a clean stop.

    tests/bench/fast_backend_check.py OUT/bench/fast_backend

Prints "ok: ..." per check; the first failure prints "FAIL: ..." and exits 1.
"""
import json
import re
import signal
import socket
import subprocess
import sys
import time

EVENTS = 3
CHAT = b'{"model":"bench","messages":[{"role":"user","content":"hi"}]}'
STREAM = b'{"model":"bench","stream":true,"messages":[]}'


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def post(body, extra=b"", version=b"1.1"):
    return (b"POST /v1/chat/completions HTTP/" + version + b"\r\nHost: b\r\n"
            b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\n" + extra + b"\r\n" + body)


def get(path, extra=b""):
    return b"GET " + path + b" HTTP/1.1\r\nHost: b\r\n" + extra + b"\r\n"


class Conn:
    """A client connection that reads whole responses (Content-Length,
    chunked, or until close) and says whether the server closed."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.closed = False

    def send(self, data, split=None):
        if split:
            for i in range(0, len(data), split):
                self.s.sendall(data[i:i + split])
                time.sleep(0.001)
        else:
            self.s.sendall(data)

    def _more(self):
        try:
            d = self.s.recv(65536)
        except ConnectionResetError:
            # closed with our bytes unread (after an error answer): a reset
            d = b""
        except socket.timeout:
            fail(f"no answer within 10 s; have {self.buf[:200]!r}")
        if not d:
            self.closed = True
        self.buf += d
        return bool(d)

    def _take_until(self, sep):
        while sep not in self.buf:
            if not self._more():
                fail(f"connection closed before {sep!r}; have {self.buf[:200]!r}")
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _take(self, n):
        while len(self.buf) < n:
            if not self._more():
                fail(f"connection closed {n - len(self.buf)} bytes short")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self):
        """(status, headers dict lower-case, decoded body)"""
        head = self._take_until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if l)}
        if "content-length" in hdrs:
            return status, hdrs, self._take(int(hdrs["content-length"]))
        if hdrs.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int(self._take_until(b"\r\n").strip(), 16)
                if size == 0:
                    self._take_until(b"\r\n")
                    return status, hdrs, body
                body += self._take(size)
                if self._take(2) != b"\r\n":
                    fail("chunk not followed by CRLF")
        while self._more():
            pass
        body, self.buf = self.buf, b""
        return status, hdrs, body

    def at_eof(self):
        self.s.settimeout(5)
        while self._more():
            pass
        return self.closed and not self.buf


def check_chat(status, hdrs, body):
    if status != 200 or json.loads(body)["object"] != "chat.completion":
        fail(f"chat answer {status} {body[:120]!r}")


def check_stream(status, body):
    events = re.findall(rb"^data: \{.*\}$", body, re.M)
    if status != 200 or len(events) != EVENTS or not body.endswith(b"data: [DONE]\n\n"):
        fail(f"stream answer {status}, {len(events)} events (want {EVENTS}): {body[-80:]!r}")
    for e in events:
        json.loads(e[6:])


def run_checks(port):
    c = Conn(port)
    c.send(post(CHAT))
    check_chat(*c.response())
    c.send(post(STREAM))
    status, hdrs, body = c.response()
    if hdrs.get("content-type") != "text/event-stream":
        fail(f"stream content-type {hdrs.get('content-type')}")
    check_stream(status, body)
    st, _, body = (c.send(get(b"/health")), c.response())[1]
    if st != 200 or json.loads(body) != {"status": "ok"}:
        fail(f"/health answered {st} {body!r}")
    print("ok: JSON completion, SSE stream and /health on one keep-alive connection")

    c.send(post(CHAT) + get(b"/health") + post(STREAM) + get(b"/nope"))
    answers = [c.response() for _ in range(4)]
    check_chat(*answers[0])
    check_stream(answers[2][0], answers[2][2])
    if [a[0] for a in answers] != [200, 200, 200, 404]:
        fail(f"pipelined statuses {[a[0] for a in answers]}")
    print("ok: four pipelined requests answered in order")

    c.send(post(STREAM) + post(CHAT), split=7)
    check_stream(*(lambda r: (r[0], r[2]))(c.response()))
    check_chat(*c.response())
    print("ok: requests split in 7-byte pieces")

    for req, want, what in ((get(b"/v1/chat/completions"), 405, "wrong method"),
                            (post(b"{nope"), 400, "a body that is not JSON"),
                            (get(b"/x?y=1"), 404, "an unknown route")):
        c.send(req)
        st, _, body = c.response()
        if st != want or "error" not in json.loads(body):
            fail(f"{what}: {st} {body!r}, want {want} with a JSON error")
    print("ok: 405, 400 and 404 answered with a JSON error, connection kept")

    c.send(post(CHAT, extra=b"Connection: close\r\n"))
    check_chat(*c.response())
    if not c.at_eof():
        fail("Connection: close did not close")
    c = Conn(port)
    c.send(post(STREAM, version=b"1.0"))
    status, hdrs, body = c.response()
    if "transfer-encoding" in hdrs or not c.closed:
        fail("an HTTP/1.0 stream must not be chunked and must end with the connection")
    check_stream(status, body)
    print("ok: Connection: close, and an HTTP/1.0 stream ended by the close")

    for raw, want, what in (
            (b"POST /v1/chat/completions HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "Content-Length with Transfer-Encoding"),
            (b"GET /health HTTP/1.1\r\nHost: b\r\n folded\r\n\r\n", 400, "obs-fold"),
            (b"GET /health HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n", 431, "a 20 kB header"),
            (post(b"x" * 70000), 413, "a 70 kB body")):
        c = Conn(port)
        c.send(raw + get(b"/health"))
        st, hdrs, _ = c.response()
        if st != want or hdrs.get("connection") != "close" or not c.at_eof():
            fail(f"{what}: {st}, connection {hdrs.get('connection')}, want {want} and close")
    print("ok: smuggling, obs-fold, header and body limits: 400/431/413 and close")
    return 1 + 1 + 1 + 4 + 2 + 3 + 1 + 1      # requests answered 200-5xx that the backend counts


def main():
    if len(sys.argv) != 2:
        fail("usage: fast_backend_check.py PATH/TO/fast_backend")
    p = subprocess.Popen([sys.argv[1], "--threads", "2", "--events", str(EVENTS)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+),", line)
        if not m:
            fail(f"fast_backend did not start: {line!r} {p.stderr.read() if p.poll() is not None else ''}")
        served = run_checks(int(m.group(1)))
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=10)
        if p.returncode != 0:
            fail(f"fast_backend exited {p.returncode} on SIGTERM: {err.strip()}")
        m = re.search(r"served (\d+) requests", err)
        if not m or int(m.group(1)) != served:
            fail(f"fast_backend said {err.strip()!r}, want {served} requests served")
        print(f"ok: stopped cleanly on SIGTERM after {served} requests")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
