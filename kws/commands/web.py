"""python -m kws web: a local page for the store's keywords (kws.web.server). Enroll by typing or
recording, rename, remove; listen on the microphone (or play a file) with the detector running in
the page, and watch every keyword's score against its threshold. docs/web.md."""
from __future__ import annotations

import argparse
import sys

from kws.commands import store_argument


def add_parser(sub) -> None:
    p = sub.add_parser("web", help="the keywords in the browser: enroll, watch live scores, detect in the page",
                       description="Serve a local page that lists, adds, renames and removes the store's "
                                   "keywords, and runs the detector inside the page on the microphone "
                                   "or a file (docs/web.md).")
    store_argument(p)
    p.add_argument("--model", help="model folder (default: the shipped one)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--verbose", action="store_true", help="log every request")
    # typed keywords rendered in these Kokoro voices only (tests; fewer voices match less well)
    p.add_argument("--voices", help=argparse.SUPPRESS)
    p.set_defaults(run=run, interrupted="stopped")


def run(args) -> int:
    from kws.enroll.store import resolve_store
    from kws.model.model import Model
    from kws.web.server import main_loop, make_server

    model = Model.load(args.model)
    store = resolve_store(args.store)
    voices = [v for v in args.voices.split(",") if v] if args.voices else None
    try:
        server = make_server(store, model, args.host, args.port, voices=voices, verbose=args.verbose)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"kws web: {server.url}  (keywords in {store}; Ctrl-C stops)", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}: other machines can reach the page and edit the store",
              file=sys.stderr)
    if args.open:
        import webbrowser

        webbrowser.open(server.url)
    main_loop(server)
    return 0
