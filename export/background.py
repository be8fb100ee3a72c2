"""The background bank of a bundle: hops of speech, babble, music and noise, and the event factor.

    python -m export.background kws/assets/model --data ../shared/data --music .carry/music.ogg

Writes ``background.npz`` into the bundle and records it in the manifest (kws.calibration says how
thresholds use it):

- hops: webrtcvad-passing detector hops of training-side audio only (never the evaluation's):
  read speech by the tuning half of the speechocean762 speakers, babble of 2-8 of them, music
  (``--music``, e.g. ``python -m kws.corpus.stage music --deb wesnoth-1.16-music_...deb``) and
  the noise recordings of ../shared/data/noise; at each hop, the windows of ``J`` lengths ending
  there, embedded, stored as int8;
- the event factor (kws.calibration): LibriSpeech train-clean-100 (other training-side speakers)
  with babble of them at 15 dB is streamed through the default detector with 24 text keywords at
  thresholds the tail predicts 40, 20, 10, 5 and 2.5 crossings an hour for; the events counted
  fit ``a * predicted ** (1 + b)`` (per-level counts are recorded in the manifest).
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from kws.audio import load_audio
from kws.bundle import Bundle, sha256_file
from kws.corpus.real import DEFAULT_DATA, babble, speech_files
from kws.progress import progress

LOGMEL_LENGTHS_S = (0.3, 0.45, 0.6, 0.75, 0.9, 1.2)
BACKBONE_LENGTHS = (3, 5, 7, 10, 14, 20)
CALIBRATION_RATES = (40.0, 20.0, 10.0, 5.0, 2.5)
SCALE = 127.0


def segments(data: Path, music: Optional[np.ndarray], seconds: float, seed: int = 0) -> List[Tuple[str, np.ndarray]]:
    """Background audio, by kind: about 70 % speech, 10 % speech with babble at 10 dB, and 20 %
    babble, music and noise alone."""
    rng = random.Random(seed)
    files = speech_files(data, "a")
    rng.shuffle(files)
    out: List[Tuple[str, np.ndarray]] = []
    total = 0.0
    for f in files:
        x = load_audio(f)
        out.append(("speech", x))
        total += x.size / 16000
        if total >= 0.7 * seconds:
            break
    for _ in range(int(0.1 * seconds / 10)):
        x = load_audio(rng.choice(files))
        b = babble(data, rng.randint(3, 8), x.size / 16000, rng.randrange(1 << 30), files)
        k = np.sqrt(np.mean(x ** 2) / max(np.mean(b ** 2), 1e-10) / 10.0)
        out.append(("speech+babble", (x + k * b).astype(np.float32)))
    noise = np.concatenate([load_audio(f) for f in sorted((Path(data) / "noise").glob("*.flac"))])
    for i in range(int(0.2 * seconds / 10)):
        kind = ("babble", "music", "noise")[i % 3]
        if kind == "babble":
            x = babble(data, rng.randint(2, 8), 10.0, rng.randrange(1 << 30), files)
        else:
            src = music if kind == "music" and music is not None else noise
            st = rng.randrange(0, src.size - 160000)
            x = src[st:st + 160000]
        out.append((kind, (x * 10 ** (rng.uniform(-20, 0) / 20)).astype(np.float32)))
    return out


def bank_lengths(bundle: Bundle) -> List[int]:
    fe = bundle.frontend
    if fe.kind == "logmel":
        return sorted({fe.count(int(w * 16000)) for w in LOGMEL_LENGTHS_S})
    return list(BACKBONE_LENGTHS)


def build_bank(bundle: Bundle, segs, hops: int, hop_s: float, seed: int = 0, quiet: bool = False):
    """(H, J, D) int8 window embeddings at ``hops`` random speech-passing hops of ``segs``."""
    from kws.search import speech_slots

    fe = bundle.frontend
    lengths = bank_lengths(bundle)
    Lmax = max(lengths)
    hop = max(1, int(round(hop_s * 16000 / fe.hop)))
    rng = np.random.default_rng(seed)
    cands = []
    frames = {}
    for i, (_, x) in enumerate(segs):
        T = fe.count(x.size)
        if T < Lmax:
            continue
        flags = speech_slots(x)
        csum = np.r_[0.0, np.cumsum(flags)]
        for e in range(Lmax, T + 1, hop):
            a, b = (min(v // 160, flags.size) for v in fe.samples(e - Lmax, e))
            if b > a and (csum[b] - csum[a]) / (b - a) >= 0.1:
                cands.append((i, e))
    pick = rng.choice(len(cands), size=min(hops, len(cands)), replace=False)
    chosen = sorted(cands[j] for j in pick)
    out = np.zeros((len(chosen), len(lengths), bundle.embedding_dim), np.int8)
    by_seg: dict = {}
    for h, (i, e) in enumerate(chosen):
        by_seg.setdefault(i, []).append((h, e))
    for i, items in progress(list(by_seg.items()), "background hops", quiet=quiet):
        f = frames.get(i)
        if f is None:
            f = fe.frames(segs[i][1])
        for j, L in enumerate(lengths):
            x = np.stack([f[e - L:e] for _, e in items])
            emb = bundle.embed_frames(x, np.full(len(items), L))
            out[[h for h, _ in items], j] = np.clip(np.round(emb * SCALE), -127, 127).astype(np.int8)
    kinds = [segs[i][0] for i, _ in chosen]
    return out, lengths, {k: kinds.count(k) for k in sorted(set(kinds))}


def calibration_words(n: int, seed: int = 0) -> List[str]:
    from kws.corpus.vocab import read_list
    from kws.phonemes import pronounce

    rng = random.Random(seed)
    words = [w for w in read_list("iv")[:8000] if 4 <= len(pronounce(w).phonemes) <= 9]
    return sorted(rng.sample(words, n - n // 4) + rng.sample(read_list("phrases"), n // 4))


def measure_kappa(bundle: Bundle, data: Path, seconds: float, n_words: int = 24, seed: int = 0,
                  quiet: bool = False) -> dict:
    """Events counted against events predicted (kappa = 1) on other background audio."""
    from kws import calibration
    from kws.detector import Detector, DetectorConfig
    from kws.keywords import Keyword, KeywordSet
    from kws.phonemes import pronounce
    from kws.thresholds import background_scores
    from kws.windows import duration_from_phonemes

    rng = random.Random(seed + 1)
    files = sorted((Path(data) / "librispeech-bits" / "train-clean-100").glob("*.opus"))
    rng.shuffle(files)
    audio, total = [], 0.0
    for f in files:
        audio.append(load_audio(f))
        total += audio[-1].size / 16000
        if total >= seconds:
            break
    stream = np.concatenate(audio)
    bab = babble(data, 6, min(120.0, stream.size / 16000), seed + 2, files[:60])
    k = np.sqrt(np.mean(stream ** 2) / max(np.mean(bab ** 2), 1e-10) / 10 ** 1.5)    # 15 dB
    stream = (stream + k * bab[np.arange(stream.size) % bab.size]).astype(np.float32)
    b = calibration.bank(bundle)
    words = calibration_words(n_words, seed)
    prons = [pronounce(w) for w in words]
    vecs = bundle.embed_pronunciations(prons)
    durs = [duration_from_phonemes(len(p.phonemes)) for p in prons]
    tails = [calibration.fit_tail(background_scores(bundle, v[None], d)) for v, d in zip(vecs, durs)]
    hours = stream.size / 16000 / 3600
    levels = {}
    for rate in CALIBRATION_RATES:
        ks = KeywordSet(bundle.model_id)
        predicted = 0.0
        for w, p, v, d, tl in zip(words, prons, vecs, durs, tails):
            t = tl.threshold(rate / b.hops_per_hour)      # the tail's own prediction: rate an hour
            predicted += rate * hours
            ks.add(Keyword(name=w, vectors=v[None], threshold=t, text=w, phonemes=" ".join(p.phonemes),
                           duration=d))
        det = Detector(ks, bundle, DetectorConfig(variant=bundle.variant))
        det.reset()
        events = 0
        for s in progress(range(0, stream.size, 1600), f"kappa at {rate:g}/h", quiet=quiet):
            events += len(det.process(stream[s:s + 1600]))
        events += len(det.flush())
        levels[f"{rate:g}"] = {"events": events, "predicted": predicted}
    a, bexp = calibration.fit_event_factor([v["predicted"] for v in levels.values()],
                                           [v["events"] for v in levels.values()])
    return {"kappa": a, "kappa_exp": bexp, "levels": levels, "hours": hours, "words": words,
            "source": "librispeech-bits train-clean-100 with babble of its speakers at 15 dB"}


def write(bundle_dir: Path, data: Path, music: Optional[Path], hops: int = 1200, seconds: float = 1500.0,
          kappa_seconds: float = 1800.0, seed: int = 0, quiet: bool = False) -> dict:
    from kws.detector import DetectorConfig

    bundle = Bundle.load(bundle_dir, variant="int8")
    mus = load_audio(music) if music else None
    segs = segments(data, mus, seconds, seed)
    hop_s = DetectorConfig().hop_s
    fe_hop = bundle.frontend.hop / 16000
    hop_s = max(1, round(hop_s / fe_hop)) * fe_hop
    vecs, lengths, kinds = build_bank(bundle, segs, hops, hop_s, seed, quiet)
    np.savez_compressed(bundle_dir / "background.npz", vectors=vecs, lengths=np.array(lengths), scale=SCALE)
    mf_path = bundle_dir / "manifest.json"
    manifest = json.loads(mf_path.read_text())
    old = manifest.get("background", {}).get("file")
    manifest["background"] = {"file": "background.npz", "kind": "hops", "hops": int(vecs.shape[0]),
                              "lengths": lengths, "hop_s": hop_s, "kappa": 1.0, "kinds": kinds,
                              "sources": "speechocean762 train, tuning-half speakers; babble of them; "
                                         "music: " + (music.name if music else "none") + "; ../shared/data/noise"}
    manifest["files"]["background.npz"] = {"sha256": sha256_file(bundle_dir / "background.npz"),
                                           "bytes": (bundle_dir / "background.npz").stat().st_size}
    if old and old != "background.npz":
        manifest["files"].pop(old, None)
        (bundle_dir / old).unlink(missing_ok=True)
    mf_path.write_text(json.dumps(manifest, indent=2))
    from kws import calibration

    calibration._load.cache_clear()
    k = measure_kappa(Bundle.load(bundle_dir, variant="int8"), data, kappa_seconds, seed=seed, quiet=quiet)
    manifest["background"]["kappa"] = k["kappa"]
    manifest["background"]["kappa_exp"] = k["kappa_exp"]
    manifest["background"]["kappa_measured"] = k
    mf_path.write_text(json.dumps(manifest, indent=2))
    calibration._load.cache_clear()
    return {"hops": int(vecs.shape[0]), "lengths": lengths, "kinds": kinds,
            "bytes": (bundle_dir / "background.npz").stat().st_size, "kappa": k["kappa"],
            "kappa_exp": k["kappa_exp"], "kappa_levels": k["levels"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m export.background", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--music", type=Path, help="music for the bank (training-side: never the evaluation's)")
    ap.add_argument("--hops", type=int, default=1200)
    ap.add_argument("--seconds", type=float, default=1500.0, help="background audio to draw hops from")
    ap.add_argument("--kappa-seconds", type=float, default=1800.0)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    print(json.dumps(write(args.bundle, args.data, args.music, args.hops, args.seconds,
                           args.kappa_seconds, quiet=args.quiet), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
