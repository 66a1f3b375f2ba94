"""Concept drift from feedback: the error stream of a model version, fed once to each detector.

Once feedback has joined a label to a logged prediction, that prediction contributes one value
to its version's *error stream*: 1 when the predicted label was wrong, 0 when it was right.
DDM, EDDM and ADWIN (:data:`DETECTORS`) watch that stream; a rising error rate with stable
inputs is concept drift (the relation between inputs and outcome changed).

**Order and exactly-once.** The stream is ordered by prediction time, then request id (a
batch's rows share one time). Each detector's stored state carries a *watermark*, the
``[ts, request_id]`` of the last value it was fed (:mod:`~mlops.drift.detector_store`);
:func:`error_batch` returns the labelled rows after it, so a check feeds only what no check
fed before, whatever the overlap of their windows. Only predictions made at least the label
delay ago are fed (``cutoff``): labels arrive later than predictions (the yield example's
final test comes hours after the parametric test), and a prediction passed by the watermark
without a label is never fed. Its label still counts in the accuracy of later windows.

Pure: plain rows (`mlops.models.prediction_log.row_of`) in, floats out.

>>> rows = [{"ts": "2026-01-05T09:00:00.000000Z", "request_id": "b", "predicted_label": 1, "label": 0},
...         {"ts": "2026-01-05T09:00:00.000000Z", "request_id": "a", "predicted_label": 1, "label": 1},
...         {"ts": "2026-01-05T10:00:00.000000Z", "request_id": "c", "predicted_label": 0, "label": None},
...         {"ts": "2026-01-05T11:00:00.000000Z", "request_id": "d", "predicted_label": 0, "label": 1}]
>>> error_batch(rows, None, "2026-01-05T10:30:00.000000Z")
([0.0, 1.0], ['2026-01-05T09:00:00.000000Z', 'b'])
>>> error_batch(rows, ["2026-01-05T09:00:00.000000Z", "b"], "2026-01-05T12:00:00.000000Z")
([1.0], ['2026-01-05T11:00:00.000000Z', 'd'])
>>> accuracy(rows)
(3, 1, 0.3333333333333333)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: The detectors run over every version's error stream (river's default parameters).
DETECTORS: tuple[str, ...] = ("DDM", "EDDM", "ADWIN")

Row = Mapping[str, Any]


def stream_name(version: int) -> str:
    """The error stream of one version (a new version's detectors start afresh)."""
    return f"errors-v{int(version)}"


def _labelled(rows: Iterable[Row]) -> list[Row]:
    return [r for r in rows if r.get("label") is not None and r.get("predicted_label") is not None]


def error_batch(rows: Iterable[Row], watermark: Sequence[str] | None, cutoff: str) -> tuple[list[float], Any]:
    """The errors (1.0 wrong, 0.0 right) of the labelled rows after ``watermark`` and with
    ``ts <= cutoff``, in stream order, and the new watermark (unchanged when there are none)."""
    after = tuple(watermark) if watermark else None
    todo = sorted(((r["ts"], r["request_id"]), r) for r in _labelled(rows) if r["ts"] <= cutoff)
    batch = [(key, r) for key, r in todo if after is None or key > after]
    if not batch:
        return [], None if watermark is None else list(watermark)
    values = [float(int(r["predicted_label"]) != int(r["label"])) for _, r in batch]
    return values, list(batch[-1][0])


def accuracy(rows: Iterable[Row]) -> tuple[int, int, float | None]:
    """(labelled rows, correct ones, accuracy or None without labels)."""
    labelled = _labelled(rows)
    correct = sum(int(r["predicted_label"]) == int(r["label"]) for r in labelled)
    return len(labelled), correct, (correct / len(labelled) if labelled else None)
