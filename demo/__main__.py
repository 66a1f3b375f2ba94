"""`make demo`: the MLOps loop on the embedded local cloud, one line per step.

Provision the template into moto (fault injection on, for the bad version); ingest 13 weeks of
the worked example's parametric tests (110 per device) and outcomes through POST /features; the
retraining state machine trains v1 (the first version waits for a person: promoted by hand);
serve weeks 13 and 14 a simulated day at a time over real HTTP on 127.0.0.1, with feedback,
and run the drift check (GET /drift/yield) at the end of each week. From week 14 tester T2's
calibration is off: the check fires and itself starts the retraining run (its canary settings
come from the drift check function's ``RETRAINING_INPUT``), which trains v2 and rolls it out
through the canary state machine (1 -> 10 -> 50 -> 100%, statistical gate at each stage) while
traffic flows. A deliberately failing v3 is rolled back at its first stage; a Thompson-sampling
bandit then splits traffic between v2 and v1 by their feedback; the audit chain is verified.
Bakes run on the virtual clock. Writes reports/demo/summary.json, series.json and the HTML
report (`demo.report`).
"""

from __future__ import annotations

import http.client
import json
import math
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from demo import report
from demo.yield_data import FEATURES, PARAMETRICS, START, iso, request_rows, week
from localcloud import sfn
from localcloud.apigw import ApiServer
from localcloud.cloud import LocalCloud
from localcloud.template import load_stack

ROOT = Path(__file__).resolve().parents[1]
REPORT_DIR = ROOT / "reports" / "demo"
WEEKS = 13  # weeks 0..12: the history v1 trains on
DRIFT_WEEK = 14  # tester T2's calibration shifts from this week on
SERVED_WEEKS = (13, 14)  # served a simulated day at a time, drift-checked at each week's end
HEATMAP_WEEKS = 16  # weeks 0..15 in the PSI heat map (15 is served during the canary)
ROWS_PER_DAY = 100
INGEST_ROWS = 300  # ~2 kB a row of 110 parametrics
WINDOW = {"start": iso(START), "end": iso(START.replace(year=START.year + 1))}
SPEC = {"features": FEATURES, "slices": ["tester_id", "fab_site"],
        "config": {"n_estimators": 40, "seed": 0, "sensitive": ["fab_site"]}}
# a demo's stages see few rows: 5 per variant per stage, as many re-bakes as traffic needs
POLICY = {"min_samples": 5, "min_labelled": 20, "max_extensions": 100000, "baseline_seconds": 0, "baseline_rows": 300,
          "settle_seconds": 0.5, "switch_seconds": 0.5}  # a batch request takes ~0.15 s here
CANARY = {"stages": [1, 10, 50, 100], "bake_seconds": 3600, "policy": POLICY}
# what the runs the drift check starts carry (the drift check function's RETRAINING_INPUT)
RETRAINING_INPUT = {"window": WINDOW, "spec": {**SPEC, "config": {**SPEC["config"], "seed": 1}}, "canary": CANARY}
BANDIT_BATCHES, BANDIT_ROWS = 3, 50
FEEDBACK_EVERY = 20  # rows; the labels come back for one in 20 (the canary's throughput is its clock)


_last = [time.perf_counter()]


def step(n: int, text: str) -> None:
    """One line per step, with the seconds it took."""
    now = time.perf_counter()
    print(f"[{n}] {text} ({now - _last[0]:.1f} s)", flush=True)
    _last[0] = now


def progress(done: float, total: float, text: str) -> None:
    """A progress bar on stderr, redrawn in place; only on a terminal (logs stay one line a step)."""
    if sys.stderr.isatty():
        filled = int(30 * min(done / total, 1.0)) if total else 30
        sys.stderr.write(f"\r    [{'#' * filled}{'.' * (30 - filled)}] {text[:60]:<60}")
        sys.stderr.flush()


def progress_done() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\r" + " " * 100 + "\r")
        sys.stderr.flush()


class Client:
    """JSON over one keep-alive HTTP connection to the local API."""

    def __init__(self, port: int, key: str) -> None:
        self.port, self.key = port, key
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def __call__(self, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any, float]:
        headers = {"Content-Type": "application/json"}
        if key or self.key:
            headers["x-api-key"] = key or self.key
        data = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):  # the server closes a connection left idle (a long canary): reconnect once
            t0 = time.perf_counter()
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                return resp.status, json.loads(resp.read() or b"null"), (time.perf_counter() - t0) * 1000
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


