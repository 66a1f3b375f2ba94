"""Fixtures shared by the integration modules (each defines its own module-scoped ``cloud``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from localcloud.apigw import ApiServer
from localcloud.cloud import LocalCloud
from localcloud.faults import AwsFaults
from stack_env import api_server


@pytest.fixture()
def faults(cloud: LocalCloud) -> Iterator[AwsFaults]:
    """The module's LocalCloud AWS fault injection (`localcloud.faults`), cleared after the test."""
    yield cloud.aws_faults
    cloud.aws_faults.clear()


@pytest.fixture(scope="module")
def api(cloud: LocalCloud) -> Iterator[ApiServer]:
    """The module's LocalCloud API on a free port of 127.0.0.1."""
    with api_server(cloud) as server:
        yield server
