"""Evidently as a peer of the wide drift benchmark, in its own virtualenv.

Evidently brings pandas, plotly, litestar, nltk and more, so it is not installed into the
project's ``.venv``: :func:`measure` creates ``.venv-evidently`` (gitignored) on first use
with ``python -m venv`` + ``pip install evidently==EVIDENTLY_VERSION`` pinned to the
calling interpreter's numpy, scipy and pandas versions, writes the columns to a temporary
``.npz`` and runs this file under that venv's python. The child times, on the same
columns, (a) Evidently's ``DataDriftPreset(method=m)`` for m in ks, psi, wasserstein (one
Report per method, as a user asks for one method at a time) and (b) one Report of
``ValueDrift(column, method=m)`` metrics, 3 per column (no dataset-level summary). The
timed region is ``Dataset.from_pandas`` for both sides + ``Report.run``; the DataFrames are
built before it (our side starts from the arrays too). A 1-column, 1000-row warm-up run of
each comes first, untimed. It prints one JSON object: timings and Evidently's score per
column and method (the KS p-value, PSI, and W1 / std(reference)).

If the venv cannot be built (no wheel, no network, a resolver conflict) :func:`measure`
returns ``{"error": ...}`` with pip's last lines instead of raising, so the benchmark can
record why.

Run by hand: ``.venv/bin/python benchmarks/evidently_peer.py --self-test`` (creates the venv
if needed and runs 2 small columns).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = ROOT / ".venv-evidently"
EVIDENTLY_VERSION = "0.7.23"
METHODS = ("ks", "psi", "wasserstein")
INSTALL_TIMEOUT_S = 1800


def _pins() -> list[str]:
    """The calling interpreter's numpy/scipy/pandas, so both sides run the same numerics."""
    import scipy

    pins = [f"evidently=={EVIDENTLY_VERSION}", f"numpy=={np.__version__}", f"scipy=={scipy.__version__}"]
    try:
        import pandas

        pins.append(f"pandas=={pandas.__version__}")
    except ImportError:
        pass
    return pins


def ensure_venv() -> tuple[Path | None, str]:
    """The venv's python (created on first use), and a line saying what happened or why not."""
    python = VENV / "bin" / "python"
    marker = VENV / ".installed"
    pins = _pins()
    if marker.exists() and marker.read_text().split() == pins and python.exists():
        return python, f"reused {VENV.name} ({' '.join(pins)})"
    t = time.perf_counter()
    steps = [[sys.executable, "-m", "venv", "--clear", str(VENV)],
             [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins]]
    for cmd in steps:
        print(f"evidently_peer: {' '.join(cmd[1:])} ...", flush=True)
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return None, f"`{' '.join(cmd[2:5])}` did not finish in {INSTALL_TIMEOUT_S} s"
        if done.returncode != 0:
            tail = [ln for ln in (done.stderr or done.stdout).splitlines() if "is ignored" not in ln][-6:]
            return None, f"`{' '.join(cmd[2:])}` exited {done.returncode}: " + " / ".join(tail)
    marker.write_text(" ".join(pins) + "\n")
    return python, f"created {VENV.name} in {time.perf_counter() - t:.0f} s ({' '.join(pins)})"


def measure(reference: np.ndarray, current: np.ndarray, timeout_s: float = 3600) -> dict:
    """Time Evidently on these columns (rows of 2-D arrays) in the side venv; see the module doc."""
    python, how = ensure_venv()
    if python is None:
        return {"error": how}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "columns.npz"
        np.savez(data, reference=np.asarray(reference, dtype=np.float64), current=np.asarray(current, dtype=np.float64))
        try:
            done = subprocess.run([str(python), str(Path(__file__).resolve()), "--child", str(data)],
                                  capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return {"error": f"the Evidently run did not finish in {timeout_s:.0f} s", "venv": how}
    if done.returncode != 0:
        return {"error": f"the Evidently run exited {done.returncode}: " + " / ".join(done.stderr.splitlines()[-6:]),
                "venv": how}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["venv"] = how
    return result


def evidently_bins(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts per bin the way Evidently 0.7 bins a numerical column for PSI
    (``legacy/calculations/stattests/utils.get_binned_data``): more than 20 distinct reference
    values -> ``np.histogram_bin_edges(both sides, "sturges")`` equal-width bins, else one
    bin per distinct value of either side. (Its empty-bin fill differs from ours, so compare
    on columns without empty bins.)"""
    if len(np.unique(reference)) > 20:
        edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
        return np.histogram(reference, edges)[0], np.histogram(current, edges)[0]
    keys = np.union1d(np.unique(reference), np.unique(current))
    return (np.bincount(np.searchsorted(keys, reference), minlength=len(keys)),
            np.bincount(np.searchsorted(keys, current), minlength=len(keys)))


def _child(data_path: str) -> dict:
    import evidently
    import pandas as pd
    import scipy
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    with np.load(data_path) as z:
        ref, cur = z["reference"], z["current"]
    cols = [f"f{i}" for i in range(len(ref))]
    ref_df, cur_df = pd.DataFrame(ref.T, columns=cols), pd.DataFrame(cur.T, columns=cols)

    def run(metrics: list, r_df: pd.DataFrame, c_df: pd.DataFrame) -> tuple[float, list[dict]]:
        definition = DataDefinition(numerical_columns=list(r_df.columns))
        t = time.perf_counter()
        snapshot = Report(metrics).run(Dataset.from_pandas(c_df, data_definition=definition),
                                       Dataset.from_pandas(r_df, data_definition=definition))
        elapsed = time.perf_counter() - t
        return elapsed, snapshot.dict()["metrics"]

    def scores(metrics: list[dict], method: str) -> list[float]:
        by_col = {m["config"]["column"]: m["value"] for m in metrics
                  if m["config"]["type"].endswith("ValueDrift") and m["config"]["method"] == method}
        return [float(by_col[c]) for c in cols]

    small_r, small_c = ref_df.iloc[:1000, :1], cur_df.iloc[:1000, :1]
    for m in METHODS:
        run([DataDriftPreset(method=m)], small_r, small_c)
    run([ValueDrift(column="f0", method=m) for m in METHODS], small_r, small_c)

    preset_s, preset_scores = {}, {}
    for m in METHODS:
        preset_s[m], metrics = run([DataDriftPreset(method=m)], ref_df, cur_df)
        preset_scores[m] = scores(metrics, m)
    metrics_s, metrics = run([ValueDrift(column=c, method=m) for c in cols for m in METHODS], ref_df, cur_df)
    metric_scores = {m: scores(metrics, m) for m in METHODS}
    same = all(preset_scores[m] == metric_scores[m] for m in METHODS)
    return {"evidently": evidently.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "pandas": pd.__version__, "columns": len(cols), "rows": [ref.shape[1], cur.shape[1]],
            "preset_s": preset_s, "preset_total_s": sum(preset_s.values()), "metrics_s": metrics_s,
            "scores": metric_scores, "preset_scores_equal_metric_scores": same}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", metavar="NPZ", help="(internal) run under the Evidently venv on this data")
    parser.add_argument("--self-test", action="store_true", help="create the venv if needed, run 2 small columns")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child)))
        return 0
    if args.self_test:
        rng = np.random.default_rng(0)
        print(json.dumps(measure(rng.normal(size=(2, 5000)), rng.normal(0.1, 1, size=(2, 5000))), indent=1))
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
