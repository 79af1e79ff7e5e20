"""erg serve over real loopback sockets: routing by model, the x-erg
headers, bodies forwarded untouched, SSE streams byte-exact, keep-alive and
pipelining answered in order, erg's own endpoints, and every error status
(400, 404, 405, 413, 431, smuggling attempts: 400 and close)."""
import hashlib
import json
import socket
import time

from serve_common import (Reader, Serve, call, check, fail, log, raw, request_bytes,
                          start_backend, wait_for)


def main():
    _, p1 = start_backend("w1")
    _, p2 = start_backend("w2")
    _, p3 = start_backend("w3")
    serve = Serve("[serve]\nlisten = 127.0.0.1:1\n"
                  "[model small]\nparams = 29e6\nworker = 127.0.0.1:%d\nworker = 127.0.0.1:%d\n"
                  "[model big]\njoules_per_token = 0.5\nworker = 127.0.0.1:%d\n" % (p1, p2, p3),
                  "--threads", "2", "--max-body", "4096", "--no-energy", "--health-interval", "0.2")
    by_port = {p1: "w1", p2: "w2", p3: "w3"}

    # ---- routing by model, headers, the body untouched ----
    body = json.dumps({"model": "small", "messages": [{"role": "user", "content": "h\u00e9llo \\ \"q\""}],
                       "extra": {"nested": [1, 2.5e-3, None]}}, indent=1).encode()
    seen = set()
    for _ in range(4):
        r = call(serve, "POST", "/v1/chat/completions?x=1", body)
        check(r.status == 200, "small: 200")
        j = r.json()
        worker = r.headers.get("x-erg-worker", "")
        check(by_port[int(worker.rsplit(":", 1)[1])] == j["worker"] and j["worker"] in ("w1", "w2"),
              "small went to a small worker (%s), named in x-erg-worker" % j["worker"])
        seen.add(j["worker"])
        check(r.headers.get("x-erg-model") == "small" and r.headers.get("x-erg-request-id"),
              "x-erg-model and x-erg-request-id on the response")
        check(j["body_sha256"] == hashlib.sha256(body).hexdigest(), "the body reached the worker byte for byte")
        check(j["path"] == "/v1/chat/completions?x=1", "the target is forwarded as sent")
        check("connection" not in j["headers"], "hop-by-hop Connection header not forwarded")
    r = call(serve, "POST", "/v1/completions", {"model": "big", "prompt": "x"})
    check(r.status == 200 and r.json()["worker"] == "w3", "big: /v1/completions went to w3")

    # chunked request body: forwarded de-chunked with its bytes unchanged
    payload = b'{"model":"big","prompt":"chunked"}'
    data = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            + b"%x\r\n%s\r\n" % (10, payload[:10]) + b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload) - 10, payload[10:]))
    r, _ = raw(serve, data)
    check(r and r.status == 200 and r.json()["body_sha256"] == hashlib.sha256(payload).hexdigest(),
          "a chunked request body arrives whole and unchanged")

    # fewest outstanding: while a slow request holds one small worker, the next goes to the other
    slow = serve.connect()
    slow.sendall(request_bytes("POST", "/v1/chat/completions", {"model": "small", "delay_s": 2}))
    fast_workers = set()
    time.sleep(0.3)  # lets erg dispatch it first; a late dispatch fails the check, not hangs
    for _ in range(3):
        fast_workers.add(call(serve, "POST", "/v1/chat/completions", {"model": "small"}).json()["worker"])
    slow_r = Reader(slow).response()
    slow.close()
    check(slow_r.status == 200 and slow_r.json()["worker"] not in fast_workers,
          "requests avoid the worker with a request outstanding (%s busy, others to %s)"
          % (slow_r.json()["worker"], sorted(fast_workers)))

    # ---- SSE streaming byte-exact: through erg and straight from the worker ----
    ask = {"model": "small", "stream": True, "events": 40}
    via = call(serve, "POST", "/v1/chat/completions", ask)
    wport = int(via.headers["x-erg-worker"].rsplit(":", 1)[1])
    d = socket.create_connection(("127.0.0.1", wport), timeout=60)
    d.sendall(request_bytes("POST", "/v1/chat/completions", ask, close=True))
    direct = Reader(d).response()
    d.close()
    check(via.complete and direct.complete, "both streams ended with their last chunk")
    check(via.headers.get("transfer-encoding") == "chunked", "the stream stays chunked through erg")
    check(via.raw_body == direct.raw_body and via.raw_body.count(b"data: ") == 41,
          "SSE stream through erg is byte-exact with the worker's (%d bytes, chunk framing included)"
          % len(via.raw_body))

    # ---- keep-alive and pipelining ----
    s = serve.connect()
    rd = Reader(s)
    for i in range(3):
        s.sendall(request_bytes("POST", "/v1/chat/completions", {"model": "big", "n": i}))
        r = rd.response()
        check(r.status == 200 and r.json()["worker"] == "w3", "keep-alive request %d answered" % i)
    pipeline = (request_bytes("GET", "/healthz")
                + request_bytes("POST", "/v1/chat/completions", {"model": "small", "delay_s": 0.3})
                + request_bytes("GET", "/v1/models")
                + request_bytes("POST", "/v1/chat/completions", {"model": "small", "stream": True, "events": 3})
                + request_bytes("POST", "/v1/completions", {"model": "big"}, close=True))
    s.sendall(pipeline)
    answers = [rd.response() for _ in range(5)]
    check(all(a is not None for a in answers), "five pipelined requests, five responses")
    check(answers[0].json()["status"] == "ok", "pipelined 1: /healthz")
    check(answers[1].json()["model"] == "small", "pipelined 2: the slow completion, still in order")
    check([m["id"] for m in answers[2].json()["data"]] == ["small", "big"], "pipelined 3: /v1/models")
    check(answers[3].body.count(b"data: ") == 4, "pipelined 4: a stream")
    check(answers[4].json()["worker"] == "w3", "pipelined 5: big")
    check(rd.closed(), "Connection: close honoured after the last one")
    s.close()

    # ---- erg's own endpoints ----
    r = call(serve, "GET", "/healthz")
    check(r.status == 200 and r.json()["workers"] == 3, "/healthz")
    wait_for(lambda: call(serve, "GET", "/healthz").json()["workers_up"] == 3, "health check sees 3 workers up")
    r = call(serve, "GET", "/metrics")
    check(r.status == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
          and b'erg_worker_up{model="small",worker="127.0.0.1:%d"} 1' % p1 in r.body,
          "/metrics in Prometheus text with erg_worker_up")
    check(b'erg_requests_total{model="small",code="200"}' in r.body, "/metrics counts requests by code")

    # ---- errors ----
    def error(r, status, code):
        check(r is not None and r.status == status, "status %d (got %s)" % (status, r and r.status))
        e = r.json()["error"]
        check(e["code"] == code and e["type"] and e["message"], "JSON error body with code %s" % code)
        check(r.headers.get("x-erg-request-id") and "x-erg-model" in r.headers, "error carries x-erg headers")

    error(call(serve, "POST", "/v1/chat/completions", b"{not json"), 400, "invalid_json")
    error(call(serve, "POST", "/v1/chat/completions", b"[1,2]"), 400, "invalid_json")
    error(call(serve, "POST", "/v1/chat/completions", {"messages": []}), 400, "missing_model")
    error(call(serve, "POST", "/v1/chat/completions", {"model": 7}), 400, "missing_model")
    error(call(serve, "POST", "/v1/chat/completions", {"model": "huge\u0007"}), 404, "model_not_found")
    error(call(serve, "GET", "/v1/chat/completions"), 405, "method_not_allowed")
    r = call(serve, "DELETE", "/v1/models")
    error(r, 405, "method_not_allowed")
    check(r.headers.get("allow") == "GET", "405 names the allowed method (GET)")
    r = call(serve, "GET", "/v1/completions")
    check(r.status == 405 and r.headers.get("allow") == "POST", "405 names the allowed method (POST)")
    error(call(serve, "GET", "/nope"), 404, "not_found")

    # errors on a keep-alive connection keep it open
    s = serve.connect()
    rd = Reader(s)
    s.sendall(request_bytes("POST", "/v1/chat/completions", {"model": "nope"}))
    check(rd.response().status == 404, "404 on a keep-alive connection")
    s.sendall(request_bytes("GET", "/healthz"))
    check(rd.response().status == 200, "... which then serves the next request")
    s.close()

    def bad(name, data, status):
        r, closed = raw(serve, data)
        check(r is not None and r.status == status, "%s: %d (got %s)" % (name, status, r and r.status))
        check(closed, "%s: connection closed after the error" % name)
        check(r.json()["error"]["message"], "%s: JSON error body" % name)

    bad("malformed request line", b"GARBAGE\r\n\r\n", 400)
    bad("bare LF request line", b"GET /healthz HTTP/1.1\nHost: x\r\n\r\n", 400)
    bad("obs-fold header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n", 400)
    bad("space before the first header", b"GET /healthz HTTP/1.1\r\n Host: x\r\n\r\n", 400)
    bad("tab in the target", b"GET /heal\tthz HTTP/1.1\r\nHost: x\r\n\r\n", 400)
    bad("UTF-8 in the target", "GET /h\u00e9 HTTP/1.1\r\nHost: x\r\n\r\n".encode(), 400)
    bad("header over 16 KiB", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 17000 + b"\r\n\r\n", 431)
    bad("body over --max-body", request_bytes("POST", "/v1/chat/completions",
                                              {"model": "small", "pad": "x" * 5000}), 413)
    bad("chunked body over --max-body",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"400\r\n" + b"a" * 1024 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n", 413)
    bad("Content-Length with Transfer-Encoding",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400)
    bad("duplicate Content-Length", b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"Content-Length: 2\r\n\r\n{}", 400)
    bad("conflicting Content-Length", b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"Content-Length: 3\r\n\r\n{}", 400)
    bad("bad chunk size", b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\n", 400)
    # a smuggled second request after a rejected one is never answered
    r, closed = raw(serve, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    check(r.status == 400 and closed, "smuggled request after CL+TE: 400, then closed, nothing more")

    # still serving after all that
    check(call(serve, "POST", "/v1/chat/completions", {"model": "small"}).status == 200,
          "still serving after the bad input")
    rc = serve.stop()
    check(rc == 0, "erg serve exits 0 on SIGINT (got %d)" % rc)
    check("MODEL" in serve.stdout() and "small" in serve.stdout(), "the live view names the models")
    log("PASS")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        fail(str(e))
