"""Export the trained encoders to ONNX by writing the graph directly (opset 17).

The graph uses ONNX's own LSTM operator with ``sequence_lens``, so padded batches give exactly the
embeddings of unpadded items (torch's exporter cannot export packed sequences). The weights are
taken from the checkpoint and re-ordered from torch's gate order (i, f, g, o) to ONNX's (i, o, f, c).

Audio encoder:  mel float32 [B, T, 128], lengths int64 [B]  ->  embedding float32 [B, 512]
Text encoder:   ids int64 [B, L],        lengths int64 [B]  ->  embedding float32 [B, 512]
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _reorder_gates(w: np.ndarray, hidden: int) -> np.ndarray:
    i, f, g, o = (w[k * hidden:(k + 1) * hidden] for k in range(4))
    return np.concatenate([i, o, f, g], axis=0)


class _Graph:
    def __init__(self):
        self.nodes: List[onnx.NodeProto] = []
        self.inits: List[onnx.TensorProto] = []
        self._n = 0

    def name(self, base: str) -> str:
        self._n += 1
        return f"{base}_{self._n}"

    def const(self, base: str, value: np.ndarray) -> str:
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value), n))
        return n

    def op(self, op_type: str, inputs: List[str], n_out: int = 1, **attrs) -> List[str]:
        outs = [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs

    def op1(self, op_type: str, inputs: List[str], **attrs) -> str:
        return self.op(op_type, inputs, 1, **attrs)[0]


def _encoder_body(gr: _Graph, x_btd: str, lengths: str, sd: Dict[str, np.ndarray], prefix: str,
                  layers: int, hidden: int) -> str:
    """BiLSTM stack -> masked mean -> linear -> L2 normalise. x_btd: [B, T, D] float."""
    x = gr.op1("Transpose", [x_btd], perm=[1, 0, 2])                  # [T, B, D]
    seq = gr.op1("Cast", [lengths], to=TensorProto.INT32)
    for layer in range(layers):
        ws, rs, bs = [], [], []
        for sfx in ("", "_reverse"):
            wi = sd[f"{prefix}.lstm.weight_ih_l{layer}{sfx}"]
            wh = sd[f"{prefix}.lstm.weight_hh_l{layer}{sfx}"]
            bi = sd[f"{prefix}.lstm.bias_ih_l{layer}{sfx}"]
            bh = sd[f"{prefix}.lstm.bias_hh_l{layer}{sfx}"]
            ws.append(_reorder_gates(wi, hidden))
            rs.append(_reorder_gates(wh, hidden))
            bs.append(np.concatenate([_reorder_gates(bi, hidden), _reorder_gates(bh, hidden)]))
        W = gr.const(f"{prefix}_W{layer}", np.stack(ws).astype(np.float32))
        R = gr.const(f"{prefix}_R{layer}", np.stack(rs).astype(np.float32))
        B = gr.const(f"{prefix}_B{layer}", np.stack(bs).astype(np.float32))
        y = gr.op("LSTM", [x, W, R, B, seq], 1, hidden_size=hidden, direction="bidirectional")[0]
        y = gr.op1("Transpose", [y], perm=[0, 2, 1, 3])                  # [T, B, 2, H]
        x = gr.op1("Reshape", [y, gr.const("shape_tb", np.array([0, 0, -1], dtype=np.int64))])
    # masked mean over time
    shape = gr.op1("Shape", [x])
    t_len = gr.op1("Gather", [shape, gr.const("zero", np.array(0, dtype=np.int64))], axis=0)
    steps = gr.op1("Range", [gr.const("r0", np.array(0, dtype=np.int64)), t_len,
                             gr.const("r1", np.array(1, dtype=np.int64))])
    steps = gr.op1("Unsqueeze", [steps, gr.const("ax1", np.array([1], dtype=np.int64))])     # [T, 1]
    lens_row = gr.op1("Unsqueeze", [lengths, gr.const("ax0", np.array([0], dtype=np.int64))])  # [1, B]
    mask = gr.op1("Cast", [gr.op1("Less", [steps, lens_row])], to=TensorProto.FLOAT)        # [T, B]
    mask = gr.op1("Unsqueeze", [mask, gr.const("ax2", np.array([2], dtype=np.int64))])      # [T, B, 1]
    summed = gr.op1("ReduceSum", [gr.op1("Mul", [x, mask]),
                                  gr.const("ax0b", np.array([0], dtype=np.int64))], keepdims=0)
    denom = gr.op1("Max", [gr.op1("Cast", [lengths], to=TensorProto.FLOAT),
                           gr.const("one", np.array(1.0, dtype=np.float32))])
    denom = gr.op1("Unsqueeze", [denom, gr.const("ax1b", np.array([1], dtype=np.int64))])    # [B, 1]
    pooled = gr.op1("Div", [summed, denom])
    proj = gr.op1("Gemm", [pooled, gr.const(f"{prefix}_proj_w", sd[f"{prefix}.proj.weight"].astype(np.float32)),
                           gr.const(f"{prefix}_proj_b", sd[f"{prefix}.proj.bias"].astype(np.float32))],
                  transB=1)
    norm = gr.op1("ReduceL2", [proj], axes=[-1], keepdims=1)   # axes is an attribute before opset 18
    norm = gr.op1("Max", [norm, gr.const("eps", np.array(1e-12, dtype=np.float32))])
    return gr.op1("Div", [proj, norm])


def _model(gr: _Graph, inputs, out_name: str, out: str, doc: str) -> onnx.ModelProto:
    gr.nodes.append(helper.make_node("Identity", [out], [out_name]))
    graph = helper.make_graph(gr.nodes, doc, inputs,
                              [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["batch", 512])],
                              initializer=gr.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="kws-export", doc_string=doc)
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _stack_frames(gr: _Graph, x: str, lengths: str, stack: int, dim: int):
    """[B, T, D] -> [B, ceil(T/stack), stack*D] with frames past each row's length zeroed;
    lengths -> ceil(lengths/stack). Mirrors kws.train.encoders.stack_frames."""
    i64 = lambda base, v: gr.const(base, np.array(v, dtype=np.int64))  # noqa: E731
    shape = gr.op1("Shape", [x])
    t_len = gr.op1("Gather", [shape, i64("one_i", 1)], axis=0)
    steps = gr.op1("Range", [i64("s0", 0), t_len, i64("s1", 1)])
    steps = gr.op1("Unsqueeze", [steps, i64("sax0", [0])])                       # [1, T]
    lens_col = gr.op1("Unsqueeze", [lengths, i64("sax1", [1])])                  # [B, 1]
    mask = gr.op1("Cast", [gr.op1("Less", [steps, lens_col])], to=TensorProto.FLOAT)
    x = gr.op1("Mul", [x, gr.op1("Unsqueeze", [mask, i64("sax2", [2])])])
    k = i64("stack", stack)
    pad = gr.op1("Mod", [gr.op1("Sub", [k, gr.op1("Mod", [t_len, k])]), k])
    # pads: begins (B, T, D) then ends (B, T, D): only the end of T grows
    pads = gr.op1("Concat", [i64("p0", [0, 0, 0, 0]), gr.op1("Unsqueeze", [pad, i64("pax", [0])]),
                             i64("p1", [0])], axis=0)
    x = gr.op1("Pad", [x, pads])
    x = gr.op1("Reshape", [x, i64("stack_shape", [0, -1, stack * dim])])
    lengths = gr.op1("Div", [gr.op1("Add", [lengths, i64("stack_m1", stack - 1)]), k])
    return x, lengths


def audio_encoder_onnx(sd: Dict[str, np.ndarray], layers: int, hidden: int, stack: int = 1,
                       input_name: str = "mel") -> onnx.ModelProto:
    """``input_name``: "mel" for log-mel encoders, "frames" for encoders on backbone vectors."""
    gr = _Graph()
    n_mels = sd["audio.feat_mean"].shape[0]
    inputs = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", "frames", n_mels]),
              helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"])]
    x = gr.op1("Div", [gr.op1("Sub", [input_name, gr.const("feat_mean", sd["audio.feat_mean"].astype(np.float32))]),
                       gr.const("feat_std", sd["audio.feat_std"].astype(np.float32))])
    lengths = "lengths"
    if stack > 1:
        x, lengths = _stack_frames(gr, x, lengths, stack, n_mels)
    out = _encoder_body(gr, x, lengths, sd, "audio", layers, hidden)
    doc = ("kws audio encoder: log-mel -> 512-d unit vector" if input_name == "mel" else
           "kws audio encoder head: speech-embedding vectors -> 512-d unit vector")
    return _model(gr, inputs, "embedding", out, doc)


def text_encoder_onnx(sd: Dict[str, np.ndarray], layers: int, hidden: int) -> onnx.ModelProto:
    gr = _Graph()
    inputs = [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "tokens"]),
              helper.make_tensor_value_info("lengths", TensorProto.INT64, ["batch"])]
    x = gr.op1("Gather", [gr.const("phone_embed", sd["text.embed.weight"].astype(np.float32)), "ids"], axis=0)
    out = _encoder_body(gr, x, "lengths", sd, "text", layers, hidden)
    return _model(gr, inputs, "embedding", out, "kws text encoder: phoneme ids -> 512-d unit vector")


def state_dict_numpy(model_state) -> Dict[str, np.ndarray]:
    return {k: v.detach().cpu().float().numpy() for k, v in model_state.items()}
