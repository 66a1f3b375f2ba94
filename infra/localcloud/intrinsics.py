"""CloudFormation's YAML short forms and intrinsic functions, evaluated the way CloudFormation does.

`load_yaml` reads a template with the short tags (``!Ref``, ``!Sub``, ``!GetAtt`` ...) into
their long forms; `Resolver` evaluates ``Ref``, ``Fn::GetAtt``, ``Fn::Sub``, ``Fn::Join``,
``Fn::Select``, ``Fn::Split``, ``Fn::If`` and the condition functions, ``Fn::FindInMap``,
``Fn::Base64`` and ``Fn::GetAZs`` against the values localcloud gives parameters and resources.
Anything else (``Fn::ImportValue``, ``Fn::Transform``, ``Fn::Cidr``) is an error that names the
place it was found: a value localcloud cannot know is never guessed.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from .errors import LocalCloudError, UnsupportedConstruct

NO_VALUE = object()  # what Ref AWS::NoValue evaluates to; removed from the enclosing container

_SHORT_TAGS = [
    "Base64", "Cidr", "FindInMap", "GetAZs", "If", "ImportValue", "Join", "Select", "Split",
    "Sub", "Transform", "And", "Equals", "Not", "Or",
]


class _TemplateLoader(yaml.SafeLoader):
    """A SafeLoader that turns CloudFormation's short tags into their long forms."""


def _construct(node: yaml.Node, loader: _TemplateLoader) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _add_tag(tag: str, key: str) -> None:
    def constructor(loader: _TemplateLoader, node: yaml.Node) -> dict:
        return {key: _construct(node, loader)}

    _TemplateLoader.add_constructor(f"!{tag}", constructor)


for _tag in _SHORT_TAGS:
    _add_tag(_tag, f"Fn::{_tag}")
_add_tag("Ref", "Ref")
_add_tag("Condition", "Condition")


def _get_att(loader: _TemplateLoader, node: yaml.Node) -> dict:
    value = _construct(node, loader)
    if isinstance(value, str):
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {"Fn::GetAtt": value}


_TemplateLoader.add_constructor("!GetAtt", _get_att)
# CloudFormation keeps timestamps and the like as strings.
_TemplateLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in _TemplateLoader.yaml_implicit_resolvers.items()
}


