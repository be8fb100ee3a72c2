"""Thresholds that learn the room (kws.spot.room), measured on held-out speech streamed as deployed.

    python benchmarks/room_thresholds.py --data ../shared/data [--music eval-music.ogg] [--out room-report]
    python benchmarks/room_thresholds.py --data ../shared/data --music eval-music.ogg --offline --seeds 0,1,2,3

The place: real read speech of speakers never trained on (LibriSpeech test-other and the held-out
half of the speechocean762 speakers, shuffled, back to back), with the held-out wake-word clips
(alexa, computer, jarvis by people the model never heard) planted now and then. Keywords: the
three wake words and 40 other typed words (out-of-vocabulary words the head never trained on, and
phrases of them), enrolled as ``enroll add`` does (Kokoro, 28 voices, the model's bank). Each
condition is streamed twice through :class:`kws.Detector` in 0.1-s chunks: with the bank's
thresholds, and with thresholds that learn the room from the stream's start.

Conditions: clean; babble of 6 held-out talkers at 10 dB over the whole stream; music at 10 dB
(``--music``, never music of the bank); a room that changes: clean, then babble from the middle on.

``--offline`` replays each keyword's score series (the same scores, computed once for the whole
stream, no VAD, peaks by kws.spot.events.peaks) through kws.spot.room.Room instead of streaming the
detector: minutes instead of an hour for all conditions, and settings can be compared
(``--window``, ``--bound``); the detector's rows are the deployed truth.

Beside the bank's and the learnt thresholds, a third column ("fit first") is the ceiling of
learning from the stream's first ``--settle`` minutes: thresholds fitted to all of each keyword's
peaks there (the planted wake-word clips left out, which only the benchmark can do), bounded as the
learning is, used from then on. With ``--offline`` a fourth ("room, own unseen") learns as the
room does but is never shown a wake word's peaks at its own planted clips: how much the
learning is moved by the keyword's own missed utterances, which it cannot tell from background.

Printed: false alarms an hour pooled over the 43 keywords and per keyword, after ``--settle``
minutes (45) and before; the share of keywords above 3 an hour; wake words found; each keyword's
threshold at 10, 30 and 60 minutes against the threshold that gives 1 false alarm an hour on
the whole stream (read off its score peaks afterwards: the best a threshold could do there), and
the recall that threshold would give.

One stream holds 20 to 28 clips of each wake word after 45 minutes, so one clip is about 4 points of
recall. ``--seeds`` draws several streams (the speech in another order, other clips planted; the
same keywords) and pools them: each wake word's clips after settling found with the bank's, the
learnt and the fitted thresholds, against the best threshold of 1 false alarm an hour after
settling in each stream (the same clips, so the difference in points is paired clip by clip and
printed with its 95 % interval), and false alarms an hour pooled over all streams' hours.

The keyword list and the enrolled keywords are kept in
``--cache`` (a keyword store) so a second run renders nothing; the thresholds are set again on
the model's bank at every run.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kws.audio.io import AudioError, load_audio  # noqa: E402
from kws.corpus.real import babble, held_out_speech_files, load_clip, split_of, wakeword_clips  # noqa: E402
from kws.enroll.store import KeywordSet  # noqa: E402
from kws.enroll.thresholds import calibrate  # noqa: E402
from kws.spot.events import peaks  # noqa: E402
from kws.evaluate import match_events as classify, planted_stream  # noqa: E402
from kws.model.model import Model  # noqa: E402
from kws.spot.detector import Detector, DetectorConfig  # noqa: E402
from kws.spot.room import AdaptConfig  # noqa: E402
from kws.spot.templates import keyword_templates  # noqa: E402

WAKE = ("alexa", "computer", "jarvis")
N_WORDS = 34
N_PHRASES = 6


def word_list(seed: int = 31) -> List[str]:
    """40 typed keywords the head never trained on: out-of-vocabulary words and phrases of them."""
    from kws.corpus.vocab import HELD_OUT, read_list

    rng = random.Random(seed)
    oov = [w for w in read_list("oov") if w.isalpha() and 4 <= len(w) <= 10 and w not in HELD_OUT]
    words = rng.sample(oov, N_WORDS + 2 * N_PHRASES)
    return words[:N_WORDS] + [f"{a} {b}" for a, b in zip(words[N_WORDS::2], words[N_WORDS + 1::2])]


def enrolled(model: Model, texts: Sequence[str], cache: Path) -> KeywordSet:
    """The keywords as ``enroll add`` makes them; utterances kept in ``cache`` (a store),
    thresholds set on the model's bank now."""
    from kws.enroll.build import build_keyword

    try:
        ks = KeywordSet.load(cache, model.model_id)
    except Exception:
        ks = KeywordSet(model.model_id)
    for i, t in enumerate(texts):
        if t not in ks:
            t0 = time.time()
            ks.add(build_keyword(model, t, t, None, [], tune=False, progress=lambda s: None))
            print(f"  enrolled {t!r} ({i + 1}/{len(texts)}, {time.time() - t0:.1f} s)", flush=True)
            ks.save(cache)
    out = KeywordSet(model.model_id)
    for t in texts:
        kw = ks[t]
        cal = calibrate(model, keyword_templates(model, kw), 1.0)
        kw.threshold = cal.threshold
        kw.tuned_on = dict(kw.tuned_on, target_per_hour=1.0,
                           tail={"u": cal.tail.u, "beta": cal.tail.beta, "m": cal.tail.m, "hours": cal.tail.hours})
        out.add(kw)
    return out


