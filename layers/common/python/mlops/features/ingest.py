"""Ingestion requests and files: parsing and the client-facing outcome (pure, no AWS).

``POST /features`` takes ``{"view": name, "rows": [...], "all_or_nothing": false}``; each row
is ``{<join keys>, "event_timestamp", <features>}`` (see :mod:`mlops.features.validation`).
:func:`parse_ingest_request` turns a body into an :class:`IngestRequest` or raises
:class:`~mlops.features.errors.BadRequest` naming the field to fix.

The batch loader takes files dropped under ``incoming/<view>/`` in the data bucket: CSV with
a header row (cells parsed by the view's schema, an empty cell meaning missing), JSON lines
(``.jsonl``/``.ndjson``, one row object per line) or JSON (``.json``: an array of rows, or
``{"rows": [...]}``); :func:`parse_file` reads them.

:func:`outcome_status` decides the answer: 200 when every row was stored, 207 when some rows
were rejected (the body lists them with field-level errors), 400 when nothing was stored
(all-or-nothing asked and a row was bad, or every row was bad).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from mlops.features.catalog import CATALOG, Catalog
from mlops.features.definitions import FeatureView
from mlops.features.errors import BadRequest

MAX_ROWS = 10_000  # per request; files are ingested in chunks of this size
#: Rejected rows listed in an answer (the count is always complete): keeps an answer, and the
#: idempotency record that stores it, well under DynamoDB's 400 KB item limit.
MAX_REPORTED_ROWS = 500
INCOMING_PREFIX = "incoming/"
_REQUEST_KEYS = ("view", "rows", "all_or_nothing")


@dataclass(frozen=True)
class IngestRequest:
    """A parsed ``POST /features`` body."""

    view: FeatureView
    rows: list[Any]
    all_or_nothing: bool = False


def _json_body(body: str | bytes | None) -> Any:
    if body is None or (isinstance(body, (str, bytes)) and not body.strip()):
        raise BadRequest("invalid_body", "the request needs a JSON body",
                         [{"field": None, "problem": "empty body"}])
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("invalid_json", "the body is not valid JSON",
                         [{"field": None, "problem": str(exc)[:200]}]) from None


def parse_ingest_request(body: str | bytes | None, catalog: Catalog = CATALOG) -> IngestRequest:
    """Parse and check the envelope of an ingestion request (rows are validated later)."""
    data = _json_body(body)
    if not isinstance(data, dict):
        raise BadRequest("invalid_body", "the body must be a JSON object",
                         [{"field": None, "problem": f"expected an object, got {type(data).__name__}"}])
    details = [{"field": k, "problem": "unknown property"} for k in data if k not in _REQUEST_KEYS]
    view_name = data.get("view")
    if view_name is None:
        details.append({"field": "view", "problem": "required"})
    elif not isinstance(view_name, str):
        details.append({"field": "view", "problem": f"expected a string, got {type(view_name).__name__}"})
    rows = data.get("rows")
    if rows is None:
        details.append({"field": "rows", "problem": "required"})
    elif not isinstance(rows, list):
        details.append({"field": "rows", "problem": f"expected an array, got {type(rows).__name__}"})
    elif not rows:
        details.append({"field": "rows", "problem": "must not be empty"})
    elif len(rows) > MAX_ROWS:
        details.append({"field": "rows", "problem": f"{len(rows)} rows; at most {MAX_ROWS} per request"})
    aon = data.get("all_or_nothing", False)
    if not isinstance(aon, bool):
        details.append({"field": "all_or_nothing", "problem": f"expected a boolean, got {type(aon).__name__}"})
    if details:
        raise BadRequest("invalid_request", "the request is malformed", details)
    if any(v.name == view_name for v in catalog.on_demand_views):
        raise BadRequest("not_ingestible", f"{view_name!r} is an on-demand view: it is computed at request time",
                         [{"field": "view", "problem": "on-demand views cannot be ingested"}])
    return IngestRequest(catalog.feature_view(view_name), rows, aon)  # type: ignore[arg-type]


def rejection_details(rejected: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validation's ``[{"row", "errors": [...]}]`` flattened to ``[{"row", "field", "problem"}]``."""
    return [{"row": r["row"], **e} for r in rejected for e in r["errors"]]


