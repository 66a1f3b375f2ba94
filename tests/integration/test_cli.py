"""The `localcloud` command as a user runs it: stdout, stderr and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCALCLOUD = [sys.executable, "-m", "localcloud.cli"]


def run(*args: str, cwd: Path = ROOT, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCALCLOUD_")}
    return subprocess.run([*LOCALCLOUD, *args], cwd=cwd, input=stdin, capture_output=True, text=True,
                          timeout=timeout, env=env)


def health_event(deep: bool) -> str:
    return json.dumps({
        "resource": "/health", "path": "/health", "httpMethod": "GET", "headers": {},
        "queryStringParameters": {"deep": "true"} if deep else None,
        "requestContext": {"requestId": "r1", "stage": "dev", "resourcePath": "/health", "httpMethod": "GET"},
        "body": None, "isBase64Encoded": False,
    })


def test_invoke_prints_the_response_on_stdout_and_logs_on_stderr() -> None:
    result = run("invoke", "HealthFunction", "--event", "-", stdin=health_event(deep=True))
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout)
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["status"] == "ok"
    assert set(body["checks"].values()) == {"ok"} and len(body["checks"]) == 7
    assert "START RequestId:" in result.stderr
    assert "Init Duration:" in result.stderr
    assert "{" not in result.stderr.split("START")[0]  # nothing of the response leaks into the log


def test_invoke_event_file_and_env_vars_override(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(health_event(deep=False))
    env_vars = tmp_path / "env.json"
    # STAGE is declared (Globals) so it is overridden; UNDECLARED is not, so it is ignored.
    env_vars.write_text(json.dumps({"HealthFunction": {"POWERTOOLS_SERVICE_NAME": "renamed", "UNDECLARED": "x"}}))
    result = run("invoke", "HealthFunction", "-e", str(event), "--env-vars", str(env_vars))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["statusCode"] == 200
    assert '"service":"renamed"' in result.stderr  # the EMF line carries the service name


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("invoke", "NoSuchFunction"), None, "unknown function 'NoSuchFunction' (the template has: "),
        (("invoke", "HealthFunction", "-e", "-"), "{not json", "--event from standard input is not valid JSON"),
        (("invoke", "HealthFunction", "-e", "missing.json"), None, "--event missing.json: no such file"),
        (("invoke", "HealthFunction", "-t", "nope.yaml"), None, "template nope.yaml not found"),
        (("execute", "NoSuchMachine"), None, "unknown state machine 'NoSuchMachine'"),
        (("invoke", "HealthFunction", "--parameter-overrides", "Stage=qa"), None, "parameter Stage='qa' is not one of"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(args: tuple, stdin: str | None, message: str) -> None:
    result = run(*args, stdin=stdin)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("localcloud: error: ") and message in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback() -> None:
    result = run("invoke", "NoSuchFunction", "--debug")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_template_errors_and_import_failures(tmp_path: Path) -> None:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("import no_such_module\n\ndef handler(e, c):\n    return 1\n")
    (tmp_path / "template.yaml").write_text(textwrap.dedent("""
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Broken:
            Type: AWS::Serverless::Function
            Properties: {CodeUri: fn, Handler: app.handler, Runtime: python3.11}
    """))
    result = run("invoke", "Broken", cwd=tmp_path)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last == ("localcloud: error: Broken: Runtime.ImportModuleError: "
                    "Unable to import module 'app': No module named 'no_such_module'")

    (tmp_path / "template.yaml").write_text("Resources:\n  X: {Type: AWS::EC2::Instance}\n")
    result = run("validate", cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip() == "localcloud: error: X: localcloud cannot emulate the resource type AWS::EC2::Instance"


def test_port_in_use_is_one_line() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = run("start", "--moto-port", str(port), timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("localcloud: error: cannot serve the moto endpoint on 127.0.0.1:")
    assert "Address already in use" in result.stderr
