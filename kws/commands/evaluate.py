"""python -m kws evaluate (or python -m kws.evaluate): the evaluation report of a model bundle on
real recordings (kws.evaluate); the tables of docs/evaluation.md come from it."""
from __future__ import annotations

import argparse
from pathlib import Path

from kws.commands import checkout_root

DESCRIPTION = """The evaluation report of a model bundle on the real recordings of --data (held-out half
'b' unless --half a): wake-word EERs (text and 3 examples; clean, noisy, reverberant), FSDD digits,
false alarms per hour on read speech, the detector streamed as deployed, spoken-term detection and
synthetic word discrimination. Writes report.json, report.md and det_wakewords.png to --out
(details: the docstring of kws.evaluate)."""


def add_parser(sub) -> None:
    ap = sub.add_parser("evaluate", help="evaluation report for a model bundle (needs real recordings)",
                        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", help="bundle folder (default: shipped)")
    ap.add_argument("--variant", choices=("int8", "fp32"), default="int8")
    ap.add_argument("--data", type=Path, default=None,
                    help="folder of real recordings (wakewords/, fsdd/, ...); default ../shared/data "
                         "beside a checkout, required for an installed kws")
    ap.add_argument("--out", type=Path, default=Path("eval-report"))
    ap.add_argument("--per-keyword", type=int, default=100, help="wake-word clips per keyword")
    ap.add_argument("--fsdd", type=int, default=300, help="FSDD clips")
    ap.add_argument("--background-s", type=float, default=5400.0,
                    help="seconds of held-out background speech (default: all there is, about 1.4 h)")
    ap.add_argument("--synthetic-words", type=int, default=150, help="IV and OOV words rendered by TTS (0: skip)")
    ap.add_argument("--std-utterances", type=int, default=300, help="speechocean762 utterances for STD (0: skip)")
    ap.add_argument("--std-queries", type=int, default=40, help="at most this many IV and OOV STD queries")
    ap.add_argument("--windows", default=None, help="detector window lengths in seconds, e.g. 0.3,0.6,0.9")
    ap.add_argument("--half", choices=("a", "b"), default="b",
                    help="real clips to test on: b = held-out (reported), a = tuning")
    ap.add_argument("--music", type=Path, help="an audio file of music for the 10 dB music row (the shipped "
                    "evaluation: python -m kws.corpus.stage music --deb warzone2100-music_4.3.3-3_all.deb "
                    "--out eval-music.ogg; never a file used in training)")
    ap.add_argument("--tts", action=argparse.BooleanOptionalAction, default=True,
                    help="typed keywords and text search queries joined by TTS renderings where an engine is "
                         "installed (as users get them)")
    ap.add_argument("--quiet", action="store_true")
    ap.set_defaults(run=run)


def run(args) -> int:
    from kws.audio import load_audio
    from kws.bundle import Bundle
    from kws.corpus.real import DEFAULT_DATA
    from kws.errors import UsageError
    from kws.evaluate import markdown, run as evaluate, save_report

    if args.data is None:
        if checkout_root() is None:
            raise UsageError("give --data DIR, the folder of real recordings (wakewords/, fsdd/, ...): "
                             "kws is installed as a package, not run from a checkout with ../shared/data "
                             "beside it")
        args.data = DEFAULT_DATA
    if not (args.data / "wakewords").is_dir():
        raise UsageError(f"no recordings at {args.data} (give --data ../shared/data)")
    bundle = Bundle.load(args.bundle, variant=args.variant)
    r = evaluate(bundle, args.data, args.per_keyword, args.fsdd, args.background_s, quiet=args.quiet,
                 synthetic_words=args.synthetic_words, std_utts=args.std_utterances,
                 std_queries=args.std_queries,
                 window_s=tuple(float(w) for w in args.windows.split(",")) if args.windows else None,
                 test_half=args.half, music=load_audio(args.music) if args.music else None, tts=args.tts)
    written = save_report(r, args.out)
    print(markdown(r))
    print(f"wrote {args.out}/" + ", ".join(written))
    return 0
