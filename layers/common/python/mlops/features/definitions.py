"""Declarative feature definitions: entities, feature views and on-demand feature views.

Users coming from Feast write the same things here: an :class:`Entity` names a join key, a
:class:`FeatureView` is a typed schema of :class:`Field` s keyed by entities with a TTL and a
source, and an :class:`OnDemandFeatureView` computes features at request time from request
data and stored features with a pure, registered transform.

Definitions are plain frozen values. Each serialises to a canonical JSON dict
(:meth:`to_dict`), whose SHA-256 is its :func:`content_hash`; the stored registry records a
new version exactly when the hash changes, and :func:`diff` says what changed. A transform is
code and cannot be JSON, so it is registered by name (:func:`register_transform`) and a
definition stores that name plus a hash of the function's source code: editing the function
changes the view's hash and so makes a new version.

>>> device = Entity("device", join_key="device_id")
>>> view = FeatureView("v", [device], [Field("vdd", "float")], ttl=timedelta(days=1), source="s")
>>> view.join_keys, view.feature_names
(('device_id',), ('vdd',))
>>> view2 = FeatureView("v", [device], [Field("vdd", "int")], ttl=timedelta(days=1), source="s")
>>> content_hash(view) == content_hash(view2)
False
>>> diff(view, view2).retyped
{'vdd': ('float', 'int')}
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Union

#: The value types a field or an entity key can have. ``timestamp`` values are normalised to
#: epoch microseconds (int) on ingestion.
Dtype = Literal["float", "int", "str", "bool", "timestamp"]
DTYPES: tuple[str, ...] = ("float", "int", "str", "bool", "timestamp")
KEY_TYPES: tuple[str, ...] = ("str", "int")

#: The column every ingested row carries: when the values were true.
EVENT_TIMESTAMP = "event_timestamp"
#: Version of the serialised form; bump it when :meth:`to_dict` changes shape.
FORMAT_VERSION = 1

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

OnDemandInputs = Mapping[str, Any]
Transform = Callable[[OnDemandInputs], dict[str, Any]]


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{kind} name {name!r} must be an identifier ([A-Za-z_][A-Za-z0-9_]*)")


def _ttl_to_json(ttl: timedelta) -> int | float:
    seconds = ttl.total_seconds()
    return int(seconds) if seconds == int(seconds) else seconds


@dataclass(frozen=True)
class Entity:
    """A thing features describe (a device, a tester), identified by one join key column."""

    name: str
    join_key: str
    value_type: Literal["str", "int"] = "str"
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("entity", self.name)
        _check_name("join key", self.join_key)
        if self.join_key == EVENT_TIMESTAMP:
            raise ValueError(f"entity {self.name!r}: join key cannot be {EVENT_TIMESTAMP!r}")
        if self.value_type not in KEY_TYPES:
            raise ValueError(f"entity {self.name!r}: value_type must be one of {KEY_TYPES}")

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON form (see :func:`canonical_json`)."""
        return {
            "kind": "entity",
            "format": FORMAT_VERSION,
            "name": self.name,
            "join_key": self.join_key,
            "value_type": self.value_type,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Entity":
        """Rebuild an entity from :meth:`to_dict` output."""
        _expect_kind(data, "entity")
        return cls(data["name"], data["join_key"], data["value_type"], data.get("description", ""))


@dataclass(frozen=True)
class Field:
    """One typed feature column with optional constraints checked on ingestion.

    ``required`` means present and not null in every row. ``min``/``max`` are inclusive bounds
    (numeric dtypes only); ``allowed`` is a closed set of values. Float fields reject NaN
    unless ``allow_nan`` and always reject +-inf: a missing value is sent as null or left out.
    """

    name: str
    dtype: Dtype
    required: bool = False
    min: float | int | None = None
    max: float | int | None = None
    allowed: tuple[Any, ...] | None = None
    allow_nan: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        _check_name("field", self.name)
        if self.dtype not in DTYPES:
            raise ValueError(f"field {self.name!r}: dtype {self.dtype!r} is not one of {DTYPES}")
        numeric = self.dtype in ("float", "int")
        if (self.min is not None or self.max is not None) and not numeric:
            raise ValueError(f"field {self.name!r}: min/max only apply to float and int fields")
        if self.allow_nan and self.dtype != "float":
            raise ValueError(f"field {self.name!r}: allow_nan only applies to float fields")
        cast: Callable[[Any], Any] = float if self.dtype == "float" else int
        for attr in ("min", "max"):
            bound = getattr(self, attr)
            if bound is None:
                continue
            if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
                raise ValueError(f"field {self.name!r}: {attr} must be a finite number")
            if self.dtype == "int" and bound != int(bound):
                raise ValueError(f"field {self.name!r}: {attr} of an int field must be whole")
            object.__setattr__(self, attr, cast(bound))
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"field {self.name!r}: min {self.min} > max {self.max}")
        if self.allowed is not None:
            values = tuple(self.allowed)
            if not values:
                raise ValueError(f"field {self.name!r}: allowed must not be empty")
            for v in values:
                if not _is_dtype(v, self.dtype):
                    raise ValueError(f"field {self.name!r}: allowed value {v!r} is not a {self.dtype}")
            if self.dtype == "float":
                values = tuple(float(v) for v in values)
            # a set of values: canonical order so that declaration order does not change the hash
            object.__setattr__(self, "allowed", tuple(sorted(set(values))))

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON form of the field."""
        return {
            "name": self.name,
            "dtype": self.dtype,
            "required": self.required,
            "min": self.min,
            "max": self.max,
            "allowed": list(self.allowed) if self.allowed is not None else None,
            "allow_nan": self.allow_nan,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Field":
        """Rebuild a field from :meth:`to_dict` output."""
        allowed = data.get("allowed")
        return cls(
            data["name"],
            data["dtype"],
            required=data.get("required", False),
            min=data.get("min"),
            max=data.get("max"),
            allowed=tuple(allowed) if allowed is not None else None,
            allow_nan=data.get("allow_nan", False),
            description=data.get("description", ""),
        )


def _is_dtype(value: Any, dtype: str) -> bool:
    if dtype == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if dtype == "float":
        return isinstance(value, (int, float)) and math.isfinite(value)
    if dtype in ("int", "timestamp"):
        return isinstance(value, int)
    return isinstance(value, str)


def _check_unique(kind: str, owner: str, names: Iterable[str]) -> None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ValueError(f"{owner}: duplicate {kind} {n!r}")
        seen.add(n)


@dataclass(frozen=True)
class FeatureView:
    """A typed group of features keyed by entities, with a TTL and the source rows come from.

    The TTL bounds how old a value may be and still be served or joined: a value whose
    event time is more than ``ttl`` before the read (online) or the label time (offline) is
    missing. ``tags`` is free-form metadata (owner, team).
    """

    name: str
    entities: tuple[Entity, ...]
    schema: tuple[Field, ...]
    ttl: timedelta
    source: str
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name("feature view", self.name)
        object.__setattr__(self, "entities", tuple(self.entities))
        object.__setattr__(self, "schema", tuple(self.schema))
        object.__setattr__(self, "tags", dict(self.tags))
        if not self.entities:
            raise ValueError(f"feature view {self.name!r}: needs at least one entity")
        if not self.schema:
            raise ValueError(f"feature view {self.name!r}: needs at least one field")
        if not isinstance(self.ttl, timedelta) or self.ttl <= timedelta(0):
            raise ValueError(f"feature view {self.name!r}: ttl must be a positive timedelta")
        if not isinstance(self.source, str) or not self.source:
            raise ValueError(f"feature view {self.name!r}: source must be a non-empty string")
        _check_unique("entity", f"feature view {self.name!r}", (e.name for e in self.entities))
        _check_unique("join key", f"feature view {self.name!r}", self.join_keys)
        _check_unique("field", f"feature view {self.name!r}", self.feature_names)
        reserved = set(self.join_keys) | {EVENT_TIMESTAMP}
        for f in self.schema:
            if f.name in reserved:
                raise ValueError(f"feature view {self.name!r}: field {f.name!r} clashes with a key column")
        for k, v in self.tags.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise ValueError(f"feature view {self.name!r}: tags must map str to str")

    def __hash__(self) -> int:
        return hash(content_hash(self))

    @property
    def join_keys(self) -> tuple[str, ...]:
        """The key columns of a row, in entity order."""
        return tuple(e.join_key for e in self.entities)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The feature columns, in schema order (the order models see them in)."""
        return tuple(f.name for f in self.schema)

    def field(self, name: str) -> Field:
        """The field called ``name``; KeyError names the view when there is none."""
        for f in self.schema:
            if f.name == name:
                return f
        raise KeyError(f"feature view {self.name!r} has no feature {name!r}")

    def select(self, *names: str) -> "Projection":
        """A projection of some features, as an on-demand view's input (Feast's ``view[[...]]``)."""
        if not names:
            return Projection(self.name, self.schema)
        return Projection(self.name, tuple(self.field(n) for n in names))

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON form; field order is kept because models consume features in it."""
        return {
            "kind": "feature_view",
            "format": FORMAT_VERSION,
            "name": self.name,
            "entities": [e.to_dict() for e in self.entities],
            "schema": [f.to_dict() for f in self.schema],
            "ttl_seconds": _ttl_to_json(self.ttl),
            "source": self.source,
            "description": self.description,
            "tags": dict(sorted(self.tags.items())),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FeatureView":
        """Rebuild a view from :meth:`to_dict` output (as read back from the registry)."""
        _expect_kind(data, "feature_view")
        return cls(
            data["name"],
            tuple(Entity.from_dict(e) for e in data["entities"]),
            tuple(Field.from_dict(f) for f in data["schema"]),
            ttl=timedelta(seconds=data["ttl_seconds"]),
            source=data["source"],
            description=data.get("description", ""),
            tags=data.get("tags", {}),
        )


@dataclass(frozen=True)
class Projection:
    """Some fields of a feature view, used as inputs of an on-demand view."""

    view: str
    fields: tuple[Field, ...]

    def __post_init__(self) -> None:
        _check_name("feature view", self.view)
        object.__setattr__(self, "fields", tuple(self.fields))
        if not self.fields:
            raise ValueError(f"projection of {self.view!r}: needs at least one field")

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON form: the view's name and the projected fields."""
        return {"kind": "projection", "view": self.view, "fields": [f.to_dict() for f in self.fields]}


