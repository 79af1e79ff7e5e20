"""erg serve with 10,000 idle client connections open: every one accepted,
new requests still served, erg's RSS with them open reported and bounded,
and every descriptor given back when they close.

erg raises its own RLIMIT_NOFILE (to 65536 where the hard limit allows);
this client raises its own the same way."""
import resource
import socket
import time

from serve_common import Serve, call, check, fail, fd_census, log, start_backend, wait_for

IDLE = 10000


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    fail("no VmRSS for pid %d" % pid)


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        new = want if hard == resource.RLIM_INFINITY or hard >= want else hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < want:
        fail("RLIMIT_NOFILE hard limit %d is below the %d this test needs: raise it (ulimit -Hn)" % (hard, want))


def served(serve, n):
    """n completions through erg, each on a new connection, all 200."""
    ok = 0
    for i in range(n):
        r = call(serve, "POST", "/v1/chat/completions", {"model": "m", "n": i})
        ok += r is not None and r.status == 200 and r.json()["model"] == "m"
    return ok


def main():
    raise_nofile(IDLE + 1024)
    _, port = start_backend("w1")
    # a long client timeout: the idle connections stay for the whole test
    serve = Serve("[model m]\nparams = 1e6\nworker = 127.0.0.1:%d\n" % port,
                  "--no-energy", "--threads", "2", "--client-timeout", "3600", "--health-interval", "5")
    check(served(serve, 20) == 20, "requests served before the idle connections")
    fds_before = serve.fds()
    census_before = fd_census(serve.pid, serve.port)
    rss_before = rss_kib(serve.pid)
    idle = []
    for i in range(IDLE):
        try:
            idle.append(socket.create_connection(("127.0.0.1", serve.port), timeout=60))
        except OSError as e:
            fail("idle connection %d could not be opened: %s" % (i, e))
    wait_for(lambda: fd_census(serve.pid, serve.port)["clients"] >= IDLE,
             "erg accepts all %d idle connections" % IDLE, timeout=120)
    rss_idle = rss_kib(serve.pid)
    per_conn = (rss_idle - rss_before) * 1024.0 / IDLE
    log("erg RSS: %d KiB before, %d KiB with %d idle connections (%.0f bytes each)"
        % (rss_before, rss_idle, IDLE, per_conn))
    check(served(serve, 50) == 50, "50 new requests served with %d idle connections open" % IDLE)
    # an idle connection holds its socket and a small state, no head buffer
    # (the parser's buffer grows only when bytes arrive): 8 KiB each is
    # twice what a 4 KiB buffer per idle connection would cost
    check(per_conn < 8192, "erg's RSS grows by under 8 KiB per idle connection (%.0f bytes)" % per_conn)
    # the idle connections themselves are still answered
    some = idle[::1000]
    for s in some:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    for s in some:
        data = s.recv(4096)
        if not data.startswith(b"HTTP/1.1 200"):
            fail("an idle connection's late request was not answered 200: %r" % data[:80])
    check(True, "idle connections answered when they finally ask")
    for s in idle:
        s.close()
    # Back to where it was: no client socket, none in CLOSE_WAIT, the same
    # descriptors that are not sockets. Sockets to the worker may differ by
    # what the pools hold (each thread keeps its own, the health check
    # opens one for a moment), up to one per thread more than before.
    threads = 2

    def settled(c):
        return (c["clients"] == 0 and c["close_wait"] == 0 and c["other"] == census_before["other"]
                and c["sockets"] <= census_before["sockets"] + threads)

    end = time.time() + 120
    census = fd_census(serve.pid, serve.port)
    while not settled(census) and time.time() < end:
        time.sleep(0.1)
        census = fd_census(serve.pid, serve.port)
    log("descriptors before the idle connections %d %s, after they closed %d %s"
        % (fds_before, census_before, serve.fds(), census))
    check(settled(census), "erg closes all %d connections and gives back their descriptors "
          "(within 120 s; before %s, now %s)" % (IDLE, census_before, census))
    check(served(serve, 10) == 10, "requests served after the idle connections closed")
    check(serve.stop() == 0, "erg serve exits 0")
    log("PASS")


if __name__ == "__main__":
    main()
