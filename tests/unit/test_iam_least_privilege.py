"""Least privilege in template.yaml, derived from the functions' code.

What a function may touch is read from its code, not from a list kept next to the template:
- the tables, buckets, topics and state machines its handler names (``os.environ[...]``, the
  ``Resources``/``from_env`` factories it calls) are the only ones it may be granted;
- DeleteItem/ConditionCheckItem (DynamoDBCrudPolicy) only on a table whose store module the
  function imports deletes or condition-checks items in it; no S3 delete anywhere;
- write access to RegistryTable only for functions whose code writes the registry.
SAM policy templates are expanded with the SAM translator's own definitions, so that "no
wildcard action" is checked on the actions IAM would really get.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import samtranslator

from localcloud.intrinsics import load_yaml
from mlops.config import BUCKET_VARIABLES, TABLE_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "common" / "python"
TEMPLATE = load_yaml((ROOT / "template.yaml").read_text(), "template.yaml")
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
SAM_POLICY_TEMPLATES: dict[str, Any] = json.loads(
    (Path(samtranslator.__file__).parent / "policy_templates_data" / "policy_templates.json").read_text())["Templates"]
FUNCTIONS = sorted(k for k, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function")
STATE_MACHINES = sorted(k for k, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::StateMachine")

# Store modules that delete or condition-check DynamoDB items (both need DynamoDBCrudPolicy:
# SAM's read and write templates have no DeleteItem and no ConditionCheckItem), and the table
# each one works on. test_deleting_modules_are_all_known keeps this list complete.
DELETING_MODULES = {
    "mlops/models/registry_store.py": "RegistryTable",  # alias moves: ConditionCheck on the version
    "mlops/experiments/store.py": "ExperimentsTable",  # stop: Delete of the model's active marker
    "mlops/rollout/lock.py": "DeploymentsTable",  # the rollout lease is released with DeleteItem
}
POWERTOOLS_IDEMPOTENCY = "aws_lambda_powertools.utilities.idempotency"  # deletes a failed record
# Calls that write the registry (models, runs, feature registry) from outside its store modules.
REGISTRY_WRITE = re.compile(r"\b(?:registry|runs)\.(?:register_version|set_approval|move_alias|remove_alias|"
                            r"apply|apply_one|record_ingest|mark_materialized|record)\(")
DELETE_CALL = re.compile(r"\.delete_item\(|[\"'](?:Delete|ConditionCheck)[\"']\s*:|\.delete_objects?\(")


# ------------------------------------------------------------------------------ template


def target(value: Any) -> str:
    """The resource (or literal) a policy parameter or an environment value points at."""
    if isinstance(value, dict) and len(value) == 1:
        (key, arg), = value.items()
        if key == "Ref":
            return arg
        if key == "Fn::GetAtt":
            return (arg.split(".") if isinstance(arg, str) else arg)[0]
        if key == "Fn::Sub":
            return arg if isinstance(arg, str) else arg[0]
    return str(value)


def policies(logical_id: str) -> list[tuple[str, dict]]:
    """(SAM policy template, its parameters) of a function or state machine; inline statements
    come back as ("Statement", the policy document)."""
    out = []
    for policy in RESOURCES[logical_id]["Properties"].get("Policies") or []:
        assert isinstance(policy, dict) and len(policy) == 1, (logical_id, policy)
        (name, params), = policy.items()
        out.append((name, params))
    return out


def sam_actions(name: str) -> set[str]:
    statements = SAM_POLICY_TEMPLATES[name]["Definition"]["Statement"]
    return {a for st in statements for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}


def environment(fn: str) -> dict[str, str]:
    """Each environment variable of the function (Globals merged) and what it points at."""
    env = dict(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"])
    env.update(((RESOURCES[fn]["Properties"].get("Environment") or {}).get("Variables")) or {})
    return {var: target(value) for var, value in env.items()}


def grants(fn: str) -> dict[str, set[str]]:
    """Resource (logical id, or the literal/Sub text) -> the SAM templates granted on it."""
    out: dict[str, set[str]] = {}
    for name, params in policies(fn):
        for value in params.values():
            out.setdefault(target(value), set()).add(name)
    return out


# ------------------------------------------------------------------------------ code


def app_path(fn: str) -> Path:
    return ROOT / RESOURCES[fn]["Properties"]["CodeUri"] / "app.py"


def module_path(name: str) -> Path | None:
    if name != "mlops" and not name.startswith("mlops."):
        return None
    base = LAYER / name.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def imports(path: Path) -> frozenset[str]:
    """Modules imported anywhere in a file (also inside functions), absolute names."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(LAYER).with_suffix("").parts[:-1]) if path.is_relative_to(LAYER) else ""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(p for p in [*parts, base] if p)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(names)