def place(data: Path, seed: int, clip_every_s: float) -> Tuple[List[np.ndarray], List[np.ndarray], List[str]]:
    """Held-out speech (shuffled) and held-out wake-word clips, about one per ``clip_every_s``."""
    rng = random.Random(seed)
    files = held_out_speech_files(data)
    rng.shuffle(files)
    bg = [load_audio(f) for f in files]
    seconds = sum(x.size for x in bg) / 16000
    clips = [c for c in wakeword_clips(data) if split_of(c) == "b"]
    n = min(len(clips), int(seconds / clip_every_s))
    per = n // len(WAKE)
    chosen = []
    for w in WAKE:
        cands = [c for c in clips if c.label == w]
        chosen += rng.sample(cands, min(per, len(cands)))
    xs, ys = [], []
    for c in chosen:
        try:
            xs.append(load_clip(c))
            ys.append(c.label)
        except AudioError as exc:              # a damaged file of the set: skipped, said
            print(f"  skipped {c.path}: {exc}", flush=True)
    return bg, xs, ys


def over(stream: np.ndarray, noise: np.ndarray, snr_db: float, start_s: float = 0.0) -> np.ndarray:
    level = float(np.sqrt(np.mean(stream ** 2)))
    n = noise[np.arange(stream.size) % noise.size] * (level / float(np.sqrt(np.mean(noise ** 2))) / 10 ** (snr_db / 20))
    n[:int(start_s * 16000)] = 0
    return (stream + n).astype(np.float32)


def run_stream(det: Detector, stream: np.ndarray, planted, every_s: float = 60.0):
    """Events and the thresholds each minute, streamed in 0.1-s chunks."""
    det.reset()
    events, thr_t = [], []
    n, next_log = 1600, 0.0
    for s in range(0, stream.size, n):
        events += det.process(stream[s:s + n])
        if s / 16000 >= next_log:
            thr_t.append((s / 16000, det.thresholds))
            next_log += every_s
    events += det.flush()
    return events, thr_t


def stream_scores(model: Model, ks: KeywordSet, stream: np.ndarray) -> np.ndarray:
    """(n, K) each keyword's score at each vector of the whole stream (batched; equal to the
    detector's matcher up to float rounding; no VAD)."""
    from kws.spot.templates import TemplateBank, template_scores

    bank = TemplateBank.build([keyword_templates(model, k) for k in ks], soft_max=model.soft_max)
    return bank.keyword_scores(template_scores(bank, model.vectors(stream)))


