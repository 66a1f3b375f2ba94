"""Mixed load against the product API, then the check that nothing it accepted was lost
(issue 7, "load without loss"). One implementation, used by
tests/integration/test_load_without_loss.py (short, asserts) and benchmarks/bench_load.py (two
minutes, measures).

The load: ``concurrency`` client threads, each with its own keep-alive ``http.client``
connection to 127.0.0.1 (never another host). Each thread first sends one request of every
kind (the warm-up, reported apart), then, once all have, requests drawn from `MIX` until
``seconds`` pass or ``max_requests`` are sent. Admin routes (those of the admin API, read from
the template) get the admin key, the others the caller key:

- ``POST /predict`` by explicit features, or by ``entity_id`` of a device whose features are
  online; after an accepted prediction, ``POST /feedback`` with its label for `FEEDBACK_SHARE`
  of them;
- ``POST /features``: `INGEST_ROWS` rows of new devices (ids never reused, event time now) into
  ``device_parametrics``;
- ``GET /features/{id}``: a seed device, or one this thread ingested (read-your-writes: it must
  come back ``ok``);
- registry reads (``GET /models/yield/aliases/champion``, ``/versions/{v}``, ``GET /models``),
  ``GET /audit``, and ``POST /models/yield/aliases/load-<thread>`` (an audited write; each
  thread moves its own alias, so moves never race each other, while their audit appends race
  the sampled predictions' on the model's chains).

Afterwards `check_loss` reads the stores directly: every 2xx prediction is in the prediction
log (same version and probability), every 2xx feedback's label is joined to its prediction,
every 2xx feature row is in the online store (same event time and values), every 2xx alias move
and every sampled prediction (``AUDIT_PREDICTION_SAMPLE_RATE``) has its audit record, and
``GET /audit/verify`` says every chain is intact.

`run_load` returns plain JSON (so the benchmark can run it in a separate process and hand the
result back on stdout: ``python tests/integration/loadgen.py --port ... --key ... --admin-key ...``).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import random
import sys
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from yield_models import STORED, device_row, fails, iso, training_event

HOST = "127.0.0.1"  # the load only ever talks to the loopback interface
MODEL = "yield"
VIEW = "device_parametrics"
FEEDBACK_SHARE = 0.3  # of accepted predictions get their label back
INGEST_ROWS = 5
#: operation -> weight (the share of requests it draws; feedback follows predictions)
MIX: dict[str, int] = {"predict": 36, "predict_entity": 12, "ingest": 14, "lookup": 16, "alias_read": 5,
                       "version_read": 5, "models_list": 3, "audit_read": 5, "alias_move": 4}
#: operation -> its route (what latencies are grouped by; the admin key goes to admin routes)
ROUTES = {"predict": "POST /predict", "predict_entity": "POST /predict", "feedback": "POST /feedback",
          "ingest": "POST /features", "lookup": "GET /features/{entity_id}",
          "alias_read": "GET /models/{name}/aliases/{alias}", "version_read": "GET /models/{name}/versions/{version}",
          "models_list": "GET /models", "audit_read": "GET /audit", "alias_move": "POST /models/{name}/aliases/{alias}"}


def admin_routes(stack: Any) -> list[str]:
    """The routes served by an API other than the caller's ``MlopsApi`` (the admin API, whose
    usage plan takes only the admin key), as ``"METHOD /path"``."""
    return sorted(f"{r.method} {r.path}" for r in stack.routes if r.api_id != "MlopsApi")


class Client:
    """JSON over one keep-alive connection; a transport error reconnects and is re-raised."""

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        self.port, self.timeout = port, timeout
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)

    def __call__(self, method: str, path: str, key: str, body: Any = None) -> tuple[int, Any]:
        try:
            self.conn.request(method, path, body=None if body is None else json.dumps(body).encode(),
                              headers={"Content-Type": "application/json", "x-api-key": key})
            resp = self.conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
            raise
        try:
            return resp.status, json.loads(raw or b"null")
        except ValueError:
            return resp.status, {"raw": raw[:200].decode("utf-8", "replace")}

    def close(self) -> None:
        self.conn.close()


# ------------------------------------------------------------------------------------ setup
def feature_row(rng: random.Random, device: str) -> dict[str, Any]:
    """A parametric row of ``device`` stamped now (the view's 14-day TTL counts from it)."""
    return device_row(rng, device, datetime.now(timezone.utc).replace(microsecond=0))


def prepare(cloud: Any, port: int, key: str, admin_key: str, *, seed_devices: int = 40) -> dict[str, Any]:
    """A served model and online features: v1 trained and registered by TrainFunction (the
    integration tests' seeded yield data), promoted to champion through the admin API, and
    ``seed_devices`` devices ingested through POST /features; then one request per route, one
    at a time, so that each function's first environment starts alone (cold starts are what
    an overloaded 2-core machine times out on). Returns what `run_load` needs."""
    admin = admin_routes(cloud.stack)
    version = cloud.invoke("TrainFunction", training_event(n=400, seed=0, n_estimators=20))["version"]
    client = Client(port)

    def call(op: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A setup request; a 5xx (a cold start past the init limit on a busy machine) is retried."""
        for _ in range(3):
            status, answer = client(ROUTES[op].split()[0], path, admin_key if ROUTES[op] in admin else key, body)
            if status < 500:
                break
        return status, answer

    try:
        status, body = call("alias_move", f"/models/{MODEL}/aliases/champion",
                            {"version": version, "reason": "load test"})
        assert status == 200, (status, body)
        rng = random.Random(7)
        rows = [feature_row(rng, f"SEED-{i:04d}") for i in range(seed_devices)]
        status, body = call("ingest", "/features", {"view": VIEW, "rows": rows})
        assert status == 200 and body["accepted"] == len(rows), (status, body)
        # one request per route, one at a time: each function's first environment starts alone
        entity = rows[0]["device_id"]
        for op, path, body in (
                ("predict", "/predict", {"model": MODEL, "entity_id": entity, "request": {"vdd_setpoint": 1.2}}),
                ("feedback", "/feedback", {"request_id": "load-warm-up-unknown", "label": 0}),  # a 404, no write
                ("lookup", f"/features/{entity}?views={VIEW}", None), ("models_list", "/models", None),
                ("alias_read", f"/models/{MODEL}/aliases/champion", None),
                ("version_read", f"/models/{MODEL}/versions/{version}", None),
                ("audit_read", f"/audit?model={MODEL}&limit=1", None)):
            status, answer = call(op, path, body)
            assert status < 500, (path, status, answer)
    finally:
        client.close()
    return {"version": version, "seed_entities": [r["device_id"] for r in rows], "admin_routes": admin}


# ------------------------------------------------------------------------------------- load
class _Worker:
    """One client thread: draws operations from `MIX` and records what was accepted."""

    def __init__(self, n: int, port: int, key: str, admin_key: str, setup: Mapping[str, Any], seed: int,
                 budget: "_Budget", ready: threading.Barrier, ramp_s: float) -> None:
        self.n, self.key, self.admin_key, self.setup, self.budget = n, key, admin_key, setup, budget
        self.ready, self.ramp_s = ready, ramp_s
        self.warming = True
        self.warm_samples: list[tuple[str, int, float]] = []
        self.crashed: str | None = None
        self.client = Client(port)
        self.admin = set(setup["admin_routes"])
        self.rng = random.Random(seed * 1000 + n)
        self.ops, self.weights = list(MIX), list(MIX.values())
        self.samples: list[tuple[str, int, float]] = []  # (route, status or 0 = transport error, ms)
        self.transport_errors: list[str] = []
        self.unexpected: list[dict[str, Any]] = []  # answers other than 200 (every request is valid)
        self.predictions: dict[str, dict[str, Any]] = {}
        self.feedback: dict[str, int] = {}
        self.features: dict[str, dict[str, Any]] = {}
        self.read_misses: list[str] = []  # own accepted rows a lookup did not find
        self.alias_moves = 0
        self.ingested = 0

    def send(self, op: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        key = self.admin_key if ROUTES[op] in self.admin else self.key
        samples = self.warm_samples if self.warming else self.samples
        t0 = time.perf_counter()
        try:
            status, answer = self.client(method, path, key, body)
        except (OSError, http.client.HTTPException) as exc:
            samples.append((ROUTES[op], 0, (time.perf_counter() - t0) * 1000))
            self.transport_errors.append(f"{ROUTES[op]}: {type(exc).__name__}: {exc}")
            return 0, None
        samples.append((ROUTES[op], status, (time.perf_counter() - t0) * 1000))
        if status != 200:  # every request is valid: anything but 200 is unexpected (5xx are also errors)
            self.unexpected.append({"route": ROUTES[op], "status": status, "body": answer,
                                    "warmup": self.warming})
        return status, answer

    def run(self) -> None:
        """Warm-up (after ``n * ramp_s``: one of each operation, in a shuffled order, so every
        route is exercised and the cold starts are staggered), wait for the other threads,
        then the measured phase: operations drawn from `MIX` while the budget lasts."""
        try:
            time.sleep(self.n * self.ramp_s)
            for op in self.rng.sample(self.ops, len(self.ops)):
                getattr(self, op)()
            self.ready.wait(timeout=600)
            self.warming = False
            while self.budget.take():
                getattr(self, self.rng.choices(self.ops, self.weights)[0])()
        except Exception as exc:  # noqa: BLE001 - a crashed thread is reported as an error
            self.crashed = f"thread {self.n}: {type(exc).__name__}: {exc}"
            if not self.ready.broken:
                self.ready.abort()
        finally:
            self.client.close()

    def allow(self) -> bool:
        """Whether a follow-up request (feedback) may go: always while warming, else the budget."""
        return self.warming or self.budget.take()

    # --- operations
    def _predicted(self, status: int, answer: Any, label: int) -> None:
        if status != 200:
            return
        rid = answer["request_id"]
        self.predictions[rid] = {"version": answer["version"], "probability": answer["probability"]}
        if self.rng.random() < FEEDBACK_SHARE and self.allow():
            status, _ = self.send("feedback", "POST", "/feedback", {"request_id": rid, "label": label})
            if status == 200:
                self.feedback[rid] = label

    def predict(self) -> None:
        row = device_row(self.rng, "X", datetime.now(timezone.utc))
        body = {"model": MODEL, "features": {k: row[k] for k in STORED}, "request": {"vdd_setpoint": 1.2}}
        status, answer = self.send("predict", "POST", "/predict", body)
        self._predicted(status, answer, fails(self.rng, row))

    def predict_entity(self) -> None:
        entity = self.rng.choice(self.setup["seed_entities"])
        body = {"model": MODEL, "entity_id": entity, "request": {"vdd_setpoint": 1.2}}
        status, answer = self.send("predict_entity", "POST", "/predict", body)
        self._predicted(status, answer, self.rng.randint(0, 1))

    def ingest(self) -> None:
        rows = []
        for _ in range(INGEST_ROWS):
            rows.append(feature_row(self.rng, f"LOAD-{self.setup.get('run', 0)}-{self.n}-{self.ingested}"))
            self.ingested += 1
        status, answer = self.send("ingest", "POST", "/features", {"view": VIEW, "rows": rows})
        if status == 200 and answer.get("accepted") == len(rows):
            for row in rows:
                self.features[row["device_id"]] = row
        elif status == 200:
            self.unexpected.append({"route": ROUTES["ingest"], "status": status, "body": answer})

    def lookup(self) -> None:
        own = list(self.features)
        seeds = self.setup["seed_entities"]
        entity = self.rng.choice(own) if own and self.rng.random() < 0.5 else self.rng.choice(seeds)
        status, answer = self.send("lookup", "GET", f"/features/{entity}?views={VIEW}")
        if status == 200 and entity in self.features and answer["views"][VIEW]["status"] != "ok":
            self.read_misses.append(entity)

    def alias_read(self) -> None:
        self.send("alias_read", "GET", f"/models/{MODEL}/aliases/champion")

    def version_read(self) -> None:
        self.send("version_read", "GET", f"/models/{MODEL}/versions/{self.setup['version']}")

    def models_list(self) -> None:
        self.send("models_list", "GET", "/models")

    def audit_read(self) -> None:
        self.send("audit_read", "GET", f"/audit?model={MODEL}&limit=20")

    def alias_move(self) -> None:
        status, _ = self.send("alias_move", "POST", f"/models/{MODEL}/aliases/load-{self.n}",
                              {"version": self.setup["version"], "reason": "load test"})
        self.alias_moves += status == 200


class _Budget:
    """At most ``requests`` sends, none after ``seconds`` from `start`: shared by the threads."""

    def __init__(self, requests: int | None, seconds: float) -> None:
        self.left, self.seconds, self.lock = requests, seconds, threading.Lock()
        self.started = self.deadline = 0.0

    def start(self) -> None:
        self.started = time.perf_counter()
        self.deadline = self.started + self.seconds

    def take(self) -> bool:
        if time.perf_counter() >= self.deadline:
            return False
        with self.lock:
            if self.left is None:
                return True
            if self.left <= 0:
                return False
            self.left -= 1
            return True


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))] if ordered else None


def latency_summary(samples: list[tuple[str, int, float]], wall_s: float) -> dict[str, Any]:
    """Counts, statuses, p50/p95/p99 (ms) per route and overall, and throughput."""
    groups: dict[str, list[tuple[str, int, float]]] = {"overall": samples}
    for sample in samples:
        groups.setdefault(sample[0], []).append(sample)
    out = {}
    for route, group in groups.items():
        ms = [s[2] for s in group]
        statuses: dict[str, int] = {}
        for s in group:
            statuses[str(s[1])] = statuses.get(str(s[1]), 0) + 1
        out[route] = {"count": len(group), "statuses": statuses, "req_per_s": len(group) / wall_s if wall_s else 0.0,
                      **{f"p{q}_ms": percentile(ms, q) for q in (50, 95, 99)}}
    return out


def run_load(port: int, key: str, admin_key: str, setup: Mapping[str, Any], *, concurrency: int = 8,
             seconds: float = 120.0, max_requests: int | None = None, seed: int = 0,
             ramp_s: float = 0.5) -> dict[str, Any]:
    """Drive the mixed load (see `_Worker.run`); returns latencies per route of the measured
    phase (``routes``) and of the warm-up (``warmup``), errors of both, and every accepted item.
    Bounded: the warm-up is ``len(MIX)`` operations per thread, the measured phase at most
    ``max_requests`` requests and ``seconds``."""
    budget = _Budget(max_requests, seconds)
    ready = threading.Barrier(concurrency, action=budget.start)
    workers = [_Worker(n, port, key, admin_key, {**setup, "run": seed}, seed, budget, ready, ramp_s)
               for n in range(concurrency)]
    threads = [threading.Thread(target=w.run, name=f"load-{w.n}", daemon=True) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 600)
    wall_s = time.perf_counter() - budget.started if budget.started else 0.0
    samples = [s for w in workers for s in w.samples]
    warm = [s for w in workers for s in w.warm_samples]
    every = samples + warm
    return {
        "concurrency": concurrency, "seconds": seconds, "max_requests": max_requests, "wall_s": wall_s,
        "requests": len(samples), "routes": latency_summary(samples, wall_s),
        "warmup": latency_summary(warm, 0.0),
        "server_errors": sum(1 for s in every if s[1] >= 500),
        "transport_errors": [e for w in workers for e in w.transport_errors],
        "unexpected": [u for w in workers for u in w.unexpected][:20],
        "unexpected_count": sum(1 for w in workers for u in w.unexpected if u["status"] < 500),
        "read_after_write_misses": [m for w in workers for m in w.read_misses],
        "threads_failed": [w.crashed for w in workers if w.crashed] + [f"{t.name}: still running" for t in threads
                                                                         if t.is_alive()],
        "accepted": {
            "predictions": {rid: p for w in workers for rid, p in w.predictions.items()},
            "feedback": {rid: label for w in workers for rid, label in w.feedback.items()},
            "features": {e: row for w in workers for e, row in w.features.items()},
            "alias_moves": {f"load-{w.n}": w.alias_moves for w in workers},
        },
    }


# ----------------------------------------------------------------------------------- checks
def check_loss(cloud: Any, port: int, admin_key: str, accepted: Mapping[str, Any], *,
               audit_rate: float) -> dict[str, Any]:
    """What the stores hold of what the load's answers accepted: counts checked and lists of
    the lost (each empty when nothing was lost), and the audit verification."""
    from mlops.audit.events import ALIAS_MOVED, alias_entity, prediction_entity
    from mlops.audit.predictions import sampled
    from mlops.audit.store import AuditStore
    from mlops.features.online_store import OnlineStore
    from mlops.models.prediction_log import PredictionLog

    dynamodb = cloud.client("dynamodb")
    tables = {lid: t.name for lid, t in cloud.stack.tables.items()}
    log = PredictionLog(tables["PredictionsTable"], dynamodb=dynamodb)
    audit = AuditStore(tables["AuditTable"], dynamodb=dynamodb)

    lost_predictions, lost_feedback = [], []
    for rid, answer in accepted["predictions"].items():
        logged = log.get(rid)
        if logged is None or logged.version != answer["version"] or logged.probability != answer["probability"]:
            lost_predictions.append(rid)
    for rid, label in accepted["feedback"].items():
        logged = log.get(rid)
        if logged is None or logged.label != label:
            lost_feedback.append(rid)

    lost_features = []
    entities = list(accepted["features"])
    online = OnlineStore(tables["FeaturesTable"])
    now = datetime.now(timezone.utc)
    for start in range(0, len(entities), 100):
        chunk = entities[start:start + 100]
        for entity, found in zip(chunk, online.read_many(chunk, [VIEW], now, consistent=True)):
            view, sent = found.views[VIEW], accepted["features"][entity]
            if (not view.found or iso(view.event_timestamp) != sent["event_timestamp"]
                    or any(view.values[k] != sent[k] for k in STORED)):
                lost_features.append(entity)

    def records(entity: str) -> list[Any]:
        out, token = [], None
        while True:
            page = audit.query(entity=entity, limit=100, next_token=token)
            out += page.records
            token = page.next_token
            if token is None:
                return out

    lost_alias_moves = {}
    for alias, moves in accepted["alias_moves"].items():
        found = sum(1 for r in records(alias_entity(MODEL, alias)) if r.event.action == ALIAS_MOVED)
        if found != moves:
            lost_alias_moves[alias] = {"accepted": moves, "audited": found}
    audited = [rid for rid in accepted["predictions"] if sampled(rid, audit_rate)]
    lost_prediction_audits = [rid for rid in audited if not records(prediction_entity(rid))]

    client = Client(port)
    try:
        status, verified = client("GET", "/audit/verify", admin_key)
    finally:
        client.close()
    ok = status == 200 and verified["ok"]
    return {
        "predictions_checked": len(accepted["predictions"]), "predictions_lost": lost_predictions,
        "feedback_checked": len(accepted["feedback"]), "feedback_lost": lost_feedback,
        "feature_rows_checked": len(entities), "feature_rows_lost": lost_features,
        "alias_moves_checked": sum(accepted["alias_moves"].values()), "alias_moves_lost": lost_alias_moves,
        "prediction_audits_checked": len(audited), "prediction_audits_lost": lost_prediction_audits,
        "audit_verify_ok": ok,
        "audit_records": sum(c["records"] for c in verified["chains"]) if status == 200 else None,
        "audit_first_bad": verified.get("first_bad") if status == 200 else verified,
        "lost": (len(lost_predictions) + len(lost_feedback) + len(lost_features) + len(lost_alias_moves)
                 + len(lost_prediction_audits)),
    }


def error_count(load: Mapping[str, Any], loss: Mapping[str, Any]) -> int:
    """Everything that went wrong: 5xx, transport errors, unexpected 4xx answers to valid
    requests, read-after-write misses, failed or stuck threads, lost items, a broken audit chain."""
    return (load["server_errors"] + len(load["transport_errors"]) + load["unexpected_count"]
            + len(load["read_after_write_misses"]) + len(load["threads_failed"]) + loss["lost"]
            + (0 if loss["audit_verify_ok"] else 1))


def main() -> None:
    parser = argparse.ArgumentParser(description="run_load in its own process; the result as JSON on stdout")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--admin-key", required=True)
    parser.add_argument("--setup", required=True, help="prepare()'s answer, as JSON")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--max-requests", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ramp-seconds", type=float, default=0.5)
    args = parser.parse_args()
    result = run_load(args.port, args.key, args.admin_key, json.loads(args.setup), concurrency=args.concurrency,
                      seconds=args.seconds, max_requests=args.max_requests, seed=args.seed,
                      ramp_s=args.ramp_seconds)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
