"""Which champion latencies the canary's latency check compares with (`CanaryRollout._champion_latencies`):
the same stage window's, never an earlier baseline once a concurrent comparison was made."""

from mlops.rollout.canary import CanaryRollout
from mlops.rollout.gate import GatePolicy

POLICY = GatePolicy(min_samples=3)
STAGE_START = "2026-01-01T00:10:00.000Z"


def champion_rows(before: int, during: int) -> list[dict]:
    early = [{"ts": f"2026-01-01T00:0{i % 10}:00.000Z", "latency_ms": 100.0 + i} for i in range(before)]
    late = [{"ts": f"2026-01-01T00:1{i % 10}:30.000Z", "latency_ms": 5.0 + i} for i in range(during)]
    return early + late + [{"ts": "2026-01-01T00:11:00.000Z", "latency_ms": None}]


def run(history: list[dict]) -> dict:
    return {"history": [*history, {"stage": len(history)}]}


def test_concurrent_champion_rows_when_the_window_has_enough() -> None:
    ms, basis = CanaryRollout._champion_latencies(run([]), champion_rows(50, 4), STAGE_START, POLICY)
    assert ms == [5.0, 6.0, 7.0, 8.0] and basis == "champion rows of the same stage window"


def test_not_judged_again_at_100_percent_after_a_concurrent_comparison() -> None:
    judged = {"checks": [{"name": "latency", "observed": 12.5, "note": "champion rows of the same stage window"}]}
    ms, basis = CanaryRollout._champion_latencies(run([judged]), champion_rows(50, 1), STAGE_START, POLICY)
    assert ms == [] and "earlier stages" in basis


def test_baseline_only_when_no_stage_had_concurrent_traffic() -> None:
    unjudged = {"checks": [{"name": "latency", "observed": None, "note": "no latencies to compare"}]}
    for history in ([], [unjudged]):
        ms, basis = CanaryRollout._champion_latencies(run(history), champion_rows(5, 0), STAGE_START, POLICY)
        assert ms == [100.0, 101.0, 102.0, 103.0, 104.0] and "baseline" in basis
