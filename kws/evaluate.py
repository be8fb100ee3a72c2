"""python -m kws evaluate: the numbers every other document quotes, for a model bundle.

On the real recordings of ../shared/data, held-out half 'b' (kws.corpus.real.split_of; half 'a' is
used for validation while training and for picking enrollment examples):

- wake words (alexa, computer, jarvis): clip-level EER per keyword, text-enrolled and
  example-enrolled (3 examples from half 'a'); clean, with real noise at 20/10/5/0 dB SNR, and
  with synthetic-room reverberation;
- FSDD digits: 10-way zero-shot (text) accuracy and per-digit text EER; same-different AP (word
  discrimination) over all pairs of clips;
- streaming detector on background speech (speechocean762 read sentences by the test half's
  speakers, kws.corpus.real.speaker_half; none of the keywords):
  false alarms per hour at the calibrated thresholds, and miss rate at 1 false alarm per hour;
- spoken-term detection on real read sentences with aligned word times (kws.std, held-out half of
  the speakers): EER per text query and precision at 10, IV and OOV, with the paper's windows
  (0.2-0.6 s) and the detector's (0.3-0.9 s);
- synthetic word discrimination: same-different AP and text->audio AP on fresh TTS renders of
  training-list (IV) and held-out (OOV) words.

Writes JSON, a markdown table and DET curves (PNG, if matplotlib is installed) to --out.
"""
from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from kws.audio import AudioError, load_audio
from kws.bundle import Bundle
from kws.corpus.real import (DIGITS, WAKEWORDS, Clip, babble, fsdd_clips, load_clip,
                             read_speech, split_of, wakeword_clips)
from kws.detector import Detector, DetectorConfig, detect_audio, max_scores
from kws.enrollment import EnrollError, check_example, enroll_keyword
from kws.keywords import Keyword, KeywordSet
from kws.progress import progress
from kws.metrics import eer, miss_at_false_alarm_rate, roc_points, same_different_ap


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


def clip_eers(det: Detector, clips: List[np.ndarray], labels: List[str], quiet=False, desc="scoring") -> Dict:
    names = det.keywords.names
    scores = np.stack([max_scores(det, x) for x in progress(clips, desc, quiet=quiet)])
    out = {}
    for k, name in enumerate(names):
        lab = np.array([l == name for l in labels])
        # a keyword with no clip of its own in a small sample has no EER (NaN, left out of the mean)
        e = eer(scores[:, k], lab)[0] if lab.any() and (~lab).any() else float("nan")
        out[name] = {"eer": e, "pos": scores[lab, k].tolist(), "neg": scores[~lab, k].tolist()}
    return {"per_keyword": {n: v["eer"] for n, v in out.items()},
            "mean_eer": float(np.nanmean([v["eer"] for v in out.values()])), "_scores": out,
            "accuracy": float(np.mean(np.array(names)[scores.argmax(1)] == np.array(labels)))}


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


def streamed(det: Detector, stream: np.ndarray, planted: List[Tuple[str, float, float]],
             chunk_s: float = 0.1, tolerance_s: float = 0.5) -> Dict:
    """Run ``stream`` through the detector exactly as deployed (chunks of ``chunk_s``): a planted
    clip is found when an event of its keyword overlaps it (+- ``tolerance_s``); every other event
    (another keyword, a second event on one clip, anything in the background) is a false alarm."""
    det.reset()
    n = int(chunk_s * 16000)
    events = []
    t0 = time.time()
    for s in range(0, stream.size, n):
        events += det.process(stream[s:s + n])
    events += det.flush()
    cpu = time.time() - t0
    found = [False] * len(planted)
    false_alarms = []
    for e in events:
        hit = None
        for i, (w, a, b) in enumerate(planted):
            if w == e.keyword and not found[i] and e.end >= a - tolerance_s and e.start <= b + tolerance_s:
                hit = i
                break
        if hit is None:
            false_alarms.append(e)
        else:
            found[hit] = True
    planted_s = sum(b - a for _, a, b in planted)
    hours = (stream.size / 16000 - planted_s) / 3600
    per_kw = {w: float(np.mean([f for f, (ww, _, _) in zip(found, planted) if ww == w]))
              for w in sorted({p[0] for p in planted})}
    return {"hours": hours, "planted": len(planted), "recall": float(np.mean(found)) if found else float("nan"),
            "recall_per_keyword": per_kw, "false_alarms": len(false_alarms),
            "false_alarms_per_hour": len(false_alarms) / hours,
            "false_alarms_by_keyword": {w: sum(e.keyword == w for e in false_alarms) for w in per_kw},
            "rtf": cpu / (stream.size / 16000)}


