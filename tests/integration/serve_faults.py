"""erg serve under faults, over real loopback sockets: slow clients time
out without holding others back, half-closed connections are answered, a
worker down is retried elsewhere or answered 502, the health check brings a
worker back, a worker killed mid-stream cuts only that stream, no file
descriptor leaks after a fault storm, and 1,500 idle connections do not
stop new requests."""
import json
import os
import resource
import signal
import socket
import time

from serve_common import (TMP, Reader, Serve, call, check, fail, fd_census, free_port, log, request_bytes,
                          start_backend, wait_for)


def metrics(serve):
    return call(serve, "GET", "/metrics").body.decode()


def slow_clients(serve):
    # a head that never ends, and a body that never ends: 408 and closed,
    # while other clients are served
    slow_head = serve.connect()
    slow_head.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Le")
    slow_body = serve.connect()
    slow_body.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"mod")
    idle = serve.connect()
    for i in range(5):
        check(call(serve, "POST", "/v1/chat/completions", {"model": "retry", "i": i}).status == 200,
              "served while two slow clients hold connections (%d)" % i)
    for name, s in (("slow head", slow_head), ("slow body", slow_body)):
        rd = Reader(s)
        r = rd.response()
        check(r is not None and r.status == 408 and r.json()["error"]["code"] == "request_timeout",
              "%s: 408 after --client-timeout" % name)
        check(rd.closed(), "%s: closed after the 408" % name)
        s.close()
    rd = Reader(idle)
    check(rd.response() is None and rd.closed(), "an idle connection is closed after --client-timeout")
    idle.close()


def half_closed(serve):
    s = serve.connect()
    s.sendall(request_bytes("POST", "/v1/chat/completions", {"model": "retry", "delay_s": 0.2}))
    s.shutdown(socket.SHUT_WR)
    rd = Reader(s)
    r = rd.response()
    check(r is not None and r.status == 200, "a client that half-closes after its request gets the answer")
    check(rd.closed(), "... and then the connection ends")
    s.close()


def retried(config, live_port, dead_port):
    # no health check yet (1 h): the refusing worker is tried, and the
    # request goes on to the live one; the refusal marks the worker down
    logf = os.path.join(TMP, "retried.ndjson")
    serve = Serve(config, "--threads", "1", "--health-interval", "1h", "--no-energy", "--log", logf, "0.2")
    for i in range(6):
        r = call(serve, "POST", "/v1/chat/completions", {"model": "retry", "i": i})
        check(r.status == 200 and r.headers["x-erg-worker"].endswith(":%d" % live_port),
              "model with a refusing worker: request %d answered by the live one" % i)
    check('erg_worker_up{model="retry",worker="127.0.0.1:%d"} 0' % dead_port in metrics(serve),
          "the refused connect marked the worker down (so a request was retried)")
    r = call(serve, "POST", "/v1/chat/completions", {"model": "gone"})
    check(r.status == 502 and r.json()["error"]["code"] == "worker_unavailable",
          "model whose only worker refuses: 502 JSON error")
    wait_for(lambda: 'erg_requests_total{model="retry",code="200"} 6' in metrics(serve),
             "the model counts its 6 requests")
    check('erg_requests_total{model="retry",code="0"}' not in metrics(serve),
          "... and not the failed try as a request of its own")
    check(serve.stop() == 0, "erg serve stops")
    lines = [json.loads(ln) for ln in open(logf)]
    tries = [x for x in lines if x.get("retried")]
    check(any(x["model"] == "retry" and x["worker"].endswith(":%d" % dead_port) for x in tries)
          and all(x["status"] == 0 for x in tries), "the failed try has its own request line, marked retried")


def worker_down(serve, dead_port):
    wait_for(lambda: 'erg_worker_up{model="gone",worker="127.0.0.1:%d"} 0' % dead_port in metrics(serve),
             "the health check marks the refusing worker down")
    # the worker comes up: the health check brings it back
    start_backend("late", dead_port)
    wait_for(lambda: 'erg_worker_up{model="gone",worker="127.0.0.1:%d"} 1' % dead_port in metrics(serve),
             "the health check marks the started worker up")
    r = call(serve, "POST", "/v1/chat/completions", {"model": "gone"})
    check(r.status == 200 and r.json()["worker"] == "late", "requests reach the worker that came back")


