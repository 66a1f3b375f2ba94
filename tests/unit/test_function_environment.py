"""The environment localcloud gives a function: Lambda's variables, the template's, overrides."""

from __future__ import annotations

from pathlib import Path

from localcloud.runtime import function_environment, load_env_vars_file
from localcloud.template import load_stack

ROOT = Path(__file__).resolve().parents[2]


def test_lambda_variables_and_declared_ones() -> None:
    fn = load_stack(ROOT / "template.yaml").functions["HealthFunction"]
    env = function_environment(fn, "eu-west-1", "http://127.0.0.1:4566")
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "mlops-HealthFunction"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["_HANDLER"] == "app.lambda_handler"
    assert env["REGISTRY_TABLE"] == "mlops-RegistryTable"
    assert env["AWS_ACCESS_KEY_ID"] == "testing"  # never the developer's real credentials


def test_an_empty_endpoint_variable_never_sends_the_sdk_to_aws() -> None:
    """template.yaml declares AWS_ENDPOINT_URL empty (for sam local); localcloud fills it in."""
    fn = load_stack(ROOT / "template.yaml").functions["HealthFunction"]
    assert fn.environment["AWS_ENDPOINT_URL"] == ""
    env = function_environment(fn, "us-east-1", "http://127.0.0.1:4566")
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    # An explicit override still wins, as SAM's --env-vars does.
    env = function_environment(fn, "us-east-1", "http://127.0.0.1:4566",
                               {"HealthFunction": {"AWS_ENDPOINT_URL": "http://10.0.0.1:5000"}})
    assert env["AWS_ENDPOINT_URL"] == "http://10.0.0.1:5000"


def test_env_vars_file_overrides_only_declared_variables(tmp_path: Path) -> None:
    fn = load_stack(ROOT / "template.yaml").functions["HealthFunction"]
    path = tmp_path / "env.json"
    path.write_text('{"Parameters": {"LOG_LEVEL": "DEBUG", "NOT_DECLARED": "x"}, "HealthFunction": {"STAGE": "qa"}}')
    env = function_environment(fn, "us-east-1", None, load_env_vars_file(str(path)))
    assert env["LOG_LEVEL"] == "DEBUG" and env["STAGE"] == "qa"
    assert "NOT_DECLARED" not in env
