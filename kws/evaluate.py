"""python -m kws evaluate: the numbers every other document quotes, for one or more models.

On the real recordings of ../shared/data, held-out half 'b' (kws.corpus.real.split_of; half 'a'
gives the enrollment examples and is what settings were chosen on):

- **wake words** alexa, computer, jarvis, enrolled as users enroll them: typed (Kokoro renderings
  as templates), from 3 recordings of half 'a', and both. Per keyword: the EER between its clips
  and the other keywords' clips, and the miss rate at 1 false alarm an hour, where the false
  alarms are the keyword's score peaks (kws.spot.events.peaks: what the detector fires on) over
  held-out read speech (speechocean762, the test half's speakers). Clean; with real noise at
  20/10/5/0 dB; with babble (6 talkers), crowd (24) and music at 10 dB; reverberant.
- **thresholds**: at each keyword's default threshold (1 false alarm an hour), the false alarms
  an hour it gives on that speech and its recall, beside the best recall any threshold allowing
  the same rate gives; and the realised rate of 20 other typed keywords on the same speech.
- **streamed as deployed**: the wake-word clips planted in that speech, streamed in 0.1 s chunks
  through the default detector (VAD on, default thresholds), clean and with babble at 10 dB:
  recall, false alarms an hour, and the delay from each found keyword's end (its clip's last
  sound) to the chunk whose processing returned its event.
- **FSDD digits**: 10-way accuracy and per-digit EER of the typed digits.

Renderings and front-end vectors are computed once and shared by the models compared; each
model's head is applied to them. Writes report.json, report.md and a DET plot to --out.
"""
from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from kws.audio.io import AudioError, load_audio, sound_span
from kws.corpus.real import (DIGITS, WAKEWORDS, Clip, babble, fsdd_clips, load_clip, read_speech,
                             split_of, wakeword_clips)
from kws.enroll.build import EnrollError, build_keyword, check_example, render_utterances, keyword_pronunciation
from kws.enroll.store import KeywordSet
from kws.spot.events import peaks
from kws.metrics import eer, miss_at_false_alarm_rate, roc_points
from kws.model.model import Model
from kws.progress import progress
from kws.spot.detector import Detector, DetectorConfig
from kws.spot.templates import keyword_templates
from kws.spot.templates import TemplateBank, template_scores

FA_TARGET = 1.0
CLIP_PAD_S = 1.0          # silence around each clip scored alone (the planted stream has 0.3-1.0 s, then speech)
CALIBRATION_WORDS = 20


def _load(clips, quiet):
    out = []
    for c in progress(clips, "loading", quiet=quiet):
        try:
            out.append((c, load_clip(c)))
        except AudioError:
            pass
    return out


def _noise_bank(data: Path) -> np.ndarray:
    files = sorted((data / "noise").glob("*.flac"))
    return np.concatenate([load_audio(f) for f in files if "white" not in f.name and "pink" not in f.name])


