"""The examples in the drift modules' docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["baseline", "chooser", "compare", "numeric", "psi", "divergence", "wasserstein", "chisquare",
           "correction", "kolmogorov", "ks", "twosample", "synthetic", "detectors.adwin", "detectors.ddm",
           "detectors.eddm", "detectors.kswin", "detectors.page_hinkley", "detectors.state", "concept",
           "check_request"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"mlops.drift.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0


def test_no_scipy_boto3_or_river_in_the_drift_package() -> None:
    """The drift Lambda ships numpy only: import every module and run a check with scipy,
    boto3 and river made unimportable."""
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(importlib.import_module("mlops.drift").__file__).parent
    modules = sorted("mlops.drift." + ".".join(p.relative_to(root).with_suffix("").parts)
                     for p in root.rglob("*.py") if p.name != "__init__.py")
    code = (
        "import sys\n"
        "for banned in ('scipy', 'boto3', 'river', 'pandas', 'sklearn'):\n"
        "    sys.modules[banned] = None\n"
        "import importlib, numpy as np\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        "from mlops.drift import Baseline, compare\n"
        "from mlops.drift.detectors import KSWIN\n"
        "rng = np.random.default_rng(0)\n"
        "r = compare(Baseline.build({'x': rng.normal(size=20000)}), {'x': rng.normal(size=20000)})\n"
        "assert r.features['x'].method == 'wasserstein'\n"
        "assert KSWIN(seed=1).update_many(rng.normal(size=500).tolist()).drifts is not None\n"
        "print('ok', len(sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(root.parent.parent)}, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("ok")
