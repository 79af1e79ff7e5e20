#!/usr/bin/env python3
"""Seeded bursty "model": "auto" load for erg serve (tests/bench/steer_live.sh).

Each slot's arrival count is gamma-Poisson (overdispersed: Var(n) =
variance_ratio x E[n], as erg sim's `arrivals = overdispersed`), and the
arrivals fall at uniform times within the slot. The counts and times depend
only on --seed, so two runs see the same arrivals. Slots are aligned with
erg serve's ledger: with --align FILE (erg serve's --json output) the first
slot starts when the first ledger line appears there.

One NDJSON line per request on stdout: slot, status, the x-erg-model and
x-erg-budget headers, completion_tokens. A last {"type":"load"} line says
how many were sent and answered."""
import argparse
import http.client
import json
import math
import random
import sys
import threading
import time


def counts(seed, slots, mean, ratio):
    """Arrival counts and in-slot times, seeded."""
    rng = random.Random(seed)
    out = []
    shape = mean / (ratio - 1.0) if ratio > 1.0 else None
    for _ in range(slots):
        lam = mean if shape is None else rng.gammavariate(shape, mean / shape)
        # Poisson by inversion (lam is small here)
        n, p, u = 0, math.exp(-lam), rng.random()
        c = p
        while u > c and n < 10000:
            n += 1
            p *= lam / n
            c += p
        out.append(sorted(rng.random() for _ in range(n)))
    return out


def wait_align(path, timeout):
    """The moment the first ledger line shows up in path (a slot closed),
    and how many slots were closed then."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    if '"slots":' in line and line.endswith("\n"):
                        return time.monotonic(), int(json.loads(line)["slots"])
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.002)
    return None, 0


def send(host, port, slot, model, budget_cap, results, lock):
    body = json.dumps({"model": model, "max_tokens": budget_cap,
                       "messages": [{"role": "user", "content": "prove it"}]})
    rec = {"slot": slot, "status": 0, "model": None, "budget": None, "tokens": None}
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection(host, port, timeout=120)
        c.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        rec["status"] = r.status
        rec["model"] = r.getheader("x-erg-model")
        b = r.getheader("x-erg-budget")
        rec["budget"] = int(b) if b and b.isdigit() else b
        try:
            rec["tokens"] = json.loads(data)["usage"]["completion_tokens"]
        except (ValueError, KeyError, TypeError):
            pass
        c.close()
    except (OSError, http.client.HTTPException) as e:
        rec["error"] = str(e)
    rec["latency_s"] = round(time.monotonic() - t0, 4)
    with lock:
        results.append(rec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", required=True, help="erg serve's HOST:PORT")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--slots", type=int, required=True)
    ap.add_argument("--tasks-per-slot", type=float, required=True)
    ap.add_argument("--variance-ratio", type=float, default=1.0)
    ap.add_argument("--slot-seconds", type=float, default=1.0)
    ap.add_argument("--align", help="erg serve's --json output file: start with its first ledger line")
    ap.add_argument("--model", default="auto", help='the model asked for (default "auto")')
    ap.add_argument("--max-tokens", type=int, default=4096,
                    help="the client's max_tokens (erg rewrites it)")
    a = ap.parse_args()
    if a.slots < 1 or a.tasks_per_slot <= 0 or a.variance_ratio < 1 or a.slot_seconds <= 0:
        sys.exit("steer_load: --slots >= 1, --tasks-per-slot > 0, --variance-ratio >= 1, "
                 "--slot-seconds > 0")
    host, _, port = a.target.rpartition(":")
    plan = counts(a.seed, a.slots, a.tasks_per_slot, a.variance_ratio)
    t0, first = time.monotonic(), None
    if a.align:
        t0, closed = wait_align(a.align, 30.0)
        if t0 is None:
            sys.exit(f"steer_load: no ledger line in {a.align} within 30 s "
                     "(start erg serve with --json and --supply-watts)")
        # the ledger line comes a moment after the slot closed; start the
        # next slot's arrivals from its boundary
        t0 += a.slot_seconds - 0.005
        first = closed + 1  # the ledger's index of our slot 0
    results, lock, threads = [], threading.Lock(), []
    for k, times in enumerate(plan):
        for u in times:
            at = t0 + (k + 0.02 + 0.96 * u) * a.slot_seconds
            d = at - time.monotonic()
            if d > 0:
                time.sleep(d)
            t = threading.Thread(target=send, args=(host, int(port), k, a.model, a.max_tokens, results, lock))
            t.start()
            threads.append(t)
    for t in threads:
        t.join()
    for r in sorted(results, key=lambda r: r["slot"]):
        print(json.dumps(r))
    ok = sum(1 for r in results if r["status"] == 200)
    print(json.dumps({"type": "load", "sent": len(results), "ok": ok, "seed": a.seed,
                      "slots": a.slots, "first_ledger_slot": first, "counts": [len(t) for t in plan]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
