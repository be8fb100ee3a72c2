"""How templates are cut and which renderings they come from, measured on the tuning half.

    python benchmarks/template_choices.py --data ../shared/data            # half 'a' (tuning)

Typed wake words (alexa, computer, jarvis) as Kokoro templates, raw backbone vectors (no head),
scored clip by clip as kws.evaluate scores them: EER against the other wake words' clips and the
miss rate at 1 false alarm an hour against the score peaks on the same half's read speech
(speechocean762). Conditions: the clip alone (0.6 s of silence around it), with 6-talker babble
at 10 dB, and with other speech 50 ms after it. Choices compared:

- the silence each rendering is padded with before the front end and the vectors dropped at
  each end (kws.spot.templates PAD_S and TRIM);
- the renderings: the 28 voices at speed 1; 28 two-voice blends at speeds 0.85-1.15; the 28
  voices at speeds 0.85 and 1.15; voices and blends together.

Prints one row per choice. Takes about 10 minutes on one core (84-252 renderings).
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kws.audio.io import trim_silence  # noqa: E402
from kws.corpus.real import (DEFAULT_DATA, WAKEWORDS, babble, load_clip, read_speech, split_of,  # noqa: E402
                             wakeword_clips)
from kws.enroll import kokoro  # noqa: E402
from kws.enroll.phonemes import pronounce  # noqa: E402
from kws.spot.events import peaks  # noqa: E402
from kws.evaluate import condition, mix  # noqa: E402
from kws.model.head import unit  # noqa: E402
from kws.model.model import Model  # noqa: E402
from kws.spot.templates import TemplateBank, template_scores  # noqa: E402


def renderings(kind: str, rng: random.Random):
    names = kokoro.voices().names
    if kind == "voices":
        return [kokoro.Rendering(n) for n in names]
    if kind == "blends":
        out = []
        for _ in names:
            a, b = rng.sample(names, 2)
            out.append(kokoro.Rendering(a, round(rng.uniform(0.85, 1.15), 2), b, round(rng.uniform(0.3, 0.7), 2)))
        return out
    if kind == "speeds":
        return [kokoro.Rendering(n, s) for n in names for s in (0.85, 1.15)]
    raise ValueError(kind)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--half", choices=("a", "b"), default="a")
    args = ap.parse_args()
    model = Model.load()
    fe = model.frontend
    rng = np.random.default_rng(0)
    clips = [c for c in wakeword_clips(args.data) if split_of(c) == args.half]
    xs, ys = [], []
    for c in clips:
        try:
            xs.append(load_clip(c))
            ys.append(c.label)
        except Exception:
            continue
    speech = read_speech(args.data, 5400, random.Random(0), half=args.half)
    pool = np.concatenate(speech[:60])
    bab = babble(args.data, 6, 120.0, seed=1)
    pad = np.zeros(int(0.6 * 16000), np.float32)

    def after(x):
        i = int(rng.integers(0, pool.size - 20000))
        s = pool[i:i + 16000] * np.sqrt(np.mean(x ** 2) / np.mean(pool ** 2))
        return np.concatenate([pad, x, np.zeros(800, np.float32), s.astype(np.float32)])

    conds = {"clean": [fe.frames(np.concatenate([pad, x, pad])) for x in xs],
             "babble 10 dB": [fe.frames(np.concatenate([pad, mix(x, bab, 10, rng), pad])) for x in xs],
             "speech after": [fe.frames(after(x)) for x in xs]}
    bg = [fe.frames(x) for x in speech]
    hours = sum(v.shape[0] for v in bg) * 0.08 / 3600
    print(f"{len(xs)} clips of half '{args.half}', {hours:.2f} h of its read speech as background\n")
    t0 = time.time()
    made = {}
    r = random.Random(0)
    for kind in ("voices", "blends", "speeds"):
        made[kind] = {w: [kokoro.render(kokoro.pronunciation_phonemes(pronounce(w)), rr)
                          for rr in renderings(kind, r)] for w in WAKEWORDS}
    print(f"rendered in {time.time() - t0:.0f} s\n")

    def measure(label, audio_by_word, pad_s, trim):
        tpl = []
        for w in WAKEWORDS:
            ts = []
            for a in audio_by_word[w]:
                p = np.zeros(int(pad_s * 16000), np.float32)
                v = fe.frames(np.concatenate([p, trim_silence(a, top_db=40.0, margin_s=0.0), p]))
                ts.append(v[trim:v.shape[0] - trim])
            tpl.append(ts)
        bank = TemplateBank.build(tpl)
        pk = [[] for _ in WAKEWORDS]
        for v in bg:
            s = bank.keyword_scores(template_scores(bank, unit(v)))
            for k in range(len(WAKEWORDS)):
                pk[k].append(peaks(s[:, k]))
        pk = [np.sort(np.concatenate(p))[::-1] for p in pk]
        cells = []
        for name, vs in conds.items():
            sc = np.stack([bank.keyword_scores(template_scores(bank, unit(v))).max(axis=0) for v in vs])
            c = condition(sc, ys, WAKEWORDS, pk, hours)
            cells.append(f"{c['eer']:.1%} / {c['miss_at_1fa']:.1%}")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)

    print("| templates | " + " | ".join(f"{c}: EER / missed at 1 FA/h" for c in conds) + " |")
    print("|---|" + "---|" * len(conds))
    for pad_s, trim in ((0.5, 2), (0.5, 1), (0.5, 0), (0.6, 2), (0.6, 3), (0.8, 2)):
        measure(f"28 voices, pad {pad_s} s, drop {trim}", made["voices"], pad_s, trim)
    measure("28 blends, pad 0.6 s, drop 2", made["blends"], 0.6, 2)
    measure("28 voices at 0.85 and 1.15, pad 0.6 s, drop 2", made["speeds"], 0.6, 2)
    both = {w: made["voices"][w] + made["blends"][w] for w in WAKEWORDS}
    measure("28 voices + 28 blends, pad 0.6 s, drop 2", both, 0.6, 2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
