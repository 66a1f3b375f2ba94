"""Warm invoke overhead of localcloud's Lambda runtime against a direct in-process call.

What: an empty handler (``return None``) is invoked N=2000 times warm through
`LambdaRuntime.invoke` (event frame to the worker process, the handler, START/END/REPORT, the
answer frame) and called N=2000 times directly in this process; the overhead is the
difference of the medians. Cold starts (a new execution environment) are measured too, against
the start of a bare Python interpreter. Target: overhead <= 1 ms.

Why: the local runtime is what every local test, the API and the state machines go through;
its per-invoke cost has to stay small next to the handlers it runs.

The functions' log lines go to a sink that drops them: printing them is not what is measured.
Writes benchmarks/results/bench_invoke.json. Run: ``.venv/bin/python benchmarks/bench_invoke.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from localcloud.runtime import LambdaRuntime
from localcloud.template import Stack, load_stack

RESULTS = Path(__file__).resolve().parent / "results"

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  BenchApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: bench
  EmptyFunction:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.11
      CodeUri: fn
      Handler: app.empty
      MemorySize: 128
      Timeout: 3
  PingFunction:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.11
      CodeUri: fn
      Handler: app.ping
      MemorySize: 128
      Timeout: 3
      Events:
        Ping:
          Type: Api
          Properties: {RestApiId: !Ref BenchApi, Path: /ping, Method: get}
"""

HANDLERS = '''\
def empty(event, context):
    return None


def ping(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "ok"}
'''


def write_app(root: Path) -> Path:
    """Write the benchmark's SAM application into ``root``; returns the template path."""
    (root / "fn").mkdir(parents=True, exist_ok=True)
    (root / "fn" / "app.py").write_text(HANDLERS)
    (root / "template.yaml").write_text(TEMPLATE)
    return root / "template.yaml"


def load_handlers(root: Path) -> ModuleType:
    """The same handler module, imported into this process for the direct calls."""
    spec = importlib.util.spec_from_file_location("bench_app", root / "fn" / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def drop_logs(function_id: str, line: str) -> None:
    """Log sink that discards the functions' log lines."""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def machine() -> str:
    return (f"nproc {os.cpu_count()}, Python {platform.python_version()} "
            f"({platform.python_implementation()}), {platform.system()} {platform.machine()}, "
            f"1-min load average {os.getloadavg()[0]:.2f} when written")


def row(figure: str, value: float, unit: str, how: str, peer: str = "", peer_value: float | None = None,
        target: str = "") -> dict:
    ratio = round(value / peer_value, 2) if peer_value else None
    return {"figure": figure, "value": round(value, 6), "unit": unit, "how": how, "peer": peer,
            "peer_value": None if peer_value is None else round(peer_value, 6), "ratio": ratio,
            "target": target}


def write_results(name: str, rows: list[dict]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"name": name, "rows": rows, "machine": machine()}, indent=2) + "\n")
    tmp.replace(path)
    return path


def time_direct(module: ModuleType, n: int) -> list[float]:
    """Milliseconds per direct call of the empty handler."""
    handler, event, context = module.empty, {}, object()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        handler(event, context)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    return samples


def time_runtime(runtime: LambdaRuntime, n: int, warmup: int) -> list[float]:
    """Milliseconds per warm `LambdaRuntime.invoke` of the empty handler."""
    for _ in range(warmup):
        runtime.invoke("EmptyFunction", b"{}")
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        result = runtime.invoke("EmptyFunction", b"{}")
        samples.append((time.perf_counter_ns() - t0) / 1e6)
        if result.function_error or result.payload != b"null":
            raise RuntimeError(f"unexpected answer {result.payload!r}")
    return samples


def time_cold_starts(stack: Stack, n: int) -> list[float]:
    """Milliseconds for the first invoke of a fresh runtime (a new execution environment)."""
    samples = []
    for _ in range(n):
        with LambdaRuntime(stack, log_sink=drop_logs) as runtime:
            t0 = time.perf_counter_ns()
            result = runtime.invoke("EmptyFunction", b"{}")
            samples.append((time.perf_counter_ns() - t0) / 1e6)
            if not result.cold_start:
                raise RuntimeError("the first invoke was not a cold start")
    return samples


def time_bare_interpreter(n: int) -> list[float]:
    """Milliseconds to start and exit ``python -c pass`` (the floor of a new environment)."""
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    return samples


def measure(n: int, warmup: int, cold: int) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bench-invoke-") as tmp:
        root = Path(tmp)
        stack = load_stack(write_app(root), stack_name="bench")
        direct = time_direct(load_handlers(root), n)
        with LambdaRuntime(stack, log_sink=drop_logs) as runtime:
            warm = time_runtime(runtime, n, warmup)
        cold_starts = time_cold_starts(stack, cold)
    interpreter = time_bare_interpreter(cold)
    how = (f"N={n} sequential warm invokes after {warmup} warm-up, perf_counter_ns per call; "
           f"peer: N={n} direct calls of the same function in this process")
    rows = [
        row(f"warm invoke p{q} (LambdaRuntime.invoke, empty handler)", percentile(warm, q), "ms", how,
            f"direct in-process call p{q}", percentile(direct, q))
        for q in (50, 95, 99)
    ]
    overhead = percentile(warm, 50) - percentile(direct, 50)
    rows.append(row("warm invoke overhead (median difference)", overhead, "ms",
                    f"p50 of LambdaRuntime.invoke minus p50 of the direct call; {how}",
                    "direct in-process call p50", percentile(direct, 50), "<= 1 ms"))
    rows.append(row("cold invoke (new environment, empty handler) p50", percentile(cold_starts, 50), "ms",
                    f"first invoke of {cold} fresh runtimes: worker process start, import, invoke",
                    "python -c pass p50", percentile(interpreter, 50)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="warm invokes and direct calls (default 2000)")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--cold", type=int, default=5, help="cold starts to measure (default 5)")
    args = parser.parse_args()
    rows = measure(args.n, args.warmup, args.cold)
    path = write_results("bench_invoke", rows)
    for r in rows:
        peer = f"  (peer {r['peer']}: {r['peer_value']} {r['unit']}, ratio {r['ratio']})" if r["peer"] else ""
        print(f"{r['figure']}: {r['value']} {r['unit']}{peer} {r['target']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
