"""Explanations: exact TreeSHAP from the ONNX artifact (numpy) vs shap's C++ TreeExplainer.

Trains the default gradient-boosting and random-forest pipelines (100 trees) on the seeded
synthetic yield data of the model tests, then measures in one run:

- rebuilding the artifact for explanation (`mlops.explain.onnx_model.from_onnx`: protobuf
  parse, path table), once per warm function and version;
- one-row p50 of `ExplainableModel.explain` (what POST /explain computes per request) vs
  `shap.TreeExplainer.shap_values` on the scikit-learn model (one row, already imputed);
- the global importance at training: 100 validation rows (`IMPORTANCE_ROWS`).

Writes benchmarks/results/explain.json. Rerun: `.venv/bin/python benchmarks/bench_explain.py`.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers/common/python"), str(ROOT / "tests/unit/models")]

import shap  # noqa: E402
from models_synthetic import FEATURES, make_yield_data  # noqa: E402

from mlops.explain.importance import IMPORTANCE_ROWS  # noqa: E402
from mlops.explain.onnx_model import from_onnx  # noqa: E402
from mlops.models.training import TrainingConfig, train_model  # noqa: E402

RESULTS = ROOT / "benchmarks/results/explain.json"


def _p50(fn, n: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return float(np.median(samples) * 1000)


def _row(value: float, unit: str, figure: str, how: str, peer: str, peer_value: float | None, target: str = "") -> dict:
    return {"figure": figure, "value": round(value, 3), "unit": unit, "how": how, "peer": peer,
            "peer_value": None if peer_value is None else round(peer_value, 3),
            "ratio": None if not peer_value else round(value / peer_value, 2), "target": target}


def main() -> int:
    d = make_yield_data()
    x = np.column_stack([d["features"][f] for f in FEATURES])
    rows, notes = [], []
    for kind, label, n in (("gradient_boosting", "GB", 200), ("random_forest", "RF", 30)):
        m = train_model(d["features"], d["labels"], d["timestamps"],
                        TrainingConfig(model=kind, n_estimators=100, importance_rows=0), code_version="bench")
        t0 = time.perf_counter()
        model = from_onnx(m.onnx, len(FEATURES))
        build_ms = (time.perf_counter() - t0) * 1000
        leaves = sum(g.value.shape[0] for g in model.estimator.paths())
        notes.append(f"{label}: 100 trees, {leaves} leaves, artifact {len(m.onnx) / 1024:.0f} KiB")
        clf = m.pipeline.named_steps["classifier"]
        imputed = m.pipeline.named_steps["imputer"].transform(x)
        explainer = shap.TreeExplainer(clf)
        one, one_imputed = x[-1:], imputed[-1:]
        ours = _p50(lambda: model.explain(one), n)
        theirs = _p50(lambda: explainer.shap_values(one_imputed), n)
        rows.append(_row(build_ms, "ms", f"{label}: rebuild the artifact for explanation",
                         "from_onnx: protobuf parse of the ONNX bytes + path table (once per warm version)", "-", None))
        rows.append(_row(ours, "ms", f"{label}: one-row explanation p50",
                         f"ExplainableModel.explain (numpy TreeSHAP of the margin + its own prediction), {n} calls",
                         "shap.TreeExplainer.shap_values (C++)", theirs))
        batch = x[:IMPORTANCE_ROWS]
        t0 = time.perf_counter()
        model.explain(batch)
        ours_batch = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        explainer.shap_values(imputed[:IMPORTANCE_ROWS])
        theirs_batch = (time.perf_counter() - t0) * 1000
        rows.append(_row(ours_batch, "ms", f"{label}: global importance ({IMPORTANCE_ROWS} rows) at training",
                         "ExplainableModel.explain on the rows, one call", "shap.TreeExplainer.shap_values (C++)",
                         theirs_batch))
    result = {
        "name": "explain",
        "title": "Explanations (TreeSHAP from ONNX)",
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}, "
                   f"shap {shap.__version__}",
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": ".venv/bin/python benchmarks/bench_explain.py",
        "rows": rows,
        "notes": notes,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for row in rows:
        print(f"{row['figure']}: {row['value']} {row['unit']} vs {row['peer']} {row['peer_value']} (x{row['ratio']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
