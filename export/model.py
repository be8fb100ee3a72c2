"""Build the keyword-spotting model folder: front end, optional head, background bank, manifest.

    python -m export.model --data ../shared/data --music music.ogg            # kws/assets/model
    python -m export.model --data ../shared/data --music music.ogg --head runs/head/c8h512/export --out DIR

The music file: ``python -m kws.corpus.stage music --deb wesnoth-1.16-music_1%3a1.16.9-1_all.deb
--minutes 20 --out music.ogg`` (``apt-get download wesnoth-1.16-music``; GPL-2+ game music, of
which only front-end vectors are kept). The evaluation uses another package's music, never this.

The folder (kws.model) gets ``backbone.onnx``, ``backbone_mel.npz`` and ``NOTICE.backbone`` (taken
from ``--backbone``, default: already there), ``head.onnx`` when ``--head`` names a folder with
``head.onnx`` and ``head.json`` (context, dim; its ``check.npz`` too, as ``head_check.npz``), and the background bank ``background.npz``; for the shipped model,
the demo keywords' store too (kws/assets/demo, kws.demo): front-end
vectors of about 3.5 hours of audio that holds no keyword, none of it audio the evaluation tests
on (kws.evaluate uses the other speakers of speechocean762, LibriSpeech test-other, and other
music and noise):

- read speech: LibriSpeech train-clean-100 (251 speakers) and the tuning half of the
  speechocean762 speakers, utterances joined into 60 s stretches as a stream would bring them;
- the same speech with babble of 3-8 other talkers at 5-15 dB;
- babble of 2-30 talkers alone, music alone, white, pink and brown noise alone, at levels from
  -30 to 0 dB.

Vectors are stored raw (the head is applied when a model is loaded, kws.thresholds), int8 with one
float16 scale per vector. The run is deterministic: run again, it gives the same files.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import numpy as np

from kws.audio import load_audio
from kws.checksum import sha256_file
from kws.corpus.real import DEFAULT_DATA, babble, speech_files
from kws.model import FORMAT, FORMAT_VERSION, ModelError, default_model_path, read_manifest
from kws.progress import progress
from kws.templates import PAD_S, TRIM

SEGMENT_S = 60.0
BACKBONE_FILES = ("backbone.onnx", "backbone_mel.npz", "NOTICE.backbone")


def speech_sources(data: Path) -> List[Path]:
    """Training-side read speech: never the evaluation's speakers."""
    ls = sorted((Path(data) / "librispeech-bits" / "train-clean-100").glob("*.opus"))
    return ls + speech_files(data, "a")


def stretches(files: List[Path], seconds: float, rng: random.Random) -> Iterator[np.ndarray]:
    """The files' audio, in a shuffled order, cut into stretches of ``seconds`` (the last shorter)."""
    files = list(files)
    rng.shuffle(files)
    buf: List[np.ndarray] = []
    n = 0
    want = int(seconds * 16000)
    for f in files:
        x = load_audio(f)
        buf.append(x)
        n += x.size
        while n >= want:
            cat = np.concatenate(buf)
            yield cat[:want]
            buf, n = [cat[want:]], cat.size - want
    if n > 16000 * 5:
        yield np.concatenate(buf)


def coloured_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    w = rng.normal(size=n)
    if kind == "white":
        x = w
    else:
        f = np.fft.rfftfreq(n, 1 / 16000)
        f[0] = f[1]
        spec = np.fft.rfft(w) / (np.sqrt(f) if kind == "pink" else f)
        x = np.fft.irfft(spec, n)
    return (x / np.abs(x).max()).astype(np.float32)


def level(x: np.ndarray, db: float) -> np.ndarray:
    """``x`` scaled to an RMS of ``db`` dBFS."""
    rms = float(np.sqrt(np.mean(x ** 2))) + 1e-9
    return (x * (10 ** (db / 20) / rms)).astype(np.float32)


