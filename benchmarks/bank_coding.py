"""What the background bank's coding costs in thresholds: the 43 typed keywords of
benchmarks/room_thresholds.py, each keyword's threshold for 1 false alarm an hour from the bank
coded several ways, against the same bank in float32.

    python benchmarks/bank_coding.py [--raw runs/bank-raw.npz] [--cache runs/room-keywords]
    OPENBLAS_NUM_THREADS=1 taskset -c 1 python benchmarks/bank_coding.py      # CPU seconds of one core

The float32 bank is the model's head applied to the bank's raw front-end vectors (``--raw``, kept
by ``python -m export.model``), each segment from its start, as export.model builds it. Codings:

- ``pca-uniform`` (kws.enroll.background.save, what export.model writes): each vector's
  coordinates along the bank's principal directions rounded to one step for all (``--steps``),
  int8, a component's codes together, deflated by np.savez_compressed; decoded as ``mean + basis
  @ codes * step``, not made unit length again. The step the format uses, renormalised too;
- ``int4`` (the format before: 4 bits a value, a float16 step a vector, unit length again), and
  the same codes not renormalised;
- 4 bits on the first 64 principal components (a float16 step a vector, unit length again);
- fixed bits a component by its variance (reverse water filling: the greedy allocation of
  ``--bits`` bits a vector, at most 8 a component; each component's uniform quantiser with the
  step that suits a Gaussian of its variance at those bits, mid-rise), not renormalised;
- 2 bits a value (a float16 step a vector, unit length again).

Printed per coding: bytes a vector as stored and after np.savez_compressed (of the arrays the
coding would store, the bank's segments and kinds with them: MB is the file's size), the
thresholds' difference from the float32 bank's (mean, mean absolute, largest absolute), and the
CPU seconds the 43 thresholds took from the decoded vectors and, for the two formats, from the bank
as kws.enroll.background.load holds it (``coded``: decoded run by run for every keyword, as
enrollment does), those thresholds checked equal to the decoded vectors'.
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from export.model import bank_vectors, load_raw  # noqa: E402
from kws.enroll.background import (STEP, Background, ComponentCodes, Int4Codes, decode,  # noqa: E402
                                   decode_components, encode, encode_components, principal_components,
                                   unit_rows)
from kws.enroll.store import KeywordSet  # noqa: E402
from kws.enroll.thresholds import fit_tail, keyword_peaks  # noqa: E402
from kws.model.model import Model  # noqa: E402
from kws.spot.templates import TemplateBank, keyword_templates  # noqa: E402


def gaussian_steps(max_bits: int = 8):
    """The step (in standard deviations) of the mid-rise uniform quantiser of 2**b levels with the
    least mean squared error on a Gaussian, and that error, for b = 1..max_bits (numerically)."""
    x = np.linspace(-9, 9, 180_001)
    w = np.exp(-x * x / 2)
    w /= w.sum()
    steps, mse = [], []
    for b in range(1, max_bits + 1):
        half = 2 ** (b - 1)
        grid = np.linspace(0.01, 4.0 / half, 400) * 2.0

        def err(d):
            q = np.clip(np.floor(x / d), -half, half - 1) + 0.5
            return float(np.sum(w * (x - q * d) ** 2))
        d = min(grid, key=err)
        for _ in range(3):                                     # refine around the best
            grid = np.linspace(d * 0.97, d * 1.03, 61)
            d = min(grid, key=err)
        steps.append(d)
        mse.append(err(d))
    return tuple(steps), tuple(mse)


def stored(**arrays) -> int:
    """Bytes of np.savez_compressed of ``arrays``."""
    b = io.BytesIO()
    np.savez_compressed(b, **arrays)
    return b.tell()


def pca_uniform(vec: np.ndarray, step: float):
    codes, mean, basis = encode_components(vec, step)
    dec = decode_components(codes, mean, basis, float(np.float32(step)))
    arrays = dict(codes=codes, mean=mean, basis=basis, step=np.float32(step))
    return dec, arrays, codes.shape[0], ComponentCodes(codes, mean, basis, float(np.float32(step)))


def int4(vec: np.ndarray, renormalise: bool):
    codes, scales = encode(vec)
    dec = decode(codes, scales)
    return (unit_rows(dec) if renormalise else dec), dict(codes=codes, scales=scales), codes.shape[1] + 2, \
        Int4Codes(codes, scales) if renormalise else None


def pca_int4(vec: np.ndarray, k: int):
    mean, basis = principal_components(vec)
    p = basis[:, :k]
    codes, scales = encode((vec - mean) @ p)
    return unit_rows(decode(codes, scales) @ p.T + mean), dict(codes=codes, scales=scales, mean=mean, basis=p), \
        k // 2 + 2, None


def bits_by_variance(vec: np.ndarray, total: int):
    """Greedy reverse water filling of ``total`` bits over the principal components."""
    mean, basis = principal_components(vec)
    y = (vec - mean) @ basis
    var = y.var(axis=0).astype(np.float64)
    gauss_step, gauss_mse = gaussian_steps()
    bits = np.zeros(var.size, np.int64)
    for _ in range(total):
        d = np.array([var[k] * ((1.0 if b == 0 else gauss_mse[b - 1]) - gauss_mse[b]) if b < 8 else -1.0
                      for k, b in enumerate(bits)])
        bits[int(np.argmax(d))] += 1
    keep = np.nonzero(bits)[0]
    dec = np.zeros((vec.shape[0], keep.size), np.float32)
    planes = []
    for j, k in enumerate(keep):
        b = int(bits[k])
        step = gauss_step[b - 1] * np.sqrt(var[k])
        q = np.clip(np.floor(y[:, k] / step) + 2 ** (b - 1), 0, 2 ** b - 1)
        dec[:, j] = (q - 2 ** (b - 1) + 0.5) * step
        planes += [((q.astype(np.int64) >> i) & 1).astype(np.uint8) for i in range(b)]
    packed = np.packbits(np.stack(planes, axis=1), axis=1)               # (N, total / 8) bytes
    counts = np.bincount(bits, minlength=9)
    label = "/".join(f"{counts[b]}x{b}" for b in range(8, -1, -1) if counts[b])
    return dec @ basis[:, keep].T + mean, dict(codes=packed, bits=bits, mean=mean, basis=basis[:, keep]), \
        packed.shape[1], None, label


def two_bits(vec: np.ndarray):
    s = np.maximum(np.abs(vec).max(axis=1, keepdims=True), 1e-8) / 1.5
    q = np.clip(np.round(vec / s + 1.5), 0, 3).astype(np.uint8)
    packed = q[:, 0::4] | (q[:, 1::4] << 2) | (q[:, 2::4] << 4) | (q[:, 3::4] << 6)
    return unit_rows(((q - 1.5) * s).astype(np.float32)), dict(codes=packed, scales=s[:, 0].astype(np.float16)), \
        vec.shape[1] // 4 + 2, None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw", type=Path, default=Path("runs/bank-raw.npz"))
    ap.add_argument("--cache", type=Path, default=Path("runs/room-keywords"),
                    help="the keyword store of benchmarks/room_thresholds.py")
    ap.add_argument("--steps", default="0.05,0.06,0.07,0.08", help="pca-uniform steps to try")
    ap.add_argument("--bits", type=int, default=256, help="bits a vector of the coding by variance")
    args = ap.parse_args()
    model = Model.load()
    raw, counts, kinds = load_raw(args.raw)
    counts, kinds = np.array(counts, np.int64), tuple(kinds)
    vec = bank_vectors(raw, counts, model.head).astype(np.float32)
    del raw
    hours = float(counts.sum()) * 0.08 / 3600
    ks = KeywordSet.load(args.cache, model.model_id)
    banks = [TemplateBank.build([keyword_templates(model, ks[n])], soft_max=model.soft_max) for n in ks.names]
    both = dict(segments=counts, kinds=np.array(list(kinds)))
    steps = [float(s) for s in args.steps.split(",")]

    def by_variance():
        dec, arrays, size, codes, label = bits_by_variance(vec, args.bits)
        print(f"  ({args.bits} bits by variance: components x bits {label})")
        return dec, arrays, size, codes

    codings = {"float32": lambda: (vec, dict(vectors=vec), 4 * vec.shape[1], None)}
    for s in steps:
        codings[f"pca-uniform, step {s:g}" + (" (save)" if s == STEP else "")] = lambda s=s: pca_uniform(vec, s)
    codings[f"pca-uniform, step {STEP:g}, renormalised"] = \
        lambda: (lambda r: (unit_rows(r[0]), r[1], r[2], None))(pca_uniform(vec, STEP))
    codings["int4 (the format before)"] = lambda: int4(vec, True)
    codings["int4, not renormalised"] = lambda: int4(vec, False)
    codings["4 bits, first 64 principal components"] = lambda: pca_int4(vec, 64)
    codings[f"{args.bits} bits by variance (fixed widths)"] = by_variance
    codings["2 bits a value"] = lambda: two_bits(vec)

    print(f"model {model.model_id}; {len(banks)} keywords; bank {hours:.2f} h, {len(vec)} vectors")
    print("threshold - float32's: mean, mean |d|, max |d| over the keywords; CPU seconds for the 43 thresholds "
          "from the decoded vectors, and (coded) from the bank as kws.enroll.background.load holds it")
    print(f"{'coding':44s} {'B/vec':>6s} {'deflated':>8s} {'MB':>6s}  {'mean':>7s} {'mean|d|':>7s} {'max|d|':>7s}"
          f"  {'CPU s':>5s} {'coded':>5s}")
    ref = None
    for name, make in codings.items():
        dec, arrays, size, coded = make()
        mb = stored(**arrays, **both)
        t0 = time.process_time()
        bg = Background(dec, counts, kinds, hours)
        th = np.array([fit_tail(keyword_peaks(b, bg)[0], hours).threshold(1.0) for b in banks])
        took = time.process_time() - t0
        ref = th if ref is None else ref
        d = th - ref
        coded_s = ""
        if coded is not None:
            t0 = time.process_time()
            cb = Background.coded(coded, counts, kinds, hours)
            tc = np.array([fit_tail(keyword_peaks(b, cb)[0], hours).threshold(1.0) for b in banks])
            coded_s = f"{time.process_time() - t0:5.0f}"
            assert np.allclose(tc, th, rtol=0, atol=1e-6), (name, np.abs(tc - th).max())
        print(f"{name:44s} {size:6d} {mb / len(vec):8.1f} {mb / 1e6:6.2f}  {d.mean():+7.4f} {np.abs(d).mean():7.4f} "
              f"{np.abs(d).max():7.4f}  {took:5.0f} {coded_s:>5s}", flush=True)
        del dec, arrays, bg
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