def oracle(model: Model, ks: KeywordSet, scores: np.ndarray, planted, hours: float,
           settle_s: float = 0.0) -> Dict[str, Dict]:
    """Per keyword: the threshold of 1 false alarm an hour on this stream and its recall (score
    peaks of the whole stream, no VAD), read off afterwards. With ``settle_s``, also the same for
    the stream after ``settle_s`` alone (``after``: its background hours, its planted clips, each
    clip found or not), which is what the thresholds learnt by then are held against."""
    hop = model.frontend.hop / 16000
    cut = int(settle_s / hop)
    planted_after_s = sum(b - a for _, a, b in planted if a >= settle_s)
    hours_after = max(1e-9, (scores.shape[0] - cut) * hop / 3600 - planted_after_s / 3600)
    out = {}
    for k, kw in enumerate(ks):
        s = scores[:, k]
        masked = np.where(_outside_planted(s.size, planted, hop, kw.name), s, -1.0)
        mine = [(a, b) for w, a, b in planted if w == kw.name]
        pos = [float(s[int((a - 0.2) / hop):int((b + 1.2) / hop) + 1].max()) for a, b in mine]
        t = _threshold_at(peaks(masked), hours)
        out[kw.name] = {"threshold": t, "recall": float(np.mean(np.array(pos) >= t)) if pos else None}
        if settle_s > 0:
            ta = _threshold_at(peaks(masked[cut:]), hours_after)
            found = [bool(p >= ta) for p, (a, _) in zip(pos, mine) if a >= settle_s]
            out[kw.name]["after"] = {"threshold": ta, "found": found, "hours": hours_after}
    return out


def _threshold_at(bg: np.ndarray, hours: float, rate: float = 1.0) -> float:
    """Just above the background peak (``bg``: kws.spot.events.peaks, highest first) that leaves
    ``rate`` false alarms an hour (rounded to a count, at least one) above it."""
    m = max(1, int(round(rate * hours)))
    t = float(bg[m - 1]) if bg.size >= m else float(bg[-1]) if bg.size else 0.0
    return t + 1e-4


def _outside_planted(n: int, planted, hop: float, word=None) -> np.ndarray:
    """(n,) False around the planted clips (of ``word`` only, when given), from 0.6 s before a
    clip to 1.2 s after it: where a keyword's score is background."""
    mask = np.ones(n, bool)
    for w, a, b in planted:
        if word is None or w == word:
            mask[max(0, int((a - 0.6) / hop)):int((b + 1.2) / hop)] = False
    return mask


def _peak_indices(s: np.ndarray, r: int = 12) -> np.ndarray:
    padded = np.concatenate([np.full(r, -np.inf), s, np.full(r, -np.inf)])
    wm = np.lib.stride_tricks.sliding_window_view(padded, 2 * r + 1).max(axis=1)
    rose = s > np.concatenate([[-np.inf], s[:-1]])
    return np.nonzero((s >= wm) & rose & (s > -1))[0]


class _Ev:
    def __init__(self, keyword, start, end):
        self.keyword, self.start, self.end = keyword, start, end


def replay(model: Model, ks: KeywordSet, S: np.ndarray, cfg: AdaptConfig, planted=None):
    """Events and thresholds each minute from each keyword's score series (``S``, from
    :func:`stream_scores`) replayed through kws.spot.room.Room (``cfg.enabled`` False: the bank's
    thresholds). With ``planted``, a keyword's peaks at its own planted clips are never shown to
    the room (only a benchmark knows where they are): what the learning would do if a wake word's
    missed utterances did not count as background."""
    from kws.spot.room import Room, new_entry

    hop = model.frontend.hop / 16000
    per = int(round(cfg.update_s / hop))
    events, thr_hist = [], {}
    for k, kw in enumerate(ks):
        room = Room([new_entry(model, kw, config=cfg)], cfg)
        idx, s = _peak_indices(S[:, k]), S[:, k]
        seen = _outside_planted(s.size, planted, hop, kw.name) if planted is not None else np.ones(s.size, bool)
        thr = float(room.current()[0])
        j = 0
        hist = []
        for start in range(0, s.size, per):
            end = min(s.size, start + per)
            while j < idx.size and idx[j] < end:
                i = idx[j]
                if s[i] >= thr:
                    events.append(_Ev(kw.name, i * hop - 0.5, i * hop))
                elif cfg.enabled and seen[i]:
                    room.observe(0, float(s[i]))
                j += 1
            if cfg.enabled:
                room.listened(end - start)
                thr = float(room.current()[0])
            hist.append((start * hop, thr))
        thr_hist[kw.name] = hist
    times = [t for t, _ in thr_hist[ks.names[0]]]
    thr_t = [(t, {n: thr_hist[n][i][1] for n in ks.names}) for i, t in enumerate(times)]
    return events, thr_t


