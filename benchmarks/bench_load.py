"""Load without loss (issue 7): mixed traffic against the product API for two minutes, then
the check that nothing the API accepted was lost.

What: template.yaml in one `LocalCloud` (`tests/integration/stack_env.py`), its API over HTTP
on 127.0.0.1 (what `localcloud start-api` serves), v1 of the yield model trained, registered and
promoted, 40 devices' features online, one request per route to start each function
(`loadgen.prepare`). Then `tests/integration/loadgen.py` (the same code the integration test
runs) in a separate process (its own GIL): 8 client threads, keep-alive connections, each
thread first sends one request of every kind (the warm-up: it grows each function to its
environments; reported apart), then for ``--seconds`` draws requests from the mix: POST
/predict by features or by entity (30% of the accepted ones get POST /feedback), POST /features
(5 new devices), GET /features/{id}, GET /models, GET /models/yield/aliases/champion and
/versions/1, GET /audit and POST /models/yield/aliases/load-<thread> (admin key). Predictions
are audited at a 10% sample (AuditPredictionSampleRate) so the audit chains take concurrent
appends. Afterwards the stores are read directly (`loadgen.check_loss`).

Peer, same run: the same client, mix and concurrency against a bare stdlib
``ThreadingHTTPServer`` on 127.0.0.1 that answers every request with a fixed JSON body (shaped
so that the client's flow, feedback included, is the same): the transport and client ceiling.
The peer runs ``--peer-seconds`` (default 20 s) only.

Each function runs ``--function-concurrency`` environments (default 1, as with reserved
concurrency 1: the client threads' requests queue for it). `prepare` starts each one alone,
so no cold start runs under the load: on 2 cores shared with other work, a cold start under
load can pass Lambda's 10 s init limit and answer 502, which says nothing about the product
(with 2 environments per function a 10 s smoke run got three such 502s in its warm-up, at a
1-minute load average of ~8). Numbers are noisy: other processes share the 2 cores.

Writes benchmarks/results/load.json. Run: ``.venv/bin/python benchmarks/bench_load.py [--seconds 120]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# the domain library, and the load generator and stack of the integration tests
sys.path[:0] = [str(ROOT / "layers" / "common" / "python"), str(ROOT / "tests" / "integration")]

from loadgen import HOST, check_loss, error_count, prepare  # noqa: E402
from stack_env import api_server, product_cloud  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
LOADGEN = ROOT / "tests" / "integration" / "loadgen.py"
KEY, ADMIN = "bench-load-key-0123456789", "bench-load-admin-0123456789"
AUDIT_RATE = 0.1


class _FixedJson(BaseHTTPRequestHandler):
    """The peer: any method, any path, a fixed JSON answer (a fresh request id each time)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    counter = itertools.count()

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"request_id": f"peer-{next(self.counter)}", "version": 1, "probability": 0.5,
                           "accepted": 5, "views": {"device_parametrics": {"status": "ok"}}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815 - stdlib naming

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def drive(port: int, setup: dict[str, Any], concurrency: int, seconds: float, seed: int) -> dict[str, Any]:
    """`loadgen.run_load` in a separate process; its JSON result."""
    out = subprocess.run(
        [sys.executable, str(LOADGEN), "--port", str(port), "--key", KEY, "--admin-key", ADMIN,
         "--setup", json.dumps(setup), "--concurrency", str(concurrency), "--seconds", str(seconds),
         "--seed", str(seed)],
        check=True, capture_output=True, text=True, timeout=seconds + 900)
    return json.loads(out.stdout)


def measure(seconds: float, peer_seconds: float, concurrency: int, function_concurrency: int) -> dict[str, Any]:
    with product_cloud({"ApiKey": KEY, "AdminApiKey": ADMIN}, log_sink=lambda fid, line: None,
                       max_concurrency=function_concurrency,
                       parameter_overrides={"AuditPredictionSampleRate": str(AUDIT_RATE)}) as cloud, \
            api_server(cloud) as api:
        setup = prepare(cloud, api.port, KEY, ADMIN)
        load = drive(api.port, setup, concurrency, seconds, seed=1)
        t0 = time.perf_counter()
        loss = check_loss(cloud, api.port, ADMIN, load.pop("accepted"), audit_rate=AUDIT_RATE)
        loss["check_seconds"] = round(time.perf_counter() - t0, 1)
    server = ThreadingHTTPServer((HOST, 0), _FixedJson)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        peer = drive(server.server_address[1], {"version": 1, "seed_entities": ["SEED-0000"], "admin_routes": []},
                     concurrency, peer_seconds, seed=2)
    finally:
        server.shutdown()
        server.server_close()
    peer.pop("accepted")
    return {"load": load, "loss": loss, "peer": peer}


def row(figure: str, value: float | int | None, unit: str, how: str, peer: str = "",
        peer_value: float | None = None) -> dict[str, Any]:
    ratio = round(value / peer_value, 2) if value is not None and peer_value else None
    return {"figure": figure, "value": value if not isinstance(value, float) else round(value, 3), "unit": unit,
            "how": how, "peer": peer, "peer_value": None if peer_value is None else round(peer_value, 3),
            "ratio": ratio, "target": ""}


