"""A 5-state Step Functions execution end to end through `localcloud.sfn.execute`.

What: ``Task -> Choice -> Wait (60 s) -> Task -> Succeed``, the two Tasks invoking a local
function by its ARN, run N=30 times warm (after warm-up executions, so the function's
environment is warm) through `sfn.execute`: start_execution, moto's interpreter, the Lambda
invokes in the local worker process, the Wait on the virtual clock, polling describe_execution
until the end, and the full event history. The peer, measured in the same run and the same
process, is the same definition with Pass states in place of the Tasks: the difference is
what the two function invocations cost; the Pass-only figure is the interpreter's and the API's
own cost. Target: a 5-state execution <= 300 ms.

Why: `localcloud execute`, the retraining and canary-rollout tests and `make demo` all go
through this path; the Wait must cost nothing real.

Writes benchmarks/results/sfn.json. Run: ``.venv/bin/python benchmarks/bench_sfn.py [-n 30]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from localcloud import sfn
from localcloud.clock import VirtualClock
from localcloud.cloud import LocalCloud
from localcloud.template import load_stack

RESULTS = Path(__file__).resolve().parent / "results"
WAIT_SECONDS = 60

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  BumpFunction:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.11
      CodeUri: fn
      Handler: app.bump
      MemorySize: 128
      Timeout: 3
  TasksStateMachine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: tasks.asl.json
      DefinitionSubstitutions:
        BumpArn: !GetAtt BumpFunction.Arn
  PassesStateMachine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: passes.asl.json
"""

HANDLER = '''\
def bump(event, context):
    return {"n": int(event.get("n", 0)) + 1}
'''


def definition(step: dict) -> dict:
    """The 5-state machine with ``step`` as its first and fourth state."""
    return {
        "StartAt": "Prepare",
        "States": {
            "Prepare": {**step, "Next": "Route"},
            "Route": {"Type": "Choice",
                      "Choices": [{"Variable": "$.n", "NumericGreaterThan": 0, "Next": "Hold"}],
                      "Default": "Done"},
            "Hold": {"Type": "Wait", "Seconds": WAIT_SECONDS, "Next": "Finish"},
            "Finish": {**step, "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }


def write_app(root: Path) -> Path:
    """The benchmark's SAM app in a temporary directory."""
    (root / "fn").mkdir()
    (root / "fn" / "app.py").write_text(HANDLER)
    (root / "tasks.asl.json").write_text(json.dumps(definition({"Type": "Task", "Resource": "${BumpArn}"})))
    (root / "passes.asl.json").write_text(json.dumps(definition(
        {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}})))
    (root / "template.yaml").write_text(TEMPLATE)
    return root / "template.yaml"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def machine() -> str:
    """The machine the numbers were measured on, for the results file."""
    return (f"{os.cpu_count()} CPUs, Python {platform.python_version()} "
            f"({platform.python_implementation()}), {platform.system()} {platform.machine()}")


def run(cloud: LocalCloud, state_machine: str, n: int, warmup: int) -> list[float]:
    """Milliseconds per `sfn.execute` of ``state_machine``, after ``warmup`` untimed runs."""
    times = []
    for i in range(warmup + n):
        t0 = time.perf_counter()
        result = sfn.execute(cloud, state_machine, {"n": 1})
        elapsed = (time.perf_counter() - t0) * 1000
        if result.status != "SUCCEEDED" or result.output != {"n": 3}:
            raise SystemExit(f"{state_machine}: unexpected result {result.status} {result.output} {result.cause}")
        if result.virtual_seconds != WAIT_SECONDS:
            raise SystemExit(f"{state_machine}: the Wait moved the clock {result.virtual_seconds} s")
        if i >= warmup:
            times.append(elapsed)
    return times


def row(figure: str, value: float, how: str, peer: str | None = None, peer_value: float | None = None,
        target: str = "") -> dict:
    """One result row in the shape benchmarks/run.py renders."""
    return {
        "figure": figure, "value": round(value, 3), "unit": "ms", "how": how, "peer": peer,
        "peer_value": None if peer_value is None else round(peer_value, 3),
        "ratio": None if not peer_value else round(value / peer_value, 2), "target": target,
    }


def measure(n: int, warmup: int) -> list[dict]:
    """Run both machines on one warm LocalCloud and return the result rows."""
    with tempfile.TemporaryDirectory() as tmp:
        stack = load_stack(write_app(Path(tmp)))
        clock = VirtualClock(datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc))
        with LocalCloud(stack, log_sink=lambda fid, line: None, clock=clock) as cloud:
            tasks = run(cloud, "TasksStateMachine", n, warmup)
            passes = run(cloud, "PassesStateMachine", n, warmup)
            round_trips = api_round_trips(cloud, n)
    how = (f"N={n} sequential sfn.execute calls after {warmup} warm-up, perf_counter around each "
           f"(start, interpreter, 2 warm local Lambda invokes, a {WAIT_SECONDS} s Wait on the virtual clock, "
           "describe_execution polling, full history)")
    peer_how = f"same run, same definition with Pass states instead of the two Tasks, N={n}"
    rows = [
        row(f"5-state execution p{q} (Task, Choice, Wait {WAIT_SECONDS} s, Task, Succeed)", percentile(tasks, q),
            how, f"Pass-only 5-state execution p{q}", percentile(passes, q), "<= 300 ms")
        for q in (50, 95)
    ]
    rows += [row(f"Pass-only 5-state execution p{q} (interpreter + API, no functions)", percentile(passes, q),
                 peer_how) for q in (50, 95)]
    rows.append(row("cost of the two Lambda Tasks (p50 difference)", percentile(tasks, 50) - percentile(passes, 50),
                    "p50 of the Task machine minus p50 of the Pass-only machine"))
    rows.append(row("one Step Functions API round trip to the in-process moto server p50",
                    percentile(round_trips, 50),
                    f"N={n} describe_execution calls through boto3; an execution makes a handful of them "
                    "(start, polls, history) and each Lambda Task one more (lambda:Invoke)"))
    return rows


def api_round_trips(cloud: LocalCloud, n: int) -> list[float]:
    """Milliseconds per describe_execution call: the unit cost of the API path."""
    client = cloud.client("stepfunctions")
    arn = sfn.execute(cloud, "PassesStateMachine", {"n": 1}).execution_arn
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        client.describe_execution(executionArn=arn)
        times.append((time.perf_counter() - t0) * 1000)
    return times


def write_results(rows: list[dict]) -> Path:
    """Write benchmarks/results/sfn.json atomically."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "sfn.json"
    data = {
        "name": "sfn", "title": "Step Functions: a 5-state execution", "rows": rows, "machine": machine(),
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": ".venv/bin/python benchmarks/bench_sfn.py",
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
    return path


def main() -> None:
    """Measure, write the results and print them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=30, help="timed executions per machine (default 30)")
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    rows = measure(args.n, args.warmup)
    path = write_results(rows)
    for r in rows:
        peer = f"  (peer {r['peer']}: {r['peer_value']} ms, ratio {r['ratio']})" if r["peer"] else ""
        print(f"{r['figure']}: {r['value']} ms{peer} {r['target']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
