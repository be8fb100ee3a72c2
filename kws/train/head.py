"""Training the head: a small network on the frozen backbone's vectors, trained at the matcher's level.

    python -m kws.train.head train configs/head-scale.json [key=value ...]
    python -m kws.train.head export runs/head/c4h256/best.pt --out runs/head/c4h256/export   # then: python -m export.model --head runs/head/c4h256/export

The head (:class:`HeadNet`) maps raw backbone vectors (96-d, one every 80 ms; kws.model.backbone) to the
vectors templates are matched in (kws.model.head): output ``j`` reads inputs ``j .. j + C - 1`` (a window
of ``C`` vectors ending at the current one), through a linear layer, ``layers`` ReLU layers of
``hidden`` units and a linear output of ``dim``, plus a linear skip from the current vector (set to
the identity at the start, so training starts from the raw templates).

**Loss at the matcher's level.** A template is the head's vectors of a clean Kokoro rendering of a
word (silence-trimmed, padded with kws.spot.templates.PAD_S of silence, TRIM vectors cut off each end;
the shipped head was trained with 0.5 s of padding); a query is
the head's vectors of a whole *item* as the stream gives it: a word in context (another rendering
of it between silence, another word or real speech; the word inside a rendered sentence; a real
word of a speechocean762 speaker inside their sentence), augmented on the GPU (rooms, noise,
music, babble at -5-20 dB, reverberation with RT60 up to 2.5 s, telephone band, gain). The score of
template ``T`` (``L`` vectors) on a query is what :class:`kws.spot.templates.Matcher` computes: the best,
over the query's vectors ``e``, of the mean cosine ``(1/L) sum_j cos(T[j], x[e - L + 1 + j])``; a
word's score is the best of its templates. Then:

- **DWD** (audio-audio, weight 1.0): for each query, softmax cross-entropy over the batch's words
  plus a null class, logits ``scale x score`` and ``scale x theta`` (``scale`` and the threshold
  ``theta`` learnt); and for each word, cross-entropy over all the batch's queries with its own
  as the positives (the keyword's view: one threshold per keyword). Queries that hold no batch word are trained to the null class: a prefix or a
  suffix of a word (partial words), real speech without any batch word, babble / music / noise
  alone; everything reverberant or noisy as the positives are;
- **CLAP** (audio-text, weight 0.1): the head's vectors over a template, or over the span of a
  query its best template aligned with, mean-pooled and projected, against a small phoneme
  encoder of the word (kws.train.encoders.TextEncoder), symmetric InfoNCE (kws.train.losses).

Several heads (``variants``) train on the same batches at once, each with its own optimiser: the
backbone, the augmentation and the batches are shared; every ``eval_minutes`` each is measured on
the validation set (tuning half of ../shared/data, kws.train.head_eval) and its best weights kept
(with ``ema`` > 0 in a variant: the moving average of its weights is what is measured and kept).
Word renderings by other synthesisers (kws.corpus.other_voices) are queries only, never templates.

Modules: kws.train.net (the network and the matcher's score), config, data, batches, augment,
losses, validation; this one holds the loop, the export and the command line.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch

from kws.model.backbone import DIM, VEC_HOP, VEC_SPAN, as_files
from kws.train.augment import Augment
from kws.train.batches import Batcher, assemble
from kws.train.config import TrainConfig, overrides
from kws.train.data import SR, load_data, stage_speech, template_vectors
from kws.train.losses import LossParams, batch_loss, template_scores
from kws.train.net import HeadConfig, HeadNet, apply_head
from kws.train.validation import compact_val, load_val, validate

RECIPE = "head-template-dwd-clap-1"


class Prefetcher:
    """Batcher.prepare in a background thread, a few batches ahead (the host's share of a step
    overlaps the device's)."""

    def __init__(self, batcher: Batcher, depth: int = 4):
        import queue
        import threading

        self.batcher = batcher
        self._q: "queue.Queue" = queue.Queue(maxsize=depth)
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop:
            try:
                item = self.batcher.prepare()
            except Exception as exc:          # surfaces in the training loop
                item = exc
            self._q.put(item)

    def next(self) -> dict:
        item = self._q.get()
        if isinstance(item, Exception):
            raise item
        return item

    def close(self):
        self._stop = True
        try:
            while True:
                self._q.get_nowait()
        except Exception:
            pass


def vector_stats(tpl_raw: torch.Tensor, tpl_n: torch.Tensor) -> Tuple[np.ndarray, np.ndarray, float]:
    m = (torch.arange(tpl_raw.shape[1], device=tpl_raw.device)[None, :] < tpl_n[:, None])
    v = tpl_raw[m]
    return (v.mean(0).cpu().numpy(), v.std(0).clamp(min=1e-3).cpu().numpy(),
            float(v.norm(dim=1).mean()))


def lr_factor(frac: float, warmup: float) -> float:
    if frac < warmup:
        return frac / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (frac - warmup) / max(1e-9, 1 - warmup))))