@cache
def closure(fn: str) -> tuple[Path, ...]:
    """The handler and every mlops module it imports, transitively."""
    seen: dict[Path, None] = {app_path(fn): None}
    todo = [app_path(fn)]
    while todo:
        for name in imports(todo.pop()):
            path = module_path(name)
            if path is not None and path not in seen:
                seen[path] = None
                todo.append(path)
    return tuple(seen)


def named_variables(source: str) -> set[str]:
    """Environment variables a piece of code reads: ``os.environ[...]``/``.get(...)``, and the
    roles it takes from `mlops.config.Resources` (``.tables["registry"]``, ``.tables.get(...)``;
    ``.tables`` alone is every table)."""
    found = set(re.findall(r"os\.environ(?:\.get)?[\[(]\s*[\"'](\w+)[\"']", source))
    found |= {TABLE_VARIABLES[role] for role in re.findall(r"\.tables(?:\[|\.get\()[\"'](\w+)[\"']", source)}
    found |= {BUCKET_VARIABLES[role] for role in re.findall(r"\.buckets(?:\[|\.get\()[\"'](\w+)[\"']", source)}
    if re.search(r"\.tables\b(?![\[.])", source):
        found |= set(TABLE_VARIABLES.values())
    return found


def factory_source(class_name: str, module: Path) -> str:
    """The source of a class's ``from_env`` and ``__init__`` (where a store may read its names)."""
    text = module.read_text()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return "\n".join(ast.get_source_segment(text, item) or "" for item in node.body
                             if isinstance(item, ast.FunctionDef) and item.name in ("from_env", "__init__"))
    return ""


def code_variables(fn: str) -> set[str]:
    """What the handler names: its own reads plus those of the mlops classes it builds
    (``X(...)`` or ``X.from_env``: their ``__init__``/``from_env``)."""
    source = app_path(fn).read_text()
    found = named_variables(source)
    tree = ast.parse(source)
    where = {alias.asname or alias.name: node.module for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) and node.module for alias in node.names}
    for class_name in set(re.findall(r"\b([A-Z]\w+)(?:\.from_env\b|\()", source)):
        module = module_path(where.get(class_name, ""))
        if module is not None:
            found |= named_variables(factory_source(class_name, module))
    return found


def code_resources(fn: str) -> set[str]:
    env = environment(fn)
    return {env[var] for var in code_variables(fn) if var in env}


def deletes(fn: str) -> set[str]:
    """Tables the function's code deletes from or condition-checks."""
    rel = {str(p.relative_to(LAYER)) for p in closure(fn) if p.is_relative_to(LAYER)}
    found = {table for module, table in DELETING_MODULES.items() if module in rel}
    if any(POWERTOOLS_IDEMPOTENCY in imports(p) for p in closure(fn)):
        found.add("IdempotencyTable")
    return found


def writes_registry(fn: str) -> bool:
    return any(REGISTRY_WRITE.search(p.read_text()) for p in closure(fn))


# ------------------------------------------------------------------------------ tests


