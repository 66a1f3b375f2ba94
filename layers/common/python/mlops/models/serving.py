"""What the inference function does per request: route, assemble features, score, shadow.

`Predictor.predict` takes a checked `PredictRequest` and answers every row with the
probability, label, threshold, model version, variant, request id, warnings and the missing
value policy that applied; it also returns what to log (inputs, outputs, version, latency,
shadow result) and what to count per version. Handlers write the log and the metrics.

Warm-function caches: one `ServingModel` (onnxruntime session) per version, loaded the first
time the version answers (artifact from S3, sha256 checked before the session exists; a load
failure is remembered for ``failure_ttl_s`` so a broken artifact is not downloaded per
request); the deployment record and alias lookups for ``cache_ttl_s`` seconds (0 = read every
time). Versions are immutable, so their sessions never go stale.

A shadow version (the deployment's ``shadow``) scores every routed row on the side: its result
or its error goes to the log only. Nothing it does, including failing to load, changes the
answer.

Data quality: with ``load_quality`` (`mlops.monitoring.quality_store.quality_loader`), a
version's training ranges are loaded once with its session; each scored row whose inputs are
out of range, null or unseen gets a ``data_quality`` warning and a ``quality`` log attribute.
A version without a baseline is not checked.

A challenger that cannot answer (its artifact fails to load or its integrity check, or an
injected fault makes it fail) hands its rows to the champion: the client gets the champion's
answer with a ``fallback`` warning, and the row carries ``fallback`` (the challenger's version
and error) so the handler logs the challenger's error for the canary gate to count. Injected
faults (`mlops.rollout.faults`: errors, delay, lost log rows) apply only when the predictor is
built with ``faults_enabled``.
A version whose artifact fails to load is reported once per failed load (not per request the
cached failure refuses) to ``on_load_failure`` (the inference function raises an alert there:
`mlops.models.artifact_alerts`).

Experiments: with ``experiments`` (an `mlops.experiments.store.ExperimentStore`), a model's
running experiment (read with its bandit state, cached ``experiment_cache_s``) routes the rows
it enrolls before the deployment's weights do (`mlops.experiments.router`: the sticky hash for
a fixed split, the bandit's choice per request otherwise); the row's variant is the
experiment's and it carries ``experiment`` (id and variant) into the response and the log.
Requests that pin a version or an alias are never in an experiment.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mlops.api_errors import ApiError
from mlops.models.entity_features import FeatureSource, assemble, explicit_with_on_demand
from mlops.models.predict_request import PredictRequest
from mlops.models.registry import ModelVersion
from mlops.models.registry_store import RegistryError
from mlops.models.routing import Deployment, route
from mlops.models.serving_model import (
    ArtifactIntegrityError,
    FeatureValidationError,
    ServingModel,
    SignatureMismatchError,
)

Monotonic = Callable[[], float]
_ROW_PREFIX = re.compile(r"^rows\[(\d+)\]\.")


@dataclass(frozen=True)
class LoadedModel:
    """A version's registry record and its ready session."""

    version: ModelVersion
    model: ServingModel
    source: FeatureSource | None
    quality: Any = None  # mlops.monitoring.data_quality.QualityRanges, when the version has a baseline


