"""The local Lambda service: execution environments for the template's functions.

Each environment is a worker process (`worker.py`) that imports the handler once (a cold
start, with its Init Duration) and then serves invokes while warm. `LambdaRuntime.invoke` takes
a warm environment of the function, or starts one when all are busy (up to
``max_concurrency`` per function), sends the event, and waits at most the function's timeout:
past it the environment is killed and the caller gets Lambda's ``Task timed out after N
seconds`` error, and the next invoke is cold again. Unhandled exceptions come back as Lambda's
error payload (``errorType``, ``errorMessage``, ``stackTrace``) with ``function_error``
``"Unhandled"``. Log lines (the handler's output and START/END/REPORT) go to ``log_sink``.
"""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import worker as worker_module
from .errors import LocalCloudError
from .template import Function, Stack

WORKER = Path(worker_module.__file__)
INIT_TIMEOUT_S = 10.0  # Lambda's limit for the init phase of an on-demand environment
# A slower machine (a shared 2-core CI runner) may raise it; the default is Lambda's.
INIT_TIMEOUT_VARIABLE = "LOCALCLOUD_INIT_TIMEOUT_S"


def init_timeout_s() -> float:
    """The init-phase limit: Lambda's 10 s, or ``$LOCALCLOUD_INIT_TIMEOUT_S`` when set."""
    value = os.environ.get(INIT_TIMEOUT_VARIABLE, "")
    try:
        return float(value) if value.strip() else INIT_TIMEOUT_S
    except ValueError:
        raise LocalCloudError(f"{INIT_TIMEOUT_VARIABLE}={value!r}: expected a number of seconds") from None
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# Machine settings that the host needs in every process (old OpenBLAS builds misbehave on
# some CPUs without them); they are not part of a function's configuration.
_HOST_PASSTHROUGH = ("PATH", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "SYSTEMROOT", "TMPDIR")

LogSink = Callable[[str, str], None]  # (function logical id, line)


def stderr_sink(function_id: str, line: str) -> None:
    """Default log sink: the line on stderr, as `sam local` prints container logs."""
    sys.stderr.write(line if line.endswith("\n") else line + "\n")
    sys.stderr.flush()


@dataclass
class Invocation:
    """What one invoke returned: the payload bytes and how it went."""

    request_id: str
    payload: bytes
    function_error: str | None = None  # "Unhandled" when the payload is an error payload
    cold_start: bool = False
    init_ms: float | None = None
    duration_ms: float = 0.0
    logs: list[str] = field(default_factory=list)
    init_failed: bool = False  # the handler never loaded (import error, init timeout)

    def json(self) -> object:
        return json.loads(self.payload) if self.payload else None

    def log_tail(self) -> str:
        """The last 4 KB of the invocation's log, base64-encoded (``LogType=Tail``)."""
        return base64.b64encode("".join(self.logs).encode()[-4096:]).decode()


