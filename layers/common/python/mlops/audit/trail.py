"""How a handler audits its own change: make the change, then append the audit record.

The rule, and why. A change and its audit record live in different tables, and DynamoDB
cannot put them in one transaction without also making every alias move contend on the audit
chain's head. So the handler first makes the change (which is atomic on its own: one
transaction per alias move or registration), then appends the record. If the append fails,
the change stands and the handler still gives its normal answer, since answering an error
would make the client retry a change that already happened. The failure is never silent:
it is logged at ERROR level with the whole event (so it can be re-appended by hand) and
counted in the ``AuditWriteFailures`` metric (dimension ``action``), which an alarm watches.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from mlops.audit.chain import AuditRecord
from mlops.audit.events import AuditEvent
from mlops.audit.store import AuditStore

FAILURE_METRIC = "AuditWriteFailures"


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats spelt as text (``"NaN"``, ``"Infinity"``), which JSON
    cannot hold; an undefined metric is still worth recording.

    >>> json_safe({"auc": float("nan"), "xs": [1.0, float("-inf")]})
    {'auc': 'NaN', 'xs': [1.0, '-Infinity']}
    """
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def record_change(store: AuditStore, logger: Any, action: str, actor: str, *, model: str | None = None,
                  entity: str | None = None, details: Mapping[str, Any] | None = None,
                  at: Any = None) -> AuditRecord | None:
    """Append the event of a change that was just made; on any failure (a refused event, an
    unreachable table, lost races) log an error, emit the failure metric and return None
    (see the module docstring)."""
    fields = {"action": action, "actor": actor, "model": model, "entity": entity, "at": at,
              "details": json_safe(dict(details or {}))}
    try:
        record = store.append(AuditEvent.create(action, actor, model=model, entity=entity,
                                                details=fields["details"], at=at))
    except Exception as exc:  # noqa: BLE001 - any failure must be reported, none may break the answer
        logger.error("audit write failed", extra={"audit_event": fields, "error": repr(exc)})
        with single_metric(name=FAILURE_METRIC, unit=MetricUnit.Count, value=1) as metric:
            metric.add_dimension(name="action", value=action)
        return None
    logger.info("audited", extra={"audit_chain": record.chain, "audit_seq": record.seq, "action": action})
    return record
