"""The real SAM CLI in Docker against localcloud, measured in the same run, plus function sizes.

What, for HealthFunction (GET /health, shallow: no AWS calls) and events/HealthFunction.json:
- `sam local invoke` wall time per invoke (N=5 after one warm-up), against `localcloud invoke`
  (CLI wall time, same N, same event): what a developer waits for per invoke;
- `sam local start-api --warm-containers EAGER` latency per request, p50/p95 over 100 GETs of
  /health with the x-api-key header (SAM local does not enforce API keys; localcloud does),
  each on a new connection after 10 warm-up requests, against `localcloud start-api` serving
  the same requests; and the time from starting each server to its first 200;
- on `sam build`'s output, the unzipped size of every function plus its layers (MiB) against
  Lambda's 250 MiB limit.

Why: DESIGN.md promises that the SAM CLI keeps working on the same files; these numbers say
what it costs against localcloud, and the sizes check the 250 MiB rule on what AWS would get.

How: the machinery of `make sam-check` (tests/sam/samkit.py): hermetic SAM environment, the
proxy guard in the function containers, a Docker network of our own that is removed at the
end with everything on it. Needs Docker: when no engine answers it runs
../shared/tools/start-docker.sh and ../shared/tools/build-lambda-base.sh (as make sam-check
does); if Docker still cannot run it exits 1 without touching the stored results (run.py then
names them stale). Writes benchmarks/results/sam.json.
Run: ``.venv/bin/python benchmarks/bench_sam.py`` (``--n``, ``--requests`` to change sizes).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "sam"))

import samkit  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
FUNCTION = "HealthFunction"
EVENT = samkit.EVENTS_DIR / f"{FUNCTION}.json"
PATH = "/health"
API_KEY = "bench-sam-api-key-0123456789"  # API Gateway (and moto) want at least 20 characters
SAM_VENV_PYTHON = ROOT / ".venv-sam" / "bin" / "python"


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def row(figure: str, value: float | None, unit: str, how: str, peer: str = "", peer_value: float | None = None,
        target: str | None = None) -> dict:
    ratio = round(value / peer_value, 2) if value is not None and peer_value else None
    return {"figure": figure, "value": None if value is None else round(value, 3), "unit": unit, "how": how,
            "peer": peer, "peer_value": None if peer_value is None else round(peer_value, 3), "ratio": ratio,
            "target": target}


def ensure_docker() -> None:
    problem = samkit.docker_problem()
    if problem is None:
        return
    print(f"bench_sam: {problem}; starting Docker and building the Lambda base image", file=sys.stderr)
    env = {**os.environ, "PYTHON": str(SAM_VENV_PYTHON)}
    for script, timeout in (("start-docker.sh", 600), ("build-lambda-base.sh", 1200)):
        ran = samkit.run(["bash", samkit.SHARED / "tools" / script], timeout=timeout, env=env, what=script)
        if ran.returncode != 0:
            raise samkit.CheckError(f"{script} failed:\n{ran.describe()}")
    problem = samkit.docker_problem()
    if problem:
        raise samkit.CheckError(problem)


def machine(sam: samkit.Sam) -> str:
    server = samkit.run(["docker", "version", "--format", "{{.Server.Version}}"], timeout=60).stdout.strip()
    return (f"nproc {os.cpu_count()}, Python {platform.python_version()} ({platform.python_implementation()}), "
            f"{platform.system()} {platform.machine()}, Docker engine {server}, {sam.version().splitlines()[0]}")


def expect_ok(payload: object, who: str) -> None:
    if not (isinstance(payload, dict) and payload.get("statusCode") == 200):
        raise samkit.CheckError(f"{who} did not answer 200: {payload!r}")


# ------------------------------------------------------------------------------ invokes
def time_invokes(cmd: list, env: dict, n: int, who: str, sam: samkit.Sam | None = None) -> list[float]:
    """Wall-clock ms of ``n`` runs of a CLI invoke, after one warm-up run that is not counted."""
    samples = []
    for i in range(n + 1):
        if sam is not None:  # through Sam.run, which removes the container of a killed invoke
            ran = sam.run(*cmd[1:], timeout=samkit.INVOKE_TIMEOUT_S, docker_config=Path(env["DOCKER_CONFIG"]), what=who)
        else:
            ran = samkit.run(cmd, timeout=samkit.INVOKE_TIMEOUT_S, env=env, what=who)
        if ran.returncode != 0:
            raise samkit.CheckError(f"{who} failed:\n{ran.describe()}")
        expect_ok(samkit.parse_payload(ran.stdout, who), who)
        if i:
            samples.append(ran.seconds * 1000)
    return samples


# ------------------------------------------------------------------------------ servers
def time_requests(server: samkit.Server, n: int, warmup: int) -> tuple[list[float], object]:
    headers = {"x-api-key": API_KEY}
    body = None
    for _ in range(warmup):
        status, _h, body = samkit.http_get(server.url + PATH, headers)
        if status != 200:
            raise samkit.CheckError(f"{server.url}{PATH} answered {status}: {body[:300]!r}")
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        status, _h, body = samkit.http_get(server.url + PATH, headers)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
        if status != 200:
            raise samkit.CheckError(f"{server.url}{PATH} answered {status}: {body[:300]!r}")
    return samples, json.loads(body) if body else None


def measure(n: int, requests: int, warmup: int, scratch: Path) -> tuple[list[dict], list[str], str]:
    from localcloud.template import load_stack

    sam = samkit.Sam.create(scratch)
    notes: list[str] = []
    builds = samkit.Builds(sam, samkit.ROOT / ".aws-sam" / "sam-bench")  # not make sam-check's build dir
    if not builds.whole.ok:
        headline = next((line for line in reversed(builds.whole.error.splitlines()) if line.startswith("Error:")), "")
        notes.append(f"`sam build` of the whole template failed here ({headline.strip() or 'see make sam-check'}); "
                     "each function was built on its own with `sam build <Fn>` (the function and its layers).")
    build = builds.for_function(FUNCTION)
    if not build.ok:
        raise samkit.CheckError(f"sam build {FUNCTION} failed:\n{build.error}")
    stack = load_stack(samkit.TEMPLATE, region=samkit.REGION)
    key_env = stack.api_keys["ApiKey"].env_var if "ApiKey" in stack.api_keys else "LOCALCLOUD_API_KEY"
    local_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    local_env[key_env] = API_KEY
    guard = samkit.write_docker_guard(scratch / "docker-config", [])
    rows: list[dict] = []

    # -- invokes
    sam_cmd = [sam.path, "local", "invoke", FUNCTION, "--template", build.template, "--event", EVENT,
               "--skip-pull-image", "--region", samkit.REGION]
    local_cmd = [*samkit.localcloud_command(), "invoke", FUNCTION, "--event", EVENT,
                 "--template", samkit.TEMPLATE, "--region", samkit.REGION]
    with samkit.DockerNetwork("bench") as net:
        sam_invokes = time_invokes(sam_cmd, sam.env(guard), n, "sam local invoke", sam)
        local_invokes = time_invokes(local_cmd, local_env, n, "localcloud invoke")
        sam_how = (f"`sam local invoke {FUNCTION} -t {rel(build.template)} -e {rel(EVENT)} --skip-pull-image` "
                   f"(+ --region); wall time of the CLI, N={n} after 1 warm-up; samples ms: "
                   + ", ".join(f"{s:.0f}" for s in sam_invokes))
        local_how = (f"`localcloud invoke {FUNCTION} -e {rel(EVENT)}` wall time, N={n} after 1 warm-up; samples ms: "
                     + ", ".join(f"{s:.0f}" for s in local_invokes))
        rows.append(row(f"sam local invoke {FUNCTION}: wall time per invoke (median)", statistics.median(sam_invokes),
                        "ms", sam_how, f"localcloud invoke {FUNCTION} (CLI wall time, median)",
                        statistics.median(local_invokes)))
        notes.append(f"localcloud invoke timing: {local_how}.")

        # -- start-api
        sam_port, local_port = samkit.free_port(), samkit.free_port()
        sam_server = local_server = None
        try:
            sam_server = samkit.start_server(
                [sam.path, "local", "start-api", "--template", build.template, "--host", "127.0.0.1",
                 "--port", str(sam_port), "--warm-containers", "EAGER", "--skip-pull-image",
                 "--docker-network", net.name, "--region", samkit.REGION],
                env=sam.env(guard), log=scratch / "sam-start-api.log", url=f"http://127.0.0.1:{sam_port}",
                ready_path=PATH, headers={"x-api-key": API_KEY}, timeout=600)
            sam_lat, sam_body = time_requests(sam_server, requests, warmup)
        finally:
            if sam_server:
                sam_server.stop()
        try:
            local_server = samkit.start_server(
                [*samkit.localcloud_command(), "start-api", "--template", samkit.TEMPLATE, "--host", "127.0.0.1",
                 "--port", str(local_port), "--region", samkit.REGION],
                env=local_env, log=scratch / "localcloud-start-api.log", url=f"http://127.0.0.1:{local_port}",
                ready_path=PATH, headers={"x-api-key": API_KEY}, timeout=300)
            local_lat, local_body = time_requests(local_server, requests, warmup)
        finally:
            if local_server:
                local_server.stop()
    if sam_body != local_body:
        raise samkit.CheckError(f"GET {PATH}: sam local start-api answered {sam_body!r}, localcloud {local_body!r}")
    how = (f"GET {PATH} with x-api-key, a new HTTP connection per request, {requests} sequential requests after "
           f"{warmup} warm-up; perf_counter around request+response")
    for q in (50, 95):
        rows.append(row(f"sam local start-api --warm-containers EAGER: GET {PATH} p{q}", percentile(sam_lat, q), "ms",
                        f"`sam local start-api -t {rel(build.template)} --warm-containers EAGER --skip-pull-image`; {how}",
                        f"localcloud start-api, same requests, p{q}", percentile(local_lat, q)))
    rows.append(row("sam local start-api --warm-containers EAGER: start to first 200", sam_server.started_s * 1000,
                    "ms", f"from starting the CLI until GET {PATH} answers 200 (polled every 0.5 s)",
                    "localcloud start-api, same", local_server.started_s * 1000))
    slow = sum(1 for v in sam_lat if v > 500)
    notes.append(f"sam local start-api: {slow} of {requests} requests took over 500 ms (p50 {percentile(sam_lat, 50):.0f} ms, "
                 f"max {max(sam_lat):.0f} ms). SAM 1.148 waits up to 1 s after each response for the container's log "
                 "line (samcli/local/docker/container.py: `self._logs_thread_event.wait(timeout=1)`); when the log "
                 "arrives late the request takes about 1 s. How often that happens varies from run to run (it "
                 "sets the p95 when it hits more than 5% of the requests).")
    notes.append("SAM local does not enforce API keys (a request without x-api-key gets 200 there); localcloud "
                 "answers 403 without a valid key, as API Gateway does. Both were sent the same key.")

    # -- sizes
    for fid in sorted(stack.functions):
        fbuild = builds.for_function(fid)
        if not fbuild.ok:
            rows.append(row(f"size of {fid} + layers", None, "MiB", f"`sam build {fid}` failed here",
                            "Lambda limit (function + layers, unzipped)", samkit.LAMBDA_LIMIT_MIB, "< 250 MiB"))
            continue
        total, parts = samkit.function_size(fbuild.template, fid)
        rows.append(row(f"size of {fid} + layers", total, "MiB",
                        f"sum of file sizes in `sam build` output ({rel(fbuild.template.parent)}): "
                        + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()),
                        "Lambda limit (function + layers, unzipped)", samkit.LAMBDA_LIMIT_MIB, "< 250 MiB"))
    return rows, notes, machine(sam)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5, help="CLI invokes per side (default 5)")
    parser.add_argument("--requests", type=int, default=100, help="start-api requests per side (default 100)")
    parser.add_argument("--warmup", type=int, default=10, help="start-api warm-up requests (default 10)")
    args = parser.parse_args()
    import tempfile

    try:
        ensure_docker()
        with tempfile.TemporaryDirectory(prefix="bench-sam-") as tmp:
            rows, notes, machine_text = measure(args.n, args.requests, args.warmup, Path(tmp))
    except samkit.CheckError as exc:
        print(f"bench_sam: NOT measured, the stored results are kept: {exc}", file=sys.stderr)
        return 1
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "sam.json"
    tmp_out = out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps({
        "name": "sam",
        "title": "SAM CLI in Docker against localcloud (same run), and function sizes",
        "rows": rows,
        "machine": machine_text,
        "measured_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": ".venv/bin/python benchmarks/bench_sam.py",
        "notes": notes,
    }, indent=2) + "\n")
    tmp_out.replace(out)
    for r in rows:
        print(f"{r['figure']}: {r['value']} {r['unit']} (peer {r['peer']}: {r['peer_value']}, ratio {r['ratio']})")
    print(f"bench_sam: wrote {rel(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
