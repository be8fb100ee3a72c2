"""Reading and writing an ONNX model's protocol buffer bytes with numpy alone (kws's run time has
no onnx package), and the model's int8 weights made exact on every CPU.

ModelProto.graph is field 7 and opset_import field 8; GraphProto.node is field 1, initializer 5,
input 11, output 12; NodeProto has input 1, output 2, name 3, op_type 4, attribute 5, domain 7;
AttributeProto name 1, i 3, s 4, g 6, ints 8, graphs 11, type 20; TensorProto dims 1, data_type 2,
int32_data 5, name 8, raw_data 9, data_location 14.

**Exact int8 products.** onnxruntime multiplies uint8 activations by int8 weights exactly on an
x86-64 CPU with VNNI, but with AVX2 alone it adds pairs of products in 16 bits that saturate
(``vpmaddubsw``), so a statically quantised graph gives other numbers there than on other CPUs
and in the browser. :func:`exact_int8` turns such a graph's int8 weights (those read by
``DequantizeLinear``) into uint8 ones 128 higher with zero points 128 higher: the same values
once dequantised, multiplied by onnxruntime's exact uint8 x uint8 kernels.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Dict, Iterator, List, Set, Tuple

import numpy as np

UINT8, INT8, INT64 = 2, 3, 7          # TensorProto element types


class GraphFormatError(ValueError):
    """Bytes that are not an ONNX model as this module reads them."""


# ----------------------------------------------------------------------------- protocol buffers
def varint(n: int) -> bytes:
    n &= (1 << 64) - 1                  # negative int64: ten bytes of two's complement
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(buf, i: int) -> Tuple[int, int]:
    n, shift = 0, 0
    while True:
        if i >= len(buf):
            raise GraphFormatError("a varint runs past the end")
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, i
        shift += 7


def _signed(n: int) -> int:
    return n - (1 << 64) if n >= 1 << 63 else n


def fields(buf) -> Iterator[Tuple[int, int, object, int, int]]:
    """The fields of one message: (number, wire type, value, start, end), the value an int
    (varint), a memoryview (length-delimited) or bytes (fixed width); [start, end) is the whole
    field, key included."""
    view = memoryview(buf)
    i = 0
    while i < len(view):
        start = i
        key, i = read_varint(view, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(view, i)
        elif wire == 1:
            value, i = bytes(view[i:i + 8]), i + 8
        elif wire == 5:
            value, i = bytes(view[i:i + 4]), i + 4
        elif wire == 2:
            n, j = read_varint(view, i)
            value, i = view[j:j + n], j + n
        else:
            raise GraphFormatError(f"wire type {wire} (field {number})")
        if i > len(view):
            raise GraphFormatError(f"field {number} runs past the end")
        yield number, wire, value, start, i


def _ints(wire: int, value) -> List[int]:
    """A repeated int64 field's values, packed or not."""
    if wire == 0:
        return [_signed(value)]
    out, view, i = [], value, 0
    while i < len(view):
        n, i = read_varint(view, i)
        out.append(_signed(n))
    return out


def field_bytes(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _int_field(number: int, n: int) -> bytes:
    return varint(number << 3) + varint(n)


def _tensor_parts(buf) -> Tuple[str, int, bool]:
    """An initializer's name, element type, and whether its values are in the file (raw bytes or
    int32_data), not in external data."""
    name, dtype = "", 0
    for number, _, value, _, _ in fields(buf):
        if number == 2:
            dtype = value
        elif number == 8:
            name = bytes(value).decode()
        elif number == 14 and value == 1:
            return name, dtype, False
    return name, dtype, True


def _as_uint8(buf) -> bytes:
    """An int8 initializer's TensorProto as uint8, each value 128 higher (held as raw bytes)."""
    out, values = [], []
    for number, wire, value, start, end in fields(buf):
        if number == 2:
            out.append(_int_field(2, UINT8))
        elif number == 9:
            values.append(np.frombuffer(value, np.int8))
        elif number == 5:
            values.append(np.array(_ints(wire, value), np.int64).astype(np.int8))
        else:
            out.append(bytes(buf[start:end]))
    data = np.concatenate(values) if values else np.zeros(0, np.int8)
    return b"".join(out) + field_bytes(9, (data.view(np.uint8) ^ np.uint8(0x80)).tobytes())   # v ^ 0x80 is v + 128


def exact_int8(model: bytes) -> Tuple[bytes, int]:
    """``model`` with every int8 initializer that only ``DequantizeLinear`` nodes read (as the
    values or the zero point) made uint8, 128 higher, and how many were changed (0: ``model`` as
    it was)."""
    view = memoryview(model)
    for number, _, graph, gstart, gend in fields(model):
        if number != 7:
            continue
        readers: Dict[str, Set[str]] = {}
        inits: Dict[str, Tuple[int, int, object]] = {}
        for n2, _, value, start, end in fields(graph):
            if n2 == 1:
                op, inputs = "", []
                for n3, _, v3, _, _ in fields(value):
                    if n3 == 1:
                        inputs.append(bytes(v3).decode())
                    elif n3 == 4:
                        op = bytes(v3).decode()
                    elif n3 == 5:
                        for n4, _, _, _, _ in fields(v3):
                            if n4 in (6, 11):        # a subgraph may read anything: leave the model
                                return model, 0
                for k, i in enumerate(inputs):
                    readers.setdefault(i, set()).add(op if (op == "DequantizeLinear" and k in (0, 2)) else "other")
            elif n2 == 5:
                name, dtype, raw = _tensor_parts(value)
                if dtype == INT8 and raw:
                    inits[name] = (start, end, value)
            elif n2 in (11, 12):
                for n3, _, v3, _, _ in fields(value):
                    if n3 == 1:
                        readers.setdefault(bytes(v3).decode(), set()).add("other")
        change = {name for name in inits if readers.get(name) == {"DequantizeLinear"}}
        if not change:
            return model, 0
        gview = memoryview(graph)
        pieces: List[bytes] = []
        at = 0
        for name in sorted(change, key=lambda n: inits[n][0]):
            start, end, value = inits[name]
            pieces += [bytes(gview[at:start]), field_bytes(5, _as_uint8(value))]
            at = end
        pieces.append(bytes(gview[at:]))
        body = b"".join(pieces)
        return b"".join([bytes(view[:gstart]), varint(7 << 3 | 2), varint(len(body)), body,
                         bytes(view[gend:])]), len(change)
    raise GraphFormatError("not an ONNX model (no graph found)")


@lru_cache(maxsize=None)
def signed_products_exact(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether onnxruntime's uint8 x int8 matrix product gives exact int32 sums here: on an x86-64
    CPU with VNNI (AVX-512 VNNI or AVX-VNNI) it does; with AVX2 alone it adds pairs of products in
    16 bits that saturate (``vpmaddubsw``), so the sums, and Kokoro's audio, would differ from
    ``ConvInteger``'s. Where this cannot be read (another OS or processor) the answer is no, and
    the weights stay uint8: uint8 x uint8 products are exact everywhere."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[-1].split())
                    return bool(flags & {"avx512_vnni", "avx_vnni"})
    except OSError:
        pass
    return False
