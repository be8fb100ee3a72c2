"""python -m kws train CONFIG.json [key=value ...]: train the head of the shipped model, the same as
python -m kws.train.head train CONFIG.json [key=value ...] (needs torch and the 'train' extra).

The recipe of the shipped model, each step from the checkout's root folder (docs/model.md and
docs/head.md have every step, with the data each one needs):

    python -m kws.train.head from-onnx FIRST/head.onnx --out /tmp/stage/init/first-head.pt
    python -m kws train configs/head-alike.json                     # checkpoints in /tmp/run
    python -m kws.train.head export /tmp/run/ft45-alike-lr5e-5/best.pt --out /tmp/head   # the head as ONNX
    python -m kws export /tmp/head --int8 --reuse-background --pad 0.6 --trim 2        # the model folder

(the first line: the weights it starts from, the first head's, read back from the head.onnx of
its model folder FIRST, model ``tpl-45d876c736cf`` (docs/history.md); the configuration's paths
are where scripts/head_scale.sh stages the data.)

python -m kws.train.head also stages the speech and the validation file the config names
(stage-speech, val-file).
"""
from __future__ import annotations

import argparse
import importlib.util

TRAIN_INSTALL = ("pip install 'kws[train]' torch==2.13.0  (from a checkout: pip install torch==2.13.0 "
                 "-e '.[train]')")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train the model's head (kws.train.head; needs the 'train' extra)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="JSON file of kws.train.config.TrainConfig fields (configs/head-scale.json)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="values (JSON) overriding the file's, e.g. minutes=3")
    p.set_defaults(run=run)


def run(args) -> int:
    from kws.errors import MissingExtra

    if importlib.util.find_spec("torch") is None:
        raise MissingExtra(f"'train' needs torch and the train extra, not installed here:\n  {TRAIN_INSTALL}")
    try:
        from kws.train.head import main
    except ModuleNotFoundError as exc:
        raise MissingExtra(f"'train' needs {exc.name!r} (part of the train extra):\n  {TRAIN_INSTALL}") from exc
    return main(["train", args.config, *args.overrides])
