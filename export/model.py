"""Build the keyword-spotting model folder: front end, optional head, background bank, manifest.

    python -m export.model --data ../shared/data --music music.ogg            # kws/assets/model
    python -m export.model --data ../shared/data --music music.ogg --head runs/head/c8h512/export --out DIR

The bank's sources (export/bank.py says what each kind is and how much):

    apt-get download wesnoth-1.16-music singularity-music hyperrogue-music planetblupi-music-ogg \\
        sound-theme-freedesktop fortunes fortunes-min
    python -m kws.corpus.stage music --deb wesnoth-1.16-music_1%3a1.16.9-1_all.deb --minutes 40 --out music-wesnoth.ogg
    python -m kws.corpus.stage music --deb singularity-music_007-2_all.deb --minutes 30 --out music-singularity.ogg
    python -m kws.corpus.stage music --deb hyperrogue-music_12.0q-1_all.deb --minutes 35 --out music-hyperrogue.ogg
    python -m kws.corpus.stage music --deb planetblupi-music-ogg_1.14.2-3_all.deb --minutes 20 --out music-planetblupi.ogg
    python -m kws.corpus.kokoro_talk texts --fortunes DIR... --out talk-texts.json.xz      # the fortunes packages, dpkg -x each
    python -m kws.corpus.kokoro_talk render --texts talk-texts.json.xz --split bank --hours 4.6 --seed 1 --out talk-bank
    python -m export.model --data ../shared/data --talk talk-bank --music music-wesnoth.ogg --music music-singularity.ogg \\
        --music music-hyperrogue.ogg --music music-planetblupi.ogg --household sound-theme-freedesktop_0.8-2_all.deb

(GPL-2+ game music and CC-BY-SA / GPL-2+ theme sounds, of which only vectors are kept.) The
evaluation uses another package's music (warzone2100-music), the other half of the speakers and
another split of the talk, never these.

The folder (kws.model.model) gets ``backbone.onnx``, ``backbone_mel.npz`` and ``NOTICE.backbone`` (taken
from ``--backbone``, default: already there), ``backbone_step.onnx`` (the network's step graph for
streams: from ``--backbone`` where it is there, else made from backbone.onnx; checked against it
either way), ``head.onnx`` when ``--head`` names a folder with
``head.onnx`` and ``head.json`` (context, dim; its ``check.npz`` too, as ``head_check.npz``), the
background bank ``background.npz`` (kws.enroll.background: the head's vectors of about 11 hours of audio
that holds no keyword, coded as principal components at one step) and, for the shipped model, the demo keywords' store
(kws/assets/demo, kws.enroll.demo). The bank's front-end vectors are kept in ``--raw-cache``
(runs/bank-raw.npz), so ``--reuse-background`` makes the bank again for a new head in seconds.
The run is deterministic: run again, it gives the same files.

    python -m export.model --add-step --out kws/assets/model

adds only the step graph to a folder made before there was one (an older kws/assets/model or
runs/model-*): writes ``backbone_step.onnx`` from its backbone.onnx (export.backbone.step_network,
checked against it) and enters it in the manifest (``frontend.step_network`` and ``files``),
nothing else. Folders without it still work: streams then run backbone.onnx on each vector's
whole window. The model id leaves the step graph out: it gives the same vectors as backbone.onnx
(export.backbone.check_step), so keywords and scores do not depend on it, and adding it keeps the
id and every keyword store made for it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from kws.checksum import sha256_file
from kws.corpus.real import DEFAULT_DATA
from kws.model.backbone import STEP_FILE
from kws.model.model import FORMAT, FORMAT_VERSION, ModelError, default_model_path, read_manifest
from kws.progress import progress
from kws.spot.templates import PAD_S, TRIM, check_soft_max

BACKBONE_FILES = ("backbone.onnx", "backbone_mel.npz", "NOTICE.backbone")
ROOMS_FILE = "rooms.npz"   # room impulse responses of typed keywords' room copies
ROOM_S = 0.6               # each cut to this (RT60 up to 0.9 s: the rest is 40 dB down)
RAW_CACHE = Path("runs/bank-raw.npz")      # the bank's front-end vectors, kept for a rebuild with another head


def raw_vectors(out_dir: Path, segs, quiet: bool = False) -> Tuple[np.ndarray, List[int], List[str]]:
    """The segments' front-end vectors (float32), their lengths and kinds."""
    from kws.model.backbone import Backbone, as_files

    bb = Backbone(as_files(out_dir))
    vecs, counts, kinds = [], [], []
    for kind, x in progress(segs, "background vectors", quiet=quiet, unit="min"):
        v = bb(np.clip(x, -1, 1))
        if v.shape[0] == 0:
            continue
        vecs.append(v.astype(np.float32))
        counts.append(v.shape[0])
        kinds.append(kind)
    return np.concatenate(vecs), counts, kinds


