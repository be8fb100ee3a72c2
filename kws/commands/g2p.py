"""python -m kws g2p build (or python -m kws.enroll.g2p build): refit the fallback G2P table that
pronounces words CMUdict lacks (kws.enroll.g2p), and print its held-out phoneme error rate."""
from __future__ import annotations

import json
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("g2p", help="refit the fallback G2P on CMUdict (development)",
                       description=__doc__)
    cmds = p.add_subparsers(dest="g2p_command", metavar="{build}", required=True)
    b = cmds.add_parser("build", help="fit the fallback G2P on CMUdict and report held-out PER",
                        description="Fit the letter-context table on CMUdict minus a held-out share, "
                                    "write it, print the held-out phoneme and word error rates.")
    b.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "assets" / "g2p.json.gz"),
                   help="where to write the table (default: the one kws ships, kws/assets/g2p.json.gz)")
    b.add_argument("--holdout", type=float, default=0.02, help="share of CMUdict words held out")
    b.add_argument("--seed", type=int, default=0)
    b.set_defaults(run=run)


def run(args) -> int:
    from kws.enroll.g2p import build

    print(json.dumps(build(args.out, args.holdout, args.seed), indent=2))
    return 0