class ModelCache:
    """Sessions per (model, version) in the warm function; see the module docstring."""

    def __init__(self, registry: Any, *, failure_ttl_s: float = 10.0, monotonic: Monotonic = time.monotonic,
                 resolve_source: Callable[[Mapping[str, Any]], FeatureSource] = FeatureSource.from_dict,
                 load_quality: Callable[[str, int, Sequence[str]], Any] | None = None,
                 on_load_failure: Callable[[str, int, Exception], None] | None = None) -> None:
        self.registry = registry
        self.load_quality = load_quality
        self.on_load_failure = on_load_failure  # told once per failed load (not per cached refusal)
        self.failure_ttl_s = failure_ttl_s
        self.monotonic = monotonic
        self.resolve_source = resolve_source
        self._loaded: dict[tuple[str, int], LoadedModel] = {}
        self._failed: dict[tuple[str, int], tuple[float, Exception]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, number: int) -> LoadedModel:
        """The loaded version; raises what loading raised (RegistryError, ArtifactIntegrityError,
        SignatureMismatchError)."""
        key = (name, number)
        hit = self._loaded.get(key)
        if hit is not None:
            return hit
        with self._lock:
            hit = self._loaded.get(key)
            if hit is not None:
                return hit
            failed = self._failed.get(key)
            if failed is not None and self.monotonic() - failed[0] < self.failure_ttl_s:
                raise failed[1]
            try:
                version = self.registry.get_version(name, number)
                data = self.registry.read_artifact(version)
                model = ServingModel.load(data, version.sha256, signature=version.signature,
                                          missing_policy=version.missing_policy)  # type: ignore[arg-type]
                source = None if version.feature_source is None else self.resolve_source(version.feature_source)
            except (RegistryError, ArtifactIntegrityError, SignatureMismatchError) as exc:
                if getattr(exc, "status", 500) != 404:  # unknown versions are not remembered
                    self._failed[key] = (self.monotonic(), exc)
                    if self.on_load_failure is not None:
                        self.on_load_failure(name, number, exc)
                raise
            quality = None if self.load_quality is None else self.load_quality(name, number, model.signature.features)
            loaded = LoadedModel(version, model, source, quality)
            self._loaded[key] = loaded
            self._failed.pop(key, None)
            return loaded

    def __len__(self) -> int:
        return len(self._loaded)


class TTLCache:
    """Values by key, reloaded after ``ttl_s`` seconds (``ttl_s`` 0: always reloaded)."""

    def __init__(self, ttl_s: float, monotonic: Monotonic = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.monotonic = monotonic
        self._values: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any, load: Callable[[], Any]) -> Any:
        now = self.monotonic()
        hit = self._values.get(key)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        value = load()
        if self.ttl_s > 0:
            self._values[key] = (now, value)
        return value


def load_error(exc: Exception, name: str, number: int) -> ApiError:
    """The API answer when a version cannot be loaded (5xx answers name the model and version)."""
    if isinstance(exc, RegistryError) and exc.status < 500:
        return exc.to_api_error()
    where = {"model": name, "version": number}
    if isinstance(exc, ArtifactIntegrityError):
        return ApiError(500, "artifact_integrity", f"{name} version {number}: the artifact's sha256 does not "
                        "match the registry's; it was not loaded", extra=where)
    code = getattr(exc, "code", "artifact_invalid")
    return ApiError(500, code, f"{name} version {number}: {exc}", extra=where)


@dataclass
class RowResult:
    """One answered row: the response fields plus what is only logged."""

    index: int
    request_id: str
    entity_id: str | None
    version: int
    variant: str
    features: dict[str, Any]
    request_inputs: Mapping[str, Any]
    warnings: list[dict[str, Any]] = field(default_factory=list)
    probability: float = 0.0
    label: int = 0
    threshold: float = 0.5
    imputed: tuple[str, ...] = ()
    missing_policy: str = "impute"
    shadow: dict[str, Any] | None = None
    shadow_features: dict[str, Any] | None = None
    fallback: dict[str, Any] | None = None
    logged: bool = True
    quality: dict[str, list[str]] | None = None  # data-quality flags (mlops.monitoring.data_quality)
    experiment: Any = None  # mlops.experiments.router.Assignment, when an experiment routed the row

    def response(self, model: str) -> dict[str, Any]:
        """The row as the API returns it."""
        out: dict[str, Any] = {
            "request_id": self.request_id, "model": model, "version": self.version, "variant": self.variant,
            "probability": self.probability, "label": self.label, "threshold": self.threshold,
            "missing_features": {"policy": self.missing_policy, "imputed": list(self.imputed)},
            "warnings": self.warnings,
        }
        if self.entity_id is not None:
            out["entity_id"] = self.entity_id
        if self.experiment is not None:
            out["experiment"] = self.experiment.to_api()
        return out

    def log_row(self, model: str, latency_ms: float) -> dict[str, Any]:
        """The row as `prediction_log.prediction_item` takes it."""
        return {
            "request_id": self.request_id, "model": model, "version": self.version, "variant": self.variant,
            "entity_id": self.entity_id, "inputs": self.features, "request_inputs": dict(self.request_inputs),
            "probability": self.probability, "label": self.label, "threshold": self.threshold,
            "latency_ms": latency_ms, "imputed": list(self.imputed), "missing_policy": self.missing_policy,
            "warnings": self.warnings, "shadow": self.shadow, "fallback": self.fallback, "quality": self.quality,
            "experiment": None if self.experiment is None else self.experiment.to_api(),
        }