def test_no_wildcard_actions_or_resources() -> None:
    for logical_id in FUNCTIONS + STATE_MACHINES:
        for name, params in policies(logical_id):
            if name == "Statement":
                statements = params
                actions = {a for st in statements for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}
                assert all(st["Resource"] != "*" for st in statements), logical_id
            else:
                assert name in SAM_POLICY_TEMPLATES, (logical_id, name)
                actions = sam_actions(name)
            assert actions, (logical_id, name)
            wild = {a for a in actions if "*" in a}
            assert not wild, (logical_id, name, wild)  # neither "*" nor "dynamodb:*" nor "s3:Get*"


def test_functions_use_sam_policy_templates_only() -> None:
    for fn in FUNCTIONS:
        names = [name for name, _ in policies(fn)]
        assert names and all(name in SAM_POLICY_TEMPLATES for name in names), (fn, names)
    # One inline statement in the stack: startExecution.sync:2 needs DescribeExecution/StopExecution
    # and the managed EventBridge rule, which no SAM template grants.
    inline = {sm for sm in STATE_MACHINES if any(name == "Statement" for name, _ in policies(sm))}
    assert inline == {"RetrainingStateMachine"}


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_a_function_is_granted_only_what_its_code_names(fn: str) -> None:
    named = code_resources(fn)
    granted = grants(fn)
    assert set(granted) <= named, f"{fn}: granted {sorted(set(granted) - named)} that its code never names"


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_delete_and_condition_check_only_where_the_code_needs_them(fn: str) -> None:
    crud = {resource for resource, names in grants(fn).items() if "DynamoDBCrudPolicy" in names}
    assert crud <= deletes(fn), f"{fn}: DynamoDBCrudPolicy on {sorted(crud - deletes(fn))}, whose items it never deletes"
    assert not any("S3CrudPolicy" in names or "S3FullAccessPolicy" in names for names in grants(fn).values()), fn


def test_deleting_modules_are_all_known() -> None:
    """Every mlops module that deletes or condition-checks is in DELETING_MODULES (no S3 deletes)."""
    found = {str(p.relative_to(LAYER)) for p in (LAYER / "mlops").rglob("*.py") if DELETE_CALL.search(p.read_text())}
    assert found == set(DELETING_MODULES)


def test_only_the_functions_that_write_the_registry_may_write_it() -> None:
    writers = {fn for fn in FUNCTIONS
               if grants(fn).get("RegistryTable", set()) & {"DynamoDBWritePolicy", "DynamoDBCrudPolicy"}}
    assert writers == {fn for fn in FUNCTIONS if writes_registry(fn)}
    assert "InferenceFunction" not in writers and "ModelsFunction" not in writers
    # The serving path reads the registry: never write, never delete.
    assert grants("InferenceFunction")["RegistryTable"] == {"DynamoDBReadPolicy"}


def test_the_audit_trail_is_append_only() -> None:
    """No function may delete audit records: read and put at most."""
    for fn in FUNCTIONS:
        assert grants(fn).get("AuditTable", set()) <= {"DynamoDBReadPolicy", "DynamoDBWritePolicy"}, fn
    archive = grants("AuditFunction")["AuditArchiveBucket"]
    assert archive == {"S3ReadPolicy", "S3WritePolicy"}


def test_the_code_analysis_sees_what_the_handlers_do() -> None:
    """The derivations above must see real reads and writes, or the tests would pass vacuously."""
    assert code_resources("HealthFunction") >= {"FeaturesTable", "RegistryTable", "AuditTable", "IdempotencyTable"}
    assert code_resources("FeatureViewsFunction") >= {"FeaturesTable", "RegistryTable", "DataBucket"}
    assert "RetrainingStateMachine" in code_resources("RetrainFunction")  # RetrainingLauncher.from_env
    assert "IdempotencyTable" in deletes("FeatureIngestFunction")
    assert "RegistryTable" in deletes("ModelAdminFunction") and deletes("AuditFunction") == set()
    assert writes_registry("TrainFunction") and writes_registry("FeatureMaterializeFunction")
    assert not writes_registry("InferenceFunction") and not writes_registry("ExplainFunction")
