"""python -m kws detect FILE...: offline detection in recordings, one JSON line per detection.

The keywords: ``--keyword`` texts, else the store's, else the demo keywords. A ``--keyword`` text
the store holds as a typed keyword (the same words, false-alarm target and voices) is taken from
the store; one typed before is read from the cache (kws.enroll.render_cache); only a new text is
rendered (with a line on stderr saying so). Every argument and file is checked before that.
stderr names the keywords and thresholds in use and says when a file held none of them; stdout
holds only the JSON lines.

Also the detector options listen and serve share (:func:`detector_arguments`)."""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from typing import List, Optional, Tuple

from kws.commands import store_argument
from kws.enroll.demo import DEMO_KEYWORDS, sample_recording


def add_parser(sub) -> None:
    p = sub.add_parser("detect", help="offline detection in files, JSON lines",
                       description="Offline detection in recordings: one JSON line per detection "
                                   "(file, keyword, score, threshold, start, end). The keywords and "
                                   "thresholds used, and files where nothing was heard, are told on "
                                   "stderr.")
    detector_arguments(p)
    p.add_argument("files", nargs="*", help="audio files (default: the bundled sample)")
    p.set_defaults(run=run)


def detector_arguments(p: argparse.ArgumentParser) -> None:
    """Keywords, model and detector settings (detect, listen, serve)."""
    p.add_argument("--keyword", "-k", action="append", help="keyword text (repeatable); default: the store")
    p.add_argument("--threshold", type=float, help="one threshold for all keywords")
    p.add_argument("--false-alarms-per-hour", type=float, metavar="N",
                   help="thresholds of --keyword texts set for N false alarms an hour each (default 1)")
    store_argument(p)
    p.add_argument("--model", help="model folder (default: the shipped one)")
    p.add_argument("--no-vad", action="store_true", help="score silence and noise too")
    p.add_argument("--no-adapt", action="store_true",
                   help="keep the enrolled thresholds (listen and serve: by default they learn the room "
                        "and keep what they learnt beside the store, docs/thresholds.md)")


def check_detector_args(args) -> None:
    """The detector options, refused before anything slow: a false-alarm rate that is not a
    positive number, a threshold outside [-1, 1], a store path that is a file, keyword texts that
    cannot be spoken."""
    from kws.enroll.build import check_rate
    from kws.enroll.phonemes import normalize
    from kws.enroll.store import StoreError, resolve_store
    from kws.errors import UsageError

    check_rate(getattr(args, "false_alarms_per_hour", None))
    t = getattr(args, "threshold", None)
    if t is not None and not (math.isfinite(t) and -1.0 <= t <= 1.0):
        raise UsageError(f"--threshold must be a score between -1 and 1, got {t}")
    store = resolve_store(getattr(args, "store", None))
    if store.exists() and not store.is_dir():
        raise StoreError(f"{store}: is a file, not a keyword store folder (--store and $KWS_STORE name a folder)")
    for text in getattr(args, "keyword", None) or []:
        normalize(text)                # words that are no keyword at all; the rest before rendering


def _same_words(a: str, b: str) -> bool:
    from kws.enroll.phonemes import normalize

    try:
        return normalize(a) == normalize(b)
    except Exception:
        return False


def _from_store(ks, text: str, target: float, origins: List[str]):
    """The store's typed keyword of ``text`` (same words, false-alarm target and voices), as a
    keyword named ``text``; None where the store has none."""
    for k in ks or []:
        t = k.tuned_on.get("target_per_hour")
        if (k.source == "text" and k.text and _same_words(k.text, text) and isinstance(t, (int, float))
                and abs(float(t) - target) < 1e-9 and list(k.origins) == origins):
            return replace(k, name=text, tuned_on=dict(k.tuned_on))
    return None


