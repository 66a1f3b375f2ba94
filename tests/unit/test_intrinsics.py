"""Intrinsic functions and short-form tags, evaluated as CloudFormation does."""

from __future__ import annotations

import base64

import pytest

from localcloud.errors import LocalCloudError, UnsupportedConstruct
from localcloud.intrinsics import NO_VALUE, Resolver, load_yaml

PARAMS = {"Stage": "dev", "AWS::Region": "eu-west-1"}
ATTS = {("Table", "Arn"): "arn:aws:dynamodb:eu-west-1:123456789012:table/t"}


def ref(name: str) -> object:
    if name == "AWS::NoValue":
        return NO_VALUE
    if name in PARAMS:
        return PARAMS[name]
    if name == "Table":
        return "mlops-Table"
    raise LocalCloudError(f"Ref to unknown parameter or resource '{name}'")


def get_att(resource: str, attribute: str) -> object:
    if (resource, attribute) not in ATTS:
        raise LocalCloudError(f"no {resource}.{attribute}")
    return ATTS[(resource, attribute)]


@pytest.fixture
def resolver() -> Resolver:
    conditions = {
        "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
        "IsDev": {"Fn::Not": [{"Condition": "IsProd"}]},
        "Both": {"Fn::And": [{"Condition": "IsDev"}, {"Fn::Equals": ["a", "a"]}]},
        "Either": {"Fn::Or": [{"Condition": "IsProd"}, {"Condition": "IsDev"}]},
    }
    mappings = {"Sizes": {"dev": {"Memory": 256}, "prod": {"Memory": 1024}}}
    return Resolver(ref, get_att, conditions, mappings, region="eu-west-1")


def test_short_tags_become_long_forms() -> None:
    doc = load_yaml(
        "A: !Ref X\nB: !GetAtt T.Arn\nC: !Sub 'x-${Y}'\nD: !Join [',', [a, b]]\n"
        "E: !If [C1, 1, 2]\nF: !Equals [a, b]\nG: !Condition C1\nH: !Select [0, !Split [',', 'a,b']]\n"
        "I: !GetAtt [T, Arn]\nJ: 2026-01-01\n"
    )
    assert doc["A"] == {"Ref": "X"}
    assert doc["B"] == {"Fn::GetAtt": ["T", "Arn"]}
    assert doc["C"] == {"Fn::Sub": "x-${Y}"}
    assert doc["D"] == {"Fn::Join": [",", ["a", "b"]]}
    assert doc["E"] == {"Fn::If": ["C1", 1, 2]}
    assert doc["F"] == {"Fn::Equals": ["a", "b"]}
    assert doc["G"] == {"Condition": "C1"}
    assert doc["H"] == {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}
    assert doc["I"] == {"Fn::GetAtt": ["T", "Arn"]}
    assert doc["J"] == "2026-01-01"  # dates stay strings, as in CloudFormation


def test_invalid_yaml_is_one_line_with_the_line_number() -> None:
    with pytest.raises(LocalCloudError, match=r"t.yaml: not valid YAML at line 3: expected .,. or .\]."):
        load_yaml("a: 1\nb: [unclosed\n", "t.yaml")


def test_ref_getatt_and_sub(resolver: Resolver) -> None:
    assert resolver.resolve({"Ref": "Table"}, "X") == "mlops-Table"
    assert resolver.resolve({"Fn::GetAtt": ["Table", "Arn"]}, "X").endswith(":table/t")
    assert resolver.resolve({"Fn::GetAtt": "Table.Arn"}, "X").endswith(":table/t")
    assert resolver.resolve({"Fn::Sub": "${Table}/${Stage}/${AWS::Region}/${!Literal}"}, "X") == (
        "mlops-Table/dev/eu-west-1/${Literal}"
    )
    assert resolver.resolve({"Fn::Sub": "${Table.Arn}"}, "X") == ATTS[("Table", "Arn")]
    assert resolver.resolve({"Fn::Sub": ["${A}-${Stage}", {"A": {"Ref": "Table"}}]}, "X") == "mlops-Table-dev"


def test_join_select_split_base64_findinmap_getazs(resolver: Resolver) -> None:
    assert resolver.resolve({"Fn::Join": ["-", ["a", {"Ref": "Stage"}]]}, "X") == "a-dev"
    assert resolver.resolve({"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]}, "X") == "b"
    assert base64.b64decode(resolver.resolve({"Fn::Base64": "hi"}, "X")) == b"hi"
    assert resolver.resolve({"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "Memory"]}, "X") == 256
    assert resolver.resolve({"Fn::GetAZs": ""}, "X") == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]


def test_conditions_and_if(resolver: Resolver) -> None:
    assert resolver.condition("IsProd") is False
    assert resolver.condition("IsDev") is True
    assert resolver.condition("Both") is True
    assert resolver.condition("Either") is True
    assert resolver.resolve({"Fn::If": ["IsProd", "big", "small"]}, "X") == "small"


def test_no_value_removes_the_entry(resolver: Resolver) -> None:
    value = {"Keep": 1, "Drop": {"Fn::If": ["IsProd", 2, {"Ref": "AWS::NoValue"}]},
             "List": [1, {"Ref": "AWS::NoValue"}, 3]}
    assert resolver.resolve(value, "X") == {"Keep": 1, "List": [1, 3]}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Ref": "Missing"}, "unknown parameter or resource 'Missing'"),
        ({"Fn::Select": [5, ["a"]]}, "index 5 is out of range"),
        ({"Fn::FindInMap": ["Sizes", "qa", "Memory"]}, "found no Sizes.qa.Memory"),
        ({"Fn::If": ["NoSuchCondition", 1, 2]}, "unknown condition 'NoSuchCondition'"),
        ({"Fn::Join": ["-"]}, "Fn::Join takes"),
    ],
)
def test_errors_name_the_problem(resolver: Resolver, value: dict, message: str) -> None:
    with pytest.raises(LocalCloudError, match=message):
        resolver.resolve(value, "MyResource")


@pytest.mark.parametrize("fn", ["Fn::ImportValue", "Fn::Transform", "Fn::Cidr"])
def test_values_from_other_stacks_are_refused(resolver: Resolver, fn: str) -> None:
    with pytest.raises(UnsupportedConstruct, match=f"MyResource: localcloud cannot emulate {fn}"):
        resolver.resolve({fn: "x"}, "MyResource")
