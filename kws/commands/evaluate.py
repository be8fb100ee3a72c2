"""python -m kws evaluate (or python -m kws.evaluate): the evaluation report of a model on
real recordings (kws.evaluate); the tables of docs/evaluation.md come from it."""
from __future__ import annotations

import argparse
from pathlib import Path

from kws.commands import checkout_root

DESCRIPTION = """The evaluation report of one or more models on the real recordings of --data (held-out
half 'b' unless --half a), side by side: wake words typed, from 3 recordings and both (EER and
missed at 1 false alarm an hour; clean, in noise, babble, crowd, music, reverberant), the default
thresholds' realised false-alarm rates and recall, FSDD digits, and the detector streamed as
deployed (spoken-term search is measured by benchmarks/search_archive.py std). Writes report.json, report.md and det_wakewords.png to --out (details:
the docstring of kws.evaluate)."""


def add_parser(sub) -> None:
    ap = sub.add_parser("evaluate", help="evaluation report for models (needs real recordings)",
                        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="model folder (repeat to compare; default: shipped)")
    ap.add_argument("--data", type=Path, default=None,
                    help="folder of real recordings (wakewords/, fsdd/, ...); default ../shared/data "
                         "beside a checkout, required for an installed kws")
    ap.add_argument("--out", type=Path, default=Path("eval-report"))
    ap.add_argument("--per-keyword", type=int, default=100, help="wake-word clips per keyword")
    ap.add_argument("--fsdd", type=int, default=300, help="FSDD clips")
    ap.add_argument("--background-s", type=float, default=5400.0,
                    help="seconds of held-out background speech (default: all there is, about 1.1 h of vectors)")
    ap.add_argument("--no-stream", action="store_true", help="skip the streamed run")
    ap.add_argument("--half", choices=("a", "b"), default="b",
                    help="real clips to test on: b = held-out (reported), a = tuning")
    ap.add_argument("--music", type=Path, help="an audio file of music for the 10 dB music row (the shipped "
                    "evaluation: python -m kws.corpus.stage music --deb warzone2100-music_4.3.3-3_all.deb "
                    "--out eval-music.ogg; never a file used in training)")
    ap.add_argument("--fire", choices=("crossing", "peak"), default="crossing",
                    help="when the streamed detector fires: as its score reaches the threshold (the "
                         "default, as kws listens) or at the score's peak")
    ap.add_argument("--quiet", action="store_true")
    ap.set_defaults(run=run)


def run(args) -> int:
    from kws.audio.io import load_audio
    from kws.corpus.real import DEFAULT_DATA
    from kws.errors import UsageError
    from kws.evaluate import markdown, run as evaluate, save_report
    from kws.model.model import Model

    if args.data is None:
        if checkout_root() is None:
            raise UsageError("give --data DIR, the folder of real recordings (wakewords/, fsdd/, ...): "
                             "kws is installed as a package, not run from a checkout with ../shared/data "
                             "beside it")
        args.data = DEFAULT_DATA
    if not (args.data / "wakewords").is_dir():
        raise UsageError(f"no recordings at {args.data} (give --data ../shared/data)")
    models = [Model.load(m) for m in (args.model or [None])]
    r = evaluate(models, args.data, args.per_keyword, args.fsdd, args.background_s, quiet=args.quiet,
                 test_half=args.half,
                 music=load_audio(args.music) if args.music else None, stream=not args.no_stream,
                 fire=args.fire)
    written = save_report(r, args.out)
    print(markdown(r))
    print(f"wrote {args.out}/" + ", ".join(written))
    return 0