@dataclass(frozen=True)
class RequestSource:
    """Values that arrive with the prediction request itself (not stored), with their schema."""

    name: str
    schema: tuple[Field, ...]

    def __post_init__(self) -> None:
        _check_name("request source", self.name)
        object.__setattr__(self, "schema", tuple(self.schema))
        if not self.schema:
            raise ValueError(f"request source {self.name!r}: needs at least one field")
        _check_unique("field", f"request source {self.name!r}", (f.name for f in self.schema))

    @property
    def fields(self) -> tuple[Field, ...]:
        """The request fields (same shape as :attr:`Projection.fields`)."""
        return self.schema

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON form of the request source."""
        return {"kind": "request_source", "name": self.name, "fields": [f.to_dict() for f in self.schema]}


Source = Union[RequestSource, Projection]


# ---------------------------------------------------------------------------------------------
# The registry of on-demand transforms (code, referenced from definitions by name)


@dataclass(frozen=True)
class RegisteredTransform:
    """A transform function with the name definitions use and the SHA-256 of its source code."""

    name: str
    fn: Transform
    code_sha256: str


TRANSFORMS: dict[str, RegisteredTransform] = {}


def code_hash(fn: Callable[..., Any]) -> str:
    """SHA-256 of a function's source text (its bytecode and constants when there is no source).

    Any edit of the function body, a comment included, gives a new hash and so a new
    version of every on-demand view that uses it: conservative on purpose.
    """
    try:
        text = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        code = fn.__code__
        text = code.co_code.hex() + repr(code.co_consts) + repr(code.co_names)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def register_transform(name: str | None = None) -> Callable[[Transform], Transform]:
    """Decorator: register ``fn`` as the on-demand transform called ``name`` (default: its name).

    Registering the same code twice under one name is a no-op (module reloads); registering
    different code under a taken name is an error, never a silent replacement.
    """

    def decorate(fn: Transform) -> Transform:
        key = name or fn.__name__
        _check_name("transform", key)
        digest = code_hash(fn)
        existing = TRANSFORMS.get(key)
        if existing is not None and existing.code_sha256 != digest:
            raise ValueError(f"transform {key!r} is already registered with different code")
        TRANSFORMS[key] = RegisteredTransform(key, fn, digest)
        return fn

    return decorate


def get_transform(name: str) -> RegisteredTransform:
    """The registered transform called ``name``; KeyError says how to register it."""
    try:
        return TRANSFORMS[name]
    except KeyError:
        raise KeyError(f"no transform registered as {name!r} (decorate it with @register_transform)") from None


@dataclass(frozen=True, init=False)
class OnDemandFeatureView:
    """Features computed at request time by a pure transform of request data and stored features.

    ``sources`` are :class:`RequestSource` s and projections of feature views
    (``view.select("vdd", "idd")``; a whole :class:`FeatureView` means all its fields).
    ``transform`` is a registered transform (the function or its registered name): it takes
    a dict ``{input name: value or None}`` and returns ``{output name: value or None}`` for
    exactly the fields of ``schema``.
    """

    name: str
    sources: tuple[Source, ...]
    schema: tuple[Field, ...]
    transform: str
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def __init__(
        self,
        name: str,
        sources: Sequence[Source | FeatureView],
        schema: Sequence[Field],
        transform: str | Transform,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        _check_name("on-demand feature view", name)
        resolved = tuple(s.select() if isinstance(s, FeatureView) else s for s in sources)
        if isinstance(transform, str):
            tname = get_transform(transform).name
        else:
            matches = [t.name for t in TRANSFORMS.values() if t.fn is transform]
            if not matches:
                raise ValueError(
                    f"on-demand view {name!r}: transform {getattr(transform, '__name__', transform)!r} "
                    "is not registered (decorate it with @register_transform)"
                )
            tname = matches[0]
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "sources", resolved)
        object.__setattr__(self, "schema", tuple(schema))
        object.__setattr__(self, "transform", tname)
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "tags", dict(tags or {}))
        if not self.sources:
            raise ValueError(f"on-demand view {name!r}: needs at least one source")
        if not self.schema:
            raise ValueError(f"on-demand view {name!r}: needs at least one output field")
        for s in self.sources:
            if not isinstance(s, (RequestSource, Projection)):
                raise TypeError(f"on-demand view {name!r}: source {s!r} is not a request source or view")
        _check_unique("input", f"on-demand view {name!r}", self.input_names)
        _check_unique("output", f"on-demand view {name!r}", self.feature_names)

    def __hash__(self) -> int:
        return hash(content_hash(self))

    @property
    def input_names(self) -> tuple[str, ...]:
        """Names of the transform's inputs (request fields and stored features)."""
        return tuple(f.name for s in self.sources for f in s.fields)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of the computed features, in schema order."""
        return tuple(f.name for f in self.schema)

    def compute(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Run the transform on one request's inputs (absent inputs are passed as None).

        The output must carry exactly the schema's fields; a non-finite float output is
        turned into None (missing) so that no inf or NaN reaches a model.
        """
        args = {n: inputs.get(n) for n in self.input_names}
        out = get_transform(self.transform).fn(args)
        expected = set(self.feature_names)
        if set(out) != expected:
            raise ValueError(
                f"on-demand view {self.name!r}: transform returned {sorted(out)}, expected {sorted(expected)}"
            )
        result: dict[str, Any] = {}
        for f in self.schema:
            v = out[f.name]
            if isinstance(v, float) and not math.isfinite(v):
                v = None
            if v is not None and not _is_dtype(v, f.dtype):
                raise TypeError(f"on-demand view {self.name!r}: output {f.name!r}={v!r} is not a {f.dtype}")
            result[f.name] = float(v) if (f.dtype == "float" and v is not None) else v
        return result

    def compute_rows(self, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """:meth:`compute` for many rows (a training set), in order."""
        return [self.compute(r) for r in rows]

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON form: sources, schema, and the transform's name and code hash."""
        registered = get_transform(self.transform)
        return {
            "kind": "on_demand_feature_view",
            "format": FORMAT_VERSION,
            "name": self.name,
            "sources": [s.to_dict() for s in self.sources],
            "schema": [f.to_dict() for f in self.schema],
            "transform": {"name": registered.name, "code_sha256": registered.code_sha256},
            "description": self.description,
            "tags": dict(sorted(self.tags.items())),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, check_code: bool = True) -> "OnDemandFeatureView":
        """Rebuild from :meth:`to_dict` output; the named transform must be registered.

        With ``check_code`` (the default) the registered function must have the stored code
        hash: serving a view with different code than was registered is refused.
        """
        _expect_kind(data, "on_demand_feature_view")
        t = data["transform"]
        registered = get_transform(t["name"])
        if check_code and registered.code_sha256 != t["code_sha256"]:
            raise ValueError(
                f"on-demand view {data['name']!r}: transform {t['name']!r} code hash "
                f"{registered.code_sha256[:12]} differs from the stored {t['code_sha256'][:12]}"
            )
        sources: list[Source] = []
        for s in data["sources"]:
            fields = tuple(Field.from_dict(f) for f in s["fields"])
            if s["kind"] == "request_source":
                sources.append(RequestSource(s["name"], fields))
            elif s["kind"] == "projection":
                sources.append(Projection(s["view"], fields))
            else:
                raise ValueError(f"unknown source kind {s['kind']!r}")
        return cls(
            data["name"],
            sources,
            tuple(Field.from_dict(f) for f in data["schema"]),
            transform=t["name"],
            description=data.get("description", ""),
            tags=data.get("tags", {}),
        )


Definition = Union[Entity, FeatureView, OnDemandFeatureView]
_KINDS: dict[str, Any] = {"entity": Entity, "feature_view": FeatureView, "on_demand_feature_view": OnDemandFeatureView}


def _expect_kind(data: Mapping[str, Any], kind: str) -> None:
    if data.get("kind") != kind:
        raise ValueError(f"expected a {kind!r} definition, got kind {data.get('kind')!r}")
    if data.get("format", FORMAT_VERSION) > FORMAT_VERSION:
        raise ValueError(f"definition format {data['format']} is newer than this library ({FORMAT_VERSION})")


def from_dict(data: Mapping[str, Any]) -> Definition:
    """Rebuild any definition from its canonical dict, dispatching on ``kind``."""
    try:
        cls = _KINDS[data["kind"]]
    except KeyError:
        raise ValueError(f"unknown definition kind {data.get('kind')!r}") from None
    return cls.from_dict(data)


def _as_dict(defn: Definition | Mapping[str, Any]) -> dict[str, Any]:
    return defn.to_dict() if hasattr(defn, "to_dict") else dict(defn)  # type: ignore[union-attr]


def canonical_json(defn: Definition | Mapping[str, Any]) -> str:
    """The definition as canonical JSON: sorted keys, no whitespace, UTF-8, no NaN."""
    return json.dumps(_as_dict(defn), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content_hash(defn: Definition | Mapping[str, Any]) -> str:
    """SHA-256 (hex) of :func:`canonical_json`: equal exactly when the definitions are equal."""
    return hashlib.sha256(canonical_json(defn).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------
# What changed between two versions


@dataclass(frozen=True)
class DefinitionDiff:
    """What changed between two versions of one definition.

    ``added``/``removed`` are field names; ``retyped`` maps a field to (old dtype, new dtype);
    ``constraints`` maps a field to ``{attribute: (old, new)}`` for required, min, max,
    allowed, allow_nan and description; ``ttl`` is (old, new) seconds; ``other`` holds
    any other top-level change (entities, source, sources, transform, description, tags).
    """

    name: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    retyped: dict[str, tuple[str, str]] = field(default_factory=dict)
    constraints: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)
    ttl: tuple[float, float] | None = None
    reordered: bool = False
    other: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """True when anything differs (then the content hashes differ too)."""
        return bool(
            self.added or self.removed or self.retyped or self.constraints or self.ttl
            or self.reordered or self.other
        )

    @property
    def breaking(self) -> bool:
        """True when a consumer of the old version can break: a field removed or retyped,
        a new required field, or the keys or the transform changed."""
        new_required = any(c.get("required") == (False, True) for c in self.constraints.values())
        return bool(
            self.removed or self.retyped or new_required
            or {"entities", "sources", "transform"} & set(self.other)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the registry's change log."""
        return {
            "name": self.name,
            "added": list(self.added),
            "removed": list(self.removed),
            "retyped": {k: list(v) for k, v in self.retyped.items()},
            "constraints": {k: {a: list(p) for a, p in v.items()} for k, v in self.constraints.items()},
            "ttl": list(self.ttl) if self.ttl else None,
            "reordered": self.reordered,
            "other": {k: list(v) for k, v in self.other.items()},
            "changed": self.changed,
            "breaking": self.breaking,
        }


def diff(old: Definition | Mapping[str, Any], new: Definition | Mapping[str, Any]) -> DefinitionDiff:
    """Say what changed from ``old`` to ``new`` (definitions or their stored dicts).

    Both must be the same kind of definition; renaming is not a change of version but a
    different definition, so the names must match too.

    >>> e = Entity("device", "device_id")
    >>> a = FeatureView("v", [e], [Field("x", "float")], timedelta(days=1), "s")
    >>> b = FeatureView("v", [e], [Field("x", "float"), Field("y", "int")], timedelta(days=2), "s")
    >>> d = diff(a, b)
    >>> d.added, d.ttl, d.breaking
    (('y',), (86400, 172800), False)
    """
    a, b = _as_dict(old), _as_dict(new)
    if a.get("kind") != b.get("kind"):
        raise ValueError(f"cannot diff a {a.get('kind')!r} against a {b.get('kind')!r}")
    if a.get("name") != b.get("name"):
        raise ValueError(f"cannot diff {a.get('name')!r} against {b.get('name')!r}: different definitions")
    fields_a = {f["name"]: f for f in a.get("schema", [])}
    fields_b = {f["name"]: f for f in b.get("schema", [])}
    added = tuple(n for n in fields_b if n not in fields_a)
    removed = tuple(n for n in fields_a if n not in fields_b)
    retyped: dict[str, tuple[str, str]] = {}
    constraints: dict[str, dict[str, tuple[Any, Any]]] = {}
    for n in fields_a.keys() & fields_b.keys():
        fa, fb = fields_a[n], fields_b[n]
        if fa["dtype"] != fb["dtype"]:
            retyped[n] = (fa["dtype"], fb["dtype"])
        changes = {k: (fa.get(k), fb.get(k)) for k in sorted((set(fa) | set(fb)) - {"name", "dtype"})
                   if fa.get(k) != fb.get(k)}
        if changes:
            constraints[n] = changes
    common_a = [n for n in fields_a if n in fields_b]
    common_b = [n for n in fields_b if n in fields_a]
    ttl = None
    if a.get("ttl_seconds") != b.get("ttl_seconds"):
        ttl = (a.get("ttl_seconds"), b.get("ttl_seconds"))
    other = {
        k: (a.get(k), b.get(k))
        for k in sorted((set(a) | set(b)) - {"schema", "ttl_seconds", "kind", "name"})
        if a.get(k) != b.get(k)
    }
    return DefinitionDiff(
        name=str(b.get("name")),
        added=added,
        removed=removed,
        retyped=dict(sorted(retyped.items())),
        constraints=dict(sorted(constraints.items())),
        ttl=ttl,
        reordered=common_a != common_b,
        other=other,
    )