def text_detector(bundle: Bundle, words, cfg: DetectorConfig, tts: bool = True) -> Detector:
    """Typed keywords as a user gets them (TTS renderings join the text where an engine is
    installed: kws.anchors; default thresholds)."""
    return Detector.from_texts(list(words), bundle=bundle, config=cfg, tts=tts)


def raw_recordings(clips: Sequence[Clip]) -> Iterator[np.ndarray]:
    """The clips' files as they are (no trimming: what a user hands to enrollment), in the order
    given, skipping files that cannot be read. Lazy: only what enrollment takes is loaded."""
    for c in clips:
        try:
            yield load_clip(c, trim=False)
        except AudioError:
            continue


class ExampleEnrollment(NamedTuple):
    detector: Detector
    examples: Dict[str, List[np.ndarray]]   # each keyword's accepted recordings, trimmed as enrollment trims them
    refused: Dict[str, List[str]]           # enrollment's message for each recording it refused


def example_detector(bundle: Bundle, recordings: Dict[str, Iterable[np.ndarray]], cfg: DetectorConfig,
                     n: int = 3, with_text: bool = False) -> ExampleEnrollment:
    """Enroll every keyword from example recordings exactly as ``python -m kws enroll add --name
    NAME --examples ...`` does (``with_text``: as ``add NAME --examples ...``, which also embeds the
    name as text): the library call kws.enrollment.enroll_keyword, which checks each recording
    (check_example refuses unusable ones and trims the silence around the word), embeds, averages
    and sets the threshold from the background bank (``tune=False``: no TTS tuning run).

    The one place evaluation and benchmarks enroll from examples. Each keyword takes the first
    ``n`` recordings enrollment accepts (a refused one is replaced by the next, as a user records
    again). Returns the detector and the trimmed examples, for other engines to get the same audio.
    """
    ks = KeywordSet(bundle.model_id)
    kept: Dict[str, List[np.ndarray]] = {}
    refused: Dict[str, List[str]] = {}
    for w, recs in recordings.items():
        raw: List[np.ndarray] = []
        kept[w], refused[w] = [], []
        for i, x in enumerate(recs):
            if len(raw) == n:
                break
            try:
                kept[w].append(check_example(x, f"{w!r} example {i + 1}"))
            except EnrollError as exc:
                refused[w].append(str(exc))
                continue
            raw.append(x)
        if not raw:
            raise EnrollError(f"{w!r}: no example recording that enrollment accepts ({'; '.join(refused[w])})")
        ks.add(enroll_keyword(w, text=w if with_text else None, examples=raw, tune=False, bundle=bundle))
    return ExampleEnrollment(Detector(ks, bundle, cfg), kept, refused)