def load_yaml(text: str, source: str = "template") -> dict:
    """Parse a template (YAML or JSON) into plain dicts, lists and strings."""
    try:
        data = yaml.load(text, Loader=_TemplateLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise LocalCloudError(f"{source}: not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise LocalCloudError(f"{source}: a template must be a mapping at the top level")
    return data


_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class Resolver:
    """Evaluates intrinsic functions for one stack.

    ``ref(name)`` gives a parameter's, pseudo parameter's or resource's Ref value, and
    ``get_att(resource, attribute)`` an attribute; both raise `LocalCloudError` for names the
    stack does not have. ``where`` in error messages names the resource being resolved.
    """

    def __init__(
        self,
        ref: Callable[[str], Any],
        get_att: Callable[[str, str], Any],
        conditions: Mapping[str, Any] | None = None,
        mappings: Mapping[str, Any] | None = None,
        region: str = "us-east-1",
    ) -> None:
        self._ref = ref
        self._get_att = get_att
        self._condition_defs = dict(conditions or {})
        self._condition_values: dict[str, bool] = {}
        self._mappings = dict(mappings or {})
        self._region = region

    # -- conditions ---------------------------------------------------------------------
    def condition(self, name: str, where: str = "Conditions") -> bool:
        """The value of a named condition, evaluated once."""
        if name not in self._condition_values:
            if name not in self._condition_defs:
                raise LocalCloudError(f"{where}: unknown condition '{name}'")
            self._condition_values[name] = bool(
                self.resolve(self._condition_defs[name], f"Conditions.{name}")
            )
        return self._condition_values[name]

    # -- evaluation ---------------------------------------------------------------------
    def resolve(self, value: Any, where: str) -> Any:
        """Evaluate every intrinsic inside ``value``; ``AWS::NoValue`` entries disappear."""
        if isinstance(value, list):
            items = [self.resolve(v, where) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self._eval_ref(arg, where)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg, where)
            if key.startswith("Fn::"):
                return self._eval_fn(key, arg, where)
        out = {}
        for k, v in value.items():
            resolved = self.resolve(v, where)
            if resolved is not NO_VALUE:
                out[k] = resolved
        return out

    def _eval_ref(self, arg: Any, where: str) -> Any:
        if arg == "AWS::NoValue":
            return NO_VALUE
        if not isinstance(arg, str):
            raise LocalCloudError(f"{where}: Ref takes a name, got {arg!r}")
        return self._ref(arg)

    def _eval_fn(self, key: str, arg: Any, where: str) -> Any:
        handler = getattr(self, "_fn_" + key[4:].lower(), None)
        if handler is None:
            raise UnsupportedConstruct(where, key, "its value depends on other stacks or on AWS")
        return handler(arg, where)

    def _fn_getatt(self, arg: Any, where: str) -> Any:
        if isinstance(arg, str):
            arg = arg.split(".", 1)
        arg = self.resolve(arg, where)
        if not (isinstance(arg, list) and len(arg) == 2):
            raise LocalCloudError(f"{where}: Fn::GetAtt takes [resource, attribute], got {arg!r}")
        return self._get_att(arg[0], arg[1])

    def _fn_sub(self, arg: Any, where: str) -> str:
        if isinstance(arg, list):
            if len(arg) != 2 or not isinstance(arg[1], dict):
                raise LocalCloudError(f"{where}: Fn::Sub takes a string or [string, variables]")
            text, variables = arg[0], self.resolve(arg[1], where)
        else:
            text, variables = arg, {}
        if not isinstance(text, str):
            raise LocalCloudError(f"{where}: Fn::Sub takes a string, got {text!r}")

        def substitute(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                resource, attribute = name.split(".", 1)
                return str(self._get_att(resource, attribute))
            return str(self._ref(name))

        return _SUB_VARIABLE.sub(substitute, text)

    def _fn_join(self, arg: Any, where: str) -> str:
        arg = self.resolve(arg, where)
        if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list)):
            raise LocalCloudError(f"{where}: Fn::Join takes [delimiter, [values]]")
        return str(arg[0]).join(str(v) for v in arg[1])

    def _fn_select(self, arg: Any, where: str) -> Any:
        arg = self.resolve(arg, where)
        if not (isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], list)):
            raise LocalCloudError(f"{where}: Fn::Select takes [index, [values]]")
        index = int(arg[0])
        if not 0 <= index < len(arg[1]):
            raise LocalCloudError(f"{where}: Fn::Select index {index} is out of range")
        return arg[1][index]

    def _fn_split(self, arg: Any, where: str) -> list:
        arg = self.resolve(arg, where)
        if not (isinstance(arg, list) and len(arg) == 2):
            raise LocalCloudError(f"{where}: Fn::Split takes [delimiter, string]")
        return str(arg[1]).split(str(arg[0]))

    def _fn_if(self, arg: Any, where: str) -> Any:
        if not (isinstance(arg, list) and len(arg) == 3 and isinstance(arg[0], str)):
            raise LocalCloudError(f"{where}: Fn::If takes [condition, value_if_true, value_if_false]")
        return self.resolve(arg[1] if self.condition(arg[0], where) else arg[2], where)

    def _fn_equals(self, arg: Any, where: str) -> bool:
        arg = self.resolve(arg, where)
        if not (isinstance(arg, list) and len(arg) == 2):
            raise LocalCloudError(f"{where}: Fn::Equals takes two values")
        return str(arg[0]) == str(arg[1])

    def _fn_not(self, arg: Any, where: str) -> bool:
        arg = self.resolve(arg, where)
        if not (isinstance(arg, list) and len(arg) == 1):
            raise LocalCloudError(f"{where}: Fn::Not takes one condition")
        return not bool(arg[0])

    def _fn_and(self, arg: Any, where: str) -> bool:
        return all(bool(v) for v in self.resolve(arg, where))

    def _fn_or(self, arg: Any, where: str) -> bool:
        return any(bool(v) for v in self.resolve(arg, where))

    def _fn_findinmap(self, arg: Any, where: str) -> Any:
        arg = self.resolve(arg, where)
        if not (isinstance(arg, list) and len(arg) == 3):
            raise LocalCloudError(f"{where}: Fn::FindInMap takes [map, top key, second key]")
        try:
            return self._mappings[arg[0]][arg[1]][arg[2]]
        except (KeyError, TypeError):
            raise LocalCloudError(f"{where}: Fn::FindInMap found no {arg[0]}.{arg[1]}.{arg[2]}") from None

    def _fn_base64(self, arg: Any, where: str) -> str:
        return base64.b64encode(str(self.resolve(arg, where)).encode()).decode()

    def _fn_getazs(self, arg: Any, where: str) -> list[str]:
        region = self.resolve(arg, where) or self._region
        return [f"{region}{zone}" for zone in "abc"]
