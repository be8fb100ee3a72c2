"""Which of Kokoro's 28 voices a typed keyword needs: accuracy against the number of voices,
measured on real recordings, the voices chosen on the tuning half only.

    python benchmarks/voice_subset.py --data ../shared/data                 # choose on half 'a'
    python benchmarks/voice_subset.py --data ../shared/data --check b \\
        --voices af_heart,am_michael,...                                    # one list, on half 'b'

Words: the three wake words (alexa, computer, jarvis: real clips of 50+ people) and the ten
digits (FSDD), typed. Each word is rendered in all 28 voices once (kws.enroll.render_cache);
every voice's template is scored on every clip and along the model's whole background bank,
so any subset of voices is the maximum over its columns, exactly as enrollment would compute
it with those voices alone:

- ``threshold``: the one enrollment sets for 1 false alarm an hour on the bank
  (kws.enroll.thresholds: the peaks of the keyword's score over the bank, the exponential tail);
- ``recall``: the share of the word's real clips scoring at or above it (what a user gets);
- ``EER``: against the other words' clips (wake words against wake words, digits against
  digits);
- ``FA/h``: false alarms an hour realised at that threshold on real read speech of the same
  half (speechocean762), none of it in the bank.

Greedy forward selection: starting from no voice, the voice whose addition gives the highest
mean recall over the 13 words (ties: the lower mean EER) is added, up to ``--up-to`` voices; the
28 voices, then every step, are printed. ``--objective wake`` maximises the wake words' recall
first (the digits are six male speakers; the wake words 50+ people). Choose on 'a',
then check the chosen list once on 'b' (``--check b --voices ...``).
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kws.audio.io import AudioError  # noqa: E402
from kws.corpus.real import (DEFAULT_DATA, DIGITS, WAKEWORDS, fsdd_clips, load_clip, read_speech,  # noqa: E402
                             split_of, wakeword_clips)
from kws.enroll import kokoro, render_cache  # noqa: E402
from kws.enroll import thresholds as th  # noqa: E402
from kws.enroll.phonemes import pronounce  # noqa: E402
from kws.metrics import eer  # noqa: E402
from kws.model.model import Model  # noqa: E402
from kws.spot.events import REFRACTORY, peaks  # noqa: E402
from kws.spot.templates import TemplateBank, combine, cut, source_vectors, template_scores  # noqa: E402

CLIP_PAD_S = 1.0          # as kws.evaluate scores clips alone


def voice_templates(model: Model, word: str) -> List[np.ndarray]:
    """The word's template in each of the 28 voices, as enrollment makes them."""
    ph = kokoro.pronunciation_phonemes(pronounce(word))
    got = render_cache.render(ph, [kokoro.Rendering(v) for v in kokoro.voices().names], label=word, say=print)
    out = []
    for t in got:
        v = model.head(source_vectors(model.frontend.frames, t.audio, pad_s=model.pad_s))
        a, b = cut(v.shape[0], model.trim)
        out.append(v[a:b])
    return out


def gapped(series: Sequence[np.ndarray], width: int) -> np.ndarray:
    """Score series of segments back to back with ``REFRACTORY`` rows of -inf between them:
    peaks() of the whole is the union of the segments' peaks."""
    gap = np.full((REFRACTORY, width), -np.inf, np.float32)
    out = []
    for s in series:
        out += [s.astype(np.float32), gap]
    return np.concatenate(out)


def score_matrix(bank: TemplateBank, vectors: Sequence[np.ndarray]) -> np.ndarray:
    return gapped([template_scores(bank, v) for v in vectors if v.shape[0]], bank.length.size)


def top_region(series: np.ndarray, level: float) -> np.ndarray:
    """The rows of ``series`` (score columns) where some column reaches ``level``, the rows
    between them kept where fewer than ``REFRACTORY`` lie between two such rows (as -inf) and
    longer runs of them shortened to ``REFRACTORY`` rows of -inf: every peak at or above
    ``level`` of the maximum over any set of columns stays a peak, of the same score (no window
    of the event rule reaches across a shortened run, and a row under ``level`` never blocks
    one above it)."""
    keep = np.nonzero(series.max(axis=1) >= level)[0]
    if keep.size == 0:
        return np.full((0, series.shape[1]), -np.inf, np.float32)
    between = np.diff(keep) - 1
    step = np.concatenate([[0], 1 + np.minimum(between, REFRACTORY)])
    pos = np.cumsum(step)
    out = np.full((int(pos[-1]) + 1, series.shape[1]), -np.inf, np.float32)
    out[pos] = series[keep]
    return out


