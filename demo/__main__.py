"""`make demo`: the MLOps loop on the embedded local cloud, one line per step.

Provision the template into moto (fault injection on, for the bad version of step 7); ingest
13 weeks of the worked example's parametric tests and outcomes through POST /features; the
retraining state machine trains v1 (the first version waits for a person: promoted by hand);
serve traffic over real HTTP on 127.0.0.1 with feedback; retrain v2 and roll it out through the
canary state machine (1 -> 10 -> 50 -> 100%, statistical gate at each stage) while traffic
flows; register a deliberately failing v3 and watch the canary roll it back at its first stage;
verify the audit chain. Bakes run on the virtual clock. Writes reports/demo/summary.json.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from demo.yield_data import FEATURES, START, iso, request_rows, week
from localcloud import sfn
from localcloud.apigw import ApiServer
from localcloud.cloud import LocalCloud
from localcloud.template import load_stack

ROOT = Path(__file__).resolve().parents[1]
REPORT_DIR = ROOT / "reports" / "demo"
WEEKS = 13
WINDOW = {"start": iso(START), "end": iso(START.replace(year=START.year + 1))}
SPEC = {"features": FEATURES, "slices": ["tester_id", "fab_site"],
        "config": {"n_estimators": 40, "seed": 0, "sensitive": ["fab_site"]}}
# a demo's stages see few rows: 5 per variant per stage, as many re-bakes as traffic needs
POLICY = {"min_samples": 5, "min_labelled": 20, "max_extensions": 100000, "baseline_seconds": 0,
          "settle_seconds": 2, "switch_seconds": 2}  # requests take < 2 s here


def step(n: int, text: str) -> None:
    print(f"[{n}] {text}", flush=True)


class Client:
    """JSON over one keep-alive HTTP connection to the local API."""

    def __init__(self, port: int, key: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.key = key

    def __call__(self, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any, float]:
        t0 = time.perf_counter()
        headers = {"Content-Type": "application/json"}
        if key or self.key:
            headers["x-api-key"] = key or self.key
        self.conn.request(method, path, body=None if body is None else json.dumps(body).encode(), headers=headers)
        resp = self.conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null"), (time.perf_counter() - t0) * 1000


class Traffic:
    """Batch predictions from a thread until stopped; every 10th row gets its feedback."""

    def __init__(self, port: int, key: str, seed: int) -> None:
        self.client, self.rng = Client(port, key), random.Random(seed)
        self.stop = threading.Event()
        self.latency_ms: dict[int, list[float]] = {}
        self.rows = 0
        self.statuses: dict[int, int] = {}
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            self.once()

    def once(self, n: int = 100) -> None:
        batch = request_rows(self.rng, n)
        status, body, ms = self.client("POST", "/predict/batch", {"model": "yield", "rows": [r for r, _ in batch]})
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status != 200:
            return
        for i, (answer, (_, label)) in enumerate(zip(body["predictions"], batch)):
            self.latency_ms.setdefault(answer["version"], []).append(ms)
            if i % 10 == 0:
                self.client("POST", "/feedback", {"request_id": answer["request_id"], "label": label})
        self.rows += len(body["predictions"])

    def __enter__(self) -> "Traffic":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=60)


def stages(history: list[dict]) -> list[dict]:
    return [{"percent": h["percent"], "decision": h.get("decision"), "reasons": h.get("reasons", []),
             "extensions": h.get("extensions", 0), "stage_counts": h.get("stage_counts"),
             "checks": {c["name"]: {k: c.get(k) for k in ("passed", "observed", "limit", "p_value")}
                        for c in h.get("checks", [])}} for h in history]


def main() -> int:
    started = time.perf_counter()
    summary: dict[str, Any] = {"versions": {}}
    stack = load_stack(ROOT / "template.yaml", parameter_overrides={"FaultInjection": "enabled"})
    overrides = {"InferenceFunction": {"DEPLOYMENT_CACHE_SECONDS": "0"}}
    with LocalCloud(stack, log_sink=lambda fid, line: None, env_vars=overrides) as cloud, \
            ApiServer(cloud.runtime, stack, cloud.api_keys, host="127.0.0.1", port=0, quiet=True) as api:
        os.environ["AWS_ENDPOINT_URL"] = cloud.endpoint_url
        key, admin = cloud.api_keys["ApiKey"], cloud.api_keys["AdminApiKey"]
        client = Client(api.port, key)
        step(1, f"provisioned {len(stack.tables)} tables, {len(stack.buckets)} buckets, {len(stack.functions)} functions, "
                f"{len(stack.state_machines)} state machines into moto; API on {api.url}")

        batches = [week(n) for n in range(WEEKS)]
        for view in ("device_parametrics", "device_outcomes"):
            rows = [r for b in batches for r in (b.parametrics if view == "device_parametrics" else b.outcomes)]
            status, body, _ = client("POST", "/features", {"view": view, "rows": rows})
            assert status == 200 and body["accepted"] == len(rows), body
        fail_rate = float(np.mean([o["label"] for b in batches for o in b.outcomes]))
        step(2, f"ingested {WEEKS} weeks: {len(rows)} devices' parametric tests and outcomes "
                f"(fail rate {fail_rate:.1%}) into the offline (S3) and online (DynamoDB) stores")
        summary["data"] = {"weeks": WEEKS, "devices": len(rows), "fail_rate": round(fail_rate, 4)}

        first = sfn.execute(cloud, "RetrainingStateMachine", {"model": "yield", "reason": "first model",
                                                              "window": WINDOW, "spec": SPEC}, timeout=600)
        assert first.succeeded, first.cause
        v1 = first.output["registered"]["value"]["version"]
        auc1 = first.output["candidate"]["value"]["metrics"]["roc_auc"]
        status, _, _ = client("POST", "/models/yield/aliases/champion", {"version": v1, "reason": "first model"},
                              key=admin)
        assert status == 200
        step(3, f"retraining run: data validated, point-in-time set built, v{v1} trained (holdout AUC {auc1:.3f}), "
                f"gated and registered in {first.wall_seconds:.1f} s; promoted to champion by hand")
        summary["versions"][v1] = {"fate": "champion (first model)", "auc": round(auc1, 4)}

        traffic = Traffic(api.port, key, seed=1)
        for _ in range(10):
            traffic.once()
        lat = traffic.latency_ms.get(v1, [0])
        step(4, f"served {traffic.rows} predictions over HTTP in 100-row batches, with feedback: "
                f"batch latency p50 {np.percentile(lat, 50):.0f} ms, p95 {np.percentile(lat, 95):.0f} ms")

        with Traffic(api.port, key, seed=2) as live:
            run = sfn.execute(cloud, "RetrainingStateMachine", {
                "model": "yield", "reason": "schedule", "window": WINDOW,
                "spec": {**SPEC, "config": {**SPEC["config"], "seed": 1}},
                "canary": {"stages": [1, 10, 50, 100], "bake_seconds": 3600, "policy": POLICY}}, timeout=600)
        assert run.succeeded, run.cause
        v2 = run.output["registered"]["value"]["version"]
        canary = run.output["canary"]
        gate = run.output["gate"]["value"]
        path = " -> ".join(f"{h['percent']:g}%" for h in canary["history"])
        checks = ", ".join(c["name"] for c in gate["checks"])
        step(5, f"retraining + canary: v{v2} passed the gate ({checks}) and went {path}: {canary['outcome']} in "
                f"{run.wall_seconds:.1f} s wall, {run.virtual_seconds / 3600:.0f} h of bakes on the virtual clock; "
                f"{live.rows} predictions served meanwhile")
        summary["versions"][v2] = {"fate": canary["outcome"], "auc": round(run.output["candidate"]["value"]["metrics"]["roc_auc"], 4)}
        summary["canary_v2"] = {"wall_seconds": round(run.wall_seconds, 2), "virtual_hours": run.virtual_seconds / 3600,
                                "stages": stages(canary["history"])}

        bad = json.loads((ROOT / "events" / "TrainFunction.json").read_text())
        v3 = cloud.invoke("TrainFunction", bad)["version"]
        status, _, _ = client("POST", f"/models/yield/versions/{v3}/faults", {"error_rate": 1.0}, key=admin)
        assert status == 200
        with Traffic(api.port, key, seed=3) as live:
            rollback = sfn.execute(cloud, "CanaryRolloutStateMachine", {
                "model": "yield", "challenger": v3, "stages": [1, 10, 50, 100], "bake_seconds": 3600,
                "policy": POLICY}, timeout=600)
        assert rollback.succeeded, rollback.cause
        out = rollback.output
        errors = next(c for c in out["history"][-1]["checks"] if c["name"] == "error_rate")
        step(6, f"v{v3} made to fail every request (fault injection): clients kept getting the champion's answers "
                f"({live.statuses}); the gate saw error rate {errors['observed']:.0%} (z-test p={errors['p_value']:.1e}) "
                f"at {out['history'][-1]['percent']:g}% and the canary {out['outcome'].replace('_', ' ')}")
        summary["versions"][v3] = {"fate": out["outcome"], "reasons": out["reasons"]}
        summary["canary_v3"] = {"wall_seconds": round(rollback.wall_seconds, 2), "stages": stages(out["history"])}

        status, verified, _ = client("GET", "/audit/verify", key=admin)
        records = sum(c["records"] for c in verified["chains"])
        step(7, f"audit trail: {records} hash-chained records in {len(verified['chains'])} chains; "
                f"verify says {'intact' if verified['ok'] else 'BROKEN at ' + json.dumps(verified['first_bad'])}")
        summary["audit"] = {"ok": verified["ok"], "records": records, "chains": len(verified["chains"])}
        status, models, _ = client("GET", "/models")
        summary["requests_served"] = traffic.rows

    summary["wall_seconds"] = round(time.perf_counter() - started, 2)
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    step(8, f"done in {summary['wall_seconds']} s; summary in {REPORT_DIR.relative_to(ROOT)}/summary.json")
    ok = (summary["versions"][v2]["fate"] == "promoted" and summary["versions"][v3]["fate"] == "rolled_back"
          and summary["audit"]["ok"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
