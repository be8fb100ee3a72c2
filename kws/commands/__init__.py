"""The command line, every command in one argparse tree: ``python -m kws COMMAND ...`` (also the
``kws`` console script).

Each command is a module of this package with ``add_parser(subparsers)``, which adds the command's
subparser and sets its ``run`` function. ``python -m kws.enroll`` and ``python -m kws.evaluate``
run the same commands as ``python -m kws enroll`` and ``python -m kws evaluate`` (:func:`run_as`).

``--store DIR`` may come right after ``python -m kws`` or after a command that uses the keyword
store (listen, detect, serve, web, enroll). Errors a user can meet (:class:`~kws.errors.KwsError`)
print one line, ``error: ...``, and exit with status 2; Ctrl-C exits with 130.
"""
from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module
from pathlib import Path
from typing import List, Optional

COMMANDS = ("listen", "detect", "serve", "web", "enroll", "search", "evaluate", "train", "export", "g2p")
DESCRIPTION = ("Open-vocabulary keyword spotting: type a word, the device listens for it. --store DIR "
               "may come right after 'python -m kws' or after listen, detect, serve, web or enroll.")


def build_parser(prog: str = "python -m kws") -> argparse.ArgumentParser:
    """The whole command tree."""
    ap = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    ap.add_argument("--store", default=None, help="keyword store folder, for listen, detect, serve, web and enroll "
                    "(default: $KWS_STORE, else the user data folder)")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        import_module(f"kws.commands.{name}").add_parser(sub)
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command line (``argv`` without the program name); returns the exit status."""
    from kws.audio.io import plain_warnings
    from kws.errors import KwsError

    check_package()
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.command is None:
        ap.print_help()
        return 0
    if args.store is not None and not getattr(args, "uses_store", False):
        ap.error(f"--store goes with listen, detect, serve, web or enroll, not {args.command}")
    try:
        with plain_warnings():
            status = args.run(args)
        sys.stdout.flush()                  # a reader gone away shows here, not at exit
        return status
    except (KwsError, ValueError, OSError) as exc:
        if isinstance(exc, BrokenPipeError):
            return _closed_pipe()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(getattr(args, "interrupted", "interrupted"), file=sys.stderr)
        return 130


def run_as(command: str, argv: Optional[List[str]] = None) -> int:
    """``python -m kws.<command> ARGS`` is ``python -m kws <command> ARGS``."""
    return main([command, *(sys.argv[1:] if argv is None else argv)])


def _closed_pipe() -> int:
    """The reader of stdout went away (``... | head``): stop quietly, like other shell tools."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())     # so that the flush at exit does not fail again
    return 1


def check_package() -> None:
    """Refuse, with the reason, to run where a folder named ``kws`` in the current directory hides
    the installed package (e.g. the parent folder of a checkout named ``kws`` with an editable
    install: Python imports that folder as an empty namespace package, whose assets are missing)."""
    pkg = sys.modules.get("kws")
    if pkg is not None and getattr(pkg, "__file__", None) is None:
        where = ", ".join(str(p) for p in getattr(pkg, "__path__", []))
        print(f"error: the folder {where} is imported as the kws package in place of the installed "
              f"one (it has no __init__.py: a checkout's root, seen from its parent folder). Run kws "
              f"from another folder, e.g. cd {where}", file=sys.stderr)
        raise SystemExit(2)


def checkout_root() -> Optional[Path]:
    """The source checkout kws runs from (the folder with setup.cfg beside kws/), or None when kws
    is an installed package."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "setup.cfg").is_file() and (root / "kws" / "__init__.py").is_file() else None


def store_argument(p: argparse.ArgumentParser) -> None:
    """``--store`` on a command (no default here, so that a value given before the command stays)
    and the mark that lets ``--store`` come before it."""
    p.add_argument("--store", default=argparse.SUPPRESS,
                   help="keyword store folder (default: $KWS_STORE, else the user data folder)")
    p.set_defaults(uses_store=True)
