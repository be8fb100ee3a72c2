"""Checkpoint -> model bundle (fp32 + int8 ONNX, background bank, manifest), with parity checks.

    python -m kws export runs/v1/model.pt --out kws/assets/encoders
    (the same as: python -m export.build_bundle runs/v1/model.pt --out kws/assets/encoders)

Reproducible: the same checkpoint and data give byte-identical ONNX files (fixed seeds; the
quantiser is deterministic), and the manifest records the sha256 of every file.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path
from typing import List, Optional

import numpy as np

from export.onnx_export import audio_encoder_onnx, state_dict_numpy, text_encoder_onnx
from kws.bundle import FORMAT, FORMAT_VERSION, Bundle, sha256_file
from kws.features import MelConfig
from kws.phonemes import TOKENS, pad_ids, pronounce

BACKBONE_FILES = ("backbone.onnx", "backbone_mel.npz", "NOTICE.backbone")
BACKGROUND_WINDOWS = 3000
BACKGROUND_LENGTHS_S = (0.3, 0.45, 0.6, 0.75, 0.9)


def load_checkpoint(path: str):
    import torch

    from kws.train.encoders import EncoderConfig, JointModel

    ck = torch.load(path, map_location="cpu", weights_only=False)
    if "model" not in ck:
        raise SystemExit(f"{path}: not a kws checkpoint (no model weights)")
    enc = EncoderConfig(**ck["config"]["encoder"])
    model = JointModel(enc)
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck


def parity(model, bundle_fp32: Bundle, bundle_int8: Bundle, seed: int = 0) -> dict:
    """Cosine between torch and onnxruntime embeddings on random padded batches."""
    import torch

    rng = np.random.default_rng(seed)
    if model.cfg.frontend == "logmel":
        lens = np.array([20, 35, 50, 60, 90, 7], dtype=np.int64)
        mel = rng.normal(-4.0, 3.0, size=(len(lens), int(lens.max()), 128)).astype(np.float32)
    else:           # frames around the real features' statistics
        lens = np.array([3, 8, 12, 17, 24, 1], dtype=np.int64)
        mu, sd = model.audio.feat_mean.numpy(), model.audio.feat_std.numpy()
        mel = (mu + sd * rng.normal(size=(len(lens), int(lens.max()), mu.size))).astype(np.float32)
    words = ["computer", "hey snowboy", "seven", "kubernetes", "a", "alexa"]
    ids, ilens = pad_ids([pronounce(w).ids() for w in words])
    with torch.no_grad():
        ta = model.audio(torch.from_numpy(mel), torch.from_numpy(lens)).numpy()
        tt = model.text(torch.from_numpy(ids), torch.from_numpy(ilens)).numpy()
    res = {}
    for name, b in (("fp32", bundle_fp32), ("int8", bundle_int8)):
        oa = b.embed_mel(mel, lens)
        ot = b.embed_pronunciations([pronounce(w) for w in words])
        res[name] = {"audio_min_cos": float(np.min(np.sum(ta * oa, 1))),
                     "text_min_cos": float(np.min(np.sum(tt * ot, 1)))}
    return res


def background_bank(bundle: Bundle, data: Path, seed: int = 0) -> np.ndarray:
    """Embeddings of random windows of real read speech (speechocean762 train): the negatives
    against which per-keyword thresholds are tuned."""
    from kws.audio import load_audio
    from kws.corpus.real import speech_files

    files = speech_files(data)
    if not files:
        raise SystemExit(f"no speechocean762 audio under {data}")
    rng = random.Random(seed)
    rng.shuffle(files)
    windows = []
    per_file = 10
    for f in files[: BACKGROUND_WINDOWS // per_file]:
        x = load_audio(f)
        for _ in range(per_file):
            n = int(rng.choice(BACKGROUND_LENGTHS_S) * 16000)
            if x.size <= n:
                continue
            s = rng.randrange(0, x.size - n)
            windows.append(x[s:s + n])
    return bundle.embed_clips(windows).astype(np.float16)


def build(ckpt: str, out: Path, data: Path, model_version: str, backbone: Optional[Path] = None) -> dict:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    import onnx

    from kws.train.encoders import EncoderConfig

    model, ck = load_checkpoint(ckpt)
    enc = ck["config"]["encoder"]
    sd = state_dict_numpy(model.state_dict())
    out.mkdir(parents=True, exist_ok=True)
    cfg = EncoderConfig(**enc)
    a_hidden, a_layers = cfg.audio_sizes()
    on_backbone = cfg.frontend != "logmel"
    protos = {"audio": audio_encoder_onnx(sd, a_layers, a_hidden, stack=cfg.stack,
                                          input_name="frames" if on_backbone else "mel"),
              "text": text_encoder_onnx(sd, cfg.layers, cfg.hidden)}
    frontend_files: List[str] = []
    if on_backbone:
        src = Path(backbone or ck["config"].get("backbone", ""))
        for name in BACKBONE_FILES:
            if not (src / name).exists():
                raise SystemExit(f"{src / name}: missing; make it with python -m export.backbone "
                                 f"openwakeword-0.5.1-py3-none-any.whl --out DIR and pass --backbone DIR")
            if (src / name).resolve() != (out / name).resolve():
                shutil.copyfile(src / name, out / name)
        frontend_files = list(BACKBONE_FILES)
    for role, proto in protos.items():
        onnx.save(proto, str(out / f"{role}.onnx"))
        quantize_dynamic(str(out / f"{role}.onnx"), str(out / f"{role}.int8.onnx"),
                         weight_type=QuantType.QInt8, op_types_to_quantize=["LSTM", "MatMul", "Gemm"])
    files = ["audio.onnx", "text.onnx", "audio.int8.onnx", "text.int8.onnx"] + frontend_files
    frontend = ({"kind": "speech_embedding", "network": BACKBONE_FILES[0], "constants": BACKBONE_FILES[1],
                 "notice": BACKBONE_FILES[2], "frame_hop_s": 0.08, "frame_span_s": 0.782, "dim": 96,
                 "source": "Google speech_embedding (https://tfhub.dev/google/speech_embedding/1), "
                           "as converted to ONNX in openwakeword 0.5.1 (export/backbone.py)",
                 "license": "Apache-2.0"} if on_backbone else {"kind": "logmel"})
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION if on_backbone else 1,
        "model_version": model_version,
        "recipe": ck.get("recipe"),
        "frontend": frontend,
        "features": MelConfig().to_dict(),
        "phonemes": list(TOKENS),
        "embedding_dim": int(enc["embed_dim"]),
        "encoder": enc,
        "variants": {"fp32": {"audio": "audio.onnx", "text": "text.onnx"},
                     "int8": {"audio": "audio.int8.onnx", "text": "text.int8.onnx"}},
        "training": {"steps": ck.get("step"), "corpus": ck.get("corpus_stats", {}),
                     "loss": {"alpha_clap": ck["config"]["alpha_clap"], "alpha_dwd": ck["config"]["alpha_dwd"]},
                     "validation": ck.get("metrics", {})},
        **({"distilled": ck["distill"]} if "distill" in ck else {}),
        "files": {f: {"sha256": sha256_file(out / f), "bytes": (out / f).stat().st_size} for f in files},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    b32 = Bundle.load(out, "fp32")
    b8 = Bundle.load(out, "int8")
    manifest["parity"] = parity(model, b32, b8)
    bank = background_bank(b32, data)
    np.save(out / "background.npy", bank)
    manifest["background"] = {"file": "background.npy", "windows": int(bank.shape[0]),
                              "source": "speechocean762 train (real read speech), random 0.3-0.9 s windows"}
    manifest["files"]["background.npy"] = {"sha256": sha256_file(out / "background.npy"),
                                           "bytes": (out / "background.npy").stat().st_size}
    # the model id names the embedding space: keyword stores are tied to it
    manifest["model_id"] = f"{model_version}-{manifest['files']['audio.onnx']['sha256'][:12]}"
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return {"parity": manifest["parity"],
            "bytes": {f: v["bytes"] for f, v in manifest["files"].items()},
            "model_id": manifest["model_id"]}


def main(argv=None) -> int:
    from kws.corpus.real import DEFAULT_DATA

    ap = argparse.ArgumentParser(prog="python -m kws export", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="model.pt (weights-only checkpoint from kws.train)")
    ap.add_argument("--out", type=Path, required=True, help="the bundle folder (the shipped v1.1 encoders: kws/assets/encoders)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="../shared/data (background speech)")
    ap.add_argument("--model-version", default="v1")
    ap.add_argument("--backbone", type=Path, help="folder of backbone.onnx + backbone_mel.npz "
                    "(python -m export.backbone; default: the one the checkpoint was trained with)")
    args = ap.parse_args(argv)
    print(json.dumps(build(args.checkpoint, args.out, args.data, args.model_version, args.backbone), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