def fitted_first(model: Model, ks: KeywordSet, S: np.ndarray, planted, settle_s: float, bound: float):
    """The ceiling of learning the room from its first ``settle_s``: each keyword's threshold
    fitted to *all* its score peaks there (every planted wake-word clip left out, as only a
    benchmark knows where they are; kws.enroll.thresholds.fit_tail, the bank's recipe), bounded to the
    bank's +- ``bound``; the bank's thresholds before ``settle_s``, the fitted ones after."""
    from kws.enroll.thresholds import fit_tail

    hop = model.frontend.hop / 16000
    cut = int(settle_s / hop)
    mask = _outside_planted(S.shape[0], planted, hop)
    planted_s = sum(b - a for _, a, b in planted if a < settle_s)
    hours = (settle_s - planted_s) / 3600
    events, fitted = [], {}
    for k, kw in enumerate(ks):
        s = S[:, k]
        pk = peaks(np.where(mask[:cut], s[:cut], -1.0))
        pk = pk[pk > -1]
        bank = float(kw.threshold)
        t = fit_tail(pk, hours).threshold(1.0) if pk.size >= 3 else bank
        t = float(min(max(t, bank - bound), bank + bound))
        fitted[kw.name] = t
        for i in _peak_indices(s):
            if s[i] >= (bank if i < cut else t):
                events.append(_Ev(kw.name, i * hop - 0.5, i * hop))
    thr_t = [(0.0, {kw.name: float(kw.threshold) for kw in ks}), (settle_s, fitted)]
    return events, thr_t


def summarise(name: str, ks: KeywordSet, events, thr_t, planted, stream_s: float, settle_min: float,
              best: Dict[str, Dict]) -> Dict:
    found, fa = classify(events, planted)
    planted_s = sum(b - a for _, a, b in planted)
    cut = settle_min * 60
    h_all = (stream_s - planted_s) / 3600
    h_after = max(1e-9, (stream_s - cut) / 3600 * (1 - planted_s / stream_s))
    h_before = max(1e-9, h_all - h_after)
    per = {}
    for kw in ks:
        before = sum(1 for e in fa if e.keyword == kw.name and e.start < cut)
        after = sum(1 for e in fa if e.keyword == kw.name and e.start >= cut)
        per[kw.name] = {"fa_before": before / h_before, "fa_after": after / h_after, "count_after": after}
    recall = {w: float(np.mean([f for f, (ww, _, _) in zip(found, planted) if ww == w])) for w in WAKE}
    found_after = {w: [bool(f) for f, (ww, a, _) in zip(found, planted) if ww == w and a >= cut] for w in WAKE}
    recall_after = {w: float(np.mean(f)) if f else float("nan") for w, f in found_after.items()}
    at = {}
    for minute in (10, 30, 60):
        snap = [d for t, d in thr_t if t <= minute * 60]
        if snap:
            at[minute] = {n: round(snap[-1][n] - best[n]["threshold"], 4) for n in ks.names}
    after = np.array([per[n]["fa_after"] for n in ks.names])
    return {"name": name, "hours": h_all, "per_keyword": per,
            "pooled_fa_after": float(after.mean()), "pooled_fa_before": float(np.mean([per[n]["fa_before"] for n in ks.names])),
            "share_above_3_after": float(np.mean(after > 3)), "max_fa_after": float(after.max()),
            "recall": recall, "recall_after": recall_after, "found_after": found_after, "hours_after": h_after,
            "threshold_error": {m: {"mean_abs": float(np.mean(np.abs(list(d.values())))),
                                    "mean": float(np.mean(list(d.values())))} for m, d in at.items()},
            "final_thresholds": thr_t[-1][1] if thr_t else {}}


