"""`start-api` latency and throughput for a trivial handler, at concurrency 1 and 16.

What: `ApiServer` + `LambdaRuntime` serve ``GET /ping`` (a handler returning a constant proxy
response); a load client in a separate process (so that it does not share this process's
GIL) sends a bounded number of requests (default 2000 per run, at most 60 s) over keep-alive
``http.client`` connections to 127.0.0.1, one connection per client thread, and reports each
request's latency. The peer, measured in the same run with the same client, is a bare stdlib
``ThreadingHTTPServer`` answering a constant: the difference is the cost of localcloud's
gateway and Lambda layers. Target: p50 <= 5 ms.

Why: every local API test and demo goes through this path; it must not be the slow part.

The functions' log lines and the per-request access lines are discarded (quiet).
Writes benchmarks/results/bench_api.json. Run: ``.venv/bin/python benchmarks/bench_api.py``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench_invoke import drop_logs, percentile, row, write_app, write_results

from localcloud.apigw import ApiServer
from localcloud.runtime import LambdaRuntime
from localcloud.template import load_stack

HOST = "127.0.0.1"  # the benchmark only ever talks to the loopback interface


# -------------------------------------------------------------------------------- client


def run_client(port: int, path: str, concurrency: int, requests: int, seconds: float) -> dict:
    """Send ``requests`` GETs over ``concurrency`` keep-alive connections, stopping early after
    ``seconds``; returns the latencies (ms), the wall time and the count of non-200 answers."""
    per_thread = [requests // concurrency + (i < requests % concurrency) for i in range(concurrency)]
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    start = threading.Barrier(concurrency + 1)
    deadline = time.perf_counter() + seconds

    def worker(count: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        local, bad = [], 0
        start.wait()
        for _ in range(count):
            if time.perf_counter() > deadline:
                break
            t0 = time.perf_counter_ns()
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            local.append((time.perf_counter_ns() - t0) / 1e6)
            bad += resp.status != 200
        conn.close()
        with lock:
            latencies.extend(local)
            errors[0] += bad

    threads = [threading.Thread(target=worker, args=(n,)) for n in per_thread]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return {"latencies_ms": latencies, "wall_s": time.perf_counter() - t0, "errors": errors[0]}


def client_process(port: int, path: str, concurrency: int, requests: int, seconds: float) -> dict:
    """Run `run_client` in a separate Python process and return its result."""
    out = subprocess.run(
        [sys.executable, __file__, "--client", "--port", str(port), "--path", path,
         "--concurrency", str(concurrency), "--requests", str(requests), "--seconds", str(seconds)],
        check=True, capture_output=True, text=True, timeout=seconds + 60,
    )
    return json.loads(out.stdout)


# -------------------------------------------------------------------------------- peer server


class _ConstantHandler(BaseHTTPRequestHandler):
    """The peer: a bare stdlib handler answering a constant, with keep-alive and no Nagle."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class BareServer:
    def __enter__(self) -> "BareServer":
        self.server = ThreadingHTTPServer((HOST, 0), _ConstantHandler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# -------------------------------------------------------------------------------- measurement


def load(port: int, path: str, concurrency: int, requests: int, seconds: float) -> dict:
    """A warm-up run, then the measured run."""
    client_process(port, path, concurrency, max(100, concurrency * 20), seconds)
    result = client_process(port, path, concurrency, requests, seconds)
    if result["errors"]:
        raise RuntimeError(f"{result['errors']} requests to port {port} did not answer 200")
    return result


def rows_for(concurrency: int, api: dict, bare: dict, requests: int) -> list[dict]:
    how = (f"{len(api['latencies_ms'])} GET /ping (of {requests} asked) over {concurrency} keep-alive "
           f"http.client connection(s) from a separate process, after a warm-up run; peer: the same "
           f"client against a bare stdlib ThreadingHTTPServer returning a constant")
    rows = []
    for q in (50, 95, 99):
        target = "<= 5 ms" if q == 50 else ""
        rows.append(row(f"start-api latency p{q}, concurrency {concurrency}", percentile(api["latencies_ms"], q),
                        "ms", how, f"bare stdlib HTTP server p{q}", percentile(bare["latencies_ms"], q), target))
    rows.append(row(f"start-api throughput, concurrency {concurrency}", len(api["latencies_ms"]) / api["wall_s"],
                    "req/s", how, "bare stdlib HTTP server", len(bare["latencies_ms"]) / bare["wall_s"]))
    return rows


def measure(requests: int, seconds: float, concurrencies: list[int]) -> list[dict]:
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        stack = load_stack(write_app(Path(tmp)), stack_name="bench")
        with LambdaRuntime(stack, log_sink=drop_logs, max_concurrency=16) as runtime, \
                ApiServer(runtime, stack, {}, host=HOST, port=0, quiet=True) as api, BareServer() as bare:
            for concurrency in concurrencies:
                api_result = load(api.port, "/ping", concurrency, requests, seconds)
                bare_result = load(bare.port, "/ping", concurrency, requests, seconds)
                rows += rows_for(concurrency, api_result, bare_result, requests)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per measured run (default 2000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="time bound per run (default 60)")
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 16])
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", default="/ping", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(run_client(args.port, args.path, args.concurrency[0], args.requests, args.seconds)))
        return
    rows = measure(args.requests, args.seconds, args.concurrency)
    path = write_results("bench_api", rows)
    for r in rows:
        print(f"{r['figure']}: {r['value']:.3f} {r['unit']}  (peer {r['peer']}: {r['peer_value']:.3f}, "
              f"ratio {r['ratio']}) {r['target']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
