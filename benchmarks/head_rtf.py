"""What a head adds to the detector's cost: the head and the template matcher per 80 ms vector.

    taskset -c 1 python benchmarks/head_rtf.py --head kws/assets/model [--keywords 10] [--seconds 60]

Streams ``--seconds`` of front-end vectors (random: the cost does not depend on the values) one
at a time, as the detector gets them, through the head (kws.model.head.Head, one onnxruntime thread) and a
kws.spot.templates.Matcher holding ``--keywords`` keywords of 28 templates of 14 vectors each, and
prints the real-time factor (seconds of compute per second of audio, the best of ``--repeats``) of
the raw matcher, of the matcher alone at the head's dimension, and of the head plus its matcher,
fp32 and int8. The front end itself (kws.model.backbone) is not included.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from kws.model.head import Head, Identity
from kws.spot.templates import Matcher, TemplateBank
from kws.train.head_eval import head_graphs


def rtf(head, dim: int, keywords: int, seconds: float, seed: int = 0, feed_dim: int = 96) -> float:
    rng = np.random.default_rng(seed)
    n = int(seconds / 0.08)
    vectors = rng.normal(size=(n, feed_dim)).astype(np.float32)
    bank = TemplateBank.build([[rng.normal(size=(14, dim)).astype(np.float32) for _ in range(28)]
                               for _ in range(keywords)])
    m = Matcher(bank)
    s = head.stream()
    for i in range(20):                       # warm-up
        m.push(s.push(vectors[i:i + 1]))
    m.reset()
    s.reset()
    t = time.perf_counter()
    for i in range(n):
        m.push(s.push(vectors[i:i + 1]))
    return (time.perf_counter() - t) / (n * 0.08)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--head", type=Path, required=True, help="a model folder (manifest.json with a head) or a head export folder (head.json)")
    ap.add_argument("--keywords", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    ctx, dim, graphs = head_graphs(args.head)
    out = {}
    for rep in range(args.repeats):                  # the best of the repeats: least disturbed
        res = {"raw matcher (96-d)": rtf(Identity(), 96, args.keywords, args.seconds),
               f"matcher alone ({dim}-d)": rtf(Identity(), dim, args.keywords, args.seconds, feed_dim=dim)}
        for name, f in graphs.items():
            if f.exists():
                res[f"head {name} + matcher"] = rtf(Head(f, ctx, threads=1), dim, args.keywords, args.seconds)
        for k, v in res.items():
            out[k] = min(out.get(k, v), v)
    for k, v in out.items():
        print(f"{k}: RTF {v:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
