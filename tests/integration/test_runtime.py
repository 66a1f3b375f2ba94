"""Lambda semantics of `LambdaRuntime`, invoked directly (no moto, no HTTP): environment
variables and ``--env-vars``, layers, the context object, timeouts, error payloads, import
failures, init once per warm environment, START/END/REPORT lines, and isolation of two
functions whose handler modules are both ``app.py``."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.runtime import Invocation, LambdaRuntime, load_env_vars_file
from localcloud.template import load_stack

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "api_app" / "template.yaml"
REPORT = re.compile(
    r"^REPORT RequestId: (?P<id>[0-9a-f-]{36})\tDuration: (?P<duration>\d+\.\d{2}) ms\t"
    r"Billed Duration: (?P<billed>\d+) ms\tMemory Size: (?P<memory>\d+) MB\t"
    r"Max Memory Used: (?P<used>\d+) MB(?:\tInit Duration: (?P<init>\d+\.\d{2}) ms)?$"
)


class LogSink:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, function_id: str, line: str) -> None:
        with self._lock:
            self.lines.append((function_id, line))


@pytest.fixture(scope="module")
def stack():
    return load_stack(FIXTURE, stack_name="fixtures")


@pytest.fixture
def runtime(stack) -> Iterator[LambdaRuntime]:
    """A fresh runtime per test, so that cold and warm starts are the test's own."""
    with LambdaRuntime(stack, log_sink=LogSink()) as rt:
        yield rt


def invoke(rt: LambdaRuntime, function: str, event: object = None, **kwargs) -> Invocation:
    return rt.invoke(function, json.dumps(event if event is not None else {}), **kwargs)


def report_of(inv: Invocation) -> re.Match:
    lines = [line.rstrip("\n") for line in inv.logs if line.startswith("REPORT ")]
    assert len(lines) == 1, inv.logs
    match = REPORT.match(lines[0])
    assert match, lines[0]
    return match


# -------------------------------------------------------------------------------- environment


def test_environment_from_globals_and_the_function(runtime) -> None:
    alpha = invoke(runtime, "AlphaFunction").json()["env"]
    assert alpha["NAME"] == "alpha"
    assert alpha["GLOBAL_VAR"] == "from-globals"
    assert alpha["SHARED_VAR"] == "alpha-value"  # the function's value wins over Globals
    assert alpha["ALPHA_ONLY"] == "1" and alpha["BETA_ONLY"] is None
    assert alpha["AWS_LAMBDA_FUNCTION_NAME"] == "fixtures-AlphaFunction"
    beta = invoke(runtime, "BetaFunction").json()["env"]
    assert beta["NAME"] == "beta"
    assert beta["SHARED_VAR"] == "global-value"
    assert beta["BETA_ONLY"] == "1" and beta["ALPHA_ONLY"] is None


def test_env_vars_file_overrides_only_declared_variables(stack, tmp_path) -> None:
    path = tmp_path / "env.json"
    path.write_text(json.dumps({
        "Parameters": {"GLOBAL_VAR": "from-parameters", "NOT_DECLARED_ANYWHERE": "x"},
        "AlphaFunction": {"NAME": "overridden", "UNDECLARED": "nope", "BETA_ONLY": "no"},
    }))
    with LambdaRuntime(stack, env_vars=load_env_vars_file(str(path)), log_sink=LogSink()) as rt:
        alpha = invoke(rt, "AlphaFunction").json()["env"]
        beta = invoke(rt, "BetaFunction").json()["env"]
    assert alpha["NAME"] == "overridden"
    assert alpha["GLOBAL_VAR"] == "from-parameters"
    assert alpha["UNDECLARED"] is None
    assert alpha["BETA_ONLY"] is None  # declared for Beta, not for Alpha
    assert beta["NAME"] == "beta"  # Alpha's entry does not touch Beta
    assert beta["GLOBAL_VAR"] == "from-parameters"


def test_layer_code_is_importable(runtime) -> None:
    assert invoke(runtime, "AlphaFunction").json()["layer"] == "from-the-layer"


def test_context_object(runtime, stack) -> None:
    fn = stack.functions["AlphaFunction"]
    inv = invoke(runtime, "AlphaFunction", {"pause": 0.3})
    ctx = inv.json()["context"]
    assert ctx["function_name"] == fn.name == "fixtures-AlphaFunction"
    assert ctx["function_version"] == "$LATEST"
    assert ctx["invoked_function_arn"] == fn.arn
    assert int(ctx["memory_limit_in_mb"]) == 128
    assert ctx["aws_request_id"] == inv.request_id
    assert ctx["log_group_name"] == "/aws/lambda/fixtures-AlphaFunction"
    assert 2000 < ctx["remaining_before"] <= 3000  # Timeout: 3 from Globals
    assert ctx["remaining_before"] - ctx["remaining_after"] >= 250  # it counts down


# -------------------------------------------------------------------------------- failures


