"""The product stack for an integration test module: template.yaml in a `LocalCloud`, with this
process's ``AWS_ENDPOINT_URL`` pointing at it while it runs (the stores the tests read through,
pynamodb's online store among them, find moto there), and its API on a free port."""

from __future__ import annotations

import os
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


@contextmanager
def api_server(cloud: LocalCloud) -> Iterator[ApiServer]:
    """The stack's API over HTTP on 127.0.0.1, a free port."""
    with ApiServer(cloud.runtime, cloud.stack, cloud.api_keys, port=0, quiet=True) as server:
        yield server