def run(bundle: Bundle, data: Path, per_keyword: int, fsdd_n: int, background_s: float,
        seed: int = 0, quiet: bool = False, synthetic_words: int = 150, std_utts: int = 300,
        std_queries: int = 40, window_s: Optional[Tuple[float, ...]] = None,
        test_half: str = "b", music: Optional[np.ndarray] = None, tts: bool = True) -> Dict:
    """The report. ``test_half`` 'a' runs the real-clip sections on the tuning half instead (to
    choose settings without looking at the held-out half; enrollment examples then come from 'b')."""
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    cfg = DetectorConfig(variant=bundle.variant) if window_s is None else \
        DetectorConfig(variant=bundle.variant, window_s=tuple(window_s))
    from kws.tts import available_engines

    tts = tts and bool(available_engines())
    res: Dict = {"bundle": bundle.model_id, "variant": bundle.variant, "test_half": test_half,
                 "text_keywords": "text + TTS renderings (" + ", ".join(available_engines()) + ")" if tts else "text only",
                 "thresholds": bundle.manifest.get("background", {}).get("kind", "windows"), "detector": {
        "hop_s": cfg.hop_s, "window_s": list(cfg.window_s) if cfg.window_s else "per keyword"}}
    t0 = time.time()
    # ---------------- wake words
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
    tdet = text_detector(bundle, WAKEWORDS, cfg, tts)
    edet = example_detector(bundle, enroll_ex, cfg).detector
    ww = {"clips": len(xs), "text": clip_eers(tdet, xs, ys, quiet, "wake words, text"),
          "examples": clip_eers(edet, xs, ys, quiet, "wake words, examples")}
    noise = _noise_bank(data)
    ww["noise_text"] = {}
    for snr in (20, 10, 5, 0):
        noisy = [mix(x, noise, snr, rng) for x in xs]
        r = clip_eers(tdet, noisy, ys, quiet, f"wake words, {snr} dB")
        ww["noise_text"][f"{snr}dB"] = r["mean_eer"]
    ww["reverb_text"] = clip_eers(tdet, [reverb(x, rng) for x in xs], ys, quiet, "reverb")["mean_eer"]
    # babble (6 talkers), crowd (24) of held-out speakers, and music never trained on, at 10 dB
    others = {"babble": babble(data, 6, 120.0, seed=1), "crowd": babble(data, 24, 120.0, seed=2)}
    if music is not None:
        others["music"] = music
    ww["noise_kinds_text_10dB"] = {
        k: clip_eers(tdet, [mix(x, n, 10, rng) for x in xs], ys, quiet, f"wake words, {k} 10 dB")["mean_eer"]
        for k, n in others.items()}
    res["wakewords"] = ww
    # ---------------- FSDD
    fs = [c for c in fsdd_clips(data) if split_of(c) == test_half]
    fs = _load(pick.sample(fs, min(fsdd_n, len(fs))), quiet)
    fx, fy = [x for _, x in fs], [c.label for c, _ in fs]
    fdet = text_detector(bundle, DIGITS, cfg, tts)
    fr = clip_eers(fdet, fx, fy, quiet, "FSDD, text")
    emb = bundle.embed_clips(fx)
    res["fsdd"] = {"clips": len(fx), "text_accuracy_10way": fr["accuracy"], "text_mean_eer": fr["mean_eer"],
                   "text_eer": fr["per_keyword"], "same_different_ap": same_different_ap(emb, fy),
                   "speakers": sorted({c.speaker for c, _ in fs})}
    # ---------------- background speech: false alarms
    bg = read_speech(data, background_s, pick, half=test_half)
    total = sum(x.size for x in bg) / 16000
    events, peaks = 0, {w: [] for w in WAKEWORDS}
    zero = KeywordSet(bundle.model_id, [Keyword(name=k.name, vectors=k.vectors, threshold=-1.0)
                                        for k in tdet.keywords])
    zdet = Detector(zero, bundle, cfg)      # every peak is an event: the score distribution
    t_bg = time.time()
    for x in progress(bg, "background speech", quiet=quiet):
        events += len(detect_audio(tdet, x))
        for e in detect_audio(zdet, x):
            peaks[e.keyword].append(e.score)
    rtf = (time.time() - t_bg) / (2 * total)
    hours = total / 3600
    miss = {}
    for w in WAKEWORDS:
        pos = ww["text"]["_scores"][w]["pos"]
        miss[w] = miss_at_false_alarm_rate(pos, peaks[w], hours, 1.0)[0]
    res["background"] = {"hours": hours, "false_alarms_per_hour_calibrated": events / hours,
                         "miss_at_1fa_per_hour": miss, "mean_miss_at_1fa_per_hour": float(np.mean(list(miss.values()))),
                         "detector_rtf_one_thread": rtf}
    # ---------------- the product as deployed: the wake-word clips planted in that speech,
    # streamed in 0.1 s chunks through the default detector (VAD on, default thresholds)
    stream, planted = planted_stream(bg, xs, ys, seed)
    level = float(np.sqrt(np.mean(stream ** 2)))
    noisy = stream + others["babble"][np.arange(stream.size) % others["babble"].size] * (
        level / float(np.sqrt(np.mean(others["babble"] ** 2))) / 10 ** (10 / 20))
    if not quiet:
        print(f"streaming {stream.size / 16000 / 60:.1f} min with {len(planted)} planted clips, "
              f"clean and with babble at 10 dB", file=sys.stderr)
    res["streamed"] = {"clean": streamed(tdet, stream, planted),
                       "babble_10dB": streamed(tdet, noisy.astype(np.float32), planted)}
    res["training_validation"] = bundle.manifest.get("training", {}).get("validation", {})
    if "distilled" in bundle.manifest:   # the training numbers are the teacher's
        res["training_validation_of"] = "teacher"
    if synthetic_words:
        res["synthetic"] = synthetic(bundle, synthetic_words, quiet=quiet)
    if std_utts:
        res["std"] = std(bundle, data, std_utts, std_queries, quiet, tts)
    res["seconds"] = round(time.time() - t0, 1)
    return res