class Series:
    """What the report plots, collected as the demo runs (shared by every traffic source)."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.latency: list[dict[str, Any]] = []
        self.days: dict[int, list[int]] = {}  # simulated day -> [correct, n]
        self.events: list[dict[str, Any]] = []
        self.bandit: list[dict[str, Any]] = []
        self.rows = 0
        self.lock = threading.Lock()

    def batch(self, day: float, ms: float, answers: list[dict], labels: list[int]) -> None:
        t = round(time.perf_counter() - self.started, 3)
        with self.lock:
            for version in sorted({a["version"] for a in answers}):
                self.latency.append({"t": t, "version": version, "ms": round(ms, 2)})
            cell = self.days.setdefault(int(day), [0, 0])
            cell[0] += sum(int(a["label"] == y) for a, y in zip(answers, labels))
            cell[1] += len(answers)
            self.rows += len(answers)

    def accuracy(self, since_day: int = 0) -> float:
        cells = [c for d, c in self.days.items() if d >= since_day]
        return sum(c[0] for c in cells) / max(1, sum(c[1] for c in cells))

    def to_dict(self, psi: dict[str, Any]) -> dict[str, Any]:
        return {"latency": self.latency, "psi": psi, "events": self.events, "bandit": self.bandit,
                "accuracy": [{"day": d, "accuracy": round(c[0] / c[1], 4), "n": c[1]}
                             for d, c in sorted(self.days.items()) if c[1]]}


class Traffic:
    """Batch predictions with feedback on every 20th row, a simulated day at a time or from a
    thread until stopped (then each batch is a quarter of a simulated day)."""

    def __init__(self, port: int, key: str, series: Series, *, seed: int, day: float, drifted: bool) -> None:
        self.client, self.rng = Client(port, key), random.Random(seed)
        self.series, self.day, self.drifted = series, day, drifted
        self.stop = threading.Event()
        self.rows = 0
        self.statuses: dict[int, int] = {}
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            self.once()
            self.day += 0.25

    def once(self, n: int = ROWS_PER_DAY) -> None:
        batch = request_rows(self.rng, n, drifted=self.drifted)
        status, body, ms = self.client("POST", "/predict/batch", {"model": "yield", "rows": [r for r, _ in batch]})
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status != 200:
            return
        answers = body["predictions"]
        self.series.batch(self.day, ms, answers, [label for _, label in batch])
        for i, (answer, (_, label)) in enumerate(zip(answers, batch)):
            if i % FEEDBACK_EVERY == 0:
                self.client("POST", "/feedback", {"request_id": answer["request_id"], "label": label})
        self.rows += len(answers)

    def serve_week(self, n: int, label: str) -> None:
        for d in range(7):
            self.day = n * 7 + d
            progress(d, 7, f"{label}: day {d + 1} of 7")
            self.once()
        progress_done()

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


def drift_check(client: Client, admin: str, since: float) -> dict[str, Any]:
    """GET /drift/yield over the predictions made since ``since`` (time.time())."""
    hours = (time.time() - since + 2) / 3600
    status, body, _ = client("GET", f"/drift/yield?window_hours={hours:.6f}", key=admin)
    assert status == 200, body
    return body


def fired(check: dict[str, Any], n: int) -> dict[str, Any]:
    """The summary's record of a drift check: what drifted, with scores, and what it started."""
    drifted = {f: {k: check["features"][f][k] for k in ("method", "score", "threshold", "psi")}
               for f in check["drifted_features"]}
    retraining = check["retraining"]
    return {"week": n, "rows": check["rows"], "drift_share": check["drift_share"], "max_psi": check["max_psi"],
            "features": drifted, "retrain": retraining["retrain"], "reasons": retraining["reasons"],
            "started": retraining["started"], "not_started": retraining["not_started"],
            "report": check.get("report")}


def wait_for(cloud: LocalCloud, arn: str, traffic: Traffic, timeout: float = 600) -> sfn.ExecutionResult:
    """Wait for an execution someone else started (the drift check), with a progress line."""
    client = cloud.client("stepfunctions")
    wall, virtual = time.perf_counter(), cloud.clock.now()
    deadline = time.monotonic() + timeout
    while True:
        described = client.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            break
        assert time.monotonic() < deadline, f"retraining run {arn} still running after {timeout} s"
        hours = (cloud.clock.now() - virtual).total_seconds() / 3600
        progress(min(hours, 30), 30, f"retraining + canary: {hours:.0f} h baked, {traffic.rows} predictions")
        time.sleep(0.2)
    progress_done()
    output = described.get("output")
    return sfn.ExecutionResult(execution_arn=arn, status=described["status"],
                               output=json.loads(output) if output else None, error=described.get("error"),
                               cause=described.get("cause"), wall_seconds=time.perf_counter() - wall,
                               virtual_seconds=(cloud.clock.now() - virtual).total_seconds())