def run_seed(args, model: Model, ks: KeywordSet, names: Sequence[str], seed: int) -> Dict:
    """One stream (speech order and planted clips drawn with ``seed``) in every condition."""
    bg, clips, labels = place(args.data, seed, args.clip_every)
    stream, planted = planted_stream(bg, clips, labels, seed)
    total_s = stream.size / 16000
    print(f"\nseed {seed}: stream {total_s / 3600:.2f} h, {len(planted)} wake words planted", flush=True)
    conds = {}
    if "clean" in names:
        conds["clean"] = stream
    bab = babble(args.data, 6, 300.0, seed=1) if ({"babble", "change"} & set(names)) else None
    if "babble" in names:
        conds["babble 10 dB"] = over(stream, bab, 10)
    if "music" in names and args.music:
        conds["music 10 dB"] = over(stream, load_audio(args.music), 10)
    if "change" in names:
        conds["clean, then babble 10 dB"] = over(stream, bab, 10, start_s=total_s / 2)
    out = {"stream_hours": total_s / 3600, "planted": len(planted), "conditions": {}}
    for cname, s in conds.items():
        t0 = time.time()
        S = stream_scores(model, ks, s)
        best = oracle(model, ks, S, planted, (total_s - sum(b - a for _, a, b in planted)) / 3600,
                      settle_s=args.settle * 60)
        rows = {}
        for label, ad in (("bank", AdaptConfig(enabled=False)),
                          ("room", AdaptConfig(bound=args.bound, window=args.window))):
            if args.offline:
                ev, thr_t = replay(model, ks, S, ad)
            else:
                ev, thr_t = run_stream(Detector(ks, model, DetectorConfig(adapt=ad)), s, planted)
            rows[label] = summarise(label, ks, ev, thr_t, planted, total_s, args.settle, best)
        ev, thr_t = fitted_first(model, ks, S, planted, args.settle * 60, args.bound)
        rows["first"] = summarise("first", ks, ev, thr_t, planted, total_s, args.settle, best)
        if args.offline:
            ev, thr_t = replay(model, ks, S, AdaptConfig(bound=args.bound, window=args.window), planted)
            rows["room_blind"] = summarise("room_blind", ks, ev, thr_t, planted, total_s, args.settle, best)
        rows["best"] = {n: best[n] for n in ks.names}
        out["conditions"][cname] = rows
        b, r, f = rows["bank"], rows["room"], rows["first"]
        print(f"\n== seed {seed}, {cname} ({time.time() - t0:.0f} s)")
        print(f"{'':28s} {'bank':>10s} {'room':>10s} {'fit first':>10s}")
        print(f"{'pooled FA/h after settle':28s} {b['pooled_fa_after']:10.2f} {r['pooled_fa_after']:10.2f} {f['pooled_fa_after']:10.2f}")
        print(f"{'keywords > 3 FA/h after':28s} {b['share_above_3_after']:10.1%} {r['share_above_3_after']:10.1%} {f['share_above_3_after']:10.1%}")
        print(f"{'worst keyword FA/h after':28s} {b['max_fa_after']:10.2f} {r['max_fa_after']:10.2f} {f['max_fa_after']:10.2f}")
        for w in WAKE:
            fa = best[w]["after"]["found"]
            print(f"{'found ' + w + ' (after settle)':28s} {b['recall_after'][w]:10.1%} {r['recall_after'][w]:10.1%}"
                  f" {f['recall_after'][w]:10.1%}   best at 1 FA/h {best[w]['recall']:.1%}"
                  f" (after settle: {np.mean(fa) if fa else float('nan'):.1%} of {len(fa)})")
        for m, e in r["threshold_error"].items():
            print(f"{'|thr - best| at ' + str(m) + ' min':28s} {b['threshold_error'].get(m, {}).get('mean_abs', float('nan')):10.3f} {e['mean_abs']:10.3f}")
    return out


def pooled(runs: Dict[str, Dict], names: Sequence[str]) -> Dict:
    """The seeds together, condition by condition: false alarms an hour after settling pooled
    over the keywords (each keyword's counts over all seeds' hours), the share of keywords above 3
    an hour (each seed's place on its own, averaged), and each wake word's clips after settling
    found with each way of setting thresholds, against the best threshold of 1 false alarm an hour
    after settling in each seed's stream (the same clips: the difference is paired clip by clip)."""
    out = {}
    conds = sorted({c for r in runs.values() for c in r["conditions"]}, key=list(CONDITION_ORDER).index)
    for c in conds:
        rs = [r["conditions"][c] for r in runs.values() if c in r["conditions"]]
        row = {}
        for label in [x for x in LABELS if all(x in r for r in rs)]:
            hours = sum(r[label]["hours_after"] for r in rs)
            rate = {n: sum(r[label]["per_keyword"][n]["count_after"] for r in rs) / hours for n in names}
            found = {w: sum((r[label]["found_after"][w] for r in rs), []) for w in WAKE}
            best = {w: sum((r["best"][w]["after"]["found"] for r in rs), []) for w in WAKE}
            rec = {}
            for w in WAKE:
                d = np.array(found[w], float) - np.array(best[w], float)
                half = 1.96 * float(d.std(ddof=1)) / np.sqrt(d.size) if d.size > 1 else float("nan")
                rec[w] = {"found": int(sum(found[w])), "clips": len(found[w]), "best_found": int(sum(best[w])),
                          "points_below_best": float(-d.mean() * 100) if d.size else float("nan"),
                          "ci95_points": half * 100}
            row[label] = {"hours_after": hours, "pooled_fa_after": float(np.mean(list(rate.values()))),
                          "max_fa_after": float(max(rate.values())),
                          "share_above_3_after": float(np.mean([r[label]["share_above_3_after"] for r in rs])),
                          "wake_words": rec}
        out[c] = row
    return out