def mix(x: np.ndarray, noise: np.ndarray, snr_db: float, rng) -> np.ndarray:
    """``x`` plus a random stretch of ``noise`` (looped if shorter) at ``snr_db``."""
    if noise.size <= x.size + 1:
        noise = np.tile(noise, x.size // noise.size + 2)
    s = rng.integers(0, noise.size - x.size - 1)
    n = noise[s:s + x.size]
    k = np.sqrt(np.mean(x ** 2) / max(np.mean(n ** 2), 1e-10) / 10 ** (snr_db / 10))
    return (x + k * n).astype(np.float32)


def reverb(x: np.ndarray, rng, rt60: float = 0.5) -> np.ndarray:
    n = int(rt60 * 16000)
    h = rng.normal(size=n) * np.exp(-6.9 * np.arange(n) / n)
    h[0] = 1.0 + abs(h[0])
    y = np.convolve(x, h / np.linalg.norm(h))[: x.size]
    return (y * np.abs(x).max() / max(np.abs(y).max(), 1e-6)).astype(np.float32)


def planted_stream(background: List[np.ndarray], clips: List[np.ndarray], labels: List[str],
                   seed: int = 0) -> Tuple[np.ndarray, List[Tuple[str, float, float]]]:
    """Background recordings played back to back with the clips planted between them (0.3-1.0 s
    of silence either side), each clip at the level of the speech around it (+-6 dB).
    Returns the stream and each planted clip's (label, start, end) in seconds."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(clips))
    slots = np.sort(rng.choice(len(background) + 1, size=len(clips), replace=True))
    level = float(np.sqrt(np.mean(np.concatenate(background) ** 2))) if background else 0.05
    parts, planted, t = [], [], 0
    j = 0
    for i in range(len(background) + 1):
        while j < len(order) and slots[j] == i:
            x = clips[order[j]]
            x = x / max(1e-5, float(np.sqrt(np.mean(x ** 2)))) * level * 10 ** (rng.uniform(-6, 6) / 20)
            gap0 = np.zeros(int(rng.uniform(0.3, 1.0) * 16000), np.float32)
            gap1 = np.zeros(int(rng.uniform(0.3, 1.0) * 16000), np.float32)
            planted.append((labels[order[j]], (t + gap0.size) / 16000, (t + gap0.size + x.size) / 16000))
            parts += [gap0, np.clip(x, -1, 1).astype(np.float32), gap1]
            t += gap0.size + x.size + gap1.size
            j += 1
        if i < len(background):
            parts.append(background[i])
            t += background[i].size
    return np.concatenate(parts).astype(np.float32), planted


def match_events(events, planted: List[Tuple[str, float, float]], tolerance_s: float = 0.5):
    """(found, false alarms): a planted clip is found when an event of its keyword overlaps it
    (+- ``tolerance_s``); every other event is a false alarm."""
    hits, false_alarms = _match(events, planted, tolerance_s)
    return [h is not None for h in hits], false_alarms


def _match(events, planted, tolerance_s: float):
    """Each planted clip's event (its index in ``events``, None where none), and the false alarms."""
    hits: List[Optional[int]] = [None] * len(planted)
    false_alarms = []
    for j, e in enumerate(events):
        hit = None
        for i, (w, a, b) in enumerate(planted):
            if w == e.keyword and hits[i] is None and e.end >= a - tolerance_s and e.start <= b + tolerance_s:
                hit = i
                break
        if hit is None:
            false_alarms.append(e)
        else:
            hits[hit] = j
    return hits, false_alarms


def streamed(det: Detector, stream: np.ndarray, planted: List[Tuple[str, float, float]],
             chunk_s: float = 0.1, tolerance_s: float = 0.5) -> Dict:
    """Run ``stream`` through the detector exactly as deployed (chunks of ``chunk_s``): a planted
    clip is found when an event of its keyword overlaps it (+- ``tolerance_s``); every other event
    (another keyword, a second event on one clip, anything in the background) is a false alarm."""
    det.reset()
    n = int(chunk_s * 16000)
    events, heard = [], []             # each event, and the stream's seconds fed when it came
    t0 = time.process_time()
    for s in range(0, stream.size, n):
        new = det.process(stream[s:s + n])
        events += new
        heard += [min(s + n, stream.size) / 16000] * len(new)
    tail = det.flush()
    events += tail
    heard += [stream.size / 16000] * len(tail)
    cpu = time.process_time() - t0
    hits, false_alarms = _match(events, planted, tolerance_s)
    found = [h is not None for h in hits]
    # the delay: from the end of the spoken keyword (its clip's last 10 ms within 40 dB of its
    # loudest, kws.audio.io.sound_span) to the event's return
    delays = [heard[h] - (a + sound_span(stream[int(a * 16000):int(b * 16000)])[1] / 16000)
              for h, (_, a, b) in zip(hits, planted) if h is not None]
    planted_s = sum(b - a for _, a, b in planted)
    hours = (stream.size / 16000 - planted_s) / 3600
    per_kw = {w: float(np.mean([f for f, (ww, _, _) in zip(found, planted) if ww == w]))
              for w in sorted({p[0] for p in planted})}
    return {"hours": hours, "planted": len(planted), "recall": float(np.mean(found)) if found else float("nan"),
            "recall_per_keyword": per_kw, "false_alarms": len(false_alarms),
            "false_alarms_per_hour": len(false_alarms) / hours,
            "false_alarms_by_keyword": {w: sum(e.keyword == w for e in false_alarms) for w in per_kw},
            "rtf": cpu / (stream.size / 16000),
            "delay_s": {"median": float(np.median(delays)) if delays else float("nan"),
                        "p90": float(np.percentile(delays, 90)) if delays else float("nan"),
                        "chunk_s": chunk_s}}


def raw_recordings(clips: Sequence[Clip]) -> Iterator[np.ndarray]:
    """The clips' files as they are (no trimming: what a user hands to enrollment), in the order
    given, skipping files that cannot be read. Lazy: only what enrollment takes is loaded."""
    for c in clips:
        try:
            yield load_clip(c, trim=False)
        except AudioError:
            continue


class Examples(NamedTuple):
    examples: Dict[str, List[np.ndarray]]   # each keyword's accepted recordings, trimmed as enrollment trims them
    refused: Dict[str, List[str]]           # enrollment's message for each recording it refused


def accepted_examples(recordings: Dict[str, Iterable[np.ndarray]], n: int = 3) -> Examples:
    """The first ``n`` recordings of each keyword that enrollment accepts (kws.enroll.build.
    check_example refuses unusable ones and trims the silence around the word; a refused one is
    replaced by the next, as a user records again): what ``enroll add --examples`` would keep."""
    kept: Dict[str, List[np.ndarray]] = {}
    refused: Dict[str, List[str]] = {}
    for w, recs in recordings.items():
        kept[w], refused[w] = [], []
        for i, x in enumerate(recs):
            if len(kept[w]) == n:
                break
            try:
                kept[w].append(check_example(x, f"{w!r} example {i + 1}"))
            except EnrollError as exc:
                refused[w].append(str(exc))
        if not kept[w]:
            raise EnrollError(f"{w!r}: no example recording that enrollment accepts ({'; '.join(refused[w])})")
    return Examples(kept, refused)


class Renders:
    """Kokoro renderings of typed keywords, made once and shared by every model evaluated."""

    def __init__(self, quiet: bool = True):
        self._cache: Dict[str, List[Tuple[str, np.ndarray]]] = {}
        self.quiet = quiet

    def __call__(self, text: str) -> List[Tuple[str, np.ndarray]]:
        if text not in self._cache:
            self._cache[text] = render_utterances(keyword_pronunciation(text, None), quiet=self.quiet)
        return self._cache[text]


def keywords(model: Model, renders: Renders, words: Sequence[str],
             examples: Optional[Dict[str, List[np.ndarray]]] = None, typed: bool = True) -> KeywordSet:
    """The keywords as ``enroll add`` makes them (default thresholds): typed, from ``examples``,
    or both."""
    ks = KeywordSet(model.model_id)
    for w in words:
        ks.add(build_keyword(model, w, w if typed else None, None, (examples or {}).get(w, []),
                             tune=False, progress=lambda line: None,
                             utterances=renders(w) if typed else None))
    return ks


class Vectors:
    """Raw front-end vectors of clips (padded with CLIP_PAD_S of silence on both sides), computed
    once; a model's head is applied per model."""

    def __init__(self, frontend):
        self.frontend = frontend

    def clips(self, audio: Sequence[np.ndarray], desc: str, quiet: bool) -> List[np.ndarray]:
        pad = np.zeros(int(CLIP_PAD_S * 16000), np.float32)
        return [self.frontend.frames(np.concatenate([pad, x, pad])) for x in progress(audio, desc, quiet=quiet)]

    def long(self, audio: Sequence[np.ndarray], desc: str, quiet: bool) -> List[np.ndarray]:
        return [self.frontend.frames(x) for x in progress(audio, desc, quiet=quiet)]


def clip_scores(model: Model, ks: KeywordSet, raw: Sequence[np.ndarray]) -> np.ndarray:
    """(clips, K) each keyword's best score in each clip."""
    bank = TemplateBank.build([keyword_templates(model, k) for k in ks], soft_max=model.soft_max)
    out = np.full((len(raw), len(ks)), -1.0, np.float32)
    for i, v in enumerate(raw):
        if v.shape[0]:
            out[i] = bank.keyword_scores(template_scores(bank, model.head(v))).max(axis=0)
    return out


def background_peaks(model: Model, ks: KeywordSet, raw: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Each keyword's score peaks over background recordings (what the detector fires on)."""
    bank = TemplateBank.build([keyword_templates(model, k) for k in ks], soft_max=model.soft_max)
    out: List[List[np.ndarray]] = [[] for _ in ks]
    for v in raw:
        if v.shape[0] == 0:
            continue
        s = bank.keyword_scores(template_scores(bank, model.head(v)))
        for k in range(len(ks)):
            out[k].append(peaks(s[:, k]))
    return [np.sort(np.concatenate(p))[::-1] for p in out]


def condition(scores: np.ndarray, labels: Sequence[str], names: Sequence[str],
              bg_peaks: List[np.ndarray], hours: float) -> Dict:
    """EER (against the other keywords' clips) and miss at 1 false alarm an hour (against the
    background peaks) of each keyword."""
    lab = np.array(labels)
    per = {}
    for k, w in enumerate(names):
        pos = lab == w
        e = eer(scores[:, k], pos)[0] if pos.any() and (~pos).any() else float("nan")
        m = miss_at_false_alarm_rate(scores[pos, k], bg_peaks[k], hours, FA_TARGET)[0]
        per[w] = {"eer": e, "miss_at_1fa": m}
    return {"per_keyword": per, "eer": float(np.nanmean([v["eer"] for v in per.values()])),
            "miss_at_1fa": float(np.mean([v["miss_at_1fa"] for v in per.values()]))}


def threshold_check(ks: KeywordSet, pos_scores: np.ndarray, labels: Sequence[str],
                    bg_peaks: List[np.ndarray], hours: float) -> Dict:
    """At each keyword's own threshold: the false alarms an hour on the background and the recall,
    beside the best recall of any threshold that allows as many false alarms (the oracle)."""
    lab = np.array(labels)
    out = {}
    for k, kw in enumerate(ks):
        pos = pos_scores[lab == kw.name, k]
        fa = float(np.sum(bg_peaks[k] >= kw.threshold)) / hours
        allowed = max(FA_TARGET, fa)
        oracle_miss = miss_at_false_alarm_rate(pos, bg_peaks[k], hours, allowed)[0]
        out[kw.name] = {"threshold": kw.threshold, "false_alarms_per_hour": fa,
                        "expected_per_hour": kw.tuned_on.get("expected_per_hour"),
                        "recall": float(np.mean(pos >= kw.threshold)),
                        "oracle_recall_at_that_rate": 1.0 - oracle_miss}
    return out


def evaluate_model(model: Model, shared: Dict, renders: Renders, quiet: bool, cfg: DetectorConfig) -> Dict:
    res: Dict = {"model": model.model_id, "head": model.manifest.get("head") is not None}
    labels, hours = shared["labels"], shared["bg_hours"]
    typed = keywords(model, renders, WAKEWORDS)
    ex = keywords(model, renders, WAKEWORDS, shared["examples"], typed=False)
    both = keywords(model, renders, WAKEWORDS, shared["examples"])
    ww: Dict = {"clips": len(labels)}
    for mode, ks in (("typed", typed), ("examples", ex), ("typed+examples", both)):
        pk = background_peaks(model, ks, shared["bg_raw"])
        sc = clip_scores(model, ks, shared["clean"])
        ww[mode] = condition(sc, labels, WAKEWORDS, pk, hours)
        ww[mode]["thresholds"] = threshold_check(ks, sc, labels, pk, hours)
        if mode == "typed":
            ww[mode]["_scores"] = {w: {"pos": sc[np.array(labels) == w, k].tolist(),
                                       "neg": sc[np.array(labels) != w, k].tolist()} for k, w in enumerate(WAKEWORDS)}
            typed_peaks = pk
        if mode == "examples":
            ww[mode]["_scores"] = {w: {"pos": sc[np.array(labels) == w, k].tolist(),
                                       "neg": sc[np.array(labels) != w, k].tolist()} for k, w in enumerate(WAKEWORDS)}
    ww["conditions_typed"] = {name: condition(clip_scores(model, typed, raw), labels, WAKEWORDS, typed_peaks, hours)
                              for name, raw in shared["conditions"].items()}
    res["wakewords"] = ww
    # FSDD
    digits = keywords(model, renders, DIGITS)
    sc = clip_scores(model, digits, shared["fsdd"])
    fl = np.array(shared["fsdd_labels"])
    res["fsdd"] = {"clips": len(fl), "accuracy_10way": float(np.mean(np.array(DIGITS)[sc.argmax(1)] == fl)),
                   "mean_eer": float(np.nanmean([eer(sc[:, k], fl == d)[0] if (fl == d).any() and (fl != d).any()
                                              else np.nan for k, d in enumerate(DIGITS)]))}
    # thresholds of other typed keywords on the background
    cal = keywords(model, renders, shared["calibration_words"])
    pk = background_peaks(model, cal, shared["bg_raw"])
    rates = [float(np.sum(p >= k.threshold)) / hours for p, k in zip(pk, cal)]
    res["calibration"] = {"words": len(cal), "target_per_hour": FA_TARGET, "hours": hours,
                          "realised_per_hour_mean": float(np.mean(rates)),
                          "realised_per_hour": dict(zip(cal.names, rates))}
    # streamed as deployed
    if shared.get("stream") is not None:
        det = Detector(typed, model, cfg)
        res["streamed"] = {name: streamed(det, s, shared["planted"]) for name, s in shared["stream"].items()}
    return res


def prepare(data: Path, per_keyword: int, fsdd_n: int, background_s: float, seed: int, quiet: bool,
            test_half: str, music: Optional[np.ndarray], frontend, stream: bool = True) -> Dict:
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    vec = Vectors(frontend)
    wake = wakeword_clips(data)
    test = []
    for w in WAKEWORDS:
        cands = [c for c in wake if c.label == w and split_of(c) == test_half]
        test += pick.sample(cands, min(per_keyword, len(cands)))
    test = _load(test, quiet)
    xs, ys = [x for _, x in test], [c.label for c, _ in test]
    enroll_ex = {}
    for w in WAKEWORDS:
        cands = [c for c in wake if c.label == w and split_of(c) != test_half]
        first = pick.sample(cands, 3)      # replacements for refused files: the others, by name
        enroll_ex[w] = raw_recordings(first + [c for c in cands if c not in first])
    shared: Dict = {"labels": ys, "examples": accepted_examples(enroll_ex).examples}
    shared["clean"] = vec.clips(xs, "wake words", quiet)
    noise = _noise_bank(data)
    others = {"babble": babble(data, 6, 120.0, seed=1), "crowd": babble(data, 24, 120.0, seed=2)}
    if music is not None:
        others["music"] = music
    conds = {}       # drawn in the order of earlier versions of this report: the same noise for the same clips
    for snr in (20, 10, 5, 0):
        conds[f"noise {snr} dB"] = vec.clips([mix(x, noise, snr, rng) for x in xs], f"noise {snr} dB", quiet)
    conds["reverberant (RT60 0.5 s)"] = vec.clips([reverb(x, rng) for x in xs], "reverberant", quiet)
    for k, n in others.items():
        conds[f"{k} 10 dB"] = vec.clips([mix(x, n, 10, rng) for x in xs], f"{k} 10 dB", quiet)
    shared["conditions"] = conds
    fs = [c for c in fsdd_clips(data) if split_of(c) == test_half]
    fs = _load(pick.sample(fs, min(fsdd_n, len(fs))), quiet)
    shared["fsdd"] = vec.clips([x for _, x in fs], "FSDD", quiet)
    shared["fsdd_labels"] = [c.label for c, _ in fs]
    bg = read_speech(data, background_s, pick, half=test_half)
    shared["bg_raw"] = vec.long(bg, "background speech", quiet)
    shared["bg_hours"] = sum(v.shape[0] for v in shared["bg_raw"]) * frontend.hop / 16000 / 3600
    from kws.corpus.vocab import read_list

    shared["calibration_words"] = pick.sample([w for w in read_list("oov") if w.isalpha() and 4 <= len(w) <= 9],
                                              CALIBRATION_WORDS)
    if stream:
        s, planted = planted_stream(bg, xs, ys, seed)
        level = float(np.sqrt(np.mean(s ** 2)))
        b = others["babble"]
        noisy = s + b[np.arange(s.size) % b.size] * (level / float(np.sqrt(np.mean(b ** 2))) / 10 ** (10 / 20))
        shared["stream"] = {"clean": s, "babble 10 dB": noisy.astype(np.float32)}
        shared["planted"] = planted
    return shared


def run(models: Sequence[Model], data: Path, per_keyword: int = 100, fsdd_n: int = 300,
        background_s: float = 5400.0, seed: int = 0, quiet: bool = False, test_half: str = "b",
        music: Optional[np.ndarray] = None, stream: bool = True, fire: str = DetectorConfig.fire) -> Dict:
    """The report of each model (``models[0]`` is the one reported first), on the same audio;
    ``fire``: when the streamed detector fires (kws.spot.detector.DetectorConfig)."""
    t0 = time.time()
    cfg = DetectorConfig(fire=fire)
    shared = prepare(data, per_keyword, fsdd_n, background_s, seed, quiet, test_half, music,
                     models[0].frontend, stream)
    renders = Renders(quiet)
    res: Dict = {"test_half": test_half, "background_hours": shared["bg_hours"],
                 "models": [evaluate_model(m, shared, renders, quiet, cfg) for m in models]}
    res["seconds"] = round(time.time() - t0, 1)
    return res


def markdown(r: Dict) -> str:
    ms = r["models"]
    half = "held-out half" if r.get("test_half", "b") == "b" else "TUNING half 'a' (not for reporting)"
    head = "| measure | " + " | ".join(f"`{m['model']}`{' (head)' if m['head'] else ' (raw)'}" for m in ms) + " |"
    lines = [f"{half[0].upper() + half[1:]} of ../shared/data; false alarms counted on {r['background_hours']:.2f} h of "
             f"held-out read speech.", "", head, "|---|" + "---|" * len(ms)]

    def row(label, fn):
        vals = []
        for m in ms:
            try:
                vals.append(fn(m))
            except (KeyError, TypeError):
                vals.append("-")
        lines.append(f"| {label} | " + " | ".join(vals) + " |")

    ww = ms[0]["wakewords"]
    for mode in ("typed", "examples", "typed+examples"):
        row(f"wake words, {mode}: EER / missed at 1 false alarm an hour ({ww['clips']} clips)",
            lambda m, mode=mode: f"{m['wakewords'][mode]['eer']:.1%} / {m['wakewords'][mode]['miss_at_1fa']:.1%}")
    for name in ww["conditions_typed"]:
        row(f"wake words, typed, {name}: EER / missed at 1 FA/h",
            lambda m, name=name: f"{m['wakewords']['conditions_typed'][name]['eer']:.1%} / "
                                 f"{m['wakewords']['conditions_typed'][name]['miss_at_1fa']:.1%}")
    for mode in ("typed", "examples"):
        row(f"default thresholds, {mode}: false alarms an hour / recall / best recall at that rate (mean of 3)",
            lambda m, mode=mode: "{:.2f} / {:.1%} / {:.1%}".format(*(
                float(np.mean([v[k] for v in m['wakewords'][mode]['thresholds'].values()]))
                for k in ("false_alarms_per_hour", "recall", "oracle_recall_at_that_rate"))))
    row(f"default thresholds of {CALIBRATION_WORDS} other typed words: false alarms an hour (target 1)",
        lambda m: f"{m['calibration']['realised_per_hour_mean']:.2f}")
    row("FSDD digits typed: 10-way accuracy / mean EER",
        lambda m: f"{m['fsdd']['accuracy_10way']:.1%} / {m['fsdd']['mean_eer']:.1%}")
    for name in ms[0].get("streamed", {}):
        row(f"streamed as deployed, {name}: recall / false alarms an hour (3 keywords)",
            lambda m, name=name: f"{m['streamed'][name]['recall']:.1%} / {m['streamed'][name]['false_alarms_per_hour']:.2f}")
    row("streamed, clean: delay from the keyword's end to its event, median / 90th percentile (0.1 s chunks)",
        lambda m: "{median:.2f} s / {p90:.2f} s".format(**m["streamed"]["clean"]["delay_s"]))
    row("detector RTF while streaming (one thread)",
        lambda m: f"{m['streamed']['clean']['rtf']:.4f}")
    return "\n".join(lines) + "\n"


def det_plot(r: Dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from scipy.stats import norm
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 5))
    m = r["models"][0]
    for mode, style in (("typed", "-"), ("examples", "--")):
        for w in WAKEWORDS:
            s = m["wakewords"][mode]["_scores"][w]
            scores = np.r_[s["pos"], s["neg"]]
            labels = np.r_[np.ones(len(s["pos"])), np.zeros(len(s["neg"]))]
            fpr, miss, _ = roc_points(scores, labels)
            clip = lambda v: np.clip(v, 1e-3, 1 - 1e-3)
            ax.plot(norm.ppf(clip(fpr)), norm.ppf(clip(miss)), style, label=f"{w} ({mode})")
    ticks = [0.001, 0.01, 0.05, 0.2, 0.5]
    ax.set_xlim(norm.ppf(0.0008), norm.ppf(0.6))
    ax.set_ylim(norm.ppf(0.0008), norm.ppf(0.6))
    ax.set_xticks(norm.ppf(ticks), [f"{t:.1%}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{t:.1%}" for t in ticks])
    ax.set_xlabel("false alarm rate (other wake words' clips)")
    ax.set_ylabel("miss rate")
    ax.set_title(f"DET, real wake-word clips (held-out half), {m['model']}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def save_report(r: Dict, out: Path) -> List[str]:
    """Write ``report.md``, ``report.json`` (without the raw scores) and, with matplotlib,
    ``det_wakewords.png`` to ``out``; returns the names written."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(markdown(r))
    plotted = det_plot(r, out / "det_wakewords.png")
    slim = json.loads(json.dumps(r))
    for m in slim["models"]:
        for mode in ("typed", "examples"):
            m["wakewords"][mode].pop("_scores", None)
    (out / "report.json").write_text(json.dumps(slim, indent=2))
    return ["report.json", "report.md"] + (["det_wakewords.png"] if plotted else [])


if __name__ == "__main__":
    from kws.commands import run_as

    raise SystemExit(run_as("evaluate"))
