"""The speech-embedding front end, taken from the openWakeWord wheel and made streamable.

    pip download --no-deps openwakeword==0.5.1            # the wheel (Apache-2.0), 16.7 MB
    python -m export.backbone openwakeword-0.5.1-py3-none-any.whl --out DIR
    python -m export.backbone --step DIR                  # only backbone_step.onnx, from DIR/backbone.onnx

Reads ``melspectrogram.onnx`` and ``embedding_model.onnx`` from the wheel (Google's
speech_embedding network, converted to ONNX by openWakeWord; both Apache-2.0) and writes:

- ``backbone.onnx``: the embedding network with its fixed 76-frame input reshape replaced, so it
  takes mel ``[B, T, 32]`` of any length ``T >= 76`` and returns ``[B, 1 + (T-76)//8, 96]``; every
  convolution, weight and activation is the original's, untouched;
- ``backbone_step.onnx``: the same network as a step graph for streaming (:func:`step_network`):
  it takes only the new mel frames and, for every convolution whose kernel spans time, the last
  rows of that convolution's input from the step before (its state), and returns the new vectors
  and the new states; the weights are backbone.onnx's;
- ``backbone_mel.npz``: the analysis window (512) and mel filterbank (257 x 32) read from the
  mel graph's weights, for the numpy front end in ``kws.model.backbone``;
- ``NOTICE.backbone``: where they come from and under which licence.

The checks in ``check()`` run the original graphs (76-frame windows one by one) beside the
rewritten one and the numpy mel, and the step graph (``check_step()``) beside backbone.onnx, and
report the largest differences. ``--step DIR`` writes only the step graph next to an existing
backbone.onnx (no wheel needed) and checks it the same way.
"""
from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

from kws.model.backbone import STEP_FILE

WHEEL = "openwakeword-0.5.1-py3-none-any.whl"
MEL_MEMBER = "openwakeword/resources/models/melspectrogram.onnx"
NET_MEMBER = "openwakeword/resources/models/embedding_model.onnx"
NOTICE = """The speech-embedding front end of this model (backbone.onnx, backbone_step.onnx,
backbone_mel.npz) is derived from Google's speech_embedding network
(https://tfhub.dev/google/speech_embedding/1; Lin et al., "Training keyword spotters with limited
and synthesized speech data", ICASSP 2020, arXiv:2002.01322), licensed under the Apache License
2.0, as converted to ONNX and distributed in the openwakeword 0.5.1 wheel by David Scripka
(https://github.com/dscripka/openWakeWord, Apache License 2.0; files
openwakeword/resources/models/melspectrogram.onnx and embedding_model.onnx).
Changes: the network's input reshape was replaced so that it runs over mel sequences of any
length (the convolutions and weights are unchanged); backbone_step.onnx is the same network
rewritten to compute only the new time steps from the rows it kept of the step before (the
convolutions and weights are unchanged); the mel analysis window and filterbank were read out of
melspectrogram.onnx into backbone_mel.npz. A copy of the Apache License 2.0 is at
https://www.apache.org/licenses/LICENSE-2.0.
"""


def read_wheel(wheel: Path) -> Tuple[bytes, bytes]:
    with zipfile.ZipFile(wheel) as z:
        return z.read(MEL_MEMBER), z.read(NET_MEMBER)


def mel_constants(mel_onnx: bytes) -> Dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    m = onnx.load_model_from_string(mel_onnx)
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    real = init["0.stft.conv_real.weight"][:, 0, :]          # (257, 512): window * cos
    window = real[0].astype(np.float32)                      # bin 0: cos = 1
    melW = init["1.melW"].astype(np.float32)                 # (257, 32)
    n = np.arange(real.shape[1])
    k = 7
    if np.abs(real[k] - window * np.cos(2 * np.pi * k * n / real.shape[1])).max() > 1e-5:
        raise SystemExit("melspectrogram.onnx: STFT weights are not window x cosine")
    return {"window": window, "melW": melW}


