"""Reads a SAM template into the stack localcloud runs: functions, layers, APIs and routes,
tables, buckets, state machines, API keys with the usage plans that admit them to each API
stage, and schedules, with every intrinsic resolved.

Physical names are deterministic (``<stack>-<LogicalId>``) unless the template names the
resource, so that functions, tests and the moto server agree on them. A resource type,
property or event source localcloud cannot emulate is an `UnsupportedConstruct` naming the
resource and the construct; only the types listed in `INERT_TYPES` are accepted without a
local counterpart, because they change nothing a function or a test can observe.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import LocalCloudError, UnsupportedConstruct
from .intrinsics import Resolver, load_yaml

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
DEFAULT_STACK = "mlops"

# Types that have no behaviour a function or a test can observe locally: they are accepted
# and listed by `localcloud` but not emulated.
INERT_TYPES = {
    "AWS::Logs::LogGroup": "log groups: localcloud writes logs to stderr",
    "AWS::CloudWatch::Dashboard": "dashboards are an AWS console view",
    "AWS::CloudWatch::Alarm": "alarms are evaluated by CloudWatch in AWS",
    "AWS::IAM::Role": "IAM is not enforced locally (the template lint tests check policies)",
    "AWS::IAM::Policy": "IAM is not enforced locally (the template lint tests check policies)",
    "AWS::IAM::ManagedPolicy": "IAM is not enforced locally (the template lint tests check policies)",
    "AWS::S3::BucketPolicy": "IAM is not enforced locally",
    "AWS::Lambda::Permission": "IAM is not enforced locally",
}
SUPPORTED_TYPES = {
    "AWS::Serverless::Function",
    "AWS::Serverless::LayerVersion",
    "AWS::Serverless::Api",
    "AWS::Serverless::StateMachine",
    "AWS::DynamoDB::Table",
    "AWS::S3::Bucket",
    "AWS::SNS::Topic",
    "AWS::SQS::Queue",
    "AWS::ApiGateway::ApiKey",
    "AWS::ApiGateway::UsagePlan",  # which keys open which API stages (throttling is not emulated)
    "AWS::ApiGateway::UsagePlanKey",
} | set(INERT_TYPES)

SUPPORTED_RUNTIMES = {"python3.11"}
FUNCTION_EVENT_TYPES = {"Api", "Schedule", "S3"}
STATE_MACHINE_EVENT_TYPES = {"Schedule"}
_GLOBAL_SECTIONS = {
    "Function": "AWS::Serverless::Function",
    "Api": "AWS::Serverless::Api",
    "StateMachine": "AWS::Serverless::StateMachine",
    "LayerVersion": "AWS::Serverless::LayerVersion",
}


@dataclass(frozen=True)
class Layer:
    logical_id: str
    arn: str
    content_dir: Path
    # Where Lambda would find the layer's code: /opt/python is content_dir/python for a
    # prebuilt layer, or content_dir itself when SAM builds it (BuildMethod python3.x).
    python_path: Path
    requirements: tuple[str, ...]


@dataclass(frozen=True)
class Route:
    api_id: str
    event_id: str
    path: str
    method: str  # upper case, or ANY
    function_id: str
    api_key_required: bool


@dataclass(frozen=True)
class Schedule:
    """An EventBridge schedule that fires a function or starts a state machine."""

    rule_name: str
    expression: str
    target_id: str
    target_kind: str  # "function" or "state_machine"
    input: str | None
    enabled: bool
    description: str = ""


@dataclass(frozen=True)
class BucketNotification:
    """An S3 event source: objects created (or removed) in a bucket of the template, whose key
    matches the prefix and suffix filters, invoke a function asynchronously."""

    bucket_id: str  # logical id of the AWS::S3::Bucket
    bucket_name: str
    function_id: str
    event_id: str
    events: tuple[str, ...]  # e.g. ("s3:ObjectCreated:*",)
    prefix: str = ""
    suffix: str = ""


@dataclass(frozen=True)
class Function:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    runtime: str
    timeout: int
    memory_size: int
    environment: dict[str, str]
    layers: tuple[Layer, ...]
    architectures: tuple[str, ...]


@dataclass(frozen=True)
class Api:
    logical_id: str
    rest_api_id: str
    stage: str
    api_key_required: bool
    binary_media_types: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    logical_id: str
    name: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class Bucket:
    logical_id: str
    name: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class StateMachine:
    logical_id: str
    name: str
    arn: str
    definition: dict[str, Any]


@dataclass(frozen=True)
class ApiKey:
    logical_id: str
    key_id: str
    env_var: str  # where the local value is read from, e.g. LOCALCLOUD_ADMIN_API_KEY
    enabled: bool


@dataclass(frozen=True)
class UsagePlan:
    """An API Gateway usage plan: the keys in it may call the API stages it lists. As on AWS,
    a route that requires a key admits a key only through a plan that lists the route's API
    stage; throttling and quotas are not emulated."""

    logical_id: str
    stages: tuple[tuple[str, str], ...]  # (Api logical id, stage name)
    key_ids: tuple[str, ...] = ()  # ApiKey logical ids (from the UsagePlanKey resources)


@dataclass
class Stack:
    """Everything localcloud runs, resolved from one template."""

    path: Path
    name: str
    region: str
    parameters: dict[str, str]
    functions: dict[str, Function] = field(default_factory=dict)
    layers: dict[str, Layer] = field(default_factory=dict)
    apis: dict[str, Api] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    tables: dict[str, Table] = field(default_factory=dict)
    buckets: dict[str, Bucket] = field(default_factory=dict)
    topics: dict[str, str] = field(default_factory=dict)  # logical id -> topic name
    queues: dict[str, str] = field(default_factory=dict)  # logical id -> queue name
    state_machines: dict[str, StateMachine] = field(default_factory=dict)
    api_keys: dict[str, ApiKey] = field(default_factory=dict)
    usage_plans: dict[str, UsagePlan] = field(default_factory=dict)
    schedules: list[Schedule] = field(default_factory=list)
    notifications: list[BucketNotification] = field(default_factory=list)
    inert: dict[str, str] = field(default_factory=dict)  # logical id -> type

    def function(self, name: str) -> Function:
        """A function by logical id, physical name or ARN, as `sam local invoke` accepts."""
        for fn in self.functions.values():
            if name in (fn.logical_id, fn.name, fn.arn):
                return fn
        known = ", ".join(sorted(self.functions)) or "none"
        raise LocalCloudError(f"unknown function '{name}' (the template has: {known})")

    def state_machine(self, name: str) -> StateMachine:
        """A state machine by logical id, name or ARN."""
        for sm in self.state_machines.values():
            if name in (sm.logical_id, sm.name, sm.arn):
                return sm
        known = ", ".join(sorted(self.state_machines)) or "none"
        raise LocalCloudError(f"unknown state machine '{name}' (the template has: {known})")

    def keys_for_api(self, api_id: str) -> set[str]:
        """Logical ids of the ApiKeys that a usage plan admits to the API ``api_id`` (its stage)."""
        api = self.apis[api_id]
        return {key for plan in self.usage_plans.values() if (api_id, api.stage) in plan.stages
                for key in plan.key_ids}


def _env_var_for_key(logical_id: str) -> str:
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", logical_id).upper()
    return f"LOCALCLOUD_{snake}"


def _is_intrinsic(value: Any) -> bool:
    """A ``{"Ref": ...}`` or ``{"Fn::...": ...}`` map: a value, not a map to merge (as in SAM)."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = str(next(iter(value)))
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def _merge_globals(globals_: dict, properties: dict) -> dict:
    """SAM's Globals rule: maps merge (the resource wins), lists concatenate, scalars (and
    intrinsic functions) override."""
    merged = copy.deepcopy(globals_)
    for key, value in properties.items():
        if (key in merged and isinstance(merged[key], dict) and isinstance(value, dict)
                and not _is_intrinsic(merged[key]) and not _is_intrinsic(value)):
            merged[key] = _merge_globals(merged[key], value)
        elif key in merged and isinstance(merged[key], list) and isinstance(value, list):
            merged[key] = merged[key] + value
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class _StackBuilder:
    def __init__(self, path: Path, doc: dict, stack_name: str, region: str, overrides: dict[str, str]):
        self.path = path
        self.root = path.parent
        self.doc = doc
        self.stack_name = stack_name
        self.region = region
        self.resources: dict[str, dict] = doc.get("Resources") or {}
        if not isinstance(self.resources, dict) or not self.resources:
            raise LocalCloudError(f"{path.name}: the template has no Resources")
        self.parameters = self._parameters(doc.get("Parameters") or {}, overrides)
        self.resolver = Resolver(
            self._ref, self._get_att, doc.get("Conditions"), doc.get("Mappings"), region
        )

    # -- names --------------------------------------------------------------------------
    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{resource}"

    def physical_name(self, logical_id: str) -> str:
        res = self.resources[logical_id]
        rtype, props = res.get("Type"), res.get("Properties") or {}
        explicit = {
            "AWS::Serverless::Function": "FunctionName",
            "AWS::DynamoDB::Table": "TableName",
            "AWS::S3::Bucket": "BucketName",
            "AWS::Serverless::StateMachine": "Name",
            "AWS::SNS::Topic": "TopicName",
            "AWS::SQS::Queue": "QueueName",
            "AWS::Serverless::LayerVersion": "LayerName",
        }.get(rtype)
        if explicit and explicit in props:
            return str(self.resolver.resolve(props[explicit], logical_id))
        if rtype == "AWS::S3::Bucket":
            return f"{self.stack_name}-{logical_id}".lower()[:63]
        return f"{self.stack_name}-{logical_id}"

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": self._arn("cloudformation", f"stack/{self.stack_name}/local"),
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        logical_id, _, sub = name.partition(".")
        if logical_id not in self.resources:
            raise LocalCloudError(f"Ref to unknown parameter or resource '{name}'")
        rtype = self.resources[logical_id].get("Type")
        if sub:
            if rtype == "AWS::Serverless::Api" and sub == "Stage":
                props = self.resources[logical_id].get("Properties") or {}
                return str(self.resolver.resolve(props.get("StageName"), logical_id))
            if rtype == "AWS::Serverless::Api" and sub == "Deployment":
                return f"{logical_id.lower()}-deployment"
            raise LocalCloudError(f"Ref to unknown resource property '{name}'")
        pname = self.physical_name(logical_id)
        return {
            "AWS::Serverless::Function": pname,
            "AWS::Serverless::LayerVersion": self._arn("lambda", f"layer:{pname}:1"),
            "AWS::Serverless::StateMachine": self._arn("states", f"stateMachine:{pname}"),
            "AWS::SNS::Topic": self._arn("sns", pname),
            "AWS::SQS::Queue": f"https://sqs.{self.region}.amazonaws.com/{ACCOUNT_ID}/{pname}",
            "AWS::Serverless::Api": logical_id.lower()[:10],
            "AWS::ApiGateway::ApiKey": f"{logical_id.lower()}-id",
        }.get(rtype, pname)

    def _get_att(self, logical_id: str, attribute: str) -> Any:
        if logical_id.endswith("Role") and logical_id[:-4] in self.resources and attribute == "Arn":
            return self._arn("iam", f"role/{self.stack_name}-{logical_id}").replace(f":{self.region}:", "::")
        if logical_id not in self.resources:
            raise LocalCloudError(f"Fn::GetAtt of unknown resource '{logical_id}'")
        rtype = self.resources[logical_id].get("Type")
        pname = self.physical_name(logical_id)
        table = {
            ("AWS::Serverless::Function", "Arn"): self._arn("lambda", f"function:{pname}"),
            ("AWS::DynamoDB::Table", "Arn"): self._arn("dynamodb", f"table/{pname}"),
            ("AWS::DynamoDB::Table", "StreamArn"): self._arn("dynamodb", f"table/{pname}/stream/local"),
            ("AWS::S3::Bucket", "Arn"): f"arn:aws:s3:::{pname}",
            ("AWS::S3::Bucket", "DomainName"): f"{pname}.s3.amazonaws.com",
            ("AWS::S3::Bucket", "RegionalDomainName"): f"{pname}.s3.{self.region}.amazonaws.com",
            ("AWS::Serverless::StateMachine", "Arn"): self._arn("states", f"stateMachine:{pname}"),
            ("AWS::Serverless::StateMachine", "Name"): pname,
            ("AWS::SNS::Topic", "TopicName"): pname,
            ("AWS::SNS::Topic", "TopicArn"): self._arn("sns", pname),
            ("AWS::SQS::Queue", "Arn"): self._arn("sqs", pname),
            ("AWS::SQS::Queue", "QueueName"): pname,
            ("AWS::Serverless::Api", "RootResourceId"): f"{logical_id.lower()}-root",
            ("AWS::ApiGateway::ApiKey", "APIKeyId"): f"{logical_id.lower()}-id",
        }
        if (rtype, attribute) not in table:
            raise UnsupportedConstruct(logical_id, f"Fn::GetAtt {logical_id}.{attribute} on {rtype}")
        return table[(rtype, attribute)]

    # -- parameters ---------------------------------------------------------------------
    def _parameters(self, declared: dict, overrides: dict[str, str]) -> dict[str, str]:
        unknown = set(overrides) - set(declared)
        if unknown:
            raise LocalCloudError(f"parameter override for undeclared parameter(s): {', '.join(sorted(unknown))}")
        values: dict[str, str] = {}
        for name, spec in declared.items():
            spec = spec or {}
            if name in overrides:
                value = str(overrides[name])
            elif "Default" in spec:
                value = str(spec["Default"])
            else:
                raise LocalCloudError(f"parameter {name} has no Default and no override was given")
            allowed = spec.get("AllowedValues")
            if allowed and value not in [str(a) for a in allowed]:
                raise LocalCloudError(f"parameter {name}={value!r} is not one of {allowed}")
            values[name] = value
        return values

    # -- resources ----------------------------------------------------------------------
    def build(self) -> Stack:
        stack = Stack(self.path, self.stack_name, self.region, self.parameters)
        globals_ = self.doc.get("Globals") or {}
        for section in globals_:
            if section not in _GLOBAL_SECTIONS:
                raise UnsupportedConstruct("Globals", f"the Globals section '{section}'")
        active = {}
        for logical_id, res in self.resources.items():
            if not isinstance(res, dict) or "Type" not in res:
                raise LocalCloudError(f"{logical_id}: a resource needs a Type")
            rtype = res["Type"]
            if rtype not in SUPPORTED_TYPES:
                raise UnsupportedConstruct(logical_id, f"the resource type {rtype}")
            if "Condition" in res and not self.resolver.condition(res["Condition"], logical_id):
                continue
            props = res.get("Properties") or {}
            for section, gtype in _GLOBAL_SECTIONS.items():
                if rtype == gtype and section in globals_:
                    props = _merge_globals(globals_[section], props)
            active[logical_id] = (rtype, props)

        # Layers and APIs first: functions refer to them.
        for logical_id, (rtype, props) in active.items():
            if rtype == "AWS::Serverless::LayerVersion":
                stack.layers[logical_id] = self._layer(logical_id, props)
            elif rtype == "AWS::Serverless::Api":
                stack.apis[logical_id] = self._api(logical_id, props)
        for logical_id, (rtype, props) in active.items():
            if rtype == "AWS::Serverless::Function":
                self._function(stack, logical_id, props)
            elif rtype == "AWS::Serverless::StateMachine":
                self._state_machine(stack, logical_id, props)
            elif rtype == "AWS::DynamoDB::Table":
                stack.tables[logical_id] = Table(
                    logical_id, self.physical_name(logical_id), self.resolver.resolve(props, logical_id)
                )
            elif rtype == "AWS::S3::Bucket":
                stack.buckets[logical_id] = Bucket(
                    logical_id, self.physical_name(logical_id), self.resolver.resolve(props, logical_id)
                )
            elif rtype == "AWS::SNS::Topic":
                stack.topics[logical_id] = self.physical_name(logical_id)
            elif rtype == "AWS::SQS::Queue":
                stack.queues[logical_id] = self.physical_name(logical_id)
            elif rtype == "AWS::ApiGateway::ApiKey":
                resolved = self.resolver.resolve(props, logical_id)
                stack.api_keys[logical_id] = ApiKey(
                    logical_id, self._ref(logical_id), _env_var_for_key(logical_id),
                    bool(resolved.get("Enabled", True)),
                )
            elif rtype == "AWS::ApiGateway::UsagePlan":
                stack.usage_plans[logical_id] = self._usage_plan(stack, logical_id, props)
            elif rtype in INERT_TYPES:
                self.resolver.resolve(props, logical_id)  # still catches bad references
                stack.inert[logical_id] = rtype
        # Keys join plans once every plan and key is known.
        for logical_id, (rtype, props) in active.items():
            if rtype == "AWS::ApiGateway::UsagePlanKey":
                self._usage_plan_key(stack, logical_id, props)
        return stack

    def _usage_plan(self, stack: Stack, logical_id: str, props: dict) -> UsagePlan:
        resolved = self.resolver.resolve(props, logical_id)
        stages = []
        for entry in resolved.get("ApiStages") or []:
            api = next((a for a in stack.apis.values() if a.rest_api_id == entry.get("ApiId")), None)
            if api is None:
                raise UnsupportedConstruct(logical_id, "an ApiStages entry whose ApiId is not an AWS::Serverless::Api of this template")
            if str(entry.get("Stage")) != api.stage:
                raise LocalCloudError(f"{logical_id}: {api.logical_id} has no stage {entry.get('Stage')!r} (its stage is {api.stage!r})")
            stages.append((api.logical_id, api.stage))
        return UsagePlan(logical_id, tuple(stages))

    def _usage_plan_key(self, stack: Stack, logical_id: str, props: dict) -> None:
        resolved = self.resolver.resolve(props, logical_id)
        if resolved.get("KeyType", "API_KEY") != "API_KEY":
            raise LocalCloudError(f"{logical_id}: KeyType must be API_KEY")
        key = next((k for k in stack.api_keys.values() if k.key_id == resolved.get("KeyId")), None)
        plan = next((p for p in stack.usage_plans.values() if self._ref(p.logical_id) == resolved.get("UsagePlanId")), None)
        if key is None or plan is None:
            raise LocalCloudError(f"{logical_id}: a UsagePlanKey needs KeyId: !Ref <an ApiKey> and UsagePlanId: !Ref <a UsagePlan> of this template")
        stack.usage_plans[plan.logical_id] = UsagePlan(plan.logical_id, plan.stages, plan.key_ids + (key.logical_id,))

    def _path(self, logical_id: str, prop: str, value: Any) -> Path:
        if not isinstance(value, str):
            raise UnsupportedConstruct(logical_id, f"{prop} that is not a local path", "S3 locations need sam deploy")
        path = (self.root / value).resolve()
        if not path.exists():
            raise LocalCloudError(f"{logical_id}: {prop} {value} does not exist")
        return path

    def _layer(self, logical_id: str, props: dict) -> Layer:
        props = self.resolver.resolve(props, logical_id)
        content = self._path(logical_id, "ContentUri", props.get("ContentUri"))
        built = (self.resources[logical_id].get("Metadata") or {}).get("BuildMethod")
        python_path = content if built else content / "python"
        requirements = content / "requirements.txt"
        reqs = ()
        if requirements.exists():
            reqs = tuple(
                line.split("#")[0].strip() for line in requirements.read_text().splitlines()
                if line.split("#")[0].strip()
            )
        return Layer(logical_id, self._ref(logical_id), content, python_path, reqs)

    def _api(self, logical_id: str, props: dict) -> Api:
        props = self.resolver.resolve(props, logical_id)
        auth = props.get("Auth") or {}
        for key in auth:
            if key not in ("ApiKeyRequired", "UsagePlan", "AddApiKeyRequiredToCorsPreflight"):
                raise UnsupportedConstruct(logical_id, f"Auth.{key}", "only API keys are emulated")
        if props.get("DefinitionBody") or props.get("DefinitionUri"):
            raise UnsupportedConstruct(logical_id, "an OpenAPI DefinitionBody/DefinitionUri", "declare routes as function Api events")
        return Api(
            logical_id,
            self._ref(logical_id),
            str(props.get("StageName", "Prod")),
            bool(auth.get("ApiKeyRequired", False)),
            tuple(props.get("BinaryMediaTypes") or ()),
        )

    def _function(self, stack: Stack, logical_id: str, props: dict) -> None:
        events = props.pop("Events", None) or {}
        props = self.resolver.resolve(props, logical_id)
        if props.get("PackageType", "Zip") != "Zip":
            raise UnsupportedConstruct(logical_id, "PackageType Image")
        runtime = props.get("Runtime")
        if runtime not in SUPPORTED_RUNTIMES:
            raise UnsupportedConstruct(logical_id, f"Runtime {runtime}", f"supported: {', '.join(sorted(SUPPORTED_RUNTIMES))}")
        if not props.get("Handler"):
            raise LocalCloudError(f"{logical_id}: a function needs a Handler")
        layers = []
        for ref in props.get("Layers") or []:
            match = [layer for layer in stack.layers.values() if layer.arn == ref]
            if not match:
                raise UnsupportedConstruct(logical_id, f"the layer {ref}", "only layers defined in this template are available offline")
            layers.append(match[0])
        variables = ((props.get("Environment") or {}).get("Variables")) or {}
        name = self.physical_name(logical_id)
        fn = Function(
            logical_id=logical_id,
            name=name,
            arn=self._arn("lambda", f"function:{name}"),
            code_dir=self._path(logical_id, "CodeUri", props.get("CodeUri", ".")),
            handler=str(props["Handler"]),
            runtime=runtime,
            timeout=int(props.get("Timeout", 3)),
            memory_size=int(props.get("MemorySize", 128)),
            environment={k: "" if v is None else str(v) for k, v in variables.items()},
            layers=tuple(layers),
            architectures=tuple(props.get("Architectures") or ["x86_64"]),
        )
        stack.functions[logical_id] = fn
        for event_id, event in events.items():
            etype = event.get("Type")
            if etype not in FUNCTION_EVENT_TYPES:
                raise UnsupportedConstruct(f"{logical_id}.Events.{event_id}", f"the event source {etype}")
            if etype == "S3":
                stack.notifications.append(self._s3_event(logical_id, event_id, event.get("Properties") or {}))
                continue
            eprops = self.resolver.resolve(event.get("Properties") or {}, f"{logical_id}.Events.{event_id}")
            if etype == "Api":
                stack.routes.append(self._route(stack, logical_id, event_id, eprops))
            else:
                stack.schedules.append(self._schedule(logical_id, event_id, eprops, "function"))

    def _route(self, stack: Stack, logical_id: str, event_id: str, eprops: dict) -> Route:
        api_id = eprops.get("RestApiId")
        api = next((a for a in stack.apis.values() if a.rest_api_id == api_id), None)
        if api is None:
            raise UnsupportedConstruct(
                f"{logical_id}.Events.{event_id}", "an Api event without RestApiId of an AWS::Serverless::Api in this template"
            )
        auth = eprops.get("Auth") or {}
        for key in auth:
            if key != "ApiKeyRequired":
                raise UnsupportedConstruct(f"{logical_id}.Events.{event_id}", f"Auth.{key}")
        path, method = eprops.get("Path"), str(eprops.get("Method", "")).upper()
        if not isinstance(path, str) or not path.startswith("/") or not method:
            raise LocalCloudError(f"{logical_id}.Events.{event_id}: an Api event needs a Path starting with / and a Method")
        return Route(api.logical_id, event_id, path, method, logical_id,
                     bool(auth.get("ApiKeyRequired", api.api_key_required)))

    def _s3_event(self, logical_id: str, event_id: str, raw: dict) -> BucketNotification:
        """SAM's S3 event: ``Bucket`` must be a Ref to a bucket of this template (as SAM requires),
        ``Events`` one event type or a list, ``Filter.S3Key.Rules`` prefix/suffix rules."""
        where = f"{logical_id}.Events.{event_id}"
        for key in raw:
            if key not in ("Bucket", "Events", "Filter"):
                raise UnsupportedConstruct(where, f"the S3 event property {key}")
        ref = raw.get("Bucket")
        bucket_id = ref.get("Ref") if isinstance(ref, dict) and set(ref) == {"Ref"} else None
        if not isinstance(bucket_id, str) or (self.resources.get(bucket_id) or {}).get("Type") != "AWS::S3::Bucket":
            raise LocalCloudError(f"{where}: an S3 event needs Bucket: !Ref <an AWS::S3::Bucket of this template>")
        props = self.resolver.resolve({k: v for k, v in raw.items() if k != "Bucket"}, where)
        events = props.get("Events")
        events = [events] if isinstance(events, str) else events
        if not events or not all(isinstance(e, str) and e.startswith("s3:") for e in events):
            raise LocalCloudError(f"{where}: an S3 event needs Events, e.g. s3:ObjectCreated:*")
        rules: dict[str, str] = {}
        filter_ = props.get("Filter") or {}
        for key in filter_:
            if key != "S3Key":
                raise UnsupportedConstruct(where, f"the S3 event filter {key}")
        for rule in (filter_.get("S3Key") or {}).get("Rules") or []:
            name = str(rule.get("Name", "")).lower()
            if name not in ("prefix", "suffix") or not isinstance(rule.get("Value"), str):
                raise LocalCloudError(f"{where}: S3Key rules are {{Name: prefix|suffix, Value: text}}")
            rules[name] = rule["Value"]
        return BucketNotification(bucket_id, self.physical_name(bucket_id), logical_id, event_id, tuple(events),
                                  rules.get("prefix", ""), rules.get("suffix", ""))

    def _schedule(self, logical_id: str, event_id: str, eprops: dict, kind: str) -> Schedule:
        where = f"{logical_id}.Events.{event_id}"
        for key in eprops:
            if key not in ("Schedule", "Input", "Enabled", "State", "Description", "Name"):
                raise UnsupportedConstruct(where, f"the Schedule property {key}")
        expression = eprops.get("Schedule")
        if not isinstance(expression, str):
            raise LocalCloudError(f"{where}: a Schedule event needs a Schedule expression")
        enabled = eprops.get("Enabled", True) is not False and eprops.get("State", "ENABLED") == "ENABLED"
        return Schedule(
            rule_name=str(eprops.get("Name") or f"{self.stack_name}-{logical_id}{event_id}"),
            expression=expression,
            target_id=logical_id,
            target_kind=kind,
            input=eprops.get("Input"),
            enabled=enabled,
            description=str(eprops.get("Description", "")),
        )

    def _state_machine(self, stack: Stack, logical_id: str, props: dict) -> None:
        events = props.pop("Events", None) or {}
        props = self.resolver.resolve(props, logical_id)
        if props.get("Type", "STANDARD") != "STANDARD":
            raise UnsupportedConstruct(logical_id, f"state machine Type {props['Type']}")
        if "Definition" in props:
            definition_text = json.dumps(props["Definition"])
        elif "DefinitionUri" in props:
            definition_text = self._path(logical_id, "DefinitionUri", props["DefinitionUri"]).read_text()
        else:
            raise LocalCloudError(f"{logical_id}: a state machine needs Definition or DefinitionUri")
        for key, value in (props.get("DefinitionSubstitutions") or {}).items():
            definition_text = definition_text.replace("${" + key + "}", str(value))
        leftover = re.findall(r"\$\{([A-Za-z0-9_]+)\}", definition_text)
        if leftover:
            raise LocalCloudError(f"{logical_id}: DefinitionSubstitutions has no value for ${{{leftover[0]}}}")
        try:
            definition = json.loads(definition_text)
        except json.JSONDecodeError as exc:
            raise LocalCloudError(f"{logical_id}: the definition is not valid JSON: {exc}") from None
        name = self.physical_name(logical_id)
        stack.state_machines[logical_id] = StateMachine(
            logical_id, name, self._arn("states", f"stateMachine:{name}"), definition
        )
        for event_id, event in events.items():
            etype = event.get("Type")
            if etype not in STATE_MACHINE_EVENT_TYPES:
                raise UnsupportedConstruct(f"{logical_id}.Events.{event_id}", f"the event source {etype}")
            eprops = self.resolver.resolve(event.get("Properties") or {}, f"{logical_id}.Events.{event_id}")
            stack.schedules.append(self._schedule(logical_id, event_id, eprops, "state_machine"))


def load_stack(
    template: str | Path = "template.yaml",
    *,
    parameter_overrides: dict[str, str] | None = None,
    stack_name: str = DEFAULT_STACK,
    region: str = DEFAULT_REGION,
) -> Stack:
    """Read and resolve a SAM template; raises `LocalCloudError` naming what is wrong."""
    path = Path(template).resolve()
    if not path.is_file():
        raise LocalCloudError(f"template {template} not found")
    doc = load_yaml(path.read_text(), path.name)
    transform = doc.get("Transform")
    transforms = transform if isinstance(transform, list) else [transform] if transform else []
    for t in transforms:
        if t != "AWS::Serverless-2016-10-31":
            raise UnsupportedConstruct("Transform", f"the transform {t}")
    return _StackBuilder(path, doc, stack_name, region, dict(parameter_overrides or {})).build()
