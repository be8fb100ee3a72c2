"""python -m kws serve: the Wyoming wake-word server for Home Assistant (kws.serve; needs the
'serve' extra). Setting it up in Home Assistant: docs/home-assistant.md."""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from kws.commands.detect import detector_arguments


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="Wyoming wake-word server for Home Assistant (needs the 'serve' extra)",
                       description="Wyoming wake-word server: serves the store's keywords (re-read when "
                                   "they change) to Home Assistant or any Wyoming client.")
    detector_arguments(p)
    p.add_argument("--uri", default="tcp://127.0.0.1:10400",
                   help="tcp://HOST:PORT or unix://PATH (default: this machine only)")
    p.add_argument("--max-clients", type=int, help="connections served at once (default 128)")
    p.add_argument("--idle-timeout", type=float, help="drop a client silent this many seconds (default 60)")
    p.add_argument("--workers", type=int, help="detector threads (default: one per CPU core)")
    p.add_argument("--debug", action="store_true", help="log every connection's events")
    p.set_defaults(run=run, interrupted="stopped")


def run(args) -> int:
    from kws.serve.config import ServeConfig
    from kws.serve.framing import require_wyoming
    from kws.spot.detector import DetectorConfig
    from kws.spot.room import AdaptConfig

    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    require_wyoming()
    defaults = ServeConfig()
    cfg = ServeConfig(
        uri=args.uri, store=Path(args.store) if args.store else None, texts=tuple(args.keyword or ()),
        threshold=args.threshold, fa_per_hour=args.false_alarms_per_hour,
        model=Path(args.model) if args.model else None,
        detector=DetectorConfig(vad=not args.no_vad, adapt=AdaptConfig(enabled=not args.no_adapt)),
        max_clients=args.max_clients or defaults.max_clients,
        idle_timeout_s=args.idle_timeout or defaults.idle_timeout_s,
        workers=args.workers or defaults.workers)
    from kws.serve.server import serve

    try:
        serve(cfg)
    except OSError as exc:         # address in use, permission denied, ...
        print(f"error: cannot listen on {cfg.uri}: {exc}", file=sys.stderr)
        return 2
    return 0
