"""Fixtures shared by the integration modules (each defines its own module-scoped ``cloud``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localcloud.cloud import LocalCloud
from localcloud.faults import AwsFaults


@pytest.fixture()
def faults(cloud: LocalCloud) -> Iterator[AwsFaults]:
    """The module's LocalCloud AWS fault injection (`localcloud.faults`), cleared after the test."""
    yield cloud.aws_faults
    cloud.aws_faults.clear()
