"""The warm function's caches: one session per version, checked artifacts, remembered failures."""

from __future__ import annotations

import pytest
from models_synthetic import trained

from mlops.models.registry import ModelVersion
from mlops.models.registry_store import VersionNotFound
from mlops.models.serving import ModelCache, TTLCache
from mlops.models.serving_model import ArtifactIntegrityError


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Registry:
    """Versions and artifact bytes in memory, counting the reads a cache makes."""

    def __init__(self, artifact: bytes, record: dict) -> None:
        self.artifacts = {1: artifact, 2: b"tampered" + artifact}
        self.record = record
        self.reads = 0

    def get_version(self, name: str, number: int) -> ModelVersion:
        self.reads += 1
        if number not in self.artifacts:
            raise VersionNotFound(f"{name} has no version {number}")
        return ModelVersion(name, number, "2026-01-05T09:00:00.000000Z", "pending", self.record["sha256"],
                            f"models/{name}/artifacts/x.onnx", len(self.artifacts[1]), "c.json", "c.md", "test",
                            None, "impute", 0.5, self.record)

    def read_artifact(self, version: ModelVersion) -> bytes:
        return self.artifacts[version.version]


@pytest.fixture(scope="module")
def model():
    return trained("gradient_boosting", 20)


def test_one_session_per_version_and_tampered_artifacts_are_refused(model) -> None:
    registry, clock = Registry(model.onnx, model.to_record()), Clock()
    cache = ModelCache(registry, failure_ttl_s=10, monotonic=clock)
    first = cache.get("yield", 1)
    assert cache.get("yield", 1) is first and registry.reads == 1 and len(cache) == 1
    assert first.model.sha256 == model.sha256 and first.source is None
    for _ in range(3):
        with pytest.raises(ArtifactIntegrityError, match="sha256 mismatch"):
            cache.get("yield", 2)
    assert registry.reads == 2 and len(cache) == 1  # the failure is remembered, nothing was loaded
    clock.t = 11
    with pytest.raises(ArtifactIntegrityError):
        cache.get("yield", 2)
    assert registry.reads == 3  # retried once the failure is older than failure_ttl_s
    registry.artifacts[2] = model.onnx  # fixed in S3
    clock.t = 30
    assert cache.get("yield", 2).model.sha256 == model.sha256


def test_unknown_versions_are_not_remembered(model) -> None:
    registry = Registry(model.onnx, model.to_record())
    cache = ModelCache(registry, failure_ttl_s=10, monotonic=Clock())
    for _ in range(2):
        with pytest.raises(VersionNotFound):
            cache.get("yield", 9)
    assert registry.reads == 2


def test_ttl_cache() -> None:
    clock, loads = Clock(), []
    cache = TTLCache(5, clock)
    load = lambda: loads.append(1) or len(loads)  # noqa: E731
    assert [cache.get("k", load), cache.get("k", load)] == [1, 1]
    clock.t = 5
    assert cache.get("k", load) == 2
    never = TTLCache(0, clock)
    assert [never.get("k", load), never.get("k", load)] == [3, 4]
