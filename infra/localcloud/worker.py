"""One Lambda execution environment: a process that imports a handler once and serves invokes.

`runtime.py` starts this file as a script in a fresh interpreter whose environment holds only
what Lambda would set plus the function's variables, and whose ``sys.path`` holds the code
directory and the layers, like ``/var/task`` and ``/opt/python``. So two functions whose
modules share a name (both ``app.py``) never see each other's module or environment.

Protocol (frames of a 4-byte big-endian length and a JSON header, then a 4-byte length and a
raw body): the parent writes requests on stdin; the worker answers on the file descriptor
given as argv[1]. Everything the handler prints, and the START/END/REPORT lines, go to
stdout/stderr, which the parent reads as the function's log. The first answer is the init
report; then one answer per invoke. This module imports nothing from localcloud.
"""

from __future__ import annotations

import decimal
import importlib
import json
import logging
import os
import resource
import struct
import sys
import time
import traceback

_HEADER = struct.Struct(">I")


def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> tuple[dict, bytes]:
    header = json.loads(_read_exact(fd, _HEADER.unpack(_read_exact(fd, 4))[0]))
    body = _read_exact(fd, _HEADER.unpack(_read_exact(fd, 4))[0])
    return header, body


def write_frame(fd: int, header: dict, body: bytes = b"") -> None:
    h = json.dumps(header).encode()
    data = _HEADER.pack(len(h)) + h + _HEADER.pack(len(body)) + body
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class LambdaContext:
    """The context object of the Python runtime (awslambdaric), attribute for attribute."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str,
                 client_context: dict | None = None, identity: dict | None = None) -> None:
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        # A string, as in the real runtime (it reads the environment variable).
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.client_context = client_context
        self.identity = identity
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def __repr__(self) -> str:
        return f"LambdaContext([aws_request_id={self.aws_request_id},function_name={self.function_name}])"


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def _configure_root_logger() -> _RequestIdFilter:
    """The runtime's root logger: tab-separated level, UTC time, request id, message."""
    handler = logging.StreamHandler(sys.stdout)
    request_filter = _RequestIdFilter()
    handler.addFilter(request_filter)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    return request_filter


def _error(error_type: str, message: str, trace: list[str] | None = None) -> dict:
    payload = {"errorMessage": message, "errorType": error_type, "requestId": "", "stackTrace": trace or []}
    return payload


def _exception_payload(exc: BaseException) -> dict:
    tb = traceback.extract_tb(exc.__traceback__)
    # Drop this module's own frame, as the real runtime hides its bootstrap frames.
    frames = [f for f in tb if f.filename != __file__]
    return _error(type(exc).__name__, str(exc), traceback.format_list(frames))


def _load_handler(spec: str):
    """Import the handler as awslambdaric does, with its error types and messages."""
    try:
        module_name, function_name = spec.rsplit(".", 1)
    except ValueError as exc:
        raise _Fault("Runtime.MalformedHandlerName", f"Bad handler '{spec}': {exc}")
    try:
        if module_name.split(".")[0] in sys.builtin_module_names:
            raise _Fault("Runtime.BuiltInModuleConflict",
                         f"Cannot use built-in module {module_name} as a handler module")
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _Fault("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}\n']
        raise _Fault("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}", trace)
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise _Fault("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'")


class _Fault(Exception):
    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.payload = _error(error_type, message, trace)


def _max_memory_mb() -> int:
    """Peak resident memory of this environment in MB.

    /proc's VmHWM belongs to this process image; ``ru_maxrss`` would also count the parent's
    peak from before exec, which Linux carries over.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _to_json(value: object) -> bytes:
    def decimal_serializer(o: object) -> float:
        if isinstance(o, decimal.Decimal):
            return float(o)
        raise TypeError(f"{o!r} is not JSON serializable")

    return json.dumps(value, default=decimal_serializer).encode()


def main() -> None:
    response_fd = int(sys.argv[1])
    sys.stdout.reconfigure(line_buffering=True)  # log lines reach the parent as they are written
    # Only the code directory and the layers are importable, as in Lambda; never localcloud.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != here]
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    layer_paths = [p for p in os.environ.get("LOCALCLOUD_LAYER_PATHS", "").split(os.pathsep) if p]
    os.environ.pop("LOCALCLOUD_LAYER_PATHS", None)
    sys.path[:0] = [task_root, *layer_paths]
    os.chdir(task_root)
    request_filter = _configure_root_logger()

    started = time.perf_counter()
    try:
        handler = _load_handler(os.environ["_HANDLER"])
        init_error = None
    except _Fault as fault:
        handler, init_error = None, fault.payload
    except Exception as exc:  # an exception raised by the module's own init code
        handler, init_error = None, _exception_payload(exc)
    init_ms = (time.perf_counter() - started) * 1000
    sys.stdout.flush()
    sys.stderr.flush()
    write_frame(response_fd, {"type": "init", "init_ms": init_ms, "error": init_error})
    if init_error is not None:
        return

    first = True
    memory_size = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
    while True:
        try:
            request, body = read_frame(0)
        except EOFError:
            return
        request_id = request["request_id"]
        request_filter.request_id = request_id
        os.environ["_X_AMZN_TRACE_ID"] = request.get("trace_id", "")
        print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
        context = LambdaContext(request_id, request["deadline_ms"], request["invoked_function_arn"],
                                request.get("client_context"), request.get("identity"))
        t0 = time.perf_counter()
        error = False
        try:
            event = json.loads(body) if body else {}
            result = handler(event, context)
            try:
                out = _to_json(result)
            except (TypeError, ValueError) as exc:
                error = True
                out = _to_json(_error("Runtime.MarshalError", f"Unable to marshal response: {exc}"))
        except Exception as exc:
            error = True
            payload = _exception_payload(exc)
            payload["requestId"] = request_id
            # The runtime logs the error as a JSON line before reporting it.
            print(f"[ERROR] {payload['errorType']}: {payload['errorMessage']}", file=sys.stderr)
            out = _to_json(payload)
        duration = (time.perf_counter() - t0) * 1000
        max_rss_mb = _max_memory_mb()
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
            f"Billed Duration: {max(1, int(duration + 0.999999))} ms\tMemory Size: {memory_size} MB\t"
            f"Max Memory Used: {max_rss_mb} MB"
        )
        if first:
            report += f"\tInit Duration: {init_ms:.2f} ms"
            first = False
        sys.stderr.flush()
        print(f"END RequestId: {request_id}", flush=True)
        print(report, flush=True)
        write_frame(response_fd, {"type": "result", "error": error, "duration_ms": duration,
                                  "max_memory_mb": max_rss_mb}, out)


if __name__ == "__main__":
    main()
