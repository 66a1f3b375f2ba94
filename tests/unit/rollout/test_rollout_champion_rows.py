"""The canary reads the champion's rows newest first: the whole current stage window (exact
sample-ratio counts and concurrent latencies) and at most ``baseline_rows`` older ones (so an
evaluation late in a long rollout reads no more than one early on). moto PredictionsTable
defined as in template.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from localcloud.intrinsics import load_yaml
from mlops.models.prediction_log import PredictionLog, prediction_item
from mlops.rollout.canary import CanaryRollout
from mlops.rollout.gate import GatePolicy

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def log() -> Iterator[PredictionLog]:
    props = load_yaml((ROOT / "template.yaml").read_text())["Resources"]["PredictionsTable"]["Properties"]
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="predictions", BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=props["AttributeDefinitions"], KeySchema=props["KeySchema"],
                            GlobalSecondaryIndexes=props["GlobalSecondaryIndexes"])
        yield PredictionLog("predictions", dynamodb=client)


def ts(second: int) -> str:
    return f"2026-01-05T10:{second // 60:02d}:{second % 60:02d}.000000Z"


def write(log: PredictionLog, seconds: range) -> None:
    log.put([prediction_item({"request_id": f"r{s}", "model": "yield", "version": 1, "variant": "champion",
                              "inputs": {"vdd": 1.2}, "probability": 0.3, "label": 0, "threshold": 0.5,
                              "latency_ms": float(s), "missing_policy": "impute", "shadow": None},
                             ts=ts(s), expires_at=1) for s in seconds])


def champion_rows(log: PredictionLog, baseline_rows: int) -> list[int]:
    rollout = CanaryRollout(registry=None, deployments_table="d", prediction_log=log, dynamodb=log.dynamodb)  # type: ignore[arg-type]
    rows = rollout._champion_rows("yield", 1, ts(0), ts(1000), ts(1200), GatePolicy(baseline_rows=baseline_rows))
    return [int(r["latency_ms"]) for r in rows]


def test_the_stage_window_whole_and_the_latest_baseline_rows_before_it(log: PredictionLog) -> None:
    write(log, range(0, 1200, 2))  # 500 before the stage (0-998 s), 100 in it (1000-1198 s)
    assert champion_rows(log, 10_000) == list(range(0, 1200, 2))  # all, oldest first
    capped = champion_rows(log, 30)
    # The stage window alone holds more than 30 rows: all of it, and no older row.
    assert capped == list(range(1000, 1200, 2))
    write(log, range(1201, 1203))  # at/after the end: never read
    # 550: the 100 rows of the window, then older ones until 550 rows were read in all.
    assert champion_rows(log, 550) == list(range(1200 - 2 * 550, 1200, 2))


def test_baseline_rows_must_be_a_positive_integer() -> None:
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="baseline_rows"):
            GatePolicy(baseline_rows=bad)  # type: ignore[arg-type]
