"""Request windows on a single-threaded server with keep-alive clients, as
erg top cuts them from the socket hooks:
  (a) connection A is answered and stays open, idle, while B runs a longer
      request on the same thread: A's CPU is at most its window and B gets
      the bulk of the CPU and joules;
  (b) GET /health and /metrics are not request lines, /v1/... are; a request
      line split over two sends is still read;
  (c) a streamed (SSE) response's sse_events is the number of data: lines sent;
  (d) start and end are unix seconds inside the test's own time.time() window;
  (e) on this kernel the sock tracepoints run (tp_btf), and --socket-hooks
      syscalls and raw_tp see the same requests;
  (f) with erg held up at each tick between draining the socket events and
      stamping the open requests' CPU (ERG_TEST_TICK_GAP_MS, as a preempted
      erg on a busy machine), a B that starts in that gap keeps all its CPU.
The server is this file run with --server: one thread, one selector loop."""
import os
import re
import selectors
import socket
import subprocess
import sys
import time

SSE_EVENTS = 25


# ---- the server (python3 top_keepalive.py --server) ----

def burn(ms):
    """Use ms of CPU (process time, so a busy machine only makes it slower)."""
    end = time.process_time() + ms / 1000.0
    x = 0
    while time.process_time() < end:
        x += 1
    return x


def respond(conn, method, path):
    query = dict(kv.split("=", 1) for kv in path.partition("?")[2].split("&") if "=" in kv)
    burn(int(query.get("work", "0")))
    if "sse" in query:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
        for i in range(int(query["sse"])):
            conn.sendall(b'data: {"token": %d}\n\n' % i)
            time.sleep(0.005)
        return False  # close: the stream ends with the connection
    status = b"200 OK" if path.startswith(("/v1/", "/health", "/metrics")) else b"404 Not Found"
    body = b'{"ok": true, "path": "%s"}' % path.encode()
    conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                 b"Connection: keep-alive\r\n\r\n" % len(body) + body)
    return True


def serve():
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ, None)
    bufs = {}
    print("port=%d pid=%d" % (lsock.getsockname()[1], os.getpid()), flush=True)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                conn, _ = lsock.accept()
                bufs[conn] = b""
                sel.register(conn, selectors.EVENT_READ, "conn")
                continue
            conn = key.fileobj
            data = conn.recv(65536)
            keep = bool(data)
            bufs[conn] += data
            while keep and b"\r\n\r\n" in bufs[conn]:
                head, _, rest = bufs[conn].partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                length = 0
                for h in lines[1:]:
                    if h.lower().startswith("content-length:"):
                        length = int(h.split(":", 1)[1])
                if len(rest) < length:
                    break
                bufs[conn] = rest[length:]
                method, path, _ = lines[0].split(" ", 2)
                keep = respond(conn, method, path)
            if not keep:
                sel.unregister(conn)
                del bufs[conn]
                conn.close()


if len(sys.argv) > 1 and sys.argv[1] == "--server":
    serve()
    sys.exit(0)


# ---- the test ----

import ergtest as t  # noqa: E402


def request(sock, method, path, body=b""):
    """Send one request on a kept-alive connection and read its answer."""
    sock.sendall(b"%s %s HTTP/1.1\r\nHost: erg-test\r\nContent-Length: %d\r\n\r\n" % (
        method.encode(), path.encode(), len(body)) + body)
    return read_response(sock)


