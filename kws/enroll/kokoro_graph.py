"""The Kokoro graph's integer convolutions as integer matrix products: the same sums, 1.8x sooner.

The int8 export of Kokoro-82M computes each of its 87 one-dimensional convolutions as
``DynamicQuantizeLinear`` -> ``ConvInteger`` (uint8 activations, uint8 weights) -> int32 ->
``Add`` (int32 bias) -> ``Cast`` -> ``Mul``. onnxruntime's ``ConvInteger`` is im2col and a
uint8 x uint8 matrix product; ``MatMulInteger`` with the uint8 activations on the left and int8
weights on the right (onnxruntime prepacks them) gives the same sums 2.3x sooner on an x86-64 core
with AVX-512 VNNI (``benchmarks/kokoro_speed.py --one-conv``: 128 channels over 7560 frames, kernel
11: 10.5 ms against 24.8).

:func:`convs_as_matmuls` therefore replaces every ``ConvInteger`` of stride 1 and one group whose
weights are a uint8 initializer (84 of the 87; the three strided ones stay) by::

    Transpose(x) -> Pad(zero point) -> Gather(im2col, time-major) -> MatMulInteger(., W') -> Transpose

with ``W'`` the weights less 128 as int8 (and their zero point less 128), laid out as
(kernel tap x input channel, output channel). ``(w - z_w) == ((w - 128) - (z_w - 128))`` and the
padding is the activations' zero point as before, so every int32 sum is the one ``ConvInteger``
gives: the audio is the same to the bit. On a CPU without VNNI onnxruntime's uint8 x int8 product
saturates, so there the weights stay uint8 (:func:`kws.model.graph_bytes.signed_products_exact`;
exact, and about as fast as ``ConvInteger`` there). The rest of the graph is copied as it is; the
weights only the rewritten convolutions read are left out.

It works on the serialized model (protocol buffer bytes) with numpy only
(:mod:`kws.model.graph_bytes`). The result is the same bytes for the same model and CPU kind
(kws.enroll.kokoro checks the model's sha256 first).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set, Tuple

import numpy as np

from kws.model.graph_bytes import (INT8, INT64, UINT8, GraphFormatError, _int_field, _ints, _signed, field_bytes,
                                    fields, signed_products_exact, varint)

_ATTR_INT, _ATTR_INTS = 2, 7          # AttributeProto.type
_MIN_OPSET = 15                       # Shape(start, end), Squeeze/Unsqueeze axes as inputs


# ----------------------------------------------------------------------------- reading
@dataclass
class Node:
    inputs: List[str]
    outputs: List[str]
    name: str = ""
    op_type: str = ""
    domain: str = ""
    attrs: Dict[str, object] = field(default_factory=dict)   # int, bytes or list of int
    has_graph: bool = False                                   # an attribute holds a subgraph


def parse_node(buf) -> Node:
    node = Node([], [])
    for number, wire, value, _, _ in fields(buf):
        if number == 1:
            node.inputs.append(bytes(value).decode())
        elif number == 2:
            node.outputs.append(bytes(value).decode())
        elif number == 3:
            node.name = bytes(value).decode()
        elif number == 4:
            node.op_type = bytes(value).decode()
        elif number == 7:
            node.domain = bytes(value).decode()
        elif number == 5:
            name, val = "", None
            for n2, w2, v2, _, _ in fields(value):
                if n2 == 1:
                    name = bytes(v2).decode()
                elif n2 == 3:
                    val = _signed(v2)
                elif n2 == 4:
                    val = bytes(v2)
                elif n2 == 8:
                    val = (val if isinstance(val, list) else []) + _ints(w2, v2)
                elif n2 in (6, 11):        # g, graphs
                    node.has_graph = True
            node.attrs[name] = val
    return node


def parse_tensor(buf) -> Tuple[str, Optional[np.ndarray]]:
    """An initializer's name and, for uint8 data held in the file, its values."""
    name, dims, dtype, raw, int32s, external = "", [], 0, None, [], False
    for number, wire, value, _, _ in fields(buf):
        if number == 1:
            dims += _ints(wire, value)
        elif number == 2:
            dtype = value
        elif number == 5:
            int32s += _ints(wire, value)
        elif number == 8:
            name = bytes(value).decode()
        elif number == 9:
            raw = value
        elif number == 14:
            external = value == 1
    if dtype != UINT8 or external:
        return name, None
    size = int(np.prod(dims)) if dims else 1
    if raw is not None:
        data = np.frombuffer(raw, np.uint8)
    else:
        data = np.array(int32s, np.int64).astype(np.uint8)
    if data.size != size:
        return name, None
    return name, data.reshape(dims)


# ----------------------------------------------------------------------------- writing
def tensor_bytes(name: str, array: np.ndarray) -> bytes:
    types = {np.dtype(np.uint8): UINT8, np.dtype(np.int8): INT8, np.dtype(np.int64): INT64}
    a = np.ascontiguousarray(array)
    out = b"".join(_int_field(1, d) for d in a.shape)
    out += _int_field(2, types[a.dtype]) + field_bytes(8, name.encode())
    return out + field_bytes(9, a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())


