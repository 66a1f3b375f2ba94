"""Rollout steps for the state machines, and the admin routes that start and steer rollouts.

Invoked directly by the retraining and canary-rollout state machines with
``{"action": ..., "run": {...}}`` (see `mlops.rollout.plan` for the run object): it returns the
updated run, or raises an error whose type the machine catches by name (``RunInputError``,
``LockHeld``, ``StageConflict``). Actions:

- ``plan_canary`` / ``plan_retraining`` - check the execution's input into a run;
- ``acquire`` / ``release`` - the model's lease: one rollout and one retraining run at a time;
- ``shadow_verdict``, ``start``, ``set_stage``, ``evaluate``, ``promote``, ``rollback``, ``abort`` - canary steps
  (`mlops.rollout.canary`);
- ``retraining_gate`` - the candidate against the champion (`mlops.rollout.retraining_gate`);
- ``record`` - the retraining run's record (`mlops.rollout.run_store`), and on failure the
  clean-up: a version registered by the failed run is rejected and loses the challenger alias.

Admin routes:

- ``GET /models/{name}/runs`` - the model's retraining runs, newest first;
- ``POST /models/{name}/versions/{version}/faults`` ``{"error_rate", "delay_ms",
  "log_drop_rate"}`` - fault injection (tests and demo), 403 unless the stack enables it.

Every change is appended to the audit trail (`mlops.audit.trail.record_change`).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Annotated, Any

# The canary gate's latency check (Mann-Whitney U) needs scipy.stats: about 0.5-1 s to import,
# paid here at init rather than by the first evaluation that decides a stage.
import scipy.stats  # noqa: F401
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops import aws
from mlops.api_errors import ApiError
from mlops.api_models import FaultBody, Forbidden, JsonObject, responses
from mlops.api_validation import api_resolver
from mlops.audit.store import AuditStore
from mlops.audit.trail import record_change
from mlops.governance.fairness import fairness_gate
from mlops.idempotent_routes import IdempotentRequests
from mlops.models.prediction_log import PredictionLog
from mlops.models.registry import model_name_problem, parse_version
from mlops.models.registry_store import AliasNotFound, ModelNotFound, RegistryError, RegistryStore
from mlops.models.routing import DEPLOYMENT_SK
from mlops.models.training_specs import SPECS
from mlops.rest_responses import answer_errors, json_response
from mlops.rollout import faults, plan
from mlops.rollout.canary import CanaryRollout
from mlops.rollout.lock import LockHeld, RolloutLock
from mlops.rollout.retraining_gate import RetrainingGatePolicy, decide
from mlops.rollout.run_store import RunStore

logger = Logger()
metrics = Metrics()
app = api_resolver()
app.use([IdempotentRequests().middleware])  # Idempotency-Key on the POST routes (mlops.idempotent_routes)
_dynamodb = aws.client("dynamodb")
DEPLOYMENTS = os.environ["DEPLOYMENTS_TABLE"]
registry = RegistryStore(os.environ["REGISTRY_TABLE"], os.environ["ARTIFACTS_BUCKET"],
                         deployments_table=DEPLOYMENTS, dynamodb=_dynamodb)
audit_store = AuditStore(os.environ["AUDIT_TABLE"], dynamodb=_dynamodb)
lock = RolloutLock(DEPLOYMENTS, dynamodb=_dynamodb)
runs = RunStore(os.environ["REGISTRY_TABLE"], dynamodb=_dynamodb)
LEASE_SECONDS = float(os.environ.get("ROLLOUT_LEASE_SECONDS", "21600"))
answer_errors(app, {RegistryError: RegistryError.to_api_error})


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _auditor(run: dict[str, Any]):
    def audit(action: str, details: dict[str, Any]) -> None:
        record_change(audit_store, logger, action, run["owner"], model=run["model"],
                      entity=f"{run['kind']}:{run['run_id']}", details=details)
    return audit


def _canary(run: dict[str, Any]) -> CanaryRollout:
    return CanaryRollout(registry, DEPLOYMENTS, PredictionLog(os.environ["PREDICTIONS_TABLE"], dynamodb=_dynamodb),
                         dynamodb=_dynamodb, audit=_auditor(run))


def _aliases(model: str) -> dict[str, int]:
    try:
        return registry.aliases(model)
    except ModelNotFound:
        raise plan.RunInputError(f"model: {model!r} is not registered") from None


def plan_canary(event: dict[str, Any]) -> dict[str, Any]:
    raw = event.get("input") or {}
    model = raw.get("model") if isinstance(raw, dict) else None
    aliases = _aliases(model) if isinstance(model, str) and not model_name_problem(model) else {}
    run = plan.canary_run(raw, execution_id=event["execution_id"], run_id=event["execution_name"],
                          challenger=aliases.get("challenger"), champion=aliases.get("champion"), now=_now())
    try:
        version = registry.get_version(run["model"], run["challenger"])
    except RegistryError:
        raise plan.RunInputError(f"challenger: version {run['challenger']} of {run['model']!r} is not "
                                 "registered") from None
    if version.approval_status == "rejected":
        raise plan.RunInputError(f"challenger: version {run['challenger']} is rejected; it cannot be rolled out")
    return run


def plan_retraining(event: dict[str, Any]) -> dict[str, Any]:
    started = event.get("started_at")  # the execution's start (the virtual clock under localcloud)
    now = datetime.fromisoformat(started.replace("Z", "+00:00")) if started else _now()
    return plan.retraining_run(event.get("input") or {}, execution_id=event["execution_id"],
                               run_id=event["execution_name"], now=now, specs=SPECS)


def acquire(run: dict[str, Any]) -> dict[str, Any]:
    try:
        lease = lock.acquire(run["model"], run["kind"], run["owner"], now=_now().timestamp(), ttl_s=LEASE_SECONDS)
    except LockHeld as exc:
        if run["kind"] == "retraining":
            runs.record(run, "REFUSED", error=str(exc))
        _auditor(run)(f"{run['kind']}.refused", {"error": str(exc)})
        raise
    run["lease"] = lease.to_dict()
    if run["kind"] == "retraining":
        runs.record(run, "STARTED")
        _auditor(run)("retraining.started", {"reason": run["reason"], "window": [run["start"], run["end"]]})
    return run


def release(run: dict[str, Any]) -> dict[str, Any]:
    run["released"] = lock.release(run["model"], run["kind"], run["owner"])
    return run


def _fairness(summary: Any) -> tuple[bool, list[str]]:
    checked = fairness_gate(summary)  # the default policy: four-fifths rule, groups of 30 rows or more
    return checked.passed, list(checked.reasons)


def retraining_gate(event: dict[str, Any]) -> dict[str, Any]:
    run, candidate = event["run"], event["candidate"]
    champion = candidate.get("champion")
    comparable = champion if champion and champion.get("comparable") else None
    result = decide(candidate, comparable, RetrainingGatePolicy.from_dict(run["gate"]), _fairness)
    if champion and not champion.get("comparable"):
        result["note"] = champion.get("note")
    _auditor(run)("retraining.gate", {"candidate_sha256": candidate.get("sha256"), **result})
    return result


def record(event: dict[str, Any]) -> dict[str, Any]:
    """The run's final record; on failure, no half-registered version is left behind."""
    run, status = event["run"], event["status"]
    details = {k: event[k] for k in ("gate", "canary", "error", "candidate") if event.get(k) is not None}
    registered = event.get("registered") or {}
    registered = registered.get("value", registered)  # a step's result, as the machine keeps it
    if status == "FAILED" and registered.get("version"):
        version = int(registered["version"])
        reason = f"retraining run {run['run_id']} failed after registering it: {event.get('error')}"
        try:
            if registry.get_alias(run["model"], "challenger") == version:
                registry.remove_alias(run["model"], "challenger", by=run["owner"], reason=reason)
        except AliasNotFound:
            pass
        registry.set_approval(run["model"], version, "rejected", by=run["owner"], reason=reason)
    if status == "COMPLETED":
        status = {"promoted": "PROMOTED", "rolled_back": "ROLLED_BACK"}.get(
            (event.get("canary") or {}).get("outcome"), "ABORTED")
    if registered:
        details["registered"] = registered
    runs.record(run, status, **details)
    _auditor(run)("retraining.finished", {"status": status, **details})
    metrics.add_dimension(name="model", value=run["model"])
    metrics.add_metric(name=f"Retraining{status.title().replace('_', '')}", unit=MetricUnit.Count, value=1)
    return {**run, "status": status}


