"""The steps of the canary-rollout state machine, on the ``run`` object of `mlops.rollout.plan`.

Each method takes the run and returns it updated; the state machine only branches on
``run["decision"]`` and waits ``run["bake_seconds"]``. What each step changes:

* `start` - points the ``challenger`` alias at the run's version (the registry's move also
  resets the deployment record's ``challenger_percent`` to 0);
* `set_stage` - the deployment record's ``challenger_percent`` = the stage's percent (a
  conditional write: only while the record's challenger is still this run's version);
* `evaluate` - reads both variants' rows from the prediction log (`PredictionLog.version_rows`;
  the champion's from ``baseline_seconds`` before the rollout began, for steadier error and
  accuracy rates), summarises them (`mlops.monitoring.version_stats.summarize`) and runs the gate
  (`mlops.rollout.gate.evaluate_stage`): the decision and its statistics go into the run's
  ``history`` (while the challenger is short of ``min_samples`` rows the answer is ``extend``
  whatever the champion has, so the champion's rows are not read then: its ``champion`` and
  ``stage_counts.champion`` are null). Latency is compared with the champion's rows of the same stage window only:
  it moves with load and time, so a champion baseline from earlier would read a busy moment as
  a regression. Where the champion has fewer than ``min_samples`` rows in the window (the 100%
  stage), latency was already judged in the earlier stages and is not judged again; a rollout
  with no concurrent champion traffic at all (blue/green) compares with the baseline, and the
  check's note says so;
* `shadow_verdict` - with the optional shadow pre-check, the ShadowAnalysisFunction's verdict on
  the challenger's shadow results decides whether it may take traffic at all;
* `promote` - ``champion`` -> the challenger, ``previous`` -> the old champion, the challenger
  alias removed, the version approved;
* `rollback` - the challenger alias removed (its traffic drops to 0 at once; with blue/green
  the ``previous`` champion is back in one write) and the version rejected with the reasons;
* `abort` - an unexpected failure: the challenger is taken out of traffic, its approval left as
  it was, and the run says ``aborted``.

Every step also appends to the audit trail through the ``audit`` callable it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from mlops.models.prediction_log import PredictionLog
from mlops.models.registry import iso_utc, utc_now
from mlops.models.registry_store import AliasNotFound, RegistryStore
from mlops.models.routing import DEPLOYMENT_SK
from mlops.monitoring.version_stats import summarize
from mlops.rollout.gate import GatePolicy, evaluate_stage, short_of_samples

Audit = Callable[[str, dict[str, Any]], None]
#: What the gate reads of each logged row (not the inputs).
GATE_ATTRIBUTES = ("version", "variant", "probability", "predicted_label", "label", "latency_ms", "error",
                   "fallback_from")


class StageConflict(RuntimeError):
    """The deployment record no longer has this run's challenger (someone else moved it)."""


def _no_audit(action: str, details: dict[str, Any]) -> None:
    return None


