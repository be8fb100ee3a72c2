"""What the background bank's coding costs in thresholds: the 43 typed keywords of
benchmarks/room_thresholds.py, each keyword's threshold for 1 false alarm an hour from the bank
coded several ways, against the same bank in float32.

    python benchmarks/bank_coding.py [--raw runs/bank-raw.npz] [--cache runs/room-keywords]

The float32 bank is the model's head applied to the bank's raw front-end vectors (``--raw``, kept
by ``python -m export.model``), each segment from its start, as export.model builds it. Codings:
the shipped one (kws.enroll.background: 4 bits a value, a float16 step a vector), the same 4 bits
on the first 64 principal components (fitted on 100,000 of the bank's vectors), and 2 bits a
value. Printed per coding: bytes a vector, and the thresholds' difference from the float32 bank's
(mean, mean absolute, largest absolute).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from export.model import bank_vectors, load_raw  # noqa: E402
from kws.enroll.background import Background, decode, encode, unit_rows  # noqa: E402
from kws.enroll.store import KeywordSet  # noqa: E402
from kws.enroll.thresholds import fit_tail, keyword_peaks  # noqa: E402
from kws.model.model import Model  # noqa: E402
from kws.spot.templates import TemplateBank, keyword_templates  # noqa: E402


def four_bits(v: np.ndarray) -> np.ndarray:
    return unit_rows(decode(*encode(v)))


def two_bits(v: np.ndarray) -> np.ndarray:
    s = np.maximum(np.abs(v).max(axis=1, keepdims=True), 1e-8) / 1.5
    q = np.clip(np.round(v / s + 1.5), 0, 3)
    return unit_rows(((q - 1.5) * s).astype(np.float32))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw", type=Path, default=Path("runs/bank-raw.npz"))
    ap.add_argument("--cache", type=Path, default=Path("runs/room-keywords"),
                    help="the keyword store of benchmarks/room_thresholds.py")
    ap.add_argument("--components", type=int, default=64)
    args = ap.parse_args()
    model = Model.load()
    raw, counts, kinds = load_raw(args.raw)
    counts, kinds = np.array(counts, np.int64), tuple(kinds)
    vec = bank_vectors(raw, counts, model.head).astype(np.float32)
    hours = float(counts.sum()) * 0.08 / 3600
    ks = KeywordSet.load(args.cache, model.model_id)
    banks = [TemplateBank.build([keyword_templates(model, ks[n])]) for n in ks.names]
    rng = np.random.default_rng(0)
    sample = vec[rng.choice(len(vec), min(100_000, len(vec)), replace=False)].astype(np.float64)
    _, basis = np.linalg.eigh(sample.T @ sample)
    P = basis[:, ::-1][:, : args.components].astype(np.float32)
    codings = {
        "float32": (4 * vec.shape[1], lambda v: v),
        "4 bits a value (shipped)": (vec.shape[1] // 2 + 2, four_bits),
        f"4 bits, first {args.components} principal components": (args.components // 2 + 2,
                                                                   lambda v: unit_rows(decode(*encode(v @ P)) @ P.T)),
        "2 bits a value": (vec.shape[1] // 4 + 2, two_bits),
    }
    print(f"model {model.model_id}; {len(banks)} keywords; bank {hours:.2f} h, {len(vec)} vectors")
    ref = None
    for name, (size, code) in codings.items():
        t0 = time.time()
        bg = Background(code(vec), counts, kinds, hours)
        th = np.array([fit_tail(keyword_peaks(b, bg)[0], hours).threshold(1.0) for b in banks])
        ref = th if ref is None else ref
        d = th - ref
        print(f"{name:40s} {size:4d} B a vector   threshold - float32's: mean {d.mean():+.4f}  "
              f"mean |d| {np.abs(d).mean():.4f}  largest |d| {np.abs(d).max():.4f}   ({time.time() - t0:.0f} s)",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
