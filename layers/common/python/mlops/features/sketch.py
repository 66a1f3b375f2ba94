"""A mergeable, JSON-serialisable quantile sketch (KLL) for drift baselines.

The sketch keeps a few hundred of the values it has seen, each standing for 2^h of them
(its level h). When a level fills up it is sorted and every other value is promoted, with
double weight, to the level above (a *compaction*); which half survives is a coin flip.
This is the KLL sketch (Karnin, Lang, Liberty, 2016) with capacities shrinking by 2/3 per
level below the top, as in Apache DataSketches.

**Accuracy.** With ``k = 200`` (the default) the normalised rank error of a quantile, i.e.
``|F(estimate) - q|`` with ``F`` the data's empirical CDF, is at most 1.65% for all
quantiles at once with 99% probability, whatever the data's distribution and however
sketches were merged (DataSketches' a-priori bound for k=200; it shrinks about as 1/k).
The tests check it against ``numpy.quantile`` on a million values built from a hundred
merged daily batches. Min and max are exact.

**Reproducible.** The coin is a 64-bit generator (SplitMix64) seeded from a hash of the
data and kept in the sketch, so the same inputs in the same order give the same sketch,
serialised or not, sketches of different batches flip independent coins, and ``a.merge(b)``
equals ``b.merge(a)``.

>>> import numpy as np
>>> s = QuantileSketch.from_values(np.arange(1, 100_001, dtype=float))
>>> abs(float(s.quantiles([0.5])[0]) - 50_000) < 0.0165 * 100_000
True
>>> QuantileSketch.from_dict(s.to_dict()) == s
True
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

_MASK64 = (1 << 64) - 1
_MIN_CAPACITY = 8
_DECAY = 2.0 / 3.0


def _splitmix64(state: int) -> tuple[int, int]:
    """One step of SplitMix64: (new state, 64 random bits)."""
    state = (state + 0x9E3779B97F4A7C15) & _MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return state, z ^ (z >> 31)


class QuantileSketch:
    """KLL quantile sketch of float values; see the module docstring for the error bound.

    Build with :meth:`from_values` or :meth:`update`; combine with :meth:`merge`; ask
    :meth:`quantiles`, :meth:`cdf`; store with :meth:`to_dict`.
    """

    __slots__ = ("k", "n", "min", "max", "levels", "state")

    def __init__(self, k: int = 200, seed: int = 0) -> None:
        if not isinstance(k, int) or k < _MIN_CAPACITY:
            raise ValueError(f"k must be an int >= {_MIN_CAPACITY}")
        self.k = k
        self.n = 0
        self.min = math.inf
        self.max = -math.inf
        self.levels: list[np.ndarray] = [np.empty(0)]
        self.state = seed & _MASK64

    @classmethod
    def from_values(cls, values: Iterable[float] | np.ndarray, k: int = 200, seed: int = 0) -> "QuantileSketch":
        """A sketch of ``values`` (NaN and +-inf are ignored: they are not measurements)."""
        sketch = cls(k, seed)
        sketch.update(values)
        return sketch

    # -- building ------------------------------------------------------------------------

    def _capacity(self, level: int, height: int) -> int:
        return max(_MIN_CAPACITY, int(math.ceil(self.k * _DECAY ** (height - 1 - level))))

    def _coin(self) -> int:
        self.state, bits = _splitmix64(self.state)
        return bits & 1

    def _compress(self) -> None:
        while True:
            height = len(self.levels)
            sizes = [lvl.size for lvl in self.levels]
            if sum(sizes) <= sum(self._capacity(h, height) for h in range(height)):
                return
            h = next(h for h in range(height) if sizes[h] >= self._capacity(h, height))
            buf = np.sort(self.levels[h])
            keep = buf[-1:] if buf.size % 2 else buf[:0]  # an odd one out stays (the largest)
            pairs = buf[: buf.size - keep.size]
            promoted = pairs[self._coin()::2]
            self.levels[h] = keep
            if h + 1 == height:
                self.levels.append(promoted)
            else:
                self.levels[h + 1] = np.concatenate([self.levels[h + 1], promoted])

    def update(self, values: Iterable[float] | np.ndarray) -> None:
        """Add values (NaN and +-inf are skipped)."""
        arr = np.asarray(values, dtype=np.float64).ravel()
        arr = arr[np.isfinite(arr)]
        if not arr.size:
            return
        # the coins depend on the data, so that sketches of different batches flip
        # independent coins (identical coin sequences would make their errors add up)
        digest = int.from_bytes(hashlib.blake2b(arr.tobytes(), digest_size=8).digest(), "little")
        self.state = _splitmix64(self.state ^ digest)[1]
        self.n += int(arr.size)
        self.min = min(self.min, float(arr.min()))
        self.max = max(self.max, float(arr.max()))
        self.levels[0] = np.concatenate([self.levels[0], arr])
        self._compress()
        self._canonicalise()

    def _canonicalise(self) -> None:
        self.levels = [np.sort(lvl) for lvl in self.levels]

    def merge(self, other: "QuantileSketch") -> "QuantileSketch":
        """A new sketch of both inputs' values (neither input changes). Commutative."""
        if not isinstance(other, QuantileSketch):
            raise TypeError("can only merge with another QuantileSketch")
        if other.k != self.k:
            raise ValueError(f"cannot merge sketches with k={self.k} and k={other.k}")
        out = QuantileSketch(self.k)
        out.n = self.n + other.n
        out.min = min(self.min, other.min)
        out.max = max(self.max, other.max)
        height = max(len(self.levels), len(other.levels))
        out.levels = [
            np.concatenate([a.levels[h] for a in (self, other) if h < len(a.levels)]) for h in range(height)
        ]
        out.state = _splitmix64((self.state + other.state) & _MASK64)[1]  # symmetric in the inputs
        out._canonicalise()
        out._compress()
        out._canonicalise()
        return out

    # -- queries -------------------------------------------------------------------------

    def _weighted(self) -> tuple[np.ndarray, np.ndarray]:
        items = np.concatenate(self.levels)
        weights = np.concatenate([np.full(lvl.size, 2.0**h) for h, lvl in enumerate(self.levels)])
        order = np.argsort(items, kind="stable")
        return items[order], np.cumsum(weights[order])

    @property
    def retained(self) -> int:
        """How many values the sketch holds (its size)."""
        return sum(lvl.size for lvl in self.levels)

    def quantiles(self, qs: Iterable[float] | np.ndarray) -> np.ndarray:
        """Estimated quantiles for probabilities ``qs`` in [0, 1]; NaN for an empty sketch.
        q=0 and q=1 give the exact min and max."""
        q = np.asarray(qs, dtype=np.float64)
        if np.any((q < 0) | (q > 1)) or np.any(np.isnan(q)):
            raise ValueError("quantile probabilities must be in [0, 1]")
        if self.n == 0:
            return np.full(q.shape, np.nan)
        items, cum = self._weighted()
        total = cum[-1]
        idx = np.searchsorted(cum, q * total, side="left").clip(0, items.size - 1)
        out = items[idx]
        out = np.where(q <= 0, self.min, out)
        return np.where(q >= 1, self.max, out)

    def cdf(self, xs: Iterable[float] | np.ndarray) -> np.ndarray:
        """Estimated fraction of values <= each x (0 for an empty sketch)."""
        x = np.asarray(xs, dtype=np.float64)
        if self.n == 0:
            return np.zeros(x.shape)
        items, cum = self._weighted()
        idx = np.searchsorted(items, x, side="right")
        below = np.where(idx > 0, cum[(idx - 1).clip(0)], 0.0)
        return below / cum[-1]

    # -- storage -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (floats round-trip exactly through ``json``)."""
        return {
            "kind": "kll",
            "k": self.k,
            "n": self.n,
            "min": self.min if self.n else None,
            "max": self.max if self.n else None,
            "state": f"{self.state:016x}",
            "levels": [lvl.tolist() for lvl in self.levels],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "QuantileSketch":
        """Rebuild a sketch from :meth:`to_dict` output."""
        if data.get("kind") != "kll":
            raise ValueError(f"not a KLL sketch: kind {data.get('kind')!r}")
        out = cls(int(data["k"]))
        out.n = int(data["n"])
        out.min = math.inf if data["min"] is None else float(data["min"])
        out.max = -math.inf if data["max"] is None else float(data["max"])
        out.state = int(data["state"], 16)
        out.levels = [np.asarray(lvl, dtype=np.float64) for lvl in data["levels"]] or [np.empty(0)]
        weight = sum(lvl.size * 2**h for h, lvl in enumerate(out.levels))
        if weight != out.n:
            raise ValueError(f"corrupt sketch: levels weigh {weight}, n is {out.n}")
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantileSketch):
            return NotImplemented
        return (
            (self.k, self.n, self.min, self.max, self.state) == (other.k, other.n, other.min, other.max, other.state)
            and len(self.levels) == len(other.levels)
            and all(np.array_equal(a, b) for a, b in zip(self.levels, other.levels))
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"QuantileSketch(k={self.k}, n={self.n}, retained={self.retained})"
