"""A version's baseline in S3 (moto): stored next to its card with its sha256, read back
identical, refused when missing or altered."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from drift_moto import ARTIFACTS_BUCKET, drift_aws

from mlops.drift import Baseline, compare
from mlops.drift.baseline_store import BaselineCorrupt, BaselineNotFound, BaselineStore, build_and_save


@pytest.fixture
def s3():
    with drift_aws() as (_, s3):
        yield s3


def columns(seed: int, n: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"vdd": rng.normal(1.2 + shift, 0.04, n), "leakage_na": np.abs(rng.normal(55, 20, n)),
            "tester": rng.choice(["T1", "T2", "T3"], n)}


def test_build_and_save_stores_the_baseline_with_its_sha256(s3) -> None:
    train = columns(0, 3000)
    stored = build_and_save("yield", 3, train, bucket=ARTIFACTS_BUCKET, s3=s3, metadata={"rows": 3000})
    assert stored.key == "models/yield/versions/3/baseline.json" and stored.bucket == ARTIFACTS_BUCKET
    obj = s3.get_object(Bucket=ARTIFACTS_BUCKET, Key=stored.key)
    body = obj["Body"].read()
    assert hashlib.sha256(body).hexdigest() == stored.sha256 == obj["Metadata"]["sha256"]
    assert len(body) == stored.bytes and obj["ContentType"] == "application/json"
    expected = Baseline.build(train, metadata={"model": "yield", "version": 3, "rows": 3000})
    assert json.loads(body) == expected.to_dict()

    loaded = BaselineStore(ARTIFACTS_BUCKET, s3=s3).load("yield", 3)
    assert loaded.to_dict() == expected.to_dict()
    current = columns(1, 800, shift=0.05)
    assert compare(loaded, current).to_dict() == compare(expected, current).to_dict()
    assert compare(loaded, current).features["vdd"].drifted


def test_a_version_without_a_baseline_is_not_found(s3) -> None:
    with pytest.raises(BaselineNotFound, match="model 'yield' version 7 has no drift baseline"):
        BaselineStore(ARTIFACTS_BUCKET, s3=s3).load("yield", 7)


def test_an_altered_baseline_is_refused(s3) -> None:
    stored = build_and_save("yield", 1, columns(0, 500), bucket=ARTIFACTS_BUCKET, s3=s3)
    body = json.loads(s3.get_object(Bucket=ARTIFACTS_BUCKET, Key=stored.key)["Body"].read())
    body["features"]["vdd"]["mean"] = 9.0
    s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=stored.key, Body=json.dumps(body).encode(),
                  Metadata={"sha256": stored.sha256})
    with pytest.raises(BaselineCorrupt, match="recorded " + stored.sha256):
        BaselineStore(ARTIFACTS_BUCKET, s3=s3).load("yield", 1)
