#!/usr/bin/env python3
"""A model worker that erg did not write, for erg calibrate's fault tests.

Answers POSTs the way an OpenAI-compatible server does (usage.completion_tokens),
or as llama.cpp's own /completion (tokens_predicted) on that path, and refuses
every Nth request with HTTP 500 as llama-server does when it rejects a sampled
output. Each request burns CPU in proportion to tokens x parameters, so
J/token grows with model size. Every request (path, body, status) is
appended to --record as one JSON line. Prints "port=N" once listening.
"""
import argparse
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--model", required=True)
ap.add_argument("--params-m", type=float, required=True, help="parameters, millions")
ap.add_argument("--fail-every", type=int, default=0, help="answer 500 to request N, 2N, ... (0: never)")
ap.add_argument("--record", required=True)
args = ap.parse_args()
count = 0


def burn(seconds):
    end = time.process_time() + seconds
    x = 0
    while time.process_time() < end:
        x += 1
    return x


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def answer(self, status, doc):
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        global count
        count += 1
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        status = 200
        if not isinstance(body, dict):
            status = 400
        elif args.fail_every and count % args.fail_every == 0:
            status = 500
        with open(args.record, "a") as f:
            f.write(json.dumps({"n": count, "path": self.path, "status": status, "body": body}) + "\n")
        if status == 400:
            return self.answer(400, {"error": {"code": 400, "message": "body is not a JSON object"}})
        if status == 500:
            burn(0.002)  # the work a refused output cost
            return self.answer(500, {"error": {"code": 500, "type": "server_error",
                                               "message": "the sampled output was refused"}})
        tokens = int(body.get("max_tokens", 16))
        burn(tokens * args.params_m / 1000 * 0.001)  # 1 ms per token per 1000M parameters
        if self.path == "/completion":
            return self.answer(200, {"content": "x" * tokens, "tokens_predicted": tokens,
                                     "tokens_evaluated": 12})
        self.answer(200, {"id": "c%d" % count, "object": "chat.completion", "model": args.model,
                          "choices": [{"index": 0, "finish_reason": "length",
                                       "message": {"role": "assistant", "content": "x" * tokens}}],
                          "usage": {"prompt_tokens": 12, "completion_tokens": tokens,
                                    "total_tokens": 12 + tokens}})


srv = HTTPServer(("127.0.0.1", args.port), Handler)
print("port=%d model=%s" % (srv.server_address[1], args.model), flush=True)
try:
    srv.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