CONDITION_ORDER = ("clean", "babble 10 dB", "music 10 dB", "clean, then babble 10 dB")
LABELS = {"bank": "bank", "room": "room", "first": "fit first", "room_blind": "room, own unseen"}   # rows: headings


def print_pooled(p: Dict, seeds: Sequence[int]) -> None:
    print(f"\n== all {len(seeds)} streams (seeds {','.join(map(str, seeds))}) together, after settling")
    for c, row in p.items():
        print(f"\n{c} ({row['bank']['hours_after']:.2f} h)")
        ks_ = [k for k in LABELS if k in row]
        print(f"{'':34s}" + "".join(f" {LABELS[k]:>16s}" for k in ks_))
        print(f"{'pooled FA/h':34s}" + "".join(f" {row[k]['pooled_fa_after']:16.2f}" for k in ks_))
        print(f"{'keywords > 3 FA/h (mean share)':34s}" + "".join(f" {row[k]['share_above_3_after']:16.1%}" for k in ks_))
        print(f"{'worst keyword FA/h':34s}" + "".join(f" {row[k]['max_fa_after']:16.2f}" for k in ks_))
        for w in WAKE:
            cells = []
            for k in ks_:
                e = row[k]["wake_words"][w]
                cells.append(f"{e['found']}/{e['clips']} {e['points_below_best']:+.1f}+-{e['ci95_points']:.1f}")
            e = row["bank"]["wake_words"][w]
            print(f"{w + ' found, points below best':34s}" + "".join(f" {x:>16s}" for x in cells)
                  + f"   best {e['best_found']}/{e['clips']}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--music", type=Path, default=None, help="evaluation music (never the bank's)")
    ap.add_argument("--cache", type=Path, default=Path("runs/room-keywords"))
    ap.add_argument("--out", type=Path, default=Path("runs/room-report"))
    ap.add_argument("--settle", type=float, default=45.0, help="minutes of learning before counting")
    ap.add_argument("--clip-every", type=float, default=40.0, help="seconds between planted wake words")
    ap.add_argument("--conditions", default="clean,babble,music,change")
    ap.add_argument("--bound", type=float, default=AdaptConfig.bound)
    ap.add_argument("--window", type=float, default=AdaptConfig.window)
    ap.add_argument("--offline", action="store_true", help="replay score series through kws.spot.room (fast)")
    ap.add_argument("--seeds", default="0", help="streams to draw (comma-separated seeds); several are pooled")
    args = ap.parse_args(argv)
    model = Model.load(args.model) if args.model else Model.load()
    texts = list(WAKE) + word_list()
    print(f"model {model.model_id}; {len(texts)} keywords", flush=True)
    ks = enrolled(model, texts, args.cache)
    seeds = [int(x) for x in str(args.seeds).split(",") if x.strip()]
    names = args.conditions.split(",")
    report = {"model": model.model_id, "mode": "offline replay" if args.offline else "detector, streamed",
              "keywords": texts, "seeds": seeds, "settle_minutes": args.settle, "runs": {}}
    args.out.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        report["runs"][str(seed)] = run_seed(args, model, ks, names, seed)
        report["pooled"] = pooled(report["runs"], ks.names)
        (args.out / "report.json").write_text(json.dumps(report, indent=1))
    if len(seeds) > 1:
        print_pooled(report["pooled"], seeds)
    print(f"\nreport: {args.out / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