def clip_matrix(bank: TemplateBank, vectors: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Each clip's (n, T) template scores (one row of -1 for an empty clip)."""
    return [template_scores(bank, v) if v.shape[0] else np.full((1, bank.length.size), -1.0, np.float32)
            for v in vectors]


PHRASES = ("hey computer", "hey kitchen", "hey jarvis", "good morning", "hey snowboy", "hey toaster",
           "ok jarvis", "hey lantern", "turn on the lights", "hey toaster oven")


def phrases(data: Path, half: str, voices: Sequence[str], sizes: Sequence[int] = ()) -> int:
    """Phrases, where the floor (a phrase must not fire on its words alone) sets most thresholds:
    each enrolled as ``enroll add`` does, in all 28 voices and in ``voices``; recall on the
    renderings of the voices outside ``voices`` (each against the templates of the other
    voices, clean and with noise at 10 dB, as ``enroll add`` measures recall), and the share of
    the half's real clips of a wake word the phrase ends with that fire it (must be none)."""
    from kws.enroll.build import build_keyword, keyword_phonemes, keyword_pronunciation
    from kws.enroll.thresholds import add_noise
    from kws.spot.templates import TRIM_TOP_DB, Matcher, keyword_templates
    from kws.audio.io import trim_silence

    model = Model.load()
    names = list(kokoro.voices().names)
    # the first k of ``voices`` for each k of ``sizes`` (default: all of them), all scored on the
    # voices outside ``voices``
    held = [v for v in names if v not in voices]
    configs = [("all 28", names)] + [(str(k), list(voices[:k])) for k in (sizes or [len(voices)])]
    real: Dict[str, list] = {}
    pad = np.zeros(int(CLIP_PAD_S * 16000), np.float32)
    for c in wakeword_clips(data):
        if split_of(c) == half:
            try:
                real.setdefault(c.label, []).append(model.vectors(np.concatenate([pad, load_clip(c), pad])))
            except AudioError:
                pass
    print(f"recall on the renderings of the {len(held)} voices outside the {len(voices)}; real clips of half {half}\n")
    print("| phrase | voices | threshold | bank's | floor set by | recall (held-out voices) | its last word's real clips firing it |")
    print("|---|---|---|---|---|---|---|")
    sums: Dict[str, list] = {}
    for text in PHRASES:
        pron = keyword_pronunciation(text, None)
        ph = keyword_phonemes(pron)
        allr = [kokoro.Rendering(v) for v in names]
        got = render_cache.render(ph, allr, label=text, say=print)
        utts = [(f"kokoro:{r.voice}", t.audio) for r, t in zip(allr, got)]
        for label, use in configs:
            sub = [u for u in utts if u[0].split(":", 1)[1] in use]
            kw = build_keyword(model, text, text, None, [], tune=False, utterances=sub, voices=use,
                               use_cache=False, progress=lambda line: None)
            templates = keyword_templates(model, kw)
            rng = np.random.default_rng(0)
            sc = []
            for o, a in utts:
                if o.split(":", 1)[1] not in held:
                    continue
                m = Matcher(TemplateBank.build([[t for t, to in zip(templates, kw.origins) if to != o]],
                                               soft_max=model.soft_max))
                x = trim_silence(np.asarray(a, np.float32), top_db=TRIM_TOP_DB, margin_s=0.0)
                for clip in (x, add_noise(x, 10.0, rng)):
                    v = source_vectors(model.vectors, clip, trim=False, pad_s=model.pad_s)
                    sc.append(float(m.scores(v).max()))
            recall = float(np.mean(np.array(sc) >= kw.threshold))
            last = text.split()[-1]
            fire = "-"
            if last in real:
                b = TemplateBank.build([templates], soft_max=model.soft_max)
                hits = [float(b.keyword_scores(template_scores(b, v)).max()) >= kw.threshold
                        for v in real[last] if v.shape[0]]
                fire = f"{np.mean(hits):.1%} of {len(hits)}"
            t = kw.tuned_on
            top = next((n["text"] for n in t.get("neighbours", []) if n["kind"] in ("word", "prefix")), "-")
            by = f"{top!r}" if t.get("floor") is not None and t["floor"] > t["bank_threshold"] else "the bank"
            print(f"| {text} | {label} | {kw.threshold:.3f} | {t['bank_threshold']:.3f} | {by} | {recall:.1%} | {fire} |",
                  flush=True)
            sums.setdefault(label, []).append(recall)
    for label, r in sums.items():
        print(f"mean recall, {label} voices: {np.mean(r):.1%}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--half", default="a", help="the half chosen on (default a, the tuning half)")
    ap.add_argument("--check", default=None, help="only evaluate --voices (and all 28) on this half")
    ap.add_argument("--voices", default="", help="comma-separated voices to evaluate with --check or "
                    "--phrases (default kws.enroll.kokoro.QUICK_VOICES, those of enroll add --quick)")
    ap.add_argument("--up-to", type=int, default=16)
    ap.add_argument("--objective", choices=("all", "wake"), default="all",
                    help="what the greedy choice maximises: the recall of the wake words (clips of "
                         "50+ people; ties: of all 13 words, then the EER), or of all 13 words (the "
                         "digits are six male speakers)")
    ap.add_argument("--per-digit", type=int, default=30, help="FSDD clips per digit")
    ap.add_argument("--speech-s", type=float, default=1800.0, help="seconds of read speech for FA/h")
    ap.add_argument("--phrases", action="store_true",
                    help="phrases, whose thresholds the floor sets, in all 28 voices and in --voices "
                         "(default kws.enroll.kokoro.QUICK_VOICES)")
    ap.add_argument("--sizes", default="", help="with --phrases: the first K of --voices for each K "
                    "given (comma-separated), all scored on the voices outside --voices")
    args = ap.parse_args()
    half = args.check or args.half
    if args.phrases:
        chosen = [v.strip() for v in args.voices.split(",") if v.strip()] or list(kokoro.QUICK_VOICES)
        return phrases(args.data, half, chosen, [int(k) for k in args.sizes.split(",") if k.strip()])
    t0 = time.time()
    model = Model.load()
    names = list(kokoro.voices().names)
    rng = random.Random(0)
    ww = [c for c in wakeword_clips(args.data) if split_of(c) == half]
    ww_audio = []
    for c in ww:                       # a few clips of the set cannot be decoded: left out
        try:
            ww_audio.append((c, load_clip(c)))
        except AudioError:
            pass
    fs = [c for c in fsdd_clips(args.data) if split_of(c) == half]
    rng.shuffle(fs)
    fs = [c for d in DIGITS for c in [x for x in fs if x.label == d][:args.per_digit]]
    pad = np.zeros(int(CLIP_PAD_S * 16000), np.float32)

    def vec(x):
        return model.vectors(np.concatenate([pad, x, pad]))

    groups = {"wake": (WAKEWORDS, [vec(x) for _, x in ww_audio], np.array([c.label for c, _ in ww_audio])),
              "digits": (DIGITS, [vec(load_clip(c)) for c in fs], np.array([c.label for c in fs]))}
    speech = [model.vectors(x) for x in read_speech(args.data, args.speech_s, half=half)]
    speech_h = sum(v.shape[0] for v in speech) * 0.08 / 3600
    bg = th.background(model)
    print(f"half {half}: {len(ww_audio)} wake-word clips, {len(fs)} digit clips, {speech_h:.2f} h of read speech; "
          f"bank {bg.hours:.2f} h ({time.time() - t0:.0f} s)", flush=True)
    data: Dict[str, dict] = {}
    for gname, (words, vecs, labels) in groups.items():
        for w in words:
            bank = TemplateBank.build([[t] for t in voice_templates(model, w)])
            full = score_matrix(bank, bg.split())
            # only the top of the bank decides a threshold: every subset's 40 highest peaks lie
            # above ``level`` (checked in evaluate), so the rows that reach it are enough
            us = [th.fit_tail(peaks(full[:, c]), bg.hours).u for c in range(full.shape[1])]
            level = 0.9 * min(us)
            kept = top_region(full, level)
            assert th.fit_tail(peaks(kept.max(axis=1)), bg.hours).u == th.fit_tail(peaks(full.max(axis=1)), bg.hours).u
            del full
            data[w] = {"group": gname, "clips": clip_matrix(bank, vecs), "pos": labels == w,
                       "bank": kept, "level": level,
                       "speech": score_matrix(bank, speech)}
            print(f"  scored {w}: {kept.shape[0]} of the bank's rows reach {level:.3f} "
                  f"({time.time() - t0:.0f} s)", flush=True)

    soft = model.soft_max           # a subset's keyword score combines its voices' as the model does

    def evaluate(cols: Sequence[int]) -> dict:
        cols = list(cols)
        per = {}
        for w, d in data.items():
            pk = peaks(combine(d["bank"][:, cols], soft))
            tail = th.fit_tail(pk, bg.hours)
            if pk.size < th.TAIL_PEAKS or not tail.u >= d["level"]:
                raise SystemExit(f"{w}: the tail reaches under the rows kept ({tail.u:.3f} < {d['level']:.3f})")
            thr = max(th.MIN_THRESHOLD, tail.threshold(th.DEFAULT_FA_PER_HOUR))
            sc = np.array([combine(c[:, cols], soft).max() for c in d["clips"]])
            fa = float(np.sum(peaks(combine(d["speech"][:, cols], soft)) >= thr)) / speech_h
            per[w] = {"thr": thr, "recall": float(np.mean(sc[d["pos"]] >= thr)),
                      "eer": eer(sc, d["pos"])[0], "fa": fa}
        return {"per": per, "recall": float(np.mean([p["recall"] for p in per.values()])),
                "eer": float(np.mean([p["eer"] for p in per.values()])),
                "fa": float(np.mean([p["fa"] for p in per.values()])),
                "wake_recall": float(np.mean([per[w]["recall"] for w in WAKEWORDS])),
                "digit_recall": float(np.mean([per[w]["recall"] for w in DIGITS]))}

    def row(label: str, r: dict) -> None:
        print(f"| {label} | {r['recall']:.1%} | {r['wake_recall']:.1%} | {r['digit_recall']:.1%} | "
              f"{r['eer']:.2%} | {r['fa']:.2f} |", flush=True)

    print("\n| voices | recall (13 words) | wake words | digits | mean EER | FA/h on read speech |")
    print("|---|---|---|---|---|---|")
    if args.check:
        chosen = [v.strip() for v in args.voices.split(",") if v.strip()] or list(kokoro.QUICK_VOICES)
        row(f"{len(chosen)}: {', '.join(chosen)}", evaluate([names.index(v) for v in chosen]))
        full = evaluate(range(len(names)))
        row("all 28", full)
        for w, p in full["per"].items():
            print(f"    {w}: thr {p['thr']:.3f} recall {p['recall']:.1%} EER {p['eer']:.2%} FA/h {p['fa']:.2f}")
        return 0
    row("all 28", evaluate(range(len(names))))
    def goal(r: dict) -> tuple:
        if args.objective == "wake":       # the wake words first, then all 13 words
            return (r["wake_recall"], r["recall"], -r["eer"])
        return (r["recall"], -r["eer"])

    chosen: List[int] = []
    while len(chosen) < min(args.up_to, len(names)):
        best = None
        for c in range(len(names)):
            if c in chosen:
                continue
            r = evaluate(chosen + [c])
            if best is None or goal(r) > goal(best[1]):
                best = (c, r)
        chosen.append(best[0])
        row(f"{len(chosen)}: +{names[best[0]]}", best[1])
    print(f"\nchosen order: {','.join(names[c] for c in chosen)}  ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
