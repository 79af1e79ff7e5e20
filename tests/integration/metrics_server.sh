#!/usr/bin/env bash
# The /metrics listener (user/serve/metrics_server.c) over real loopback
# sockets, through tests/tools/metrics_serve (erg's families from rows a tick
# thread keeps changing): the Prometheus client's parser reads every family,
# counters never go back between scrapes, 404/405/400 for the rest, a silent
# client does not stop the next scrape, and a storm of bad connections
# leaks no file descriptor.
# san: yes
set -u
. "$ERG_ROOT/tests/integration/testlib.bash"

helper="$ERG_OUT/tools/metrics_serve"
[ -x "$helper" ] || fail "$helper is not built (make $helper)"
py=""
for p in python3 /usr/bin/python3; do
	if "$p" -c 'import prometheus_client.parser' 2>/dev/null; then py=$p; break; fi
done
[ -n "$py" ] || skip "no python3 with the Prometheus client: apt-get install python3-prometheus-client (make deps)"

tmp=$(mktemp -d)
"$helper" >"$tmp/out" 2>"$tmp/err" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
for _ in $(seq 100); do grep -q '^port ' "$tmp/out" && break; sleep 0.1; done
port=$(awk '/^port /{print $2}' "$tmp/out")
[ -n "$port" ] || fail "metrics_serve did not start: $(cat "$tmp/err")"

PORT=$port PID=$pid "$py" - <<'PY' || fail "metrics checks (above)"
import os, socket, sys
from prometheus_client.parser import text_string_to_metric_families

port, pid = int(os.environ["PORT"]), int(os.environ["PID"])

def exchange(raw):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(raw)
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    assert int(headers["content-length"]) == len(body), (headers, len(body))
    return status, headers, body

def scrape():
    status, headers, body = exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200, status
    assert headers["content-type"].startswith("text/plain; version=0.0.4"), headers
    return {f.name: f for f in text_string_to_metric_families(body.decode())}

fams = scrape()
want = {"erg_energy_joules": "counter", "erg_requests": "counter",
        "erg_request_energy_joules": "histogram", "erg_request_duration_seconds": "histogram",
        "erg_worker_up": "gauge", "erg_ledger_demand_joules": "counter",
        "erg_ledger_supply_joules": "counter", "erg_ledger_aux_joules": "counter",
        "erg_ledger_waste_joules": "counter", "erg_ledger_storage_joules": "gauge",
        "erg_ledger_regime": "gauge", "erg_bpf_events_dropped": "counter"}
for name, typ in want.items():
    assert name in fams, ("missing family", name, sorted(fams))
    assert fams[name].type == typ, (name, fams[name].type)
odd = 'odd "model"\\\nname'
up = {(s.labels["model"], s.labels["worker"]): s.value for s in fams["erg_worker_up"].samples}
assert up == {("small", "127.0.0.1:8091"): 1.0, (odd, "127.0.0.1:8092"): 0.0}, up
print("ok: %d families parsed, label escapes read back" % len(fams))

def counters(f):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in f.values() if fam.type in ("counter", "histogram")
            for s in fam.samples}

# Counters move forward only, scrape after scrape, while the tick runs.
before = counters(fams)
moved = False
# (At least 20 scrapes; more until a tick has moved something: a scrape
# can be quicker than the helper's 20 ms tick.)
for i in range(5000):
    after = counters(scrape())
    for k, v in before.items():
        assert after.get(k, 0) >= v, ("counter went back", k, v, after.get(k))
    moved = moved or after != before
    before = after
    if moved and i >= 19:
        break
assert moved, "nothing changed over 5000 scrapes: the tick thread's rows are not rendered"
# Histogram buckets are cumulative and end at _count.
for s in [x for x in fams["erg_request_duration_seconds"].samples if x.name.endswith("_bucket")][-1:]:
    count = [x for x in fams["erg_request_duration_seconds"].samples if x.name.endswith("_count")][0]
    assert s.labels["le"] == "+Inf" and s.value == count.value, (s, count)
print("ok: counters never went back over %d scrapes" % (i + 1))

s = socket.create_connection(("127.0.0.1", port), timeout=30)
s.sendall(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
s.close()
head, _, body = data.partition(b"\r\n\r\n")
assert head.startswith(b"HTTP/1.1 200") and body == b"" and b"Content-Length: " in head, data[:200]
for raw, code in [(b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n", 404),
                  (b"GET /metricsx HTTP/1.1\r\nHost: x\r\n\r\n", 404),
                  (b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405),
                  (b"GET /metrics HTTP/1.1\r\n Host: x\r\n\r\n", 400),      # obs-fold
                  (b"GET /met\x01rics HTTP/1.1\r\nHost: x\r\n\r\n", 400),   # control char
                  (b"BLAH\r\n\r\n", 400),
                  (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431)]:
    status = exchange(raw)[0]
    assert status == code, (raw[:40], status, code)
s = socket.create_connection(("127.0.0.1", port), timeout=30)
s.sendall(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n")
assert s.recv(12).startswith(b"HTTP/1.1 200"), "query string or HTTP/1.0 refused"
s.close()
print("ok: 404, 405, 400 (obs-fold, control character, garbage), 431, query and HTTP/1.0")

# A client that connects and says nothing is dropped after the timeout;
# the scrape queued behind it is then answered.
silent = socket.create_connection(("127.0.0.1", port))
half = socket.create_connection(("127.0.0.1", port))
half.sendall(b"GET /metr")
assert "erg_energy_joules" in scrape()
silent.close()
half.close()
print("ok: a silent and a half-sent client did not stop the next scrape")

# A storm of connections that hang up, send garbage or half a head: the
# server's descriptors are the same afterwards.
def fds():
    return len(os.listdir("/proc/%d/fd" % pid))
scrape()
n0 = fds()
for i in range(300):
    c = socket.create_connection(("127.0.0.1", port))
    if i % 3 == 0:
        c.sendall(b"\x00\xff garbage\r\n\r\n")
    elif i % 3 == 1:
        c.sendall(b"GET /metrics HTTP/1.1\r\nHost:")
    c.close()
scrape()
n1 = fds()
# The scrape just answered may still be closing on the server's side (it
# waits for our close): one socket either way; a leak would show 100 or more.
assert n1 <= n0 + 1, ("descriptors before and after the storm", n0, n1)
print("ok: 300 bad connections, descriptors %d before and %d after" % (n0, n1))
PY

kill -TERM "$pid"
wait "$pid"
rc=$?
[ "$rc" = 0 ] || fail "metrics_serve exited $rc on SIGTERM: $(cat "$tmp/err")"
scrapes=$(awk '/^scrapes /{print $2}' "$tmp/out")
[ "${scrapes:-0}" -ge 24 ] || fail "metrics_serve counted ${scrapes:-no} scrapes, the test made at least 24"
ok "clean stop after $scrapes scrapes"
