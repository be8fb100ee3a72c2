"""python -m kws train CONFIG.json [key=value ...] [--resume] (or python -m kws.train): train the
encoders (kws.train; needs torch and the 'train' extra). How the shipped model was trained, with
the exact commands: docs/encoders.md."""
from __future__ import annotations

import argparse
import importlib.util

TRAIN_INSTALL = ("pip install 'kws[train]' torch==2.13.0  (from a checkout: pip install torch==2.13.0 "
                 "-e '.[train]')")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train the encoders (needs the 'train' extra)", description=__doc__)
    p.add_argument("config", help="JSON file of TrainConfig fields (configs/*.json)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("overrides", nargs=argparse.REMAINDER, metavar="key=value",
                   help="values (JSON) overriding the file's, e.g. schedule_minutes=14")
    p.set_defaults(run=run)


def need_train_extra(command: str) -> None:
    """train and export need torch and the other 'train' extras: say so instead of a traceback."""
    from kws.errors import MissingExtra

    if importlib.util.find_spec("torch") is None:
        raise MissingExtra(f"'{command}' needs torch and the train extra, not installed here:\n  {TRAIN_INSTALL}")


def run(args) -> int:
    from kws.errors import MissingExtra

    need_train_extra("train")
    try:
        from kws.train.__main__ import main
    except ModuleNotFoundError as exc:
        raise MissingExtra(f"'train' needs {exc.name!r} (part of the train extra):\n  {TRAIN_INSTALL}") from exc
    return main([args.config, *args.overrides] + (["--resume"] if args.resume else []))
