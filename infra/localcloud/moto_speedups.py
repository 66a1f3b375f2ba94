"""Make moto's DynamoDB answer faster without changing a single byte of what it answers.

Profiling localcloud's moto server (py-spy on the server, GetItem / PutItem with a
ConditionExpression / BatchGetItem of 100 items x 100 attributes / Query from a client process)
showed where a call's time goes: 55-80 % in moto's generic response serializer (for every
attribute value of every item it builds six alias-provider objects and tries up to four
dictionary keys per member of the ``AttributeValue`` shape: about 1 ms per 100-attribute item),
then ``dynamo_to_dict`` and item sizes (recomputed twice per item of a BatchGetItem, and in
O(n^2) while an item is built), plus per-request work that never changes (listing moto's
package directory, ``inspect.getmembers`` on the handler class). Each is replaced here by code
that computes the same result faster; DynamoDB's semantics (conditions, expressions, TTL
attributes, GSIs, errors) stay in moto's backend, untouched. Server CPU per call, measured
through localcloud's HTTP server: BatchGetItem of 100 x 100 about 25x less, GetItem and
PutItem about 2x less.

Patched (moto is pinned to 5.2.5; `install` refuses any other version, and checks that each
function it replaces is still there with the parameters it expects):

* ``moto.core.serialize.JSONSerializer._serialize_result`` - for DynamoDB only, a successful
  result made of plain ``dict``/``list``/scalars (what ``DynamoResult`` produces) is serialized
  by a walker compiled once per operation from the same botocore shapes: for each structure
  member it looks up the same candidate keys that moto's ``XFormedAttributePicker`` would try
  (taken from moto's own alias providers at compile time) and converts each shape type with
  the same expression as moto (``str``/``int``/``float``/base64/timestamp serializer). Anything
  else (an error, another service, a dict subclass, an object to pick attributes from, response
  transformers, pretty printing, an unexpected value, any exception) goes to moto's walker.
* ``moto.dynamodb.responses.dynamo_to_dict`` (the name ``DynamoResult`` calls) - the same
  conversion with a type switch for str/number/dict/list/DynamoType values; binary values,
  datetimes and objects with ``to_json`` go to moto's function.
* ``moto.dynamodb.models.dynamo_type.Item.__init__`` - moto re-sums the size of every attribute
  already stored each time it adds one (``LimitedSizeDict.__setitem__``); the patched
  constructor keeps the running sum and raises ``ItemSizeTooLarge`` at the same attribute.
* ``Item.size`` and ``DynamoType.size`` - the same formulas, inline for S and N values, and
  for maps and lists without re-wrapping every member in a new DynamoType on each call.
* ``Item.project`` (GSI projections and ProjectionExpressions) - moto converted the whole item
  to Python values once per projected attribute name (3 ms per 20-attribute prediction-log row
  on a GSI Query with a ProjectionExpression); top-level names are now picked directly, with
  the same number normalisation as moto's round trip.
* ``moto.dynamodb.responses.DynamoHandler._enrich_response`` - moto runs an XML ``<RequestId>``
  regex substitution over every (JSON) body; it is skipped when the body cannot contain a match.
* ``moto.backends.list_of_moto_modules`` - listed moto's package directory (``os.listdir`` +
  ``isdir`` per entry) on every request, under the dispatcher's global lock; the listing of
  an installed package does not change, so it is computed once.
* ``Table.query`` (+ ``Item.__deepcopy__``) - a Query deep-copies every item it matched, then
  a projection (ProjectionExpression, or an INCLUDE / KEYS_ONLY index) rebuilds each one anyway;
  for such queries the copy is skipped.
* ``Table.all_items`` - every Query and Scan starts by sorting the whole table comparing
  DynamoTypes (a Decimal per comparison for numbers): sort keys computed once per item; inside
  a Query with string/binary hash key conditions the items that cannot match are dropped first,
  and with one string range condition too, those outside the range but one past it (moto's walk
  could only end its page there; a page that ends without a LastEvaluatedKey near the 1 MB page
  size is walked again by moto's query on every item). A time-window Query on the prediction
  log's GSI no longer sorts and walks the version's whole history.
* ``Table.sorted_items`` - every index Query sorts all the items it matched (again for each
  page) comparing DynamoTypes, which re-derive a Decimal per comparison; the same order from
  sort keys computed once per item (moto's sort where key types are mixed or not scalar).
* ``DynamoDBBackend.transact_write_items`` (+ ``Table.__deepcopy__``, which moto does not
  define) - moto deep-copies every table a transaction names, whole, for its rollback; the
  copy taken during a transaction shares the items the transaction cannot change and
  deep-copies only those it names (tables with a stream still get moto's whole copy).
* ``moto.core.responses.method_names_from_class`` - ``inspect.getmembers`` of the handler class
  on every request, only to ask whether the action is one of its functions; answered directly.
* ``moto.core.parse.JSONParser._do_parse`` - for DynamoDB requests, the body's JSON is walked by
  a function compiled once per operation from the same botocore shapes, doing what moto's
  parser does per value (members by serialized name, nulls dropped, blobs base64-decoded,
  numbers and timestamps converted); any surprise (a value of another type than its shape,
  an exception) goes to moto's parser.

tests/unit/localcloud/test_moto_speedups.py makes the same calls with and without these patches
and compares every raw answer byte for byte (items of every attribute type, nested, generated
by hypothesis; UnprocessedKeys; errors); with `verify` set, each fast answer is also computed by
moto's own code from the same objects and compared. `install()` is idempotent and process-wide
(moto's state is process-global anyway); `uninstall()` puts moto's originals back.
"""

from __future__ import annotations

import base64
import copy
import functools
import inspect
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any

MOTO_VERSION = "5.2.5"

_installed = False
_compiled: dict[tuple[str, str], tuple[Any, Callable[[Any], Any]]] = {}

#: When True, every fast answer is also computed by moto's walker and compared; a difference is
#: recorded in `mismatches` and moto's answer is sent (tests set it).
verify = False
mismatches: list[str] = []
#: How many DynamoDB answers each walker serialized since install (tests check the fast one ran).
counts = {"fast": 0, "moto": 0, "requests": 0}  # answers by the fast walker / moto's; requests parsed fast


class SpeedupError(RuntimeError):
    """moto is not the version these patches were written against, or not shaped like it."""


class _Fallback(Exception):
    """The fast walker met something it does not handle the way moto does: use moto's walker."""


_SKIP = object()  # "nothing written" (a None structure): the member is left out, as moto does


# ----------------------------------------------------------------------- response serializer


def _picker_candidates(picker: Any, context_cls: Any, parent: Any, key: str, shape: Any) -> list[str]:
    """The keys moto's attribute picker tries, in order, for member ``key`` of structure
    ``parent`` when the object is a plain dict (moto's own alias providers compute them)."""
    shape.parent = parent  # what moto's serializer sets before picking the member
    context = context_cls(obj={}, key=key, shape=shape, key_path="")
    keys = list(picker.get_possible_keys(context))
    if any(not isinstance(k, str) or "." in k for k in keys):
        raise _Fallback  # a dotted key would be a path lookup in moto's get_value
    return keys


