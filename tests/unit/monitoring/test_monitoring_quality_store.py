"""Serving's ranges loader: a version's baseline from S3 (moto) becomes its quality ranges; a
missing or corrupt baseline, or an S3 that fails, means no check (never a failed prediction)."""

from __future__ import annotations

import boto3
import numpy as np
import pytest
from moto import mock_aws

from mlops.drift.baseline import Baseline
from mlops.drift.baseline_store import BaselineStore, baseline_key
from mlops.monitoring.quality_store import quality_loader

BUCKET = "artifacts"


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def test_the_stored_baseline_gives_the_signature_s_ranges(s3) -> None:
    rng = np.random.default_rng(0)
    baseline = Baseline.build({"a": rng.normal(size=300), "b": rng.normal(size=300), "unused": rng.normal(size=300)})
    BaselineStore(BUCKET, s3=s3).save("yield", 3, baseline)
    ranges = quality_loader(BUCKET, s3=s3)("yield", 3, ["a", "b", "new_feature"])
    assert ranges is not None and ranges.features == ("a", "b")
    assert [r[0] for r in ranges.numeric] == ["a", "b"]
    assert ranges.check({"a": 100.0, "b": 0.0}).to_log() == {"out_of_range": ["a"]}


def test_no_usable_baseline_means_no_check(s3) -> None:
    load = quality_loader(BUCKET, s3=s3)
    assert load("yield", 1, ["a"]) is None  # never stored
    s3.put_object(Bucket=BUCKET, Key=baseline_key("yield", 2), Body=b"{}", Metadata={"sha256": "0" * 64})
    assert load("yield", 2, ["a"]) is None  # corrupt
    assert quality_loader("no-such-bucket", s3=s3)("yield", 1, ["a"]) is None  # S3 refuses
