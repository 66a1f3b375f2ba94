"""Detector state in DynamoDB (moto): round trips, continuation across invocations, and
concurrent writers that lose no update and apply none twice."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable

import pytest
from drift_moto import DEPLOYMENTS_TABLE, drift_aws

from mlops.drift.detector_store import Applied, DetectorConflict, DetectorStore, detector_sk
from mlops.drift.detectors import ADWIN, DDM
from mlops.drift.detectors.state import create


@pytest.fixture
def store():
    with drift_aws() as (dynamodb, _):
        yield DetectorStore(DEPLOYMENTS_TABLE, dynamodb=dynamodb)


def stream(seed: int, n: int, shift_at: int | None = None) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(0.0 if shift_at is None or i < shift_at else 1.5, 1.0) for i in range(n)]


def errors(seed: int, n: int, rate: float) -> list[float]:
    rng = random.Random(seed)
    return [float(rng.random() < rate) for _ in range(n)]


def run_threads(n: int, work: Callable[[int], None]) -> None:
    failures: list[BaseException] = []
    start = threading.Barrier(n)

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures


def test_a_new_detector_is_stored_under_its_key_and_loads_back_identical(store) -> None:
    values = errors(1, 200, 0.2)
    applied = store.update_many("yield", "DDM", "errors-v1", values)
    assert applied.written and applied.applied == 200 and applied.attempts == 1
    expected = DDM()
    expected.update_many(values)
    expected.version = 1
    [item] = store.dynamodb.scan(TableName=DEPLOYMENTS_TABLE)["Items"]
    assert item["model"] == {"S": "yield"} and item["sk"] == {"S": "DETECTOR#DDM#errors-v1"}
    assert item["version"] == {"N": "1"} and item["n_seen"] == {"N": "200"}
    assert json.loads(item["state"]["S"]) == expected.to_dict()
    loaded = store.load("yield", "DDM", "errors-v1")
    assert loaded is not None and loaded.detector.to_dict() == expected.to_dict()
    assert store.load("yield", "DDM", "errors-v2") is None


def test_a_detector_continues_across_invocations_as_if_it_never_stopped(store) -> None:
    values = errors(2, 1500, 0.1) + errors(3, 1500, 0.6)  # the error rate jumps at 1500
    single = DDM()
    expected = single.update_many(values)
    assert expected.drifts  # the stream does drift
    found: list[int] = []
    warnings: list[int] = []
    offset = 0
    for size in (400, 700, 900, 1000):  # four invocations
        applied = store.update_many("yield", "DDM", "errors-v1", values[offset:offset + size])
        found += [offset + i for i in applied.detections.drifts]
        warnings += [offset + i for i in applied.detections.warnings]
        offset += size
    assert (found, warnings) == (expected.drifts, expected.warnings)
    stored = store.load("yield", "DDM", "errors-v1").detector
    single.version = 4
    assert stored.to_dict() == single.to_dict()


def test_an_empty_batch_writes_nothing(store) -> None:
    applied = store.update_many("yield", "ADWIN", "errors-v1", [])
    assert not applied.written and applied.applied == 0
    assert store.load("yield", "ADWIN", "errors-v1") is None


def test_concurrent_writers_lose_no_update_and_apply_none_twice(store) -> None:
    """8 threads x 4 batches on one ADWIN. The writes form one sequence (their versions
    1..32); a single detector fed the batches in that order ends in exactly the stored
    state, and each write's detections are the ones the single detector saw there."""
    batches = {(t, b): stream(100 * t + b, 60, shift_at=30 if (t + b) % 3 == 0 else None)
               for t in range(8) for b in range(4)}
    results: dict[tuple[int, int], Applied] = {}
    lock = threading.Lock()

    def work(t: int) -> None:
        for b in range(4):
            applied = store.update_many("yield", "ADWIN", "inputs", batches[(t, b)])
            with lock:
                results[(t, b)] = applied

    run_threads(8, work)
    order = sorted(results, key=lambda k: results[k].detector.version)
    assert [results[k].detector.version for k in order] == list(range(1, 33))
    assert sum(r.attempts for r in results.values()) > 32  # the writers did collide
    replay = ADWIN()
    for key in order:
        detections = replay.update_many(batches[key])
        assert results[key].detections.drifts == detections.drifts
    replay.version = 32
    stored = store.load("yield", "ADWIN", "inputs").detector
    assert stored.n_seen == 32 * 60
    assert stored.to_dict() == replay.to_dict()


def test_concurrent_consumers_of_one_source_apply_each_value_exactly_once(store) -> None:
    """Six invocations read the same source (each up to its own point in time) and feed what
    lies after the stored watermark: together they apply the source's prefix once, in order."""
    source = errors(7, 600, 0.3)
    ends = [100, 250, 250, 420, 600, 510]
    spans: list[tuple[int, int, int]] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        seen: dict[str, int] = {}

        def batch(watermark: int | None) -> tuple[list[float], int]:
            begin = watermark or 0
            seen["begin"] = begin
            end = max(begin, ends[i])
            return source[begin:end], end

        applied = store.consume("yield", "EDDM", "errors-v1", batch)
        if applied.written:
            with lock:
                spans.append((applied.detector.version, seen["begin"], applied.watermark))

    run_threads(len(ends), work)
    spans.sort()
    assert [v for v, _, _ in spans] == list(range(1, len(spans) + 1))
    assert spans[0][1] == 0 and all(a[2] == b[1] for a, b in zip(spans, spans[1:]))  # contiguous
    assert spans[-1][2] == 600
    replay = create("EDDM")
    replay.update_many(source)
    replay.version = len(spans)
    stored = store.load("yield", "EDDM", "errors-v1")
    assert stored.watermark == 600 and stored.detector.to_dict() == replay.to_dict()


def test_a_lost_race_is_retried_on_the_winners_state(store) -> None:
    calls = {"n": 0}

    def batch(watermark: int | None) -> tuple[list[float], int]:
        calls["n"] += 1
        if calls["n"] == 1:  # another invocation writes between our read and our write
            store.consume("yield", "DDM", "errors-v1", lambda w: ([0.0] * 50, 50))
        begin = watermark or 0
        return [1.0] * (80 - begin), 80

    applied = store.consume("yield", "DDM", "errors-v1", batch)
    assert applied.attempts == 2 and applied.applied == 30 and applied.detector.version == 2
    assert store.load("yield", "DDM", "errors-v1").detector.n_seen == 80


def test_too_many_conflicts_raise_and_leave_the_winners_state(store) -> None:
    impatient = DetectorStore(DEPLOYMENTS_TABLE, dynamodb=store.dynamodb, max_attempts=1)

    def batch(watermark: int | None) -> tuple[list[float], int]:
        store.update_many("yield", "DDM", "errors-v1", [0.0] * 10)
        return [1.0] * 5, 5

    with pytest.raises(DetectorConflict, match="DETECTOR#DDM#errors-v1"):
        impatient.consume("yield", "DDM", "errors-v1", batch)
    assert store.load("yield", "DDM", "errors-v1").detector.n_seen == 10


def test_names_with_the_separator_are_refused() -> None:
    assert detector_sk("DDM", "errors-v1") == "DETECTOR#DDM#errors-v1"
    with pytest.raises(ValueError, match="cannot contain"):
        detector_sk("DDM", "a#b")
