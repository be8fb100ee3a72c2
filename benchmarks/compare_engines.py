"""Side by side on the same audio: kws (text / 3 examples), PocketSphinx keyphrase spotting and
EfficientWord-Net (references from the same 3 examples).

    pip install pocketsphinx
    pip install --no-deps efficientword-net   # its pyaudio/typer/twine needs are for its mic demo
    python benchmarks/compare_engines.py --data ../shared/data --out benchmarks/results

Data (../shared/data): the held-out half 'b' of the wake words (alexa, computer, jarvis) and of
the FSDD digits; the enrollment examples come from half 'a'. Negatives for a keyword are the
clips of the other keywords of its set, and background speech (speechocean762 read sentences by
the held-out half of its speakers, which hold none of the keywords) for false alarms per hour. Clean and with real noise at 10 dB.

How each engine gives a score:
- kws: best cosine of the detector's windows (0.3-0.9 s every 0.15 s) with the keyword's vector
  (text embedding, or the mean of the 3 example embeddings, enrolled as `python -m kws enroll add
  --examples` enrolls them: checked and trimmed, kws.enrollment); background peaks 1 s apart.
- PocketSphinx 5 (bundled en-us model, keyphrase search, all keywords of a set in one search):
  it only says detected / not detected at a threshold, so each clip or stretch of background is
  decoded at 9 thresholds 1e-80..1e0 and a clip's score is the log10 of the highest threshold
  still detecting the keyword. Words its dictionary lacks get kws's G2P pronunciation.
- EfficientWord-Net 1.0.5 (bundled ResNet-50 ArcFace ONNX, fp32): 1.5 s windows (clips padded
  centred, as its reference generator pads them) every 0.25 s, score = best cosine with the
  example references (its own engine uses the same max-cosine rule).

Metrics: mean EER over the keywords of a set, clip-level; miss rate at 1 false alarm per hour
(on the background); real-time factor on one core over the background audio (CPU time; kws
scores offline, in batches; PocketSphinx's time divided by its 9 passes); model size on disk (what
runs while listening); resident memory the engine adds, measured in a fresh process.
Prints a markdown table and writes results.json and det.png (DET curves, wake words, clean).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Dict, List

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("KWS_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kws.audio import AudioError  # noqa: E402
from kws.bundle import Bundle  # noqa: E402
from kws.corpus.real import (DIGITS, WAKEWORDS, fsdd_clips, load_clip, read_speech, split_of,  # noqa: E402
                             wakeword_clips)
from kws.detector import DetectorConfig, max_scores, window_scores  # noqa: E402
from kws.evaluate import _noise_bank, enrollable, example_detector, mix, text_detector  # noqa: E402
from kws.metrics import eer, miss_at_false_alarm_rate, roc_points  # noqa: E402
from kws.progress import progress  # noqa: E402

PS_THRESHOLDS = [1e-80, 1e-60, 1e-50, 1e-40, 1e-30, 1e-20, 1e-10, 1e-5, 1.0]


def peaks(series: np.ndarray, hop_s: float, refractory_s: float = 1.0) -> List[float]:
    """Event scores of a score series: local maxima, each suppressing lower ones within 1 s."""
    order = np.argsort(-series)
    taken = np.zeros(series.size, bool)
    r = int(round(refractory_s / hop_s))
    out = []
    for i in order:
        if taken[i] or series[i] <= -1:
            continue
        out.append(float(series[i]))
        taken[max(0, i - r): i + r + 1] = True
    return out


# ----------------------------------------------------------------------------- engines
class KwsEngine:
    def __init__(self, name: str, detector):
        self.name, self.det = name, detector
        self.cfg = detector.config

    def clip_scores(self, clips: List[np.ndarray]) -> np.ndarray:
        return np.stack([max_scores(self.det, x) for x in clips])

    def background_events(self, audio: List[np.ndarray]) -> List[List[float]]:
        ev = [[] for _ in self.det.keywords.names]
        for x in audio:
            s = window_scores(self.det.bundle, self.det.keywords, x, self.cfg)
            for k in range(s.shape[1]):
                ev[k] += peaks(s[:, k], self.cfg.hop_s)
        return ev


class PocketSphinxEngine:
    name = "PocketSphinx keyphrase"

    def __init__(self, words: List[str]):
        import pocketsphinx

        from kws.phonemes import pronounce

        self.words = words
        self.decoders = []
        for t in PS_THRESHOLDS:
            d = pocketsphinx.Decoder(loglevel="FATAL", lm=None, keyphrase=words[0], kws_threshold=t)
            for w in words:
                if d.lookup_word(w) is None:
                    d.add_word(w, " ".join(pronounce(w).phonemes).lower(), True)
            path = Path(f"/tmp/kws-ps-{os.getpid()}-{len(self.decoders)}.kws")
            path.write_text("".join(f"{w} /{t:.0e}/\n" for w in words))
            d.add_kws("kws", str(path))
            d.activate_search("kws")
            self.decoders.append(d)

    def _detections(self, d, x: np.ndarray):
        pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16).tobytes()
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
        return [(s.word.strip(), s.start_frame / 100) for s in (d.seg() or [])
                if s.word.strip() in self.words]

    def clip_scores(self, clips: List[np.ndarray]) -> np.ndarray:
        out = np.full((len(clips), len(self.words)), -100.0)
        for i, x in enumerate(clips):
            for t, d in zip(PS_THRESHOLDS, self.decoders):
                for w, _ in self._detections(d, x):
                    k = self.words.index(w)
                    out[i, k] = max(out[i, k], np.log10(t))
        return out

    def background_events(self, audio: List[np.ndarray]) -> List[List[float]]:
        counts = np.zeros((len(PS_THRESHOLDS), len(self.words)), int)
        for x in audio:
            for j, d in enumerate(self.decoders):
                for w, _ in self._detections(d, x):
                    counts[j, self.words.index(w)] += 1
        ev = []
        for k in range(len(self.words)):
            e = []
            for j in range(len(PS_THRESHOLDS)):
                nxt = counts[j + 1, k] if j + 1 < len(PS_THRESHOLDS) else 0
                e += [float(np.log10(PS_THRESHOLDS[j]))] * max(0, counts[j, k] - nxt)
            ev.append(e)
        return ev


class EfficientWordEngine:
    name = "EfficientWord-Net (3 examples)"
    hop_s = 0.25

    def __init__(self, examples: Dict[str, List[np.ndarray]]):
        from eff_word_net.audio_processing import Resnet50_Arc_loss

        self.model = Resnet50_Arc_loss()
        self.words = list(examples)
        self.refs = [np.concatenate([self.model.audioToVector(self._fit(x)) for x in ex]) for ex in examples.values()]

    def _fit(self, x: np.ndarray) -> np.ndarray:
        n = self.model.window_frames
        x = x.astype(np.float32)
        if x.size >= n:
            s = (x.size - n) // 2
            return x[s:s + n]
        pad = n - x.size
        return np.pad(x, (pad // 2, pad - pad // 2))

    def _score(self, v: np.ndarray) -> np.ndarray:
        return np.array([float((r @ v.T).max()) for r in self.refs])

    def clip_scores(self, clips: List[np.ndarray]) -> np.ndarray:
        return np.stack([self._score(self.model.audioToVector(self._fit(x))) for x in clips])

    def background_events(self, audio: List[np.ndarray]) -> List[List[float]]:
        ev = [[] for _ in self.words]
        n, hop = self.model.window_frames, int(self.hop_s * 16000)
        for x in audio:
            x = np.pad(x.astype(np.float32), (0, max(0, n - x.size)))
            s = np.stack([self._score(self.model.audioToVector(x[i:i + n]))
                          for i in range(0, x.size - n + 1, hop)])
            for k in range(len(self.words)):
                ev[k] += peaks(s[:, k], self.hop_s)
        return ev


def model_mb(engine) -> float:
    if isinstance(engine, KwsEngine):   # the audio encoder is all that runs while listening
        b = engine.det.bundle
        return (b.path / b.manifest["variants"][b.variant]["audio"]).stat().st_size / 1e6
    if isinstance(engine, PocketSphinxEngine):
        import pocketsphinx

        p = Path(pocketsphinx.get_model_path())
        am = p / "en-us" / "en-us"   # acoustic model + dictionary (no language model in keyphrase search)
        return (sum(f.stat().st_size for f in am.rglob("*") if f.is_file())
                + (p / "en-us" / "cmudict-en-us.dict").stat().st_size) / 1e6
    import eff_word_net

    p = Path(eff_word_net.__file__).parent / "models" / "resnet_50_arc" / "slim_93%_accuracy_72.7390%.onnx"
    return p.stat().st_size / 1e6


def probe_memory(engine: str, data: Path) -> float:
    """Resident memory (MB) an engine adds in a fresh process: load it, score 3 clips."""
    import subprocess

    code = (f"import sys; sys.argv=['x']; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import compare_engines as c; print(c._memory_child({engine!r}, {str(data)!r}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    try:
        return float(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return float("nan")


def _memory_child(engine: str, data: str) -> float:
    clips = [c for c in wakeword_clips(Path(data)) if split_of(c) == "a"]
    ex = {w: enrollable([c for c in clips if c.label == w], 3) for w in WAKEWORDS}
    before = rss_mb()
    if engine.startswith("kws"):
        b = Bundle.load(variant="int8")
        eng = KwsEngine(engine, text_detector(b, WAKEWORDS, DetectorConfig()) if engine == "kws-text"
                        else example_detector(b, ex, DetectorConfig()))
    elif engine == "pocketsphinx":
        eng = PocketSphinxEngine(list(WAKEWORDS))
        eng.decoders = eng.decoders[:1]     # one threshold, as deployed
    else:
        eng = EfficientWordEngine(ex)
    eng.clip_scores([x for v in ex.values() for x in v])
    return rss_mb() - before


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


# ----------------------------------------------------------------------------- data
def load_set(data: Path, n_per: int, seed: int):
    pick = random.Random(seed)

    def loaded(clips, k):
        out = []
        for c in pick.sample(clips, len(clips)):
            try:
                out.append((c.label, load_clip(c)))
            except AudioError:
                continue
            if len(out) == k:
                break
        return out

    sets = {}
    ww = wakeword_clips(data)
    fs = fsdd_clips(data)
    for name, words, clips, n in (("wake words", WAKEWORDS, ww, n_per), ("FSDD digits", DIGITS, fs, max(10, n_per // 3))):
        test, ex = [], {}
        for w in words:
            test += loaded([c for c in clips if c.label == w and split_of(c) == "b"], n)
            # as a user enrolls: clips enrollment refuses (too short, too much sound) are skipped
            a = [c for c in clips if c.label == w and split_of(c) == "a"]
            ex[w] = enrollable(pick.sample(a, len(a)), 3)
        sets[name] = {"words": list(words), "labels": [l for l, _ in test], "clips": [x for _, x in test],
                      "examples": ex}
    return sets


def mean_eer(scores: np.ndarray, labels: List[str], words: List[str]) -> float:
    lab = np.array(labels)
    return float(np.mean([eer(scores[:, k], lab == w)[0] for k, w in enumerate(words)]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--per-keyword", type=int, default=60, help="wake-word clips per keyword (digits: a third)")
    ap.add_argument("--background-s", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--engines", default="kws-text,kws-examples,pocketsphinx,efficientword",
                    help="comma-separated subset")
    args = ap.parse_args(argv)
    if not (args.data / "wakewords").is_dir():
        print(f"error: no recordings at {args.data}", file=sys.stderr)
        return 2
    chosen = args.engines.split(",")
    rng = np.random.default_rng(args.seed)
    sets = load_set(args.data, args.per_keyword, args.seed)
    bg = read_speech(args.data, args.background_s, random.Random(args.seed + 1), half="b")
    hours = sum(x.size for x in bg) / 16000 / 3600
    noise = _noise_bank(args.data)
    bundle = Bundle.load(variant="int8")
    cfg = DetectorConfig(variant="int8")
    results: Dict = {"background_hours": hours, "sets": {}}
    det_curves = {}
    mem_by: Dict[str, float] = {}
    for set_name, s in sets.items():
        noisy = [mix(x, noise, 10, rng) for x in s["clips"]]
        engines = []
        for e in chosen:
            try:
                if e == "kws-text":
                    eng = KwsEngine("kws, text", text_detector(bundle, s["words"], cfg))
                elif e == "kws-examples":
                    eng = KwsEngine("kws, 3 examples", example_detector(bundle, s["examples"], cfg))
                elif e == "pocketsphinx":
                    eng = PocketSphinxEngine(s["words"])
                elif e == "efficientword":
                    eng = EfficientWordEngine(s["examples"])
                else:
                    raise SystemExit(f"unknown engine {e}")
            except ImportError as exc:
                print(f"skipping {e}: {exc}", file=sys.stderr)
                continue
            engines.append((eng, mem_by.setdefault(e, probe_memory(e, args.data))))
        rows = {}
        for eng, mem in engines:
            clean = eng.clip_scores(progress(s["clips"], f"{set_name}: {eng.name}"))
            noisy_s = eng.clip_scores(noisy)
            t0 = time.process_time()
            ev = eng.background_events(bg)
            cpu = time.process_time() - t0
            lab = np.array(s["labels"])
            miss = [miss_at_false_alarm_rate(clean[lab == w, k], ev[k], hours, 1.0)[0]
                    for k, w in enumerate(s["words"])]
            if isinstance(eng, PocketSphinxEngine):
                cpu /= len(PS_THRESHOLDS)    # a deployed PocketSphinx runs one threshold, not 9
            rows[eng.name] = {"eer_clean": mean_eer(clean, s["labels"], s["words"]),
                              "eer_10db": mean_eer(noisy_s, s["labels"], s["words"]),
                              "miss_at_1fa_h": float(np.mean(miss)),
                              "fa_events_bg": int(sum(len(e) for e in ev)),
                              "rtf_one_core": cpu / (hours * 3600), "model_mb": model_mb(eng),
                              "load_rss_mb": mem}
            if set_name == "wake words":
                det_curves[eng.name] = (clean, s["labels"], s["words"])
            print(json.dumps({"set": set_name, "engine": eng.name, **rows[eng.name]}), flush=True)
        results["sets"][set_name] = {"clips": len(s["clips"]), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    lines = ["| set | engine | EER clean | EER 10 dB | miss @ 1 FA/h | RTF 1 core | model MB | load RSS MB |",
             "|---|---|---|---|---|---|---|---|"]
    for set_name, r in results["sets"].items():
        for name, v in r["rows"].items():
            lines.append(f"| {set_name} ({r['clips']} clips) | {name} | {v['eer_clean']:.1%} | {v['eer_10db']:.1%} | "
                         f"{v['miss_at_1fa_h']:.1%} | {v['rtf_one_core']:.3f} | {v['model_mb']:.1f} | {v['load_rss_mb']:.0f} |")
    table = "\n".join(lines)
    (args.out / "table.md").write_text(table + f"\n\nBackground speech: {hours:.2f} h.\n")
    print(table)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from scipy.stats import norm

        fig, ax = plt.subplots(figsize=(6, 5))
        c = lambda v: norm.ppf(np.clip(v, 1e-3, 1 - 1e-3))
        for name, (sc, labels, words) in det_curves.items():
            lab = np.array(labels)
            pos = np.concatenate([sc[lab == w, k] for k, w in enumerate(words)])
            neg = np.concatenate([sc[lab != w, k] for k, w in enumerate(words)])
            fpr, miss, _ = roc_points(np.r_[pos, neg], np.r_[np.ones(pos.size), np.zeros(neg.size)])
            ax.plot(c(fpr), c(miss), label=name)
        ticks = [0.001, 0.01, 0.05, 0.2, 0.5]
        ax.set_xticks(c(ticks), [f"{t:.1%}" for t in ticks])
        ax.set_yticks(c(ticks), [f"{t:.1%}" for t in ticks])
        ax.set_xlabel("false alarm rate (other wake words' clips)")
        ax.set_ylabel("miss rate")
        ax.set_title("Wake words (held-out half), clean: pooled DET")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.out / "det.png", dpi=110)
    except ImportError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