def background_audio(data: Path, music: Optional[np.ndarray], seed: int = 0) -> List[Tuple[str, np.ndarray]]:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    files = speech_sources(data)
    out: List[Tuple[str, np.ndarray]] = [("speech", x) for x in stretches(files, SEGMENT_S, rng)]
    for _ in range(20):                      # 20 minutes of speech with babble
        x = next(stretches([rng.choice(files) for _ in range(12)], SEGMENT_S, rng))
        b = babble(data, rng.randint(3, 8), x.size / 16000, rng.randrange(1 << 30), files)
        snr = rng.uniform(5, 15)
        out.append(("speech+babble", (x + level(b, 20 * np.log10(np.sqrt(np.mean(x ** 2)) + 1e-9) - snr))))
    for _ in range(15):                      # 15 minutes of babble and crowd alone
        out.append(("babble", level(babble(data, rng.randint(2, 30), SEGMENT_S, rng.randrange(1 << 30), files),
                                    rng.uniform(-35, -15))))
    if music is not None:                    # all the music given, in minutes, at random levels
        for s in range(0, music.size - 16000 * 10, int(SEGMENT_S * 16000)):
            out.append(("music", level(music[s:s + int(SEGMENT_S * 16000)], rng.uniform(-35, -12))))
    for kind in ("white", "pink", "brown"):  # 2 minutes of each noise
        for _ in range(2):
            out.append((f"noise-{kind}", level(coloured_noise(kind, int(SEGMENT_S * 16000), nrng),
                                               rng.uniform(-50, -20))))
    return out


def build_bank(out_dir: Path, segs: List[Tuple[str, np.ndarray]], quiet: bool = False) -> dict:
    from kws.backbone import Backbone, as_files

    bb = Backbone(as_files(out_dir))
    vecs, counts, kinds = [], [], []
    for kind, x in progress(segs, "background vectors", quiet=quiet, unit="min"):
        v = bb(np.clip(x, -1, 1))
        if v.shape[0] == 0:
            continue
        vecs.append(v)
        counts.append(v.shape[0])
        kinds.append(kind)
    v = np.concatenate(vecs)
    scale = np.maximum(np.abs(v).max(axis=1), 1e-6) / 127.0
    q = np.clip(np.round(v / scale[:, None]), -127, 127).astype(np.int8)
    np.savez_compressed(out_dir / "background.npz", vectors=q, scales=scale.astype(np.float16),
                        segments=np.array(counts, np.int64), kinds=np.array(kinds))
    hours = {k: round(sum(c for c, kk in zip(counts, kinds) if kk == k) * 0.08 / 3600, 3)
             for k in sorted(set(kinds))}
    return {"vectors": int(v.shape[0]), "hours": round(float(v.shape[0]) * 0.08 / 3600, 3), "by_kind": hours}


def _old_manifest(out_dir: Path) -> dict:
    """The manifest already in ``out_dir`` (its head and bank may be kept), or {}."""
    try:
        return read_manifest(out_dir)
    except ModelError:
        return {}