def outcome_status(accepted: int, rejected: Sequence[Any], batch_rejected: bool) -> int:
    """200 all stored, 207 some rows rejected, 400 nothing stored."""
    if batch_rejected or accepted == 0:
        return 400
    return 207 if rejected else 200


def rejection_error(rejected: Sequence[Mapping[str, Any]], batch_rejected: bool, total: int) -> BadRequest:
    """The 400 for a batch of which nothing was stored."""
    listed = rejection_details(rejected[:MAX_REPORTED_ROWS])
    more = f" (errors of the first {MAX_REPORTED_ROWS} listed)" if len(rejected) > MAX_REPORTED_ROWS else ""
    if batch_rejected:
        message = f"{len(rejected)} of {total} rows are invalid and all_or_nothing was asked: nothing was stored{more}"
        return BadRequest("batch_rejected", message, listed)
    return BadRequest("invalid_rows", f"all {total} rows are invalid: nothing was stored{more}", listed)


# ------------------------------------------------------------------------------------- files


@dataclass
class ParsedFile:
    """Rows read from a dropped file. ``from_text`` says cells are text (CSV) to be parsed by
    the schema; ``errors`` maps a row index to problems found while reading it (such a row is
    None in ``rows``, so that validation rejects it, and reports these problems instead)."""

    rows: list[Any]
    from_text: bool
    errors: dict[int, list[dict[str, Any]]] = field(default_factory=dict)


def object_key(record_key: str) -> str:
    """The object key of an S3 event record (S3 URL-encodes it, spaces as ``+``)."""
    return unquote_plus(record_key)


def view_of_key(key: str, prefix: str = INCOMING_PREFIX) -> str:
    """The view a dropped file is for: ``incoming/<view>/<file>``."""
    rest = key[len(prefix):] if key.startswith(prefix) else key
    view, sep, name = rest.partition("/")
    if not sep or not view or not name:
        raise BadRequest("invalid_key", f"files go to {prefix}<view>/<file>, got {key!r}",
                         [{"field": "key", "problem": f"expected {prefix}<view>/<file>"}])
    return view


def parse_file(key: str, data: bytes) -> ParsedFile:
    """Rows of a CSV, JSON-lines or JSON file (by the key's suffix)."""
    name = key.lower()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest("invalid_file", "the file is not UTF-8 text", [{"field": None, "problem": str(exc)}]) from None
    if name.endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames:
            raise BadRequest("invalid_file", "the CSV file has no header row", [{"field": None, "problem": "empty"}])
        rows: list[Any] = []
        errors: dict[int, list[dict[str, Any]]] = {}
        for i, row in enumerate(reader):
            if None in row:  # more cells than header columns: the row is rejected as unreadable
                errors[i] = [{"field": None, "problem": "more cells than the header has columns"}]
                rows.append(None)
                continue
            rows.append({k: v for k, v in row.items() if v is not None})
        return ParsedFile(rows, True, errors)
    if name.endswith((".jsonl", ".ndjson")):
        rows, errors = [], {}
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                errors[len(rows)] = [{"field": None, "problem": f"not valid JSON: {str(exc)[:120]}"}]
                rows.append(None)  # rejected by validation; its errors are replaced by these
        return ParsedFile(rows, False, errors)
    if name.endswith(".json"):
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise BadRequest("invalid_json", "the file is not valid JSON", [{"field": None, "problem": str(exc)[:200]}]) from None
        rows = doc.get("rows") if isinstance(doc, dict) else doc
        if not isinstance(rows, list):
            raise BadRequest("invalid_file", "a .json file holds an array of rows or {\"rows\": [...]}",
                             [{"field": "rows", "problem": "expected an array"}])
        return ParsedFile(rows, False, {})
    raise BadRequest("unsupported_file", f"cannot read {key!r}: use .csv, .jsonl, .ndjson or .json",
                     [{"field": "key", "problem": "unsupported file type"}])