def _render(batch):
    from kws import tts

    return tts.synthesize(batch)


def synthetic(bundle: Bundle, n_words: int = 150, renders: int = 4, seed: int = 7,
              iv_words: int = 16000, quiet: bool = False) -> Dict:
    """Word discrimination on TTS renders made now (voices and settings drawn afresh, seed 7):
    IV = words of the training list, OOV = the held-out list. Same-different AP over all pairs of
    clips, and text->audio AP."""
    from multiprocessing import Pool

    from kws import tts
    from kws.corpus.vocab import read_list
    from kws.metrics import cross_modal_ap

    engines = tts.available_engines()
    if not engines:
        return {"skipped": "no TTS engine (apt-get install espeak-ng flite)"}
    rnd = random.Random(seed)
    out: Dict = {"engines": engines, "renders_per_word": renders}
    for group, pool in (("iv", read_list("iv")[:iv_words]), ("oov", read_list("oov"))):
        words = rnd.sample(pool, min(n_words, len(pool)))
        jobs = [(w, tts.random_render(w, engines[(i + k) % len(engines)], rnd))
                for i, w in enumerate(words) for k in range(renders)]
        batches = [[r for _, r in jobs[i:i + 40]] for i in range(0, len(jobs), 40)]
        with Pool() as pool_:
            audio = [a for res in progress(pool_.imap(_render, batches), f"synthetic {group}",
                                            len(batches), quiet) for a in res]
        keep = [(w, a.astype(np.float32) / 32768.0) for (w, _), a in zip(jobs, audio) if a is not None]
        labels = np.array([w for w, _ in keep])
        emb = bundle.embed_clips([a for _, a in keep])
        uniq = np.unique(labels)
        temb = np.stack([bundle.embed_text(w) for w in uniq])
        out[group] = {"words": int(uniq.size), "clips": len(keep),
                      "same_different_ap": same_different_ap(emb, labels),
                      "text_to_audio_ap": cross_modal_ap(emb, labels, temb, uniq)}
    return out


def std(bundle: Bundle, data: Path, n_utts: int, max_queries: int, quiet: bool = False,
        tts: bool = True) -> Dict:
    """STD on speechocean762 (kws.std): the paper's windows and the detector's longer ones; text
    queries joined by TTS renderings unless ``tts`` is False, as typed keywords are."""
    from kws.corpus.align import load_alignments
    from kws.search import IndexConfig
    from kws.std import run_std

    recs = load_alignments()
    out = {}
    for name, ws in (("paper_windows", (0.2, 0.3, 0.4, 0.5, 0.6)),
                     ("detector_windows", (0.3, 0.45, 0.6, 0.75, 0.9))):
        r = run_std(bundle, data, recs, n_utts, max_queries, "b",
                    IndexConfig(window_s=ws, variant=bundle.variant), quiet=quiet, tts=tts)
        out[name] = r
    return out