def failure(cloud: LocalCloud, run: sfn.ExecutionResult) -> str:
    """Why a retraining run did not give a version: the gate's reasons, or the first failed
    step of the run or of its canary child."""
    if run.cause:
        return run.cause
    out = run.output or {}
    child = out.get("canary") or {}
    events = []
    if isinstance(child, dict) and child.get("ExecutionArn"):
        history = cloud.client("stepfunctions").get_execution_history(executionArn=child["ExecutionArn"])
        events = [e for e in history["events"] if "Failed" in e["type"]][:3]
    return json.dumps({"gate": out.get("gate"), "record": out.get("record"), "canary_failures": events},
                      default=str)[:4000]


def bandit(client: Client, admin: str, series: Series, v1: int, v2: int, seed: int, day: int) -> dict[str, Any]:
    """A Thompson-sampling bandit between v2 (the champion) and v1 on drifted traffic, rewarded by
    correct predictions from feedback; its allocation after each batch."""
    definition = {"experiment_id": "demo-bandit", "model": "yield", "mde": 0.05,
                  "variants": [{"name": f"v{v2}", "weight": 1, "model_version": str(v2)},
                               {"name": f"v{v1}", "weight": 1, "model_version": str(v1)}],
                  "primary_metric": {"name": "correct", "kind": "proportion", "baseline": 0.9},
                  "bandit": {"policy": "thompson_beta", "params": {"floor": 0.05}}}
    status, created, _ = client("POST", "/experiments", definition, key=admin)
    assert status == 201, created
    series.bandit.append({"feedback": 0, "probabilities": created["bandit"]["probabilities"]})
    rng, feedback = random.Random(seed), 0
    for b in range(BANDIT_BATCHES):
        progress(b, BANDIT_BATCHES, f"bandit: batch {b + 1} of {BANDIT_BATCHES}")
        batch = request_rows(rng, BANDIT_ROWS, drifted=True)
        rows = [{**r, "entity_id": f"BANDIT-{b}-{i}"} for i, (r, _) in enumerate(batch)]
        status, body, ms = client("POST", "/predict/batch", {"model": "yield", "rows": rows})
        assert status == 200, body
        series.batch(day + b, ms, body["predictions"], [y for _, y in batch])
        for answer, (_, label) in zip(body["predictions"], batch):
            status, _, _ = client("POST", "/feedback", {"request_id": answer["request_id"], "label": label})
            feedback += status == 200
        _, state, _ = client("GET", "/experiments/demo-bandit", key=admin)
        series.bandit.append({"feedback": feedback, "probabilities": state["bandit"]["probabilities"]})
    progress_done()
    _, analysis, _ = client("GET", "/experiments/demo-bandit/analysis", key=admin)
    client("POST", "/experiments/demo-bandit/stop", {"reason": "demo over"}, key=admin)
    correct = next((c for c in analysis.get("comparisons", []) if c.get("metric") == "correct"), {})
    return {"policy": "thompson_beta", "feedback": feedback, "probabilities": series.bandit[-1]["probabilities"],
            "arms": state["bandit"]["arms"], "assignments": analysis.get("totals", {}).get("assignments"),
            "correct": {k: correct.get(k) for k in ("control_value", "treatment_value", "p_value")
                        if k in correct}}