class _ShapeCompiler:
    """Compiles a function per botocore shape, once (memoised by name, type and serialization):
    containers go to ``_structure`` / ``_list`` / ``_map`` (which register a placeholder in
    ``memo`` first, for recursive shapes such as AttributeValue's M and L), the other types to
    ``_scalar``."""

    def __init__(self) -> None:
        self.memo: dict[Any, Callable[[Any], Any]] = {}

    def convert(self, shape: Any) -> Callable[[Any], Any]:
        memo_key = (shape.name, shape.type_name, repr(sorted(shape.serialization.items())))
        found = self.memo.get(memo_key)
        if found is not None:
            return found
        kind = shape.type_name
        if kind in ("structure", "list", "map"):
            return getattr(self, f"_{kind}")(shape, memo_key)
        fn = self._scalar(shape)
        self.memo[memo_key] = fn
        return fn

    def _scalar(self, shape: Any) -> Callable[[Any], Any]:
        raise NotImplementedError


class _Compiler(_ShapeCompiler):
    """Builds, once per operation, a function ``convert(value) -> output | _SKIP`` for each shape
    that does what moto's JSONSerializer does to a plain value of that shape."""

    def __init__(self, picker: Any, context_cls: Any, timestamp_serializer: Any) -> None:
        super().__init__()
        self.picker = picker
        self.context_cls = context_cls
        self.timestamps = timestamp_serializer

    def _scalar(self, shape: Any) -> Callable[[Any], Any]:
        kind = shape.type_name
        if kind == "string":
            return _string
        if kind == "blob":
            return _blob
        if kind in ("integer", "long"):
            return int
        if kind in ("float", "double"):
            return float
        if kind == "timestamp":
            return functools.partial(_timestamp, self.timestamps, shape)
        return _identity  # boolean and the rest: moto writes the value as it is

    def _structure(self, shape: Any, memo_key: Any) -> Callable[[Any], Any]:
        if shape.is_document_type:
            self.memo[memo_key] = _identity
            return _identity
        members: list[tuple[str, tuple[str, ...], Callable[[Any], Any]]] = []
        cell: list[Callable[[Any], Any]] = []

        def forward(value: Any) -> Any:  # breaks the cycle of recursive shapes (M, L)
            return cell[0](value)

        info: dict[str, Any] = {"passthrough": frozenset()}
        forward.info = info  # type: ignore[attr-defined]
        self.memo[memo_key] = forward
        owners: dict[str, list[int]] = {}
        for index, (member_key, member_shape) in enumerate(shape.members.items()):
            candidates = tuple(_picker_candidates(self.picker, self.context_cls, shape, member_key, member_shape))
            document = member_shape.type_name == "structure" and member_shape.is_document_type
            out_name = member_key if document else member_shape.serialization.get("name", member_key)
            members.append((out_name, candidates, self.convert(member_shape)))
            for candidate in set(candidates):
                owners.setdefault(candidate, []).append(index)
        # A key that only one member would pick: for a dict with that single key the answer is
        # that member alone (no other member can find a value in it). The third field says that
        # a str value comes out as it is (a string shape), the common case of S and N values.
        single_owner = {k: (members[v[0]][0], members[v[0]][2], members[v[0]][2] is _string)
                        for k, v in owners.items() if len(v) == 1}

        def structure(value: Any) -> Any:
            if type(value) is not dict:
                if value is None:
                    return _SKIP
                raise _Fallback
            if len(value) == 1:
                ((key, member_value),) = value.items()
                member = single_owner.get(key)
                if member is not None:
                    if member[2] and type(member_value) is str:
                        return {member[0]: member_value}
                    if member_value is None:
                        return {}
                    result = member[1](member_value)
                    return {} if result is _SKIP else {member[0]: result}
            out: dict[str, Any] = {}
            for out_name, candidates, convert in members:
                for candidate in candidates:
                    if candidate in value:
                        member_value = value[candidate]
                        break
                else:
                    continue
                if member_value is None:
                    continue
                result = convert(member_value)
                if result is not _SKIP:
                    out[out_name] = result
            return out

        # Single keys whose str value moto writes back unchanged under the same name: a dict
        # {key: str} of this shape serializes to an equal dict, so lists and maps reuse it.
        info["passthrough"] = frozenset(k for k, (out_name, _, is_string) in single_owner.items()
                                        if is_string and k == out_name)
        structure.info = info  # type: ignore[attr-defined]
        cell.append(structure)
        return structure

    def _list(self, shape: Any, memo_key: Any) -> Callable[[Any], Any]:
        member_shape = shape.member
        if member_shape.serialization.get("name", member_shape.name) != member_shape.name:
            raise _Fallback  # moto would append the raw item: not worth copying
        cell: list[Callable[[Any], Any]] = []
        self.memo[memo_key] = lambda value: cell[0](value)
        convert = self.convert(member_shape)

        def list_(value: Any) -> Any:
            if type(value) is not list:
                raise _Fallback
            out = []
            for item in value:
                result = convert(item)
                out.append(item if result is _SKIP else result)
            return out

        cell.append(list_)
        return list_

    def _map(self, shape: Any, memo_key: Any) -> Callable[[Any], Any]:
        value_shape = shape.value
        if "name" in value_shape.serialization:
            raise _Fallback  # every entry would land on one key in moto's walker
        cell: list[Callable[[Any], Any]] = []
        self.memo[memo_key] = lambda value: cell[0](value)
        convert = self.convert(value_shape)
        info = getattr(convert, "info", {"passthrough": frozenset()})

        def map_(value: Any) -> Any:
            if type(value) is not dict:
                raise _Fallback
            passthrough = info["passthrough"]
            out = {}
            for key, item in value.items():
                if type(item) is dict and len(item) == 1:  # the structure's own fast case, inline
                    ((member, member_value),) = item.items()
                    if member in passthrough and type(member_value) is str:
                        out[key] = item
                        continue
                result = convert(item)
                if result is not _SKIP:
                    out[key] = result
            return out

        cell.append(map_)
        return map_


def _identity(value: Any) -> Any:
    return value


def _string(value: Any) -> Any:  # BaseJSONSerializer._serialize_type_string
    if type(value) is str:
        return value
    if isinstance(value, Enum):
        value = value.value
    return str(value) if value not in [None, {}, []] else value


def _blob(value: Any) -> Any:  # ResponseSerializer._base64
    if isinstance(value, str):
        value = value.encode("utf-8")
    return base64.b64encode(value).strip().decode("utf-8")