def streamable_network(net_onnx: bytes):
    """The embedding network taking mel [B, T, 32] and returning [B, T', 96]."""
    import onnx
    from onnx import TensorProto, helper

    m = onnx.load_model_from_string(net_onnx)
    g = m.graph
    first, last = g.node[0], g.node[-1]
    if first.op_type != "Reshape" or last.op_type != "Reshape":
        raise SystemExit("embedding_model.onnx: unexpected graph (input/output reshapes not found)")
    conv_in, conv_out = first.output[0], last.input[0]
    nodes = list(g.node)[1:-1]
    axis1 = helper.make_tensor("kws_axis1", TensorProto.INT64, [1], [1])
    axis3 = helper.make_tensor("kws_axis3", TensorProto.INT64, [1], [3])
    nodes.insert(0, helper.make_node("Unsqueeze", ["mel", "kws_axis1"], [conv_in]))      # [B,1,T,32]
    sq = "kws_squeezed"
    nodes.append(helper.make_node("Squeeze", [conv_out, "kws_axis3"], [sq]))            # [B,96,T']
    nodes.append(helper.make_node("Transpose", [sq], ["vectors"], perm=[0, 2, 1]))      # [B,T',96]
    inits = [i for i in g.initializer if i.name not in (first.input[1], last.input[1])] + [axis1, axis3]
    graph = helper.make_graph(
        nodes, "speech_embedding (streamable)",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", "frames", 32])],
        [helper.make_tensor_value_info("vectors", TensorProto.FLOAT, ["batch", "steps", 96])],
        initializer=inits)
    out = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                            producer_name="kws-export",
                            doc_string="Google speech_embedding (Apache-2.0) via openwakeword 0.5.1; "
                                       "input reshape replaced to run over any number of mel frames")
    out.ir_version = m.ir_version
    onnx.checker.check_model(out)
    return out