def main() -> int:
    started = time.perf_counter()
    series = Series(started)
    summary: dict[str, Any] = {"versions": {}}
    stack = load_stack(ROOT / "template.yaml", parameter_overrides={"FaultInjection": "enabled"})
    overrides = {"InferenceFunction": {"DEPLOYMENT_CACHE_SECONDS": "0", "EXPERIMENT_CACHE_SECONDS": "0"},
                 "DriftCheckFunction": {"RETRAINING_INPUT": json.dumps(RETRAINING_INPUT)}}
    batches = [week(n, drift_from=DRIFT_WEEK) for n in range(HEATMAP_WEEKS)]
    with LocalCloud(stack, log_sink=lambda fid, line: None, env_vars=overrides) as cloud, \
            ApiServer(cloud.runtime, stack, cloud.api_keys, host="127.0.0.1", port=0, quiet=True) as api:
        os.environ["AWS_ENDPOINT_URL"] = cloud.endpoint_url
        key, admin = cloud.api_keys["ApiKey"], cloud.api_keys["AdminApiKey"]
        client = Client(api.port, key)
        step(1, f"provisioned {len(stack.tables)} tables, {len(stack.buckets)} buckets, {len(stack.functions)} functions, "
                f"{len(stack.state_machines)} state machines into moto; API on {api.url}")

        def ingest(weeks: range | list[int]) -> int:
            for view in ("device_parametrics", "device_outcomes"):
                rows = [r for n in weeks for r in (batches[n].parametrics if view == "device_parametrics"
                                                    else batches[n].outcomes)]
                for i in range(0, len(rows), INGEST_ROWS):  # requests stay under the API's 1 MiB
                    chunk = rows[i:i + INGEST_ROWS]
                    status, body, _ = client("POST", "/features", {"view": view, "rows": chunk}, key=admin)
                    assert status == 200 and body["accepted"] == len(chunk), body
            return len(rows)

        devices = ingest(range(WEEKS))
        fail_rate = float(np.mean([o["label"] for b in batches[:WEEKS] for o in b.outcomes]))
        step(2, f"ingested {WEEKS} weeks: {devices} devices' tests ({len(PARAMETRICS)} parametrics each) and "
                f"outcomes (fail rate {fail_rate:.1%}) into the offline (S3) and online (DynamoDB) stores")
        summary["data"] = {"weeks": WEEKS, "devices": devices, "fail_rate": round(fail_rate, 4),
                           "parametrics": len(PARAMETRICS), "drift_week": DRIFT_WEEK}

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
        summary["versions"][v1] = {"fate": "champion (first model)", "auc": round(auc1, 4),
                                   "trigger": first.output["run"]["reasons"]}

        served = Traffic(api.port, key, series, seed=1, day=SERVED_WEEKS[0] * 7, drifted=False)
        since = time.time()
        served.serve_week(SERVED_WEEKS[0], f"week {SERVED_WEEKS[0]}")
        ingest([SERVED_WEEKS[0]])
        quiet = drift_check(client, admin, since)
        lat = [r["ms"] for r in series.latency]
        step(4, f"served week {SERVED_WEEKS[0]} a simulated day at a time: {served.rows} predictions over HTTP "
                f"with feedback, accuracy {series.accuracy():.1%}, batch latency p50 {np.percentile(lat, 50):.0f} ms; "
                f"end-of-week drift check on {quiet['rows']} logged inputs: max PSI {quiet['max_psi']:.2f}, "
                f"retraining: {quiet['retraining']['not_started']}")
        assert quiet["retraining"]["started"] is None, quiet["retraining"]
        summary["drift"] = {"quiet": fired(quiet, SERVED_WEEKS[0])}

        served.drifted, since = True, time.time()
        series.events.append({"day": DRIFT_WEEK * 7, "label": f"tester T2 calibration shift (week {DRIFT_WEEK})"})
        served.serve_week(DRIFT_WEEK, f"week {DRIFT_WEEK} (drifted)")
        ingest([DRIFT_WEEK])
        alarm = drift_check(client, admin, since)
        summary["drift"]["fired"] = fired(alarm, DRIFT_WEEK)
        started_run = alarm["retraining"]["started"]
        worst = sorted(summary["drift"]["fired"]["features"].items(), key=lambda kv: -(kv[1]["psi"] or 0))[:3]
        scores = ", ".join(f"{f} PSI {d['psi']:.2f}" for f, d in worst)
        step(5, f"week {DRIFT_WEEK}: tester T2 reads leakage +60% and contact resistance +2.5 ohm; accuracy "
                f"{series.accuracy(DRIFT_WEEK * 7):.1%} on {served.rows - 7 * ROWS_PER_DAY} predictions; the drift check "
                f"fired ({scores}; reasons "
                f"{'+'.join(alarm['retraining']['reasons'])}) and started retraining run "
                f"{started_run['name'] if started_run else 'NONE: ' + str(alarm['retraining']['not_started'])}")
        assert started_run, alarm["retraining"]
        series.events.append({"day": (DRIFT_WEEK + 1) * 7, "label": "drift check fired: retraining started"})

        with Traffic(api.port, key, series, seed=2, day=(DRIFT_WEEK + 1) * 7, drifted=True) as live:
            run = wait_for(cloud, started_run["executionArn"], live)
            promoted_day = live.day
        assert run.succeeded and (run.output or {}).get("registered"), failure(cloud, run)
        v2 = run.output["registered"]["value"]["version"]
        canary = run.output["canary"]
        gate = run.output["gate"]["value"]
        path = " -> ".join(f"{h['percent']:g}%" for h in canary["history"])
        if canary["outcome"] != "promoted":
            path += f" ({', '.join(canary.get('reasons') or [])} failed)"
        checks = ", ".join(c["name"] for c in gate["checks"])
        step(6, f"the drift-started run trained v{v2} on weeks 0-{DRIFT_WEEK}, passed the gate ({checks}) and went "
                f"{path}: {canary['outcome']} in {run.wall_seconds:.1f} s wall, {run.virtual_seconds / 3600:.0f} h of "
                f"bakes on the virtual clock; {live.rows} predictions served meanwhile")
        series.events.append({"day": promoted_day, "label": f"v{v2} {canary['outcome']}"})
        summary["versions"][v2] = {"fate": canary["outcome"],
                                   "auc": round(run.output["candidate"]["value"]["metrics"]["roc_auc"], 4),
                                   "trigger": run.output["run"]["reasons"],
                                   "execution": started_run["name"]}
        summary["canary_v2"] = {"wall_seconds": round(run.wall_seconds, 2), "virtual_hours": run.virtual_seconds / 3600,
                                "stages": stages(canary["history"])}

        bad = json.loads((ROOT / "events" / "TrainFunction.json").read_text())
        v3 = cloud.invoke("TrainFunction", bad)["version"]
        status, _, _ = client("POST", f"/models/yield/versions/{v3}/faults", {"error_rate": 1.0}, key=admin)
        assert status == 200
        with Traffic(api.port, key, series, seed=3, day=promoted_day, drifted=True) as live:
            rollback = sfn.execute(cloud, "CanaryRolloutStateMachine", {"model": "yield", "challenger": v3, **CANARY},
                                   timeout=600)
        assert rollback.succeeded, rollback.cause
        out = rollback.output
        errors = next(c for c in out["history"][-1]["checks"] if c["name"] == "error_rate")
        step(7, f"v{v3} made to fail every request (fault injection): clients kept getting the champion's answers "
                f"({live.statuses}); the gate saw error rate {errors['observed']:.0%} (z-test p={errors['p_value']:.1e}) "
                f"at {out['history'][-1]['percent']:g}% and the canary {out['outcome'].replace('_', ' ')}")
        summary["versions"][v3] = {"fate": out["outcome"], "reasons": out["reasons"], "trigger": ["manual"]}
        summary["canary_v3"] = {"wall_seconds": round(rollback.wall_seconds, 2), "stages": stages(out["history"])}

        assert summary["versions"][v2]["fate"] == "promoted", summary["canary_v2"]["stages"][-1]
        summary["bandit"] = bandit(client, admin, series, v1, v2, seed=4, day=math.ceil(live.day))
        alloc = ", ".join(f"{k} {v:.0%}" for k, v in summary["bandit"]["probabilities"].items())
        arms = ", ".join(f"{k} {a['successes']:.0f}/{a['n']} right" for k, a in summary["bandit"]["arms"].items())
        step(8, f"Thompson-sampling bandit v{v2} vs v{v1} on drifted traffic: {summary['bandit']['feedback']} "
                f"feedbacks ({arms}) moved the allocation to {alloc}")

        status, verified, _ = client("GET", "/audit/verify", key=admin)
        records = sum(c["records"] for c in verified["chains"])
        step(9, f"audit trail: {records} hash-chained records in {len(verified['chains'])} chains; "
                f"verify says {'intact' if verified['ok'] else 'BROKEN at ' + json.dumps(verified['first_bad'])}")
        summary["audit"] = {"ok": verified["ok"], "records": records, "chains": len(verified["chains"])}
        summary["requests_served"] = series.rows
        summary["latency_ms"] = report.latency_percentiles(series.latency)

    reference = {f: [r.get(f) for b in batches[:WEEKS] for r in b.parametrics] for f in PARAMETRICS}
    weekly = [{f: [r.get(f) for r in b.parametrics] for f in PARAMETRICS} for b in batches]
    matrix = report.psi_by_week(reference, weekly)
    psi = {"weeks": list(range(HEATMAP_WEEKS)), "features": list(matrix), "values": list(matrix.values()),
           "drift_week": DRIFT_WEEK}
    data = series.to_dict(psi)
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    (REPORT_DIR / "series.json").write_text(json.dumps(data) + "\n")
    report.render(summary, data, REPORT_DIR)
    summary["wall_seconds"] = round(time.perf_counter() - started, 2)
    (REPORT_DIR / "index.html").write_text(report.render_html(summary))
    (REPORT_DIR / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    step(10, f"done in {summary['wall_seconds']} s; summary.json and the report (index.html, "
             f"{len(report.PLOTS)} plots) in {REPORT_DIR.relative_to(ROOT)}/")
    ok = (summary["versions"][v2]["fate"] == "promoted" and summary["versions"][v3]["fate"] == "rolled_back"
          and summary["audit"]["ok"] and "drift" in summary["versions"][v2]["trigger"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