def _timestamp(serializer: Any, shape: Any, value: Any) -> Any:  # ResponseSerializer._serialize_type_timestamp
    wrapper: dict[str, Any] = {}
    serializer.serialize(wrapper, value, shape, "timestamp")
    return wrapper["timestamp"]


def _top_level(serializer: Any) -> Callable[[Any], Any] | None:
    """The compiled walker of this serializer's operation, or None when it must not be used."""
    from moto.core.serialize import (
        DEFAULT_ALIAS_PROVIDERS,
        AttributePickerContext,
        JSONSerializer,
        TimestampSerializer,
        XFormedAttributePicker,
    )

    picker = serializer._value_picker
    if (type(serializer) is not JSONSerializer or serializer.pretty_print
            or type(picker) is not XFormedAttributePicker or picker.response_transformers
            or picker.alias_providers is not DEFAULT_ALIAS_PROVIDERS
            or serializer.service_model.service_name != "dynamodb"
            or serializer.operation_model.has_event_stream_output):
        return None
    output_shape = serializer.operation_model.output_shape
    if output_shape is None:
        return None
    key = (serializer.service_model.service_name, serializer.operation_name)
    cached = _compiled.get(key)
    if cached is not None and cached[0] is output_shape:
        return cached[1]
    compiler = _Compiler(picker, AttributePickerContext, TimestampSerializer(JSONSerializer.DEFAULT_TIMESTAMP_FORMAT))
    try:
        convert = compiler.convert(output_shape)
    except Exception:  # noqa: BLE001 - a shape the compiler does not take: moto's walker, always
        convert = None
    _compiled[key] = (output_shape, convert)  # type: ignore[assignment]
    return convert


def _serialize_result(self: Any, resp: Any, result: Any) -> Any:
    """JSONSerializer._serialize_result with the compiled walker for plain DynamoDB results."""
    original = _moto["serialize_result"]
    convert = _top_level(self) if type(result) is dict else None
    if convert is not None:
        try:
            serialized = convert(result)
        except Exception:  # noqa: BLE001 - anything unexpected: moto's walker decides (and raises what it raises)
            convert = None
    if convert is None:
        counts["moto"] += 1
        return original(self, resp, result)
    counts["fast"] += 1
    if serialized is _SKIP:
        serialized = self.MAP_TYPE()
    if verify:
        expected = original(self, self._create_default_response(), result)
        got = self._serialized_result_to_response(self._create_default_response(), result,
                                                  self.operation_model.output_shape, serialized)
        if expected != got:
            mismatches.append(f"{self.operation_name}:\nmoto: {expected}\nfast: {got}")
            return original(self, resp, result)
    return self._serialized_result_to_response(resp, result, self.operation_model.output_shape, serialized)


# ----------------------------------------------------------------------- the rest


# --------------------------------------------------------------------------- request parser


class _RequestCompiler(_ShapeCompiler):
    """Builds, once per operation, a function ``convert(value) -> params`` for each shape that
    does what moto's JSON request parser (``BaseJSONParser``) does to a value of that shape
    from ``json.loads``: structures keep their members that are present and not null (by
    serialized name, under the member name), blobs are base64-decoded, timestamps parsed,
    floats and integers converted, the rest kept as it is. Anything it does not expect (a
    value of another JSON type than the shape's) raises `_Fallback`: moto's parser decides."""

    def __init__(self, timestamp_parser: Callable[[Any], Any], blob_parser: Callable[[Any], Any]) -> None:
        super().__init__()
        self.timestamps = timestamp_parser
        self.blobs = blob_parser

    def _scalar(self, shape: Any) -> Callable[[Any], Any]:
        kind = shape.type_name
        if kind == "blob":
            return self.blobs
        if kind == "timestamp":
            return self.timestamps
        if kind in ("float", "double"):
            return float
        if kind in ("integer", "byte", "short", "long"):
            return int
        return _identity  # string, boolean, ...: moto's default handler keeps the value

    def _structure(self, shape: Any, memo_key: Any) -> Callable[[Any], Any]:
        if shape.is_document_type:
            self.memo[memo_key] = _identity
            return _identity
        cell: list[Callable[[Any], Any]] = []
        self.memo[memo_key] = lambda value: cell[0](value)  # recursive shapes (M, L)
        members = [(name, member.serialization.get("name", name), self.convert(member))
                   for name, member in shape.members.items()]
        by_json_name = {json_name: (name, convert, convert is _identity) for name, json_name, convert in members}

        def structure(value: Any) -> Any:
            if value is None:
                return None
            if type(value) is not dict:
                raise _Fallback
            if len(value) == 1:  # an AttributeValue: one member, often a string
                ((key, raw),) = value.items()
                member = by_json_name.get(key)
                if member is None or raw is None:
                    return {}
                return {member[0]: raw if member[2] else member[1](raw)}
            out = {}
            for name, json_name, convert in members:
                raw = value.get(json_name)
                if raw is not None:
                    out[name] = convert(raw)
            return out

        cell.append(structure)
        return structure

    def _list(self, shape: Any, memo_key: Any) -> Callable[[Any], Any]:
        cell: list[Callable[[Any], Any]] = []
        self.memo[memo_key] = lambda value: cell[0](value)
        convert = self.convert(shape.member)

        def list_(value: Any) -> Any:
            if type(value) is not list:
                raise _Fallback
            return [convert(item) for item in value]

        cell.append(list_)
        return list_

    def _map(self, shape: Any, memo_key: Any) -> Callable[[Any], Any]:
        cell: list[Callable[[Any], Any]] = []
        self.memo[memo_key] = lambda value: cell[0](value)
        convert_key, convert = self.convert(shape.key), self.convert(shape.value)

        def map_(value: Any) -> Any:
            if type(value) is not dict:
                raise _Fallback
            return {convert_key(k): convert(v) for k, v in value.items()}

        cell.append(map_)
        return map_


_request_compiled: dict[tuple[str, str], Callable[[Any], Any] | None] = {}


def _json_do_parse(self: Any, request_dict: Any, shape: Any) -> Any:
    """JSONParser._do_parse with a walker compiled per operation for DynamoDB requests (moto's
    parser dispatches by name on every value: a BatchWriteItem of 25 prediction-log items took
    3-4 ms)."""
    from moto.core import parse

    original = _moto["json_do_parse"]
    operation = self.operation_model
    if (shape is None or operation.service_model.service_name != "dynamodb" or self.MAP_TYPE is not dict
            or self._timestamp_parser is not parse.default_timestamp_parser
            or self._blob_parser is not parse.default_blob_parser):
        return original(self, request_dict, shape)
    key = (operation.name, shape.name)
    if key not in _request_compiled:
        try:
            _request_compiled[key] = _RequestCompiler(parse.default_timestamp_parser,
                                                      parse.default_blob_parser).convert(shape)
        except Exception:  # noqa: BLE001 - a shape it cannot compile: moto's parser, always
            _request_compiled[key] = None
    convert = _request_compiled[key]
    if convert is None:
        return original(self, request_dict, shape)
    try:
        parsed = convert(self._parse_body_as_json(request_dict["body"]))
    except Exception:  # noqa: BLE001 - moto's parser decides (and raises what it raises)
        return original(self, request_dict, shape)
    counts["requests"] += 1
    if verify:
        expected = original(self, request_dict, shape)
        if repr(expected) != repr(parsed):
            mismatches.append(f"{operation.name} request:\nmoto: {expected!r}\nfast: {parsed!r}")
            return expected
    return parsed


