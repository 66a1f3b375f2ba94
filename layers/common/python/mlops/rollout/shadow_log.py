"""The shadow pairs of a time window, read from the prediction log.

Each prediction-log row that the inference function scored with a shadow version carries the
shadow's result in its ``shadow`` attribute (`mlops.models.prediction_log`): the row itself is
the production answer, ``shadow`` the shadow's on the same request, and ``label`` the ground
truth once feedback arrived. So one row is one `ShadowPair`; no join is needed.

Rows are read per production version with `PredictionLog.version_rows` (a Query on the
``by_model_version`` GSI, which projects ``shadow``; window ``start <= ts < end``). Rows whose
shadow is another version, or that have no shadow, are skipped; rows where the shadow failed
are counted in ``shadow_errors``; error rows of a failed challenger (no probability) are not
production answers and are skipped too. ``max_rows`` bounds what one analysis reads (the
result says when it was reached).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mlops.models.prediction_log import PredictionLog
from mlops.rollout.shadow import ShadowPair

MAX_ROWS = 200_000
ERROR_SAMPLES = 5


@dataclass
class ShadowRows:
    """What a window of the log holds for one shadow version."""

    pairs: list[ShadowPair] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    shadow_errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    by_version: dict[int, int] = field(default_factory=dict)
    truncated: bool = False

    def summary(self) -> dict[str, Any]:
        """JSON form without the pairs: counts per production version, errors, truncation."""
        return {"pairs": len(self.pairs), "by_production_version": {str(v): n for v, n in self.by_version.items()},
                "shadow_errors": self.shadow_errors, "error_samples": list(self.error_samples),
                "truncated": self.truncated}


def pair_of(row: dict[str, Any]) -> ShadowPair:
    """The pair of one `row_of` row with a successful shadow result."""
    shadow = row["shadow"]
    return ShadowPair(production_probability=row["probability"], shadow_probability=shadow["probability"],
                      production_label=row["predicted_label"], shadow_label=shadow["predicted_label"],
                      label=row["label"])


def collect(rows: Iterable[dict[str, Any]], shadow_version: int, out: ShadowRows, max_rows: int) -> None:
    """Add the rows scored with ``shadow_version`` to ``out`` (pure; rows as `row_of` gives them)."""
    for row in rows:
        shadow = row.get("shadow")
        if not shadow or shadow.get("version") != shadow_version or row.get("probability") is None:
            continue
        if len(out.pairs) + out.shadow_errors >= max_rows:
            out.truncated = True
            return
        if shadow.get("error") or shadow.get("probability") is None or shadow.get("predicted_label") is None:
            out.shadow_errors += 1
            text = str(shadow.get("error") or "no shadow probability logged")
            if len(out.error_samples) < ERROR_SAMPLES and text not in out.error_samples:
                out.error_samples.append(text)
            continue
        out.pairs.append(pair_of(row))
        out.request_ids.append(row["request_id"])
        out.by_version[row["version"]] = out.by_version.get(row["version"], 0) + 1


def read_shadow_rows(log: PredictionLog, model: str, production_versions: Iterable[int], shadow_version: int,
                     start: str, end: str, *, max_rows: int = MAX_ROWS) -> ShadowRows:
    """The pairs of ``shadow_version`` against each of ``production_versions`` logged in
    ``start <= ts < end`` (ISO-8601 UTC text as the log writes it), in version then time order."""
    out = ShadowRows()
    for version in sorted(set(production_versions) - {shadow_version}):
        collect(log.version_rows(model, version, start, end), shadow_version, out, max_rows)
        if out.truncated:
            break
    return out
