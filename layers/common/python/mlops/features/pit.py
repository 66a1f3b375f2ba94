"""Point-in-time correct joins of label rows to feature rows, with numpy only.

For each label row (entity key, label time, label) the join takes the feature row of the
same entity with the latest ``event_timestamp`` at or before the label time, if it is
within the view's TTL (``label_time - event_time <= ttl``); otherwise the features are
missing. No value from after the label time can reach the label's row: that is what makes a
training set honest.

**The rule for ties.** When an entity has several feature rows with the same
``event_timestamp``, the one that comes last in the input wins. This is exactly
``pandas.merge_asof(labels, features, on=time, by=keys, direction="backward",
tolerance=ttl, allow_exact_matches=True)`` on frames sorted stably by time (pandas takes the
last of equal keys), and it is what the online store does when its conditional write accepts
a row whose time is *equal to or* newer than the stored one (replays land last).

Columns in and out are dicts of numpy arrays (no pandas: it does not fit the Lambda layer
budget). Times are ``datetime64`` arrays of any unit, int64 epoch microseconds (what
validation produces) or aware datetimes. Missing
features come back as NaN in float columns, NaT in datetime columns and None in object
columns (ints, bools and strings come back as object arrays, because they may be missing).

How: one global sort of the feature rows by a combined key (entity code, time), then one
``searchsorted`` of the label rows' combined keys (labels sorted first, which makes the
binary searches cache-friendly), then vectorised checks that the match is the same entity
and within the TTL. No Python loop runs per row or per entity.

>>> import numpy as np
>>> labels = {"device_id": np.array(["a", "a", "b"]), "event_timestamp": np.array([10, 20, 20])}
>>> feats = {"device_id": np.array(["a", "a", "b"]), "event_timestamp": np.array([5, 15, 25]),
...          "x": np.array([1.0, 2.0, 3.0])}
>>> pit_join(labels, feats, keys=["device_id"], ttl=8)["x"]
array([ 1.,  2., nan])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from mlops.features.definitions import EVENT_TIMESTAMP, FeatureView
from mlops.features.timestamps import datetime_to_micros

Columns = Mapping[str, np.ndarray]
TTL = timedelta | np.timedelta64 | int | None

_MAX_KEY = 2**62  # combined keys stay below this, far from int64 overflow
_hash = hash  # Python's hash of object keys (strings); a module attribute so tests can force collisions


# ---------------------------------------------------------------------------------------------
# Times


def _as_datetime64(values: Any, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind == "M":
        return arr
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64).astype("datetime64[us]")  # epoch microseconds
    if arr.dtype == object and all(isinstance(v, datetime) for v in arr.flat):  # aware datetimes
        micros = np.array([datetime_to_micros(v) for v in arr.flat], dtype=np.int64)
        return micros.reshape(arr.shape).astype("datetime64[us]")
    raise TypeError(f"{what}: expected datetime64 or int64 epoch microseconds, got {arr.dtype}")


def _common_times(*arrays: tuple[Any, str]) -> tuple[list[np.ndarray], np.dtype]:
    """The time columns as int64 ticks in their finest common unit (at least microseconds)."""
    dts = [_as_datetime64(a, what) for a, what in arrays]
    dtype = np.dtype("datetime64[us]")
    for d in dts:
        dtype = np.promote_types(dtype, d.dtype)
    out = []
    for d, (_, what) in zip(dts, arrays):
        d = d.astype(dtype, copy=False)
        if d.size and np.isnat(d).any():
            raise ValueError(f"{what} contains NaT (a row without a time)")
        out.append(d.view(np.int64))
    return out, dtype


def _ttl_ticks(ttl: TTL, dtype: np.dtype) -> int | None:
    """The TTL in ticks of ``dtype``'s unit; an int TTL is microseconds, None is unbounded."""
    if ttl is None:
        return None
    unit = np.datetime_data(dtype)[0]
    if isinstance(ttl, timedelta):
        ttl = np.timedelta64(ttl)
    elif isinstance(ttl, np.timedelta64):  # (a subclass of np.integer: test it first)
        pass
    elif isinstance(ttl, (int, np.integer)) and not isinstance(ttl, bool):
        ttl = np.timedelta64(int(ttl), "us")
    if not isinstance(ttl, np.timedelta64):
        raise TypeError(f"ttl must be a timedelta, numpy timedelta64, int microseconds or None, got {ttl!r}")
    ticks = int(ttl.astype(f"timedelta64[{unit}]").astype(np.int64))
    if ticks < 0:
        raise ValueError("ttl must not be negative")
    return ticks


