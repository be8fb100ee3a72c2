"""python -m kws export HEAD [OPTION ...]: the model folder (front end, head, background bank,
manifest) from a head exported by python -m kws.train.head export; the same as
python -m export.model --head HEAD [OPTION ...] (export/model.py: --out DIR, default the shipped
kws/assets/model; --data DIR, --music FILE for the background bank; --int8, --reuse-background,
...). How the shipped model was made: docs/model.md; the whole recipe: python -m kws train --help.

export/ is part of the source checkout, not of the installed package: run this from the
checkout's root folder.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
from pathlib import Path

from kws.commands import checkout_root


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="an exported head -> the model folder (needs a checkout)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("head", help="folder of the head's ONNX graph and head.json (python -m kws.train.head export)")
    p.add_argument("options", nargs=argparse.REMAINDER, metavar="OPTION",
                   help="options of python -m export.model (its --help lists them)")
    p.set_defaults(run=run)


def run(args) -> int:
    from kws.errors import UsageError

    model = _export_module("model")
    if not (Path(args.head) / "head.json").is_file():
        raise UsageError(f"{args.head}: no head.json here; give the folder python -m kws.train.head export "
                         f"wrote (its --out)")
    return model.main(["--head", args.head, *args.options])


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
        raise MissingExtra(f"'export' needs {exc.name!r}: pip install -e '.[train]'") from exc