def _item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
    """Item.__init__ with LimitedSizeDict's size check done on a running sum: moto sums the
    sizes of all attributes stored so far before each insert (O(n^2)); the same sums, kept."""
    if not verify:
        return _item_init_fast(self, hash_key, range_key, attrs)
    scratch = object.__new__(type(self))
    expected = _outcome(lambda: _moto["item_init"](scratch, hash_key, range_key, attrs))
    got = _outcome(lambda: _item_init_fast(self, hash_key, range_key, attrs))
    if expected != got or (expected is None and (list(scratch.attrs.items()) != list(self.attrs.items())
                                                 or type(scratch.attrs) is not type(self.attrs))):
        mismatches.append(f"Item.__init__ {attrs!r}: moto raised {expected}, fast raised {got}")
    if got is not None:
        _item_init_fast(self, hash_key, range_key, attrs)  # raises that error again, for the caller
    return None


def _outcome(fn: Callable[[], Any]) -> type | None:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001
        return type(exc)
    return None


def _item_init_fast(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize

    if type(attrs) is not dict or any(type(key) is not str for key in attrs):
        return _moto["item_init"](self, hash_key, range_key, attrs)
    self.hash_key = hash_key
    self.range_key = range_key
    self.attrs = LimitedSizeDict()
    current = 0
    for key, value in attrs.items():
        typed = DynamoType(value)
        size = typed.size()
        # LimitedSizeDict.__setitem__: bytesize(str(k)) of each stored key + size() of each
        # stored value, plus bytesize(key) + size() of the new one (keys are str here).
        if current + bytesize(key) + size > 405000:
            raise ItemSizeTooLarge
        dict.__setitem__(self.attrs, key, typed)
        current += bytesize(str(key)) + size


def _dynamo_type_size(self: Any) -> int:
    """DynamoType.size by the same formulas for N, S, and maps and lists of them (moto wraps
    every map value in a new DynamoType, recursively, each time); the rest is moto's."""
    if verify:
        return _checked("DynamoType.size", _dynamo_type_size_fast(self), lambda: _moto["dynamo_type_size"](self))
    return _dynamo_type_size_fast(self)


def _checked(what: str, got: Any, expected: Callable[[], Any]) -> Any:
    want = expected()
    if type(want) is not type(got) or want != got:
        mismatches.append(f"{what}: moto {want!r}, fast {got!r}")
    return want


def _dynamo_type_size_fast(self: Any) -> int:
    kind, raw = self.type, self.value
    if kind == "N":  # is_number(): len(str(value))
        return len(str(raw))
    if kind == "S" and type(raw) is str:  # not a set/list/map/bool: bytesize(value)
        return len(raw) if raw.isascii() else len(raw.encode("utf-8"))
    dynamo_type = _dynamo_type()
    if kind == "M" and type(raw) is dict:
        # moto: sum(bytesize(k) + DynamoType(v).size()); DynamoType(v) of a DynamoType is a copy
        # (its children wrapped again, on every call) of the same type and value: v's own size.
        total = 0
        for key, value in raw.items():
            if type(value) is not dynamo_type or type(key) is not str:
                return _moto["dynamo_type_size"](self)
            total += len(key) if key.isascii() else len(key.encode("utf-8"))
            member = value.value
            if type(member) is str and value.type in ("N", "S"):  # the two formulas above, inline
                total += len(member) if value.type == "N" or member.isascii() else len(member.encode("utf-8"))
            else:
                total += _dynamo_type_size_fast(value)
        return total
    if kind == "L" and type(raw) is list and all(type(value) is dynamo_type for value in raw):
        return sum(_dynamo_type_size_fast(value) for value in raw)  # moto: sum(v.size())
    return _moto["dynamo_type_size"](self)


def _item_size(self: Any) -> int:
    """Item.size: sum(bytesize(key) + value.size()) over the attributes, without a generator."""
    if verify:
        return _checked("Item.size", _item_size_fast(self), lambda: _moto["item_size"](self))
    return _item_size_fast(self)


def _item_size_fast(self: Any) -> int:
    dynamo_type = _dynamo_type()
    total = 0
    for key, value in self.attrs.items():
        # bytesize(key): the UTF-8 length, which is len() for an ASCII str (isascii is O(1)).
        if type(key) is str and key.isascii():
            total += len(key)
        else:
            total += len(key if isinstance(key, bytes) else key.encode("utf-8"))
        if type(value) is dynamo_type:  # DynamoType.size's formulas for N and S, inline
            kind, raw = value.type, value.value
            if type(raw) is str:
                if kind == "N":  # len(str(value))
                    total += len(raw)
                    continue
                if kind == "S":  # bytesize(value)
                    total += len(raw) if raw.isascii() else len(raw.encode("utf-8"))
                    continue
        total += value.size()
    return total


def _item_project(self: Any, projection_expressions: list[list[str]]) -> Any:
    """Item.project for projections of top-level attribute names (every GSI ``INCLUDE`` /
    ``KEYS_ONLY`` projection and most ProjectionExpressions): moto converts the whole item to
    Python values once per projected name, looks the name up, then converts the result back
    (boto3's TypeDeserializer / TypeSerializer); here only the projected values are converted,
    with the same round trip's effect (numbers normalised by DYNAMODB_CONTEXT). Nested paths,
    list indexes, binary and set values go to moto's function."""
    fast = _item_project_fast(self, projection_expressions)
    if fast is None:
        return _moto["item_project"](self, projection_expressions)
    if verify:
        want = _moto["item_project"](self, projection_expressions)
        if (repr(want.to_json()) != repr(fast.to_json()) or want.hash_key is not fast.hash_key
                or want.range_key is not fast.range_key):
            mismatches.append(f"Item.project {projection_expressions!r}: moto {want.to_json()!r}, "
                              f"fast {fast.to_json()!r}")
        return want
    return fast


def _item_project_fast(item: Any, projection_expressions: list[list[str]]) -> Any:
    from moto.dynamodb.models.dynamo_type import Item, LimitedSizeDict

    attrs: dict[str, Any] = {}
    unchanged = True  # every projected value is its own round trip: the DynamoTypes can be reused
    for expression in projection_expressions:
        if type(expression) is not list or len(expression) != 1:
            return None
        name = expression[0]
        if type(name) is not str or "[" in name:
            return None
        value = item.attrs.get(name)
        if value is None or name in attrs:
            continue
        if unchanged and _same_after_round_trip(value):
            attrs[name] = value
            continue
        try:
            regular = _round_trip(value)
        except Exception:  # noqa: BLE001 - whatever moto's own conversion would do, it does
            return None
        if regular is None:
            return None
        unchanged = False
        attrs[name] = regular
    if not unchanged:
        return Item(hash_key=item.hash_key, range_key=item.range_key,
                    attrs={k: v.to_json() if type(v) is _dynamo_type() else v for k, v in attrs.items()})
    # The values moto's round trip would rebuild unchanged: a projected item is only ever
    # serialized into an answer, so it shares them (a part of a stored item cannot exceed the
    # size limit the constructor checks). The one difference: an answer serialized while
    # another request updates a nested map or list in place can see that update (the stack's
    # own writes replace top-level attributes only).
    projected = Item.__new__(Item)
    projected.hash_key, projected.range_key = item.hash_key, item.range_key
    projected.attrs = LimitedSizeDict()
    for key, value in attrs.items():
        dict.__setitem__(projected.attrs, key, value)
    return projected


def _same_after_round_trip(value: Any) -> bool:
    """Whether `_round_trip` gives ``value`` back as it is (strings, booleans, NULL, numbers
    already in DYNAMODB_CONTEXT's form, and maps/lists of those)."""
    if type(value) is not _dynamo_type():
        return False
    kind, raw = value.type, value.value
    if kind == "S":
        return type(raw) is str
    if kind == "N":
        if type(raw) is not str:
            return False
        try:
            return str(_dynamodb_context().create_decimal(raw)) == raw
        except Exception:  # noqa: BLE001 - the round trip decides
            return False
    if kind == "BOOL":
        return type(raw) is bool
    if kind == "NULL":
        return raw is True
    if kind == "M":
        return type(raw) is dict and all(type(k) is str and _same_after_round_trip(v) for k, v in raw.items())
    if kind == "L":
        return type(raw) is list and all(_same_after_round_trip(v) for v in raw)
    return False


def _round_trip(value: Any) -> dict[str, Any] | None:
    """``TypeSerializer().serialize(TypeDeserializer().deserialize(value.to_regular_json()))``
    for S, N, BOOL, NULL, M and L values (None for anything else)."""
    if type(value) is not _dynamo_type():
        return None
    kind, raw = value.type, value.value
    if kind == "S" and type(raw) is str:
        return {"S": raw}
    if kind == "N" and type(raw) is str:
        number = str(_dynamodb_context().create_decimal(_dynamodb_context().create_decimal(raw)))
        return None if number in ("Infinity", "NaN") else {"N": number}
    if kind == "BOOL" and type(raw) is bool:
        return {"BOOL": raw}
    if kind == "NULL":
        return {"NULL": True}
    if kind == "M" and type(raw) is dict:
        members = {}
        for key, member in raw.items():
            converted = _round_trip(member)
            if converted is None or type(key) is not str:
                return None
            members[key] = converted
        return {"M": members}
    if kind == "L" and type(raw) is list:
        elements = []
        for member in raw:
            converted = _round_trip(member)
            if converted is None:
                return None
            elements.append(converted)
        return {"L": elements}
    return None


@functools.cache
def _dynamodb_context() -> Any:
    from boto3.dynamodb.types import DYNAMODB_CONTEXT

    return DYNAMODB_CONTEXT


def _sorted_items(self: Any, hash_key_attrs: list[str], range_key_attrs: list[str | None],
                  items: list[Any]) -> list[Any]:
    """Table.sorted_items (every Query on an index sorts all the items it matched, once per page)
    with each item's sort key computed once: moto compares tuples of DynamoTypes, each comparison
    re-deriving ``cast_value`` (a new Decimal per number). When each key attribute has one type
    across the items and it is S, N, B or BOOL, tuples of the cast values order the items exactly
    as the DynamoTypes do (``==`` is type and value, ``<`` is value); otherwise moto sorts."""
    names = self._generate_attr_to_sort_by(hash_key_attrs, range_key_attrs)
    kinds: list[str | None] = [None] * len(names)
    keys = []
    for item in items:
        key = []
        for position, name in enumerate(names):
            value = item.attrs.get(name)
            kind = getattr(value, "type", None)
            if kinds[position] is None:
                kinds[position] = kind
            if kind != kinds[position] or kind not in ("S", "N", "B", "BOOL"):
                return _moto["sorted_items"](self, hash_key_attrs, range_key_attrs, items)
            key.append(Decimal(value.value) if kind == "N" else value.value)
        keys.append(tuple(key))
    order = sorted(range(len(items)), key=keys.__getitem__)
    items[:] = [items[i] for i in order]
    return items


_query = threading.local()  # .rebuilt: the running Table.query rebuilds every result it returns

#: The largest item moto stores (``LimitedSizeDict`` refuses more; a nested update past it is
#: refused by ``update_item``), with a margin: a key-range cut is re-checked against it.
_MAX_ITEM_SIZE = 410_000
#: S range conditions the cut evaluates itself: in range, and (for a value out of range) whether
#: it sorts above every value in range (else below). Python's str comparisons, as moto's.
_RANGE_TESTS: dict[str, tuple[Callable[..., bool], Callable[..., bool]]] = {
    "=": (lambda s, a: s == a, lambda s, a: s > a),
    "EQ": (lambda s, a: s == a, lambda s, a: s > a),
    "<": (lambda s, a: s < a, lambda s, a: True),
    "LT": (lambda s, a: s < a, lambda s, a: True),
    "<=": (lambda s, a: s <= a, lambda s, a: True),
    "LE": (lambda s, a: s <= a, lambda s, a: True),
    ">": (lambda s, a: s > a, lambda s, a: False),
    "GT": (lambda s, a: s > a, lambda s, a: False),
    ">=": (lambda s, a: s >= a, lambda s, a: False),
    "GE": (lambda s, a: s >= a, lambda s, a: False),
    "BETWEEN": (lambda s, a, b: a <= s <= b, lambda s, a, b: s > b),
    "BEGINS_WITH": (lambda s, a: s.startswith(a), lambda s, a: s > a),
}


@dataclass
class _Cut:
    """A Query's key-range cut (see `_all_items`): which items were kept, which dropped."""

    attr: str
    inside: Callable[[str], bool]
    above: Callable[[str], bool]
    forward: bool
    kept: list[Any] = field(default_factory=list)  # the items in range
    after: int = 0  # out-of-range items that come after them in the Query's order


def _key_cut(self: Any, index: Any, range_comparison: Any, range_objs: Any, limit: Any,
             scan_index_forward: Any, range_key_conditions: Any, filter_kwargs: dict[str, Any]) -> _Cut | None:
    """The range cut for a Query whose items are cut by hash key already (`_query.match`) and
    whose one range condition compares strings; None when anything else is asked."""
    if _query.match is None or filter_kwargs or not range_comparison or not range_key_conditions \
            or len(range_key_conditions) != 1 or range_comparison not in _RANGE_TESTS:
        return None
    if limit is not None and (type(limit) is not int or limit < 1):
        return None
    attr = range_key_conditions[0][0]
    if index is not None:
        ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
    else:
        ranges = [self.range_key_attr] if self.range_key_attr else []
    if ranges != [attr]:
        return None
    if not range_objs or not all(type(v) is _dynamo_type() and v.type == "S" and type(v.value) is str
                                 for v in range_objs):
        return None
    bounds = [v.value for v in range_objs]
    inside, above = _RANGE_TESTS[range_comparison]
    if len(bounds) != (2 if range_comparison == "BETWEEN" else 1):
        return None
    return _Cut(attr, lambda s: inside(s, *bounds), lambda s: above(s, *bounds), scan_index_forward is not False)


def _table_query(self: Any, hash_key: Any, range_comparison: Any, range_objs: Any, limit: Any,
                 exclusive_start_key: Any, scan_index_forward: Any, projection_expressions: Any,
                 index_name: Any = None, consistent_read: Any = False, filter_expression: Any = None,
                 hash_key_conditions: Any = None, range_key_conditions: Any = None, **filter_kwargs: Any) -> Any:
    """Table.query without its deep copy of the matched items when every result is rebuilt by a
    projection anyway (a ProjectionExpression, or an index that projects INCLUDE / KEYS_ONLY):
    the copy only protected stored items from the answer, and a projection's items are new
    (their values are only read, then serialized). Items that cannot match the hash key, and
    (a `_key_cut`) most of those outside a string range condition, are dropped before moto's
    query sorts and walks them (see `_all_items`). moto's own query does the rest."""
    index = None
    if index_name:
        index = next((i for i in self.all_indexes() if i.name == index_name), None)
    projection_type = (getattr(index, "projection", None) or {}).get("ProjectionType")
    _query.rebuilt = bool(projection_expressions) or projection_type in ("INCLUDE", "KEYS_ONLY")
    if index_name:  # moto keeps the items whose attributes equal every hash key condition
        conditions = [(name, value) for name, value in hash_key_conditions or ()]
    else:  # moto keeps the items whose hash key equals hash_key
        conditions = [(None, hash_key)] if hash_key is not None else []
    _query.match = conditions if conditions and all(
        type(value) is _dynamo_type() and value.type in ("S", "B") and type(value.value) in (str, bytes)
        for _, value in conditions) else None
    _query.cut = None
    if index_name is None or index is not None:
        _query.cut = _key_cut(self, index, range_comparison, range_objs, limit, scan_index_forward,
                              range_key_conditions, filter_kwargs)
    args = (self, hash_key, range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward,
            projection_expressions, index_name, consistent_read, filter_expression)
    kwargs = {"hash_key_conditions": hash_key_conditions, "range_key_conditions": range_key_conditions,
              **filter_kwargs}
    try:
        answer = _moto["table_query"](*args, **kwargs)
        cut = _query.cut
        if cut is not None and answer[2] is None and cut.after > 1 and _cut_page_size(
                self, index, cut, answer[1], exclusive_start_key, scan_index_forward) > _RESULT_SIZE_LIMIT - _MAX_ITEM_SIZE:
            # Without the cut, one of the dropped items past the range might have been big
            # enough to end this page (moto checks every item it walks against the 1 MB page
            # size): moto's query decides, on every item.
            _query.cut = None
            answer = _moto["table_query"](*args, **kwargs)
        return answer
    finally:
        _query.rebuilt = False
        _query.match = None
        _query.cut = None


_RESULT_SIZE_LIMIT = 1_000_000  # moto.dynamodb.models.table.RESULT_SIZE_LIMIT (checked by install)


def _cut_page_size(self: Any, index: Any, cut: _Cut, returned: int, exclusive_start_key: Any,
                   scan_index_forward: Any) -> int:
    """The byte size moto summed for a page that ended without a LastEvaluatedKey: the in-range
    items it walked after the start key (`returned` of them: moto counts each it keeps)."""
    items = cut.kept
    if exclusive_start_key is not None:
        if index is not None:
            hash_attrs = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"] + [self.hash_key_attr]
            range_attrs = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"] + [self.range_key_attr]
        else:
            hash_attrs, range_attrs = [self.hash_key_attr], [self.range_key_attr]
        items = [i for i in items if not self._item_comes_before_dct(i, exclusive_start_key, hash_attrs, range_attrs,
                                                                     scan_index_forward)]
    if len(items) != returned:  # not what moto walked: assume the worst (moto decides)
        return _RESULT_SIZE_LIMIT
    return sum(item.size() for item in items)


def _all_items(self: Any) -> list[Any]:
    """Table.all_items (every Query starts from it): moto sorts the whole table comparing
    DynamoTypes, which re-derive their cast value per comparison; here each item's sort key is
    computed once (moto's sort where the key types are mixed). Inside a Query with string or
    binary hash key conditions (see `_table_query`) only the items that can match are kept
    before sorting: moto's own loop then checks them as before, and a stable sort of a subset
    keeps the subset's order."""
    if self.range_key_attr:
        items = [item for hash_set in self.items.values() for item in hash_set.values()]
    else:
        items = list(self.items.values())
    for name, value in getattr(_query, "match", None) or ():  # one pass per condition: tight loops
        kind, want = value.type, value.value
        if name is None:
            items = [i for i in items if (k := i.hash_key) is not None and k.value == want
                     and getattr(k, "type", None) == kind]
        else:
            items = [i for i in items if (k := i.attrs.get(name)) is not None and k.value == want
                     and getattr(k, "type", None) == kind]
    cut = getattr(_query, "cut", None)
    if cut is not None:
        items = _cut_range(items, cut)
    keys = []
    shape: tuple[Any, ...] | None = None
    for item in items:
        parts = (item.hash_key, item.range_key) if item.range_key else (item.hash_key,)
        kinds = tuple(getattr(p, "type", None) for p in parts)
        if shape is None:
            shape = kinds
        if kinds != shape or any(kind not in ("S", "N", "B") for kind in kinds):
            return _moto["all_items"](self)
        keys.append(tuple(Decimal(p.value) if p.type == "N" else p.value for p in parts))
    order = sorted(range(len(items)), key=keys.__getitem__)
    return [items[i] for i in order]


def _cut_range(items: list[Any], cut: _Cut) -> list[Any]:
    """The items of a Query (all matching its hash key) moto's walk can be affected by.

    moto sorts the matched items by the range key and walks them in the Query's direction,
    keeping those in range; in range they are contiguous. An item before them (in walk order)
    is skipped and cannot end the page (no result yet, and no item reaches the 1 MB page size
    alone), so it is dropped. Past them, any one item ends the page if the Limit was reached
    (the LastEvaluatedKey is the last result's, whichever item it was): one is kept; that
    another would end it by size instead is re-checked by `_table_query`. An item without the
    attribute is not indexed (moto skips it too). Any value that is not a string: no cut.
    """
    kept, first_after, after = [], None, 0
    attr, inside, above, forward = cut.attr, cut.inside, cut.above, cut.forward
    for item in items:
        value = item.attrs.get(attr)
        if value is None:
            continue
        if value.type != "S" or type(value.value) is not str:
            _query.cut = None
            return items
        s = value.value
        if inside(s):
            kept.append(item)
        elif above(s) == forward:
            after += 1
            if first_after is None:
                first_after = item
    cut.kept, cut.after = kept, after
    return kept if first_after is None else kept + [first_after]


def _item_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
    """Item.__deepcopy__: the item itself inside a query whose results are all rebuilt (see
    `_table_query`), moto's copy otherwise."""
    if getattr(_query, "rebuilt", False):
        return self
    return _moto["item_deepcopy"](self, memo)


#: The items each TransactWriteItems call may change, per table name, while moto takes its
#: rollback copies (`_transact_write_items` sets it; `_table_deepcopy` reads it).
_transaction = threading.local()
_WHOLE_TABLE = None  # a table whose copy must be complete (it has a stream)


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
    """DynamoDBBackend.transact_write_items with cheap rollback copies: moto deep-copies every
    table the transaction names, whole, before running it (and keeps each copy alive in
    ``instances_tracked``): one feedback transaction on the prediction log copied all its rows.
    The transaction can only change the items its operations name, so the copy taken here
    shares every other item with the live table and deep-copies just those. moto's own function
    runs the transaction, its conditions, errors and rollback, unchanged."""
    _transaction.touched = _touched_items(self, transact_items)
    try:
        return _moto["transact_write_items"](self, transact_items)
    finally:
        _transaction.touched = None


def _touched_items(backend: Any, transact_items: list[dict[str, Any]]) -> dict[str, Any]:
    """{table name: [(hash DynamoType, range DynamoType | None)] or _WHOLE_TABLE}: the keys the
    operations address, computed as moto does (Put: from the item; the others: from Key). An
    operation whose key cannot be read fails in moto before it writes anything."""
    dynamo_type = _dynamo_type()
    touched: dict[str, Any] = {}
    for entry in transact_items:
        try:
            op_type, op = next(iter(entry.items()))
            table = backend.tables.get(op.get("TableName"))
            if table is None:
                continue
            attrs = op["Item"] if op_type == "Put" else op["Key"]
            key = (dynamo_type(attrs[table.hash_key_attr]),
                   None if table.range_key_attr is None else dynamo_type(attrs[table.range_key_attr]))
        except Exception:  # noqa: BLE001 - moto fails this operation before writing
            continue
        if table.stream_shard is not None:
            touched[table.name] = _WHOLE_TABLE
        elif touched.get(table.name, []) is not _WHOLE_TABLE:
            touched.setdefault(table.name, []).append(key)
    return touched


def _table_deepcopy(self: Any, memo: dict[int, Any]) -> Any:
    """Table.__deepcopy__: during a transaction (see `_transact_write_items`), a copy sharing the
    items the transaction cannot change; at any other time Python's default deep copy."""
    touched = getattr(_transaction, "touched", None)
    keys = _WHOLE_TABLE if touched is None else touched.get(self.name, _WHOLE_TABLE)
    if keys is _WHOLE_TABLE:
        return copy._reconstruct(self, memo, *self.__reduce_ex__(4))  # what copy.deepcopy does
    snapshot = object.__new__(type(self))
    snapshot.__dict__.update(self.__dict__)
    items = copy.copy(self.items)  # the defaultdict, sharing its members
    own: set[Any] = set()  # hash keys whose range dict is already the snapshot's own copy
    for hash_value, range_value in keys:
        if range_value is None:
            if hash_value in self.items:
                items[hash_value] = copy.deepcopy(self.items[hash_value])
        elif hash_value in self.items:
            if hash_value not in own:
                items[hash_value] = dict(self.items[hash_value])
                own.add(hash_value)
            inner = items[hash_value]
            if range_value in inner and inner[range_value] is self.items[hash_value].get(range_value):
                inner[range_value] = copy.deepcopy(inner[range_value])
    snapshot.items = items
    memo[id(self)] = snapshot
    return snapshot


def _dynamo_result_to_dict(obj: Any) -> Any:
    """moto.dynamodb.models.utilities.dynamo_to_dict (what DynamoResult applies to every
    answer) with a type switch for the plain cases; binary values, datetimes, objects with
    to_json and any other type go to moto's function."""
    if verify:
        got = _dynamo_to_dict(obj)
        want = _moto["dynamo_to_dict"](obj)
        if repr(got) != repr(want):
            mismatches.append(f"dynamo_to_dict: moto {want!r}, fast {got!r}")
        return want
    return _dynamo_to_dict(obj)


def _dynamo_to_dict(obj: Any) -> Any:
    kind = type(obj)
    if kind in _PLAIN:  # no datetime, DynamoType, to_json, dict or list: returned as is
        return obj
    if kind is dict or kind is _limited_size_dict():
        dynamo_type = _dynamo_type()
        out = {}
        for key, value in obj.items():
            if type(value) is dynamo_type:  # the DynamoType case below, inline for str values
                type_name, raw = value.type, value.value
                if type(raw) is str and type_name != "B" and type_name != "BS":
                    out[key] = {type_name: raw}
                    continue
            out[key] = _dynamo_to_dict(value)
        return out
    if kind is list:
        return [_dynamo_to_dict(item) for item in obj]
    if kind is _dynamo_type():
        type_name = obj.type
        if type_name != "B" and type_name != "BS":
            value = obj.value
            return {type_name: value if type(value) is str else _dynamo_to_dict(value)}
    return _moto["dynamo_to_dict"](obj)


_PLAIN = frozenset({str, int, float, bool, type(None), bytes, Decimal})


@functools.cache
def _limited_size_dict() -> type:
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    return LimitedSizeDict


@functools.cache
def _dynamo_type() -> type:
    from moto.dynamodb.models.dynamo_type import DynamoType

    return DynamoType


def _enrich_response(headers: dict[str, str], body: Any) -> tuple[dict[str, str], Any]:
    """BaseResponse._enrich_response without the XML regex over bodies that have no <RequestId>."""
    from moto.core.responses import BaseResponse
    from moto.utilities.aws_headers import gen_amzn_requestid_long

    if not isinstance(body, str) or "<RequestId>" in body:
        return BaseResponse._enrich_response(headers, body)
    if "status" in headers:
        headers["status"] = str(headers["status"])
    gen_amzn_requestid_long(headers)
    return headers, body


@functools.cache
def _moto_modules() -> tuple[str, ...]:
    import moto

    path = os.path.dirname(moto.__file__)
    return tuple(backend for backend in sorted(os.listdir(path))
                 if os.path.isdir(os.path.join(path, backend)) and not backend.startswith("__"))


def _list_of_moto_modules() -> tuple[str, ...]:
    return _moto_modules()


class _FunctionNames:
    """Answers ``name in method_names_from_class(cls)`` without inspect.getmembers: a name is
    one of them when the class attribute of that name is a plain function."""

    def __init__(self, clazz: Any) -> None:
        self.clazz = clazz

    def __contains__(self, name: object) -> bool:
        # inspect.getmembers: the names in dir(cls) (the __dict__ keys along the MRO) whose
        # getattr(cls, name) is a function.
        if not isinstance(name, str) or not any(name in klass.__dict__ for klass in self.clazz.__mro__):
            return False
        try:
            return inspect.isfunction(getattr(self.clazz, name))
        except AttributeError:
            return False

    def __iter__(self) -> Any:
        return iter(_moto["method_names_from_class"](self.clazz))


def _method_names_from_class(clazz: Any) -> _FunctionNames:
    return _FunctionNames(clazz)


# ----------------------------------------------------------------------- install


def _check_version() -> None:
    import moto

    if moto.__version__ != MOTO_VERSION:
        raise SpeedupError(f"localcloud.moto_speedups patches moto {MOTO_VERSION} internals; found moto "
                           f"{moto.__version__}: re-check each patched function (see the module docstring) "
                           "and update MOTO_VERSION")


def _targets() -> list[tuple[Any, str, Any, Any]]:
    """(owner, attribute, replacement, moto's function) for every patch, after checking that
    each function moto defines is still there with the parameters the replacement expects."""
    import moto.backends as backends
    import moto.core.responses as core_responses
    from moto.core.responses import BaseResponse
    from moto.core.parse import JSONParser
    from moto.core.serialize import JSONSerializer, ResponseSerializer
    import moto.dynamodb.responses as dynamodb_responses
    from moto.dynamodb.models import utilities as dynamodb_utilities
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    patches = [
        (JSONSerializer, "_serialize_result", _serialize_result, ResponseSerializer.__dict__.get("_serialize_result"),
         ("self", "resp", "result")),
        (Item, "__init__", _item_init, Item.__dict__.get("__init__"), ("self", "hash_key", "range_key", "attrs")),
        (Item, "size", _item_size, Item.__dict__.get("size"), ("self",)),
        (Item, "project", _item_project, Item.__dict__.get("project"), ("self", "projection_expressions")),
        (DynamoType, "size", _dynamo_type_size, DynamoType.__dict__.get("size"), ("self",)),
        (dynamodb_responses, "dynamo_to_dict", _dynamo_result_to_dict, dynamodb_utilities.__dict__.get("dynamo_to_dict"),
         ("obj",)),
        (DynamoHandler, "_enrich_response", staticmethod(_enrich_response), BaseResponse._enrich_response,
         ("headers", "body")),
        (backends, "list_of_moto_modules", _list_of_moto_modules, backends.__dict__.get("list_of_moto_modules"), ()),
        (core_responses, "method_names_from_class", _method_names_from_class,
         core_responses.__dict__.get("method_names_from_class"), ("clazz",)),
        (Table, "query", _table_query, Table.__dict__.get("query"),
         ("self", "hash_key", "range_comparison", "range_objs", "limit", "exclusive_start_key", "scan_index_forward",
          "projection_expressions", "index_name", "consistent_read", "filter_expression", "hash_key_conditions",
          "range_key_conditions", "filter_kwargs")),
        (Item, "__deepcopy__", _item_deepcopy, Item.__dict__.get("__deepcopy__"), ("self", "memo")),
        (Table, "all_items", _all_items, Table.__dict__.get("all_items"), ("self",)),
        (Table, "sorted_items", _sorted_items, Table.__dict__.get("sorted_items"),
         ("self", "hash_key_attrs", "range_key_attrs", "items")),
        (DynamoDBBackend, "transact_write_items", _transact_write_items,
         DynamoDBBackend.__dict__.get("transact_write_items"), ("self", "transact_items")),
        (JSONParser, "_do_parse", _json_do_parse, JSONParser.__dict__.get("_do_parse"),
         ("self", "request_dict", "shape")),
    ]
    for owner, name, _replacement, original, params in patches:
        if original is None or not callable(original) or tuple(inspect.signature(original).parameters) != params:
            raise SpeedupError(f"moto changed: {getattr(owner, '__name__', owner)}.{name} is not the function "
                               "localcloud.moto_speedups replaces")
    if ("_serialize_result" in JSONSerializer.__dict__ or "_enrich_response" in DynamoHandler.__dict__
            or dynamodb_responses.dynamo_to_dict is not dynamodb_utilities.dynamo_to_dict):
        raise SpeedupError("moto changed: JSONSerializer/DynamoHandler now define what is patched here")
    if "__deepcopy__" in Table.__dict__:
        raise SpeedupError("moto changed: Table now defines how it is copied")
    from moto.dynamodb.models import table as table_module

    if getattr(table_module, "RESULT_SIZE_LIMIT", None) != _RESULT_SIZE_LIMIT or not callable(
            getattr(Table, "_item_comes_before_dct", None)):
        raise SpeedupError("moto changed: Table's page size limit or start-key test is not what the Query cut uses")
    return [(owner, name, replacement, original) for owner, name, replacement, original, _ in patches] + [
        (Table, "__deepcopy__", _table_deepcopy, None)]



#: moto's own functions, called where the fast path does not apply.
_moto: dict[str, Any] = {}
#: (owner, attribute, what owner.__dict__ held before install, or _MISSING) for uninstall.
_saved: list[tuple[Any, str, Any]] = []
_MISSING = object()


def install() -> None:
    """Apply every patch (idempotent). Raises SpeedupError on a moto other than 5.2.5."""
    global _installed
    if _installed:
        return
    _check_version()
    targets = _targets()
    for (owner, name, replacement, original), role in zip(
            targets, ("serialize_result", "item_init", "item_size", "item_project", "dynamo_type_size", "dynamo_to_dict",
                      "enrich_response", "list_of_moto_modules", "method_names_from_class",
                      "table_query", "item_deepcopy", "all_items", "sorted_items", "transact_write_items",
                      "json_do_parse", "table_deepcopy")):
        _moto[role] = original
        _saved.append((owner, name, owner.__dict__.get(name, _MISSING)))
        setattr(owner, name, replacement)
    _installed = True


def uninstall() -> None:
    """Put moto's originals back."""
    global _installed
    if not _installed:
        return
    for owner, name, previous in reversed(_saved):
        if previous is _MISSING:
            delattr(owner, name)
        else:
            setattr(owner, name, previous)
    _saved.clear()
    _compiled.clear()
    _request_compiled.clear()
    _installed = False


def installed() -> bool:
    return _installed
