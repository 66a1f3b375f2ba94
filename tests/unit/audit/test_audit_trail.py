"""Handlers' audit rule (`mlops.audit.trail`): the record is appended after the change, and a
failed append is never silent (an ERROR log with the whole event, an ``AuditWriteFailures``
EMF metric) yet never breaks the answer; the prediction sample (`PredictionAudit`)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops.audit.chain import AuditRecord, link
from mlops.audit.events import AuditEvent
from mlops.audit.predictions import PredictionAudit, sampled
from mlops.audit.trail import FAILURE_METRIC, record_change


class FakeStore:
    """An in-memory chain per chain name (the DynamoDB store is tested against moto)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.records: list[AuditRecord] = []

    def append(self, event: AuditEvent) -> AuditRecord:
        if self.fail:
            raise ConnectionError("the audit table did not answer")
        record = link("model:m", self.records[-1] if self.records else None, event)
        self.records.append(record)
        return record


class Logs:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict]] = []

    def error(self, msg: str, extra: dict | None = None) -> None:
        self.lines.append(("error", msg, extra or {}))

    def info(self, msg: str, extra: dict | None = None) -> None:
        self.lines.append(("info", msg, extra or {}))


@pytest.fixture(autouse=True)
def namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "MLOps")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "test")


def emf(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def test_a_change_is_recorded(capsys) -> None:
    store, logs = FakeStore(), Logs()
    record = record_change(store, logs, "alias.moved", "api-key:k", model="m", entity="alias:m/champion",
                           details={"version": 2, "auc": float("nan")}, at="2026-01-05T09:00:00Z")
    assert record is not None and store.records == [record]
    assert record.event.details == {"version": 2, "auc": "NaN"}  # JSON cannot hold NaN; the record keeps it as text
    assert emf(capsys.readouterr().out) == []


def test_a_failed_append_is_logged_and_counted_and_does_not_raise(capsys) -> None:
    logs = Logs()
    assert record_change(FakeStore(fail=True), logs, "approval.set", "api-key:k", model="m",
                         details={"status": "approved"}) is None
    [(level, msg, extra)] = logs.lines
    assert (level, msg) == ("error", "audit write failed")
    assert extra["audit_event"]["action"] == "approval.set" and extra["audit_event"]["details"] == {"status": "approved"}
    assert "ConnectionError" in extra["error"]
    [doc] = emf(capsys.readouterr().out)
    assert doc[FAILURE_METRIC] == [1.0] and doc["action"] == "approval.set"
    assert doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MLOps"


def test_an_event_that_cannot_be_recorded_is_reported_the_same_way(capsys) -> None:
    logs = Logs()
    assert record_change(FakeStore(), logs, "Bad Action", "") is None
    assert logs.lines[0][0] == "error" and "AuditEventError" in logs.lines[0][2]["error"]
    assert emf(capsys.readouterr().out)[0][FAILURE_METRIC] == [1.0]


def rows(n: int) -> list[dict[str, Any]]:
    return [{"request_id": f"req-{i}", "model": "m", "version": 1, "variant": "champion", "entity_id": None,
             "probability": 0.25, "label": 0, "threshold": 0.5, "inputs": {"x": 1.0}, "imputed": [],
             "fallback": None} for i in range(n)]


@pytest.mark.parametrize("rate", [0.0, 0.3, 1.0])
def test_predictions_are_audited_at_the_sampled_rate(rate: float) -> None:
    store = FakeStore()
    done = PredictionAudit(store, rate, Logs()).record(rows(200), "2026-01-05T09:00:00.000000Z")
    expected = [r["request_id"] for r in rows(200) if sampled(r["request_id"], rate)]
    assert done == len(expected) == len(store.records)
    assert [r.event.details["request_id"] for r in store.records] == expected
    if store.records:
        e = store.records[0].event
        assert (e.action, e.model, e.entity, e.actor) == ("prediction", "m", f"prediction:{expected[0]}", "inference")


def test_a_failing_prediction_audit_never_raises(capsys) -> None:
    logs = Logs()
    assert PredictionAudit(FakeStore(fail=True), 1.0, logs).record(rows(3), "2026-01-05T09:00:00Z") == 0
    assert [level for level, _, _ in logs.lines] == ["error"] * 3
    assert len(emf(capsys.readouterr().out)) == 3
