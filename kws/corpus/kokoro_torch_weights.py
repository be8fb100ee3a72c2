"""The weights of kws.corpus.kokoro_torch, read from Kokoro's int8 ONNX file (needs the ``onnx``
package), and :func:`emulate_int8`, the graph's activation rounding imitated for validation.

Named initializers are taken by name; the others through the node that reads them (its name gives
the module): integer convolutions and matrix products (scale from the Mul that rescales their
output, zero point from the node), the LSTMs of ``DynamicQuantizeLSTM`` (``[direction, input,
4 * hidden]``, gates i, o, f, c -> torch's i, f, g, o), the quantized embeddings, the float
ConvTranspose / Conv / MatMul weights.
"""
from __future__ import annotations

import re
from typing import Dict, List, Tuple

import numpy as np
import torch


def _module_of(node_name: str) -> str:
    """The torch module path of the ONNX node ``node_name`` (its name less the op, ``_k`` copies
    of the shared ALBERT layer folded, the predictor's F0/N/shared blocks under ``predictor``)."""
    parts = [p for p in node_name.split("/") if p][:-1]
    if parts[:2] == ["decoder", "decoder"]:
        parts = ["decoder"] + parts[2:]
    elif parts[:1] == ["encoder"]:
        parts = parts[1:]
        if parts and re.match(r"^(F0|N)\.\d+$|^(F0_proj|N_proj|shared)$", parts[0]):
            parts = ["predictor"] + parts
    parts = [re.sub(r"_\d+$", "", p) for p in parts]
    out = []
    for i, p in enumerate(parts):
        if i + 1 < len(parts) and parts[i + 1].startswith(p + "."):
            continue                                 # cnn.0/cnn.0.0 -> cnn.0.0
        out.append(p)
    return ".".join(out)


def _param_of(init_name: str) -> str:
    """A named initializer's parameter (``encoder.predictor.X`` -> ``predictor.X``,
    ``decoder.decoder.X`` -> ``decoder.X``)."""
    if init_name.startswith("decoder.decoder."):
        return "decoder." + init_name[len("decoder.decoder."):]
    if init_name.startswith("encoder."):
        return init_name[len("encoder."):]
    return init_name


_WEIGHT_OPS = {"ConvInteger": 1, "MatMulInteger": 1, "ConvTranspose": 1, "Conv": 1, "MatMul": 1}


