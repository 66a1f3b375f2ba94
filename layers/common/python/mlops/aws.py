"""AWS clients for the store modules, from one botocore session per process.

botocore directly rather than boto3: the stores only use low-level clients, and importing
boto3 also imports s3transfer and its dependencies, which costs a serving cold start about
200 ms for nothing. Endpoint, region and credentials come from the environment as boto3
would read them (``AWS_ENDPOINT_URL``, ``AWS_REGION``/``AWS_DEFAULT_REGION``, ...).

Retries and timeouts are set here, once, for every client (`CONFIG`): botocore's standard
retry mode (exponential backoff with jitter on throttling, 5xx and connection errors), at
most `MAX_ATTEMPTS` attempts, and short connect/read timeouts, so that a throttled or
unreachable DynamoDB/S3 ends in an error well within a function's timeout (the handlers turn
it into a 503, `mlops.unavailable`) rather than a hang. The online store (pynamodb) and
Powertools' idempotency layer take the same numbers from here.

Client-side parameter validation is off (botocore's documented ``parameter_validation``
option, there for performance): the stores build every request themselves, and the service
validates it again anyway. It walked every attribute of every item: half the time of a
100-row prediction-log write (four BatchWriteItem calls), about 40 ms.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import botocore.session
from botocore.config import Config

MAX_ATTEMPTS = 3  # the first call and two retries
CONNECT_TIMEOUT_S = 2.0
# DynamoDB and S3 answer in milliseconds; 10 s bounds a stuck call within the API functions'
# timeout budget without cutting off the large reads the analysis functions make (a canary
# evaluation's prediction-log query, which an emulator on a busy machine may take seconds on:
# a shorter limit there only multiplies the work by the retries).
READ_TIMEOUT_S = 10.0
CONFIG = Config(retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
                connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S, parameter_validation=False)

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
            _clients[service] = _session.create_client(service, region_name=region, config=CONFIG)
        return _clients[service]