def killed_mid_stream(serve, fragile):
    s = serve.connect()
    s.sendall(request_bytes("POST", "/v1/chat/completions",
                            {"model": "fragile", "stream": True, "events": 10, "die_after": 3}))
    rd = Reader(s)
    r = rd.response()
    check(r is not None and r.status == 200 and not r.complete,
          "worker killed mid-stream: the client's chunked stream ends without its last chunk")
    check(r.body.count(b"data: ") == 3, "... after the 3 events the worker sent")
    check(rd.closed(), "... and the connection is closed")
    s.close()
    fragile.wait(timeout=60)
    check(call(serve, "GET", "/healthz").status == 200, "erg keeps serving after the worker died")
    r = call(serve, "POST", "/v1/chat/completions", {"model": "fragile"})
    check(r.status == 502, "the dead worker's model: 502 (got %d)" % r.status)
    check(call(serve, "POST", "/v1/chat/completions", {"model": "retry"}).status == 200,
          "other models are served")


def fault_storm(serve):
    """Everything that closes connections abnormally, 100 times over."""
    for i in range(100):
        s = serve.connect()
        s.sendall(b"NOT HTTP\r\n\r\n")
        s.close()
        s = serve.connect()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{")
        s.close()  # gone mid-request
        s = serve.connect()
        s.sendall(request_bytes("POST", "/v1/chat/completions", {"model": "retry", "delay_s": 0.05}))
        s.close()  # gone while the worker works
        s = serve.connect()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.sendall(request_bytes("POST", "/v1/chat/completions", {"model": "retry", "stream": True,
                                                                 "events": 50}))
        s.close()  # reset mid-stream
        if i % 10 == 0:
            call(serve, "POST", "/v1/chat/completions", {"model": "fragile"})  # 502
            call(serve, "POST", "/v1/chat/completions", b"{bad")
            s = serve.connect()
            s.sendall(b"GET /healthz HTTP/1.1\r\n")  # slow: times out
            s.close()


def idle_connections(config):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 1500
    if hard < want + 200:
        fail("RLIMIT_NOFILE hard limit %d is below the %d this test needs" % (hard, want + 200))
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    serve = Serve(config, "--threads", "2", "--no-energy")
    base = serve.fds()
    conns = [serve.connect() for _ in range(want)]
    wait_for(lambda: serve.fds() >= base + want, "erg accepted %d idle connections" % want)
    r = call(serve, "POST", "/v1/chat/completions", {"model": "retry"})
    check(r.status == 200, "a new request is served while %d connections sit idle" % want)
    for s in conns[:10]:
        s.sendall(request_bytes("GET", "/healthz"))
        check(Reader(s).response().status == 200, "an idle connection is still served")
    for s in conns:
        s.close()
    wait_for(lambda: (lambda c: c["clients"] == 0 and c["close_wait"] == 0)(fd_census(serve.pid, serve.port)),
             "erg closed the idle connections after the clients left")
    check(serve.stop() == 0, "erg serve stops cleanly")
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def main():
    _, live = start_backend("live")
    fragile, fport = start_backend("fragile")
    dead, dead2 = free_port(), free_port()
    config = ("[model retry]\nparams = 1e9\nworker = 127.0.0.1:%d\nworker = 127.0.0.1:%d\n"
              "[model gone]\nparams = 1e9\nworker = 127.0.0.1:%d\n"
              "[model fragile]\nparams = 1e9\nworker = 127.0.0.1:%d\n" % (dead, live, dead2, fport))
    serve = Serve(config, "--threads", "2", "--client-timeout", "1", "--health-interval", "0.2", "--no-energy")
    retried(config, live, dead)
    slow_clients(serve)
    half_closed(serve)
    worker_down(serve, dead2)
    killed_mid_stream(serve, fragile)

    # descriptors: count, storm, count. Pooled keep-alive connections to
    # the workers may grow (up to the pool's bound); clients, half-dead
    # sockets and everything else must come back to where they were.
    time.sleep(1.5)  # connections of the tests above reach their timeouts
    base = fd_census(serve.pid, serve.port)
    fault_storm(serve)
    check(call(serve, "GET", "/healthz").status == 200, "serving after the fault storm")
    wait_for(lambda: (lambda c: c["clients"] == 0 and c["close_wait"] == 0)(fd_census(serve.pid, serve.port)),
             "no client connection and no half-closed socket left")
    after = fd_census(serve.pid, serve.port)
    log("descriptors before the storm %s, after %s" % (base, after))
    check(after["close_wait"] == 0, "no socket left half-closed after the storm")
    check(after["other"] == base["other"], "no other descriptor leaked")
    check(after["sockets"] <= base["sockets"] + 2 * 64 * 3, "worker connections within the pools' bound")
    check(serve.stop() == 0, "erg serve exits 0 after the faults")
    idle_connections(config)
    log("PASS")


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    main()
