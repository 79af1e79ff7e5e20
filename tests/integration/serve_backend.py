"""A small OpenAI-style worker for erg serve's tests, with faults on demand.

python3 serve_backend.py PORT NAME
  POST /v1/chat/completions, /v1/completions: JSON body
    "stream": true  -> chunked SSE: "events" (default 5) data: lines, then
                       data: [DONE]; "die_after": k kills this process after
                       k events (a worker dying mid-stream)
    otherwise       -> JSON {"worker": NAME, "model": ..., "body_sha256": ...,
                       "body_len": ..., "headers": {...}}
    "delay_s": s    -> wait s before answering
    "burn_s": s     -> spend s of CPU time before answering (energy to measure)
  GET /health       -> 200
Prints "ready PORT" once listening."""
import hashlib
import http.server
import json
import os
import sys
import time

NAME = sys.argv[2] if len(sys.argv) > 2 else "backend"


def sse_events(n, model):
    out = []
    for i in range(n):
        out.append(b"data: " + json.dumps({"i": i, "model": model, "worker": NAME,
                                           "choices": [{"delta": {"content": "tok%d " % i}}]}).encode() + b"\n\n")
    return out


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            self.reply(200, {"ok": True, "worker": NAME})
        else:
            self.reply(404, {"error": "no"})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        try:
            req = json.loads(body)
        except ValueError:
            self.reply(400, {"error": "bad json"})
            return
        if req.get("delay_s"):
            time.sleep(float(req["delay_s"]))
        if req.get("burn_s"):
            end = time.process_time() + float(req["burn_s"])
            while time.process_time() < end:
                pass
        if req.get("stream"):
            self.stream(req)
            return
        self.reply(200, {"worker": NAME, "model": req.get("model"), "path": self.path,
                         "body_sha256": hashlib.sha256(body).hexdigest(), "body_len": len(body),
                         "headers": {k.lower(): v for k, v in self.headers.items()}})

    def stream(self, req):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        die = req.get("die_after")
        for i, ev in enumerate(sse_events(int(req.get("events", 5)), req.get("model"))):
            if die is not None and i == die:
                self.wfile.flush()
                os._exit(3)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(ev), ev))
            self.wfile.flush()
            if req.get("gap_s"):
                time.sleep(float(req["gap_s"]))
        done = b"data: [DONE]\n\n"
        self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))
        self.wfile.flush()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def handle_error(self, request, client_address):
        pass  # clients that go away mid-answer are part of the tests


if __name__ == "__main__":
    srv = Server(("127.0.0.1", int(sys.argv[1])), Handler)
    print("ready %d" % srv.server_address[1], flush=True)
    srv.serve_forever()
