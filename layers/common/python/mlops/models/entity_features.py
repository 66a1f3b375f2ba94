"""Features of an entity for a model: the online store's answer plus on-demand features.

A model trained from feature views records its feature source with the version::

    {"entity": "device", "join_key": "device_id",
     "views": ["device_parametrics"], "on_demand": ["vdd_idd_ratio"]}

At prediction time the views are read from the online store for the entity (the entity id is
the value of ``join_key``; request fields named like another view's join key, such as
``tester_id``, complete a composite key), then each on-demand view computes its outputs from
the stored values and the request's inputs. What was missing or stale is reported as warnings
that the API returns: a view past its TTL or never written is served as missing (the model's
missing-value policy then imputes or refuses). Pure: the online answer comes in as a value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlops.features.catalog import CATALOG, Catalog
from mlops.features.definitions import FeatureView, OnDemandFeatureView, RequestSource


@dataclass(frozen=True)
class FeatureSource:
    """Where a model's features come from, resolved against the catalog."""

    entity: str
    join_key: str
    views: tuple[FeatureView, ...]
    on_demand: tuple[OnDemandFeatureView, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The form stored with a version."""
        return {"entity": self.entity, "join_key": self.join_key, "views": [v.name for v in self.views],
                "on_demand": [v.name for v in self.on_demand]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], catalog: Catalog = CATALOG) -> "FeatureSource":
        """Resolve a stored feature source (view names) against the catalog."""
        views = tuple(catalog.feature_view(name) for name in data.get("views", ()))
        on_demand = []
        for name in data.get("on_demand", ()):
            view = catalog.view(name)
            if not isinstance(view, OnDemandFeatureView):
                raise ValueError(f"{name!r} is not an on-demand view")
            on_demand.append(view)
        return cls(data["entity"], data["join_key"], views, tuple(on_demand))

    @property
    def join_keys(self) -> tuple[str, ...]:
        """Every join key the views need (the entity's first)."""
        keys = [self.join_key]
        for view in self.views:
            keys += [k for k in view.join_keys if k not in keys]
        return tuple(keys)

    def entity_key(self, entity_id: str, request: Mapping[str, Any]) -> str | dict[str, Any]:
        """The online store's entity key: the id alone, or ``{join key: value}`` when a view
        needs more keys (taken from the request's fields of the same name)."""
        if self.join_keys == (self.join_key,):
            return entity_id
        key: dict[str, Any] = {self.join_key: entity_id}
        for name in self.join_keys[1:]:
            if name in request:
                key[name] = request[name]
        return key

    def missing_keys(self, request: Mapping[str, Any]) -> list[str]:
        """Join keys (besides the entity's) that the request does not give."""
        return [k for k in self.join_keys[1:] if request.get(k) is None]


def source_from_views(views: Sequence[FeatureView], on_demand: Sequence[OnDemandFeatureView] = (),
                      entity: str | None = None) -> FeatureSource:
    """The feature source of a model trained on these views: the entity is the first view's
    first entity unless named."""
    if not views:
        raise ValueError("a feature source needs at least one feature view")
    chosen = None
    for view in views:
        for e in view.entities:
            if entity is None or e.name == entity:
                chosen = e
                break
        if chosen is not None:
            break
    if chosen is None:
        raise ValueError(f"no view is keyed by entity {entity!r}")
    return FeatureSource(chosen.name, chosen.join_key, tuple(views), tuple(on_demand))


def _request_inputs(view: OnDemandFeatureView) -> list[str]:
    return [f.name for s in view.sources if isinstance(s, RequestSource) for f in s.fields]


def _age(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds:.0f} seconds"


def assemble(source: FeatureSource, entity_id: str, online: Any, request: Mapping[str, Any]
             ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The feature values for one entity and the warnings to return.

    ``online`` is the online store's answer for the entity (`OnlineFeatures`: ``views`` maps a
    view name to its status, values, event time and freshness). Returns ({feature: value or
    None}, warnings); each warning has ``code`` (``stale_features``, ``missing_features`` or
    ``missing_request_input``), ``view`` and a ``message``.
    """
    values: dict[str, Any] = {}
    warnings: list[dict[str, Any]] = []
    for view in source.views:
        answer = online.views[view.name]
        values.update(answer.values)
        if answer.status == "expired":
            age = answer.freshness.total_seconds() if answer.freshness is not None else None
            warnings.append({
                "code": "stale_features", "view": view.name, "entity_id": entity_id,
                "event_timestamp": None if answer.event_timestamp is None
                else answer.event_timestamp.isoformat().replace("+00:00", "Z"),
                "age_seconds": age, "ttl_seconds": view.ttl.total_seconds(),
                "message": f"{view.name} features of {entity_id} are {_age(age or 0)} old, past the view's TTL "
                           f"of {_age(view.ttl.total_seconds())}: served as missing",
            })
        elif answer.status != "ok":
            warnings.append({
                "code": "missing_features", "view": view.name, "entity_id": entity_id,
                "message": f"no {view.name} features are stored for {entity_id}: served as missing",
            })
    for odfv in source.on_demand:
        absent = [n for n in _request_inputs(odfv) if request.get(n) is None]
        if absent:
            warnings.append({
                "code": "missing_request_input", "view": odfv.name, "fields": absent,
                "message": f"request input(s) {', '.join(absent)} of on-demand view {odfv.name} not given: "
                           "the features that need them are missing",
            })
        values.update(odfv.compute({**values, **request}))
    return values, warnings


def explicit_with_on_demand(source: FeatureSource | None, features: Mapping[str, Any],
                            request: Mapping[str, Any], wanted: Iterable[str]) -> dict[str, Any]:
    """Explicit features, completed with on-demand features the model wants but the client did
    not send (computed from the explicit values and the request's inputs)."""
    out = dict(features)
    if source is None or not source.on_demand:
        return out
    wanted_set = set(wanted)
    for odfv in source.on_demand:
        outputs = [n for n in odfv.feature_names if n in wanted_set and n not in out]
        if outputs:
            computed = odfv.compute({**out, **request})
            for name in outputs:
                out[name] = computed[name]
    return out
