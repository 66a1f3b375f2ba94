"""``GET /features/{entity_id}?views=a,b``: the lookup request, and on-demand features.

The path's ``entity_id`` is the key of every requested view's (single) join key; a query
parameter named after a join key overrides it for the views keyed by that entity, so one
request can read a device's parametrics and its tester's health:
``/features/D1?views=device_parametrics,tester_health&tester_id=T7``. Key values are typed by
the entity (an int entity's key must parse as an integer).

An on-demand view among ``views`` is computed from the stored features it projects (their
views are read too, in the same BatchGetItem) and from request data passed as query parameters
named after its request fields (``&vdd_setpoint=1.0``), parsed by the field's type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlops.features.catalog import CATALOG, Catalog
from mlops.features.definitions import FeatureView, OnDemandFeatureView, Projection, RequestSource
from mlops.features.errors import BadRequest
from mlops.features.online_store import OnlineStore

MAX_VIEWS = 20


@dataclass(frozen=True)
class LookupRequest:
    """A parsed lookup: the entity's keys, the stored views to read (requested ones first, then
    those on-demand views need), the on-demand views, and typed request data."""

    entity_id: str
    entity: dict[str, Any]
    requested: tuple[str, ...]
    stored: tuple[FeatureView, ...]
    on_demand: tuple[OnDemandFeatureView, ...]
    request_data: dict[str, Any]


def _typed(text: str, dtype: str, where: str) -> Any:
    try:
        if dtype == "float":
            return float(text)
        if dtype == "int":
            return int(text)
        if dtype == "bool":
            low = text.strip().lower()
            if low in ("true", "1"):
                return True
            if low in ("false", "0"):
                return False
            raise ValueError(text)
    except ValueError:
        raise BadRequest("invalid_parameter", f"{where} must be a {dtype}",
                         [{"field": where, "problem": f"expected {dtype}, got {text[:40]!r}"}]) from None
    return text


def parse_lookup(entity_id: str | None, query: Mapping[str, str], catalog: Catalog = CATALOG) -> LookupRequest:
    """Check a lookup request; :class:`BadRequest` names what to fix."""
    if not entity_id:
        raise BadRequest("invalid_parameter", "the path needs an entity id", [{"field": "entity_id", "problem": "required"}])
    names = [n.strip() for n in (query.get("views") or "").split(",") if n.strip()]
    if not names:
        raise BadRequest("missing_parameter", "name the feature views to read: ?views=a,b",
                         [{"field": "views", "problem": "required: a comma-separated list of feature views"}])
    if len(names) > MAX_VIEWS:
        raise BadRequest("invalid_parameter", f"at most {MAX_VIEWS} views per lookup",
                         [{"field": "views", "problem": f"{len(names)} views"}])
    requested = list(dict.fromkeys(names))
    views = [catalog.view(n) for n in requested]
    stored: list[FeatureView] = [v for v in views if isinstance(v, FeatureView)]
    on_demand = [v for v in views if isinstance(v, OnDemandFeatureView)]
    request_data: dict[str, Any] = {}
    for odv in on_demand:
        for source in odv.sources:
            if isinstance(source, Projection):
                view = catalog.feature_view(source.view)
                if view not in stored:
                    stored.append(view)
            elif isinstance(source, RequestSource):
                for f in source.fields:
                    if f.name in query:
                        request_data[f.name] = _typed(query[f.name], f.dtype, f.name)
    entity: dict[str, Any] = {}
    for view in stored:
        for e in view.entities:
            if e.join_key in entity:
                continue
            text = query.get(e.join_key, entity_id)
            entity[e.join_key] = _typed(text, "int", e.join_key) if e.value_type == "int" else text
    for view in stored:
        if len(view.entities) > 1 and not all(e.join_key in query for e in view.entities[1:]):
            missing = [e.join_key for e in view.entities if e.join_key not in query]
            raise BadRequest("missing_parameter", f"view {view.name!r} has several join keys",
                             [{"field": k, "problem": "required by view " + view.name} for k in missing])
    return LookupRequest(entity_id, entity, tuple(requested), tuple(stored), tuple(on_demand), request_data)


def lookup(store: OnlineStore, request: LookupRequest, now: datetime | int) -> dict[str, Any]:
    """Read the stored views of a lookup (one round trip) and compute its on-demand views.

    Answer: ``{"entity_id", "entity", "views": {name: {...}}}`` for the requested views only,
    stored ones as :meth:`~mlops.features.online_store.ViewFeatures.to_dict`, on-demand ones as
    ``{"status": "computed", "values": {...}, "missing_inputs": [...]}``.
    """
    answer = store.read(request.entity, list(request.stored), now)
    views: dict[str, Any] = {}
    for name in request.requested:
        if name in answer.views:
            views[name] = answer.views[name].to_dict()
            continue
        odv = next(v for v in request.on_demand if v.name == name)
        inputs: dict[str, Any] = dict(request.request_data)
        for source in odv.sources:
            if isinstance(source, Projection):
                stored = answer.views[source.view].values
                inputs.update({f.name: stored.get(f.name) for f in source.fields})
        missing = [n for n in odv.input_names if inputs.get(n) is None]
        views[name] = {"status": "computed", "values": odv.compute(inputs), "missing_inputs": missing}
    return {"entity_id": request.entity_id, "entity": request.entity, "views": views}