def save_raw(path: Path, raw: np.ndarray, counts, kinds) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scale = np.maximum(np.abs(raw).max(axis=1), 1e-6) / 127.0
    q = np.clip(np.round(raw / scale[:, None]), -127, 127).astype(np.int8)
    np.savez(path, vectors=q, scales=scale.astype(np.float16), segments=np.array(counts, np.int64),
             kinds=np.array(kinds))


def load_raw(path: Path) -> Tuple[np.ndarray, List[int], List[str]]:
    z = np.load(path)
    raw = z["vectors"].astype(np.float32) * z["scales"].astype(np.float32)[:, None]
    return raw, [int(c) for c in z["segments"]], [str(k) for k in z["kinds"]]


def bank_vectors(raw: np.ndarray, counts, head=None) -> np.ndarray:
    """The bank's unit vectors in matching space: ``raw`` through ``head`` (kws.model.head.Head or
    None for the raw space), each segment of ``counts`` vectors from its own start."""
    if head is not None:
        raw = np.concatenate([head(p) for p in np.split(raw, np.cumsum(counts)[:-1])])
    return raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)


def build_bank(out_dir: Path, raw: np.ndarray, counts, kinds, head_file: Optional[Path], context: int) -> dict:
    """``background.npz``: the raw vectors through the head (each segment from its start), coded
    as kws.enroll.background.save codes them (principal components, one quantiser step)."""
    from kws.enroll.background import ENCODING, save
    from kws.model.head import Head

    vec = bank_vectors(raw, counts, Head(head_file, context) if head_file is not None else None)
    save(out_dir / "background.npz", vec, counts, kinds)
    hours = {k: round(sum(c for c, kk in zip(counts, kinds) if kk == k) * 0.08 / 3600, 3)
             for k in sorted(set(kinds))}
    return {"vectors": int(vec.shape[0]), "hours": round(float(vec.shape[0]) * 0.08 / 3600, 3), "by_kind": hours,
            "space": "head" if head_file is not None else "raw", "encoding": ENCODING,
            "head_sha256": sha256_file(head_file) if head_file is not None else None}


def write_rooms(out_dir: Path, source: Path, rt60: Tuple[float, float], count: int, seed: int = 0,
                seconds: float = ROOM_S) -> Optional[dict]:
    """``count`` rooms of ``source`` (python -m kws.corpus.rooms's npz: simulated rooms) with an
    RT60 within ``rt60``, drawn at random, cut to ``seconds``, into the model folder as
    ``rooms.npz`` (float16): typed keywords get one copy of each rendering through one of them
    (kws.enroll.build). ``count`` 0: none (the model's entry removed)."""
    if count <= 0:
        return None
    z = np.load(source)
    pick = np.flatnonzero((z["rt60"] >= rt60[0]) & (z["rt60"] <= rt60[1]))
    if pick.size < count:
        raise SystemExit(f"{source}: {pick.size} rooms with an RT60 of {rt60[0]}-{rt60[1]} s, {count} wanted")
    pick = np.sort(np.random.default_rng(seed).choice(pick, count, replace=False))
    rir = np.asarray(z["rir"][pick], np.float32)[:, : int(seconds * 16000)]
    np.savez_compressed(out_dir / ROOMS_FILE, rir=rir.astype(np.float16), rt60=z["rt60"][pick])
    return {"file": ROOMS_FILE, "count": int(count),
            "rt60_s": [round(float(z["rt60"][pick].min()), 3), round(float(z["rt60"][pick].max()), 3)],
            "source": f"{Path(source).name}: pyroomacoustics shoebox rooms (python -m kws.corpus.rooms)"}


def _old_manifest(out_dir: Path) -> dict:
    """The manifest already in ``out_dir`` (its head and bank may be kept), or {}."""
    try:
        return read_manifest(out_dir)
    except ModelError:
        return {}


def ensure_step(out_dir: Path) -> dict:
    """``out_dir/backbone_step.onnx``: made from its backbone.onnx where missing (needs the onnx
    package), and checked against backbone.onnx (export.backbone.check_step: SystemExit if the
    stepped vectors differ); NOTICE.backbone names it."""
    from export.backbone import NOTICE, check_step, write_step

    if not (out_dir / STEP_FILE).exists():
        return write_step(out_dir)
    (out_dir / "NOTICE.backbone").write_text(NOTICE)
    return check_step(out_dir)


