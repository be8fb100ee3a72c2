"""Do thresholds set for a false-alarm rate give that rate on other audio?

    python benchmarks/threshold_calibration.py --data ../shared/data

Typed keywords (words of the held-out OOV list, rendered by a few Kokoro voices) get thresholds
from one half of the model's background bank (its segments alternately split, each kind in both
halves) by several estimators of the score tail (kws.enroll.thresholds), and the false alarms those
thresholds give are counted on the other half, and on read speech the bank never held (the test
half of the speechocean762 speakers, as `python -m kws evaluate` uses). Target: 1 an hour.
Estimators: the exponential tail over the top m peaks (the shipped one is m = TAIL_PEAKS), and the
plain k-th highest peak (k = rate x hours).
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kws.corpus.real import DEFAULT_DATA, read_speech  # noqa: E402
from kws.corpus.vocab import read_list  # noqa: E402
from kws.enroll import kokoro  # noqa: E402
from kws.enroll.build import build_keyword  # noqa: E402
from kws.enroll.thresholds import TAIL_PEAKS, background, fit_tail  # noqa: E402
from kws.spot.events import peaks  # noqa: E402
from kws.model.model import Model  # noqa: E402
from kws.spot.templates import TemplateBank, keyword_templates, template_scores  # noqa: E402


def keyword_peaks(bank, segments):
    out = [[] for _ in range(bank.keywords)]
    for v in segments:
        s = bank.keyword_scores(template_scores(bank, v))
        for k in range(bank.keywords):
            out[k].append(peaks(s[:, k]))
    return [np.sort(np.concatenate(p))[::-1] for p in out]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--words", type=int, default=40)
    ap.add_argument("--voices", type=int, default=8, help="Kokoro voices per keyword")
    ap.add_argument("--rate", type=float, default=1.0)
    args = ap.parse_args()
    model = Model.load()
    bg = background(model)
    segs = bg.split()
    halves = ([s for i, s in enumerate(segs) if i % 2 == 0], [s for i, s in enumerate(segs) if i % 2 == 1])
    hours = [sum(s.shape[0] for s in h) * 0.08 / 3600 for h in halves]
    test = [model.vectors(x) for x in read_speech(args.data, 5400, random.Random(0), half="b")]
    test_hours = sum(v.shape[0] for v in test) * 0.08 / 3600
    rng = random.Random(1)
    words = rng.sample([w for w in read_list("oov") if w.isalpha() and 4 <= len(w) <= 9], args.words)
    voices = rng.sample(kokoro.voices().names, args.voices)
    ks = [build_keyword(model, w, w, None, [], tune=False, progress=lambda line: None, voices=voices) for w in words]
    bank = TemplateBank.build([keyword_templates(model, k) for k in ks], soft_max=model.soft_max)
    pk = [keyword_peaks(bank, h) for h in halves]
    pk_test = keyword_peaks(bank, test)
    print(f"{len(words)} typed keywords x {args.voices} voices; bank halves {hours[0]:.2f} / {hours[1]:.2f} h; "
          f"held-out read speech {test_hours:.2f} h; target {args.rate:g} false alarms an hour\n")
    print("| estimator | realised on the other bank half (mean, both ways) | realised on held-out read speech (fitted on the whole bank) |")
    print("|---|---:|---:|")
    whole = [np.sort(np.concatenate([pk[0][k], pk[1][k]]))[::-1] for k in range(len(ks))]

    def row(name, thr_fn):
        other = []
        for a, b in ((0, 1), (1, 0)):
            for k in range(len(ks)):
                t = thr_fn(pk[a][k], hours[a])
                other.append(np.sum(pk[b][k] >= t) / hours[b])
        held = [np.sum(pk_test[k] >= thr_fn(whole[k], sum(hours))) / test_hours for k in range(len(ks))]
        print(f"| {name} | {np.mean(other):.2f} | {np.mean(held):.2f} |", flush=True)

    for m in (10, 20, TAIL_PEAKS, 80):
        row(f"exponential tail, top {m} peaks" + (" (shipped)" if m == TAIL_PEAKS else ""),
            lambda p, h, m=m: fit_tail(p, h, m).threshold(args.rate))
    row("k-th highest peak", lambda p, h: p[min(int(np.floor(args.rate * h)), p.size - 1)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
