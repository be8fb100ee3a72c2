"""The speech-embedding front end, taken from the openWakeWord wheel and made streamable.

    pip download --no-deps openwakeword==0.5.1            # the wheel (Apache-2.0), 16.7 MB
    python -m export.backbone openwakeword-0.5.1-py3-none-any.whl --out DIR

Reads ``melspectrogram.onnx`` and ``embedding_model.onnx`` from the wheel (Google's
speech_embedding network, converted to ONNX by openWakeWord; both Apache-2.0) and writes:

- ``backbone.onnx``: the embedding network with its fixed 76-frame input reshape replaced, so it
  takes mel ``[B, T, 32]`` of any length ``T >= 76`` and returns ``[B, 1 + (T-76)//8, 96]``; every
  convolution, weight and activation is the original's, untouched;
- ``backbone_mel.npz``: the analysis window (512) and mel filterbank (257 x 32) read from the
  mel graph's weights, for the numpy front end in ``kws.model.backbone``;
- ``NOTICE.backbone``: where they come from and under which licence.

The checks in ``check()`` run the original graphs (76-frame windows one by one) beside the
rewritten one and the numpy mel, and report the largest differences.
"""
from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

WHEEL = "openwakeword-0.5.1-py3-none-any.whl"
MEL_MEMBER = "openwakeword/resources/models/melspectrogram.onnx"
NET_MEMBER = "openwakeword/resources/models/embedding_model.onnx"
NOTICE = """The speech-embedding front end of this model (backbone.onnx, backbone_mel.npz) is derived from
Google's speech_embedding network (https://tfhub.dev/google/speech_embedding/1; Lin et al.,
"Training keyword spotters with limited and synthesized speech data", ICASSP 2020,
arXiv:2002.01322), licensed under the Apache License 2.0, as converted to ONNX and distributed in
the openwakeword 0.5.1 wheel by David Scripka (https://github.com/dscripka/openWakeWord, Apache
License 2.0; files openwakeword/resources/models/melspectrogram.onnx and embedding_model.onnx).
Changes: the network's input reshape was replaced so that it runs over mel sequences of any
length (the convolutions and weights are unchanged); the mel analysis window and filterbank were
read out of melspectrogram.onnx into backbone_mel.npz. A copy of the Apache License 2.0 is at
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


def write(wheel: Path, out: Path) -> dict:
    import onnx

    mel_onnx, net_onnx = read_wheel(wheel)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "backbone_mel.npz", **mel_constants(mel_onnx))
    onnx.save(streamable_network(net_onnx), str(out / "backbone.onnx"))
    (out / "NOTICE.backbone").write_text(NOTICE)
    return check(wheel, out)


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
            "end_to_end_min_cosine": float(cos.min()), "vectors": int(k)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.backbone", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("wheel", type=Path, help=WHEEL)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if not args.wheel.is_file():
        raise SystemExit(f"{args.wheel}: not found (pip download --no-deps openwakeword==0.5.1)")
    print(json.dumps(write(args.wheel, args.out), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
