"""Reading shadow pairs from the prediction log: a moto PredictionsTable defined as in
template.yaml (its GSI projection decides what the Query sees), rows written by the inference
function's own item builder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.intrinsics import load_yaml
from mlops.models.prediction_log import PredictionLog, error_item, prediction_item
from mlops.rollout.shadow import ShadowPair
from mlops.rollout.shadow_log import ShadowRows, collect, read_shadow_rows

ROOT = Path(__file__).resolve().parents[3]
TABLE = "predictions"


@pytest.fixture
def log() -> Iterator[PredictionLog]:
    props = load_yaml((ROOT / "template.yaml").read_text())["Resources"]["PredictionsTable"]["Properties"]
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=props["AttributeDefinitions"], KeySchema=props["KeySchema"],
                            GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"])
        yield PredictionLog(TABLE, dynamodb=client)


def ts(minute: int) -> str:
    return f"2026-01-05T10:{minute:02d}:00.000000Z"


def row(rid: str, version: int, p: float, shadow: dict[str, Any] | None, *, variant: str = "champion") -> dict:
    return {"request_id": rid, "model": "yield", "version": version, "variant": variant, "inputs": {"vdd": 1.2},
            "probability": p, "label": int(p >= 0.5), "threshold": 0.5, "latency_ms": 1.5,
            "missing_policy": "impute", "shadow": shadow}


def scored(version: int, p: float) -> dict[str, Any]:
    return {"version": version, "probability": p, "label": int(p >= 0.4), "threshold": 0.4, "latency_ms": 0.7}


def test_pairs_errors_versions_and_the_window(log: PredictionLog) -> None:
    items = [
        prediction_item(row("a", 1, 0.70, scored(3, 0.65)), ts=ts(0), expires_at=1),  # window start: included
        prediction_item(row("b", 1, 0.30, scored(3, 0.45)), ts=ts(5), expires_at=1),
        prediction_item(row("c", 2, 0.55, scored(3, 0.35), variant="challenger"), ts=ts(6), expires_at=1),
        prediction_item(row("d", 1, 0.20, {"version": 3, "error": "RuntimeError: boom"}), ts=ts(7), expires_at=1),
        prediction_item(row("e", 1, 0.20, scored(4, 0.10)), ts=ts(8), expires_at=1),  # another shadow
        prediction_item(row("f", 1, 0.20, None), ts=ts(9), expires_at=1),  # no shadow
        prediction_item(row("g", 1, 0.90, scored(3, 0.80)), ts=ts(30), expires_at=1),  # window end: excluded
        prediction_item(row("h", 5, 0.90, scored(3, 0.80)), ts=ts(10), expires_at=1),  # not a production version
        error_item({**row("i", 1, 0.5, None), "fallback": {"version": 2, "error": "slow"}}, ts=ts(11), expires_at=1),
    ]
    log.put(items)
    log.record_feedback("b", 1, at=ts(20))
    log.record_feedback("c", 0, at=ts(20))

    got = read_shadow_rows(log, "yield", [1, 2, 3], 3, ts(0), ts(30))
    assert got.request_ids == ["a", "b", "c"]  # version 1 then 2, in time order; 3 is the shadow itself
    assert got.pairs == [ShadowPair(0.70, 0.65, 1, 1, None), ShadowPair(0.30, 0.45, 0, 1, 1),
                         ShadowPair(0.55, 0.35, 1, 0, 0)]
    assert (got.shadow_errors, got.error_samples, got.by_version, got.truncated) == (
        1, ["RuntimeError: boom"], {1: 2, 2: 1}, False)
    assert got.summary() == {"pairs": 3, "by_production_version": {"1": 2, "2": 1}, "shadow_errors": 1,
                             "error_samples": ["RuntimeError: boom"], "truncated": False}

    later = read_shadow_rows(log, "yield", [1], 3, ts(6), ts(31))
    assert later.request_ids == ["g"] and later.shadow_errors == 1
    assert read_shadow_rows(log, "yield", [1, 2], 4, ts(0), ts(59)).request_ids == ["e"]
    assert read_shadow_rows(log, "other", [1, 2], 3, ts(0), ts(59)).pairs == []


def test_max_rows_truncates_and_says_so(log: PredictionLog) -> None:
    log.put([prediction_item(row(f"r{i}", 1, 0.5, scored(2, 0.5)), ts=ts(i), expires_at=1) for i in range(6)])
    got = read_shadow_rows(log, "yield", [1], 2, ts(0), ts(59), max_rows=4)
    assert len(got.pairs) == 4 and got.truncated
    assert not read_shadow_rows(log, "yield", [1], 2, ts(0), ts(59), max_rows=6).truncated


def test_collect_counts_a_shadow_without_probability_as_an_error() -> None:
    out = ShadowRows()
    rows = [{"request_id": "x", "version": 1, "probability": 0.3, "predicted_label": 0, "label": None,
             "shadow": {"version": 2, "threshold": 0.5}},
            {"request_id": "y", "version": 1, "probability": None, "predicted_label": None, "label": None,
             "error": "boom", "shadow": None}]
    collect(rows, 2, out, 100)
    assert out.pairs == [] and out.shadow_errors == 1 and out.error_samples == ["no shadow probability logged"]