@dataclass
class VersionStats:
    """What one request did with one version, for its metrics."""

    predictions: int = 0
    positives: int = 0
    errors: int = 0
    variant: str = ""


@dataclass
class PredictOutcome:
    """A request's answered rows and the per-version counts (shadow versions included)."""

    model: str
    rows: list[RowResult]
    stats: dict[int, VersionStats]


class Predictor:
    """Answers prediction requests; see the module docstring.

    ``registry`` reads versions and aliases (a `RegistryStore`), ``deployments`` reads the
    deployment record (a `DeploymentStore`), ``online`` reads the online store (an
    `OnlineStore`, or a callable returning one: it is only needed for entity ids).
    """

    def __init__(self, registry: Any, deployments: Any, online: Any = None, *, cache_ttl_s: float = 5.0,
                 failure_ttl_s: float = 10.0, monotonic: Monotonic = time.monotonic,
                 faults_enabled: bool = False, sleep: Callable[[float], None] = time.sleep,
                 load_quality: Callable[[str, int, Sequence[str]], Any] | None = None,
                 experiments: Any = None, experiment_cache_s: float = 1.0,
                 on_load_failure: Callable[[str, int, Exception], None] | None = None) -> None:
        self.registry = registry
        self.experiments = experiments  # .live(model) -> mlops.experiments.router.LiveExperiment | None
        self._experiment_cache = TTLCache(experiment_cache_s, monotonic)
        self.faults_enabled = faults_enabled
        self._sleep = sleep
        self.deployments = deployments
        self._online = online
        self.models = ModelCache(registry, failure_ttl_s=failure_ttl_s, monotonic=monotonic, load_quality=load_quality,
                                 on_load_failure=on_load_failure)
        self._deployment_cache = TTLCache(cache_ttl_s, monotonic)
        self._alias_cache = TTLCache(cache_ttl_s, monotonic)

    @property
    def online(self) -> Any:
        if callable(self._online) and not hasattr(self._online, "read_many"):
            self._online = self._online()
        return self._online

    # -- choosing versions -----------------------------------------------------------------
    def _deployment(self, model: str) -> Deployment | None:
        return self._deployment_cache.get(model, lambda: self.deployments.get(model))

    def _load(self, name: str, number: int) -> LoadedModel:
        try:
            return self.models.get(name, number)
        except (RegistryError, ArtifactIntegrityError, SignatureMismatchError) as exc:
            raise load_error(exc, name, number) from exc

    def _assign(self, req: PredictRequest, row_ids: Sequence[str], now: datetime) -> list[Any]:
        """Per row, the running experiment's assignment (None: not enrolled); [] when no
        experiment is live for the model, or the request pins a version or an alias."""
        if self.experiments is None or req.version is not None or req.alias is not None:
            return []
        live = self._experiment_cache.get(req.model, lambda: self.experiments.live(req.model))
        if live is None or not live.is_live(now):
            return []
        return [live.pick(row.entity_id or row_id) for row, row_id in zip(req.rows, row_ids)]

    def _routes(self, req: PredictRequest, row_ids: Sequence[str], assigned: Sequence[Any] = (),
                deployment: Deployment | None = None) -> tuple[list[tuple[int, str]], int | None]:
        """(version, variant) per row by ``deployment`` (the record read once per request), and
        the shadow version (None when pinned or none); rows an experiment ``assigned`` get its
        variant."""
        if req.version is not None:
            self._load(req.model, req.version)  # 404 for an unknown version
            return [(req.version, "pinned")] * len(req.rows), None
        if req.alias is not None:
            try:
                number = self._alias_cache.get((req.model, req.alias), lambda: self.registry.get_alias(req.model, req.alias))
            except RegistryError as exc:
                raise exc.to_api_error() from exc
            return [(number, req.alias)] * len(req.rows), None
        routes: list[tuple[int, str]] = []
        for i, (row, row_id) in enumerate(zip(req.rows, row_ids)):
            if assigned and assigned[i] is not None:
                routes.append((assigned[i].version, assigned[i].variant))
                continue
            chosen = None if deployment is None else route(deployment, row.entity_id or row_id)
            if chosen is None:
                try:
                    self.registry.get_model(req.model)
                except RegistryError as exc:
                    raise exc.to_api_error() from exc
                raise ApiError(404, "not_deployed", f"model {req.model!r} has no champion to serve: promote a "
                               "version with POST /models/{name}/aliases/champion, or pin a version",
                               [{"field": "model", "problem": "nothing deployed"}])
            routes.append((chosen.version, chosen.variant))
        shadow = deployment.shadow if deployment is not None else None
        return routes, shadow

    def _load_routed(self, req: PredictRequest, routes: list[tuple[int, str]], row_ids: Sequence[str],
                     deployment: Deployment | None
                     ) -> tuple[dict[int, LoadedModel], list[tuple[int, str]], dict[int, dict[str, Any]], set[int]]:
        """Load the routed versions; reroute a failing challenger's rows to the champion and
        apply injected faults (see the module docstring). Returns the loaded versions, the
        final routes, the fallbacks by row index and the rows whose log is dropped."""
        challenger = deployment.effective_challenger if deployment is not None else None
        can_fall_back = challenger is not None and deployment is not None and deployment.champion is not None
        faults = deployment.faults if deployment is not None and self.faults_enabled else {}
        loaded: dict[int, LoadedModel] = {}
        failed: dict[int, str] = {}
        for number in dict.fromkeys(v for v, _ in routes):
            try:
                loaded[number] = self._load(req.model, number)
            except ApiError as exc:
                if not (can_fall_back and number == challenger):
                    raise
                failed[number] = f"{exc.code}: {exc.message}"
        final: list[tuple[int, str]] = []
        fallbacks: dict[int, dict[str, Any]] = {}
        for i, (number, variant) in enumerate(routes):
            error = failed.get(number)
            fault = faults.get(number)
            if error is None and fault is not None and fault.fails(row_ids[i]):
                if not (can_fall_back and number == challenger):
                    raise ApiError(500, "model_error", f"version {number} failed (injected fault)",
                                   extra={"version": number})
                error = "injected_fault: fault injection made this version fail"
            if error is not None:
                fallbacks[i] = {"version": number, "error": error}
                number, variant = deployment.champion, "champion"  # type: ignore[union-attr]
            final.append((number, variant))
        for number in dict.fromkeys(v for v, _ in final):
            if number not in loaded:
                loaded[number] = self._load(req.model, number)
        loaded = {number: loaded[number] for number in dict.fromkeys(v for v, _ in final)}
        delay_ms = max((faults[v].delay_ms for v in loaded if v in faults), default=0.0)
        if delay_ms > 0:
            self._sleep(delay_ms / 1000.0)
        dropped = {i for i, (number, _) in enumerate(final) if number in faults and faults[number].drops_log(row_ids[i])}
        return loaded, final, fallbacks, dropped

    # -- features --------------------------------------------------------------------------
    def _entity_features(self, req: PredictRequest, results: list[RowResult], loaded: Mapping[int, LoadedModel],
                         shadow: LoadedModel | None, now: datetime) -> None:
        """Read the online store for rows that give an entity id and no features."""
        problems: dict[str, str] = {}
        by_source: dict[tuple, list[tuple[RowResult, FeatureSource, FeatureSource | None]]] = {}
        for res in results:
            row = req.rows[res.index]
            if row.features is not None:
                continue
            source = loaded[res.version].source
            if source is None:
                problems[_field(req, res.index, "features")] = (
                    f"{req.model} version {res.version} takes explicit features only (it was not trained "
                    "from feature views); send features")
                continue
            for key in source.missing_keys(row.request):
                problems[_field(req, res.index, f"request.{key}")] = (
                    f"required: the feature view(s) of this model are keyed by {key} as well")
            extra = None
            if shadow is not None and shadow.source is not None and not shadow.source.missing_keys(row.request):
                extra = shadow.source  # the shadow's views are read too, when the request can key them
            merged = _merge_sources([source] if extra is None else [source, extra])
            by_source.setdefault(tuple(v.name for v in merged.views), []).append((res, source, extra))
        if problems:
            raise ApiError.invalid(problems)
        for group in by_source.values():
            first, extra = group[0][1], group[0][2]
            views = _merge_sources([first] if extra is None else [first, extra]).views
            keys = [src.entity_key(res.entity_id or "", req.rows[res.index].request) for res, src, _ in group]
            answers = self.online.read_many(keys, list(views), now)
            for (res, src, shadow_src), answer in zip(group, answers):
                request = req.rows[res.index].request
                res.features, res.warnings = assemble(src, res.entity_id or "", answer, request)
                if shadow_src is not None:  # what the shadow sees; its warnings are not returned
                    res.shadow_features = assemble(shadow_src, res.entity_id or "", answer, request)[0]

    # -- scoring ---------------------------------------------------------------------------
    def predict(self, req: PredictRequest, request_id: str, now: datetime) -> PredictOutcome:
        """Answer every row of ``req``; ApiError for what the client must fix or cannot get."""
        single = len(req.rows) == 1
        row_ids = [f"{request_id}-{i}" for i in range(len(req.rows))] if req.batch else [request_id]
        assigned = self._assign(req, row_ids, now)
        # one read of the deployment record per request: routing and fallback must agree even
        # when a rollout moves the weights meanwhile
        deployment = self._deployment(req.model) if req.version is None and req.alias is None else None
        routes, shadow_number = self._routes(req, row_ids, assigned, deployment)
        loaded, routes, fallbacks, dropped = self._load_routed(req, routes, row_ids, deployment)
        stats: dict[int, VersionStats] = {}
        shadow = None
        if shadow_number is not None and shadow_number not in loaded:
            try:
                shadow = self.models.get(req.model, shadow_number)
            except Exception as exc:  # the shadow never affects the answer
                shadow_error = f"{type(exc).__name__}: {exc}"
            else:
                shadow_error = None
        else:
            shadow_number = None
            shadow_error = None
        results = [
            RowResult(i, row_ids[i], row.entity_id, version, variant,
                      dict(row.features) if row.features is not None else {}, row.request)
            for i, (row, (version, variant)) in enumerate(zip(req.rows, routes))
        ]
        for res, assignment in zip(results, assigned):
            res.experiment = assignment
        if any(r.features is None for r in req.rows):
            self._entity_features(req, results, loaded, shadow, now)
        for index, fallback in fallbacks.items():
            results[index].experiment = None  # the champion answered, not the experiment's variant
            results[index].fallback = fallback
            results[index].warnings.append({"code": "fallback", "message": (
                f"version {fallback['version']} (challenger) could not answer; the champion answered")})
            stats.setdefault(fallback["version"], VersionStats(variant="challenger")).errors += 1
        for index in dropped:
            results[index].logged = False
        for res in results:
            row = req.rows[res.index]
            if row.features is not None:
                lm = loaded[res.version]
                res.features = explicit_with_on_demand(lm.source, res.features, row.request, lm.model.signature.features)
        self._score(req, results, loaded, single, stats)
        if shadow_number is not None:
            self._shadow(results, shadow, shadow_number, shadow_error, stats)
        return PredictOutcome(req.model, results, stats)

    def _score(self, req: PredictRequest, results: list[RowResult], loaded: Mapping[int, LoadedModel],
               single: bool, stats: dict[int, VersionStats]) -> None:
        errors: dict[str, str] = {}
        refused_online = False
        for number, lm in loaded.items():
            group = [r for r in results if r.version == number]
            explicit = [req.rows[r.index].features is not None for r in group]
            try:
                if single:
                    p = lm.model.predict_one(group[0].features, allow_extra=not explicit[0])
                    probabilities, imputed = [p.probability], [p.imputed]
                elif all(explicit) or not any(explicit):
                    batch = lm.model.predict_batch([r.features for r in group], allow_extra=not explicit[0])
                    probabilities, imputed = list(batch.probabilities), list(batch.imputed)
                else:
                    probabilities, imputed = [], []
                    sub_errors: dict[str, str] = {}
                    for j, (r, exp) in enumerate(zip(group, explicit)):
                        try:
                            p = lm.model.predict_one(r.features, allow_extra=not exp)
                            probabilities.append(p.probability)
                            imputed.append(p.imputed)
                        except FeatureValidationError as exc:
                            sub_errors.update({f"rows[{j}].{k}": v for k, v in exc.errors.items()})
                    if sub_errors:
                        raise FeatureValidationError(sub_errors)
            except FeatureValidationError as exc:
                for key, problem in exc.errors.items():
                    if single:
                        index, name = 0, key
                    else:
                        m = _ROW_PREFIX.match(key)
                        index, name = (group[int(m.group(1))].index, key[m.end():]) if m else (0, key)
                    errors[_field(req, index, f"features.{name}")] = problem
                    if req.rows[index].features is None:
                        refused_online = True
                continue
            threshold = lm.version.threshold
            st = stats.setdefault(number, VersionStats(variant=group[0].variant))
            for r, p, imp in zip(group, probabilities, imputed):
                r.probability = float(p)
                r.label = int(r.probability >= threshold)
                r.threshold = threshold
                r.imputed = imp
                r.missing_policy = lm.version.missing_policy
                st.predictions += 1
                st.positives += r.label
                flags = None if lm.quality is None else lm.quality.check(r.features)
                if flags:
                    r.warnings.append(flags.warning())
                    r.quality = flags.to_log()
        if errors:
            missing_only = all(p == "missing" for p in errors.values())
            if missing_only:
                policy = "refuse"
                status = 422 if refused_online else 400
                raise ApiError(status, "missing_features",
                               f"the model refuses missing features ({len(errors)} missing); its missing-value "
                               "policy is refuse", [{"field": f, "problem": p} for f, p in errors.items()],
                               {"missing_policy": policy})
            raise ApiError.invalid(errors, code="invalid_features")

    def _shadow(self, results: list[RowResult], shadow: LoadedModel | None, number: int, load_error_text: str | None,
                stats: dict[int, VersionStats]) -> None:
        st = stats.setdefault(number, VersionStats(variant="shadow"))
        if shadow is None:
            for r in results:
                r.shadow = {"version": number, "error": load_error_text}
            st.errors += len(results)
            return
        for r in results:
            t0 = time.perf_counter()
            try:
                p = shadow.model.predict_one(r.shadow_features or r.features, allow_extra=True)
            except Exception as exc:  # logged, never returned
                r.shadow = {"version": number, "error": f"{type(exc).__name__}: {exc}"}
                st.errors += 1
                continue
            label = int(p.probability >= shadow.version.threshold)
            r.shadow = {"version": number, "probability": p.probability, "label": label,
                        "threshold": shadow.version.threshold, "latency_ms": (time.perf_counter() - t0) * 1000}
            st.predictions += 1
            st.positives += label


def _field(req: PredictRequest, index: int, name: str) -> str:
    return f"rows[{index}].{name}" if req.batch else name


def _merge_sources(sources: Sequence[FeatureSource]) -> FeatureSource:
    if len(sources) == 1:
        return sources[0]
    views = {}
    on_demand = {}
    for s in sources:
        views.update({v.name: v for v in s.views})
        on_demand.update({v.name: v for v in s.on_demand})
    first = sources[0]
    return FeatureSource(first.entity, first.join_key, tuple(views.values()), tuple(on_demand.values()))

