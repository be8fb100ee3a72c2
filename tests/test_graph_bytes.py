"""kws.model.graph_bytes: an int8 graph's weights made uint8 keep their values, and onnxruntime's
fused kernels then give what the graph's float semantics give."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from kws.model.graph_bytes import INT8, UINT8, GraphFormatError, exact_int8
from tests.conftest import ROOT

HEAD = ROOT / "kws" / "assets" / "model" / "head.onnx"


def _run(model: bytes, x: np.ndarray, optimise: bool) -> np.ndarray:
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    if not optimise:
        o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(model, o, providers=["CPUExecutionProvider"])
    return s.run(None, {"vectors": x})[0]


def test_the_shipped_heads_int8_weights_become_uint8_of_the_same_values():
    raw = HEAD.read_bytes()
    fixed, n = exact_int8(raw)
    before = {t.name: t for t in onnx.load_from_string(raw).graph.initializer}
    after = {t.name: t for t in onnx.load_from_string(fixed).graph.initializer}
    assert before.keys() == after.keys()
    changed = [k for k in before if before[k].data_type == INT8]
    assert n == len(changed) == 10                    # 5 weight matrices and their zero points
    for k in before:
        a, b = numpy_helper.to_array(before[k]), numpy_helper.to_array(after[k])
        if k in changed:
            assert after[k].data_type == UINT8
            np.testing.assert_array_equal(b.astype(np.int16) - 128, a.astype(np.int16))
        else:
            np.testing.assert_array_equal(a, b)
    assert exact_int8(fixed) == (fixed, 0)            # nothing left to change


def test_its_fused_kernels_give_the_graphs_float_semantics():
    x = np.load(HEAD.with_name("head_check.npz"))["vectors"][None].astype(np.float32)
    fixed, _ = exact_int8(HEAD.read_bytes())
    want = _run(HEAD.read_bytes(), x, optimise=False)        # DequantizeLinear -> float MatMul -> ...
    got = _run(fixed, x, optimise=True)                      # QLinearMatMul on uint8 x uint8
    assert np.abs(got - want).max() <= 0.013                 # at most one step of the int8 output
    assert np.mean(got == want) > 0.99


def test_bytes_that_are_no_model_are_refused():
    with pytest.raises(GraphFormatError):
        exact_int8(b"\x08\x07")