def rows_of(m: dict[str, Any], concurrency: int) -> list[dict[str, Any]]:
    load, loss, peer = m["load"], m["loss"], m["peer"]
    how = (f"{load['requests']} mixed requests in {load['wall_s']:.0f} s (after the warm-up) from {concurrency} "
           f"keep-alive client threads in a separate process")
    peer_name = "same client, bare stdlib server, fixed JSON"
    rows = [row("throughput, all routes", load["routes"]["overall"]["req_per_s"], "req/s", how, peer_name,
                peer["routes"]["overall"]["req_per_s"])]
    for route, stats in sorted(load["routes"].items(), key=lambda kv: (kv[0] != "overall", kv[0])):
        peer_stats = peer["routes"].get(route, {})
        for q in (50, 95, 99):
            rows.append(row(f"{route if route != 'overall' else 'all routes'} p{q}", stats[f"p{q}_ms"], "ms",
                            f"{stats['count']} requests, {stats['statuses']}" if q == 50 else "", peer_name,
                            peer_stats.get(f"p{q}_ms")))
    errors = error_count(load, loss)
    rows += [
        row("errors (5xx, transport, unexpected 4xx, failed threads, lost items)", errors, "", how),
        row("accepted predictions missing from the prediction log", len(loss["predictions_lost"]), "",
            f"of {loss['predictions_checked']}, read back by request id"),
        row("accepted feedback not joined to its prediction", len(loss["feedback_lost"]), "",
            f"of {loss['feedback_checked']}"),
        row("accepted feature rows missing from the online store", len(loss["feature_rows_lost"]), "",
            f"of {loss['feature_rows_checked']} rows (event time and values compared)"),
        row("accepted alias moves / sampled predictions without an audit record",
            len(loss["alias_moves_lost"]) + len(loss["prediction_audits_lost"]), "",
            f"of {loss['alias_moves_checked']} moves and {loss['prediction_audits_checked']} sampled predictions"),
        row("audit chains verify", int(loss["audit_verify_ok"]), "(1 = yes)",
            f"GET /audit/verify over {loss['audit_records']} records"),
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="measured load time (default 120)")
    parser.add_argument("--peer-seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--function-concurrency", type=int, default=1, help="environments per function (default 1)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    m = measure(args.seconds, args.peer_seconds, args.concurrency, args.function_concurrency)
    load, loss = m["load"], m["loss"]
    data = {
        "name": "load", "title": "Load without loss: mixed API traffic, then every accepted item checked",
        "machine": (f"nproc {os.cpu_count()}, Python {platform.python_version()}, {platform.system()} "
                    f"{platform.machine()}, 1-min load average {os.getloadavg()[0]:.2f} when written"),
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": f".venv/bin/python benchmarks/bench_load.py --seconds {args.seconds:g}",
        "rows": rows_of(m, args.concurrency),
        "notes": [
            f"Client: {args.concurrency} threads of tests/integration/loadgen.py (the integration test's code) in "
            f"their own process, keep-alive http.client to 127.0.0.1; at most {args.function_concurrency} "
            f"environment(s) per function; predictions audited at a {AUDIT_RATE:.0%} sample. "
            f"The peer (a bare stdlib server answering a fixed JSON body) ran {args.peer_seconds:g} s with the same "
            f"client: it is the ceiling of the client and the loopback transport, not a competing product.",
            f"Warm-up (one request of each kind per thread, after `prepare` started each function; not in the "
            f"figures above): "
            f"{load['warmup']['overall']['count']} requests, statuses {load['warmup']['overall']['statuses']}, "
            f"p50 {load['warmup']['overall']['p50_ms']:.0f} ms, p99 {load['warmup']['overall']['p99_ms']:.0f} ms.",
            f"The 2 cores were shared with other processes during the run (1-minute load average {load_before:.1f} "
            f"at the start, {os.getloadavg()[0]:.1f} at the end): latency and throughput move by tens of percent "
            "between runs; the loss figures do not depend on speed. Reading every accepted item back took "
            f"{loss['check_seconds']} s.",
        ],
        "load": load, "loss": loss, "peer": {k: m["peer"][k] for k in ("requests", "wall_s", "routes")},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "load.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"{load['requests']} requests in {load['wall_s']:.1f} s: {load['routes']['overall']['req_per_s']:.1f} req/s, "
          f"p50 {load['routes']['overall']['p50_ms']:.0f} ms, p99 {load['routes']['overall']['p99_ms']:.0f} ms; "
          f"errors {error_count(load, loss)}; lost {loss['lost']}; audit ok {loss['audit_verify_ok']}")
    print(f"wrote {path}")
    sys.exit(0 if error_count(load, loss) == 0 else 1)


if __name__ == "__main__":
    main()
