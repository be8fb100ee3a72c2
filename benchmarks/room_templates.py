"""Typed keywords' templates with reverberant copies: do they find the keyword in rooms?

    python benchmarks/room_templates.py --sets runs/eval-sets --rooms .hc/stage/rooms.npz \\
        --head runs/head-alike/export-lr5e-5 --int8 [--per-voice 1] [--rt60 0.3,0.9] [--tail 0.25 ...] [--half b]

The clip-level measure of ``python -m kws.train.head_eval report`` (the same sets, clips, conditions,
background and miss rate at 1 false alarm an hour), once with each word's templates from its 28
clean renderings (as enrollment makes them today) and once with ``--per-voice`` reverberant
copies of each rendering added: the rendering, trimmed of silence, convolved with a room impulse
response drawn from ``--rooms`` (``python -m kws.corpus.rooms``: pyroomacoustics shoebox rooms,
the training's rooms; only those with RT60 in ``--rt60``), cut 0.25 s after the word, scaled to the
rendering's peak, then padded and cut as every template is (kws.spot.templates.source_vectors and
cut). The evaluation's reverberant clips are made another way (kws.evaluate.reverb: exponentially
decaying noise), so the copies are not the test's rooms. Renderings are kept in ``--cache``.
Printed: the head_eval table, both template sets side by side.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kws.spot.templates import ROOM_TAIL_S, room_copy, source_vectors  # noqa: E402
from kws.train import head_eval as he  # noqa: E402


def renderings(words, cache: Path) -> dict:
    """Each word's renderings in the 28 voices (kws.train.head_eval.render_words), kept in ``cache``."""
    if cache.exists():
        z = np.load(cache, allow_pickle=True)
        have = z["audio"].item()
        if all(w in have for w in words):
            return have
    out = he.render_words(words)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, audio=np.array(out, dtype=object))
    return out


def with_copies(clean: dict, audio: dict, rirs: np.ndarray, per_voice: int, seed: int = 7,
                tail_s: float = ROOM_TAIL_S) -> dict:
    """Each word's raw template vectors of ``clean`` (those of its renderings ``audio``, in order),
    each followed by ``per_voice`` reverberant copies of its rendering."""
    bb = he._backbone()
    rng = np.random.default_rng(seed)
    out = {}
    for w, xs in audio.items():
        out[w] = []
        for v, x in zip(clean[w], xs):
            out[w].append(v)
            for _ in range(per_voice):
                out[w].append(source_vectors(bb, room_copy(x, rirs[rng.integers(len(rirs))], tail_s)).astype(np.float32))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", type=Path, required=True, help="python -m kws.train.head_eval prepare's folder")
    ap.add_argument("--rooms", type=Path, required=True, help="python -m kws.corpus.rooms's npz")
    ap.add_argument("--head", type=Path, required=True, help="an exported head folder (kws.train.head export)")
    ap.add_argument("--int8", action="store_true", help="the head's int8 graph (as shipped)")
    ap.add_argument("--half", default="b", choices=("a", "b"))
    ap.add_argument("--per-voice", type=int, default=1)
    ap.add_argument("--rt60", default="0.3,0.9", help="the rooms drawn: RT60 from,to (s)")
    ap.add_argument("--tail", type=float, nargs="+", default=[ROOM_TAIL_S],
                    help="reverberation kept after the word (s); several: one copy set each, side by side")
    ap.add_argument("--cache", type=Path, default=Path("runs/room-templates-audio.npz"))
    args = ap.parse_args(argv)
    lo, hi = (float(v) for v in args.rt60.split(","))
    z = np.load(args.rooms)
    keep = (z["rt60"] >= lo) & (z["rt60"] <= hi)
    if not keep.any():
        print(f"{args.rooms}: no room with RT60 in {lo}-{hi} s", file=sys.stderr)
        return 2
    rirs = z["rir"][keep].astype(np.float32)
    sets = he.load_sets(args.sets, args.half)
    clean = sets["templates"]            # the 28 clean renderings' vectors, as head_eval prepare made them
    audio = renderings(he.WAKE + he.DIGIT_WORDS, args.cache)
    head = he.onnx_head(args.head, int8=args.int8)
    sets_of = {"28 clean templates": clean}
    for tail in args.tail:
        sets_of[f"+ {args.per_voice} reverberant a voice (RT60 {lo}-{hi} s, {int(keep.sum())} rooms, "
                f"{tail:g} s of tail)"] = with_copies(clean, audio, rirs, args.per_voice, tail_s=tail)
    results = {}
    for name, tpl in sets_of.items():
        results[name] = he.evaluate({**sets, "templates": tpl}, head)
        print(f"{name}: done", file=sys.stderr, flush=True)
    print(f"half {args.half}, head {args.head}{' int8' if args.int8 else ''}, "
          f"{results[next(iter(results))]['background_hours']:.2f} h of background speech")
    print(he.table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