ACTIONS: dict[str, Any] = {
    "plan_canary": plan_canary,
    "plan_retraining": plan_retraining,
    "acquire": lambda e: acquire(e["run"]),
    "release": lambda e: release(e["run"]),
    "start": lambda e: _canary(e["run"]).start(e["run"]),
    "set_stage": lambda e: _canary(e["run"]).set_stage(e["run"]),
    "evaluate": lambda e: _canary(e["run"]).evaluate(e["run"]),
    "promote": lambda e: _canary(e["run"]).promote(e["run"]),
    "rollback": lambda e: _canary(e["run"]).rollback(e["run"]),
    "shadow_verdict": lambda e: _canary(e["run"]).shadow_verdict(e["run"], e["analysis"]),
    "abort": lambda e: _canary(e["run"]).abort(e["run"], e.get("error")),
    "retraining_gate": retraining_gate,
    "record": record,
}


def _direct(event: dict[str, Any]) -> dict[str, Any]:
    action = ACTIONS.get(event.get("action"))  # type: ignore[arg-type]
    if action is None:
        raise ValueError(f"unknown action {event.get('action')!r}; expected one of {sorted(ACTIONS)}")
    return action(event)


# ---------------------------------------------------------------------------- admin routes
def _caller() -> str:
    identity = app.current_event.request_context.identity
    return f"api-key:{identity.api_key_id}" if identity.api_key_id else "api"


