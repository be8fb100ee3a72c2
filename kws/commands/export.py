"""python -m kws export CHECKPOINT --out DIR [--data DIR] [--model-version V] [--backbone DIR]:
a trained v1.1-style encoder checkpoint to an encoder bundle (export/build_bundle.py: ONNX fp32 + int8, background bank,
manifest, parity checks). The shipped keyword-spotting model is built by python -m export.model
(docs/model.md); the shipped encoder bundle (search windows, docs/encoders.md) is kws/assets/encoders.

export/ is part of the source checkout, not of the installed package: run this from the
checkout's root folder, with the 'train' extra installed.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
from pathlib import Path

from kws.commands import checkout_root
from kws.commands.train import TRAIN_INSTALL, need_train_extra


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="encoder checkpoint -> encoder bundle (needs a checkout and the 'train' extra)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="model.pt (weights-only checkpoint from kws.train)")
    p.add_argument("options", nargs=argparse.REMAINDER, metavar="OPTION",
                   help="options of export/build_bundle.py: --out DIR (required), "
                        "--data DIR, --model-version V, --backbone DIR")
    p.set_defaults(run=run)


def run(args) -> int:
    need_train_extra("export")
    build_bundle = _export_module("build_bundle")
    return build_bundle.main([args.checkpoint, *args.options])


def _export_module(name: str):
    """``export.<name>`` of the checkout kws runs from, or a KwsError that says where to run."""
    from kws.errors import KwsError, MissingExtra

    root = checkout_root()
    spec = importlib.util.find_spec("export")
    ours = root is not None and spec is not None and spec.origin is not None \
        and Path(spec.origin).resolve().parent == root / "export"
    if not ours:
        if root is None:
            raise KwsError("'export' needs the kws source checkout (export/ is not part of the installed "
                           "package): clone the repository, install it with pip install -e '.[train]' "
                           "and run python -m kws export from the checkout's root folder")
        raise KwsError(f"'export' runs from the checkout's root folder, where export/ is: cd {root} "
                       f"and run python -m kws export again")
    try:
        return importlib.import_module(f"export.{name}")
    except ModuleNotFoundError as exc:
        raise MissingExtra(f"'export' needs {exc.name!r} (part of the train extra):\n  {TRAIN_INSTALL}") from exc
