"""erg serve with the measuring pipeline: BPF attached to demo workers whose
pids erg finds from their listening sockets; every request forwarded gets a
{"type":"request"} line with its joules, SSE events and timings, on stdout
(--json) and in --log; per-model lines count the requests."""
import json
import os
import re
import subprocess
import sys
import time

from serve_common import (OUT, Serve, TMP, _started, call, check, fail, log, request_bytes, Reader, start_backend,
                          wait_for)
from ergtest import require_bpf

DEMO = os.path.join(OUT, "demo", "demo_worker")


def start_demo(model, params_m, *extra):
    p = subprocess.Popen([DEMO, "--port", "0", "--model", model, "--params-m", str(params_m),
                          "--threads", "2", "--passes-per-ms", "50"] + list(extra),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    _started.append(p)
    for _ in range(50):
        line = p.stdout.readline()
        m = re.search(r"model=\S+ port=(\d+) pid=(\d+)", line)
        if m:
            return int(m.group(1)), int(m.group(2))
        if not line:
            break
    fail("demo_worker %s did not start" % model)


def killed_mid_stream(serve, fragile):
    """The worker dies after 3 events: the client's stream ends cut short,
    erg serves on."""
    s = serve.connect()
    s.sendall(request_bytes("POST", "/v1/chat/completions",
                            {"model": "fragile", "stream": True, "events": 10, "die_after": 3, "burn_s": 0.3}))
    rd = Reader(s)
    r = rd.response()
    check(r is not None and r.status == 200 and not r.complete and r.body.count(b"data: ") == 3,
          "worker killed mid-stream: the client's stream ends after 3 events, without its last chunk")
    check(rd.closed(), "... and the connection is closed")
    s.close()
    fragile.wait(timeout=60)
    r = call(serve, "POST", "/v1/chat/completions",
             {"model": "small", "max_tokens": 4, "messages": [{"role": "user", "content": "after"}]})
    check(r.status == 200, "erg keeps serving after the worker died (%d)" % r.status)


def energy_series(serve):
    """erg_energy_joules_total samples: {(model, source): joules}."""
    out = {}
    for ln in call(serve, "GET", "/metrics").body.decode().splitlines():
        m = re.match(r'erg_energy_joules_total\{model="([^"]*)",source="(cpu|gpu)"\} (\S+)$', ln)
        if m:
            out[(m.group(1), m.group(2))] = float(m.group(3))
    return out


def main():
    require_bpf()
    if not os.path.exists(DEMO):
        fail("%s is missing (make builds it)" % DEMO)
    sport, spid = start_demo("small", 30)
    # the big model also runs kernels on the stub CUDA driver: its joules
    # have a GPU part, which /metrics shows as source="gpu"
    bport, bpid = start_demo("big", 120, "--gpu-us-per-b", "2000")
    # a worker that dies mid-stream, after burning CPU for its request
    fragile, fport = start_backend("fragile")
    logf = os.path.join(TMP, "requests.ndjson")
    serve = Serve("[model small]\nparams = 30e6\nworker = 127.0.0.1:%d\n"
                  "[model big]\nparams = 120e6\nworker = 127.0.0.1:%d pid=%d\n"
                  "[model fragile]\nparams = 1e6\nworker = 127.0.0.1:%d pid=%d\n"
                  % (sport, bport, bpid, fport, fragile.pid),
                  "--threads", "2", "--json", "--log", logf, "--supply-watts", "50", "0.5")
    err = serve.stderr()
    check("pid %d, from its listening socket" % spid in err, "the small worker's pid found from its socket")
    check("pid %d\n" % bpid in err, "the big worker's pid as given")
    n = {"small": 0, "big": 0}
    streamed = 0
    for i in range(12):
        model = "small" if i % 3 else "big"
        # streamed first, then plain: a worker's tick is split by SSE events
        # when any of its requests streamed in it, so the two kinds are kept
        # apart by more than two ticks
        stream = i < 6
        if i == 6:
            time.sleep(1.2)
        s = serve.connect()
        s.sendall(request_bytes("POST", "/v1/chat/completions",
                                {"model": model, "max_tokens": 24, "stream": stream,
                                 "messages": [{"role": "user", "content": "count to %d" % i}]}, close=True))
        r = Reader(s).response()
        s.close()
        check(r is not None and r.status == 200 and r.complete, "request %d (%s, stream=%s) answered" % (i, model, stream))
        n[model] += 1
        streamed += stream
    killed_mid_stream(serve, fragile)
    n["small"] += 1	# the request after the kill
    check(call(serve, "GET", "/v1/models").status == 200, "a request erg answers itself")
    wait_for(lambda: energy_series(serve).get(("big", "gpu"), 0) > 0, "GPU joules of the big model on /metrics",
             explain=lambda: "  /metrics energy: %s\n  erg serve stderr:\n%s" % (energy_series(serve),
                                                                              serve.stderr()[-2000:]))
    # a request's last tick is split at the tick's end: two ticks (0.5 s)
    # after the last request, /metrics holds every tick the requests had
    time.sleep(1.2)
    series = energy_series(serve)
    log("  /metrics energy: %s" % series)
    check(series.get(("small", "gpu")) == 0 and series.get(("small", "cpu"), 0) > 0,
          "/metrics: the CPU-only model's joules are all source=\"cpu\"")
    check(series.get(("big", "cpu"), 0) > 0, "/metrics: the GPU model's CPU part is there too")
    check(serve.stop() == 0, "erg serve exits 0")
    lines = [json.loads(ln) for ln in serve.stdout().splitlines() if ln.startswith("{")]
    cut = [x for x in lines if x["type"] == "request" and x["model"] == "fragile"]
    check(len(cut) == 1 and cut[0]["status"] == 502 and cut[0]["sse_events"] == 3,
          "the cut stream's request line: status 502, its 3 events (%s)" % cut)
    check(cut[0]["joules"] > 0, "the cut stream keeps the joules its worker spent (%.4f J)" % cut[0]["joules"])
    total = [x for x in lines if x["type"] == "total"][-1]
    # nothing lost: the ledger's demand (closed slots and the open one) is
    # the sum of the workers' joules, the dead worker's included
    demand = total["total"]["demand"] + total["open_demand"]
    check(abs(demand - total["attributed_j"]) <= 1e-6 * max(1.0, total["attributed_j"]),
          "ledger demand %.6f J = the workers' joules %.6f J" % (demand, total["attributed_j"]))
    reqs = [x for x in lines if x["type"] == "request" and x["worker"] and x["model"] != "fragile"]
    check(len(reqs) == 13, "one request line per forwarded request (%d)" % len(reqs))
    check(all(x["status"] == 200 and x["bytes_in"] > 0 and x["bytes_out"] > 0 and x["latency_s"] > 0
              and x["ttfb_s"] > 0 and x["end"] >= x["start"] for x in reqs), "request lines: status, bytes, timings")
    check(sum(1 for x in reqs if x["sse_events"] > 0) == streamed, "SSE events counted on the streamed requests")
    with_joules = sum(1 for x in reqs if x["joules"] > 0)
    for x in reqs:
        log("  %s %s sse=%d J=%.4f lat=%.3f" % (x["id"], x["model"], x["sse_events"], x["joules"], x["latency_s"]))
    check(with_joules >= 10, "requests carry measured joules (%d of 13 above 0)" % with_joules)
    check(all(x["nj"] >= 0 and abs(x["joules"] - x["nj"] / 1e9) < 1e-6 for x in reqs), "joules = nj / 1e9")
    local = [x for x in lines if x["type"] == "request" and not x["worker"]]
    check(len(local) >= 2 and all(x["id"].startswith("e") for x in local),
          "the requests erg answered (/v1/models, /metrics) have their own lines")
    models = {}
    for x in lines:
        if x["type"] == "model":
            models[x["model"]] = x
    check(models["small"]["requests"] == n["small"] and models["big"]["requests"] == n["big"],
          "model lines count the requests per model")
    check(models["small"]["joules"] > 0 and models["big"]["joules"] > 0, "model lines carry joules")
    totals = [x for x in lines if x["type"] == "total"]
    check(totals and totals[-1]["source"] and totals[-1]["attributed_nj"] + totals[-1]["unattributed_nj"]
          == totals[-1]["total_nj"], "total lines: attributed + unattributed = total, exactly")
    for name in ("small", "big"):
        # cpu + gpu on /metrics = the model's joules, which hold its
        # requests' joules (the requests were all over before the scrape)
        split = series[(name, "cpu")] + series[(name, "gpu")]
        req_j = sum(x["joules"] for x in reqs if x["model"] == name)
        check(split >= req_j - 1e-6, "/metrics cpu + gpu of %s (%.4f J) holds its requests' %.4f J"
              % (name, split, req_j))
    logged = [json.loads(ln) for ln in open(logf)]
    check(len(logged) == len(reqs + local + cut) and {x["id"] for x in logged} == {x["id"] for x in reqs + local + cut},
          "--log holds the same request lines")
    log("PASS")


if __name__ == "__main__":
    main()