@app.get("/models/<name>/runs", summary="A model's canary and retraining runs",
         responses=responses(JsonObject, "{model, runs: [...]}"))
def list_runs(name: str) -> Response[dict]:
    problem = model_name_problem(name)
    if problem:
        raise ApiError.invalid({"name": problem})
    return json_response(200, {"model": name, "runs": runs.runs(name)})


@app.post("/models/<name>/versions/<version>/faults", summary="Inject faults into a version (test stacks only)",
          responses=responses(JsonObject, "the fault now set",
                              extra={403: ("fault_injection_disabled: the stack was deployed without "
                                           "FaultInjection, or a missing or wrong x-api-key", Forbidden)}))
def set_faults(name: str, version: str, request: Annotated[FaultBody, Body()]) -> Response[dict]:
    if not faults.enabled(os.environ):
        raise ApiError(403, "fault_injection_disabled", "fault injection is disabled in this stack (template "
                       "parameter FaultInjection=disabled)", [{"field": "FaultInjection", "problem": "disabled"}])
    problems = {}
    problem = model_name_problem(name)
    if problem:
        problems["name"] = problem
    number = parse_version(version)
    if number is None:
        problems["version"] = "expected a positive integer version"
    body = app.current_event.json_body
    try:
        fault = faults.Fault.from_dict(body)
    except ValueError as exc:
        field, _, problem = str(exc).partition(": ")
        problems[field] = problem
    if problems:
        raise ApiError.invalid(problems)
    registry.get_version(name, number)  # 404 for an unknown model or version
    item = _dynamodb.get_item(TableName=DEPLOYMENTS, Key={"model": {"S": name}, "sk": {"S": DEPLOYMENT_SK}},
                              ConsistentRead=True).get("Item") or {}
    current = faults.parse_faults(item.get("faults", {}).get("S"))
    current[number] = fault
    _dynamodb.update_item(TableName=DEPLOYMENTS, Key={"model": {"S": name}, "sk": {"S": DEPLOYMENT_SK}},
                          UpdateExpression="SET faults = :f", ExpressionAttributeValues={":f": {"S": faults.faults_json(current)}})
    record_change(audit_store, logger, "admin.faults", _caller(), model=name, details={"version": number, **fault.to_dict()})
    return json_response(200, {"model": name, "version": number, "fault": fault.to_dict()})


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if "httpMethod" in event:
        return app.resolve(event, context)
    return _direct(event)
