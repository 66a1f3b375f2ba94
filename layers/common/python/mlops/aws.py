"""AWS clients for the store modules, from one botocore session per process.

botocore directly rather than boto3: the stores only use low-level clients, and importing
boto3 also imports s3transfer and its dependencies, which costs a serving cold start about
200 ms for nothing. Endpoint, region and credentials come from the environment as boto3
would read them (``AWS_ENDPOINT_URL``, ``AWS_REGION``/``AWS_DEFAULT_REGION``, ...).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import botocore.session

_session: Any = None
_clients: dict[str, Any] = {}
_lock = threading.Lock()


def client(service: str) -> Any:
    """The process's client for ``service`` (created once; botocore clients are thread-safe)."""
    found = _clients.get(service)
    if found is not None:
        return found
    global _session
    with _lock:
        if service not in _clients:
            if _session is None:
                _session = botocore.session.get_session()
            region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            _clients[service] = _session.create_client(service, region_name=region)
        return _clients[service]
