"""Serving's access to a version's data-quality ranges: its drift baseline from S3, once.

`quality_loader(bucket)` returns the function the inference function's model cache calls
the first time a version answers: it reads the version's baseline
(`mlops.drift.baseline_store`, ``models/<name>/versions/<n>/baseline.json``) and turns it
into :class:`~mlops.monitoring.data_quality.QualityRanges` for the version's signature.
Without a baseline (a version trained before baselines existed), with a corrupt one, or when
S3 fails, it returns None and serving skips the check: data quality never fails a
prediction. ``mlops.drift`` is imported on the first call, not at cold start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from mlops.monitoring.data_quality import QualityRanges

logger = logging.getLogger(__name__)
Loader = Callable[[str, int, Sequence[str]], "QualityRanges | None"]


def load_quality_ranges(bucket: str, name: str, version: int, features: Sequence[str], *, s3: Any = None,
                        margin: float = 0.0) -> QualityRanges | None:
    """The version's ranges, or None when it has no usable baseline (see the module docstring)."""
    from mlops.drift.baseline_store import BaselineNotFound, BaselineStore  # noqa: PLC0415

    try:
        baseline = BaselineStore(bucket, s3=s3).load(name, version)
    except BaselineNotFound:
        return None
    except Exception as exc:  # a quality check is never worth a failed prediction
        logger.warning("data-quality baseline of %s v%s unusable: %s: %s", name, version, type(exc).__name__, exc)
        return None
    return QualityRanges.from_baseline(baseline, features=features, margin=margin)


def quality_loader(bucket: str, *, s3: Any = None, margin: float = 0.0) -> Loader:
    """``load(name, version, features)`` bound to the artifacts bucket."""
    def load(name: str, version: int, features: Sequence[str]) -> QualityRanges | None:
        return load_quality_ranges(bucket, name, version, features, s3=s3, margin=margin)
    return load