def _digest(path: Path) -> dict:
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def _after(d: dict, key: str, new_key: str, value) -> dict:
    """``d`` with ``new_key: value`` right after ``key`` (at the end when ``key`` is not there)."""
    out = {}
    for k, v in d.items():
        if k != new_key:
            out[k] = v
        if k == key:
            out[new_key] = value
    out.setdefault(new_key, value)
    return out


def add_step(out_dir: Path) -> dict:
    """Add the step graph to a model folder and its manifest, where ``write`` puts it; the
    folder's other files and its model id stay as they were. Returns the check's numbers
    (export.backbone.check_step)."""
    manifest = read_manifest(out_dir)
    report = ensure_step(out_dir)
    manifest["frontend"] = _after(manifest["frontend"], "constants", "step_network", STEP_FILE)
    manifest["files"] = _after(manifest["files"], manifest["frontend"]["constants"], STEP_FILE,
                               _digest(out_dir / STEP_FILE))
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return report


def write(out_dir: Path, data: Path, music: Sequence[Path] = (), head: Optional[Path] = None,
          backbone: Optional[Path] = None, seed: int = 0, quiet: bool = False, no_head: bool = False,
          reuse_background: bool = False, pad_s: float = PAD_S, trim: int = TRIM, int8: bool = False,
          trim_end: Optional[int] = None, rooms: Optional[Path] = None, room_rt60: Tuple[float, float] = (0.3, 0.9),
          room_count: int = 28, talk: Optional[Path] = None, household: Optional[Path] = None, raw_cache: Path = RAW_CACHE,
          soft_max: float = 0.0) -> dict:
    soft_max = check_soft_max(soft_max)
    out_dir.mkdir(parents=True, exist_ok=True)
    if backbone is not None and Path(backbone).resolve() != out_dir.resolve():
        for name in BACKBONE_FILES:
            shutil.copy2(Path(backbone) / name, out_dir / name)
        (out_dir / STEP_FILE).unlink(missing_ok=True)
        if (Path(backbone) / STEP_FILE).exists():
            shutil.copy2(Path(backbone) / STEP_FILE, out_dir / STEP_FILE)
    for name in BACKBONE_FILES:
        if not (out_dir / name).exists():
            raise SystemExit(f"{out_dir / name} is missing: give --backbone DIR (python -m export.backbone makes it)")
    ensure_step(out_dir)
    old = _old_manifest(out_dir)
    head_meta = old.get("head") if head is None and not no_head else None
    if head is not None:
        meta = json.loads((Path(head) / "head.json").read_text())
        # int8: the export's statically quantised graph (fixed activation scales: streamed and
        # whole-recording outputs are equal); fp32 otherwise
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
    if reuse_background and Path(raw_cache).exists():
        raw, counts, kinds = load_raw(Path(raw_cache))
        sources = old.get("background", {}).get("sources", "")
    else:
        from export.bank import segments

        music = [Path(m) for m in music]
        raw, counts, kinds = raw_vectors(out_dir, segments(data, talk, music, household, seed), quiet)
        save_raw(Path(raw_cache), raw, counts, kinds)
        sources = ("read speech: LibriSpeech train-clean-100 and the tuning half of the speechocean762 speakers "
                   "(alone, under babble of them, under music as from a TV); Kokoro-82M talk: "
                   + (Path(talk).name if talk else "none") + "; babble of them alone; music: "
                   + (", ".join(m.name for m in music) or "none") + "; household noise"
                   + (" and " + Path(household).name if household else "") + "; white/pink/brown noise")
    head_file = out_dir / "head.onnx" if head_meta else None
    bank = build_bank(out_dir, raw, counts, kinds, head_file, int(head_meta["context"]) if head_meta else 1)
    bank["sources"] = sources
    if room_count <= 0:                       # --room-count 0: typed keywords without room copies
        room_meta = None
    elif rooms is None:                       # keep the model's
        room_meta = old.get("templates", {}).get("rooms")
    else:
        room_meta = write_rooms(out_dir, rooms, room_rt60, room_count, seed)
    if not room_meta:
        (out_dir / ROOMS_FILE).unlink(missing_ok=True)
    files = ["backbone.onnx", "backbone_mel.npz", STEP_FILE, "background.npz"] + (["head.onnx"] if head_meta else [])
    files += [ROOMS_FILE] if room_meta else []
    if head_meta and (out_dir / "head_check.npz").exists():
        files.append("head_check.npz")
    digests = {n: _digest(out_dir / n) for n in files}
    # the id names the space keywords live in: front end, head, and how templates are cut (not the
    # bank, nor the step graph, which gives backbone.onnx's vectors: models made before it keep their id)
    cutting = {"pad_s": pad_s, "trim": trim}
    if trim_end is not None and trim_end != trim:
        cutting["trim_end"] = trim_end          # (absent when equal: the ids of such models stay as they were)
    if room_meta:
        cutting["rooms"] = room_meta
    if soft_max:
        cutting["soft_max"] = soft_max          # how a keyword combines its templates' scores (0: the best; absent)
    ident = hashlib.sha256(json.dumps({**{n: digests[n]["sha256"] for n in files
                                          if n not in ("background.npz", STEP_FILE)},
                                       **cutting}, sort_keys=True).encode()).hexdigest()[:12]
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "model_id": f"tpl-{ident}",
        "frontend": {"kind": "speech_embedding", "network": "backbone.onnx", "constants": "backbone_mel.npz",
                     "step_network": STEP_FILE, "vector_hop_s": 0.08, "vector_span_s": 0.782},
        "head": head_meta,
        "templates": cutting,
        "background": dict(file="background.npz", **bank),
        "files": digests,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    if Path(out_dir).resolve() == default_model_path().resolve():
        from kws.enroll.demo import write_demo_store
        from kws.model.model import Model

        write_demo_store(Model.load(out_dir), progress=lambda line: None if quiet else print(line))
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.model", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=default_model_path())
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--music", type=Path, action="append", default=[],
                    help="music for the bank, repeatable (training-side: never the evaluation's)")
    ap.add_argument("--talk", type=Path, help="a folder of Kokoro talk for the bank (kws.corpus.kokoro_talk --split bank)")
    ap.add_argument("--household", type=Path, help="sound-theme-freedesktop's .deb (household sounds for the bank)")
    ap.add_argument("--raw-cache", type=Path, default=RAW_CACHE,
                    help="where the bank's front-end vectors are kept for --reuse-background")
    ap.add_argument("--head", type=Path, help="a folder with the head's ONNX and head.json (python -m "
                    "kws.train.head export); default: keep the model's head")
    ap.add_argument("--no-head", action="store_true", help="a model without a head (raw vectors)")
    ap.add_argument("--int8", action="store_true", help="ship the head's int8 graph (statically "
                    "quantised: a quarter of the size, about 3x faster, streamed outputs equal to offline ones)")
    ap.add_argument("--reuse-background", action="store_true",
                    help="the bank's front-end vectors from --raw-cache (made by an earlier run), through the head again")
    ap.add_argument("--pad", type=float, default=PAD_S, help="silence around an utterance before its template is cut (s)")
    ap.add_argument("--trim", type=int, default=TRIM, help="vectors dropped at each end of a padded utterance")
    ap.add_argument("--trim-end", type=int, default=None,
                    help="vectors dropped at the end instead (default: --trim); the head's training "
                         "should have cut its templates the same way (its variant's trim_end)")
    ap.add_argument("--rooms", type=Path, help="python -m kws.corpus.rooms's npz: typed keywords also get "
                    "each rendering through one of --room-count of its rooms (default: keep the model's)")
    ap.add_argument("--room-rt60", default="0.3,0.9", help="the rooms' RT60 from,to (s)")
    ap.add_argument("--room-count", type=int, default=28, help="rooms kept (0: none, typed keywords without room copies)")
    ap.add_argument("--soft-max", type=float, default=0.0,
                    help="a keyword's score: the soft maximum of its templates' at this sharpness "
                         "(kws.spot.templates.combine; 0, the default: the best template's)")
    ap.add_argument("--backbone", type=Path, help="a folder with the front end's files (default: --out)")
    ap.add_argument("--add-step", action="store_true",
                    help=f"only add {STEP_FILE} (the network's step graph for streams) to the --out folder "
                         "and its manifest; its other files and its model id stay as they were")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.add_step:
        report = add_step(args.out)
        print(json.dumps({"model_id": read_manifest(args.out)["model_id"], "step": report}, indent=2))
        return 0
    m = write(args.out, args.data, args.music, args.head, args.backbone, quiet=args.quiet, no_head=args.no_head,
              reuse_background=args.reuse_background, pad_s=args.pad, trim=args.trim, int8=args.int8,
              trim_end=args.trim_end, rooms=args.rooms, room_count=args.room_count,
              room_rt60=tuple(float(v) for v in args.room_rt60.split(",")),
              talk=args.talk, household=args.household, raw_cache=args.raw_cache, soft_max=args.soft_max)
    print(json.dumps({"model_id": m["model_id"], "background": m["background"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