def node_bytes(op_type: str, inputs: List[str], outputs: List[str], name: str, **attrs) -> bytes:
    out = b"".join(field_bytes(1, i.encode()) for i in inputs)
    out += b"".join(field_bytes(2, o.encode()) for o in outputs)
    out += field_bytes(3, name.encode()) + field_bytes(4, op_type.encode())
    for key, val in attrs.items():
        if isinstance(val, (list, tuple)):
            a = field_bytes(1, key.encode()) + b"".join(_int_field(8, v) for v in val)
            a += _int_field(20, _ATTR_INTS)
        else:
            a = field_bytes(1, key.encode()) + _int_field(3, int(val)) + _int_field(20, _ATTR_INT)
        out += field_bytes(5, a)
    return out


# ----------------------------------------------------------------------------- the rewrite
def _conv_plan(node: Node, weights: Dict[str, np.ndarray]) -> Optional[Tuple[np.ndarray, int, int, int, int]]:
    """(weights, weight zero point, dilation, left pad, right pad) of a ConvInteger this module
    rewrites, else None."""
    if node.op_type != "ConvInteger" or node.domain not in ("", "ai.onnx") or node.has_graph:
        return None
    if len(node.inputs) < 2 or len(node.outputs) != 1 or node.inputs[1] not in weights:
        return None
    w = weights[node.inputs[1]]
    if w.ndim != 3:
        return None
    z = 0
    if len(node.inputs) > 3 and node.inputs[3]:
        zw = weights.get(node.inputs[3])
        if zw is None or zw.size != 1:
            return None
        z = int(zw.reshape(-1)[0])
    a = node.attrs
    known = {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"}
    if set(a) - known:
        return None
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", None) or a.get("group", 1) != 1:
        return None
    if list(a.get("strides", [1])) != [1] or list(a.get("kernel_shape", [w.shape[2]])) != [w.shape[2]]:
        return None
    dil = list(a.get("dilations", [1]))
    pads = list(a.get("pads", [0, 0]))
    if len(dil) != 1 or dil[0] < 1 or len(pads) != 2 or min(pads) < 0:
        return None
    return w, z, dil[0], pads[0], pads[1]


def weight_matrix(w: np.ndarray) -> np.ndarray:
    """uint8 convolution weights (out, in, taps) as the right-hand matrix of the product: row
    ``tap * in + channel``, one column per output channel."""
    m, c, k = w.shape
    t = np.ascontiguousarray(w.reshape(m, c * k).T)                  # (in x taps, out)
    return np.ascontiguousarray(t.reshape(c, k, m).transpose(1, 0, 2)).reshape(k * c, m)


def int8_weights(w: np.ndarray) -> np.ndarray:
    """:func:`weight_matrix` less 128, as int8."""
    return (weight_matrix(w) ^ np.uint8(0x80)).view(np.int8)          # w ^ 0x80 as int8 is w - 128


class _Rewriter:
    def __init__(self, taken: Set[str], signed: bool):
        self.taken = taken
        self.signed = signed
        self.inits: List[bytes] = []
        self.made: Dict[str, str] = {}

    def fresh(self, name: str) -> str:
        if name in self.taken:
            raise GraphFormatError(f"the name {name!r} is already in the graph")
        self.taken.add(name)
        return name

    def const(self, name: str, array: np.ndarray) -> str:
        """An initializer, made once per name."""
        if name not in self.made:
            self.made[name] = self.fresh(name)
            self.inits.append(field_bytes(5, tensor_bytes(name, array)))
        return name

    def conv(self, node: Node, w: np.ndarray, z: int, d: int, pl: int, pr: int) -> bytes:
        m, c, k = w.shape
        p = (node.name or node.outputs[0]) + "/as_matmul/"
        x = node.inputs[0]
        xz = node.inputs[2] if len(node.inputs) > 2 else ""
        key = f"kws_convmm/{node.inputs[1]}"
        if self.signed:
            w8 = self.const(key + "/w_int8", int8_weights(w))
            z8 = self.const(key + "/w_zero_point_int8", np.array(z - 128, np.int8))
        else:
            w8 = self.const(key + "/w_uint8", weight_matrix(w))
            z8 = self.const(key + "/w_zero_point_uint8", np.array(z, np.uint8))
        out: List[bytes] = []

        def add(op: str, inputs: List[str], suffix: str, **attrs) -> str:
            name = self.fresh(p + suffix)
            out.append(field_bytes(1, node_bytes(op, inputs, [name], name, **attrs)))
            return name

        cur = add("Transpose", [x], "time_major", perm=[0, 2, 1])
        if pl or pr:
            pads = self.const(f"kws_convmm/pads_{pl}_{pr}", np.array([0, pl, 0, 0, pr, 0], np.int64))
            cur = add("Pad", [cur, pads] + ([xz] if xz else []), "padded")
        if k > 1:
            span = self.const(f"kws_convmm/span_{d * (k - 1)}", np.array([d * (k - 1)], np.int64))
            taps = self.const(f"kws_convmm/taps_{k}_{d}", (np.arange(k, dtype=np.int64) * d).reshape(1, k))
            length = add("Shape", [cur], "length", start=1, end=2)
            frames = add("Sub", [length, span], "frames")
            frames = add("Squeeze", [frames], "frames_scalar")
            r = add("Range", [self.const("kws_convmm/0", np.array(0, np.int64)), frames,
                              self.const("kws_convmm/1", np.array(1, np.int64))], "range")
            r = add("Unsqueeze", [r, self.const("kws_convmm/axis_1", np.array([1], np.int64))], "range_column")
            idx = add("Add", [r, taps], "im2col_index")
            cur = add("Gather", [cur, idx], "im2col_taps", axis=1)
            cur = add("Reshape", [cur, self.const("kws_convmm/shape_0_0_-1", np.array([0, 0, -1], np.int64))],
                      "im2col")
        yt = add("MatMulInteger", [cur, w8, xz, z8], "matmul")
        name = self.fresh(p + "channels_first")
        out.append(field_bytes(1, node_bytes("Transpose", [yt], [node.outputs[0]], name, perm=[0, 2, 1])))
        return b"".join(out)


def _opset(model) -> int:
    for number, _, value, _, _ in fields(model):
        if number == 8:
            domain, version = "", 0
            for n2, _, v2, _, _ in fields(value):
                if n2 == 1:
                    domain = bytes(v2).decode()
                elif n2 == 2:
                    version = v2
            if domain in ("", "ai.onnx"):
                return version
    return 0


def rewrite_graph(graph, signed: bool = False) -> Tuple[List[object], int]:
    """A GraphProto's bytes, in pieces to join, with its integer convolutions as integer matrix
    products (int8 weights if ``signed``, else uint8), and how many were rewritten."""
    entries = list(fields(graph))
    nodes: Dict[int, Node] = {}
    weights: Dict[str, np.ndarray] = {}
    init_at: Dict[str, int] = {}
    taken: Set[str] = set()
    kept_names: Set[str] = set()          # graph inputs and outputs
    for k, (number, _, value, _, _) in enumerate(entries):
        if number == 1:
            node = nodes[k] = parse_node(value)
            taken.update(node.outputs)
            taken.add(node.name)
        elif number == 5:
            name, data = parse_tensor(value)
            init_at[name] = k
            taken.add(name)
            if data is not None:
                weights[name] = data
        elif number in (11, 12):
            for n2, _, v2, _, _ in fields(value):
                if n2 == 1:
                    kept_names.add(bytes(v2).decode())
    taken |= kept_names
    plans = {k: plan for k, node in nodes.items() if (plan := _conv_plan(node, weights)) is not None}
    if not plans:
        return [graph], 0
    rw = _Rewriter(taken, signed)
    # initializers only the rewritten convolutions read are left out (not where a subgraph may read them)
    uses: Dict[str, int] = {}
    for node in nodes.values():
        for i in node.inputs:
            uses[i] = uses.get(i, 0) + 1
    for k in plans:
        for i in nodes[k].inputs[1:]:
            uses[i] -= 1
    subgraphs = any(n.has_graph for n in nodes.values())
    dropped = {init_at[name] for name, n in uses.items()
               if n == 0 and name in init_at and name not in kept_names and not subgraphs}
    pieces: List[object] = []
    view = memoryview(graph)
    run = None                            # [start, end) of graph bytes copied as they are
    for k, (number, _, _, start, end) in enumerate(entries):
        if k in plans or k in dropped:
            if run is not None:
                pieces.append(view[run[0]:run[1]])
                run = None
            if k in plans:
                pieces.append(rw.conv(nodes[k], *plans[k]))
        else:
            run = (run[0], end) if run is not None else (start, end)
    if run is not None:
        pieces.append(view[run[0]:run[1]])
    pieces += rw.inits
    return pieces, len(plans)


def convs_as_matmuls(model: bytes, signed: Optional[bool] = None) -> Tuple[bytes, int]:
    """The serialized ONNX ``model`` with its integer convolutions (``ConvInteger`` of stride 1,
    one group, uint8 initializer weights) as integer matrix products giving the same int32 sums,
    and how many were rewritten (0: ``model`` as it was, e.g. for an opset before 15). The weights
    become int8 where ``signed`` (default: :func:`signed_products_exact`), else stay uint8."""
    if signed is None:
        signed = signed_products_exact()
    if _opset(model) < _MIN_OPSET:
        return model, 0
    view = memoryview(model)
    for number, _, value, start, end in fields(model):
        if number == 7:
            pieces, n = rewrite_graph(value, signed)
            if not n:
                return model, 0
            size = sum(len(b) for b in pieces)
            return b"".join([view[:start], varint(7 << 3 | 2), varint(size), *pieces, view[end:]]), n
    raise GraphFormatError("not an ONNX model (no graph found)")
