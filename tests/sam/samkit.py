"""The machinery of `make sam-check` (tests/sam) and of benchmarks/bench_sam.py.

What: run the real SAM CLI (`sam validate --lint`, `sam build`, `sam local invoke`,
`sam local start-api`) in Docker next to `localcloud` on the same template and events, and
compare what they answer. Functions that call DynamoDB or S3 get a moto server of their own:
a container on a Docker network this module creates, provisioned from the template through
`localcloud.provision` over a port published on 127.0.0.1 only.

Why this shape (see ../shared/FACTS.md):
- SAM's function containers sit on Docker's bridge and cannot reach the host's 127.0.0.1, so
  the moto server runs in a container on a network we create and the functions are attached
  to it with ``--docker-network``; they find it through ``AWS_ENDPOINT_URL``, which SAM only
  sets when the template declares that variable (``--env-vars`` overrides declared variables
  only).
- Nothing may leave the machine. Every SAM run gets a Docker client configuration
  (``DOCKER_CONFIG``) whose proxy settings Docker copies into each function container: HTTP(S)
  goes to a dead proxy on the container's own loopback, except to the moto container and to
  the container itself. A function that is not pointed at moto (or that ignores
  ``AWS_ENDPOINT_URL``) fails with a proxy error instead of calling AWS.
- No image is pulled: the Lambda base image is the local stand-in that
  ../shared/tools/build-lambda-base.sh builds, and the moto image is built here from it plus
  moto[server] installed with the host's pip (``--target`` + ``--platform``), at the version
  requirements/dev.txt pins for localcloud.
- SAM's weekly "update available" check (a call to PyPI, printed on stderr) is switched off by
  giving SAM a config directory (``__SAM_CLI_APP_DIR``) that says it just checked.

Everything Docker-side that this module starts is removed, also on failure: `DockerNetwork.close`
(used by `MotoServer.close`) removes the network and every container on it (the moto server,
and any function container SAM attached with ``--docker-network``); `Sam.run` removes the
container of a `sam local invoke` it had to kill (SAM logs its id).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
EVENTS_DIR = ROOT / "events"
DEV_REQUIREMENTS = ROOT / "requirements" / "dev.txt"
WORK_DIR = ROOT / ".aws-sam" / "sam-check"  # build output and caches of the check (gitignored)
SHARED = Path(os.environ.get("SHARED", ROOT.parent / "shared")).resolve()

# localcloud's default region. Both sides get it explicitly: samconfig.toml's region is for
# deploys, and the moto container is provisioned in this region.
REGION = "us-east-1"
LAMBDA_BASE_IMAGE = "public.ecr.aws/lambda/python:3.11-x86_64"  # what SAM runs (x86_64 tag)
MOTO_IMAGE_REPO = "sam-check/moto"
MOTO_PORT = 5000
LAMBDA_LIMIT_MIB = 250.0  # function + layers, unzipped (262,144,000 bytes)
DEAD_PROXY = "http://127.0.0.1:9"  # the function container's own loopback: nothing listens
ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL"
LABEL = "sam-check"  # on the networks and containers this module creates

# Generous: the first `sam build` downloads the layers' wheels; the first `sam local invoke`
# of a layer set builds SAM's image of the function's layers.
BUILD_TIMEOUT_S = 1800
INVOKE_TIMEOUT_S = 300
LOCALCLOUD_TIMEOUT_S = 180
DOCKER_TIMEOUT_S = 180
PIP_TIMEOUT_S = 900


# One id per test run, shared by pytest-xdist's workers (they get PYTEST_XDIST_TESTRUNUID), so
# work done once per run (`sam build`, the moto image) is done by one worker and reused by others.
RUN_ID = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex


@contextlib.contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (created if missing) across processes."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class CheckError(Exception):
    """A step of the check could not run; the message says which and why."""

    partial_output = ""  # what a killed command had printed


@contextlib.contextmanager
def reported(step: str) -> Iterator[None]:
    """In a test: a `CheckError` becomes a failure that reads as one message, without a traceback."""
    import pytest

    message = None
    try:
        yield
    except CheckError as exc:
        message = f"{step}: {exc}"
    if message is not None:
        pytest.fail(message, pytrace=False)


# ------------------------------------------------------------------------------ processes
@dataclass
class Ran:
    cmd: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def describe(self, tail: int = 4000) -> str:
        return (f"$ {shlex.join(self.cmd)}\n(exit {self.returncode} after {self.seconds:.1f} s)\n"
                f"--- stdout (tail) ---\n{self.stdout[-tail:]}\n--- stderr (tail) ---\n{self.stderr[-tail:]}")


def run(cmd: Sequence[str | Path], *, timeout: float, env: Mapping[str, str] | None = None,
        cwd: Path = ROOT, what: str = "", stdin: str | None = None) -> Ran:
    """Run a command to completion, capturing both streams; a timeout is a `CheckError`."""
    argv = [str(c) for c in cmd]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(argv, cwd=cwd, env=dict(env) if env is not None else None, input=stdin,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        def text(s: Any) -> str:
            return s.decode("utf-8", "replace") if isinstance(s, bytes) else (s or "")
        error = CheckError(f"{what or argv[0]} did not finish within {timeout:.0f} s (killed):\n$ {shlex.join(argv)}\n"
                           f"--- stderr (tail) ---\n{text(exc.stderr)[-4000:]}")
        error.partial_output = text(exc.stdout) + text(exc.stderr)
        raise error from None
    except FileNotFoundError:
        raise CheckError(f"{what or argv[0]}: {argv[0]} is not installed / not on PATH") from None
    return Ran(argv, proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t0)


def docker(*args: str, timeout: float = DOCKER_TIMEOUT_S, check: bool = True) -> Ran:
    result = run(["docker", *args], timeout=timeout, what=f"docker {args[0]}")
    if check and result.returncode != 0:
        raise CheckError(f"docker {args[0]} failed:\n{result.describe()}")
    return result


def docker_problem() -> str | None:
    """None when a Docker engine answers and the Lambda base image is there, else the reason."""
    if shutil.which("docker") is None:
        return "the docker CLI is not installed (../shared/tools/start-docker.sh installs it)"
    try:
        info = run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=60, what="docker info")
    except CheckError as exc:
        return str(exc)
    if info.returncode != 0:
        return f"no Docker engine answers: {(info.stderr or info.stdout).strip()[-500:]}"
    image = run(["docker", "image", "inspect", "--format", "{{.Id}}", LAMBDA_BASE_IMAGE], timeout=60)
    if image.returncode != 0:
        return (f"the Lambda base image {LAMBDA_BASE_IMAGE} is missing: build it with "
                f"PYTHON=.venv-sam/bin/python bash {SHARED}/tools/build-lambda-base.sh (make sam-check does)")
    return None


# ------------------------------------------------------------------------------------ SAM
def find_sam() -> Path:
    """The SAM CLI: first on PATH (make sam-check puts .venv-sam/bin there), else .venv-sam."""
    found = shutil.which("sam")
    candidates = [Path(found)] if found else []
    candidates.append(ROOT / ".venv-sam" / "bin" / "sam")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise CheckError("the SAM CLI is not installed: run `make sam-setup` (requirements/sam.txt)")


def localcloud_command() -> list[str]:
    """The `localcloud` CLI of the interpreter running this code (the project's venv)."""
    script = Path(sys.executable).parent / "localcloud"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "localcloud.cli"]


