#!/usr/bin/python3
"""A fixed sequence of completion requests to an OpenAI-compatible worker, and
what the worker made of them: generated tokens per second of wall clock and
per CPU second of the worker process.

  llm_client.py PORT PID REQUESTS MAX_TOKENS

Every request is the same (prompt, seed, temperature 0, max_tokens), one
after the other on one keep-alive connection, so that a run is the same work
each time. The worker's CPU time is its process CPU clock (all its threads,
exited ones too, to the nanosecond) read before the first request and after
the last answer, so the client's own cost is not in it; where that clock
cannot be read, utime + stime from /proc/PID/stat. Prints one line:
  tokens=N wall_s=S cpu_s=C per_s=X per_cpu_s=Y
Exit 1 with the reason when a request fails (a line, no traceback).
"""
import http.client
import json
import os
import sys
import time

PROMPT = "The energy a language model spends on a request grows with"


def worker_cpu_s(pid):
    try:
        return time.clock_gettime_ns(((~pid) << 3) | 2) / 1e9  # CPUCLOCK_SCHED of the process
    except OSError:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: llm_client.py PORT PID REQUESTS MAX_TOKENS")
    try:
        port, pid, requests, max_tokens = (int(a) for a in sys.argv[1:])
    except ValueError:
        sys.exit("llm_client: PORT PID REQUESTS MAX_TOKENS must be whole numbers (got %s)" % " ".join(sys.argv[1:]))
    body = json.dumps({"prompt": PROMPT, "max_tokens": max_tokens, "seed": 1,
                       "temperature": 0, "stream": False}).encode()
    headers = {"Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.connect()
    tokens = 0
    cpu0, t0 = worker_cpu_s(pid), time.monotonic()
    for _ in range(requests):
        conn.request("POST", "/v1/completions", body, headers)
        r = conn.getresponse()
        data = r.read()
        if r.status != 200:
            sys.exit("llm_client: HTTP %d from the worker: %s" % (r.status, data[:300].decode(errors="replace")))
        tokens += json.loads(data)["usage"]["completion_tokens"]
    t1, cpu1 = time.monotonic(), worker_cpu_s(pid)
    conn.close()
    wall, cpu = t1 - t0, cpu1 - cpu0
    if tokens <= 0 or wall <= 0 or cpu <= 0:
        sys.exit("llm_client: no tokens or no time measured (tokens %d, wall %.3f s, cpu %.3f s)" % (tokens, wall, cpu))
    print("tokens=%d wall_s=%.4f cpu_s=%.4f per_s=%.3f per_cpu_s=%.3f" % (tokens, wall, cpu, tokens / wall, tokens / cpu))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
    except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError) as e:
        sys.exit("llm_client: the worker at 127.0.0.1:%s failed: %s: %s (is it running? its stderr says more)"
                 % (sys.argv[1], type(e).__name__, e))
