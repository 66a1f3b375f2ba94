"""Benchmark: point-in-time join of 1M label rows against 5M feature rows, ours vs pandas.

Issue 3's target: at least as fast as ``pandas.merge_asof`` in the same run, with an
identical result, and the peak memory recorded. The data: 100k entities, 5M feature rows
with 3 float features (5% NaN) at random microsecond times over 90 days, in random order;
1M label rows at random times, 10% of them for entities that have no features; TTL 14 days.
It runs twice: with int64 entity ids and with string ids (``"D0012345"``, as the worked
example's device ids are).

Each measurement runs in a fresh subprocess that loads the inputs from ``.npy`` files first
(not timed). Wall time is the best of ``--repeat`` runs without tracing; peak memory is a
separate run under ``tracemalloc`` (numpy and pandas buffers are traced), counting what the
join allocates on top of its inputs. Ours is ``mlops.features.pit.pit_join`` from the
columns to the joined columns in label order; pandas is DataFrame construction + the stable
sorts ``merge_asof`` requires + ``merge_asof(by=..., direction="backward", tolerance=ttl)``,
its result left in time order (putting it back in label order is not timed; that favours
pandas). The two results are compared value for value (NaN equal to NaN) before anything is
written; a mismatch exits non-zero and keeps the old results.

Writes ``benchmarks/results/pit.json``. ``--quick`` runs a 10x smaller case for a smoke check
(and does not write results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LAYER = ROOT / "layers" / "common" / "python"
RESULTS = HERE / "results" / "pit.json"
FEATURES = ("f0", "f1", "f2")
TTL_DAYS = 14


def make_data(folder: Path, n_labels: int, n_features: int, n_entities: int, key_kind: str, seed: int = 3) -> None:
    """Write the inputs as .npy columns (object keys pickled)."""
    rng = np.random.default_rng(seed)
    span_us = 90 * 86_400 * 10**6
    base = np.datetime64("2024-01-01T00:00:00", "us")
    f_ids = rng.integers(0, n_entities, n_features)
    l_ids = rng.integers(0, int(n_entities * 1.1), n_labels)  # ~10% unknown entities
    columns = {
        "f_key": f_ids,
        "f_time": base + rng.integers(0, span_us, n_features).astype("timedelta64[us]"),
        "l_key": l_ids,
        "l_time": base + rng.integers(0, span_us, n_labels).astype("timedelta64[us]"),
        "label": rng.integers(0, 2, n_labels),
    }
    for name in FEATURES:
        values = rng.normal(size=n_features)
        values[rng.random(n_features) < 0.05] = np.nan
        columns[name] = values
    if key_kind == "str":
        columns["f_key"] = np.array([f"D{i:07d}" for i in f_ids], dtype=object)
        columns["l_key"] = np.array([f"D{i:07d}" for i in l_ids], dtype=object)
    for name, values in columns.items():
        np.save(folder / f"{name}.npy", values, allow_pickle=True)


def child(method: str, folder: Path, out: Path | None, trace: bool) -> None:
    """Run one join in this process and print {"seconds", "peak_bytes"} as JSON."""
    sys.path.insert(0, str(LAYER))
    import tracemalloc
    from datetime import timedelta

    cols = {p.stem: np.load(p, allow_pickle=True) for p in folder.glob("*.npy")}
    labels = {"device_id": cols["l_key"], "event_timestamp": cols["l_time"], "label": cols["label"]}
    features = {"device_id": cols["f_key"], "event_timestamp": cols["f_time"], **{n: cols[n] for n in FEATURES}}
    if method == "ours":
        from mlops.features.pit import pit_join

        def run() -> dict[str, np.ndarray]:
            return pit_join(labels, features, keys=["device_id"], ttl=timedelta(days=TTL_DAYS),
                            feature_names=list(FEATURES))
    else:
        import pandas as pd

        def run() -> dict[str, np.ndarray]:
            left = pd.DataFrame({**labels, "_row": np.arange(len(labels["label"]))})
            right = pd.DataFrame(features)
            merged = pd.merge_asof(
                left.sort_values("event_timestamp", kind="stable"),
                right.sort_values("event_timestamp", kind="stable"),
                on="event_timestamp", by="device_id", direction="backward",
                tolerance=pd.Timedelta(days=TTL_DAYS), allow_exact_matches=True,
            )
            return {"_frame": merged}  # type: ignore[dict-item]

    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] if trace else None
    if trace:
        tracemalloc.stop()
    if out is not None:  # the joined features in label order, for the comparison (not timed)
        if "_frame" in result:
            frame = result["_frame"].sort_values("_row")  # type: ignore[union-attr]
            result = {n: frame[n].to_numpy() for n in FEATURES}
        np.savez(out, **{n: result[n] for n in FEATURES})
    print(json.dumps({"seconds": seconds, "peak_bytes": peak}))


def measure(method: str, folder: Path, *, out: Path | None = None, trace: bool = False) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", method, "--data", str(folder)]
    if out is not None:
        cmd += ["--out", str(out)]
    if trace:
        cmd.append("--trace")
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{method} run failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def compare(ours: Path, peer: Path) -> tuple[bool, float]:
    a, b = np.load(ours), np.load(peer)
    same = all(np.array_equal(a[n], b[n], equal_nan=True) for n in FEATURES)
    return same, float(np.isnan(a["f0"]).mean())


def bench_case(key_kind: str, sizes: tuple[int, int, int], repeat: int) -> dict[str, object]:
    n_labels, n_features, n_entities = sizes
    with tempfile.TemporaryDirectory(prefix="bench_pit_") as tmp:
        folder = Path(tmp)
        make_data(folder, n_labels, n_features, n_entities, key_kind)
        outs = {m: folder / f"out_{m}.npz" for m in ("ours", "pandas")}
        times: dict[str, list[float]] = {"ours": [], "pandas": []}
        for i in range(repeat):  # interleaved, so that a noisy neighbour hurts both alike
            for method in ("ours", "pandas"):
                res = measure(method, folder, out=outs[method] if i == 0 else None)
                times[method].append(res["seconds"])
                print(f"  {key_kind} {method} run {i + 1}: {res['seconds']:.2f} s", flush=True)
        peaks = {m: measure(m, folder, trace=True)["peak_bytes"] for m in ("ours", "pandas")}
        same, missing = compare(outs["ours"], outs["pandas"])
    return {"times": times, "peaks": peaks, "same": same, "missing": missing}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=["ours", "pandas"])
    parser.add_argument("--data", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10x smaller, results not written")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.out, args.trace)
        return 0

    sizes = (100_000, 500_000, 10_000) if args.quick else (1_000_000, 5_000_000, 100_000)
    n_labels, n_features, n_entities = sizes
    shape = f"{n_labels / 1e6:g}M labels x {n_features / 1e6:g}M feature rows, {n_entities // 1000}k entities"
    import pandas as pd

    rows: list[dict[str, object]] = []
    notes: list[str] = []
    failed = False
    for key_kind, key_text in (("int", "int64 ids"), ("str", "string ids")):
        print(f"bench_pit: {shape}, {key_text}", flush=True)
        case = bench_case(key_kind, sizes, args.repeat)
        ours_s, pandas_s = min(case["times"]["ours"]), min(case["times"]["pandas"])  # type: ignore[index]
        ours_mb = case["peaks"]["ours"] / 2**20  # type: ignore[index]
        pandas_mb = case["peaks"]["pandas"] / 2**20  # type: ignore[index]
        peer = (f"pandas {pd.__version__} merge_asof: DataFrames + stable sort of both + merge_asof(by, "
                f"backward, tolerance={TTL_DAYS} d)")
        rows.append({
            "figure": f"PIT join wall time, {shape}, {key_text}, 3 float features",
            "value": round(ours_s, 3), "unit": "s",
            "how": f"best of {args.repeat}, fresh subprocess each, inputs loaded before timing; "
                   "columns in, joined columns out in label order",
            "peer": peer, "peer_value": round(pandas_s, 3), "ratio": round(ours_s / pandas_s, 3),
            "target": "<= pandas, identical result",
        })
        rows.append({
            "figure": f"PIT join peak memory, {shape}, {key_text}",
            "value": round(ours_mb, 1), "unit": "MB",
            "how": "tracemalloc peak during the join (on top of the inputs), separate subprocess",
            "peer": peer, "peer_value": round(pandas_mb, 1), "ratio": round(ours_mb / pandas_mb, 3),
            "target": "recorded",
        })
        notes.append(
            f"{key_text}: results identical to pandas (all three feature columns, value for value, "
            f"NaN = NaN): {'yes' if case['same'] else 'NO'}; f0 is missing for {case['missing']:.1%} of "
            f"labels (no row within the TTL, or the row's value is NaN). "
            f"Runs (s): ours {[round(t, 2) for t in case['times']['ours']]}, "
            f"pandas {[round(t, 2) for t in case['times']['pandas']]}."
        )
        print(f"  {key_text}: ours {ours_s:.2f} s / {ours_mb:.0f} MB, pandas {pandas_s:.2f} s / "
              f"{pandas_mb:.0f} MB, identical: {case['same']}", flush=True)
        failed |= not case["same"]
    if failed:
        print("bench_pit: results differ from pandas; not writing results", file=sys.stderr)
        return 1
    if args.quick:
        return 0
    machine = (f"{len(os.sched_getaffinity(0))} cpus (nproc), {platform.machine()}, "
               f"Python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "name": "pit",
        "title": "Point-in-time join",
        "rows": rows,
        "notes": notes,
        "machine": machine,
        "measured_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python benchmarks/bench_pit.py",
    }, indent=2) + "\n")
    print(f"bench_pit: wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
