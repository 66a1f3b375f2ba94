"""Start a retraining run: the one way the drift check, the schedule and ``POST /retrain``
hand a `RetrainingDecision` to the retraining state machine.

The execution's name carries the model and the time, so runs are easy to find; its input is
the retraining input of `mlops.rollout.plan` with the decision as ``reason``. A model whose
retraining lease is held by a live run is refused here already (`LockHeld`), so a manual
request gets a clear 409 instead of an execution that ends as ``REFUSED``; the state machine
still takes the lease itself, which is what keeps concurrent starts from interleaving.

``defaults`` (``RETRAINING_INPUT`` in the environment, JSON) are retraining-input fields such as
``window``, ``spec`` and ``canary`` that every run started here carries unless the caller gives
its own: how an operator sets the canary policy of the runs the drift check starts.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mlops import aws
from mlops.rollout.lock import LockHeld, RolloutLock
from mlops.rollout.triggers import RetrainingDecision


class RetrainingLauncher:
    """Starts executions of the retraining state machine."""

    def __init__(self, state_machine_arn: str, *, lock: RolloutLock | None = None, sfn: Any = None,
                 defaults: Mapping[str, Any] | None = None) -> None:
        self.arn = state_machine_arn
        self.lock = lock
        self.sfn = sfn or aws.client("stepfunctions")
        self.defaults = dict(defaults or {})

    @classmethod
    def from_env(cls) -> "RetrainingLauncher":
        """From ``RETRAINING_STATE_MACHINE_ARN`` (``DEPLOYMENTS_TABLE`` for the lease check,
        ``RETRAINING_INPUT`` for the defaults: a JSON object, or empty)."""
        table = os.environ.get("DEPLOYMENTS_TABLE")
        defaults = json.loads(os.environ.get("RETRAINING_INPUT") or "{}")
        if not isinstance(defaults, dict):
            raise ValueError("RETRAINING_INPUT: expected a JSON object of retraining-input fields")
        return cls(os.environ["RETRAINING_STATE_MACHINE_ARN"], lock=RolloutLock(table) if table else None,
                   defaults=defaults)

    def start(self, model: str, decision: RetrainingDecision, now: datetime,
              overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Start a run for ``decision`` (which must say retrain); LockHeld when one is running."""
        if not decision.retrain:
            raise ValueError("the decision says not to retrain")
        if self.lock is not None:
            holder = self.lock.holder(model, "retraining")
            if holder is not None and holder.expires_at >= now.timestamp():
                raise LockHeld(f"retraining of {model!r} is already running: {holder.owner}")
        tag = re.sub(r"[^A-Za-z0-9-]", "-", "-".join(decision.reasons))[:30]
        name = f"{model}-{now.strftime('%Y%m%dT%H%M%S%f')}-{tag}"[:80]
        payload = {**self.defaults, **dict(overrides or {}), "model": model, "reason": decision.to_dict()}
        answer = self.sfn.start_execution(stateMachineArn=self.arn, name=name, input=json.dumps(payload))
        return {"executionArn": answer["executionArn"], "name": name,
                "startDate": answer["startDate"].isoformat() if hasattr(answer["startDate"], "isoformat")
                else str(answer["startDate"])}