def write(out_dir: Path, data: Path, music: Optional[Path], head: Optional[Path] = None,
          backbone: Optional[Path] = None, seed: int = 0, quiet: bool = False, no_head: bool = False,
          reuse_background: bool = False, pad_s: float = PAD_S, trim: int = TRIM, int8: bool = False) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    if backbone is not None and Path(backbone).resolve() != out_dir.resolve():
        for name in BACKBONE_FILES:
            shutil.copy2(Path(backbone) / name, out_dir / name)
    for name in BACKBONE_FILES:
        if not (out_dir / name).exists():
            raise SystemExit(f"{out_dir / name} is missing: give --backbone DIR (python -m export.backbone makes it)")
    old = _old_manifest(out_dir)
    head_meta = old.get("head") if head is None and not no_head else None
    if head is not None:
        meta = json.loads((Path(head) / "head.json").read_text())
        # fp32 by default: int8 dynamic quantisation scales each call's activations by their own
        # range, so a head fed vector by vector (streaming) and one fed a whole recording would differ
        graph = meta["int8"]["file"] if int8 else meta.get("fp32", meta)["file"]
        shutil.copy2(Path(head) / graph, out_dir / "head.onnx")
        if (Path(head) / "check.npz").exists():
            shutil.copy2(Path(head) / "check.npz", out_dir / "head_check.npz")
        head_meta = {"file": "head.onnx", "context": int(meta["context"]), "dim": int(meta["dim"]),
                     "precision": "int8" if int8 else "fp32", "recipe": meta.get("recipe"),
                     "config": meta.get("config", {}), "training": meta.get("training", {})}
    elif head_meta is None:
        for f in ("head.onnx", "head_check.npz"):
            (out_dir / f).unlink(missing_ok=True)
    if reuse_background and (out_dir / "background.npz").exists() and old.get("background"):
        bank = {k: v for k, v in old["background"].items() if k != "file"}
    else:
        segs = background_audio(data, load_audio(music) if music else None, seed)
        bank = build_bank(out_dir, segs, quiet)
        bank["sources"] = ("LibriSpeech train-clean-100 and the tuning half of the speechocean762 speakers "
                           "(read speech, alone and with babble of them), babble of them alone, music: "
                           + (Path(music).name if music else "none") + ", white/pink/brown noise")
    files = ["backbone.onnx", "backbone_mel.npz", "background.npz"] + (["head.onnx"] if head_meta else [])
    if head_meta and (out_dir / "head_check.npz").exists():
        files.append("head_check.npz")
    digests = {n: {"sha256": sha256_file(out_dir / n), "bytes": (out_dir / n).stat().st_size} for n in files}
    # the id names the space keywords live in: front end, head, and how templates are cut
    ident = hashlib.sha256(json.dumps({**{n: digests[n]["sha256"] for n in files if n != "background.npz"},
                                       "pad_s": pad_s, "trim": trim}, sort_keys=True).encode()).hexdigest()[:12]
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "model_id": f"tpl-{ident}",
        "frontend": {"kind": "speech_embedding", "network": "backbone.onnx", "constants": "backbone_mel.npz",
                     "vector_hop_s": 0.08, "vector_span_s": 0.782},
        "head": head_meta,
        "templates": {"pad_s": pad_s, "trim": trim},
        "background": dict(file="background.npz", **bank),
        "files": digests,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if Path(out_dir).resolve() == default_model_path().resolve():
        from kws.demo import write_demo_store
        from kws.model import Model

        write_demo_store(Model.load(out_dir), progress=lambda line: None if quiet else print(line))
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.model", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=default_model_path())
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--music", type=Path, help="music for the bank (training-side: never the evaluation's)")
    ap.add_argument("--head", type=Path, help="a folder with the head's ONNX and head.json (python -m "
                    "kws.train.head export); default: keep the model's head")
    ap.add_argument("--no-head", action="store_true", help="a model without a head (raw vectors)")
    ap.add_argument("--int8", action="store_true", help="ship the head's int8 graph (smaller; streamed "
                    "scores then differ from whole-recording scores in the 4th decimal)")
    ap.add_argument("--reuse-background", action="store_true",
                    help="keep the background bank already in --out (it holds raw vectors: any head fits)")
    ap.add_argument("--pad", type=float, default=PAD_S, help="silence around an utterance before its template is cut (s)")
    ap.add_argument("--trim", type=int, default=TRIM, help="vectors dropped at each end of a padded utterance")
    ap.add_argument("--backbone", type=Path, help="a folder with the front end's files (default: --out)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    m = write(args.out, args.data, args.music, args.head, args.backbone, quiet=args.quiet, no_head=args.no_head,
              reuse_background=args.reuse_background, pad_s=args.pad, trim=args.trim, int8=args.int8)
    print(json.dumps({"model_id": m["model_id"], "background": m["background"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
