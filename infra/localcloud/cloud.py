"""The whole local cloud in one process: a moto server on 127.0.0.1 holding the stack's
resources, the local Lambda service running the functions, and Step Functions executing
state machines whose Task states invoke those functions.

Moto's Step Functions interpreter calls Lambda through boto3 at the moto server; moto's simple
(no-Docker) Lambda backend would answer with a canned reply, so `LocalCloud` replaces its
``invoke`` to run the function in `LambdaRuntime`. That, the virtual clock taking over the
interpreter's waits (`sfn.py`), and DynamoDB writes made atomic across the server's request
threads (`_serialize_dynamodb_writes`) are the places localcloud leans on moto internals, with
`moto_speedups` (DynamoDB answers computed faster, byte for byte the same); moto is pinned in
requirements/dev.txt for that reason. Moto's state is process-global, so only one
`LocalCloud` runs in a process at a time.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config

from . import moto_speedups, provision, schedule, sfn
from .clock import VirtualClock
from .errors import LocalCloudError
from .faults import AwsFaults
from .runtime import FAKE_CREDENTIALS, Invocation, LambdaRuntime, LogSink, stderr_sink
from .template import Stack

_active: "LocalCloud | None" = None
_active_lock = threading.Lock()

# moto's DynamoDB checks a condition and then writes in plain Python, and a failed
# TransactWriteItems restores a deep copy of every table it touched: with the server's request
# threads running side by side, a conditional write can pass against a stale item, and a
# cancelled transaction can wipe out a write that another thread committed meanwhile. DynamoDB
# itself applies each write and each transaction atomically, so the writes are serialized here.
# Query and Scan iterate moto's item dicts, which a concurrent put would resize under them
# ("dictionary changed size during iteration"), so they take the same lock; key lookups
# (GetItem, BatchGetItem) stay concurrent. This is the third place localcloud leans on moto internals.
_DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "query", "scan")
_dynamodb_write_lock = threading.RLock()


def _serialize_dynamodb_writes() -> None:
    """Make each DynamoDB write (and each transaction) of moto's backend atomic; idempotent."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in _DYNAMODB_WRITES:
        method = getattr(DynamoDBBackend, name)
        if getattr(method, "_localcloud_serialized", False):
            continue

        def serialized(self: Any, *args: Any, __method: Any = method, **kwargs: Any) -> Any:
            with _dynamodb_write_lock:
                return __method(self, *args, **kwargs)

        functools.update_wrapper(serialized, method)  # moto_speedups checks the signature behind it
        serialized._localcloud_serialized = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, serialized)


def _lambda_invoke(backend: Any, function_name: str, qualifier: str | None, body: Any,
                   headers: Any, response_headers: dict) -> bytes | None:
    """Replacement for moto's LambdaSimpleBackend.invoke: run the function locally."""
    cloud = _active
    if cloud is None:
        return None
    name = function_name.split(":function:")[-1].split(":")[0]
    try:
        cloud.stack.function(name)
    except LocalCloudError:
        return None  # moto answers 404
    payload = body.encode() if isinstance(body, str) else (body or b"{}")
    invocation_type = (headers or {}).get("X-Amz-Invocation-Type", "RequestResponse")
    if invocation_type == "DryRun":
        return b""
    if invocation_type == "Event":
        cloud.invoke_async(name, payload)
        return b""
    result = cloud.runtime.invoke(name, payload)
    if result.function_error:
        response_headers["x-amz-function-error"] = result.function_error
    return result.payload


_moto_s3_invoke_lambda: Any = None  # moto's own S3 -> Lambda notification hook, kept for other ARNs


