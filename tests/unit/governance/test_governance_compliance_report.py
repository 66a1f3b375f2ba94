"""The compliance report's renderer on fixed input: every section present, the numbers and
the actors shown, the audit records' hashes cited, a broken chain named, missing parts stated."""

from __future__ import annotations

import numpy as np

from mlops.audit.chain import link, verify
from mlops.audit.events import AuditEvent
from mlops.governance.compliance_report import ReportInputs, render
from mlops.governance.compliance_sources import about_version
from mlops.governance.fairness import fairness_summary
from mlops.models.card import build_model_card

SHA = "ab" * 32
DATA_SHA = "cd" * 32
SIDE = {"rows": 300, "positives": 60, "positive_rate": 0.2, "start": "2026-01-05T06:00:00Z", "end": "2026-01-09T06:00:00Z"}


def _fairness() -> dict:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    scores = np.where(np.arange(200) < 100, 0.9, 0.3) * rng.uniform(0.5, 1.0, 200)
    return fairness_summary(y, scores, 0.4, {"tester_id": np.where(np.arange(200) < 100, "T1", "T2")})


def _record() -> dict:
    return {
        "sha256": SHA, "artifact_bytes": 1234, "code_version": "git:abc123",
        "parameters": {"config": {"model": "gradient_boosting", "n_estimators": 20}},
        "data": {"content_sha256": DATA_SHA, "rows": 400, "features": 7, "positives": 80, "positive_rate": 0.2,
                 "time_range": {"start": "2026-01-05T06:00:00Z", "end": "2026-01-10T18:00:00Z"},
                 "split_time": "2026-01-09T06:00:00Z", "validation_fraction": 0.25, "train": SIDE, "validation": SIDE},
        "signature": {"dtype": "float32", "features": [{"name": "vdd", "position": 0}, {"name": "idd", "position": 1}]},
        "metrics": {"roc_auc": 0.83, "accuracy": 0.9},
        "threshold": {"threshold": 0.4, "policy": {"kind": "max_f1"}, "precision": 0.5, "recall": 0.6, "f1": 0.55,
                      "predicted_positive_rate": 0.2},
        "fairness": _fairness(),
    }


def _chain() -> list:
    events = [
        AuditEvent.create("registry.version_registered", "arn:aws:lambda:us-east-1:1:function:mlops-TrainFunction",
                          model="yield", entity="version:yield/2", details={"sha256": SHA},
                          at="2026-01-11T09:00:00Z"),
        AuditEvent.create("approval.set", "api-key:alice", model="yield", entity="version:yield/2",
                          details={"version": 2, "status": "approved", "reason": "reviewed"}, at="2026-01-11T10:00:00Z"),
        AuditEvent.create("alias.moved", "api-key:alice", model="yield", entity="alias:yield/champion",
                          details={"alias": "champion", "version": 2, "previous_version": 1, "seq": 2},
                          at="2026-01-11T10:05:00Z"),
        AuditEvent.create("rollout.decision", "arn:aws:states:execution:canary:r1", model="yield", entity="canary:r1",
                          details={"challenger": 2, "stage": 1, "percent": 10.0, "decision": "continue", "reasons": [],
                                   "stage_counts": {"champion": 900, "challenger": 100},
                                   "checks": [{"name": "sample_ratio", "passed": True, "observed": 0.1, "limit": 0.1,
                                               "p_value": 0.87, "statistic": 0.03, "note": None}]},
                          at="2026-01-11T11:00:00Z"),
        AuditEvent.create("alias.moved", "api-key:bob", model="yield", entity="alias:yield/shadow",
                          details={"alias": "shadow", "version": 1, "previous_version": None, "seq": 1},
                          at="2026-01-11T12:00:00Z"),
    ]
    records = []
    for e in events:
        records.append(link("model:yield", records[-1] if records else None, e))
    return records


def _inputs(**changes) -> ReportInputs:
    record = _record()
    card = build_model_card(name="yield", version=2, record=record, intended_use="Rank devices by risk.",
                            created_at="2026-01-11T09:00:00Z")
    records = _chain()
    cited = [r.to_api() for r in records if about_version(r.to_api(), 2, SHA)]
    version = {"name": "yield", "version": 2, "created_at": "2026-01-11T09:00:00Z", "created_by": "trainer",
               "approval_status": "approved",
               "approval": {"by": "api-key:alice", "at": "2026-01-11T10:00:00Z", "reason": "reviewed"},
               "artifact": {"key": f"models/yield/artifacts/{SHA}.onnx", "sha256": SHA, "bytes": 1234},
               "training_data": record["data"], "code_version": "git:abc123", "parameters": record["parameters"],
               "parent_version": 1, "feature_source": None, "record": record}
    drift = {"key": "reports/drift/yield/20260112T000000.000000Z.json", "model": "yield", "version": 2,
             "generated_at": "2026-01-12T00:00:00.000000Z", "rows": 500,
             "window": {"start": "2026-01-11T00:00:00Z", "end": "2026-01-12T00:00:00Z"},
             "drift": {"dataset_drift": True, "share": 0.5, "correction": "holm", "drift_share_threshold": 0.3,
                       "drifted_features": ["idd"], "worst_feature": "idd",
                       "features": {"idd": {"method": "psi", "score": 0.31, "threshold": 0.2, "drifted": True},
                                    "vdd": {"method": "ks", "score": 0.44, "threshold": 0.05, "drifted": False}}},
             "concept": {"accuracy": 0.88, "baseline_accuracy": 0.9, "alarms": []}}
    base = dict(model="yield", version_number=2, generated_at="2026-01-12T01:00:00.000000Z", version=version, card=card,
                aliases={"champion": 2, "shadow": 1},
                alias_moves=[{"alias": "champion", "version": 2, "previous_version": 1, "seq": 2,
                              "at": "2026-01-11T10:05:00.000000Z", "by": "api-key:alice", "reason": "promote"}],
                audit_records=cited, runs=[], drift=drift, verifications=[verify(records).to_api()])
    return ReportInputs(**{**base, **changes})


