"""Read the nodes of an ONNX model (op type, inputs, outputs, attributes) without the `onnx` package.

The explain function has to see inside the served artifact (tree splits, leaf weights, node
covers, imputed values, coefficients); onnxruntime runs a model but does not expose its nodes.
Shipping the `onnx` package with the function was measured and rejected: 80 MiB installed
(16 MiB without its backend test data) plus 23 MiB of ml_dtypes, and pip would install a
second numpy beside the serving layer's, on top of a serving set of about 140 MiB (Lambda's
limit is 250 MiB). A tree-structure sidecar written at training time was not needed either:
the one thing TreeSHAP needs beyond the served graph, each node's training cover, is written
into the artifact itself (``nodes_hitrates``, `mlops.models.onnx_export`), so the
sha256-checked artifact explains itself, with no second object to store and verify.

The protobuf runtime (2.2 MiB) is already in the serving layer as an onnxruntime dependency,
so this module declares the few messages and fields of ``onnx.proto`` it reads (field numbers
as in onnx.proto; everything else in the file is an unknown field and skipped) and lets
protobuf parse the bytes. Nothing is decoded by hand. The tests check that it reads every node
and attribute exactly as the `onnx` package does.

`read_graph(onnx_bytes)` -> the graph's input and output names and its nodes in order, each
attribute as a Python value: a float, an int, a str, a float64 / int64 numpy array for
repeated numbers (floats are stored as float32), a list of str, or a numpy array for a tensor
attribute (float, double and int64 tensors).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "mlops_onnx_subset"
#: message -> (field name, number, type, repeated, message type) as in onnx.proto (proto2).
_SCHEMA: dict[str, list[tuple[str, int, int, bool, str | None]]] = {
    "TensorProto": [
        ("dims", 1, _F.TYPE_INT64, True, None),
        ("data_type", 2, _F.TYPE_INT32, False, None),
        ("float_data", 4, _F.TYPE_FLOAT, True, None),
        ("int64_data", 7, _F.TYPE_INT64, True, None),
        ("raw_data", 9, _F.TYPE_BYTES, False, None),
        ("double_data", 10, _F.TYPE_DOUBLE, True, None),
    ],
    "AttributeProto": [
        ("name", 1, _F.TYPE_STRING, False, None),
        ("f", 2, _F.TYPE_FLOAT, False, None),
        ("i", 3, _F.TYPE_INT64, False, None),
        ("s", 4, _F.TYPE_BYTES, False, None),
        ("t", 5, _F.TYPE_MESSAGE, False, "TensorProto"),
        ("floats", 7, _F.TYPE_FLOAT, True, None),
        ("ints", 8, _F.TYPE_INT64, True, None),
        ("strings", 9, _F.TYPE_BYTES, True, None),
        ("type", 20, _F.TYPE_INT32, False, None),  # the AttributeType enum, read as its number
    ],
    "NodeProto": [
        ("input", 1, _F.TYPE_STRING, True, None),
        ("output", 2, _F.TYPE_STRING, True, None),
        ("name", 3, _F.TYPE_STRING, False, None),
        ("op_type", 4, _F.TYPE_STRING, False, None),
        ("attribute", 5, _F.TYPE_MESSAGE, True, "AttributeProto"),
        ("domain", 7, _F.TYPE_STRING, False, None),
    ],
    "GraphProto": [
        ("node", 1, _F.TYPE_MESSAGE, True, "NodeProto"),
        ("input", 11, _F.TYPE_MESSAGE, True, "ValueInfoProto"),
        ("output", 12, _F.TYPE_MESSAGE, True, "ValueInfoProto"),
    ],
    "ValueInfoProto": [("name", 1, _F.TYPE_STRING, False, None)],
    "ModelProto": [("graph", 7, _F.TYPE_MESSAGE, False, "GraphProto")],
}
# AttributeProto.AttributeType numbers (onnx.proto).
_FLOAT, _INT, _STRING, _TENSOR, _FLOATS, _INTS, _STRINGS = 1, 2, 3, 4, 6, 7, 8
# TensorProto.DataType numbers of the tensors we read.
_TENSOR_DTYPES = {1: np.float32, 11: np.float64, 7: np.int64}


class OnnxReadError(ValueError):
    """The bytes are not an ONNX model this reader understands."""


@functools.lru_cache(maxsize=1)
def _model_class() -> type:
    proto = descriptor_pb2.FileDescriptorProto(name=f"{_PACKAGE}.proto", package=_PACKAGE, syntax="proto2")
    for message, fields in _SCHEMA.items():
        m = proto.message_type.add(name=message)
        for name, number, kind, repeated, type_name in fields:
            f = m.field.add(name=name, number=number, type=kind,
                            label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
            if type_name:
                f.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.ModelProto"))


@dataclass(frozen=True)
class Node:
    """One graph node: op type, domain, input and output names, attributes by name."""

    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Graph:
    """The graph's input and output names and its nodes in order."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    nodes: tuple[Node, ...]


def _tensor(t: Any) -> np.ndarray:
    dtype = _TENSOR_DTYPES.get(t.data_type)
    if dtype is None:
        raise OnnxReadError(f"tensor attribute of data type {t.data_type} is not supported")
    if t.raw_data:
        arr = np.frombuffer(t.raw_data, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
    elif dtype is np.float32:
        arr = np.asarray(t.float_data, dtype=np.float32)
    elif dtype is np.float64:
        arr = np.asarray(t.double_data, dtype=np.float64)
    else:
        arr = np.asarray(t.int64_data, dtype=np.int64)
    return arr.reshape(tuple(t.dims)) if len(t.dims) > 1 else arr


def _attribute(a: Any) -> Any:
    kind = a.type
    if kind == _FLOAT:
        return float(a.f)
    if kind == _INT:
        return int(a.i)
    if kind == _STRING:
        return a.s.decode("utf-8")
    if kind == _TENSOR:
        return _tensor(a.t)
    if kind == _FLOATS:
        return np.asarray(a.floats, dtype=np.float32).astype(np.float64)  # stored as float32
    if kind == _INTS:
        return np.asarray(a.ints, dtype=np.int64)
    if kind == _STRINGS:
        return [s.decode("utf-8") for s in a.strings]
    return None  # graphs, sparse tensors, type protos: not used by the models we explain


def read_graph(onnx_bytes: bytes) -> Graph:
    """Parse an ONNX model's main graph; OnnxReadError when the bytes are not a model."""
    model = _model_class()()
    try:
        model.ParseFromString(onnx_bytes)
    except Exception as exc:  # protobuf's DecodeError, or a truncated message
        raise OnnxReadError(f"not an ONNX model: {exc}") from None
    if not model.HasField("graph") or not model.graph.node:
        raise OnnxReadError("the ONNX model has no graph nodes")
    g = model.graph
    nodes = tuple(
        Node(n.op_type, n.domain, tuple(n.input), tuple(n.output), {a.name: _attribute(a) for a in n.attribute})
        for n in g.node
    )
    return Graph(tuple(v.name for v in g.input), tuple(v.name for v in g.output), nodes)