def load_env_vars_file(path: str | None) -> dict[str, dict[str, str]]:
    """Read a `sam local --env-vars` file: ``{"Parameters": {...}, "<FunctionId>": {...}}``."""
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LocalCloudError(f"--env-vars file {path} not found") from None
    except json.JSONDecodeError as exc:
        raise LocalCloudError(f"--env-vars file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise LocalCloudError(f"--env-vars file {path} must map function ids (or Parameters) to objects")
    return {k: {n: str(v) for n, v in vars_.items()} for k, vars_ in data.items()}


def function_environment(
    fn: Function,
    region: str,
    endpoint_url: str | None,
    overrides: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, str]:
    """The environment Lambda gives the function, with `--env-vars` overrides applied.

    As in SAM, an override only replaces a variable the template declares for the function
    (``Parameters`` for every function, then the function's own entry); others are ignored.
    """
    declared = dict(fn.environment)
    for scope in ("Parameters", fn.logical_id, fn.name):
        for key, value in ((overrides or {}).get(scope) or {}).items():
            if key in declared:
                declared[key] = value
    now = datetime.now(timezone.utc)
    env = {k: os.environ[k] for k in _HOST_PASSTHROUGH if k in os.environ}
    env.update(FAKE_CREDENTIALS)
    env.update({
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": fn.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{now:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.runtime}",
        "LAMBDA_TASK_ROOT": str(fn.code_dir),
        "LAMBDA_RUNTIME_DIR": str(WORKER.parent),
        "_HANDLER": fn.handler,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "LOCALCLOUD_LAYER_PATHS": os.pathsep.join(str(layer.python_path) for layer in fn.layers),
    })
    env.update(declared)
    # template.yaml declares AWS_ENDPOINT_URL empty (boto3 ignores an empty value on AWS) so
    # that `sam local` can be pointed at a local endpoint; here an empty or absent value must
    # never let the SDK past localcloud's endpoint to AWS.
    if endpoint_url and not env.get("AWS_ENDPOINT_URL"):
        env["AWS_ENDPOINT_URL"] = endpoint_url
    return env


class _Environment:
    """One warm worker process of one function."""

    def __init__(self, fn: Function, env: dict[str, str], sink: LogSink) -> None:
        self.fn = fn
        self.invocations = 0
        self._sink = sink
        self._capture: list[str] | None = None
        self._report_seen = threading.Event()
        self._report_prefix = ""
        resp_r, resp_w = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(resp_w)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(fn.code_dir),
            pass_fds=(resp_w,),
            bufsize=0,
        )
        os.close(resp_w)
        self._resp = resp_r
        self._reader = threading.Thread(target=self._read_logs, daemon=True,
                                        name=f"logs-{fn.logical_id}")
        self._reader.start()
        self.init_ms: float | None = None
        self.init_error: dict | None = None

    def _read_logs(self) -> None:
        # Buffered: readline on the unbuffered pipe costs one system call per byte.
        stream = open(self.proc.stdout.fileno(), "rb", closefd=False)  # noqa: SIM115
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace")
            if self._capture is not None:
                self._capture.append(line)
            self._sink(self.fn.logical_id, line)
            if self._report_prefix and line.startswith(self._report_prefix):
                self._report_seen.set()
        self._report_seen.set()

    def _read(self, timeout: float) -> tuple[dict, bytes] | None:
        """The next frame, or None when the timeout passes first."""
        ready, _, _ = select.select([self._resp], [], [], max(timeout, 0))
        if not ready:
            return None
        return worker_module.read_frame(self._resp)

    def wait_init(self) -> None:
        limit = init_timeout_s()
        frame = self._read(limit)
        if frame is None:
            self.kill()
            self.init_error = {"errorType": "Runtime.InitTimeout",
                               "errorMessage": f"Init phase did not finish within {limit:g} seconds"}
            return
        header, _ = frame
        self.init_ms = header["init_ms"]
        self.init_error = header["error"]

    def invoke(self, payload: bytes, request_id: str, capture: bool, arn: str,
               client_context: dict | None) -> Invocation:
        self.invocations += 1
        timeout = self.fn.timeout
        deadline = time.time() + timeout
        self._capture = [] if capture else None
        self._report_seen.clear()
        self._report_prefix = f"REPORT RequestId: {request_id}"
        request = {
            "request_id": request_id,
            "deadline_ms": int(deadline * 1000),
            "invoked_function_arn": arn,
            "trace_id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
            "client_context": client_context,
        }
        result = Invocation(request_id, b"", cold_start=self.invocations == 1,
                            init_ms=self.init_ms if self.invocations == 1 else None)
        try:
            worker_module.write_frame(self.proc.stdin.fileno(), request, payload)
            frame = self._read(deadline - time.time())
        except (BrokenPipeError, EOFError, OSError):
            frame = ("exited", b"")
        if frame is None:
            self.kill()
            self._log(f"END RequestId: {request_id}\n")
            self._log(f"REPORT RequestId: {request_id}\tDuration: {timeout * 1000:.2f} ms\t"
                      f"Billed Duration: {timeout * 1000} ms\tMemory Size: {self.fn.memory_size} MB\t"
                      f"Max Memory Used: 0 MB\tStatus: timeout\n")
            result.function_error = "Unhandled"
            result.payload = json.dumps({
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds",
            }).encode()
            result.duration_ms = timeout * 1000.0
        elif frame[0] == "exited":
            code = self.proc.wait()
            result.function_error = "Unhandled"
            result.payload = json.dumps({
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status {code}",
            }).encode()
        else:
            header, body = frame
            result.payload = body
            result.function_error = "Unhandled" if header["error"] else None
            result.duration_ms = header["duration_ms"]
            self._report_seen.wait(1.0)  # the REPORT line is written before the answer
        if capture:
            result.logs = self._capture or []
        self._capture = None
        return result

    def _log(self, line: str) -> None:
        if self._capture is not None:
            self._capture.append(line)
        self._sink(self.fn.logical_id, line)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        try:
            os.close(self._resp)
        except OSError:
            pass
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass


