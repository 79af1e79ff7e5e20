"""erg serve's worker-side timeouts and its drain, over real loopback
sockets: a worker that accepts and never answers gets the request answered
504 (JSON error) after --worker-timeout, one that stalls inside a stream
has the client's stream cut, one whose listen queue is full (the connect
hangs) is given up after --worker-connect-timeout (504); other models are
served meanwhile. On SIGTERM erg stops accepting, closes idle connections,
finishes the request under way (connection: close), and exits 0 with its
summary; a second signal ends the drain at once."""
import signal
import socket
import threading

from serve_common import Reader, Serve, call, check, fail, log, request_bytes, start_backend, wait_for


class HeldWorker:
    """A worker on a thread: 'silent' reads requests and never answers;
    'stall' sends a chunked head and one chunk, then nothing; 'held'
    answers 200 once .release is set. .got is set when a request arrived."""

    def __init__(self, mode):
        self.mode = mode
        self.got = threading.Event()
        self.release = threading.Event()
        self.conns = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:  # health checks connect and close
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            self.got.set()
            if self.mode == "stall":
                c.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                          b"transfer-encoding: chunked\r\n\r\n10\r\ndata: {\"n\": 1}\n\n\r\n")
            elif self.mode == "held":
                self.release.wait()
                body = b'{"object":"chat.completion","held":true}'
                c.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                          % (len(body), body))
            c.recv(65536)  # until erg closes (or forever)
        except OSError:
            pass


def full_listener():
    """A port whose accept queue is full: a connect to it hangs (the SYN is
    dropped). Returns (the listening socket, the sockets filling it)."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    fill = []
    for _ in range(2):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(ls.getsockname())
        fill.append(s)
    return ls, fill


def timeouts():
    silent, stall = HeldWorker("silent"), HeldWorker("stall")
    _, live = start_backend("live")
    full, fill = full_listener()
    config = ("[model silent]\nparams = 1e9\nworker = 127.0.0.1:%d\n"
              "[model stall]\nparams = 1e9\nworker = 127.0.0.1:%d\n"
              "[model full]\nparams = 1e9\nworker = 127.0.0.1:%d\n"
              "[model live]\nparams = 1e9\nworker = 127.0.0.1:%d\n"
              % (silent.port, stall.port, full.getsockname()[1], live))
    serve = Serve(config, "--threads", "1", "--health-interval", "1h", "--no-energy",
                  "--worker-timeout", "0.5", "--worker-connect-timeout", "0.5")
    # the silent worker's request is open while another model is served
    s = serve.connect()
    s.sendall(request_bytes("POST", "/v1/chat/completions", {"model": "silent"}))
    if not silent.got.wait(60):
        fail("the silent worker never got the request")
    check(call(serve, "POST", "/v1/chat/completions", {"model": "live"}).status == 200,
          "another model is served while a worker is silent")
    rd = Reader(s)
    r = rd.response()
    check(r is not None and r.status == 504 and r.json()["error"]["code"] == "worker_timeout",
          "a worker that never answers: 504 JSON error after --worker-timeout")
    check(r is not None and r.headers.get("x-erg-model") == "silent", "... naming the model")
    s.sendall(request_bytes("POST", "/v1/chat/completions", {"model": "live"}))
    r = rd.response()
    check(r is not None and r.status == 200, "the client's connection goes on after the 504")
    s.close()

    r = call(serve, "POST", "/v1/chat/completions", {"model": "stall", "stream": True})
    check(r.status == 200 and b'data: {"n": 1}' in r.body and not r.complete,
          "a worker stalling inside a stream: the client gets what came, then the stream is cut")

    r = call(serve, "POST", "/v1/chat/completions", {"model": "full"})
    check(r.status == 504 and r.json()["error"]["code"] == "worker_timeout" and
          "connect" in r.json()["error"]["message"],
          "a worker whose connect hangs: 504 after --worker-connect-timeout")
    check(call(serve, "GET", "/healthz").status == 200, "erg serves on after the timeouts")
    check(serve.stop() == 0, "erg serve exits 0")
    for x in fill + [full]:
        x.close()


def drain():
    held = HeldWorker("held")
    config = "[model held]\nparams = 1e9\nworker = 127.0.0.1:%d\n" % held.port
    serve = Serve(config, "--threads", "2", "--health-interval", "1h", "--no-energy", "0.2")
    idle = serve.connect()
    check(call(serve, "GET", "/healthz").status == 200, "erg serve answers before the drain")
    busy = serve.connect()
    busy.sendall(request_bytes("POST", "/v1/chat/completions", {"model": "held"}))
    if not held.got.wait(60):
        fail("the held worker never got the request")
    serve.proc.send_signal(signal.SIGTERM)

    def refused():
        try:
            socket.create_connection(("127.0.0.1", serve.port), timeout=5).close()
            return False
        except ConnectionRefusedError:
            return True
    wait_for(refused, "after SIGTERM erg stops accepting")
    rd = Reader(idle)
    check(rd.response() is None and rd.closed(), "an idle keep-alive connection is closed by the drain")
    check(serve.proc.poll() is None, "erg waits for the request under way")
    held.release.set()
    rd = Reader(busy)
    r = rd.response()
    check(r is not None and r.status == 200 and r.complete and r.json().get("held"),
          "the request under way at SIGTERM is answered in full")
    check(r is not None and r.headers.get("connection") == "close", "... with connection: close")
    check(rd.closed(), "... and its connection ends")
    try:
        rc = serve.proc.wait(timeout=60)
    except Exception:
        fail("erg serve did not exit after the drain")
    check(rc == 0, "erg serve exits 0 after the drain (got %s)" % rc)
    check("AVG/S" in serve.stdout() and any(ln.startswith("held") and " 1 " in ln
                                            for ln in serve.stdout().split("AVG/S")[-1].splitlines()),
          "... and prints its summary, counting the drained request")

    # a second signal ends the drain without waiting for the worker
    held2 = HeldWorker("held")
    config = "[model held]\nparams = 1e9\nworker = 127.0.0.1:%d\n" % held2.port
    serve = Serve(config, "--threads", "1", "--health-interval", "1h", "--no-energy")
    busy = serve.connect()
    busy.sendall(request_bytes("POST", "/v1/chat/completions", {"model": "held"}))
    if not held2.got.wait(60):
        fail("the held worker never got the request")
    serve.proc.send_signal(signal.SIGTERM)
    wait_for(refused, "after SIGTERM erg stops accepting")
    serve.proc.send_signal(signal.SIGTERM)
    try:
        rc = serve.proc.wait(timeout=60)
    except Exception:
        fail("a second SIGTERM did not end the drain")
    check(rc == 0, "a second signal ends the drain, exit 0 (got %s)" % rc)
    rd = Reader(busy)
    check(rd.response() is None, "... and the request left unanswered gets no answer")
    busy.close()
    held2.release.set()


def main():
    timeouts()
    drain()
    log("PASS")


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    main()
