"""A full retraining plus a 4-stage canary rollout, end to end on localcloud (issue 5's target).

What: the product template in one `LocalCloud`; 700 devices' parametrics and outcomes ingested
through POST /features; a first retraining registers v1, promoted by hand. Then, timed, N runs
of the retraining state machine (validate the data, point-in-time training set, train + compare
with the champion, gate, register, then the canary child execution at 1 -> 10 -> 50 -> 100% with
a one-hour bake per stage on the virtual clock, the statistical gate at each stage, promote)
while a client thread sends batch predictions through the local API (the canary's gate needs
rows of both variants at every stage; 5 per variant per stage here). Wall time from
start_execution to the end of the parent execution; the virtual seconds the clock moved; the
number of Lambda steps both executions ran (LambdaFunctionScheduled events).

Peer: SAM cannot run state machines at all; the nearest it offers is `sam local invoke` of each
step by hand, so the peer is the number of steps times the median `sam local invoke` wall time
(benchmarks/bench_sam.py measures it in Docker; this script measures it in the same run when a
built function and Docker are there, else it takes the latest sam.json figure and says so).

Writes benchmarks/results/rollout.json. Run: ``.venv/bin/python benchmarks/bench_rollout.py [-n 3]``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))  # the seeded yield data of the tests

from yield_models import START, STORED, device_row, fails, iso  # noqa: E402

from localcloud import sfn  # noqa: E402
from localcloud.apigw import ApiServer  # noqa: E402
from localcloud.cloud import LocalCloud  # noqa: E402
from localcloud.template import load_stack  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
KEY, ADMIN = "bench-key-0123456789", "bench-admin-0123456789"
WINDOW = {"start": iso(START - timedelta(days=1)), "end": iso(START + timedelta(days=30))}
SPEC = {"features": ["vdd", "idd", "leakage_na", "fmax_mhz", "p000", "vdd_idd_ratio", "vdd_margin"],
        "slices": ["tester_id", "fab_site"], "config": {"n_estimators": 20, "seed": 0, "sensitive": ["fab_site"]}}
STAGES = [1, 10, 50, 100]
BAKE = 3600
POLICY = {"min_samples": 5, "min_labelled": 5, "max_extensions": 100000, "baseline_seconds": 0, "baseline_rows": 300,
          "settle_seconds": 0.5, "switch_seconds": 0.5}  # a batch request takes < 0.5 s here


def call(port: int, method: str, path: str, body: object, key: str, conn: http.client.HTTPConnection | None = None):
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json", "x-api-key": key})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        if own:
            conn.close()


def ingest(port: int) -> None:
    rng = random.Random(42)
    parametrics, outcomes = [], []
    for i in range(700):
        t = START + timedelta(minutes=20 * i)
        row = device_row(rng, f"DEV-{i:04d}", t)
        parametrics.append(row)
        outcomes.append({"device_id": row["device_id"], "event_timestamp": iso(t + timedelta(hours=2)),
                         "label": fails(rng, row), "tester_id": f"T{i % 3 + 1}", "fab_site": "F1", "vdd_setpoint": 1.2})
    for view, rows in (("device_parametrics", parametrics), ("device_outcomes", outcomes)):
        status, body = call(port, "POST", "/features", {"view": view, "rows": rows}, ADMIN)
        assert status == 200, body


def traffic(port: int, stop: threading.Event, counter: list[int]) -> None:
    rng = random.Random(1)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while not stop.is_set():
        rows = [{"features": {k: v for k, v in device_row(rng, "X", START).items() if k in STORED},
                 "request": {"vdd_setpoint": 1.2}} for _ in range(100)]
        status, body = call(port, "POST", "/predict/batch", {"model": "yield", "rows": rows}, KEY, conn)
        if status == 200:
            counter[0] += len(body["predictions"])
    conn.close()


def lambda_steps(cloud: LocalCloud, result: sfn.ExecutionResult) -> int:
    """Lambda tasks of the execution and of the canary child it started."""
    steps = sum(e["type"] == "TaskScheduled" and e["taskScheduledEventDetails"]["resourceType"] == "lambda"
                for e in result.events)
    client = cloud.client("stepfunctions")
    child = (result.output or {}).get("canary", {}).get("execution")
    if child:
        events = client.get_execution_history(executionArn=child, maxResults=1000)["events"]
        steps += sum(e["type"] == "TaskScheduled" for e in events)
    return steps


def sam_invoke_ms() -> tuple[float, str]:
    """Median `sam local invoke` wall time: measured now if possible, else the last sam.json."""
    built = ROOT / ".aws-sam/sam-bench/per-function/HealthFunction/build/template.yaml"
    sam = ROOT / ".venv-sam/bin/sam"
    if built.exists() and sam.exists() and shutil.which("docker"):
        samples = []
        for _ in range(3):
            t0 = time.perf_counter()
            done = subprocess.run([str(sam), "local", "invoke", "HealthFunction", "-t", str(built), "-e",
                                   str(ROOT / "events/HealthFunction.json"), "--skip-pull-image", "--region", "us-east-1"],
                                  capture_output=True, env={**os.environ, "SAM_CLI_TELEMETRY": "0"})
            if done.returncode != 0:
                break
            samples.append((time.perf_counter() - t0) * 1000)
        if len(samples) == 3:
            return statistics.median(samples), f"measured in this run (N=3: {[round(s) for s in samples]} ms)"
    recorded = json.loads((RESULTS / "sam.json").read_text())
    row = next(r for r in recorded["rows"] if r["figure"].startswith("sam local invoke HealthFunction"))
    return row["value"], (f"no built function + Docker in this run: the median from benchmarks/results/sam.json "
                          f"(measured {recorded['measured_at']})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=3)
    args = parser.parse_args()
    stack = load_stack(ROOT / "template.yaml")
    runs = []
    # the inference function reads the deployment record on every request (no 5 s cache), so a
    # stage's window can start 2 s (one request) after its weights change
    overrides = {"InferenceFunction": {"DEPLOYMENT_CACHE_SECONDS": "0"}}
    with LocalCloud(stack, api_keys={"ApiKey": KEY, "AdminApiKey": ADMIN}, env_vars=overrides) as cloud, \
            ApiServer(cloud.runtime, cloud.stack, cloud.api_keys, port=0, quiet=True) as api:
        os.environ["AWS_ENDPOINT_URL"] = cloud.endpoint_url
        ingest(api.port)
        first = sfn.execute(cloud, "RetrainingStateMachine", {"model": "yield", "window": WINDOW, "spec": SPEC},
                            timeout=600)
        assert first.succeeded, first.cause
        v1 = first.output["registered"]["value"]["version"]
        status, body = call(api.port, "POST", "/models/yield/aliases/champion", {"version": v1}, ADMIN)
        assert status == 200, body
        for i in range(args.n):
            stop, counter = threading.Event(), [0]
            thread = threading.Thread(target=traffic, args=(api.port, stop, counter), daemon=True)
            thread.start()
            time.sleep(1.0)  # champion traffic flowing before the run starts
            result = sfn.execute(cloud, "RetrainingStateMachine", {
                "model": "yield", "reason": "benchmark", "window": WINDOW,
                "spec": {**SPEC, "config": {**SPEC["config"], "seed": i + 1}},
                "canary": {"stages": STAGES, "bake_seconds": BAKE, "policy": POLICY}}, timeout=600)
            stop.set()
            thread.join()
            assert result.succeeded, result.cause
            outcome = result.output["canary"]["outcome"]
            history = result.output["canary"]["history"]
            runs.append({"wall_s": result.wall_seconds, "virtual_s": result.virtual_seconds,
                         "steps": lambda_steps(cloud, result), "outcome": outcome, "rows": counter[0],
                         "extensions": [h.get("extensions", 0) for h in history],
                         "reasons": [h.get("reasons") for h in history]})
            print(f"run {i + 1}: {result.wall_seconds:.2f} s wall, {result.virtual_seconds:.0f} s virtual, "
                  f"{runs[-1]['steps']} Lambda steps, {outcome}, {counter[0]} rows served", flush=True)
    sam_ms, sam_how = sam_invoke_ms()
    wall = statistics.median(r["wall_s"] for r in runs)
    steps = statistics.median(r["steps"] for r in runs)
    peer_s = steps * sam_ms / 1000
    how = (f"median of {args.n} runs: RetrainingStateMachine (validate, PIT set, train 20 trees + champion on the "
           f"same holdout, gate, register) + CanaryRolloutStateMachine child at {STAGES}% with {BAKE} s bakes on "
           f"the virtual clock, gate needing 5 rows per variant per stage (windows opening/closing 0.5 s after/before "
           f"a change, champion baseline: the stage window + at most 300 rows before it), under batch traffic "
           f"(one client, 100 rows a request) through the local API "
           f"(inference deployment cache off); "
           f"outcomes {[r['outcome'] for r in runs]}")
    result = {
        "name": "rollout",
        "title": "Continuous training: retraining + 4-stage canary on the virtual clock",
        "rows": [
            {"figure": "retraining + 4-stage canary, wall time", "value": round(wall, 2), "unit": "s", "how": how,
             "peer": f"sam local invoke of each of its {steps:g} Lambda steps ({sam_ms / 1000:.1f} s each; {sam_how})",
             "peer_value": round(peer_s, 1), "ratio": round(wall / peer_s, 3), "target": "<= 10 s"},
            {"figure": "virtual time the clock moved", "value": round(statistics.median(r["virtual_s"] for r in runs)),
             "unit": "s", "how": "cloud.clock before/after the execution: 4 bakes of 1 h, plus extensions while a "
             "stage waited for rows", "peer": None, "peer_value": None, "ratio": None, "target": None},
        ],
        "machine": f"nproc {os.cpu_count()}, Python {platform.python_version()}, {platform.system()} {platform.machine()}, "
                   f"1-min load average {os.getloadavg()[0]:.2f} when written",
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": ".venv/bin/python benchmarks/bench_rollout.py",
        "notes": [f"runs: {runs}",
                  "SAM CLI cannot execute Step Functions state machines; the peer is what running the same steps "
                  "one by one with `sam local invoke` would cost, without any orchestration.",
                  ("Where the wall time goes: bakes cost nothing (virtual clock), but the functions stamp and judge rows by the wall clock, so a stage is decided only on rows that real traffic produced after its weights changed (its window opens switch_seconds after the change and closes settle_seconds before the evaluation: 0.5 s each here; the inference deployment cache is off); 5 challenger rows at 1% need ~500 predictions, so the 1% stage is evaluated again and again (extensions above). While the challenger is short of rows an evaluation reads only its rows (tens of ms); the one that decides a stage also reads the champion's stage window and up to baseline_rows before it (a few hundred ms). The retraining part (validate, point-in-time set, train 20 trees, ONNX parity, champion on the same holdout, gate, register) takes 1.3-2.3 s. The traffic thread, the API server and moto share one process and the machine's two cores, which other tenants also use (load average ~1.5 before the run), hence the spread between runs. Since the previous record (11.3 s, median of 3): moto's Query drops the items outside a string range condition before sorting and walking them, and its hash-key filter is a tight loop (a canary evaluation no longer walks the version's whole history); moto parses DynamoDB requests with a walker compiled per operation and sizes map and list values without re-wrapping every member; botocore's client-side parameter validation is off in mlops.aws (half of a 100-row prediction-log write); the RolloutFunction imports scipy.stats at init rather than in the first deciding evaluation; the stack's state machine definitions are parsed ahead on a background thread (ANTLR: 0.1-0.3 s the first time); offline-store parts are fetched 8 at a time; the champion is read in pages of 1,000 rows. Before the previous session's changes the median was 46.9 s.")],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rollout.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["rows"], indent=1))


if __name__ == "__main__":
    main()
