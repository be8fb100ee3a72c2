"""python -m kws.train CONFIG.json [--resume] [key=value ...]  (see kws.train.trainer)."""
from __future__ import annotations

import argparse
import json
import sys



def parse_overrides(pairs):
    out = {}
    for p in pairs:
        if "=" not in p:
            raise SystemExit(f"override {p!r} is not key=value")
        k, v = p.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kws.train", description=__doc__)
    ap.add_argument("config", help="JSON file of TrainConfig fields")
    ap.add_argument("overrides", nargs="*", help="key=value (JSON values) overriding the file")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    args = ap.parse_intermixed_args(argv)   # --resume may come before or after key=value
    with open(args.config) as fh:
        d = json.load(fh)
    d.update(parse_overrides(args.overrides))
    if d.get("frontend", "logmel") == "logmel":
        from kws.train.trainer import TrainConfig, train
    else:
        from kws.train.backbone_trainer import BackboneTrainConfig as TrainConfig, train
    cfg = TrainConfig.from_dict(d)
    metrics = train(cfg, resume=args.resume)
    print(json.dumps({"final": metrics}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