def read_response(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            t.fail("the test server closed a connection mid-response")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    while len(body) < length:
        body += sock.recv(4096)
    return head.split(b" ")[1]


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def scenario(port):
    """Every client of one run; returns the counted paths it expects."""
    # (a) A answered, then idle on its open connection while B works
    a = connect(port)
    t.check(request(a, "POST", "/v1/a?work=10", b"{}") == b"200", "A answered")
    a_done = time.monotonic()
    b = connect(port)
    t.check(request(b, "POST", "/v1/b?work=400", b"{}") == b"200", "B answered")
    time.sleep(max(0.0, 1.5 - (time.monotonic() - a_done)))
    a.close()
    b.close()
    # (b) health checks and metrics on one kept-alive connection, then an
    # inference path; a request line split over two sends
    c = connect(port)
    for path in ("/health", "/metrics", "/health", "/v1/models"):
        request(c, "GET", path)
    c.close()
    d = connect(port)
    d.sendall(b"GET /v1/spl")
    time.sleep(0.05)
    d.sendall(b"it HTTP/1.1\r\nHost: erg-test\r\nContent-Length: 0\r\n\r\n")
    read_response(d)
    d.close()
    # (c) a stream of SSE data: lines, one send each
    s = connect(port)
    s.sendall(b"POST /v1/completions?sse=%d HTTP/1.1\r\nHost: erg-test\r\nContent-Length: 2\r\n\r\n{}"
              % SSE_EVENTS)
    got = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.close()
    t.check(got.count(b"\ndata: ") + got.startswith(b"data: ") == SSE_EVENTS,
            "the stream carried %d data: lines" % SSE_EVENTS)
    return ["/v1/a?work=10", "/v1/b?work=400", "/v1/models", "/v1/split", "/v1/completions?sse=%d" % SSE_EVENTS]


def gap_scenario(port, rounds):
    """A asks, then idles on its open connection while B's request of 400 ms
    starts; B's start must not be charged to A when erg is slow at a tick."""
    a = connect(port)
    for i in range(rounds):
        t.check(request(a, "POST", "/v1/a?work=1&round=%d" % i, b"{}") == b"200", "A answered")
        time.sleep(0.03 + 0.07 * i)  # B starts at a different phase of the tick each round
        b = connect(port)
        t.check(request(b, "POST", "/v1/b?work=400&round=%d" % i, b"{}") == b"200", "B answered")
        b.close()
    a.close()


def run(port, pid, hooks):
    args = ["top", "--pid", "%d=srv" % pid, "--json", "0.5"]
    if hooks:
        args += ["--socket-hooks", hooks]
    erg = t.Erg(*args)
    first = erg.wait_for(lambda l: l.get("type") == "total")[0]
    t0 = time.time()
    expected = scenario(port)
    t1 = time.time()
    erg.wait_for(lambda l: len([x for x in erg.lines() if x.get("type") == "request"]) >= len(expected), timeout=20)
    erg.wait_ticks(2)  # nothing else may come
    if os.environ.get("ERG_TEST_DEBUG"):
        [t.log(repr(l)) for l in erg.lines() if l.get("type") == "request"]
    lines = erg.lines()
    t.check(erg.stop() == 0, "erg exits 0")
    t.check_conservation(lines)
    reqs = {r["path"]: r for r in lines if r.get("type") == "request"}
    t.check(len(reqs) == len([r for r in lines if r.get("type") == "request"]), "one line per request")
    t.check(sorted(reqs) == sorted(expected),
            "request lines are the /v1/ requests only, not /health or /metrics (%s)" % sorted(reqs))
    return first, reqs, t0, t1


t.require_bpf()
srv = subprocess.Popen([sys.executable, "-B", os.path.abspath(__file__), "--server"], stdout=subprocess.PIPE,
                       text=True, start_new_session=True)
t._started.append(srv)
m = re.search(r"port=(\d+) pid=(\d+)", srv.stdout.readline())
if not m:
    t.fail("the test server did not start")
port, pid = int(m.group(1)), int(m.group(2))

first, reqs, t0, t1 = run(port, pid, None)
t.check(first["sockets"] == "tp_btf",
        "the total line names the socket hooks: %s (tp_btf expected on kernel %s)" % (first["sockets"], os.uname().release))
a, b = reqs["/v1/a?work=10"], reqs["/v1/b?work=400"]
t.log("A: duration %.3f s, cpu %.3f s, %.4f J; B: duration %.3f s, cpu %.3f s, %.4f J" % (
    a["duration_s"], a["cpu_s"], a["joules"], b["duration_s"], b["cpu_s"], b["joules"]))
t.check(a["cpu_s"] <= a["duration_s"] + 0.001,
        "idle keep-alive A: cpu_s %.4f <= its duration_s %.4f on a one-thread server" % (a["cpu_s"], a["duration_s"]))
# the server burns 400 ms of process time, so B uses at least that much CPU
# between its request and its response, and erg reads both ends' CPU in BPF
t.check(b["cpu_s"] >= 0.39, "B, 400 ms of work, is charged %.3f CPU s" % b["cpu_s"])
t.check(b["cpu_s"] > 5 * a["cpu_s"] and b["nj"] > 5 * a["nj"],
        "B gets the bulk: cpu %.3f vs %.3f s, %d vs %d nJ" % (b["cpu_s"], a["cpu_s"], b["nj"], a["nj"]))
t.check(all(r["method"] == ("GET" if "models" in p or "split" in p else "POST") for p, r in reqs.items()),
        "methods read from the request line")
t.check(all(r["status"] == 200 and not r["partial"] for r in reqs.values()), "status 200, none partial")
sse = reqs["/v1/completions?sse=%d" % SSE_EVENTS]
t.check(sse["sse_events"] == SSE_EVENTS, "sse_events %d = %d data: lines sent" % (sse["sse_events"], SSE_EVENTS))
t.check(all(r["sse_events"] == 0 for p, r in reqs.items() if "sse" not in p), "no SSE events in plain responses")
t.check(all(t0 <= r["start"] <= r["end"] <= t1 for r in reqs.values()),
        "start <= end, unix seconds within the test's window [%.3f, %.3f]" % (t0, t1))
t.check(abs((b["end"] - b["start"]) - b["duration_s"]) < 1e-6, "end - start = duration_s")

first, reqs_sys, _, _ = run(port, pid, "syscalls")
t.check(first["sockets"] == "syscalls", "--socket-hooks syscalls runs the syscall tracepoints")
t.check(len(reqs_sys) == len(reqs), "the syscall hooks see the same %d requests" % len(reqs))
t.check(reqs_sys["/v1/completions?sse=%d" % SSE_EVENTS]["sse_events"] == SSE_EVENTS, "and the same SSE count")
t.check(reqs_sys["/v1/b?work=400"]["cpu_s"] >= 0.39, "and B's 400 ms: %.3f CPU s" % reqs_sys["/v1/b?work=400"]["cpu_s"])

first, reqs_raw, _, _ = run(port, pid, "raw_tp")
t.check(first["sockets"] == "raw_tp", "--socket-hooks raw_tp runs the raw_tp programs")
t.check(sorted(reqs_raw) == sorted(reqs), "the raw_tp programs see the same %d requests" % len(reqs))
t.check(reqs_raw["/v1/b?work=400"]["cpu_s"] >= 0.39, "and B's 400 ms: %.3f CPU s" % reqs_raw["/v1/b?work=400"]["cpu_s"])

# (f) erg held up at each tick between draining the socket events and
# stamping the open requests with their CPU, as a preempted erg is on a busy
# machine: 400 of every 500 ms, so most B requests start inside that gap.
ROUNDS = 8
erg = t.Erg("top", "--pid", "%d=srv" % pid, "--json", "0.5", env={"ERG_TEST_TICK_GAP_MS": "400"})
erg.wait_for(lambda l: l.get("type") == "total")
gap_scenario(port, ROUNDS)
erg.wait_for(lambda l: len([x for x in erg.lines() if x.get("type") == "request" and "/v1/b" in x["path"]]) >= ROUNDS,
             timeout=20)
lines = erg.lines()
t.check(erg.stop() == 0, "erg exits 0")
t.check_conservation(lines)
bs = [r for r in lines if r.get("type") == "request" and "/v1/b" in r["path"]]
t.log("with a 400 ms gap at each tick, B is charged %s CPU s" % ", ".join("%.3f" % r["cpu_s"] for r in bs))
t.check(len(bs) == ROUNDS and all(r["cpu_s"] >= 0.39 for r in bs),
        "a request that starts while erg is held up at a tick keeps its CPU: B's 400 ms are charged %s CPU s"
        % ", ".join("%.3f" % r["cpu_s"] for r in bs))
t.cleanup()