# ---------------------------------------------------------------------------------------------
# Entity keys to integer codes


def _group(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group non-negative int64 ``values`` (each below 2**(63 - index bits)) with one packed
    sort. Returns (dense code per element, the distinct values ascending, the first index of
    each distinct value)."""
    n = values.size
    idx_bits = max(1, (n - 1).bit_length())
    packed = (values << idx_bits) | np.arange(n, dtype=np.int64)
    packed.sort()
    perm = packed & ((1 << idx_bits) - 1)
    sorted_values = packed >> idx_bits
    starts = np.empty(n, dtype=bool)
    starts[:1] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=starts[1:])
    codes = np.empty(n, dtype=np.int64)
    codes[perm] = np.cumsum(starts) - 1
    return codes, sorted_values[starts], perm[starts]


def _mix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, vectorised: spreads int64 values over all 64 bits."""
    z = values.astype(np.uint64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _codes_by_hash(
    left: np.ndarray, right: np.ndarray, hashes_l: np.ndarray, hashes_r: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray] | None:
    """Codes from 64-bit hashes of the keys: their top bits are grouped by :func:`_group`
    and every key is then compared with its group's first key, so that the codes are exact;
    None when two different keys share a group (then the caller takes a slower exact path).
    Also returns each group's key."""
    n = right.size
    bits = 63 - max(1, (n - 1).bit_length())
    shift = np.uint64(64 - bits)
    codes_r, distinct, first = _group((hashes_r.view(np.uint64) >> shift).astype(np.int64))
    representative = right[first]
    if not np.all(right == representative[codes_r]):
        return None
    small_l = (hashes_l.view(np.uint64) >> shift).astype(np.int64)
    pos = np.searchsorted(distinct, small_l).clip(0, distinct.size - 1)
    found = distinct[pos] == small_l
    found[found] = left[found] == representative[pos[found]]
    return np.where(found, pos, -1), codes_r, distinct.size, representative


def _as_numeric_keys(values: np.ndarray) -> np.ndarray:
    """An object array of ints as int64 (keys read from rows come as objects); else unchanged."""
    if values.dtype == object and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                      for v in values.tolist()):
        try:
            return values.astype(np.int64)
        except OverflowError:
            return values
    return values


def _factorize_one(left: np.ndarray, right: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Codes of one key column: ``right`` (feature rows) in [0, k), ``left`` (label rows) in
    [0, k) when the key may occur on the right, else -1. Only grouping matters, not order."""
    numeric = "iub"
    if (left.dtype.kind in numeric) != (right.dtype.kind in numeric):  # e.g. ints in an object array
        left, right = _as_numeric_keys(left), _as_numeric_keys(right)
    lk, rk = left.dtype.kind, right.dtype.kind
    if (lk in numeric) != (rk in numeric) and left.size and right.size:
        raise TypeError(f"key {name!r}: labels are {left.dtype} but features are {right.dtype}")
    if right.size == 0:
        return np.full(left.size, -1, np.int64), np.zeros(0, np.int64), 1
    if rk in numeric and lk in numeric and rk != "u" and lk != "u":
        r = right.astype(np.int64, copy=False)
        l = left.astype(np.int64, copy=False)
        lo, hi = int(r.min()), int(r.max())
        span = hi - lo + 1
        if span <= max(4 * r.size, 1 << 20):  # dense ids: the offset is the code
            codes_l = l - lo
            codes_l[(l < lo) | (l > hi)] = -1
            return codes_l, r - lo, span
        hashed = _codes_by_hash(l, r, _mix64(l).view(np.int64), _mix64(r).view(np.int64))
        if hashed is not None:
            return hashed[:3]
    elif rk not in numeric and rk != "f":  # strings and other objects: Python's hash
        hashed = _codes_by_hash(
            left, right,
            np.fromiter(map(_hash, left), np.int64, left.size),
            np.fromiter(map(_hash, right), np.int64, right.size),
        )
        distinct = hashed[3].tolist() if hashed is not None else None
        codes = hashed[:3] if hashed is not None else _factorize_objects(left, right)
        if distinct is None:
            distinct = list(set(right.tolist()))
        if any(v is None for v in distinct):
            raise ValueError(f"key {name!r} contains None in the feature rows")
        return codes
    if rk == "f" or lk == "f":
        if np.isnan(right).any() or np.isnan(left).any():
            raise ValueError(f"key {name!r} contains NaN")
    uniq, codes_r = np.unique(right, return_inverse=True)
    pos = np.searchsorted(uniq, left)
    inside = pos < uniq.size
    found = np.zeros(left.size, dtype=bool)
    found[inside] = uniq[pos[inside]] == left[inside]
    return np.where(found, pos, -1).astype(np.int64), codes_r.astype(np.int64).ravel(), max(uniq.size, 1)


def _factorize_objects(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Exact codes through a dict (for the rare batch whose hashes' top bits collide)."""
    table: dict[Any, int] = {}
    setdefault = table.setdefault
    codes_r = np.fromiter((setdefault(v, len(table)) for v in right.tolist()), np.int64, right.size)
    get = table.get
    codes_l = np.fromiter((get(v, -1) for v in left.tolist()), np.int64, left.size)
    return codes_l, codes_r, max(len(table), 1)


def _entity_codes(labels: Columns, features: Columns, keys: Sequence[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """One integer code per row for the (possibly composite) entity key; -1 on the label side
    for an entity that has no feature rows."""
    if not keys:
        raise ValueError("at least one join key is needed")
    codes_l = codes_r = None
    k = 1
    for name in keys:
        if name not in labels:
            raise KeyError(f"label rows have no key column {name!r}")
        if name not in features:
            raise KeyError(f"feature rows have no key column {name!r}")
        cl, cr, kk = _factorize_one(np.asarray(labels[name]).ravel(), np.asarray(features[name]).ravel(), name)
        if codes_l is None:
            codes_l, codes_r, k = cl, cr, kk
            continue
        if k * kk >= _MAX_KEY:  # re-densify before combining so the product cannot overflow
            uniq, codes_r = np.unique(codes_r, return_inverse=True)
            pos = np.searchsorted(uniq, codes_l).clip(0, max(uniq.size - 1, 0))
            codes_l = np.where((codes_l >= 0) & (uniq[pos] == codes_l) if uniq.size else False, pos, -1)
            k = max(uniq.size, 1)
        missing = (codes_l < 0) | (cl < 0)
        codes_l = codes_l * kk + cl
        codes_l[missing] = -1
        codes_r = codes_r * kk + cr
        k *= kk
    return codes_l, codes_r, k  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# The join


def _sorted_order(keys: np.ndarray, max_key: int) -> tuple[np.ndarray, np.ndarray]:
    """A stable argsort of non-negative int64 ``keys`` (all <= ``max_key``), and the sorted keys.

    numpy's ``argsort`` is several times slower than its (SIMD) value ``sort``, so the row
    index is packed into the low bits of each key and the packed values are sorted: equal
    keys then come out in input order, i.e. stably. Keys too wide to share 63 bits with the
    index are sorted by digits, least significant first (an LSD radix sort whose passes are
    each one such packed sort).
    """
    n = keys.size
    idx_bits = max(1, (n - 1).bit_length())
    digit_bits = 63 - idx_bits
    if digit_bits < 16:  # beyond 2**47 rows: plain stable argsort
        order = np.argsort(keys, kind="stable")
        return order, keys[order]
    key_bits = max(1, int(max_key).bit_length())
    index = np.arange(n, dtype=np.int64)
    low_mask = (1 << idx_bits) - 1
    perm: np.ndarray | None = None
    shift = 0
    current = keys
    while True:
        last = shift + digit_bits >= key_bits
        packed = current >> shift if shift else current.copy()
        if not last:
            packed &= (1 << digit_bits) - 1
        packed <<= idx_bits
        packed |= index
        packed.sort()
        if last and perm is None:  # one pass: the sorted keys are the packed values' high bits
            sorted_keys = packed >> idx_bits
            packed &= low_mask
            return packed, sorted_keys
        packed &= low_mask  # in place: now the positions (saves an array as long as the input)
        perm = packed if perm is None else perm[packed]
        if last:
            return perm, current[packed]
        shift += digit_bits
        current = current[packed]


def _roughly_sorted_order(keys: np.ndarray, max_key: int) -> np.ndarray:
    """An order of ``keys`` sorted by their high bits only: one packed sort, enough to make
    the binary searches of :func:`np.searchsorted` walk memory in order."""
    n = keys.size
    idx_bits = max(1, (n - 1).bit_length())
    shift = max(0, int(max_key).bit_length() - (63 - idx_bits))
    packed = ((keys >> shift) << idx_bits) | np.arange(n, dtype=np.int64)
    packed.sort()
    return packed & ((1 << idx_bits) - 1)


def _match(
    codes_l: np.ndarray, t_l: np.ndarray, codes_r: np.ndarray, t_r: np.ndarray, k: int, ttl: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """For each label row, the index of its matching feature row and whether there is one."""
    n_l = codes_l.size
    if codes_r.size == 0 or n_l == 0:
        return np.zeros(n_l, np.intp), np.zeros(n_l, bool)
    present = codes_l >= 0
    codes_q = codes_l.clip(0)  # absent entities: any valid key; they are masked out below
    t0 = int(min(t_r.min(), t_l.min()))
    span = int(max(t_r.max(), t_l.max())) - t0 + 1
    off_r, off_l = t_r - t0, t_l - t0
    if k * span >= 1 << (63 - max(1, (codes_r.size - 1).bit_length())):
        # The key needs more than one sort pass: coarsen time by the feature times' common
        # divisor (nanosecond columns holding whole microseconds, say). Exact for "<=":
        # feature offsets are multiples of g, and floor(label offset / g) keeps the order.
        g = int(np.gcd.reduce(off_r[:4096]))
        g = int(np.gcd(g, np.gcd.reduce(off_r))) if g != 1 else 1
        if g > 1:
            off_r, off_l = off_r // g, off_l // g
            span = (span - 1) // g + 1
    if k * span < _MAX_KEY:  # (code, time) fits one int64: code * span + time offset
        key_r = codes_r * span
        key_r += off_r  # in place: these arrays are as long as the feature rows
        key_l = codes_q * span
        key_l += off_l
        del off_r, off_l
    else:  # times by rank among the feature times instead: ranks are < number of rows
        uniq = np.sort(t_r)
        uniq = uniq[np.concatenate(([True], uniq[1:] != uniq[:-1]))]
        span = uniq.size + 1
        key_r = codes_r * span + np.searchsorted(uniq, t_r) + 1
        key_l = codes_q * span + np.searchsorted(uniq, t_l, side="right")
    max_key = k * span
    order, sorted_keys = _sorted_order(key_r, max_key)  # stable: equal keys keep input order
    label_order = _roughly_sorted_order(key_l, max_key)
    pos = np.empty(n_l, dtype=np.intp)
    pos[label_order] = np.searchsorted(sorted_keys, key_l[label_order], side="right") - 1
    found = present & (pos >= 0)
    rows = order[pos.clip(0)]  # the last of equal keys, i.e. the last in input order
    found &= codes_r[rows] == codes_l
    if ttl is not None:
        found &= (t_l - t_r[rows]) <= ttl
    return rows, found


def _take(column: np.ndarray, rows: np.ndarray, found: np.ndarray) -> np.ndarray:
    """``column[rows]`` with the rows that found nothing set missing for the column's dtype."""
    kind = column.dtype.kind
    if column.size == 0:
        if kind in "fc":
            return np.full(rows.size, np.nan, dtype=column.dtype)
        if kind in "mM":
            return np.full(rows.size, np.datetime64("NaT") if kind == "M" else np.timedelta64("NaT"),
                           dtype=column.dtype)
        return np.full(rows.size, None, dtype=object)
    out = column[rows]
    if found.all():
        return out if kind in "fcmM" else out.astype(object)
    if kind in "fc":
        out[~found] = np.nan
    elif kind in "mM":
        out[~found] = np.datetime64("NaT") if kind == "M" else np.timedelta64("NaT")
    else:
        out = out.astype(object)
        out[~found] = None
    return out


def pit_join(
    labels: Columns,
    features: Columns,
    *,
    keys: Sequence[str],
    ttl: TTL,
    feature_names: Sequence[str] | None = None,
    label_time: str = EVENT_TIMESTAMP,
    feature_time: str = EVENT_TIMESTAMP,
    matched_time: str | None = None,
) -> dict[str, np.ndarray]:
    """Join to each label row the latest feature row at or before its time, within ``ttl``.

    ``labels`` and ``features`` are dicts of equal-length numpy columns; ``keys`` are the
    join key columns, present in both. ``feature_names`` picks the feature columns (default:
    all but the keys and the time). The result has every label column, unchanged and in the
    input order, plus the feature columns; with ``matched_time`` also the matched row's
    ``event_timestamp`` under that name (NaT when none). ``ttl`` is a timedelta (int:
    microseconds; None: no limit). Equal to ``pandas.merge_asof(direction="backward",
    tolerance=ttl)`` per the module docstring, ties included.
    """
    if label_time not in labels:
        raise KeyError(f"label rows have no time column {label_time!r}")
    if feature_time not in features:
        raise KeyError(f"feature rows have no time column {feature_time!r}")
    for name in keys:
        for columns, what in ((labels, "label rows"), (features, "feature rows")):
            if name not in columns:
                raise KeyError(f"{what} have no key column {name!r}")
    if feature_names is None:
        feature_names = [c for c in features if c not in set(keys) | {feature_time}]
    for name in feature_names:
        if name not in features:
            raise KeyError(f"feature rows have no column {name!r}")
        if name in labels:
            raise ValueError(f"column {name!r} is in both the labels and the features")
    _check_lengths(labels, "label rows")
    _check_lengths(features, "feature rows")
    (t_l, t_r), dtype = _common_times((labels[label_time], "label time"), (features[feature_time], "feature time"))
    codes_l, codes_r, k = _entity_codes(labels, features, keys)
    rows, found = _match(codes_l, t_l, codes_r, t_r, k, _ttl_ticks(ttl, dtype))
    out = dict(labels)
    for name in feature_names:
        out[name] = _take(np.asarray(features[name]), rows, found)
    if matched_time is not None:
        out[matched_time] = _take(t_r.view(dtype), rows, found)
    return out


def _check_lengths(columns: Columns, what: str) -> None:
    lengths = {name: len(col) for name, col in columns.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"{what}: columns have different lengths {lengths}")


def training_set(
    labels: Columns,
    views: Sequence[tuple[FeatureView, Columns]],
    *,
    label_time: str = EVENT_TIMESTAMP,
    full_feature_names: bool = False,
) -> dict[str, np.ndarray]:
    """Point-in-time join of ``labels`` to several views, each with its own keys and TTL.

    ``views`` pairs each :class:`FeatureView` with its offline rows (columns). Feature
    columns are named as in the view, or ``<view>__<feature>`` with ``full_feature_names``
    (needed when two views share a feature name, which is otherwise an error).
    """
    out = dict(labels)
    for view, rows in views:
        joined = pit_join(
            {**{k: labels[k] for k in view.join_keys}, label_time: labels[label_time]},
            rows,
            keys=view.join_keys,
            ttl=view.ttl,
            feature_names=view.feature_names,
            label_time=label_time,
        )
        for name in view.feature_names:
            target = f"{view.name}__{name}" if full_feature_names else name
            if target in out:
                raise ValueError(f"column {target!r} appears twice; use full_feature_names=True")
            out[target] = joined[name]
    return out


def latest_as_of(
    features: Columns,
    entity_ids: Columns | Sequence[Any] | np.ndarray,
    t: datetime | np.datetime64 | int,
    ttl: TTL,
    *,
    keys: Sequence[str],
    feature_names: Sequence[str] | None = None,
    feature_time: str = EVENT_TIMESTAMP,
) -> dict[str, np.ndarray]:
    """What the online store answers at time ``t`` for ``entity_ids``, from the offline rows.

    For each entity: its latest row with ``event_timestamp <= t`` (ties: the last in input
    order), missing when there is none or when it is older than ``t - ttl``. Computed by a
    per-entity maximum (not by the as-of search of :func:`pit_join`), so that tests can show
    the two agree. ``entity_ids`` is one key column (single-key views) or a dict of key
    columns. Returns the key columns, the features and ``event_timestamp`` (NaT if missing).
    """
    ids = dict(entity_ids) if isinstance(entity_ids, Mapping) else {keys[0]: np.asarray(entity_ids)}
    if len(keys) > 1 and not isinstance(entity_ids, Mapping):
        raise ValueError("a view with several join keys needs entity_ids as a dict of key columns")
    if feature_names is None:
        feature_names = [c for c in features if c not in set(keys) | {feature_time}]
    _check_lengths(features, "feature rows")
    t_arr = np.array([datetime_to_micros(t)]) if isinstance(t, datetime) else np.array([t])
    (t_r, t_q), dtype = _common_times((features[feature_time], "feature time"), (t_arr, "t"))
    ttl_ticks = _ttl_ticks(ttl, dtype)
    t_tick = int(t_q[0])
    codes_q, codes_r, _ = _entity_codes(ids, features, keys)
    # candidate rows: at or before t (and within the TTL: an older row can never be served)
    ok = t_r <= t_tick
    if ttl_ticks is not None:
        ok &= t_r >= t_tick - ttl_ticks
    cand = np.flatnonzero(ok)
    # the latest candidate per entity, ties to the last in input order: sort by (code, time,
    # input position) and keep the last row of each code's run
    order = cand[np.lexsort((cand, t_r[cand], codes_r[cand]))]
    codes_sorted = codes_r[order]
    last = np.ones(order.size, dtype=bool)
    last[:-1] = codes_sorted[1:] != codes_sorted[:-1]
    winners = order[last]
    winner_codes = codes_sorted[last]  # ascending, one per entity
    at = np.searchsorted(winner_codes, codes_q).clip(0, max(winner_codes.size - 1, 0))
    found = (codes_q >= 0) & (winner_codes[at] == codes_q) if winner_codes.size else np.zeros(codes_q.size, bool)
    rows = winners[at] if winner_codes.size else np.zeros(codes_q.size, np.intp)
    out: dict[str, np.ndarray] = {k: np.asarray(v) for k, v in ids.items()}
    for name in feature_names:
        out[name] = _take(np.asarray(features[name]), rows, found)
    out[EVENT_TIMESTAMP] = _take(t_r.view(dtype), rows, found)
    return out
