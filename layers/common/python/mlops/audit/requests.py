"""The audit routes' query strings, checked: ``GET /audit`` and ``GET /audit/verify``.

Pure: every problem is collected and raised as one `ApiError` 400 naming each field (an
unknown parameter is a problem too, so a misspelt filter never silently widens a query).

>>> parse_query({"model": "yield", "from": "2026-01-05T00:00:00Z", "limit": "10"}).start
'2026-01-05T00:00:00.000000Z'
>>> parse_query({"limit": "0", "form": "x"})
Traceback (most recent call last):
...
mlops.api_errors.ApiError: limit: expected an integer from 1 to 1000; form: unknown query parameter
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlops.api_errors import ApiError
from mlops.audit.chain import chain_problem
from mlops.audit.events import MAX_TEXT
from mlops.audit.store import MAX_LIMIT, BadPageToken, decode_token
from mlops.models.registry import model_name_problem, parse_time

DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class AuditQuery:
    """What ``GET /audit`` asks for (`AuditStore.query`'s arguments)."""

    entity: str | None = None
    model: str | None = None
    chain: str | None = None
    start: str | None = None
    end: str | None = None
    limit: int = DEFAULT_LIMIT
    next_token: str | None = None


@dataclass(frozen=True)
class VerifyQuery:
    """What ``GET /audit/verify`` asks for: one chain or all, with or without the archive."""

    chain: str | None = None
    against_archive: bool = False


def _unknown(params: Mapping[str, str], known: tuple[str, ...], problems: dict[str, str]) -> None:
    for name in params:
        if name not in known:
            problems[name] = "unknown query parameter"


def parse_query(params: Mapping[str, str] | None) -> AuditQuery:
    """``entity``, ``model``, ``chain``, ``from``, ``to`` (ISO-8601 or epoch seconds, inclusive),
    ``limit`` (1-1000, default 100) and ``next`` (the token of the previous page)."""
    params = params or {}
    problems: dict[str, str] = {}
    entity = params.get("entity")
    if entity is not None and not 1 <= len(entity) <= MAX_TEXT:
        problems["entity"] = f"expected 1-{MAX_TEXT} characters"
    model = params.get("model")
    if model is not None and model_name_problem(model):
        problems["model"] = str(model_name_problem(model))
    chain = params.get("chain")
    if chain is not None and chain_problem(chain):
        problems["chain"] = str(chain_problem(chain))
    times: dict[str, str | None] = {}
    for name in ("from", "to"):
        raw = params.get(name)
        times[name] = None
        if raw is not None:
            try:
                times[name] = parse_time(raw)
            except ValueError as exc:
                problems[name] = str(exc)
    if times["from"] and times["to"] and times["from"] > times["to"]:
        problems["from"] = "must not be after 'to'"
    limit = DEFAULT_LIMIT
    raw_limit = params.get("limit")
    if raw_limit is not None:
        if raw_limit.isdigit() and 1 <= int(raw_limit) <= MAX_LIMIT:
            limit = int(raw_limit)
        else:
            problems["limit"] = f"expected an integer from 1 to {MAX_LIMIT}"
    token = params.get("next") or None
    if token is not None:
        try:
            decode_token(token)
        except BadPageToken as exc:
            problems["next"] = str(exc)
    _unknown(params, ("entity", "model", "chain", "from", "to", "limit", "next"), problems)
    if problems:
        raise ApiError.invalid(problems)
    return AuditQuery(entity, model, chain, times["from"], times["to"], limit, token)


def parse_verify(params: Mapping[str, str] | None) -> VerifyQuery:
    """``chain`` (default: every chain) and ``archive`` (``true``: compare with the S3 archive)."""
    params = params or {}
    problems: dict[str, str] = {}
    chain = params.get("chain")
    if chain is not None and chain_problem(chain):
        problems["chain"] = str(chain_problem(chain))
    archive = params.get("archive", "false").lower()
    if archive not in ("true", "false"):
        problems["archive"] = "expected true or false"
    _unknown(params, ("chain", "archive"), problems)
    if problems:
        raise ApiError.invalid(problems)
    return VerifyQuery(chain, archive == "true")
