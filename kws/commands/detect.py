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
    p.add_argument("--threshold", type=float, help="one threshold for all --keyword texts")
    store_argument(p)
    p.add_argument("--bundle", help="model bundle folder (default: shipped)")
    p.add_argument("--variant", choices=("int8", "fp32"), default="int8")
    p.add_argument("--hop", type=float, default=0.15, help="seconds between window batches")
    p.add_argument("--no-vad", action="store_true", help="run the encoder on silence too")


def detector_from_args(args, bundle):
    """A detector for --keyword texts, else the store's keywords, else the demo keywords."""
    from kws.detector import Detector, DetectorConfig
    from kws.keywords import KeywordSet, resolve_store

    cfg = DetectorConfig(variant=args.variant, vad=not args.no_vad, hop_s=args.hop)
    if args.keyword:
        return Detector.from_texts(args.keyword, threshold=args.threshold, bundle=bundle, config=cfg)
    store = resolve_store(args.store)
    if (store / "keywords.json").exists():
        ks = KeywordSet.load(store, bundle.model_id)
        if len(ks):
            return Detector(ks, bundle, cfg)
    print(f"(no keywords enrolled in {store}; using the demo keywords {', '.join(DEMO_KEYWORDS)}: "
          f"add your own with python -m kws enroll add \"...\" or --keyword)", file=sys.stderr)
    return Detector.from_texts(DEMO_KEYWORDS, threshold=args.threshold, bundle=bundle, config=cfg)


def run(args) -> int:
    from kws.audio import load_audio
    from kws.bundle import Bundle

    det = detector_from_args(args, Bundle.load(args.bundle, variant=args.variant))
    for f in args.files or [str(sample_recording())]:
        for e in det.detect(load_audio(f)):
            print(json.dumps({"file": f, **e.to_dict()}), flush=True)
    return 0