def _section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_every_section_is_present_with_its_numbers() -> None:
    text = render(_inputs())
    assert text.startswith("# Compliance report: yield version 2\n")
    for heading in ("Model card", "Lineage", "Approvals and alias history", "Rollout history", "Fairness", "Drift",
                    "Audit-chain proof"):
        assert f"\n## {heading}\n" in text
    card = _section(text, "Model card")
    assert "#### Intended use" in card and "Rank devices by risk." in card  # the card, headings moved down
    lineage = _section(text, "Lineage")
    assert "2026-01-05T06:00:00Z to 2026-01-10T18:00:00Z" in lineage and DATA_SHA in lineage
    assert "Parent version: 1" in lineage and "Champion now: version 2 (this version)" in lineage
    assert "git:abc123" in lineage and '"n_estimators":20' in lineage
    approvals = _section(text, "Approvals and alias history")
    assert "**approved** by api-key:alice at 2026-01-11T10:00:00Z" in approvals
    assert "| 2026-01-11T10:05:00.000000Z | champion | 2 | 1 | api-key:alice | promote |" in approvals
    assert "| approval.set | api-key:alice | version:yield/2 |" in approvals
    rollout = _section(text, "Rollout history")
    assert "stage 1 at 10% -> **continue**" in rollout
    assert "| sample_ratio | pass | 0.1 | 0.1 | 0.87 | 0.03 | n/a |" in rollout
    assert "No retraining run recorded for this version." in rollout


def test_fairness_shows_each_group_and_the_four_fifths_verdict() -> None:
    inputs = _inputs()
    summary = inputs.card["fairness"]["attributes"]["tester_id"]
    fairness = _section(render(inputs), "Fairness")
    verdict = "PASSES" if summary["disparate_impact"]["passed"] else "FAILS"
    assert f"### tester_id: the 80% rule {verdict}" in fairness
    assert f"Disparate impact {summary['disparate_impact']['ratio']:.4g} (threshold 0.8" in fairness
    for group in summary["groups"]:
        assert f"| {group['value']} | {group['n']} | {group['selection_rate']:.4g} |" in fairness


def test_drift_summary_is_shown() -> None:
    drift = _section(render(_inputs()), "Drift")
    assert "reports/drift/yield/20260112T000000.000000Z.json" in drift and "none is about" not in drift
    assert "Dataset drift: **yes** (share 0.5 under holm" in drift and "Drifted features: idd" in drift
    assert "| idd | psi | 0.31 | 0.2 | yes |" in drift


def test_the_proof_cites_every_record_about_the_version_with_its_hash() -> None:
    records = _chain()
    text = render(_inputs())
    proof = _section(text, "Audit-chain proof")
    assert "**Audit chain: verified (model:yield: 5 records checked)**" in proof
    assert f"| model:yield | yes | 5 | 5 | {records[-1].hash} | n/a |" in proof
    for r in records[:4]:  # registration, approval, champion move, rollout decision
        assert f"| model:yield | {r.seq} | {r.event.action} | {r.event.at} | {r.prev_hash} | {r.hash} |" in proof
    assert f"| {records[4].prev_hash} | {records[4].hash} |" not in text  # the shadow move is about v1: not cited


def test_a_broken_chain_is_reported_with_its_first_bad_record() -> None:
    records = _chain()
    tampered = [*records[:2], records[2].with_event(records[1].event), *records[3:]]
    text = render(_inputs(verifications=[verify(tampered).to_api()]))
    assert "Audit chain: FAILED (model:yield: first bad record seq 3, modified" in text
    assert "verified (" not in text
    assert "| model:yield | no | 5 | 2 |" in _section(text, "Audit-chain proof")


def test_missing_parts_are_stated() -> None:
    inputs = _inputs(card=None, audit_records=[], alias_moves=[], drift=None, runs=[], verifications=[],
                     aliases={}, version={**_inputs().version, "record": {}, "approval": {},
                                          "approval_status": "pending", "training_data": None,
                                          "parent_version": None})
    text = render(inputs)
    assert "No model card stored for this version." in text
    assert "No training-data reference recorded for this version." in text
    assert "Parent version: none recorded" in text and "Champion now: none" in text
    assert "no approval decision recorded" in text and "No alias was moved to or from this version." in text
    assert "No rollout recorded for this version" in text
    assert "No fairness audit recorded for this version" in text
    assert "No drift report stored for model yield." in text
    assert "Audit chain: NOT VERIFIED" in text and "No audit record about this version was found." in text


def test_an_unknown_version_says_so() -> None:
    text = render(ReportInputs("yield", 9, "2026-01-12T01:00:00.000000Z", None, notes=["model 'yield' has no version 9"],
                               verifications=[verify(_chain()).to_api()]))
    assert "**Version 9 of model 'yield' is not registered**" in text and "## Lineage" not in text
    assert "Audit chain: verified (model:yield: 5 records checked)" in text
