"""kws.enroll.kokoro_graph: integer convolutions as integer matrix products, the same int32 sums."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from kws.enroll import kokoro
from kws.enroll.kokoro_graph import convs_as_matmuls, int8_weights, weight_matrix
from kws.model.graph_bytes import signed_products_exact

C = 6


def _session(data: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])


def _model(opset: int = 20) -> bytes:
    """DynamicQuantizeLinear, then integer convolutions of several shapes on its output (and one
    on a second input), the export's chain after one (int32 bias, Cast, Mul)."""
    rng = np.random.default_rng(0)
    inits, nodes, outputs = [], [], []

    def weights(name, shape, zero_point):
        w = rng.integers(0, 256, shape, dtype=np.uint8)
        w.reshape(-1)[:4] = [0, 255, 127, 128]              # the extremes, both sides of 128
        inits.append(numpy_helper.from_array(w, name))
        inits.append(helper.make_tensor(name + "_zp", TensorProto.UINT8, [], [zero_point]))  # int32_data
        return name

    nodes.append(helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]))
    nodes.append(helper.make_node("DynamicQuantizeLinear", ["x2"], ["x2q", "x2s", "x2z"]))
    shared = weights("w_shared", (5, C, 3), 131)
    convs = [  # (weights, output channels, kernel, attributes)
        (weights("w1", (4, C, 1), 0), {}),                                        # pointwise
        (shared, {"pads": [1, 1]}),
        (shared, {"pads": [1, 1], "dilations": [1]}),                              # the same weights again
        (weights("w7", (3, C, 7), 255), {"pads": [9, 9], "dilations": [3]}),
        (weights("w5", (2, C, 5), 7), {"pads": [3, 0]}),                           # uneven padding
        (weights("w4", (2, C, 4), 128), {}),                                       # no padding: shorter
        (weights("ws", (2, C, 3), 3), {"pads": [1, 1], "strides": [2]}),           # stride 2: left alone
    ]
    for k, (w, attrs) in enumerate(convs):
        x = "x2q" if k == 3 else "xq"
        z = "x2z" if k == 3 else "xz"
        kernel = [next(t for t in inits if t.name == w).dims[2]]
        nodes.append(helper.make_node("ConvInteger", [x, w, z, w + "_zp"], [f"y{k}"],
                                      kernel_shape=kernel, **attrs))
        outputs.append(helper.make_tensor_value_info(f"y{k}", TensorProto.INT32, [1, None, None]))
    inits.append(numpy_helper.from_array(rng.integers(-9, 9, (1, 4, 1)).astype(np.int32), "bias"))
    inits.append(numpy_helper.from_array(np.array(0.01, np.float32), "scale"))
    nodes += [helper.make_node("Add", ["y0", "bias"], ["b"]),
              helper.make_node("Cast", ["b"], ["bf"], to=TensorProto.FLOAT),
              helper.make_node("Mul", ["bf", "scale"], ["f"])]
    outputs.append(helper.make_tensor_value_info("f", TensorProto.FLOAT, [1, None, None]))
    graph = helper.make_graph(nodes, "convs", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, None]),
        helper.make_tensor_value_info("x2", TensorProto.FLOAT, [1, C, None])], outputs, inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m.SerializeToString()


@pytest.mark.parametrize("signed", [None, False, True], ids=["as-chosen-here", "uint8", "int8"])
@pytest.mark.parametrize("inputs", ["normal", "positive", "negative", "zeros"])
def test_rewritten_convolutions_give_the_same_numbers(inputs, signed):
    if signed and not signed_products_exact():
        pytest.skip("uint8 x int8 products saturate on this CPU (no VNNI): kws keeps uint8 weights here")
    rng = np.random.default_rng(1)
    x = {"normal": rng.standard_normal((1, C, 40)) * 3, "positive": rng.random((1, C, 40)),
         "negative": -rng.random((1, C, 40)), "zeros": np.zeros((1, C, 40))}[inputs].astype(np.float32)
    feed = {"x": x, "x2": rng.standard_normal((1, C, 33)).astype(np.float32)}
    model = _model()
    fast, n = convs_as_matmuls(model, signed)
    assert n == 6                                        # all but the strided one
    ops = [nd.op_type for nd in onnx.load_from_string(fast).graph.node]
    assert ops.count("ConvInteger") == 1 and ops.count("MatMulInteger") == 6
    onnx.checker.check_model(onnx.load_from_string(fast))
    names = [o.name for o in _session(model).get_outputs()]
    want = _session(model).run(names, feed)
    got = _session(fast).run(names, feed)
    for name, a, b in zip(names, want, got):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_weights_only_the_convolutions_read_are_left_out_and_the_rest_kept():
    for signed, kind in ((True, "int8"), (False, "uint8")):
        fast = onnx.load_from_string(convs_as_matmuls(_model(), signed)[0])
        names = {t.name for t in fast.graph.initializer}
        assert "w_shared" not in names and "w7" not in names
        assert {"ws", "ws_zp", "bias", "scale"} <= names                   # the strided conv's, the chain's
        assert sum(1 for t in names if t.endswith(f"w_shared/w_{kind}")) == 1   # made once for two convs


def test_int8_weights_are_the_uint8_ones_less_128_tap_major():
    w = np.random.default_rng(2).integers(0, 256, (5, 4, 3), dtype=np.uint8)
    got, same = int8_weights(w), weight_matrix(w)
    assert got.dtype == np.int8 and got.shape == (12, 5) and same.dtype == np.uint8 and same.shape == (12, 5)
    for k in range(3):
        np.testing.assert_array_equal(got[k * 4:(k + 1) * 4], (w[:, :, k].astype(int) - 128).T)
        np.testing.assert_array_equal(same[k * 4:(k + 1) * 4], w[:, :, k].T)


def test_int8_weights_only_where_the_cpu_has_vnni(tmp_path):
    # one file each: the answer is kept per file (the CPU does not change while kws runs)
    cases = {"avx2": ("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n", False),
             "avx512": ("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni\n", True),
             "avx_vnni": ("flags\t\t: avx2 avx_vnni\n", True)}
    for name, (text, exact) in cases.items():
        (tmp_path / name).write_text(text)
        assert signed_products_exact(str(tmp_path / name)) is exact
    assert not signed_products_exact(str(tmp_path / "missing"))


def test_a_model_before_opset_15_is_left_as_it_is():
    model = _model(opset=13)
    assert convs_as_matmuls(model) == (model, 0)


def test_the_kokoro_model_renders_the_same_audio_to_the_bit():
    path = kokoro.model_path()
    plain = _session(kokoro.session_bytes(path, as_matmuls=False))
    fast_bytes = kokoro.session_bytes(path)
    fast = _session(fast_bytes)
    ops = [nd.op_type for nd in onnx.load_from_string(fast_bytes).graph.node]
    assert ops.count("ConvInteger") == 3 and ops.count("MatMulInteger") == 148 + 84   # 84 of the 87 rewritten
    ids = kokoro.tokens("hˈA")
    feed = {"tokens": ids[None], "style": kokoro.voices().style("bf_emma", ids.size - 2).reshape(1, -1),
            "speed": np.array([1.0], np.float32)}
    want = plain.run(["audio", kokoro.DURATIONS], feed)
    got = fast.run(["audio", kokoro.DURATIONS], feed)
    np.testing.assert_array_equal(want[0], got[0])
    np.testing.assert_array_equal(want[1], got[1])
