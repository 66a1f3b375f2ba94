"""The product stack for an integration test module: template.yaml in a `LocalCloud`, with this
process's ``AWS_ENDPOINT_URL`` pointing at it while it runs (the stores the tests read through,
pynamodb's online store among them, find moto there), and its API on a free port."""

from __future__ import annotations

import http.client
import json
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from localcloud.apigw import ApiServer
from localcloud.cloud import LocalCloud
from localcloud.template import load_stack

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def product_cloud(api_keys: Mapping[str, str], *, env_vars: Mapping[str, Mapping[str, str]] | None = None,
                  parameter_overrides: Mapping[str, str] | None = None, **kwargs: Any) -> Iterator[LocalCloud]:
    """template.yaml in a LocalCloud (``kwargs`` go to LocalCloud: ``log_sink``...)."""
    stack = load_stack(ROOT / "template.yaml", parameter_overrides=dict(parameter_overrides or {}))
    with LocalCloud(stack, env_vars=dict(env_vars or {}), api_keys=dict(api_keys), **kwargs) as cloud:
        saved = os.environ.get("AWS_ENDPOINT_URL")
        os.environ["AWS_ENDPOINT_URL"] = cloud.endpoint_url
        try:
            yield cloud
        finally:
            if saved is None:
                os.environ.pop("AWS_ENDPOINT_URL", None)
            else:
                os.environ["AWS_ENDPOINT_URL"] = saved


def table(cloud: LocalCloud, logical_id: str) -> str:
    """The physical name of one of the stack's tables."""
    return cloud.stack.tables[logical_id].name


@contextmanager
def api_server(cloud: LocalCloud) -> Iterator[ApiServer]:
    """The stack's API over HTTP on 127.0.0.1, a free port."""
    with ApiServer(cloud.runtime, cloud.stack, cloud.api_keys, port=0, quiet=True) as server:
        yield server


class FunctionLogs:
    """A LocalCloud ``log_sink`` keeping every function's log lines, for tests that check what
    a function logged: its EMF metric documents, or whether it ran at all (a START line)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, function_id: str, line: str) -> None:
        with self.lock:
            self.lines.append((function_id, line))

    def emf(self, function_id: str) -> list[dict]:
        """``function_id``'s EMF documents (the metric lines Powertools prints), in order."""
        with self.lock:
            lines = [line for fid, line in self.lines if fid == function_id and line.startswith('{"_aws"')]
        return [json.loads(line) for line in lines]

    def starts(self, function_id: str) -> int:
        """How many invocations of ``function_id`` started."""
        with self.lock:
            return sum(1 for fid, line in self.lines if fid == function_id and line.startswith("START "))


def http_json(api: ApiServer, method: str, path: str, body: Any = None, *, key: str,
              headers: Mapping[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """One request to the stack's API: (status, headers with lower-case names, parsed JSON body)."""
    conn = http.client.HTTPConnection("127.0.0.1", api.port, timeout=120)
    try:
        sent = {"Content-Type": "application/json", "x-api-key": key, **(headers or {})}
        conn.request(method, path, body=None if body is None else json.dumps(body).encode(), headers=sent)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(raw) if raw else None
    finally:
        conn.close()


def train_champion(cloud: LocalCloud, api: ApiServer, admin_key: str, event: Mapping[str, Any]) -> dict:
    """TrainFunction on ``event`` (the new version is 1 on an empty stack), then ``champion`` moved
    to version 1 through the admin API; TrainFunction's answer."""
    trained = cloud.runtime.invoke("TrainFunction", json.dumps(event))
    assert trained.function_error is None, trained.payload[:2000]
    moved = http_json(api, "POST", "/models/yield/aliases/champion", {"version": 1}, key=admin_key)
    assert moved[0] == 200, moved
    return trained.json()