def _s3_notification(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
    """Replacement for moto.s3.notifications._invoke_awslambda: an S3 event for one of the
    stack's functions is an asynchronous invoke of the local function."""
    cloud = _active
    try:
        fn = cloud.stack.function(fn_arn) if cloud is not None and cloud.runtime is not None else None
    except LocalCloudError:
        fn = None
    if fn is None:
        if _moto_s3_invoke_lambda is not None:
            _moto_s3_invoke_lambda(account_id, event_body, fn_arn, region_name)
        return
    cloud.invoke_async(fn.logical_id, json.dumps(event_body).encode())


class LocalCloud:
    """Start with `start()` (or as a context manager); `stop()` ends everything.

    ``clock`` drives Wait states, Retry intervals and schedules (virtual by default).
    """

    def __init__(
        self,
        stack: Stack,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        env_vars: Mapping[str, Mapping[str, str]] | None = None,
        log_sink: LogSink = stderr_sink,
        clock: VirtualClock | None = None,
        max_concurrency: int = 16,
        api_keys: Mapping[str, str] | None = None,
    ) -> None:
        self.stack = stack
        self.host = host
        self.port = port
        self.clock = clock or VirtualClock()
        self._env_vars = env_vars
        self._log_sink = log_sink
        self._max_concurrency = max_concurrency
        self.api_keys: dict[str, str] = dict(api_keys or provision.api_key_values(stack))
        self.runtime: LambdaRuntime | None = None
        self._server = None
        self._thread: threading.Thread | None = None
        self._saved_env: dict[str, str | None] = {}
        self._async: list[tuple[threading.Thread, list[Invocation]]] = []
        self._async_lock = threading.Lock()
        self.aws_faults = AwsFaults()  # tests: throttle chosen DynamoDB/S3 calls (faults.py)

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "LocalCloud":
        global _active
        with _active_lock:
            if _active is not None:
                raise LocalCloudError("a LocalCloud is already running in this process")
            _active = self
        try:
            self._start_moto()
            self.runtime = LambdaRuntime(
                self.stack, endpoint_url=self.endpoint_url, env_vars=self._env_vars,
                log_sink=self._log_sink, max_concurrency=self._max_concurrency,
            )
            provision.provision(self.stack, self.client, self.api_keys)
            sfn.install(self)
            schedule.create_rules(self)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_moto(self) -> None:
        from moto.awslambda_simple.models import LambdaSimpleBackend
        from moto.core.config import default_user_config
        from moto.moto_api._internal.models import moto_api_backend
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        from .moto_http import MotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per SDK call
        # werkzeug prints and exits on a bind error, so try the address first.
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((self.host, self.port))
        except OSError as exc:
            raise LocalCloudError(f"cannot serve the moto endpoint on {self.host}:{self.port}: {exc.strerror}") from None
        # werkzeug's threaded server and moto's request handler, with keep-alive (moto_http.py)
        self._server = MotoServer(self.host, self.port,
                                  self.aws_faults.wsgi(DomainDispatcherApplication(create_backend_app)))
        self.port = self._server.server_address[1]
        # The Step Functions interpreter calls other services at localhost:$MOTO_PORT, and
        # boto3 in this process (tests, the CLI) should not need real credentials.
        self._set_env({"MOTO_PORT": str(self.port), "AWS_DEFAULT_REGION": self.stack.region,
                       **FAKE_CREDENTIALS})
        moto_api_backend.reset()
        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        default_user_config["lambda"] = {"use_docker": False}
        LambdaSimpleBackend.invoke = _lambda_invoke  # type: ignore[method-assign]
        global _moto_s3_invoke_lambda
        import moto.s3.notifications as s3_notifications
        if s3_notifications._invoke_awslambda is not _s3_notification:
            _moto_s3_invoke_lambda = s3_notifications._invoke_awslambda
            s3_notifications._invoke_awslambda = _s3_notification
        _serialize_dynamodb_writes()
        moto_speedups.install()  # same answers, computed faster (see the module)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="moto")
        self._thread.start()

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def stop(self) -> None:
        global _active
        if self.runtime is not None:
            self.runtime.close()
        sfn.uninstall(self)
        if self._server is not None:
            if self._thread is not None:  # shutdown() waits for serve_forever, which a failed start never ran
                self._server.shutdown()
            self._server.server_close()
            self._server = None
            self._thread = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        with _active_lock:
            if _active is self:
                _active = None

    def __enter__(self) -> "LocalCloud":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers ------------------------------------------------------------------------
    def client(self, service: str) -> Any:
        """A boto3 client for the local endpoint."""
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.stack.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}),
        )

    def invoke_async(self, function: str, payload: bytes) -> threading.Thread:
        """Invoke a function asynchronously (InvocationType Event, S3 notifications): it runs on
        a thread of its own; `wait_async` waits for it and returns what it answered."""
        assert self.runtime is not None, "start() first"
        runtime = self.runtime
        holder: list[Invocation] = []

        def run() -> None:
            try:
                holder.append(runtime.invoke(function, payload))
            except LocalCloudError:
                pass  # the runtime was shut down meanwhile

        thread = threading.Thread(target=run, daemon=True, name=f"async-{function}")
        with self._async_lock:
            if len(self._async) > 1000:  # nobody waits (a long `localcloud start`): keep the running ones
                self._async = [(t, h) for t, h in self._async if t.is_alive()]
            self._async.append((thread, holder))
        thread.start()
        return thread

    def wait_async(self, timeout: float = 60.0) -> list[Invocation]:
        """Wait for the asynchronous invocations started so far (including those they start,
        until none is left) and return their results, oldest first; each is returned once."""
        deadline = time.monotonic() + timeout
        done: list[Invocation] = []
        while True:
            with self._async_lock:
                pending, self._async = self._async, []
            if not pending:
                return done
            for thread, holder in pending:
                thread.join(max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    raise LocalCloudError(f"an asynchronous invocation ({thread.name}) is still running after {timeout:.0f} s")
                done.extend(holder)

    def invoke(self, function: str, event: Any = None) -> Any:
        """Invoke a function with a JSON-serialisable event; returns the decoded answer."""
        assert self.runtime is not None, "start() first"
        return self.runtime.invoke(function, json.dumps(event if event is not None else {})).json()
