"""Shadow mode analysis: compare a shadow version with production on the same logged requests
and say whether it may go on to the canary.

- Direct invoke (the canary-rollout state machine): ``{"model", "shadow_version", "start",
  "end", "policy": {...}, "production_versions": [...]}``; ``policy`` and
  ``production_versions`` are optional (default policy; every other registered version).
  Bad input raises ``ShadowInputError`` (a ValueError naming each field), an unknown model
  ``ModelNotFound``, so the state machine sees the type.
- ``GET /models/{name}/shadow-analysis?shadow_version=&hours=`` (read-only): the last
  ``hours`` (default 24, at most 2160 = the log's 90-day TTL) up to now; ``shadow_version``
  defaults to where the model's ``shadow`` alias points; any `ShadowPolicy` field may be given
  as a query parameter (``min_agreement=0.9``).

Both answer ``{"model", "shadow_version", "production_versions", "start", "end", "rows",
"analysis", "policy", "verdict": {"ok", "reasons"}}``. Thin: read the pairs
(`mlops.rollout.shadow_log`), analyse and judge them (`mlops.rollout.shadow`), answer.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Annotated, Any, Optional

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from mlops.api_errors import ApiError
from mlops.api_models import JsonObject, responses
from mlops.api_validation import api_resolver
from mlops.models.prediction_log import PredictionLog
from mlops.models.registry import iso_utc, model_name_problem, parse_time, parse_version, utc_now
from mlops.models.registry_store import RegistryError, RegistryStore
from mlops.rest_responses import answer_errors, json_response
from mlops.rollout.shadow import ShadowInputError, ShadowPolicy, analyze_shadow, shadow_verdict
from mlops.rollout.shadow_log import read_shadow_rows

logger = Logger()
metrics = Metrics()
app = api_resolver()
log = PredictionLog(os.environ["PREDICTIONS_TABLE"])
registry = RegistryStore(os.environ["REGISTRY_TABLE"], os.environ["ARTIFACTS_BUCKET"])
DEFAULT_HOURS = 24.0
MAX_HOURS = 2160.0
DIRECT_KEYS = ("model", "shadow_version", "start", "end", "policy", "production_versions")

answer_errors(app, {RegistryError: RegistryError.to_api_error,
                    ShadowInputError: lambda exc: ApiError.invalid(exc.problems)})


def _versions(shadow_version: int, given: Any, problems: dict[str, str]) -> list[int] | None:
    if given is None:
        return None
    numbers = [parse_version(v) for v in given] if isinstance(given, list) else [None]
    if not numbers or None in numbers:
        problems["production_versions"] = "expected a non-empty list of positive integer versions"
        return None
    return sorted(set(numbers) - {shadow_version})  # type: ignore[arg-type]


def analyse(model: str, shadow_version: int, start: str, end: str, policy: ShadowPolicy,
            production_versions: list[int] | None = None) -> dict[str, Any]:
    """Read, analyse, judge. Without ``production_versions``: every registered version but the
    shadow (ModelNotFound for an unknown model)."""
    if production_versions is None:
        latest = registry.get_model(model)["latest_version"] or 0
        if shadow_version > latest:
            raise ApiError.not_found("version_not_found", f"model {model!r} has no version {shadow_version}",
                                     "shadow_version")
        production_versions = [v for v in range(1, latest + 1) if v != shadow_version]
    rows = read_shadow_rows(log, model, production_versions, shadow_version, start, end)
    analysis = analyze_shadow(rows.pairs, shadow_errors=rows.shadow_errors)
    ok, reasons = shadow_verdict(analysis, policy)
    metrics.add_metric(name="ShadowAnalyses", unit=MetricUnit.Count, value=1)
    logger.info("shadow analysis", extra={"model": model, "shadow_version": shadow_version, "pairs": analysis.n,
                                          "ok": ok, "reasons": reasons})
    return {"model": model, "shadow_version": shadow_version, "production_versions": production_versions,
            "start": start, "end": end, "rows": rows.summary(), "analysis": analysis.to_dict(),
            "policy": policy.to_dict(), "verdict": {"ok": ok, "reasons": reasons}}


Rate = Annotated[Optional[float], Query(ge=0, le=1)]
Count = Annotated[Optional[int], Query(ge=0)]


@app.get("/models/<name>/shadow-analysis", summary="Compare the shadow version with production over a window",
         description="The query may override any ShadowPolicy threshold (min_pairs, min_agreement, ...).",
         responses=responses(JsonObject, "the paired analysis and the verdict"))
def shadow_analysis(name: str,
                    shadow_version: Annotated[Optional[str], Query(description="default: the shadow alias")] = None,
                    hours: Annotated[Optional[float], Query(gt=0, le=MAX_HOURS, description="the window (default 24)")] = None,
                    min_pairs: Count = None, min_agreement: Rate = None, max_mean_shift: Rate = None,
                    alpha: Annotated[Optional[float], Query(gt=0, lt=0.5)] = None, min_labeled: Count = None,
                    max_error_rate: Rate = None) -> Response[dict]:
    problems: dict[str, str] = {}
    problem = model_name_problem(name)
    if problem:
        problems["name"] = problem
    query = dict(app.current_event.query_string_parameters or {})
    shadow_version = None
    if "shadow_version" in query:
        shadow_version = parse_version(query.pop("shadow_version"))
        if shadow_version is None:
            problems["shadow_version"] = "expected a positive integer version"
    hours = DEFAULT_HOURS
    if "hours" in query:
        try:
            hours = float(query.pop("hours"))
        except ValueError:
            hours = float("nan")
        if not 0 < hours <= MAX_HOURS:
            problems["hours"] = f"expected a number of hours above 0 and at most {MAX_HOURS:g}"
    numbers: dict[str, Any] = {}
    for key, text in query.items():
        try:
            numbers[key] = int(text) if text.isdigit() else float(text)
        except ValueError:
            numbers[key] = text  # from_dict names it
    try:
        policy = ShadowPolicy.from_dict(numbers, prefix="")
    except ShadowInputError as exc:
        problems.update(exc.problems)
        policy = ShadowPolicy()
    if problems:
        raise ApiError.invalid(problems)
    if shadow_version is None:
        shadow_version = registry.aliases(name).get("shadow")
        if shadow_version is None:
            registry.get_model(name)  # 404 for an unknown model
            raise ApiError.invalid({"shadow_version": f"required: model {name!r} has no shadow alias"})
    now = utc_now()
    start, end = iso_utc(now - timedelta(hours=hours)), iso_utc(now)
    return json_response(200, analyse(name, shadow_version, start, end, policy))


def _direct(event: dict[str, Any]) -> dict[str, Any]:
    """A direct invoke: check everything, then analyse; ShadowInputError names each bad field."""
    problems = {key: "unknown field" for key in event if key not in DIRECT_KEYS}
    model = event.get("model")
    problem = model_name_problem(model) if "model" in event else "required"
    if problem:
        problems["model"] = problem
    shadow_version = parse_version(event.get("shadow_version"))
    if shadow_version is None:
        problems["shadow_version"] = "expected a positive integer version" if "shadow_version" in event else "required"
    window = {}
    for key in ("start", "end"):
        try:
            window[key] = parse_time(event[key]) if key in event else None
        except ValueError as exc:
            problems[key] = str(exc)
        if key not in event:
            problems[key] = "required"
    if window.get("start") and window.get("end") and window["end"] <= window["start"]:
        problems["end"] = "must be after start"
    try:
        policy = ShadowPolicy.from_dict(event.get("policy"))
    except ShadowInputError as exc:
        problems.update(exc.problems)
        policy = ShadowPolicy()
    versions = _versions(shadow_version or 0, event.get("production_versions"), problems)
    if problems:
        raise ShadowInputError(problems)
    try:
        return analyse(model, shadow_version, window["start"], window["end"], policy, versions)  # type: ignore[arg-type]
    except ApiError as exc:  # an unknown shadow version: raised as such to the state machine
        raise ShadowInputError({d["field"]: d["problem"] for d in exc.details}) from None


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if "httpMethod" not in event:
        return _direct(event)
    return app.resolve(event, context)