def markdown(r: Dict) -> str:
    ww, fs, bg = r["wakewords"], r["fsdd"], r["background"]
    tv = r.get("training_validation", {})
    half = "held-out half" if r.get("test_half", "b") == "b" else "TUNING half 'a' (not for reporting)"
    lines = [f"Model `{r['bundle']}` ({r['variant']}), {half} of ../shared/data; typed keywords: "
             f"{r.get('text_keywords', 'text only')}; thresholds from the background "
             f"{'hop bank (kws.calibration)' if r.get('thresholds') == 'hops' else 'window bank (99.9th percentile)'}:", "",
             "| measure | value |", "|---|---|"]
    for w in WAKEWORDS:
        lines.append(f"| wake word '{w}' EER, text-enrolled / 3 examples | {ww['text']['per_keyword'][w]:.1%} / {ww['examples']['per_keyword'][w]:.1%} |")
    lines.append(f"| wake words mean EER, text / examples ({ww['clips']} clips) | {ww['text']['mean_eer']:.1%} / {ww['examples']['mean_eer']:.1%} |")
    lines.append("| wake words mean EER (text) with noise 20 / 10 / 5 / 0 dB | "
                 + " / ".join(f"{ww['noise_text'][k]:.1%}" for k in ('20dB', '10dB', '5dB', '0dB')) + " |")
    lines.append(f"| wake words mean EER (text), reverberation RT60 0.5 s | {ww['reverb_text']:.1%} |")
    kinds = ww.get("noise_kinds_text_10dB", {})
    if kinds:
        lines.append(f"| wake words mean EER (text) at 10 dB: {' / '.join(kinds)} (held-out talkers; music never trained on) | "
                     + " / ".join(f"{v:.1%}" for v in kinds.values()) + " |")
    lines.append(f"| FSDD digits, 10-way zero-shot accuracy from text ({fs['clips']} clips) | {fs['text_accuracy_10way']:.1%} |")
    lines.append(f"| FSDD digits, mean per-digit EER from text | {fs['text_mean_eer']:.1%} |")
    lines.append(f"| FSDD same-different AP (word discrimination, real speech) | {fs['same_different_ap']:.1%} |")
    lines.append(f"| false alarms / hour on read speech at calibrated thresholds ({bg['hours']:.2f} h) | {bg['false_alarms_per_hour_calibrated']:.1f} |")
    lines.append(f"| miss rate at 1 false alarm / hour (mean of 3 wake words) | {bg['mean_miss_at_1fa_per_hour']:.1%} |")
    for name, st in r.get("streamed", {}).items():
        lines.append(f"| streamed as deployed ({name}; {st['planted']} planted clips, {st['hours']:.2f} h of speech): "
                     f"recall / false alarms per hour | {st['recall']:.1%} / {st['false_alarms_per_hour']:.1f} |")
    syn = r.get("synthetic", {})
    if "iv" in syn:
        lines.append(f"| synthetic word discrimination AP, IV / OOV ({syn['iv']['words']} + {syn['oov']['words']} words x {syn['renders_per_word']} fresh renders) | {syn['iv']['same_different_ap']:.1%} / {syn['oov']['same_different_ap']:.1%} |")
        lines.append(f"| synthetic text->audio AP, IV / OOV | {syn['iv']['text_to_audio_ap']:.1%} / {syn['oov']['text_to_audio_ap']:.1%} |")
    for name, st in r.get("std", {}).items():
        g = st["groups"]
        lines.append(f"| STD on real read speech ({st['utterances']} utterances, {st['audio_hours']:.2f} h), windows {min(st['window_s'])}-{max(st['window_s'])} s: EER IV / OOV ({g['iv']['queries']} / {g['oov']['queries']} text queries) | {g['iv']['mean_eer']:.1%} / {g['oov']['mean_eer']:.1%} |")
        lines.append(f"| STD precision at 10, IV / OOV (windows {min(st['window_s'])}-{max(st['window_s'])} s) | {g['iv']['mean_p_at_10']:.1%} / {g['oov']['mean_p_at_10']:.1%} |")
    of = "the teacher's training validation" if r.get("training_validation_of") == "teacher" else "training validation"
    if tv:
        lines.append(f"| synthetic held-out AP, IV / OOV words ({of}) | {tv.get('ap_iv', float('nan')):.1%} / {tv.get('ap_oov', float('nan')):.1%} |")
        lines.append(f"| synthetic text->audio AP, IV / OOV ({of}) | {tv.get('xap_iv', float('nan')):.1%} / {tv.get('xap_oov', float('nan')):.1%} |")
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
    for mode, style in (("text", "-"), ("examples", "--")):
        for w in WAKEWORDS:
            s = r["wakewords"][mode]["_scores"][w]
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
    ax.set_title("DET, real wake-word clips (held-out half)")
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
    for mode in ("text", "examples"):
        slim["wakewords"][mode].pop("_scores")
    (out / "report.json").write_text(json.dumps(slim, indent=2))
    return ["report.json", "report.md"] + (["det_wakewords.png"] if plotted else [])


if __name__ == "__main__":
    from kws.commands import run_as

    raise SystemExit(run_as("evaluate"))