def test_timeout_then_cold_start(runtime) -> None:
    started = time.monotonic()
    inv = invoke(runtime, "SlowFunction", {"seconds": 3})
    elapsed = time.monotonic() - started
    assert 0.95 < elapsed < 2.5
    assert inv.function_error == "Unhandled"
    error = inv.json()
    assert error["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert inv.request_id in error["errorMessage"]
    assert runtime.warm_environments("SlowFunction") == 0  # the environment was killed
    again = invoke(runtime, "SlowFunction", {"seconds": 0}, capture_logs=True)
    assert again.function_error is None
    assert again.json()["statusCode"] == 200
    assert again.cold_start
    assert report_of(again)["init"] is not None


def test_unhandled_exception_payload(runtime) -> None:
    inv = invoke(runtime, "FailFunction")
    assert inv.function_error == "Unhandled"
    error = inv.json()
    assert error["errorType"] == "ModelNotReady"
    assert error["errorMessage"] == "model yield-v3 is not ready"
    assert isinstance(error["stackTrace"], list) and error["stackTrace"]
    assert all(isinstance(frame, str) for frame in error["stackTrace"])
    assert 'misc/app.py", line' in error["stackTrace"][-1]
    assert "raise ModelNotReady" in error["stackTrace"][-1]
    # the environment survives a handled-by-runtime exception and stays warm
    assert runtime.warm_environments("FailFunction") == 1


def test_import_failure(runtime) -> None:
    inv = invoke(runtime, "BrokenFunction")
    assert inv.function_error == "Unhandled"
    error = inv.json()
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert error["errorMessage"] == (
        "Unable to import module 'app': No module named 'module_that_is_not_installed'")
    assert runtime.warm_environments("BrokenFunction") == 0


def test_init_longer_than_the_limit_is_an_init_timeout(runtime, monkeypatch) -> None:
    monkeypatch.setenv("LOCALCLOUD_INIT_TIMEOUT_S", "1")  # Lambda's is 10 s; the module takes 3 s
    inv = invoke(runtime, "SlowInitFunction")
    assert inv.function_error == "Unhandled"
    error = inv.json()
    assert (error["errorType"], error["errorMessage"]) == ("Runtime.InitTimeout",
                                                           "Init phase did not finish within 1 seconds")
    assert runtime.warm_environments("SlowInitFunction") == 0
    monkeypatch.setenv("LOCALCLOUD_INIT_TIMEOUT_S", "30")
    assert invoke(runtime, "SlowInitFunction").json() == {"initialised": True}


# -------------------------------------------------------------------------------- warm and cold


def test_init_once_per_warm_environment(runtime) -> None:
    results = [invoke(runtime, "AlphaFunction") for _ in range(3)]
    bodies = [r.json() for r in results]
    assert [b["init_count"] for b in bodies] == [1, 1, 1]
    assert [b["calls"] for b in bodies] == [1, 2, 3]
    assert len({b["pid"] for b in bodies}) == 1
    assert [r.cold_start for r in results] == [True, False, False]
    assert runtime.warm_environments("AlphaFunction") == 1


def test_concurrent_invokes_get_their_own_environments(runtime) -> None:
    results: list[dict] = []
    lock = threading.Lock()

    def worker() -> None:
        body = invoke(runtime, "AlphaFunction", {"pause": 0.4}).json()
        with lock:
            results.append(body)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len({b["pid"] for b in results}) == 3
    assert all(b["init_count"] == 1 and b["calls"] == 1 for b in results)
    assert runtime.warm_environments("AlphaFunction") == 3


def test_start_end_report_lines(runtime) -> None:
    first = invoke(runtime, "AlphaFunction", capture_logs=True)
    second = invoke(runtime, "AlphaFunction", capture_logs=True)
    for inv in (first, second):
        assert inv.logs[0] == f"START RequestId: {inv.request_id} Version: $LATEST\n"
        assert f"END RequestId: {inv.request_id}\n" in inv.logs
        report = report_of(inv)
        assert report["id"] == inv.request_id
        assert report["memory"] == "128"
        assert int(report["billed"]) >= float(report["duration"])
        assert int(report["used"]) > 0
    assert report_of(first)["init"] is not None and float(report_of(first)["init"]) > 0
    assert report_of(second)["init"] is None
    assert first.init_ms is not None and second.init_ms is None
    beta = invoke(runtime, "BetaFunction", capture_logs=True)
    assert report_of(beta)["memory"] == "256"


def test_logs_go_to_the_sink_with_the_function_id(stack) -> None:
    sink = LogSink()
    with LambdaRuntime(stack, log_sink=sink) as rt:
        inv = invoke(rt, "LogsFunction")
    mine = [line for fid, line in sink.lines if fid == "LogsFunction"]
    assert any("hello from print" in line for line in mine)
    assert any(line.startswith(f"REPORT RequestId: {inv.request_id}") for line in mine)


# -------------------------------------------------------------------------------- isolation


def test_two_app_modules_never_see_each_other(runtime, stack) -> None:
    alpha = invoke(runtime, "AlphaFunction").json()
    beta = invoke(runtime, "BetaFunction").json()
    assert alpha["module_id"] == "alpha" and beta["module_id"] == "beta"
    assert Path(alpha["module_file"]) == stack.functions["AlphaFunction"].code_dir / "app.py"
    assert Path(beta["module_file"]) == stack.functions["BetaFunction"].code_dir / "app.py"
    assert alpha["env"]["NAME"] == "alpha" and beta["env"]["NAME"] == "beta"
    assert alpha["env"]["BETA_ONLY"] is None and beta["env"]["ALPHA_ONLY"] is None
    # and alternating calls keep each function's own warm module
    assert invoke(runtime, "AlphaFunction").json()["calls"] == 2
    assert invoke(runtime, "BetaFunction").json()["module_id"] == "beta"
