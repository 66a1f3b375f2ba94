"""The examples in the monitoring modules' docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["slo"])
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"mlops.monitoring.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
