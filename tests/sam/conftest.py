"""Session fixtures of `make sam-check`: Docker, the SAM CLI, `sam build`, the moto container.

Docker is required, never optional: where no engine answers (or the Lambda base image is
missing) every test that needs it (the invokes) fails with the reason; `sam validate` and
`sam build` still run, as they need no Docker. Nothing here skips.
The machinery lives in samkit.py (shared with benchmarks/bench_sam.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import samkit
from samkit import reported


@pytest.fixture(scope="session")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sam-check")


@pytest.fixture(scope="session")
def docker_engine() -> None:
    problem = samkit.docker_problem()
    if problem:
        pytest.fail("SAM compatibility was NOT checked: Docker is not usable here: " + problem
                    + "\n(`make sam-check` starts Docker with ../shared/tools/start-docker.sh and builds the "
                    "Lambda base image with ../shared/tools/build-lambda-base.sh before running these tests.)",
                    pytrace=False)


@pytest.fixture(scope="session")
def sam(scratch: Path) -> samkit.Sam:
    with reported("SAM CLI"):
        return samkit.Sam.create(scratch)


@pytest.fixture(scope="session")
def stack():
    from localcloud.template import load_stack

    return load_stack(samkit.TEMPLATE, region=samkit.REGION)


@pytest.fixture(scope="session")
def builds(sam: samkit.Sam) -> samkit.Builds:
    return samkit.Builds(sam)


@pytest.fixture(scope="session")
def moto(docker_engine: None) -> Iterator[samkit.MotoServer]:
    with reported("moto container image"):
        image = samkit.ensure_moto_image()
    server = samkit.MotoServer(image)
    with reported("moto container"):
        server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def docker_guard(moto: samkit.MotoServer, scratch: Path) -> Path:
    """DOCKER_CONFIG for SAM: function containers reach the moto container and nothing else."""
    return samkit.write_docker_guard(scratch / "docker-config", [moto.ip])