def step_network(net):
    """The streamable network (:func:`streamable_network`) as a step graph for streaming.

    Along time (axis 2 of the convolutions' ``[B, C, T, W]``) the network has no padding, time
    kernels of 3 and 1 and three max-poolings of kernel and stride 2: vector ``j`` is the network
    over mel frames ``[8j, 8j + 76)``. The step graph takes ``mel [B, 8n, 32]``, the next ``8n``
    frames, and one state per convolution whose time kernel ``k`` is over 1, ``state{i} [B, C, k-1,
    W]``: the last ``k-1`` rows of that convolution's input from the step before. Each convolution
    runs over its state and the new rows; ``state{i}_next`` are the last ``k-1`` rows of that, and
    ``vectors [B, n, 96]`` the ``n`` new vectors. Every step advances 8 frames, so the poolings pair
    the same rows as the network over the whole recording does, and the vectors are the same.

    How a stream starts (the graph's metadata ``kws_lead_frames`` and ``kws_skip_vectors``): zero
    states, then ``lead`` frames of zeros before the first mel frame, then the frames; the first
    ``skip`` vectors, which see the zeros, are dropped, and the next is vector 0. Vector ``j`` ends
    at frame ``8j + 75``, so every step must end at a frame of that form: 4 frames of zeros make
    the first step end at frame 3 and each later one 8 frames on; the 9 steps before the one that
    ends at frame 75 are the skipped ones. The rows the states keep of the zeros lie before the
    first row of any layer that vector 0 reads, so it and every later vector are exact.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from kws.model.backbone import CONTEXT, N_MELS, STRIDE

    g = net.graph
    init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    probe = onnx.ModelProto()
    probe.CopyFrom(net)
    d = probe.graph.input[0].type.tensor_type.shape.dim
    d[0].dim_value, d[1].dim_value = 1, CONTEXT
    probe = onnx.shape_inference.infer_shapes(probe, strict_mode=True)
    shapes = {v.name: [x.dim_value for x in v.type.tensor_type.shape.dim] for v in probe.graph.value_info}
    nodes, state_in, state_out, inits, stride = [], [], [], list(g.initializer), 1
    ends = helper.make_tensor("kws_step_end", TensorProto.INT64, [1], [np.iinfo(np.int64).max])
    axis2 = helper.make_tensor("kws_step_axis2", TensorProto.INT64, [1], [2])
    inits += [ends, axis2]
    starts = {}
    for n in g.node:
        at = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type == "MaxPool":
            k, s = at["kernel_shape"][0], at.get("strides", [1, 1])[0]
            if k != s or any(at.get("pads", [0] * 4)[i] for i in (0, 2)):
                raise SystemExit(f"backbone: pooling {n.name} over time of kernel {k}, stride {s}: not steppable")
            stride *= s
        elif n.op_type == "Conv":
            k = init[n.input[1]].shape[2]
            if (any(at.get("pads", [0] * 4)[i] for i in (0, 2)) or at.get("strides", [1, 1])[0] != 1
                    or at.get("dilations", [1, 1])[0] != 1):
                raise SystemExit(f"backbone: convolution {n.name} pads, strides or dilates time: not steppable")
            if k > 1:
                i = len(state_in)
                c, w = shapes[n.input[0]][1], shapes[n.input[0]][3]
                if k not in starts:
                    starts[k] = f"kws_step_start{k}"
                    inits.append(helper.make_tensor(starts[k], TensorProto.INT64, [1], [1 - k]))
                cat = f"kws_step_cat{i}"
                nodes.append(helper.make_node("Concat", [f"state{i}", n.input[0]], [cat], axis=2))
                nodes.append(helper.make_node("Slice", [cat, starts[k], "kws_step_end", "kws_step_axis2"],
                                              [f"state{i}_next"]))
                state_in.append(helper.make_tensor_value_info(f"state{i}", TensorProto.FLOAT, ["batch", c, k - 1, w]))
                state_out.append(helper.make_tensor_value_info(f"state{i}_next", TensorProto.FLOAT,
                                                               ["batch", c, k - 1, w]))
                conv = onnx.NodeProto()
                conv.CopyFrom(n)
                conv.input[0] = cat
                nodes.append(conv)
                continue
        nodes.append(n)
    if stride != STRIDE:
        raise SystemExit(f"backbone: time stride {stride}, not {STRIDE}")
    lead = (STRIDE - (CONTEXT - STRIDE) % STRIDE) % STRIDE
    skip = (CONTEXT - STRIDE + lead) // STRIDE
    graph = helper.make_graph(
        nodes, "speech_embedding (step)",
        [helper.make_tensor_value_info("mel", TensorProto.FLOAT, ["batch", "frames", N_MELS])] + state_in,
        [helper.make_tensor_value_info("vectors", TensorProto.FLOAT, ["batch", "steps", 96])] + state_out,
        initializer=inits)
    out = helper.make_model(graph, opset_imports=list(net.opset_import), producer_name="kws-export",
                            doc_string="Google speech_embedding (Apache-2.0) via openwakeword 0.5.1; backbone.onnx "
                                       "as a step graph: new mel frames and kept rows in, new vectors out")
    out.ir_version = net.ir_version
    helper.set_model_props(out, {"kws_lead_frames": str(lead), "kws_skip_vectors": str(skip),
                                 "kws_states": str(len(state_in))})
    onnx.checker.check_model(out)
    return out


def write_step(out: Path) -> dict:
    """``out/backbone_step.onnx`` from ``out/backbone.onnx``, checked against it."""
    import onnx

    onnx.save(step_network(onnx.load(str(out / "backbone.onnx"))), str(out / STEP_FILE))
    (out / "NOTICE.backbone").write_text(NOTICE)
    return check_step(out)


def write(wheel: Path, out: Path) -> dict:
    import onnx

    mel_onnx, net_onnx = read_wheel(wheel)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "backbone_mel.npz", **mel_constants(mel_onnx))
    onnx.save(streamable_network(net_onnx), str(out / "backbone.onnx"))
    write_step(out)
    return check(wheel, out)


def check_step(out: Path, seconds: float = 6.0, seed: int = 0) -> dict:
    """Largest difference between ``backbone_step.onnx`` stepped over a recording's mel (steps of
    1 to 9 vectors, started as its metadata says) and ``backbone.onnx`` over the whole of it.

    Raises SystemExit when they differ by more than 1e-4 or give other counts.
    """
    import onnxruntime as ort

    from kws.model.backbone import STRIDE, Backbone, as_files

    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    audio = (0.3 * np.sin(2 * np.pi * (200 + 100 * np.sin(2 * np.pi * 2 * t)) * t)
             * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2) + 0.05 * rng.normal(size=n)).astype(np.float32)
    bb = Backbone(as_files(out))
    mel = bb.mel(audio)
    full = bb.vectors_from_mel(mel)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(out / STEP_FILE), so, providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    lead, skip = int(meta["kws_lead_frames"]), int(meta["kws_skip_vectors"])
    states = {i.name: np.zeros([1] + list(i.shape[1:]), np.float32) for i in sess.get_inputs()[1:]}
    names = ["vectors"] + [f"{s}_next" for s in states]
    frames = np.concatenate([np.zeros((lead, mel.shape[1]), np.float32), mel])
    got, pos = [], 0
    while pos + STRIDE <= frames.shape[0]:
        k = min(int(rng.integers(1, 10)), (frames.shape[0] - pos) // STRIDE)
        res = sess.run(names, {"mel": frames[None, pos: pos + STRIDE * k], **states})
        got.append(res[0][0])
        states = dict(zip(states, res[1:]))
        pos += STRIDE * k
    step = np.concatenate(got)[skip:]
    if step.shape != full.shape:
        raise SystemExit(f"{out / STEP_FILE}: {step.shape[0]} vectors stepped, {full.shape[0]} from backbone.onnx")
    diff = float(np.abs(step - full).max())
    if diff > 1e-4:
        raise SystemExit(f"{out / STEP_FILE}: stepped vectors differ from backbone.onnx's by up to {diff:.2e}")
    return {"step_max_abs_diff": diff, "step_ref_max_abs": float(np.abs(full).max()), "step_vectors": int(full.shape[0]),
            "lead_frames": lead, "skip_vectors": skip, "states": len(states)}


def check(wheel: Path, out: Path, seconds: float = 3.0, seed: int = 0) -> dict:
    """Largest differences between the original graphs and the front end written here."""
    import onnxruntime as ort

    from kws.model.backbone import CONTEXT, STRIDE, Backbone, as_files

    mel_onnx, net_onnx = read_wheel(wheel)
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    audio = (0.3 * np.sin(2 * np.pi * (200 + 100 * np.sin(2 * np.pi * 2 * t)) * t)
             + 0.05 * rng.normal(size=n)).astype(np.float32)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    mel_sess = ort.InferenceSession(mel_onnx, so, providers=["CPUExecutionProvider"])
    net_sess = ort.InferenceSession(net_onnx, so, providers=["CPUExecutionProvider"])
    ref_mel = np.squeeze(mel_sess.run(None, {"input": audio[None] * 32768.0})[0]) / 10.0 + 2.0
    bb = Backbone(as_files(out))
    mel = bb.mel(audio)
    k = 1 + (mel.shape[0] - CONTEXT) // STRIDE
    wins = np.stack([ref_mel[STRIDE * j: STRIDE * j + CONTEXT] for j in range(k)])[..., None]
    ref_vec = net_sess.run(None, {"input_1": wins.astype(np.float32)})[0].reshape(k, -1)
    vec = bb.vectors_from_mel(ref_mel.astype(np.float32))
    ours = bb(audio)
    cos = np.sum(ours * ref_vec, 1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref_vec, axis=1))
    return {"mel_max_abs_diff": float(np.abs(mel - ref_mel).max()),
            "network_max_abs_diff": float(np.abs(vec - ref_vec).max()),
            "network_ref_max_abs": float(np.abs(ref_vec).max()),
            "end_to_end_min_cosine": float(cos.min()), "vectors": int(k),
            **(check_step(out) if (out / STEP_FILE).exists() else {})}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.backbone", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheel", type=Path, nargs="?", help=WHEEL)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--step", type=Path, metavar="DIR",
                    help=f"only write DIR/{STEP_FILE} from DIR/backbone.onnx (and NOTICE.backbone), and check it")
    args = ap.parse_args(argv)
    if args.step is not None:
        if not (args.step / "backbone.onnx").is_file():
            raise SystemExit(f"{args.step / 'backbone.onnx'}: not found")
        print(json.dumps(write_step(args.step), indent=2))
        return 0
    if args.wheel is None or args.out is None:
        ap.error("give the wheel and --out DIR, or --step DIR")
    if not args.wheel.is_file():
        raise SystemExit(f"{args.wheel}: not found (pip download --no-deps openwakeword==0.5.1)")
    print(json.dumps(write(args.wheel, args.out), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
