"""Loading SAM templates: the product template, Globals, names, and what is refused."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from localcloud.errors import LocalCloudError, UnsupportedConstruct
from localcloud.template import load_stack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack():
    return load_stack(ROOT / "template.yaml")


def write_template(tmp_path: Path, body: str, *, code: bool = True) -> Path:
    if code:
        (tmp_path / "fn").mkdir(exist_ok=True)
        (tmp_path / "fn" / "app.py").write_text("def handler(event, context):\n    return event\n")
    path = tmp_path / "template.yaml"
    path.write_text("Transform: AWS::Serverless-2016-10-31\n" + textwrap.dedent(body))
    return path


def test_product_template_functions_and_globals(stack) -> None:
    fn = stack.functions["HealthFunction"]
    assert fn.name == "mlops-HealthFunction"
    assert fn.runtime == "python3.11" and fn.architectures == ("x86_64",)
    assert fn.timeout == 10 and fn.memory_size == 512  # from Globals
    # Globals variables merged with the function's own, Refs resolved to physical names.
    assert fn.environment["POWERTOOLS_SERVICE_NAME"] == "health"
    assert fn.environment["REGISTRY_TABLE"] == "mlops-RegistryTable"
    assert fn.environment["ARTIFACTS_BUCKET"] == "mlops-artifactsbucket"
    assert fn.environment["STAGE"] == "dev"
    assert [layer.logical_id for layer in fn.layers] == ["CommonLayer"]
    assert (fn.layers[0].python_path / "mlops" / "__init__.py").is_file()


def test_product_template_resources(stack) -> None:
    assert set(stack.tables) == {
        "FeaturesTable", "RegistryTable", "DeploymentsTable", "PredictionsTable",
        "AuditTable", "ExperimentsTable", "IdempotencyTable",
    }
    for table in stack.tables.values():
        assert table.properties["SSESpecification"] == {"SSEEnabled": True}
        assert table.properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert stack.tables["FeaturesTable"].properties["TimeToLiveSpecification"]["AttributeName"] == "expires_at"
    assert set(stack.buckets) == {"ArtifactsBucket", "DataBucket", "AuditArchiveBucket"}
    archive = stack.buckets["AuditArchiveBucket"].properties
    assert archive["ObjectLockEnabled"] is True and archive["VersioningConfiguration"] == {"Status": "Enabled"}
    assert archive["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": "2555"}
    assert all(archive["PublicAccessBlockConfiguration"].values()) and "BucketEncryption" in archive
    routes = {(r.method, r.path): (r.function_id, r.api_key_required) for r in stack.routes}
    assert routes[("GET", "/health")] == ("HealthFunction", True)
    assert routes[("GET", "/openapi.json")] == ("HealthFunction", True)
    assert routes[("POST", "/features")] == ("FeatureIngestFunction", True)
    assert routes[("GET", "/features/{entity_id}")] == ("FeatureLookupFunction", True)
    assert routes[("GET", "/feature-views")] == ("FeatureViewsFunction", True)
    assert all(required for _, required in routes.values())  # every route needs an API key
    assert stack.apis["MlopsApi"].stage == "dev" and stack.apis["AdminApi"].stage == "dev"
    # Admin routes are on AdminApi, whose usage plan has the admin key only (access control).
    assert stack.keys_for_api("MlopsApi") == {"ApiKey", "AdminApiKey"}
    assert stack.keys_for_api("AdminApi") == {"AdminApiKey"}
    assert {k.env_var for k in stack.api_keys.values()} == {"LOCALCLOUD_API_KEY", "LOCALCLOUD_ADMIN_API_KEY"}
    assert set(stack.state_machines) == {"RetrainingStateMachine", "CanaryRolloutStateMachine"}
    # DefinitionSubstitutions replaced the table name inside the ASL.
    plan = stack.state_machines["RetrainingStateMachine"].definition["States"]["Plan"]
    assert plan["Parameters"]["FunctionName"] == stack.functions["RolloutFunction"].arn
    child = stack.state_machines["RetrainingStateMachine"].definition["States"]["CanaryRollout"]
    assert child["Parameters"]["StateMachineArn"] == stack.state_machines["CanaryRolloutStateMachine"].arn
    [weekly] = [s for s in stack.schedules if s.target_id == "RetrainingStateMachine"]
    assert (weekly.expression, weekly.target_id, weekly.target_kind) == (
        "cron(0 3 ? * SUN *)", "RetrainingStateMachine", "state_machine")


def test_parameter_overrides_and_allowed_values(tmp_path: Path) -> None:
    stack = load_stack(ROOT / "template.yaml", parameter_overrides={"Stage": "prod"}, stack_name="s2")
    assert stack.functions["HealthFunction"].environment["STAGE"] == "prod"
    assert stack.functions["HealthFunction"].name == "s2-HealthFunction"
    assert stack.apis["MlopsApi"].stage == "prod"
    with pytest.raises(LocalCloudError, match=r"parameter Stage='qa' is not one of"):
        load_stack(ROOT / "template.yaml", parameter_overrides={"Stage": "qa"})
    with pytest.raises(LocalCloudError, match="undeclared parameter"):
        load_stack(ROOT / "template.yaml", parameter_overrides={"Nope": "1"})


def test_globals_merge_maps_and_lists(tmp_path: Path) -> None:
    path = write_template(tmp_path, """
        Globals:
          Function:
            Runtime: python3.11
            Handler: app.handler
            Timeout: 7
            Environment: {Variables: {A: global, B: global}}
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: fn
              Timeout: 9
              Environment: {Variables: {B: own, C: !Sub "${AWS::Region}-${AWS::AccountId}"}}
    """)
    fn = load_stack(path, region="eu-west-1").functions["Fn"]
    assert fn.timeout == 9
    assert fn.environment == {"A": "global", "B": "own", "C": "eu-west-1-123456789012"}


def test_conditions_remove_resources(tmp_path: Path) -> None:
    path = write_template(tmp_path, """
        Parameters:
          Env: {Type: String, Default: dev}
        Conditions:
          IsProd: !Equals [!Ref Env, prod]
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties: {CodeUri: fn, Handler: app.handler, Runtime: python3.11}
          ProdOnlyTable:
            Type: AWS::DynamoDB::Table
            Condition: IsProd
            Properties:
              AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
              KeySchema: [{AttributeName: pk, KeyType: HASH}]
    """)
    assert "ProdOnlyTable" not in load_stack(path).tables
    assert "ProdOnlyTable" in load_stack(path, parameter_overrides={"Env": "prod"}).tables


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("""
        Resources:
          Q:
            Type: AWS::Kinesis::Stream
            Properties: {ShardCount: 1}
        """, "Q: localcloud cannot emulate the resource type AWS::Kinesis::Stream"),
        ("""
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: fn
              Handler: app.handler
              Runtime: python3.11
              Events:
                Stream: {Type: Kinesis, Properties: {Stream: arn, StartingPosition: LATEST}}
        """, "Fn.Events.Stream: localcloud cannot emulate the event source Kinesis"),
        ("""
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties: {CodeUri: fn, Handler: app.handler, Runtime: nodejs20.x}
        """, "Fn: localcloud cannot emulate Runtime nodejs20.x"),
        ("""
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: fn
              Handler: app.handler
              Runtime: python3.11
              Layers: [arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3:1]
        """, "only layers defined in this template are available offline"),
        ("""
        Resources:
          Api:
            Type: AWS::Serverless::Api
            Properties:
              StageName: v1
              Auth: {DefaultAuthorizer: Cognito, Authorizers: {Cognito: {UserPoolArn: x}}}
        """, "Api: localcloud cannot emulate Auth.DefaultAuthorizer"),
        ("""
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties: {CodeUri: missing_dir, Handler: app.handler, Runtime: python3.11}
        """, "Fn: CodeUri missing_dir does not exist"),
        ("""
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: fn
              Handler: app.handler
              Runtime: python3.11
              Environment: {Variables: {X: !ImportValue other-stack-output}}
        """, "Fn: localcloud cannot emulate Fn::ImportValue"),
        ("""
        Resources:
          Sm:
            Type: AWS::Serverless::StateMachine
            Properties:
              Definition: {StartAt: A, States: {A: {Type: Pass, End: true, Result: "${Missing}"}}}
        """, r"Sm: DefinitionSubstitutions has no value for \$\{Missing\}"),
        ("""
        Resources: {}
        """, "the template has no Resources"),
    ],
)
def test_unsupported_or_broken_templates_name_the_resource(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(LocalCloudError, match=message):
        load_stack(write_template(tmp_path, body))


def test_unsupported_is_its_own_type(tmp_path: Path) -> None:
    path = write_template(tmp_path, """
        Resources:
          Q: {Type: AWS::Kinesis::Stream, Properties: {ShardCount: 1}}
    """)
    with pytest.raises(UnsupportedConstruct) as info:
        load_stack(path)
    assert (info.value.resource, info.value.construct) == ("Q", "the resource type AWS::Kinesis::Stream")


def test_lookup_by_logical_id_name_or_arn(stack) -> None:
    fn = stack.functions["HealthFunction"]
    assert stack.function(fn.name) is fn and stack.function(fn.arn) is fn
    with pytest.raises(LocalCloudError, match=r"unknown function 'Nope' \(the template has: [A-Za-z, ]*HealthFunction"):
        stack.function("Nope")
    with pytest.raises(LocalCloudError, match="unknown state machine 'Nope'"):
        stack.state_machine("Nope")


def test_cfn_lint_reports_nothing() -> None:
    """The template lints clean (the one ignored rule is documented in its Metadata)."""
    lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(lint), str(ROOT / "template.yaml")], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


def test_no_wildcard_permissions() -> None:
    """Least privilege: no inline policy statement grants '*' actions or resources."""
    text = (ROOT / "template.yaml").read_text()
    assert not re.search(r"Action:\s*['\"]?\*", text)
    assert not re.search(r"Resource:\s*['\"]?\*", text)
    assert not re.search(r"^\s*-\s*['\"]?\*['\"]?\s*$", text, re.M)
