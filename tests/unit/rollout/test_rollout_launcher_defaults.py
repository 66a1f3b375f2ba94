"""RetrainingLauncher's defaults (RETRAINING_INPUT): the fields every run it starts carries,
under the caller's own fields, with the model and the decision always its own."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from mlops.rollout.launcher import RetrainingLauncher
from mlops.rollout.triggers import RetrainingDecision

NOW = datetime(2026, 11, 27, 3, 0, tzinfo=timezone.utc)
DRIFT = RetrainingDecision(True, ("drift",), {"drift": {"features": ["contact_res_ohm"]}})


class FakeSfn:
    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.started.append(kwargs)
        return {"executionArn": f"arn:exec:{kwargs['name']}", "startDate": NOW}


@pytest.fixture(autouse=True)
def region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the real client is built, never called


def started_input(launcher: RetrainingLauncher, sfn: FakeSfn, **kwargs: Any) -> dict[str, Any]:
    launcher.start("yield", DRIFT, NOW, **kwargs)
    return json.loads(sfn.started[-1]["input"])


def test_defaults_from_the_environment_go_into_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    canary = {"stages": [1, 10, 50, 100], "bake_seconds": 3600, "policy": {"min_samples": 5}}
    monkeypatch.setenv("RETRAINING_STATE_MACHINE_ARN", "arn:sm:retraining")
    monkeypatch.delenv("DEPLOYMENTS_TABLE", raising=False)
    monkeypatch.setenv("RETRAINING_INPUT", json.dumps({"canary": canary, "model": "other", "reason": "x"}))
    sfn = FakeSfn()
    launcher = RetrainingLauncher.from_env()
    launcher.sfn = sfn
    payload = started_input(launcher, sfn)
    assert payload == {"canary": canary, "model": "yield", "reason": DRIFT.to_dict()}
    assert sfn.started[-1]["stateMachineArn"] == "arn:sm:retraining"
    # the caller's fields win over the defaults
    assert started_input(launcher, sfn, overrides={"canary": {"bake_seconds": 60}})["canary"] == {"bake_seconds": 60}


@pytest.mark.parametrize("value", ["", None])
def test_no_defaults_leave_the_input_as_it_was(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    monkeypatch.setenv("RETRAINING_STATE_MACHINE_ARN", "arn:sm:retraining")
    monkeypatch.delenv("DEPLOYMENTS_TABLE", raising=False)
    if value is None:
        monkeypatch.delenv("RETRAINING_INPUT", raising=False)
    else:
        monkeypatch.setenv("RETRAINING_INPUT", value)
    sfn = FakeSfn()
    launcher = RetrainingLauncher.from_env()
    launcher.sfn = sfn
    assert started_input(launcher, sfn) == {"model": "yield", "reason": DRIFT.to_dict()}


def test_defaults_that_are_not_an_object_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETRAINING_STATE_MACHINE_ARN", "arn:sm:retraining")
    monkeypatch.setenv("RETRAINING_INPUT", "[1, 2]")
    with pytest.raises(ValueError, match="RETRAINING_INPUT"):
        RetrainingLauncher.from_env()
