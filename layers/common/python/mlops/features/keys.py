"""Entity keys of the online store, and the latest row per entity (pure).

The online store keeps one item per entity per view: its partition key is the entity key
encoded as text, ``device_id=D1`` (several join keys: ``lot_id=L7|wafer_id=3``), in the
view's entity order; ``%``, ``|`` and ``=`` inside a value are percent-encoded so that
the encoding is one-to-one. The join key names make items readable in the console and keep a
device ``7`` and a tester ``7`` apart.

:func:`latest_rows` keeps, per entity, the row with the latest ``event_timestamp``; of rows
with equal times the last one in input order wins. That is the tie rule of
:func:`mlops.features.pit.pit_join` and of the online store's conditional write (a row is
written when its time is at or after the stored one), so the online store at time ``t``
answers what the point-in-time join answers at ``t``.

>>> from datetime import timedelta
>>> from mlops.features.definitions import Entity, FeatureView, Field
>>> v = FeatureView("v", [Entity("d", "device_id")], [Field("x", "float")], timedelta(days=1), "s")
>>> encode_entity(v, "D|1")
'device_id=D%7C1'
>>> rows = [{"device_id": "a", "event_timestamp": 5, "x": 1.0}, {"device_id": "a", "event_timestamp": 5, "x": 2.0},
...         {"device_id": "a", "event_timestamp": 4, "x": 3.0}]
>>> latest_rows(v, rows)["device_id=a"]["x"]
2.0
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Union

from mlops.features.definitions import EVENT_TIMESTAMP, FeatureView

#: An entity as callers name it: the key value of a single-key view, or ``{join key: value}``.
EntityKey = Union[str, int, Mapping[str, Any]]


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("|", "%7C").replace("=", "%3D")


def entity_values(view: FeatureView, entity: EntityKey) -> dict[str, Any]:
    """The join key values of ``entity`` for ``view`` (ValueError when one is missing or mistyped)."""
    if isinstance(entity, Mapping):
        values = {}
        for e in view.entities:
            if e.join_key not in entity or entity[e.join_key] is None:
                raise ValueError(f"view {view.name!r} needs the join key {e.join_key!r}")
            values[e.join_key] = entity[e.join_key]
    else:
        if len(view.entities) != 1:
            keys = ", ".join(view.join_keys)
            raise ValueError(f"view {view.name!r} has several join keys ({keys}): pass them as a mapping")
        values = {view.entities[0].join_key: entity}
    for e in view.entities:
        v = values[e.join_key]
        ok = isinstance(v, str) and v != "" if e.value_type == "str" else isinstance(v, int) and not isinstance(v, bool)
        if not ok:
            raise ValueError(f"join key {e.join_key!r} of view {view.name!r} must be a non-empty {e.value_type}, got {v!r}")
    return values


def encode_entity(view: FeatureView, entity: EntityKey) -> str:
    """The online store's partition key for ``entity`` in ``view`` (see the module docstring)."""
    values = entity_values(view, entity)
    return "|".join(f"{e.join_key}={_escape(str(values[e.join_key]))}" for e in view.entities)


def row_entity_key(view: FeatureView, row: Mapping[str, Any]) -> str:
    """:func:`encode_entity` of a validated row (its join key columns)."""
    return "|".join(f"{k}={_escape(str(row[k]))}" for k in view.join_keys)


def latest_rows(view: FeatureView, rows: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Per entity key, the row with the latest ``event_timestamp`` (int epoch microseconds, as
    validation produces); ties go to the row that comes last. Keys keep first-seen order."""
    latest: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        key = row_entity_key(view, row)
        kept = latest.get(key)
        if kept is None or row[EVENT_TIMESTAMP] >= kept[EVENT_TIMESTAMP]:
            latest[key] = row
    return latest
