"""python -m kws detect FILE...: offline detection in recordings, one JSON line per detection.

Also the detector options listen and serve share (:func:`detector_arguments`)."""
from __future__ import annotations

import argparse
import json
import sys

from kws.commands import store_argument
from kws.demo import DEMO_KEYWORDS, sample_recording


def add_parser(sub) -> None:
    p = sub.add_parser("detect", help="offline detection in files, JSON lines",
                       description="Offline detection in recordings: one JSON line per detection "
                                   "(file, keyword, score, threshold, start, end).")
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


def detector_from_args(args, model):
    """A detector for --keyword texts, else the store's keywords, else the demo keywords."""
    from kws.demo import demo_keywords
    from kws.detector import Detector, DetectorConfig
    from kws.keywords import KeywordSet, resolve_store

    cfg = DetectorConfig(vad=not args.no_vad)
    if args.keyword:
        return Detector.from_texts(args.keyword, threshold=args.threshold, model=model, config=cfg,
                                   fa_per_hour=args.false_alarms_per_hour)
    store = resolve_store(args.store)
    ks = None
    if (store / "keywords.json").exists():
        ks = KeywordSet.load(store, model.model_id)
    if ks is None or not len(ks):
        print(f"(no keywords enrolled in {store}; using the demo keywords {', '.join(DEMO_KEYWORDS)}: "
              f"add your own with python -m kws enroll add \"...\" or --keyword)", file=sys.stderr)
        ks = demo_keywords(model)
    if args.threshold is not None:
        for k in ks:
            k.threshold = float(args.threshold)
    return Detector(ks, model, cfg)


def run(args) -> int:
    from kws.audio import load_audio
    from kws.model import Model

    det = detector_from_args(args, Model.load(args.model))
    for f in args.files or [str(sample_recording())]:
        for e in det.detect(load_audio(f)):
            print(json.dumps({"file": f, **e.to_dict()}), flush=True)
    return 0
