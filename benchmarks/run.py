"""`make bench`: run every benchmark, then regenerate BENCHMARKS.md from their results.

Each `benchmarks/bench_*.py` writes `benchmarks/results/<name>.json`:
``{"name", "machine", "rows": [{"figure", "value", "unit", "how", "peer", "peer_value",
"ratio", "target"}]}``. `--render-only` rebuilds the table from the stored results. A
benchmark that cannot run here (the SAM ones without Docker) keeps its last results and is
named as stale in the output, never silently dropped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
OUT = HERE.parent / "BENCHMARKS.md"

INTRO = """# Benchmarks

Measured on this project's machine (2 cores, shared and noisy: numbers move by tens of
percent between runs). `make bench` reruns every script in `benchmarks/` and rewrites this
file; `python benchmarks/run.py --render-only` rebuilds it from `benchmarks/results/*.json`.
Each row names the figure, how it was measured, the peer measured in the same run, and the
ratio (value / peer). Targets come from the issues; they are goals, not test assertions.
"""


def _fmt(value: object, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def render() -> str:
    parts = [INTRO]
    for path in sorted(RESULTS.glob("*.json")):
        data = json.loads(path.read_text())
        parts.append(f"\n## {data.get('title', data['name'])}\n")
        if data.get("machine"):
            script = path.stem if path.stem.startswith("bench_") else f"bench_{path.stem}"
            command = data.get("command") or f"python benchmarks/{script}.py"
            parts.append(f"Machine: {data['machine']}. Measured {data.get('measured_at', 'n/a')}; "
                         f"rerun: `{command}`.\n")
        parts.append("\n| figure | value | how measured | peer (same run) | peer value | ratio | target |\n"
                     "|---|---|---|---|---|---|---|\n")
        for row in data["rows"]:
            parts.append(
                f"| {row['figure']} | {_fmt(row['value'], row.get('unit', ''))} | {row.get('how', '')} | "
                f"{row.get('peer') or '-'} | {_fmt(row.get('peer_value'), row.get('unit', '') if row.get('peer_value') is not None else '')} | "
                f"{_fmt(row.get('ratio'))} | {row.get('target') or '-'} |\n"
            )
        for note in data.get("notes", []):
            parts.append(f"\n{note}\n")
    return "".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument("names", nargs="*", help="run only these benchmarks (e.g. invoke api sfn)")
    args = parser.parse_args()
    failed = []
    if not args.render_only:
        scripts = sorted(HERE.glob("bench_*.py"))
        if args.names:
            scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.names]
        for script in scripts:
            print(f"bench: {script.name} ...", flush=True)
            t0 = time.perf_counter()
            result = subprocess.run([sys.executable, str(script)], cwd=HERE.parent)
            print(f"bench: {script.name} exit {result.returncode} in {time.perf_counter() - t0:.1f} s", flush=True)
            if result.returncode != 0:
                failed.append(script.name)
    OUT.write_text(render())
    print(f"bench: wrote {OUT.name}" + (f"; FAILED (kept old results): {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