@dataclass
class Sam:
    """The SAM CLI with a hermetic environment: fake credentials, fixed region, no telemetry, no
    update check, and (for local runs) the proxy guard in the function containers."""

    path: Path
    app_dir: Path

    @classmethod
    def create(cls, scratch: Path) -> "Sam":
        app_dir = scratch / "sam-app-dir"
        app_dir.mkdir(parents=True, exist_ok=True)
        # SAM reads its global config from here: "checked for a newer version just now".
        (app_dir / "metadata.json").write_text(json.dumps(
            {"lastVersionCheck": time.time(), "telemetryEnabled": False}))
        return cls(find_sam(), app_dir)

    def env(self, docker_config: Path | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update({
            "PATH": f"{self.path.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "SAM_CLI_TELEMETRY": "0",
            "__SAM_CLI_APP_DIR": str(self.app_dir),
            # Never a real account: SAM hands these to the function containers.
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        })
        if docker_config is not None:
            env["DOCKER_CONFIG"] = str(docker_config)
        return env

    def run(self, *args: str | Path, timeout: float, docker_config: Path | None = None, what: str = "") -> Ran:
        try:
            return run([self.path, *args], timeout=timeout, env=self.env(docker_config),
                       what=what or f"sam {args[0]}")
        except CheckError as exc:
            # A killed `sam local` leaves its container behind: SAM logged its id, remove it.
            leftovers = re.findall(r"SAM_CONTAINER_ID: ([0-9a-f]{12,64})", exc.partial_output)
            if leftovers:
                docker("rm", "--force", *leftovers, check=False)
            raise

    def version(self) -> str:
        return self.run("--version", timeout=120).stdout.strip()


def write_docker_guard(directory: Path, reachable: Sequence[str]) -> Path:
    """A Docker client config whose proxy settings send the function containers' HTTP(S) to a
    dead proxy, except to ``reachable`` hosts and the container itself (the runtime API)."""
    directory.mkdir(parents=True, exist_ok=True)
    no_proxy = ",".join(["localhost", "127.0.0.1", *reachable])
    (directory / "config.json").write_text(json.dumps(
        {"proxies": {"default": {"httpProxy": DEAD_PROXY, "httpsProxy": DEAD_PROXY, "noProxy": no_proxy}}},
        indent=2))
    return directory


@dataclass
class BuildOutcome:
    ok: bool
    template: Path
    ran: Ran | None = None
    error: str = ""


class Builds:
    """`sam build` of the whole template into .aws-sam/sam-check/build (parallel, ``--no-cached``
    whatever samconfig.toml says).

    Not ``--cached``: with SAM 1.148, a cached build that follows a failed one reuses the
    failed build's half-filled dependency folder and reports success with layers that miss
    their packages (seen here: ServingLayer without numpy and onnxruntime). pip's own cache
    still saves the downloads.

    When the whole template does not build (a layer without Lambda-compatible wheels, say),
    `test_sam_build` fails on it, and each function is built on its own (`sam build <Fn>`, which
    builds the function and its layers) so that the invoke checks still compare what can run.
    """

    def __init__(self, sam: Sam, work: Path = WORK_DIR) -> None:
        self.sam = sam
        self.work = work
        self.whole = self._build_once(None, work)
        self._per_function: dict[str, BuildOutcome] = {}

    def _build_once(self, resource: str | None, base: Path) -> BuildOutcome:
        """`_build`, done once per test run: the first xdist worker builds, the others wait on
        the lock and reuse its outcome (recorded next to the build with the run's id)."""
        record = base / "outcome.json"
        with exclusive(base.parent / f"{base.name}.lock"):
            try:
                saved = json.loads(record.read_text())
            except (OSError, ValueError):
                saved = {}
            if saved.get("run") == RUN_ID:
                return BuildOutcome(saved["ok"], Path(saved["template"]), None, saved["error"])
            outcome = self._build(resource, base)
            record.write_text(json.dumps({"run": RUN_ID, "ok": outcome.ok, "template": str(outcome.template),
                                          "error": outcome.error}))
            return outcome

    def _build(self, resource: str | None, base: Path) -> BuildOutcome:
        build_dir = base / "build"
        base.mkdir(parents=True, exist_ok=True)
        args: list[str | Path] = ["build"] + ([resource] if resource else []) + [
            "--template-file", TEMPLATE, "--build-dir", build_dir, "--parallel", "--no-cached"]
        try:
            ran = self.sam.run(*args, timeout=BUILD_TIMEOUT_S, what=f"sam build {resource or ''}".strip())
        except CheckError as exc:
            return BuildOutcome(False, build_dir / "template.yaml", None, str(exc))
        ok = ran.returncode == 0 and (build_dir / "template.yaml").is_file()
        return BuildOutcome(ok, build_dir / "template.yaml", ran, "" if ok else ran.describe())

    def for_function(self, function_id: str) -> BuildOutcome:
        """The build to run ``function_id`` from: the whole build, else the function's own."""
        if self.whole.ok:
            return self.whole
        if function_id not in self._per_function:
            self._per_function[function_id] = self._build_once(function_id,
                                                               self.work / "per-function" / function_id)
        return self._per_function[function_id]


def tree_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` as Lambda counts them (unzipped; links not followed)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def function_size(built_template: Path, function_id: str) -> tuple[float, dict[str, float]]:
    """MiB of a built function plus its layers, and the parts, from `sam build`'s output."""
    from localcloud.template import load_stack

    fn = load_stack(built_template).functions[function_id]
    parts = {function_id: tree_bytes(fn.code_dir) / 2**20}
    for layer in fn.layers:
        parts[layer.logical_id] = tree_bytes(layer.content_dir) / 2**20
    return sum(parts.values()), parts


# --------------------------------------------------------------------------- moto server
def moto_requirement() -> str:
    """The moto pin localcloud uses (requirements/dev.txt), so both sides run the same moto."""
    for line in DEV_REQUIREMENTS.read_text().splitlines():
        spec = line.split("#")[0].strip()
        if re.match(r"^moto(\[|=|>|<|~|$)", spec):
            return spec if "[" in spec else spec.replace("moto", "moto[server]", 1)
    raise CheckError(f"{DEV_REQUIREMENTS} pins no moto")


# Bump when the way the image is made changes (the pins and the base image are hashed too).
_MOTO_RECIPE = "v1: pip --target /opt/moto (cp311, manylinux2014 + 2_28); ENTRYPOINT moto.server 0.0.0.0:5000"


def ensure_moto_image(python: str = sys.executable) -> str:
    """Build (once per recipe) the moto server image from the local Lambda base image.

    moto[server] is installed with the host's pip into a directory (``--target``) for the
    image's python (CPython 3.11, manylinux x86_64 wheels only, constrained by
    requirements/dev.txt), copied to /opt/moto in a container of the base image and committed.
    """
    spec = moto_requirement()
    base = docker("image", "inspect", "--format", "{{.Id}}", LAMBDA_BASE_IMAGE).stdout.strip()
    recipe = hashlib.sha256("\n".join([
        spec, DEV_REQUIREMENTS.read_text(), base, _MOTO_RECIPE]).encode()).hexdigest()[:16]
    tag = f"{MOTO_IMAGE_REPO}:{recipe}"
    with exclusive(WORK_DIR.parent / "sam-check-moto-image.lock"):  # one builder among xdist workers
        if docker("image", "inspect", tag, check=False).returncode == 0:
            return tag
        return _build_moto_image(python, spec, tag, recipe)


def _build_moto_image(python: str, spec: str, tag: str, recipe: str) -> str:
    """Make the image `ensure_moto_image` describes and drop older recipes of it."""
    with tempfile.TemporaryDirectory(prefix="sam-check-moto-") as tmp:
        site = Path(tmp) / "moto"
        # pip takes no extras in a constraints file: moto[server]==x -> moto==x.
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("\n".join(
            re.sub(r"\[[^\]]*\]", "", line.split("#")[0].strip())
            for line in DEV_REQUIREMENTS.read_text().splitlines() if line.split("#")[0].strip()) + "\n")
        pip = run([python, "-m", "pip", "install", "--quiet", "--no-cache-dir", "--no-compile",
                   "--disable-pip-version-check", "--target", site, "--only-binary=:all:",
                   "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64",
                   "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
                   "-c", constraints, spec], timeout=PIP_TIMEOUT_S, what=f"pip install {spec}")
        if pip.returncode != 0 or not (site / "moto").is_dir():
            raise CheckError(f"could not install {spec} for the moto image:\n{pip.describe()}")
        shutil.rmtree(site / "bin", ignore_errors=True)
        cid = docker("create", "--label", LABEL, "--entrypoint", "/bin/true", LAMBDA_BASE_IMAGE).stdout.strip()
        try:
            docker("cp", f"{site}/.", f"{cid}:/opt/moto", timeout=600)
            docker("commit",
                   "--change", "ENV PYTHONPATH=/opt/moto",
                   "--change", "WORKDIR /",
                   "--change", f"EXPOSE {MOTO_PORT}",
                   "--change", f"LABEL {LABEL}.moto={recipe}",
                   "--change", f'ENTRYPOINT ["/var/lang/bin/python3.11", "-m", "moto.server", '
                               f'"--host", "0.0.0.0", "--port", "{MOTO_PORT}"]',
                   cid, tag, timeout=600)
        finally:
            docker("rm", "-f", cid, check=False)
    # Older recipes of this image are superseded.
    for line in docker("images", "--format", "{{.Repository}}:{{.Tag}}", MOTO_IMAGE_REPO).stdout.split():
        if line != tag:
            docker("rmi", line, check=False)
    return tag


class DockerNetwork:
    """A Docker network of our own. `close` removes every container attached to it (ours, and
    the function containers SAM attached with ``--docker-network``), then the network."""

    def __init__(self, purpose: str) -> None:
        self.name = f"sam-check-{purpose}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._created = False
        self._containers: list[str] = []

    def create(self) -> "DockerNetwork":
        docker("network", "create", "--label", LABEL, self.name)
        self._created = True
        return self

    def own(self, container: str) -> None:
        """Remove ``container`` on `close` too (even if it never got attached)."""
        self._containers.append(container)

    def close(self) -> None:
        """Idempotent; never raises."""
        try:
            ids = list(self._containers)
            if self._created:
                inspect = docker("network", "inspect", "--format",
                                 "{{range $id, $c := .Containers}}{{$id}} {{end}}", self.name, check=False)
                ids += inspect.stdout.split() if inspect.returncode == 0 else []
            if ids:
                docker("rm", "--force", "--volumes", *ids, check=False)
            if self._created:
                docker("network", "rm", self.name, check=False)
        except CheckError:
            pass
        self._created, self._containers = False, []

    def __enter__(self) -> "DockerNetwork":
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.close()


class MotoServer:
    """A moto server in a container on a Docker network of its own.

    ``container_url`` is how function containers attached to ``network`` reach it (its address
    on that network: an IP, so S3 uses path-style addressing as with localcloud's 127.0.0.1);
    ``host_url`` is its port published on the host's 127.0.0.1, for provisioning.
    """

    def __init__(self, image: str) -> None:
        self.image = image
        self._net = DockerNetwork("moto")
        self.network = self._net.name
        self.container = self.network.replace("sam-check-moto-", "sam-check-moto-server-", 1)
        self.container_url = ""
        self.host_url = ""
        self.ip = ""

    def start(self) -> "MotoServer":
        try:
            self._net.create()
            self._net.own(self.container)
            docker("run", "--detach", "--name", self.container, "--label", LABEL, "--network", self.network,
                   "--publish", f"127.0.0.1::{MOTO_PORT}", self.image)
            fmt = '{{(index .NetworkSettings.Networks "%s").IPAddress}}' % self.network
            self.ip = docker("inspect", "--format", fmt, self.container).stdout.strip()
            published = docker("port", self.container, f"{MOTO_PORT}/tcp").stdout.split()
            host_port = next((p.rsplit(":", 1)[1] for p in published if p.startswith("127.0.0.1:")), None)
            if not self.ip or not host_port:
                raise CheckError(f"moto container {self.container}: no address (ip={self.ip!r}, ports={published})")
            self.container_url = f"http://{self.ip}:{MOTO_PORT}"
            self.host_url = f"http://127.0.0.1:{host_port}"
            self._wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def _wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.host_url}/moto-api/", timeout=5) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.3)
        logs = docker("logs", "--tail", "40", self.container, check=False)
        raise CheckError(f"the moto container did not answer on {self.host_url} within {timeout:.0f} s:\n"
                         f"{logs.stdout}{logs.stderr}")

    def client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(service, endpoint_url=self.host_url, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            config=Config(retries={"max_attempts": 2}, proxies={}))

    def reset_and_provision(self, stack: Any) -> None:
        """A fresh copy of the template's resources, as each `localcloud invoke` starts with."""
        from localcloud.provision import api_key_values, provision

        req = urllib.request.Request(f"{self.host_url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=30) as resp:
            if resp.status != 200:
                raise CheckError(f"moto reset answered {resp.status}")
        provision(stack, self.client, api_key_values(stack, {}))

    def close(self) -> None:
        """Remove the moto container, any function container SAM left on the network, and the
        network. Idempotent; never raises."""
        self._net.close()

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------- cases and events
@dataclass(frozen=True)
class Case:
    """One sample event of one function: events/<FunctionLogicalId>[-variant].json."""

    function_id: str
    event: Path | None  # None: the function has no sample event (a failing case)

    @property
    def id(self) -> str:
        return self.event.stem if self.event else f"{self.function_id}-NO-EVENT"


def discover(function_ids: Sequence[str], events_dir: Path = EVENTS_DIR) -> tuple[list[Case], list[Path]]:
    """Every (function, event) pair, a no-event case per function without one, and the event
    files that name no function of the template. Logical ids are alphanumeric, so the part of
    the file name before the first '-' is the function."""
    files = sorted(events_dir.glob("*.json")) if events_dir.is_dir() else []
    by_function: dict[str, list[Path]] = {fid: [] for fid in function_ids}
    orphans = []
    for path in files:
        owner = path.stem.split("-", 1)[0]
        (by_function[owner] if owner in by_function else orphans).append(path)
    cases = []
    for fid in function_ids:
        cases.extend([Case(fid, p) for p in by_function[fid]] or [Case(fid, None)])
    return cases, orphans


def env_vars_file(path: Path, fn: Any, endpoint_url: str | None) -> Path:
    """SAM's ``--env-vars`` file for ``fn``: every variable the template declares, with the value
    localcloud resolved (SAM resolves a Ref to a table to its logical id; localcloud provisions
    ``<stack>-<LogicalId>``, and the moto container is provisioned by localcloud), plus the moto
    container as ``AWS_ENDPOINT_URL`` (applied only if the template declares it)."""
    variables = dict(fn.environment)
    if endpoint_url:
        variables[ENDPOINT_VARIABLE] = endpoint_url
    path.write_text(json.dumps({fn.logical_id: variables}, indent=2))
    return path


# ------------------------------------------------------------------------------ responses
def parse_payload(stdout: str, who: str) -> Any:
    """The invoke's response from stdout: the whole of it, else its last non-empty line."""
    text = stdout.strip()
    candidates = [text] + [line for line in reversed(text.splitlines()) if line.strip()][:1]
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    raise CheckError(f"{who} did not print a JSON response on stdout:\n{stdout[-4000:]}")


# The one place where SAM and localcloud may legitimately answer differently. Each entry is a
# top-level key of the payload and why it differs; its value is rewritten on both sides only
# when both sides have it (a key on one side only is always reported as a difference).
NORMALISED = {
    "requestId": "Lambda error payloads carry the invocation's request id, random per invoke",
    "stackTrace": "frames name the file where the code lives (/var/task, /opt/python in the container; "
                  "the source tree under localcloud): only the file's base name is kept",
}
_FRAME_PATH = re.compile(r'File "(?:[^"]*/)?([^"/]+)"')


def normalise(payload: Any, other: Any) -> Any:
    """``payload`` ready for comparison with ``other``: NORMALISED entries rewritten, and a proxy
    response's body decoded (base64 when flagged) and parsed when it is JSON."""
    out = copy.deepcopy(payload)
    if not isinstance(out, dict):
        return out
    both = isinstance(other, dict)
    if both and "requestId" in out and "requestId" in other:
        out["requestId"] = "<request id>"
    if both and isinstance(out.get("stackTrace"), list) and "stackTrace" in other:
        out["stackTrace"] = [_FRAME_PATH.sub(r'File "\1"', str(frame)) for frame in out["stackTrace"]]
    if isinstance(out.get("body"), str):
        body = out["body"]
        if out.get("isBase64Encoded"):
            try:
                body = base64.b64decode(body).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                return out  # binary: compare the base64 text as is
        try:
            out["body"] = {"<parsed JSON body>": json.loads(body)}
        except json.JSONDecodeError:
            out["body"] = body
    return out


def differences(sam: Any, local: Any) -> list[str]:
    """What differs between the two normalised responses ([] when they agree)."""
    a, b = normalise(sam, local), normalise(local, sam)
    if a == b:
        return []
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return ["the payloads differ"]
    out = []
    for key in ("statusCode", "body"):
        if a.get(key) != b.get(key):
            out.append(f"{key}: sam={json.dumps(a.get(key), sort_keys=True)} localcloud={json.dumps(b.get(key), sort_keys=True)}")
    for key in sorted(set(a) | set(b)):
        if key in ("statusCode", "body"):
            continue
        if key not in a or key not in b:
            out.append(f"{key}: only {'sam' if key in a else 'localcloud'} has it")
        elif a[key] != b[key]:
            out.append(f"{key}: sam={json.dumps(a[key], sort_keys=True)} localcloud={json.dumps(b[key], sort_keys=True)}")
    return out


def pretty(payload: Any) -> str:
    return json.dumps(payload, indent=2, sort_keys=True)


# -------------------------------------------------------------------------------- servers
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A `sam local start-api` / `localcloud start-api` process that this code started."""

    proc: subprocess.Popen
    url: str
    log: Path
    started_s: float = 0.0
    extra: dict = field(default_factory=dict)

    def stop(self, timeout: float = 60.0) -> None:
        """SIGINT (both CLIs clean up on Ctrl-C: SAM stops its warm containers), then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


def start_server(cmd: Sequence[str | Path], *, env: Mapping[str, str], log: Path, url: str,
                 ready_path: str, headers: Mapping[str, str], timeout: float = 300.0) -> Server:
    """Start a server and wait until ``ready_path`` answers 200."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out = log.open("w")
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    server = Server(proc, url, log)
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CheckError(f"{shlex.join(map(str, cmd))} exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            status, _h, body = http_get(url + ready_path, headers, timeout=30)
            if status == 200:
                server.started_s = time.perf_counter() - t0
                return server
            last = f"{status} {body[:200]!r}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.5)
    server.stop()
    raise CheckError(f"{shlex.join(map(str, cmd))} did not answer 200 on {ready_path} within {timeout:.0f} s "
                     f"(last: {last}):\n{log.read_text()[-4000:]}")


def http_get(url: str, headers: Mapping[str, str], timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    """One GET on a new connection (neither local server is measured with keep-alive)."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=dict(headers))
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


# ------------------------------------------------------------------ the endpoint variable
TEMPLATE_CHANGE = """\
template.yaml must declare AWS_ENDPOINT_URL for every function, empty by default (boto3 ignores
an empty AWS_ENDPOINT_URL, so on AWS nothing changes), so that `sam local invoke --env-vars`
can point the function at the moto container:
  Parameters:
    AwsEndpointUrl:
      Type: String
      Default: ""
      Description: Leave empty on AWS. Local runs (make sam-check) point the functions' AWS SDK at a local endpoint.
  Globals:
    Function:
      Environment:
        Variables:
          AWS_ENDPOINT_URL: !Ref AwsEndpointUrl"""


def localcloud_endpoint_problem(fn: Any) -> str | None:
    """None when localcloud points ``fn``'s AWS SDK at its own endpoint; else why it would not
    (then invoking it could reach AWS, so the check refuses to)."""
    from localcloud.runtime import function_environment

    probe = "http://127.0.0.1:1"
    got = function_environment(fn, REGION, probe).get(ENDPOINT_VARIABLE)
    if got == probe:
        return None
    return (f"localcloud would give {fn.logical_id} {ENDPOINT_VARIABLE}={got!r} instead of its own endpoint, "
            f"so the function's AWS calls could leave the machine; not invoking it. "
            f"infra/localcloud/runtime.py function_environment must keep localcloud's endpoint when the "
            f"template declares {ENDPOINT_VARIABLE} empty (set it after `env.update(declared)` when the "
            f"declared value is empty).")
