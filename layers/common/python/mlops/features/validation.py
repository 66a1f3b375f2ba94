"""Validate ingestion rows against a feature view's schema, with field-level errors.

A row is ``{<join keys>..., "event_timestamp": ISO-8601 | epoch seconds, <feature>: value}``.
Every problem is reported as ``{"field": name, "problem": text}`` under the row's index, so
that the API can answer 400 with exactly what to fix. The rules:

* every join key present, of the entity's type (``str`` non-empty, or ``int``);
* ``event_timestamp`` present, with a time zone, and not later than ``now + max_skew``
  (the clock is passed in, never read here);
* no column the view does not declare ("unknown feature");
* types: a bool is not a number; an int is accepted for a float (and becomes a float); a
  float is not accepted for an int; numbers are not accepted for strings;
* ``required`` fields present and not null; ``min``/``max`` inclusive; ``allowed`` values;
* float fields: +-inf never, NaN only where the field has ``allow_nan`` (it is then stored
  as missing, because neither JSON nor DynamoDB can hold NaN).

Accepted rows are normalised: all declared columns present (None when missing), ints in
float columns as floats, and ``event_timestamp`` and timestamp fields as epoch
microseconds (int, UTC). With ``all_or_nothing`` one bad row rejects the whole batch.

Float columns, the bulk of a wide view, are checked column-wise with numpy: 10k rows of 110
features validate in well under a second. (pydantic-core was measured at ~0.6 s for 10k
rows x 100 floats alone, so it is not used on this path.)

>>> from datetime import datetime, timezone
>>> from mlops.features.definitions import Entity, FeatureView, Field
>>> v = FeatureView("v", [Entity("device", "device_id")], [Field("vdd", "float", max=5)],
...                 ttl=timedelta(days=1), source="s")
>>> now = datetime(2024, 1, 1, tzinfo=timezone.utc)
>>> r = validate_rows(v, [{"device_id": "d1", "event_timestamp": "2024-01-01T00:00:00Z", "vdd": 1},
...                       {"device_id": "d2", "event_timestamp": 0, "vdd": True}], now=now)
>>> r.accepted
[{'device_id': 'd1', 'event_timestamp': 1704067200000000, 'vdd': 1.0}]
>>> r.rejected
[{'row': 1, 'errors': [{'field': 'vdd', 'problem': 'expected float, got bool'}]}]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from mlops.features.definitions import EVENT_TIMESTAMP, FeatureView, Field
from mlops.features.timestamps import TimestampError, as_micros, micros_of, parse_timestamp

_NONE = type(None)
_FAST_FLOAT = frozenset({float, int, _NONE})
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

RowErrors = dict[int, list[dict[str, Any]]]


@dataclass
class ValidationResult:
    """The outcome of validating one batch.

    ``accepted`` are the normalised rows that may be stored, ``accepted_index`` their
    positions in the batch; ``rejected`` lists ``{"row": i, "errors": [...]}`` in row order.
    ``batch_rejected`` is True when all-or-nothing was asked and some row was bad (then
    nothing is accepted).
    """

    view: str
    accepted: list[dict[str, Any]]
    accepted_index: list[int]
    rejected: list[dict[str, Any]]
    batch_rejected: bool = False
    _float_block: tuple[tuple[str, ...], np.ndarray] = field(default=((), np.zeros((0, 0))), repr=False)
    _other: dict[str, tuple[str, Sequence[Any]]] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        """True when every row was accepted."""
        return not self.rejected

    def columns(self) -> dict[str, np.ndarray]:
        """The accepted rows as columns, for statistics and the offline store: float features
        as float64 (NaN = missing), ``event_timestamp`` as int64 epoch microseconds, the rest as
        object arrays (None = missing)."""
        idx = np.asarray(self.accepted_index, dtype=np.intp)
        out: dict[str, np.ndarray] = {}
        for name, (kind, values) in self._other.items():
            picked = [values[i] for i in idx]
            if kind == EVENT_TIMESTAMP:
                out[name] = np.array(picked, dtype=np.int64)
            else:
                arr = np.empty(len(picked), dtype=object)
                arr[:] = picked
                out[name] = arr
        names, matrix = self._float_block
        block = matrix[idx] if len(names) else matrix
        for j, name in enumerate(names):
            out[name] = np.ascontiguousarray(block[:, j])
        return out

    def to_dict(self) -> dict[str, Any]:
        """The summary an API response carries."""
        return {
            "view": self.view,
            "accepted": len(self.accepted),
            "rejected": self.rejected,
            "batch_rejected": self.batch_rejected,
        }


def _tname(v: Any) -> str:
    return type(v).__name__


def _from_text(col: list[Any], dtype: str) -> list[Any]:
    """Text cells (a CSV file) to typed values; an empty cell is missing. Cells that do not
    parse are left as text, so that the type check names them."""
    out: list[Any] = []
    for v in col:
        if not isinstance(v, str):
            out.append(v)
            continue
        s = v.strip()
        if s == "":
            out.append(None)
            continue
        try:
            if dtype == "float":
                out.append(float(s))
            elif dtype == "int":
                out.append(int(s))
            elif dtype == "bool":
                low = s.lower()
                out.append(True if low in ("true", "1") else False if low in ("false", "0") else v)
            elif dtype == "timestamp":
                try:
                    out.append(float(s) if "." in s or "e" in s.lower() else int(s))
                except ValueError:
                    out.append(s)
            else:
                out.append(v)
        except ValueError:
            out.append(v)
    return out


def _float_cells(
    tuples: list[tuple[Any, ...]], n: int, m: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[tuple[int, int, str]]]:
    """Cells of any types to a float matrix, class by class (the path for batches that hold
    something other than floats, ints and None). Returns the matrix, the None mask, the mask
    of cells that are not plain floats, and (row, column, problem) for cells of a wrong type."""
    flat = np.fromiter(chain.from_iterable(tuples), dtype=object, count=n * m)
    kinds = np.fromiter(map(type, flat), dtype=object, count=n * m)
    is_float = kinds == float
    is_none = kinds == _NONE
    is_int = kinds == int
    values = np.full(n * m, np.nan)
    values[is_float] = flat[is_float].astype(np.float64)
    problems: list[tuple[int, int, str]] = []
    rest = np.flatnonzero(~(is_float | is_none | is_int))
    try:
        values[is_int] = flat[is_int].astype(np.float64)
    except OverflowError:  # an int beyond float range: look at the ints one by one
        rest = np.union1d(rest, np.flatnonzero(is_int))
    for k in rest:
        v = flat[k]
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            problems.append((int(k // m), int(k % m), f"expected float, got {_tname(v)}"))
            continue
        try:
            values[k] = float(v)
        except OverflowError:
            problems.append((int(k // m), int(k % m), "number out of float range"))
    return values.reshape(n, m), is_none.reshape(n, m), (~is_float).reshape(n, m), problems


def _check_float_block(
    tuples: list[tuple[Any, ...]], fields: Sequence[Field], n: int
) -> tuple[np.ndarray, list[tuple[int, int, str]], np.ndarray]:
    """Check all float columns at once as an (n rows x m fields) matrix.

    Returns the matrix (NaN where missing or bad), (row, column, problem) triples, and per
    column whether any cell differs from what the client sent (an int, a None, an allowed
    NaN, an absent column), in which case that column of accepted rows is rewritten.
    """
    m = len(fields)
    problems: list[tuple[int, int, str]] = []
    types = set(map(type, chain.from_iterable(tuples)))
    matrix = None
    if types <= _FAST_FLOAT:  # the common case: one C call converts the batch
        try:
            matrix = np.array(tuples, dtype=np.float64).reshape(n, m)
        except OverflowError:
            matrix = None
    if matrix is not None:
        none = np.zeros((n, m), dtype=bool)
        if _NONE in types:  # None became NaN: tell the two apart where the matrix has NaN
            for i, j in np.argwhere(np.isnan(matrix)):
                if tuples[i][j] is None:
                    none[i, j] = True
        changed = none.any(axis=0) | (int in types)
        typed = np.zeros((n, m), dtype=bool)
    else:
        matrix, none, not_float, problems = _float_cells(tuples, n, m)
        changed = not_float.any(axis=0)
        typed = np.zeros((n, m), dtype=bool)
        for i, j, _ in problems:
            typed[i, j] = True
    nan = np.isnan(matrix) & ~none & ~typed
    checks: list[tuple[np.ndarray, str | None]] = []
    required = np.array([f.required for f in fields], dtype=bool)
    if required.any():
        checks.append((none & required, "required: missing value"))
    allow_nan = np.array([f.allow_nan for f in fields], dtype=bool)
    checks.append((nan & ~allow_nan, "NaN not allowed"))
    inf = np.isinf(matrix)
    checks.append((inf, "not finite (inf)"))
    lo = np.array([-np.inf if f.min is None else f.min for f in fields])
    hi = np.array([np.inf if f.max is None else f.max for f in fields])
    checks.append((((matrix < lo) | (matrix > hi)) & ~inf, None))  # inf: one problem is enough
    for mask, problem in checks:
        if not mask.any():
            continue
        for i, j in np.argwhere(mask):
            f = fields[j]
            text = problem or (f"below min {f.min}" if matrix[i, j] < lo[j] else f"above max {f.max}")
            problems.append((int(i), int(j), text))
    for j, f in enumerate(fields):
        if f.allowed is not None:
            bad = ~np.isin(matrix[:, j], np.array(f.allowed)) & ~none[:, j] & ~nan[:, j] & ~typed[:, j] & ~inf[:, j]
            problems.extend((int(i), j, f"not one of the allowed values {list(f.allowed)}")
                            for i in np.flatnonzero(bad))
    changed |= nan.any(axis=0)
    return matrix, problems, changed


def _check_scalar(v: Any, f: Field) -> tuple[Any, str | None]:
    """Check one non-float value; returns (normalised value, problem or None)."""
    if v is None:
        return None, ("required: missing value" if f.required else None)
    dtype = f.dtype
    if dtype == "int":
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            return v, f"expected int, got {_tname(v)}"
        v = int(v)
        if not _INT64_MIN <= v <= _INT64_MAX:
            return v, "int out of 64-bit range"
    elif dtype == "bool":
        if not isinstance(v, (bool, np.bool_)):
            return v, f"expected bool, got {_tname(v)}"
        v = bool(v)
    elif dtype == "str":
        if not isinstance(v, str):
            return v, f"expected str, got {_tname(v)}"
    elif dtype == "timestamp":
        try:
            v = parse_timestamp(v)
        except TimestampError as exc:
            return v, str(exc)
    if f.min is not None and v < f.min:
        return v, f"below min {f.min}"
    if f.max is not None and v > f.max:
        return v, f"above max {f.max}"
    if f.allowed is not None and v not in f.allowed:
        return v, f"not one of the allowed values {list(f.allowed)}"
    return v, None


def _check_key(v: Any, value_type: str) -> str | None:
    if v is None:
        return "missing entity key"
    if value_type == "str":
        if not isinstance(v, str):
            return f"entity key must be str, got {_tname(v)}"
        if not v:
            return "entity key is empty"
    elif isinstance(v, bool) or not isinstance(v, int):
        return f"entity key must be int, got {_tname(v)}"
    elif not _INT64_MIN <= v <= _INT64_MAX:
        return "entity key out of 64-bit range"
    return None


def validate_rows(
    view: FeatureView,
    rows: Sequence[Mapping[str, Any]],
    *,
    now: datetime | int,
    max_skew: timedelta = timedelta(minutes=5),
    all_or_nothing: bool = False,
    from_text: bool = False,
) -> ValidationResult:
    """Validate a batch of rows for ``view``; see the module docstring for the rules.

    ``now`` is the caller's clock (aware datetime or epoch microseconds): a row whose
    event time is more than ``max_skew`` after it is rejected. ``from_text`` parses text cells
    (a CSV file) by the schema first, an empty cell meaning missing.
    """
    now_us = as_micros(now)
    horizon = now_us + micros_of(max_skew)
    n = len(rows)
    errors: RowErrors = {}

    def add(i: int, name: str | None, problem: str) -> None:
        errors.setdefault(i, []).append({"field": name, "problem": problem})

    # Rows to columns. Float features, the bulk of a wide view, are read with one C-level
    # itemgetter call per row and checked as a matrix; reading each column out of every row
    # dict instead costs ~5x more (cache misses over 10k dicts).
    key_names = list(view.join_keys)
    float_fields = [f for f in view.schema if f.dtype == "float"]
    other_fields = [f for f in view.schema if f.dtype != "float"]
    float_names = tuple(f.name for f in float_fields)
    known = frozenset(view.join_keys) | {EVENT_TIMESTAMP} | frozenset(view.feature_names)
    position = {name: k for k, name in enumerate([*key_names, EVENT_TIMESTAMP, *view.feature_names])}
    fget = itemgetter(*float_names) if len(float_names) > 1 else None
    dict_rows: list[Mapping[str, Any]] = []
    float_tuples: list[tuple[Any, ...]] = []
    for i, r in enumerate(rows):
        if type(r) is not dict and not isinstance(r, Mapping):
            add(i, None, f"row is not an object (got {_tname(r)})")
            r = {}
        elif not known.issuperset(r):
            for k in r:
                if k not in known:
                    add(i, str(k), "unknown feature")
        dict_rows.append(r)
        if fget is not None:
            try:
                float_tuples.append(fget(r))
                continue
            except KeyError:  # some columns absent: they read as None (missing)
                pass
        float_tuples.append(tuple(r.get(k) for k in float_names))

    other: dict[str, tuple[str, Sequence[Any]]] = {}
    rewrite: list[str] = []  # non-float columns whose normalised values differ from the rows'
    for entity in view.entities:
        key = entity.join_key
        col: Sequence[Any] = [r.get(key) for r in dict_rows]
        if from_text and entity.value_type == "int":
            col = _from_text(list(col), "int")
            rewrite.append(key)
        for i, v in enumerate(col):
            problem = _check_key(v, entity.value_type)
            if problem:
                add(i, key, problem)
        other[key] = ("key", col)

    ts_col: list[int] = []
    for i, r in enumerate(dict_rows):
        v = r.get(EVENT_TIMESTAMP)
        if v is None:
            add(i, EVENT_TIMESTAMP, "missing event_timestamp")
            ts_col.append(0)
            continue
        if from_text:
            v = _from_text([v], "timestamp")[0]
        try:
            us = parse_timestamp(v)
        except TimestampError as exc:
            add(i, EVENT_TIMESTAMP, str(exc))
            ts_col.append(0)
            continue
        if us > horizon:
            ahead = (us - now_us) / 1e6
            add(i, EVENT_TIMESTAMP, f"{ahead:.3f} s in the future, more than the allowed clock skew "
                                    f"of {max_skew.total_seconds():g} s")
        ts_col.append(us)
    other[EVENT_TIMESTAMP] = (EVENT_TIMESTAMP, ts_col)
    rewrite.append(EVENT_TIMESTAMP)

    for f in other_fields:
        col = [r.get(f.name) for r in dict_rows]
        if from_text:
            col = _from_text(col, f.dtype)
        values = []
        for i, v in enumerate(col):
            value, problem = _check_scalar(v, f)
            values.append(value)
            if problem:
                add(i, f.name, problem)
        other[f.name] = (f.dtype, values)
        rewrite.append(f.name)

    if from_text and float_names:
        float_tuples = list(zip(*[_from_text(list(c), "float") for c in zip(*float_tuples)]))
    matrix, float_problems, float_rewrite = _check_float_block(float_tuples, float_fields, n)
    if from_text:  # the rows hold text: every float cell differs from what was sent
        float_rewrite[:] = True
    for i, j, problem in float_problems:
        add(i, float_names[j], problem)

    rejected = [{"row": i, "errors": errors[i]} for i in sorted(errors)]
    batch_rejected = bool(all_or_nothing and rejected)
    if batch_rejected:
        good: list[int] = []
    elif errors:
        good = [i for i in range(n) if i not in errors]
    else:
        good = list(range(n))
    for row_errors in errors.values():  # report in column order, whatever order checks ran in
        row_errors.sort(key=lambda e: position.get(e["field"], len(position)))
    # Accepted rows: a copy of the client's row (one C call) with the normalised columns
    # written over it; float cells only when some differ from what was sent.
    accepted = [dict(dict_rows[i]) for i in good]
    for name in rewrite:
        values = other[name][1]
        for row, i in zip(accepted, good):
            row[name] = values[i]
    rewrite_cols = np.flatnonzero(float_rewrite)
    if len(rewrite_cols) and accepted:
        sub = matrix[np.ix_(good, rewrite_cols)]
        sub_names = [float_names[j] for j in rewrite_cols]
        cells = sub.tolist()
        for a, b in np.argwhere(np.isnan(sub)):
            cells[a][b] = None
        for row, values in zip(accepted, cells):
            row.update(zip(sub_names, values))
    return ValidationResult(view.name, accepted, good, rejected, batch_rejected, (float_names, matrix), other)