class LambdaRuntime:
    """Runs the stack's functions in local execution environments.

    ``endpoint_url`` is where the functions' AWS SDK calls go (the moto server); ``env_vars``
    are `--env-vars` overrides. Thread-safe: the API server, the Lambda endpoint and Step
    Functions invoke concurrently.
    """

    def __init__(
        self,
        stack: Stack,
        *,
        endpoint_url: str | None = None,
        env_vars: Mapping[str, Mapping[str, str]] | None = None,
        log_sink: LogSink = stderr_sink,
        max_concurrency: int = 16,
    ) -> None:
        self.stack = stack
        self.endpoint_url = endpoint_url
        self.env_vars = dict(env_vars or {})
        self.log_sink = log_sink
        self.max_concurrency = max_concurrency
        self._idle: dict[str, list[_Environment]] = {fid: [] for fid in stack.functions}
        self._busy: dict[str, int] = {fid: 0 for fid in stack.functions}
        self._cond = threading.Condition()
        self._closed = False

    def environment_of(self, function: str) -> dict[str, str]:
        fn = self.stack.function(function)
        return function_environment(fn, self.stack.region, self.endpoint_url, self.env_vars)

    def _acquire(self, fn: Function) -> _Environment | None:
        with self._cond:
            while True:
                if self._closed:
                    raise LocalCloudError("the local Lambda service is shut down")
                idle = self._idle[fn.logical_id]
                while idle:
                    env = idle.pop()
                    if env.alive:
                        self._busy[fn.logical_id] += 1
                        return env
                if self._busy[fn.logical_id] < self.max_concurrency:
                    self._busy[fn.logical_id] += 1
                    return None  # the caller starts a new environment outside the lock
                self._cond.wait()

    def _release(self, fn: Function, env: _Environment | None) -> None:
        with self._cond:
            self._busy[fn.logical_id] -= 1
            if env is not None and env.alive and not self._closed:
                self._idle[fn.logical_id].append(env)
            elif env is not None:
                env.kill()
            self._cond.notify()

    def invoke(
        self,
        function: str,
        payload: bytes | str | None = b"{}",
        *,
        capture_logs: bool = False,
        client_context: dict | None = None,
    ) -> Invocation:
        """Invoke a function synchronously (RequestResponse) and return what it answered."""
        fn = self.stack.function(function)
        if isinstance(payload, str):
            payload = payload.encode()
        payload = payload or b"{}"
        request_id = str(uuid.uuid4())
        env = self._acquire(fn)
        try:
            if env is None:
                env = _Environment(fn, self.environment_of(fn.logical_id), self.log_sink)
                env.wait_init()
                if env.init_error is not None:
                    error = dict(env.init_error)
                    env.kill()
                    self.log_sink(fn.logical_id, f"INIT_REPORT Init Duration: {env.init_ms or 0:.2f} ms\tPhase: init\tStatus: error\tError Type: {error['errorType']}\n")
                    env = None
                    error["requestId"] = request_id
                    return Invocation(request_id, json.dumps(error).encode(), "Unhandled", cold_start=True,
                                      init_failed=True)
            return env.invoke(payload, request_id, capture_logs, fn.arn, client_context)
        finally:
            self._release(fn, env)

    def warm_environments(self, function: str) -> int:
        """How many idle warm environments the function has (for tests and `localcloud`)."""
        with self._cond:
            return sum(e.alive for e in self._idle[self.stack.function(function).logical_id])

    def close(self) -> None:
        """Stop every environment."""
        with self._cond:
            self._closed = True
            envs = [e for idle in self._idle.values() for e in idle]
            for idle in self._idle.values():
                idle.clear()
            self._cond.notify_all()
        for env in envs:
            env.kill()

    def __enter__(self) -> "LambdaRuntime":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
