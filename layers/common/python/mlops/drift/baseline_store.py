"""The training baseline of a model version, stored in S3 (ArtifactsBucket) next to its card.

Training builds the :class:`~mlops.drift.baseline.Baseline` from the columns the version was
trained on and stores it once the version number exists (:func:`build_and_save`); the drift
check reads it back (:meth:`BaselineStore.load`) and never needs the training data.

* key ``models/<name>/versions/<n>/baseline.json`` (the model card's folder,
  `mlops.models.registry_store.card_keys`);
* body: ``Baseline.to_dict()`` as compact strict JSON;
* the sha256 of the body is returned (:class:`StoredBaseline`) and kept in the object's
  metadata (``sha256``); :meth:`BaselineStore.load` recomputes it and refuses a body that
  does not match (:class:`BaselineCorrupt`), as serving does with ONNX artifacts.

A version registered before baselines existed has none: :class:`BaselineNotFound`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from botocore.exceptions import ClientError

from mlops import aws
from mlops.drift.baseline import DEFAULT_SAMPLE_SIZE, Baseline
from mlops.drift.psi import DEFAULT_BINS


class BaselineNotFound(LookupError):
    """The version has no stored baseline."""


class BaselineCorrupt(ValueError):
    """The stored body does not match its recorded sha256."""


def baseline_key(name: str, version: int) -> str:
    """Where version ``version`` of model ``name`` keeps its baseline."""
    return f"models/{name}/versions/{int(version)}/baseline.json"


@dataclass(frozen=True)
class StoredBaseline:
    """Where a baseline was written and what its body hashes to."""

    bucket: str
    key: str
    sha256: str
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form (for a training summary or a version record)."""
        return {"bucket": self.bucket, "key": self.key, "sha256": self.sha256, "bytes": self.bytes}


def encode(baseline: Baseline) -> bytes:
    """The stored body: compact strict JSON of ``baseline.to_dict()``."""
    return json.dumps(baseline.to_dict(), separators=(",", ":"), allow_nan=False).encode("utf-8")


class BaselineStore:
    """Baselines of model versions in one bucket (ArtifactsBucket)."""

    def __init__(self, bucket: str, *, s3: Any = None) -> None:
        self.bucket = bucket
        self._s3 = s3

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            self._s3 = aws.client("s3")
        return self._s3

    def save(self, name: str, version: int, baseline: Baseline) -> StoredBaseline:
        """Write the baseline of ``name`` version ``version`` (overwrites: a rebuilt baseline of
        the same version replaces the old one)."""
        body = encode(baseline)
        sha = hashlib.sha256(body).hexdigest()
        key = baseline_key(name, version)
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json",
                           Metadata={"sha256": sha})
        return StoredBaseline(self.bucket, key, sha, len(body))

    def load(self, name: str, version: int) -> Baseline:
        """The stored baseline; BaselineNotFound without one, BaselineCorrupt when its body does
        not hash to the recorded sha256."""
        key = baseline_key(name, version)
        try:
            answer = self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise BaselineNotFound(f"model {name!r} version {version} has no drift baseline "
                                       f"(s3://{self.bucket}/{key})") from None
            raise
        body = answer["Body"].read()
        recorded = (answer.get("Metadata") or {}).get("sha256")
        actual = hashlib.sha256(body).hexdigest()
        if recorded != actual:
            raise BaselineCorrupt(f"baseline s3://{self.bucket}/{key} hashes to {actual}, recorded {recorded}")
        return Baseline.from_dict(json.loads(body))


def build_and_save(name: str, version: int, features: Mapping[str, np.ndarray], *, bucket: str,
                   s3: Any = None, kinds: Mapping[str, str] | None = None, n_bins: int = DEFAULT_BINS,
                   sample_size: int = DEFAULT_SAMPLE_SIZE,
                   metadata: Mapping[str, Any] | None = None) -> StoredBaseline:
    """Summarise the training columns of a version (:meth:`Baseline.build`) and store them.

    ``features`` maps each model input to its training values (NaN = missing); ``kinds``
    overrides the inferred kind per feature. The baseline's metadata records the model and
    version (plus ``metadata``).
    """
    meta = {"model": name, "version": int(version), **dict(metadata or {})}
    baseline = Baseline.build(features, kinds=kinds, n_bins=n_bins, sample_size=sample_size, metadata=meta)
    return BaselineStore(bucket, s3=s3).save(name, version, baseline)