def keywords_from_args(args, model, say=None) -> Tuple[object, List[str]]:
    """The keywords to detect (a KeywordSet) and where each came from: ``--keyword`` texts (from
    the store, typed before and cached, or made now: every text still to make is checked before
    the first one is rendered), else the store's, else the demo keywords."""
    from kws.enroll import kokoro
    from kws.enroll import thresholds as th
    from kws.enroll.build import cached_keyword, enroll_keyword, plan_keyword
    from kws.enroll.demo import demo_keywords
    from kws.enroll.store import KeywordSet, StoreError, resolve_store
    from kws.spot.templates import room_origin

    store = resolve_store(args.store)
    if args.keyword:
        stored = None
        if (store / "keywords.json").exists():
            try:
                stored = KeywordSet.load(store, model.model_id)
            except StoreError:
                stored = None           # --keyword texts do not need the store
        rate = args.false_alarms_per_hour
        target = th.DEFAULT_FA_PER_HOUR if rate is None else float(rate)
        origins = [f"kokoro:{r.voice}" for r in kokoro.default_renderings()]
        origins += [room_origin(o) for o in origins] * (model.rooms is not None)
        found: List = []
        for text in args.keyword:
            kw = _from_store(stored, text, target, origins)
            if kw is not None:
                found.append((kw, "from the store"))
                continue
            kw = cached_keyword(model, text, text, fa_per_hour=rate, pronounce_text=False)
            found.append((kw, "typed before") if kw is not None else (None, "made now"))
        for text, (kw, _) in zip(args.keyword, found):
            if kw is None:
                plan_keyword(text, None, rate)          # all refused before any rendering
        ks = KeywordSet(model.model_id)
        for text, (kw, where) in zip(args.keyword, found):
            if kw is None:
                kw = enroll_keyword(text, text=text, model=model, tune=False, fa_per_hour=rate, say=say)
            ks.add(kw)
        return ks, [w for _, w in found]
    ks = None
    if (store / "keywords.json").exists():
        ks = KeywordSet.load(store, model.model_id)
    if ks is None or not len(ks):
        print(f"(no keywords enrolled in {store}; using the demo keywords {', '.join(DEMO_KEYWORDS)}: "
              f"add your own with python -m kws enroll add \"...\" or --keyword)", file=sys.stderr)
        ks = demo_keywords(model)
        return ks, ["demo"] * len(ks)
    return ks, ["from the store"] * len(ks)


def detector_from_args(args, model, say=None):
    """A detector for --keyword texts, else the store's keywords, else the demo keywords; its
    thresholds learn the room (kws.spot.room) unless --no-adapt or --threshold, and what they learn
    is kept beside the store (room.json; room-demo.json for the demo keywords), not for texts."""
    return _detector(args, model, say, learn=True)[0]


def _detector(args, model, say, learn: bool):
    """(detector, where each keyword came from) for the detector options; ``learn``: thresholds
    learn the room where the options allow it."""
    from kws.enroll.kokoro import stderr_line
    from kws.enroll.store import resolve_store
    from kws.spot.detector import Detector, DetectorConfig
    from kws.spot.room import AdaptConfig, room_file

    check_detector_args(args)
    adapt = learn and not getattr(args, "no_adapt", False) and args.threshold is None
    cfg = DetectorConfig(vad=not args.no_vad, adapt=AdaptConfig(enabled=adapt))
    ks, where = keywords_from_args(args, model, say or stderr_line)
    if args.threshold is not None:
        for k in ks:
            k.threshold = float(args.threshold)
        where = [f"{w}; --threshold" for w in where]
    room = None
    if adapt and not args.keyword:
        room = room_file(resolve_store(args.store), demo=bool(where) and where[0] == "demo")
    return Detector(ks, model, cfg, room=room), where


def _check_files(files: List[str]) -> None:
    from kws.commands.enroll import check_audio_file

    for f in files:
        check_audio_file(f)


def describe(det, where: Optional[List[str]] = None, lead: str = "detecting") -> str:
    """One line naming the keywords and thresholds in use."""
    thr = det.thresholds
    parts = []
    for i, k in enumerate(det.keywords):
        w = f", {where[i]}" if where and i < len(where) else ""
        parts.append(f"{k.name!r} (threshold {thr[k.name]:.3f}{w})")
    return f"{lead} " + ", ".join(parts)


def run(args) -> int:
    from kws.audio.io import load_audio
    from kws.model.model import Model

    files = args.files or [str(sample_recording())]
    check_detector_args(args)
    _check_files(files)
    model = Model.load(args.model)
    # offline detection keeps the enrolled thresholds: a file's events do not depend on the files before it
    det, where = _detector(args, model, None, learn=False)
    ks = det.keywords
    print(describe(det, where), file=sys.stderr, flush=True)
    for f in files:
        events = det.detect(load_audio(f))
        for e in events:
            print(json.dumps({"file": f, **e.to_dict()}), flush=True)
        if not events:
            print(f"{f}: nothing heard ({len(ks)} keyword{'s' * (len(ks) != 1)}, none reached "
                  f"its threshold)", file=sys.stderr, flush=True)
    return 0