class CanaryRollout:
    """Rollout steps against the registry, the deployment record and the prediction log."""

    def __init__(self, registry: RegistryStore, deployments_table: str, prediction_log: PredictionLog, *,
                 dynamodb: Any, audit: Audit = _no_audit, clock: Callable[[], datetime] = utc_now) -> None:
        self.registry = registry
        self.deployments_table = deployments_table
        self.log = prediction_log
        self.dynamodb = dynamodb
        self.audit = audit
        self.clock = clock

    def _actor(self, run: dict[str, Any]) -> str:
        return run["owner"]

    def start(self, run: dict[str, Any]) -> dict[str, Any]:
        """Make the run's version the challenger, at 0% of the traffic."""
        self.registry.move_alias(run["model"], "challenger", run["challenger"], by=self._actor(run),
                                 reason=f"{run['strategy']} rollout {run['run_id']} started")
        run["rollout_started_at"] = iso_utc(self.clock())
        self.audit("rollout.started", {"model": run["model"], "challenger": run["challenger"],
                                       "champion": run["champion"], "stages": run["stages"],
                                       "strategy": run["strategy"], "policy": run["policy"]})
        return run

    def set_stage(self, run: dict[str, Any]) -> dict[str, Any]:
        """Give the challenger the current stage's share of the traffic."""
        percent = run["stages"][run["index"]]
        now = iso_utc(self.clock())
        try:
            self.dynamodb.update_item(
                TableName=self.deployments_table,
                Key={"model": {"S": run["model"]}, "sk": {"S": DEPLOYMENT_SK}},
                UpdateExpression="SET challenger_percent = :p, updated_at = :t",
                ConditionExpression="challenger = :v",
                ExpressionAttributeValues={":p": {"N": repr(float(percent))}, ":t": {"S": now},
                                           ":v": {"N": str(run["challenger"])}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise StageConflict(f"the deployment of {run['model']!r} no longer has challenger "
                                    f"{run['challenger']}; the rollout stops") from None
            raise
        run.update(percent=percent, stage_started_at=now, extensions=0, decision=None, reasons=[])
        run["history"].append({"stage": run["index"], "percent": percent, "started_at": now})
        self.audit("deployment.weights", {"model": run["model"], "challenger": run["challenger"],
                                          "challenger_percent": percent, "stage": run["index"]})
        return run

    def evaluate(self, run: dict[str, Any]) -> dict[str, Any]:
        """Collect both variants' metrics for this stage and decide (see `mlops.rollout.gate`)."""
        policy = GatePolicy.from_dict(run["policy"])
        end = iso_utc(self.clock() - timedelta(seconds=policy.settle_seconds))  # rows still being written
        model = run["model"]
        stage_start = iso_utc(datetime.fromisoformat(run["stage_started_at"].replace("Z", "+00:00"))
                              + timedelta(seconds=policy.switch_seconds))  # old weights still in use before
        read = {"attributes": GATE_ATTRIBUTES}
        since = iso_utc(datetime.fromisoformat(run["rollout_started_at"].replace("Z", "+00:00"))
                        - timedelta(seconds=policy.baseline_seconds))
        challenger_rows = [r for r in self.log.version_rows(model, run["challenger"], stage_start, end, **read)
                           if r["variant"] == "challenger"]
        challenger = summarize(challenger_rows)
        challenger_latencies = [r["latency_ms"] for r in challenger_rows if r["latency_ms"] is not None]
        gate = {"percent": run["percent"], "last_stage": run["index"] == len(run["stages"]) - 1,
                "extensions": run["extensions"], "policy": policy, "stages": len(run["stages"])}
        if short_of_samples(challenger, policy):
            # The answer is "extend" (or insufficient data) whatever the champion has: its rows,
            # the bulk of what an evaluation reads, are not read while the challenger waits.
            champion = None
            stage_counts: dict[str, int | None] = {"champion": None, "challenger": len(challenger_rows)}
            result = evaluate_stage(champion=None, challenger=challenger, stage_counts=stage_counts, **gate)
        else:
            champion_rows = [r for r in self._champion_rows(model, run["champion"], since, stage_start, end, policy)
                             if r["variant"] == "champion" and r["fallback_from"] is None]
            stage_counts = {"champion": sum(r["ts"] >= stage_start for r in champion_rows),
                            "challenger": len(challenger_rows)}
            champion = summarize(champion_rows)
            champion_latencies, latency_basis = self._champion_latencies(run, champion_rows, stage_start, policy)
            result = evaluate_stage(champion=champion, challenger=challenger, stage_counts=stage_counts,
                                    champion_latencies=champion_latencies, challenger_latencies=challenger_latencies,
                                    latency_basis=latency_basis, **gate)
        run["decision"], run["reasons"] = result.decision, list(result.reasons)
        stage = run["history"][-1]
        stage.update(decision=result.decision, reasons=list(result.reasons), extensions=run["extensions"],
                     evaluated_at=iso_utc(self.clock()), window_end=end, stage_counts=stage_counts,
                     champion=None if champion is None else champion.to_dict(), challenger=challenger.to_dict(),
                     checks=[c.to_dict() for c in result.checks])
        if result.decision == "extend":
            run["extensions"] += 1
        elif result.decision == "continue":
            run["index"] += 1
        if result.decision != "extend":
            self.audit("rollout.decision", {"model": model, "challenger": run["challenger"], "stage": run["index"],
                                            "percent": run["percent"], **result.to_dict(),
                                            "stage_counts": stage_counts})
        return run

    def _champion_rows(self, model: str, version: int, since: str, stage_start: str, end: str,
                       policy: GatePolicy) -> list[dict[str, Any]]:
        """The champion's rows in ``[since, end)``, oldest first: all of the current stage's
        window (the sample-ratio counts and concurrent latencies need every one) and, before
        it, only the latest up to ``policy.baseline_rows`` (the baseline rates)."""
        rows: list[dict[str, Any]] = []
        for row in self.log.version_rows(model, version, since, end, attributes=GATE_ATTRIBUTES,
                                         newest_first=True, page_size=1000):
            if row["ts"] < stage_start and len(rows) >= policy.baseline_rows:
                break
            rows.append(row)
        rows.reverse()
        return rows

    @staticmethod
    def _champion_latencies(run: dict[str, Any], champion_rows: list[dict[str, Any]], stage_start: str,
                            policy: GatePolicy) -> tuple[list[float], str]:
        """The champion latencies the challenger's are compared with, and what they are."""
        concurrent = [r["latency_ms"] for r in champion_rows
                      if r["ts"] >= stage_start and r["latency_ms"] is not None]
        if len(concurrent) >= policy.min_samples:
            return concurrent, "champion rows of the same stage window"
        judged_before = any(check.get("name") == "latency" and check.get("observed") is not None
                            for stage in run["history"][:-1] for check in stage.get("checks") or ())
        if judged_before:
            return [], (f"fewer than {policy.min_samples} champion rows in this stage window: "
                        "latency was judged against concurrent champion rows in the earlier stages")
        baseline = [r["latency_ms"] for r in champion_rows if r["latency_ms"] is not None]
        return baseline, "no concurrent champion traffic: compared with the champion's baseline rows"

    def shadow_verdict(self, run: dict[str, Any], analysis: dict[str, Any]) -> dict[str, Any]:
        """Judge the shadow pre-check (ShadowAnalysisFunction's answer): ``rollback`` with its
        reasons before any traffic moves, or ``continue``."""
        verdict = analysis.get("verdict") or {}
        run["shadow_result"] = {"rows": analysis.get("rows"), "verdict": verdict,
                                "analysis": analysis.get("analysis")}
        ok = bool(verdict.get("ok"))
        run["decision"] = "continue" if ok else "rollback"
        run["reasons"] = [] if ok else [f"shadow: {r}" for r in verdict.get("reasons", [])] or ["shadow"]
        self.audit("rollout.shadow_verdict", {"model": run["model"], "challenger": run["challenger"],
                                              "ok": ok, "reasons": run["reasons"], "rows": analysis.get("rows")})
        return run

    def promote(self, run: dict[str, Any]) -> dict[str, Any]:
        """The challenger becomes champion; the old champion is kept as ``previous``."""
        model, actor = run["model"], self._actor(run)
        reason = f"rollout {run['run_id']} promoted version {run['challenger']}"
        self.registry.move_alias(model, "champion", run["challenger"], by=actor, reason=reason)
        self.registry.move_alias(model, "previous", run["champion"], by=actor, reason=reason)
        self._clear_challenger(run, reason)
        self.registry.set_approval(model, run["challenger"], "approved", by=actor, reason=reason)
        run["outcome"] = "promoted"
        self.audit("rollout.promoted", {"model": model, "champion": run["challenger"], "previous": run["champion"]})
        return run

    def rollback(self, run: dict[str, Any]) -> dict[str, Any]:
        """Take the challenger out of traffic and reject it, with the gate's reasons."""
        where = "before taking traffic" if run["percent"] is None else f"at {run['percent']:g}%"
        reason = f"rollout {run['run_id']} rolled back {where}: {', '.join(run['reasons'])}"
        self._clear_challenger(run, reason)
        self.registry.set_approval(run["model"], run["challenger"], "rejected", by=self._actor(run), reason=reason)
        run["outcome"] = "rolled_back"
        self.audit("rollout.rolled_back", {"model": run["model"], "version": run["challenger"],
                                           "reasons": run["reasons"], "percent": run["percent"]})
        return run

    def abort(self, run: dict[str, Any], error: Any) -> dict[str, Any]:
        """An unexpected failure: take the challenger out of traffic, leave its approval."""
        self._clear_challenger(run, f"rollout {run['run_id']} aborted: {error}")
        run["outcome"] = "aborted"
        run["error"] = error
        self.audit("rollout.aborted", {"model": run["model"], "version": run["challenger"], "error": error})
        return run

    def _clear_challenger(self, run: dict[str, Any], reason: str) -> None:
        try:
            current = self.registry.get_alias(run["model"], "challenger")
        except AliasNotFound:
            return
        if current == run["challenger"]:
            self.registry.remove_alias(run["model"], "challenger", by=self._actor(run), reason=reason)
