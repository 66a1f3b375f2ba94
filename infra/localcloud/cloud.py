"""The whole local cloud in one process: a moto server on 127.0.0.1 holding the stack's
resources, the local Lambda service running the functions, and Step Functions executing
state machines whose Task states invoke those functions.

Moto's Step Functions interpreter calls Lambda through boto3 at the moto server; moto's simple
(no-Docker) Lambda backend would answer with a canned reply, so `LocalCloud` replaces its
``invoke`` to run the function in `LambdaRuntime`. That, and the virtual clock taking over the
interpreter's waits (`sfn.py`), are the two places localcloud leans on moto internals; moto is
pinned in requirements/dev.txt for that reason. Moto's state is process-global, so only one
`LocalCloud` runs in a process at a time.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config

from . import provision, schedule, sfn
from .clock import VirtualClock
from .errors import LocalCloudError
from .runtime import FAKE_CREDENTIALS, LambdaRuntime, LogSink, stderr_sink
from .template import Stack

_active: "LocalCloud | None" = None
_active_lock = threading.Lock()


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
        threading.Thread(target=cloud.runtime.invoke, args=(name, payload), daemon=True).start()
        return b""
    result = cloud.runtime.invoke(name, payload)
    if result.function_error:
        response_headers["x-amz-function-error"] = result.function_error
    return result.payload


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
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log line per SDK call
        # werkzeug prints and exits on a bind error, so try the address first.
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((self.host, self.port))
        except OSError as exc:
            raise LocalCloudError(f"cannot serve the moto endpoint on {self.host}:{self.port}: {exc.strerror}") from None
        self._server = make_server(
            self.host, self.port, DomainDispatcherApplication(create_backend_app), True,
            request_handler=MotoRequestHandler,
        )
        self.port = self._server.server_address[1]
        # The Step Functions interpreter calls other services at localhost:$MOTO_PORT, and
        # boto3 in this process (tests, the CLI) should not need real credentials.
        self._set_env({"MOTO_PORT": str(self.port), "AWS_DEFAULT_REGION": self.stack.region,
                       **FAKE_CREDENTIALS})
        moto_api_backend.reset()
        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        default_user_config["lambda"] = {"use_docker": False}
        LambdaSimpleBackend.invoke = _lambda_invoke  # type: ignore[method-assign]
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
            self._server.shutdown()
            self._server.server_close()
            self._server = None
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

    def invoke(self, function: str, event: Any = None) -> Any:
        """Invoke a function with a JSON-serialisable event; returns the decoded answer."""
        assert self.runtime is not None, "start() first"
        return self.runtime.invoke(function, json.dumps(event if event is not None else {})).json()