@torch.no_grad()
def ema_update(avg: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """``avg <- decay x avg + (1 - decay) x model``, tensor by tensor (integer buffers copied)."""
    for a, t in zip(avg.state_dict().values(), model.state_dict().values()):
        a.lerp_(t, 1.0 - decay) if a.is_floating_point() else a.copy_(t)


def train(cfg: TrainConfig, device=None, log=print) -> dict:
    from kws.enroll.phonemes import TOKENS
    from kws.train.backbone import TorchBackbone

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if cfg.tf32 and device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    t0 = time.time()
    data, stats = load_data(cfg, device)
    backbone = TorchBackbone(as_files(cfg.backbone)).to(device)
    tpl_raw, tpl_n = template_vectors(data, backbone, device)
    stats["template_seconds"] = round(time.time() - t0, 1)
    log(json.dumps({"data": stats}))
    mean, std, scale = vector_stats(tpl_raw, tpl_n)
    rng = np.random.default_rng(cfg.seed)
    g = torch.Generator(device=device)
    g.manual_seed(cfg.seed)
    batcher = Batcher(data, cfg, tpl_n.cpu().numpy(), np.random.default_rng(cfg.seed + 1))
    feed = Prefetcher(batcher)
    aug = Augment(data, cfg, g, rng)
    val = load_val(cfg.val) if cfg.val else None
    heads, params, opts, emas = [], [], [], []
    for v in cfg.variants:
        h = HeadNet(v.head, mean, std, scale).to(device)
        p = LossParams(v.head.dim, v.alpha_clap > 0, len(TOKENS)).to(device)
        if v.init:
            ck = torch.load(v.init, map_location=device, weights_only=False)
            h.load_state_dict({k: t.float() for k, t in ck["state"].items()})
            if ck.get("loss"):          # a head imported from its graph (from-onnx) has none: fresh
                p.load_state_dict(ck["loss"])
        heads.append(h), params.append(p)
        emas.append(copy.deepcopy(h).requires_grad_(False) if v.ema > 0 else None)
        opts.append(torch.optim.AdamW(list(h.parameters()) + list(p.parameters()), lr=v.lr,
                                      weight_decay=cfg.weight_decay))
    teachers = {}                   # a teacher head per checkpoint named by a variant (alpha_kd > 0)
    for v in cfg.variants:
        if v.alpha_kd and v.teacher and v.teacher not in teachers:
            teachers[v.teacher] = load_head(v.teacher).to(device)
        elif v.alpha_kd and not v.teacher:
            raise SystemExit(f"variant {v.name}: alpha_kd needs a teacher checkpoint")
    best = [float("inf")] * len(heads)
    history: List[dict] = []
    if val is not None:
        r = validate(None, val, device)
        log(json.dumps({"step": 0, "variant": "raw", "val": r}))
        history.append({"step": 0, "variant": "raw", "val": r})
    L_item = int(cfg.item_s * SR)
    L_item = VEC_SPAN + max(0, -(-(L_item - VEC_SPAN) // VEC_HOP)) * VEC_HOP
    lmax = cfg.template_max
    Nt = cfg.templates_per_word
    from kws.train.encoders import pad_ids

    start = time.time()
    next_eval = start + cfg.eval_minutes * 60
    step = 0
    waited = 0.0                    # seconds the loop waited for the host's batches
    while True:
        el = (time.time() - start) / 60
        if (cfg.steps and step >= cfg.steps) or (not cfg.steps and el >= cfg.minutes):
            break
        frac = step / cfg.steps if cfg.steps else el / cfg.minutes
        t_wait = time.time()
        prep = feed.next()
        waited += time.time() - t_wait
        with torch.no_grad():
            wav = assemble(data.buffer, prep["segments"], L_item)
            tgt = torch.from_numpy(prep["target"]).to(device)
            wav = aug(wav, tgt)
            q_raw = backbone(wav)
        tsel = torch.from_numpy(prep["templates"].reshape(-1)).to(device)
        t_raw, t_n = tpl_raw[tsel], tpl_n[tsel]
        labels = torch.from_numpy(prep["labels"]).to(device)
        K = len(prep["words"])
        text_ids = pad_ids([data.phone_ids[w] for w in prep["words"]], device)
        logs = {}
        with torch.no_grad():
            taught = {k: template_scores(apply_head(t, t_raw), t_n, lmax) for k, t in teachers.items()}
        for h, p, o, v, ema in zip(heads, params, opts, cfg.variants, emas):
            for grp in o.param_groups:
                grp["lr"] = v.lr * lr_factor(frac, cfg.warmup)
            loss, parts = batch_loss(h, p, t_raw, t_n, q_raw, labels, K, Nt, lmax,
                                     v.alpha_clap, v.alpha_dwd, text_ids, v.trim_end,
                                     taught.get(v.teacher), v.alpha_kd)
            o.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(h.parameters()) + list(p.parameters()), 5.0)
            o.step()
            if ema is not None:             # the moving average: validated and kept instead (Variant.ema)
                ema_update(ema, h, v.ema)
            logs[v.name] = {k: round(x, 4) for k, x in parts.items()}
        step += 1
        if step % 50 == 0 or step == 1:
            log(json.dumps({"step": step, "min": round((time.time() - start) / 60, 2), "items": int(labels.numel()),
                            "waited_min": round(waited / 60, 2), "loss": logs}))
        last = (cfg.steps and step >= cfg.steps) or (not cfg.steps and (time.time() - start) / 60 >= cfg.minutes)
        if time.time() >= next_eval or last:
            next_eval = time.time() + cfg.eval_minutes * 60
            for i, (h, p, v) in enumerate(zip(heads, params, cfg.variants)):
                h = emas[i] if emas[i] is not None else h
                r = (validate(h, val, device, trim_end=v.trim_end, soft_max=v.soft_max) if val is not None
                     else {"score": float("nan")})
                history.append({"step": step, "variant": v.name, "val": r})
                log(json.dumps({"step": step, "variant": v.name, "val": r}))
                d = out / v.name
                d.mkdir(exist_ok=True)
                ck = {"recipe": RECIPE, "head": asdict(v.head), "state": h.state_dict(), "loss": p.state_dict(),
                      "step": step, "val": r, "variant": asdict(v)}
                torch.save(ck, d / "last.pt")
                if cfg.snapshots:       # the head alone in half precision, to choose among later
                    torch.save({**ck, "loss": {}, "state": {k: t.half() if t.numel() > 4096 else t
                                                          for k, t in h.state_dict().items()}},
                               d / f"snap-{step:06d}.pt")
                if val is None or r["score"] < best[i]:
                    best[i] = r["score"]
                    torch.save(ck, d / "best.pt")
    feed.close()
    summary = {"steps": step, "minutes": round((time.time() - start) / 60, 2),
               "setup_minutes": round((start - t0) / 60, 2), "best": dict(zip([v.name for v in cfg.variants], best)),
               "data": stats}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "history.json").write_text(json.dumps(history))
    log(json.dumps({"done": summary}))
    return summary


def load_head(path: str) -> HeadNet:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    h = HeadNet(HeadConfig.from_dict(ck["head"]))
    h.load_state_dict(ck["state"])
    h.eval()
    return h


def checkpoint_from_onnx(path: Path) -> dict:
    """A training checkpoint (head weights only, no loss parameters) from a head's fp32 graph as
    :func:`export` writes it, e.g. a model folder's ``head.onnx``: to go on training a head whose
    checkpoint is gone (``variants.N.init``). The graph's weights are recognised by their shapes
    and order (window layer, hidden layers, output, skip); the torch twin is checked against the
    graph on random vectors."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    m = onnx.load(str(path))
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    int8 = any(n.op_type == "DequantizeLinear" for n in m.graph.node)
    for n in m.graph.node:      # static int8 (QDQ): each quantised weight read back in float
        if n.op_type == "DequantizeLinear" and n.input[0] in init:
            q, scale = init[n.input[0]].astype(np.float32), init[n.input[1]].astype(np.float32)
            zero = init[n.input[2]].astype(np.float32) if len(n.input) > 2 and n.input[2] else np.zeros_like(scale)
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            if scale.ndim:      # per channel along `axis`
                shape = [1] * q.ndim
                shape[axis] = -1
                scale, zero = scale.reshape(shape), zero.reshape(shape)
            init[n.output[0]] = (q - zero) * scale
            if n.input[0].endswith("_quantized"):
                init[n.input[0][:-len("_quantized")]] = init[n.output[0]]
    mm = [n for n in m.graph.node if n.op_type == "MatMul" and n.input[1] in init]
    mats = [init[n.input[1]] for n in mm]
    if len(mats) < 2 or any(k not in init for k in ("mean", "inv_std", "inv_scale")):
        raise ValueError(f"{path}: not a head graph of kws.train.head export")
    skip, out_w, hidden = mats[-1], mats[-2], mats[:-2]
    # torch's export names each product after its layer; quantisation may reorder the nodes
    named = [(re.search(r"/(skip|out|hidden\.\d+)/MatMul", n.output[0]), n) for n in mm]
    layer = {g.group(1): init[n.input[1]] for g, n in named if g}
    if len(layer) == len(mats) and "skip" in layer and "out" in layer:
        skip, out_w = layer["skip"], layer["out"]
        hidden = [layer[f"hidden.{i}"] for i in range(len(mats) - 2)]
    first = hidden[0] if hidden else out_w
    cfg = HeadConfig(context=first.shape[0] // DIM, hidden=hidden[0].shape[1] if hidden else 0,
                     layers=len(hidden) or HeadConfig.layers, dim=out_w.shape[1])
    biases = [init[f"hidden.{i}.bias"] for i in range(len(hidden))]
    state = {"mean": init["mean"], "inv_std": init["inv_std"], "inv_scale": init["inv_scale"],
             "out.weight": out_w.T, "out.bias": init["out.bias"], "skip.weight": skip.T}
    for i, (w, b) in enumerate(zip(hidden, biases)):
        state[f"hidden.{i}.weight"], state[f"hidden.{i}.bias"] = w.T, b
    h = HeadNet(cfg)
    h.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()})
    h.eval()
    x = (np.random.default_rng(0).normal(size=(1, 20 + cfg.context, DIM)) * 3).astype(np.float32)
    if int8:        # vectors like the front end's (an int8 graph clips what its calibration never saw)
        x = (state["mean"] + x / 3 / state["inv_std"]).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"vectors": x})[0]
    with torch.no_grad():
        got = h(torch.from_numpy(x)).numpy()
    if int8:        # it also rounds its activations: the directions (all the run time uses) agree
        cos = np.sum(got * want, -1) / (np.linalg.norm(got, axis=-1) * np.linalg.norm(want, axis=-1) + 1e-12)
        same = bool(cos.min() > 0.98)
    else:
        same = np.allclose(got, want, atol=1e-4 * max(1.0, float(np.abs(want).max())))
    if not same:
        raise ValueError(f"{path}: the imported weights do not reproduce the graph's outputs")
    return {"recipe": RECIPE, "head": asdict(cfg), "state": h.state_dict(), "loss": {}, "step": 0,
            "val": None, "variant": {"name": "imported", "head": asdict(cfg), "init": str(path)}}


def calibration_windows(path: str, n: int = 300, length: int = 64, seed: int = 0) -> List[np.ndarray]:
    """``n`` windows of ``length`` consecutive raw front-end vectors from a bank file of
    export.model (``runs/bank-raw.npz``: int8 ``vectors`` times float ``scales``): what the head
    sees in use (read speech, rendered talk, music, noise), for static quantisation."""
    z = np.load(path)
    v = z["vectors"].astype(np.float32)
    if "scales" in z.files:
        v = v * z["scales"].astype(np.float32)[:, None]
    if v.ndim != 2 or v.shape[1] != DIM or v.shape[0] <= length:
        raise ValueError(f"{path}: expected (N > {length}, {DIM}) raw front-end vectors, got {v.shape}")
    rng = np.random.default_rng(seed)
    return [v[None, s:s + length] for s in rng.integers(0, v.shape[0] - length, size=n)]


def quantize_head(f32: Path, out: Path, windows: List[np.ndarray]) -> None:
    """Static int8 quantisation (onnxruntime, QDQ, weights per channel, activations' ranges
    calibrated once on ``windows`` at their 99.99th percentile). Fixed activation scales keep each
    output a function of its own input window only, so streamed and whole-recording outputs are
    equal (dynamic quantisation scales every call's activations by their own range)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter({"vectors": w} for w in windows)

        def get_next(self):
            return next(self._it, None)

    import logging

    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)   # onnxruntime warns about every scalar it leaves in fp32
    try:
        quantize_static(str(f32), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.Percentile,
                        extra_options={"CalibPercentile": 99.99})
    finally:
        logging.getLogger().setLevel(level)


def export(ckpt: str, out: Path, int8: bool = True, summary: Optional[dict] = None,
           calibration: Optional[str] = "runs/bank-raw.npz") -> dict:
    """``head.onnx`` (fp32), ``head.int8.onnx`` (static int8, calibrated on the raw vectors of
    ``calibration``, :func:`quantize_head`; the one ``file`` names when ``int8``), ``check.npz``
    (16 of those vectors, or random ones without int8, and the torch twin's unit outputs for them,
    kws.model.head's edge padding included) and ``head.json`` (context, dim, sha256, training)."""
    from kws.checksum import sha256_file as sha

    if int8 and not (calibration and Path(calibration).is_file()):
        raise FileNotFoundError(f"int8 needs raw front-end vectors to calibrate on: {calibration} is missing "
                                f"(python -m export.model writes runs/bank-raw.npz; or pass --no-int8)")
    h = load_head(ckpt)
    out.mkdir(parents=True, exist_ok=True)
    C, D = h.context, h.cfg.dim
    x = torch.randn(1, 12 + C - 1, DIM) * 3
    f32 = out / "head.onnx"
    torch.onnx.export(h, (x,), str(f32), input_names=["vectors"], output_names=["out"],
                      dynamic_axes={"vectors": {0: "batch", 1: "time"}, "out": {0: "batch", 1: "steps"}},
                      opset_version=17, dynamo=False)
    meta = {"file": f32.name, "context": C, "dim": D, "sha256": sha(f32), "precision": "fp32",
            "fp32": {"file": f32.name, "sha256": sha(f32)}, "config": asdict(h.cfg), "recipe": RECIPE}
    windows = calibration_windows(calibration) if int8 else []
    if int8:
        q = out / "head.int8.onnx"
        quantize_head(f32, q, windows)
        meta["int8"] = {"file": q.name, "sha256": sha(q), "quantisation": "static",
                        "calibration": Path(calibration).name}
        meta.update(file=q.name, sha256=sha(q), precision="int8")
    rng = np.random.default_rng(0)       # the check's input: real vectors where there are some
    cx = windows[0][0, :16] if windows else (rng.normal(size=(16, DIM)) * 3).astype(np.float32)
    with torch.no_grad():
        cy = apply_head(h, torch.from_numpy(cx)[None])[0].numpy()
    np.savez(out / "check.npz", vectors=cx, out=cy)
    ck = torch.load(ckpt, map_location="cpu", weights_only=False)
    meta["training"] = summary or {"step": ck.get("step"), "validation": ck.get("val"),
                                   "variant": ck.get("variant")}
    (out / "head.json").write_text(json.dumps(meta, indent=1))
    return meta


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kws.train.head", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("config", type=Path)
    t.add_argument("overrides", nargs="*", help="key=value (JSON values)")
    e = sub.add_parser("export")
    e.add_argument("checkpoint")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--no-int8", action="store_true", help="the fp32 graph only")
    e.add_argument("--calibration", default="runs/bank-raw.npz",
                   help="raw front-end vectors for the int8 graph's static quantisation (default "
                        "runs/bank-raw.npz, which python -m export.model writes)")
    fo = sub.add_parser("from-onnx", help="a checkpoint to go on training from, made from a head's "
                        "fp32 graph (e.g. a model folder's head.onnx)")
    fo.add_argument("graph", type=Path)
    fo.add_argument("--out", type=Path, required=True)
    sp = sub.add_parser("stage-speech", help="real speech for training: the tuning half's speakers "
                        "but the validation ones, with word times, and LibriSpeech train-clean-100")
    sp.add_argument("--data", type=Path, default=None)
    sp.add_argument("--out", type=Path, required=True)
    va = sub.add_parser("validate", help="a checkpoint's validation numbers, as a training run computes them")
    va.add_argument("checkpoint")
    va.add_argument("--val", type=Path, required=True, help="the validation file (val-file)")
    va.add_argument("--trim-end", type=int, default=None, help="default: the checkpoint's variant's")
    va.add_argument("--soft-max", type=float, default=None, help="default: the checkpoint's variant's")
    v = sub.add_parser("val-file", help="the compact validation file for a training run")
    v.add_argument("--sets", type=Path, required=True, help="kws.train.head_eval prepare folder")
    v.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.cmd == "train":
        cfg = TrainConfig.from_dict(overrides(json.loads(args.config.read_text()), args.overrides))
        train(cfg, log=lambda s: print(s, flush=True))
    elif args.cmd == "from-onnx":
        ck = checkpoint_from_onnx(args.graph)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        torch.save(ck, args.out)
        print(json.dumps({"out": str(args.out), "head": ck["head"]}))
    elif args.cmd == "stage-speech":
        print(json.dumps(stage_speech(args.data, args.out)))
    elif args.cmd == "export":
        print(json.dumps(export(args.checkpoint, args.out, not args.no_int8, calibration=args.calibration)))
    elif args.cmd == "validate":
        from kws.spot.templates import TRIM

        variant = torch.load(args.checkpoint, map_location="cpu", weights_only=False).get("variant") or {}
        te = args.trim_end if args.trim_end is not None else int(variant.get("trim_end", TRIM))
        soft = args.soft_max if args.soft_max is not None else float(variant.get("soft_max", 0.0))
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        r = validate(load_head(args.checkpoint).to(dev).eval(), load_val(str(args.val)), dev, trim_end=te,
                     soft_max=soft)
        print(json.dumps({"trim_end": te, "soft_max": soft, "val": r}))
    else:
        from kws.train.head_eval import load_sets

        val = compact_val(load_sets(args.sets, "a"))
        np.save(args.out, val, allow_pickle=True)
        print(json.dumps({"out": str(args.out), "wake": len(val["wake_label"]), "fsdd": len(val["fsdd_label"]),
                          "background_h": sum(v.shape[0] for v in val["background"]) * 0.08 / 3600}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
