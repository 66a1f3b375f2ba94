"""The audit trail: query it, verify it, append to it, archive it.

Routes (admin routes: reading the audit log is for auditors):

- GET /audit?entity=&model=&chain=&from=&to=&limit=&next=  -> ``{"records": [...], "next": token|null}``
- GET /audit/verify?chain=&archive=true|false  -> every chain (or one) verified:
  ``{"ok", "first_bad": {"chain", "seq", "kind", "detail"}|null, "chains": [...]}``. A broken
  chain is still a 200 (the verification worked; its answer is "not intact"); an unknown
  chain is a 404.

Direct invokes (no ``httpMethod``), e.g. a state machine's ``lambda:invoke`` Task auditing
its own steps:

- ``{"record": {"action", "actor", "model"?, "entity"?, "details"?, "at"?}}`` -> the stored
  record (chain, seq, hashes and the event);
- ``{"archive": {"chain": "model:yield"}}`` (or ``{"archive": {}}`` for every chain) ->
  ``{"chains": [{"chain", "archived", "objects", "archived_to"}]}``.

A bad direct invoke raises (``AuditEventError``, ``AuditChainBroken``, ``ValueError``), so a
state machine can catch the error by name. Thin: `mlops.audit` does the work.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Optional

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.api_errors import ApiError
from mlops.api_models import JsonObject, responses
from mlops.api_validation import api_resolver
from mlops.audit.chain import chain_problem
from mlops.audit.events import AuditEvent
from mlops.audit.requests import parse_query, parse_verify
from mlops.audit.store import AuditStore, BadPageToken
from mlops.rest_responses import answer_errors, json_response

logger = Logger()
metrics = Metrics()
app = api_resolver()
store = AuditStore(os.environ["AUDIT_TABLE"], archive_bucket=os.environ.get("AUDIT_ARCHIVE_BUCKET") or None)


answer_errors(app, {BadPageToken: lambda exc: ApiError.invalid({"next": str(exc)})})


Text = Annotated[Optional[str], Query(min_length=1, max_length=256)]
Time = Annotated[Optional[str], Query(description="ISO-8601 or epoch seconds, inclusive")]


@app.get("/audit", summary="Audit records by entity, model or chain, in a time range",
         responses=responses(JsonObject, "a page of records and the next page's token"))
def query(entity: Text = None, model: Text = None, chain: Text = None,
          from_: Annotated[Optional[str], Query(alias="from", description="ISO-8601 or epoch seconds, inclusive")] = None,
          to: Time = None, limit: Annotated[Optional[int], Query(ge=1, le=1000)] = None,
          next_: Annotated[Optional[str], Query(alias="next", description="the previous page's token")] = None,
          ) -> Response[dict]:
    q = parse_query(app.current_event.query_string_parameters)
    page = store.query(entity=q.entity, model=q.model, chain=q.chain, start=q.start, end=q.end, limit=q.limit,
                       next_token=q.next_token)
    metrics.add_metric(name="AuditQueries", unit=MetricUnit.Count, value=1)
    return json_response(200, page.to_api())


@app.get("/audit/verify", summary="Check the hash chains (?archive=true: against the S3 archive)",
         responses=responses(JsonObject, "ok, the first bad record, each chain's result"))
def verify(chain: Text = None, archive: Annotated[Optional[str], Query(description="true or false")] = None) -> Response[dict]:
    q = parse_verify(app.current_event.query_string_parameters)
    if q.against_archive and not store.archive_bucket:
        raise ApiError.invalid({"archive": "no archive bucket is configured"})
    if q.chain is not None:
        result = store.verify(q.chain, against_archive=q.against_archive)
        if result.records == 0 and result.ok:
            raise ApiError.not_found("chain_not_found", f"the audit trail has no chain {q.chain!r}", "chain")
        results = [result]
    else:
        results = store.verify_all(against_archive=q.against_archive)
    broken = [r for r in results if not r.ok]
    metrics.add_metric(name="AuditVerifications", unit=MetricUnit.Count, value=1)
    if broken:
        metrics.add_metric(name="AuditBrokenChains", unit=MetricUnit.Count, value=len(broken))
        logger.error("audit chain broken", extra={"first_bad": broken[0].to_api()})
    first_bad = None
    if broken:
        first_bad = {"chain": broken[0].chain, **broken[0].first_bad.to_api()}  # type: ignore[union-attr]
    return json_response(200, {"ok": not broken, "first_bad": first_bad, "chains": [r.to_api() for r in results]})


def _direct(event: dict[str, Any]) -> dict[str, Any]:
    if "record" in event:
        record = store.append(AuditEvent.from_api(event["record"], prefix="record."))
        metrics.add_metric(name="AuditRecords", unit=MetricUnit.Count, value=1)
        logger.info("audited", extra={"audit_chain": record.chain, "audit_seq": record.seq})
        return record.to_api()
    if "archive" in event:
        spec = event["archive"] if isinstance(event["archive"], dict) else None
        if spec is None or set(spec) - {"chain"}:
            raise ValueError('expected {"archive": {"chain": <chain>}} or {"archive": {}}')
        chain = spec.get("chain")
        if chain is not None and chain_problem(chain):
            raise ValueError(f"archive.chain: {chain_problem(chain)}")
        results = [store.archive(c) for c in ([chain] if chain is not None else store.chains())]
        metrics.add_metric(name="AuditRecordsArchived", unit=MetricUnit.Count, value=sum(r.archived for r in results))
        return {"chains": [r.to_api() for r in results]}
    raise ValueError('expected {"record": {...}} or {"archive": {...}}')


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if "httpMethod" not in event:
        return _direct(event)
    return app.resolve(event, context)