def onnx_weights(path=None) -> Tuple[Dict[str, np.ndarray], Dict[str, str], List[str]]:
    """The file's weights as float32 arrays under torch parameter names, where each came from
    (parameter -> initializer), and the initializers not used (constants of the graph's own
    arithmetic: shapes, axes, the LayerNorm ones and zeros, 1/alpha, ...)."""
    import onnx
    from onnx import numpy_helper

    if path is None:
        from kws.enroll.kokoro import model_path

        path = model_path()
    model = onnx.load(str(path))
    g = model.graph
    init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    consumers: Dict[str, list] = {}
    for n in g.node:
        for x in n.input:
            consumers.setdefault(x, []).append(n)
    out: Dict[str, np.ndarray] = {}
    src: Dict[str, str] = {}
    used = set()
    int8_inputs: Dict[str, float] = {}

    def put(name, arr, origin):
        if name in out:
            raise ValueError(f"{name}: two sources ({src[name]}, {origin})")
        out[name] = np.ascontiguousarray(arr, dtype=np.float32)
        src[name] = origin

    def deq(q, zp, scale, axis=None):
        q = q.astype(np.float32)
        zp = np.asarray(zp, np.float32)
        scale = np.asarray(scale, np.float32)
        if axis is not None and zp.ndim:
            shape = [1] * q.ndim
            shape[axis] = -1
            zp, scale = zp.reshape(shape), scale.reshape(shape)
        return (q - zp) * scale

    def weight_scale(node) -> str:
        """The initializer holding the weight scale of an integer conv / matmul node: the Mul
        (activation scale x weight scale) whose product rescales this node's output."""
        x_scale = producer[node.input[0]].output[1]
        t = node.output[0]
        for _ in range(4):
            nxt = consumers.get(t, [])
            if not nxt:
                break
            n = nxt[0]
            if n.op_type == "Mul":
                other = [i for i in n.input if i != t][0]
                p = producer.get(other)
                if p is not None and p.op_type == "Mul" and x_scale in p.input:
                    return [i for i in p.input if i != x_scale][0]
                raise ValueError(f"{node.name}: no weight scale found")
            t = n.output[0]
        raise ValueError(f"{node.name}: no weight scale found")

    for n in g.node:
        op = n.op_type
        if op in _WEIGHT_OPS and len(n.input) > 1 and n.input[1] in init:
            wname = n.input[1]
            if wname.endswith("inverse_basis"):
                continue                                        # the iSTFT basis, taken by name below
            mod = _module_of(n.name)
            if op in ("ConvInteger", "MatMulInteger"):
                sname = weight_scale(n)
                zname = n.input[3]
                q = init[wname]
                if op == "ConvInteger":
                    w = deq(q, init[zname], init[sname], axis=0)
                    int8_inputs[mod] = float(np.asarray(init[sname]).reshape(-1)[0])
                else:
                    w = deq(q, init[zname], init[sname], axis=1).T
                    int8_inputs[mod] = 0.0
                used.update([wname, sname, zname])
            elif op == "MatMul":
                w = init[wname].T
                used.add(wname)
            else:
                w = init[wname]
                used.add(wname)
                if len(n.input) > 2 and n.input[2] in init:
                    put(mod + ".bias", init[n.input[2]], n.input[2])
                    used.add(n.input[2])
            if mod + ".weight" in out and src[mod + ".weight"] == wname:
                continue                                        # the shared ALBERT layer again
            if mod + ".weight" in out:
                raise ValueError(f"{mod}: two weights ({src[mod + '.weight']}, {wname})")
            put(mod + ".weight", w, wname)
        elif op == "DequantizeLinear" and n.input[0] not in init:
            gather = producer[n.input[0]]                       # the quantized embedding Gather
            q = gather.input[0]
            put(_param_of(q[: -len("_quantized")]), deq(init[q], init[n.input[2]], init[n.input[1]]), q)
            used.update([q, n.input[1], n.input[2]])
        elif op == "DynamicQuantizeLSTM":
            mod = _module_of(n.name)
            W, R, Bias = init[n.input[1]], init[n.input[2]], init[n.input[3]]
            ws, wz, rs, rz = (init[n.input[k]] for k in (8, 9, 10, 11))
            used.update(n.input[k] for k in (1, 2, 3, 8, 9, 10, 11))
            H = R.shape[1]
            order = np.concatenate([np.arange(H) + H * k for k in (0, 2, 3, 1)])   # iofc -> ifgo
            for d, suffix in enumerate(("", "_reverse")):
                Wd = ((W[d].astype(np.float32) - wz[d]) * ws[d]).T[order]
                Rd = ((R[d].astype(np.float32) - rz[d]) * rs[d]).T[order]
                put(f"{mod}.weight_ih_l0{suffix}", Wd, n.input[1])
                put(f"{mod}.weight_hh_l0{suffix}", Rd, n.input[2])
                put(f"{mod}.bias_ih_l0{suffix}", Bias[d, : 4 * H][order], n.input[3])
                put(f"{mod}.bias_hh_l0{suffix}", Bias[d, 4 * H:][order], n.input[3])
    # named parameters: biases, norms, alphas, the AdaIN fc weights (MatMulInteger, already taken
    # through their nodes), the iSTFT basis
    for name, arr in init.items():
        if name in used:
            continue
        if not (name.startswith("encoder.") or name.startswith("decoder.")):
            continue
        if name.endswith(("_scale", "_zero_point", "_quantized", "_reshape_shape")):
            continue
        p = _param_of(name)
        p = p.replace(".cnn.0.1.gamma", ".cnn.0.1.weight").replace(".cnn.0.1.beta", ".cnn.0.1.bias")
        p = re.sub(r"\.cnn\.(\d)\.1\.gamma$", r".cnn.\1.1.weight", p)
        p = re.sub(r"\.cnn\.(\d)\.1\.beta$", r".cnn.\1.1.bias", p)
        p = p.replace("decoder.generator.stft.istft.stft.", "decoder.generator.")
        put(p, arr, name)
        used.add(name)
    # the graph's STFT window
    for n in g.node:
        if n.op_type == "STFT":
            put("decoder.generator.stft_window", init[n.input[2]], n.input[2])
            used.add(n.input[2])
    unused = [k for k in init if k not in used]
    onnx_weights.int8_inputs = int8_inputs
    return out, src, unused


def _dq(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """ONNX DynamicQuantizeLinear and back: x rounded to the uint8 grid of its range (with 0), and
    the scale."""
    lo = torch.clamp(x.min(), max=0.0)
    hi = torch.clamp(x.max(), min=0.0)
    scale = (hi - lo) / 255.0
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    zp = torch.clamp(torch.round(-lo / scale), 0, 255)
    q = torch.clamp(torch.round(x / scale) + zp, 0, 255)
    return (q - zp) * scale, scale


def emulate_int8(model, on: bool = True) -> None:
    """For validation: make ``model`` quantise the inputs of the layers the ONNX graph runs in
    integers (ConvInteger, MatMulInteger) as the graph does (uint8, per tensor, from each input's
    range), and round the convolution biases down to the grid of input scale x weight scale as the
    graph does. The LSTMs (DynamicQuantizeLSTM) stay float. Batch size 1 only."""
    for h in getattr(model, "_int8_hooks", []):
        h.remove()
    model._int8_hooks = []
    if not on:
        return
    mods = dict(model.named_modules())
    for name, wscale in model.int8_inputs.items():
        mod = mods[name]
        state = {}

        def pre(m, args, state=state):
            x, scale = _dq(args[0])
            state["scale"] = scale
            return (x,) + tuple(args[1:])

        def post(m, args, out, state=state, wscale=wscale):
            if m.bias is None:
                return out
            step = state["scale"] * wscale
            bq = torch.floor(m.bias / step) * step
            return out + (bq - m.bias)[None, :, None]

        model._int8_hooks.append(mod.register_forward_pre_hook(pre))
        if wscale > 0:
            model._int8_hooks.append(mod.register_forward_hook(post))
