"""Side by side on the same audio: kws (typed / 3 examples / both), PocketSphinx keyphrase
spotting, EfficientWord-Net (references from the same 3 examples) and openWakeWord (its
pre-trained heads).

    pip install pocketsphinx
    pip install --no-deps efficientword-net     # its pyaudio/typer/twine needs are for its mic demo
    pip install --no-deps openwakeword==0.5.1   # onnx inference; its tflite/speex needs are optional
    python benchmarks/compare_engines.py --data ../shared/data --out benchmarks/results

A missing engine is skipped with a message. Prints a markdown table and writes results.json,
table.md and det.png (DET curves, wake words, clean) to --out: re-running it is all a new model
needs. --per-keyword, --background-s, --sets and --engines make a smaller run.

Data (../shared/data): the held-out half 'b' of the wake words (alexa, computer, jarvis) and of
the FSDD digits, trimmed by energy and then given 0.5 s of silence either side (every engine hears
the same padded clip; PocketSphinx misses many words that start at the first sample). Negatives
for a keyword are the clips of the other keywords of its set. Noisy: real noise (dishes, bike,
tap) over the whole padded clip, 10 dB under the word. False alarms: every recording of held-out
speakers there is (kws.corpus.real.held_out_speech_files: speechocean762 speakers of half 'b' and
LibriSpeech test-other, 1.5 h; none says a keyword, and kws never trained on any of it).

Enrollment is the product's (kws.evaluate's helpers, what `python -m kws enroll add` does, with
the default threshold for 1 false alarm an hour): "typed" is `add NAME` (Kokoro renders NAME in
its 28 voices, one template each); "3 examples" is `add --name NAME --examples ...` with the
files of half 'a' as they are (kws.evaluate.accepted_examples: unusable recordings refused and
replaced by the next, the silence trimmed); "typed + 3 examples" is `add NAME --examples ...`.
EfficientWord-Net gets the same trimmed examples.

How each engine gives a score:
- kws: the template score (kws.spot.templates: mean cosine of a template's vectors along the
  diagonal, best template of the keyword) at every 80 ms vector of the model's front end, as the
  detector scores a stream (computed offline in batches: kws.evaluate.clip_scores); background
  events are the score's peaks as the detector fires on them (kws.spot.events.peaks, 1 s apart).
- PocketSphinx 5 (bundled en-us model, keyphrase search, all keywords of a set in one search):
  it only says detected / not detected at a threshold, so each clip or file of background is
  decoded at 11 thresholds 1e-60..1e50 and a clip's score is the log10 of the highest threshold
  still detecting the keyword. A keyword is the normalised words of its text; each word its
  dictionary lacks gets kws's pronunciation in upper-case ARPAbet.
- EfficientWord-Net 1.0.5 (bundled ResNet-50 ArcFace ONNX, fp32, one thread): 1.5 s windows
  (clips padded centred, as its reference generator pads them) every 0.25 s, score = best cosine
  with the example references (its own engine uses the same max-cosine rule).
- openWakeWord 0.5.1 (onnx, its pre-trained heads; 1280-sample int16 frames): a clip's score is
  its highest frame score over Model.predict_clip (1 s of silence either side, its own protocol),
  background peaks 1 s apart. Of our keywords it has a head for 'alexa' only ('hey jarvis' is
  another phrase than 'jarvis'), so its row covers alexa alone; the alexa table compares it.

Metrics: mean EER over the keywords of a set, clip-level; miss rate at 1 false alarm per hour
(the background's false alarms allowed: floor(hours), the same for every engine); real-time
factor on one core over the background audio (CPU time; kws scores offline in batches;
PocketSphinx's time divided by its 11 passes); model size on disk (what runs while listening);
resident memory the engine adds, measured in a fresh process.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Sequence

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("KWS_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kws.audio.io import AudioError, load_audio  # noqa: E402
from kws.corpus.real import (DIGITS, WAKEWORDS, fsdd_clips, held_out_speech_files, load_clip,  # noqa: E402
                             split_of, wakeword_clips)
from kws.enroll.store import KeywordSet  # noqa: E402
from kws.spot.events import peaks  # noqa: E402
from kws.evaluate import (Renders, _noise_bank, accepted_examples, background_peaks, clip_scores,  # noqa: E402
                          keywords, raw_recordings)
from kws.metrics import eer, miss_at_false_alarm_rate, roc_points  # noqa: E402
from kws.model.model import Model  # noqa: E402
from kws.progress import progress  # noqa: E402

# PocketSphinx keyphrase thresholds, permissive to strict: above 1e0 it still detects a third of
# the wake-word clips (up to 1e50), and at 1e0 it gave 'alexa' over 1 false alarm an hour
PS_THRESHOLDS = [1e-60, 1e-40, 1e-30, 1e-20, 1e-10, 1e0, 1e10, 1e20, 1e30, 1e40, 1e50]
PAD_S = 0.5
LISTENING_S = 1.0          # silence kws's detector has heard before each clip (KwsEngine.clip_scores)
ENGINES = ("kws-typed", "kws-examples", "kws-typed+examples", "pocketsphinx", "efficientword", "openwakeword")
SETS = {"wake": "wake words", "digits": "FSDD digits"}


class NotApplicable(Exception):
    """The engine has nothing to listen for in this set."""


def events(series: np.ndarray, hop_s: float, refractory_s: float = 1.0) -> List[float]:
    """Event scores of another engine's score series (one score every ``hop_s``): its peaks by
    kws's rule (kws.spot.events.peaks), ``refractory_s`` apart, any score counting."""
    return peaks(series, refractory=int(round(refractory_s / hop_s)), floor=-np.inf).tolist()


def pcm16(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


# ----------------------------------------------------------------------------- engines
class KwsEngine:
    """kws's keywords (a KeywordSet made for ``model``), scored as the detector scores them."""

    def __init__(self, name: str, model: Model, ks: KeywordSet):
        self.name, self.model, self.keywords = name, model, ks
        self.words = ks.names

    def clip_scores(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Each keyword's best score in each clip (the clips are padded already), scored as a
        detector that has been listening hears it: after LISTENING_S of silence (kws.evaluate does
        the same). Without it, a clip's first vectors would be the start of a stream, where the
        head's context is the edge-padded first vector: with 0.5 s of padding that vector already
        holds the word's onset (the head then missed 19.4 % of the typed wake words at 1 false alarm
        an hour instead of the figure in docs/evaluation.md)."""
        lead = np.zeros(int(LISTENING_S * 16000), np.float32)
        return clip_scores(self.model, self.keywords,
                           [self.model.frontend.frames(np.concatenate([lead, x])) for x in clips])

    def background_events(self, audio: Iterable[np.ndarray]) -> List[List[float]]:
        ev: List[List[float]] = [[] for _ in self.words]
        for x in audio:
            for k, p in enumerate(background_peaks(self.model, self.keywords, [self.model.frontend.frames(x)])):
                ev[k] += p.tolist()
        return ev

    def model_mb(self) -> float:   # what runs while listening: the front end and the head, if any
        m = self.model.manifest
        files = [m["frontend"]["network"], m["frontend"]["constants"]] + ([m["head"]["file"]] if m.get("head") else [])
        return sum((self.model.path / f).stat().st_size for f in files) / 1e6


def add_missing_words(decoder, phrases: Sequence[str]) -> Dict[str, str]:
    """Give a PocketSphinx decoder kws's pronunciation of every word of ``phrases`` (normalised,
    space-separated) that its dictionary lacks: one word at a time, in upper-case ARPAbet, which
    is what PocketSphinx 5 accepts. Returns {word: phones} of the words added."""
    from kws.enroll.phonemes import word_phonemes

    added: Dict[str, str] = {}
    for phrase in phrases:
        for w in phrase.split():
            if w not in added and decoder.lookup_word(w) is None:
                phones = " ".join(word_phonemes(w)[0]).upper()
                decoder.add_word(w, phones, True)
                added[w] = phones
    return added


class PocketSphinxEngine:
    name = "PocketSphinx keyphrase"

    def __init__(self, words: Sequence[str], thresholds: Sequence[float] = PS_THRESHOLDS):
        import pocketsphinx

        from kws.enroll.phonemes import normalize

        self.words = list(words)
        self.thresholds = list(thresholds)
        self.phrases = [" ".join(normalize(w)) for w in self.words]     # what it listens for
        self.added: Dict[str, str] = {}
        self.decoders = []
        for t in self.thresholds:
            d = pocketsphinx.Decoder(loglevel="FATAL", lm=None)
            self.added = add_missing_words(d, self.phrases)
            with tempfile.NamedTemporaryFile("w", suffix=".kws", delete=False) as fh:
                fh.write("".join(f"{p} /{t:.0e}/\n" for p in self.phrases))
            try:
                d.add_kws("kws", fh.name)
            finally:
                os.unlink(fh.name)
            d.activate_search("kws")
            self.decoders.append(d)

    def _detections(self, d, x: np.ndarray) -> List[int]:
        d.start_utt()
        d.process_raw(pcm16(x).tobytes(), full_utt=True)
        d.end_utt()
        return [self.phrases.index(s.word.strip()) for s in (d.seg() or []) if s.word.strip() in self.phrases]

    def clip_scores(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        out = np.full((len(clips), len(self.words)), -100.0)
        for i, x in enumerate(clips):
            for t, d in zip(self.thresholds, self.decoders):
                for k in self._detections(d, x):
                    out[i, k] = max(out[i, k], np.log10(t))
        return out

    def background_events(self, audio: Iterable[np.ndarray]) -> List[List[float]]:
        counts = np.zeros((len(self.thresholds), len(self.words)), int)
        for x in audio:
            for j, d in enumerate(self.decoders):
                for k in self._detections(d, x):
                    counts[j, k] += 1
        ev = []
        for k in range(len(self.words)):
            e: List[float] = []
            for j, t in enumerate(self.thresholds):
                nxt = counts[j + 1, k] if j + 1 < len(self.thresholds) else 0
                e += [float(np.log10(t))] * max(0, counts[j, k] - nxt)
            ev.append(e)
        return ev

    def model_mb(self) -> float:
        import pocketsphinx

        p = Path(pocketsphinx.get_model_path())
        am = p / "en-us" / "en-us"   # acoustic model + dictionary (no language model in keyphrase search)
        return (sum(f.stat().st_size for f in am.rglob("*") if f.is_file())
                + (p / "en-us" / "cmudict-en-us.dict").stat().st_size) / 1e6


class EfficientWordEngine:
    name = "EfficientWord-Net (3 examples)"
    hop_s = 0.25

    def __init__(self, examples: Dict[str, List[np.ndarray]]):
        from eff_word_net import audio_processing as ewn

        options = ewn.rt.SessionOptions

        def one_thread():                    # one onnxruntime thread, like the other engines
            so = options()
            so.intra_op_num_threads = so.inter_op_num_threads = 1
            return so

        ewn.rt.SessionOptions = one_thread
        try:
            self.model = ewn.Resnet50_Arc_loss()
        finally:
            ewn.rt.SessionOptions = options
        self.words = list(examples)
        self.refs = [np.concatenate([self.model.audioToVector(self._fit(x)) for x in ex]) for ex in examples.values()]

    @staticmethod
    def _path() -> Path:
        import eff_word_net

        return Path(eff_word_net.__file__).parent / "models" / "resnet_50_arc" / "slim_93%_accuracy_72.7390%.onnx"

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

    def clip_scores(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([self._score(self.model.audioToVector(self._fit(x))) for x in clips])

    def background_events(self, audio: Iterable[np.ndarray]) -> List[List[float]]:
        ev: List[List[float]] = [[] for _ in self.words]
        n, hop = self.model.window_frames, int(self.hop_s * 16000)
        for x in audio:
            x = np.pad(x.astype(np.float32), (0, max(0, n - x.size)))
            s = np.stack([self._score(self.model.audioToVector(x[i:i + n]))
                          for i in range(0, x.size - n + 1, hop)])
            for k in range(len(self.words)):
                ev[k] += events(s[:, k], self.hop_s)
        return ev

    def model_mb(self) -> float:
        return self._path().stat().st_size / 1e6


class OpenWakeWordEngine:
    name = "openWakeWord 0.5.1"
    HEADS = {"alexa": "alexa"}        # our keywords it has a pre-trained head for -> head name
    FRAME = 1280                      # samples per Model.predict call (80 ms)

    def __init__(self, words: Sequence[str]):
        from openwakeword.model import Model

        self.words = [w for w in words if w in self.HEADS]
        if not self.words:
            raise NotApplicable(f"no pre-trained openWakeWord head for {', '.join(words)}")
        self.heads = [self.HEADS[w] for w in self.words]
        # Model replaces the names in the list it is given by paths: give it a copy
        self.model = Model(wakeword_models=list(self.heads), inference_framework="onnx")

    def clip_scores(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(clips), len(self.words)))
        for i, x in enumerate(clips):
            self.model.reset()
            frames = self.model.predict_clip(pcm16(x), padding=1)
            out[i] = [max(f[h] for f in frames) for h in self.heads]
        return out

    def background_events(self, audio: Iterable[np.ndarray]) -> List[List[float]]:
        ev: List[List[float]] = [[] for _ in self.words]
        for x in audio:
            self.model.reset()
            pcm = pcm16(x)
            s = np.array([[p[h] for h in self.heads] for p in
                          (self.model.predict(pcm[i:i + self.FRAME]) for i in range(0, pcm.size - self.FRAME + 1, self.FRAME))])
            for k in range(len(self.words)):
                ev[k] += events(s[:, k], self.FRAME / 16000)
        return ev

    def model_mb(self) -> float:
        import openwakeword

        d = Path(openwakeword.__file__).parent / "resources" / "models"
        files = ["melspectrogram.onnx", "embedding_model.onnx"] + [f"{h}_v0.1.onnx" for h in self.heads]
        return sum((d / f).stat().st_size for f in files) / 1e6


KWS_ROWS = {"kws-typed": "kws, typed", "kws-examples": "kws, 3 examples",
            "kws-typed+examples": "kws, typed + 3 examples"}


def make_engine(engine: str, s: Dict, enrolled: "Enrolled", model: Model, renders: Renders):
    """One engine for the set ``s`` (load_set). ``enrolled``: enroll_set of it, whose trimmed
    examples EfficientWord-Net gets too; ``renders``: the Kokoro renderings of typed keywords,
    made once. ImportError: the engine is not installed."""
    words = s["words"]
    if engine == "kws-typed":            # `kws enroll add NAME`
        return KwsEngine(KWS_ROWS[engine], model, keywords(model, renders, words))
    if engine == "kws-examples":         # `kws enroll add --name NAME --examples ...`
        return KwsEngine(KWS_ROWS[engine], model, enrolled.keywords)
    if engine == "kws-typed+examples":   # `kws enroll add NAME --examples ...`: NAME's renderings too
        return KwsEngine(KWS_ROWS[engine], model, keywords(model, renders, words, enrolled.examples))
    if engine == "pocketsphinx":
        return PocketSphinxEngine(words)
    if engine == "efficientword":
        return EfficientWordEngine(enrolled.examples)
    if engine == "openwakeword":
        return OpenWakeWordEngine(words)
    raise SystemExit(f"unknown engine {engine!r} (one of {', '.join(ENGINES)})")


# ----------------------------------------------------------------------------- memory
def probe_memory(engine: str, words: Sequence[str], examples: Dict[str, List[np.ndarray]],
                 ks: KeywordSet = None, model: Model = None) -> float:
    """Resident memory (MB) an engine adds in a fresh process: load it, score the examples. A kws
    engine loads ``model`` and its keywords ``ks`` from a store, as the detector does (no TTS)."""
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        ex = Path(tmp) / "examples.npz"
        np.savez(ex, **{f"{w}__{i}": x for w, xs in examples.items() for i, x in enumerate(xs)})
        store = Path(tmp) / "store"
        if ks is not None:
            ks.save(store)
        code = (f"import sys; sys.argv=['x']; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                f"import compare_engines as c; print(c._memory_child({engine!r}, {list(words)!r}, {str(ex)!r}, "
                f"{str(store)!r}, {str(model.path) if model is not None else None!r}))")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    try:
        return float(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        print(f"memory of {engine}: {r.stderr.strip()[-300:]}", file=sys.stderr)
        return float("nan")


def _memory_child(engine: str, words: List[str], examples_npz: str, store: str, model_path=None) -> float:
    with np.load(examples_npz) as z:
        ex: Dict[str, List[np.ndarray]] = {w: [] for w in words}
        for key in sorted(z.files, key=lambda k: int(k.rsplit("__", 1)[1])):
            ex[key.rsplit("__", 1)[0]].append(z[key])
    before = rss_mb()
    if engine.startswith("kws"):
        m = Model.load(model_path)
        eng = KwsEngine(engine, m, KeywordSet.load(store, m.model_id))
    elif engine == "pocketsphinx":
        eng = PocketSphinxEngine(words, thresholds=[1e-20])     # one threshold, as deployed
    elif engine == "efficientword":
        eng = EfficientWordEngine(ex)
    else:
        eng = OpenWakeWordEngine(words)
    eng.clip_scores([x for v in ex.values() for x in v])
    return rss_mb() - before


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


# ----------------------------------------------------------------------------- data
def padded(x: np.ndarray, pad_s: float = PAD_S) -> np.ndarray:
    z = np.zeros(int(pad_s * 16000), np.float32)
    return np.concatenate([z, x.astype(np.float32), z])


def noisy_padded(x: np.ndarray, noise: np.ndarray, snr_db: float, rng, pad_s: float = PAD_S) -> np.ndarray:
    """The padded clip with a random stretch of ``noise`` over all of it, ``snr_db`` under the
    word (the unpadded clip's power)."""
    y = padded(x, pad_s)
    if noise.size <= y.size + 1:
        noise = np.tile(noise, y.size // noise.size + 2)
    s = rng.integers(0, noise.size - y.size - 1)
    n = noise[s:s + y.size]
    k = np.sqrt(np.mean(x ** 2) / max(np.mean(n ** 2), 1e-10) / 10 ** (snr_db / 10))
    return (y + k * n).astype(np.float32)


def load_set(data: Path, name: str, n_per: int, seed: int) -> Dict:
    """Test clips of half 'b' (trimmed, as kws.corpus.real.load_clip gives them) and, for
    enrollment, every clip of half 'a' in a random order (``example_clips``; see enroll_set)."""
    pick = random.Random(seed)
    words, clips, n = ((WAKEWORDS, wakeword_clips(data), n_per) if name == "wake" else
                       (DIGITS, fsdd_clips(data), max(10, n_per // 3)))
    test, ex = [], {}
    for w in words:
        got = 0
        held_out = [c for c in clips if c.label == w and split_of(c) == "b"]
        for c in pick.sample(held_out, len(held_out)):
            try:
                test.append((w, load_clip(c)))
            except AudioError:
                continue
            got += 1
            if got == n:
                break
        cands = [c for c in clips if c.label == w and split_of(c) == "a"]
        ex[w] = pick.sample(cands, len(cands))
    return {"title": SETS[name], "words": list(words), "labels": [l for l, _ in test],
            "clips": [x for _, x in test], "example_clips": ex}


class Enrolled(NamedTuple):
    keywords: KeywordSet                    # enrolled from the examples alone
    examples: Dict[str, List[np.ndarray]]   # the accepted recordings, trimmed as enrollment trims them
    refused: Dict[str, List[str]]           # why enrollment refused the others


def enroll_set(model: Model, s: Dict, n: int = 3) -> Enrolled:
    """kws's example enrollment of a set's keywords, as the product does it: the files of
    ``example_clips`` as they are (untrimmed) through kws.evaluate.accepted_examples, which takes
    the first ``n`` that enrollment accepts, and kws.evaluate.keywords (`enroll add --name NAME
    --examples ...`). Its trimmed examples are EfficientWord-Net's too."""
    ex = accepted_examples({w: raw_recordings(c) for w, c in s["example_clips"].items()}, n)
    return Enrolled(keywords(model, Renders(), s["words"], ex.examples, typed=False), ex.examples, ex.refused)


def background_speech(data: Path, seconds: float, seed: int) -> List[np.ndarray]:
    """All held-out-speaker speech (``seconds`` 0), or that much of it in a random order."""
    files = held_out_speech_files(data)
    if seconds:
        files = random.Random(seed).sample(files, len(files))
    out, total = [], 0
    for f in progress(files, "background speech"):
        try:
            x = load_audio(f)
        except AudioError:
            continue
        out.append(x)
        total += x.size
        if seconds and total >= seconds * 16000:
            break
    return out


def eers(scores: np.ndarray, labels: Sequence[str], words: Sequence[str]) -> Dict[str, float]:
    lab = np.array(labels)
    return {w: float(eer(scores[:, k], lab == w)[0]) for k, w in enumerate(words)}


def score_engine(eng, clean_clips, noisy_clips, labels, background, hours: float) -> Dict:
    """EERs, miss rate at 1 false alarm per hour and RTF of one engine on one set."""
    clean = eng.clip_scores(progress(clean_clips, f"{eng.name}: clips"))
    noisy = eng.clip_scores(noisy_clips)
    t0 = time.process_time()
    ev = eng.background_events(progress(background, f"{eng.name}: background"))
    cpu = time.process_time() - t0
    if isinstance(eng, PocketSphinxEngine):
        cpu /= len(eng.thresholds)    # a deployed PocketSphinx runs one threshold, not 11
    lab = np.array(labels)
    miss = {w: miss_at_false_alarm_rate(clean[lab == w, k], ev[k], hours, 1.0)[0] for k, w in enumerate(eng.words)}
    e_clean, e_noisy = eers(clean, labels, eng.words), eers(noisy, labels, eng.words)
    return {"keywords": list(eng.words), "eer_clean": float(np.mean(list(e_clean.values()))),
            "eer_10db": float(np.mean(list(e_noisy.values()))), "miss_at_1fa_h": float(np.mean(list(miss.values()))),
            "per_keyword": {w: {"eer_clean": e_clean[w], "eer_10db": e_noisy[w], "miss_at_1fa_h": miss[w],
                                "background_events": len(ev[k])} for k, w in enumerate(eng.words)},
            "rtf_one_core": cpu / (hours * 3600), "model_mb": eng.model_mb(), "_clean": clean}


def markdown(results: Dict) -> str:
    lines = ["| set | engine | EER clean | EER 10 dB | miss @ 1 FA/h | RTF 1 core | model MB | load RSS MB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results["sets"].values():
        for name, v in r["rows"].items():
            only = "" if len(v["keywords"]) == len(r["words"]) else f" ({', '.join(v['keywords'])} only)"
            lines.append(f"| {r['title']} ({r['clips']} clips) | {name}{only} | {v['eer_clean']:.1%} | "
                         f"{v['eer_10db']:.1%} | {v['miss_at_1fa_h']:.1%} | {v['rtf_one_core']:.3f} | "
                         f"{v['model_mb']:.1f} | {v['load_rss_mb']:.0f} |")
    ww = results["sets"].get("wake")
    if ww and any("alexa" in v["per_keyword"] for v in ww["rows"].values()):
        lines += ["", "| 'alexa' (its clips against the computer and jarvis clips) | EER clean | EER 10 dB | miss @ 1 FA/h |",
                  "|---|---|---|---|"]
        for name, v in ww["rows"].items():
            a = v["per_keyword"].get("alexa")
            if a:
                lines.append(f"| {name} | {a['eer_clean']:.1%} | {a['eer_10db']:.1%} | {a['miss_at_1fa_h']:.1%} |")
    bg = results["background"]
    lines += ["", f"Background: {bg['hours']:.2f} h of held-out-speaker speech ({bg['files']} files); "
                  f"at 1 false alarm per hour each keyword's threshold allowed {bg['allowed_false_alarms']} "
                  f"false alarm{'s' * (bg['allowed_false_alarms'] != 1)}. kws: {results['kws_model']}."]
    return "\n".join(lines)


def det_plot(curves: Dict, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from scipy.stats import norm
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6, 5))
    c = lambda v: norm.ppf(np.clip(v, 1e-3, 1 - 1e-3))  # noqa: E731
    for name, (sc, labels, words) in curves.items():
        lab = np.array(labels)
        pos = np.concatenate([sc[lab == w, k] for k, w in enumerate(words)])
        neg = np.concatenate([sc[lab != w, k] for k, w in enumerate(words)])
        fpr, miss, _ = roc_points(np.r_[pos, neg], np.r_[np.ones(pos.size), np.zeros(neg.size)])
        ax.plot(c(fpr), c(miss), label=name if len(words) > 1 else f"{name} ({words[0]} only)")
    ticks = [0.001, 0.01, 0.05, 0.2, 0.5]
    ax.set_xticks(c(ticks), [f"{t:.1%}" for t in ticks])
    ax.set_yticks(c(ticks), [f"{t:.1%}" for t in ticks])
    ax.set_xlabel("false alarm rate (other wake words' clips)")
    ax.set_ylabel("miss rate")
    ax.set_title("Wake words (held-out half), clean: pooled DET")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--model", default=None, help="kws model folder (default: the shipped one)")
    ap.add_argument("--per-keyword", type=int, default=60, help="wake-word clips per keyword (digits: a third)")
    ap.add_argument("--background-s", type=float, default=0.0,
                    help="seconds of background speech (default 0: all held-out speech, 1.5 h)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sets", default="wake,digits", help="comma-separated subset of: " + ", ".join(SETS))
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of: " + ", ".join(ENGINES))
    ap.add_argument("--no-memory", action="store_true", help="skip the fresh-process memory probes")
    args = ap.parse_args(argv)
    if not (args.data / "wakewords").is_dir():
        print(f"error: no recordings at {args.data} (give --data ../shared/data)", file=sys.stderr)
        return 2
    chosen, set_names = args.engines.split(","), args.sets.split(",")
    bad = [e for e in chosen if e not in ENGINES] + [s for s in set_names if s not in SETS]
    if bad:
        print(f"error: unknown engine or set: {', '.join(bad)}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    bg = background_speech(args.data, args.background_s, args.seed + 1)
    hours = sum(x.size for x in bg) / 16000 / 3600
    noise = _noise_bank(args.data)
    model = Model.load(args.model)
    renders = Renders(quiet=False)
    results: Dict = {"kws_model": model.model_id,
                     "command": " ".join(["python benchmarks/compare_engines.py"] + list(sys.argv[1:] if argv is None else argv)),
                     "background": {"hours": hours, "files": len(bg), "allowed_false_alarms": int(np.floor(hours))},
                     "sets": {}}
    curves: Dict = {}
    mem_by: Dict[str, float] = {}
    for set_name in set_names:
        s = load_set(args.data, set_name, args.per_keyword, args.seed)
        enrolled = enroll_set(model, s)
        for why in enrolled.refused.values():
            for m in why:
                print(f"enrollment refused an example: {m}", file=sys.stderr)
        clean = [padded(x) for x in s["clips"]]
        noisy = [noisy_padded(x, noise, 10, rng) for x in s["clips"]]
        rows = {}
        for e in chosen:
            try:
                eng = make_engine(e, s, enrolled, model, renders)
            except ImportError as exc:
                print(f"skipping {e}: not installed ({exc})", file=sys.stderr)
                continue
            except NotApplicable as exc:
                print(f"skipping {e} on {s['title']}: {exc}", file=sys.stderr)
                continue
            row = score_engine(eng, clean, noisy, s["labels"], bg, hours)
            if e not in mem_by:
                mem_by[e] = float("nan") if args.no_memory else probe_memory(e, eng.words, {
                    w: enrolled.examples[w] for w in eng.words}, getattr(eng, "keywords", None), model)
            row["load_rss_mb"] = mem_by[e]
            if set_name == "wake":
                curves[eng.name] = (row["_clean"], s["labels"], eng.words)
            rows[eng.name] = row
            print(json.dumps({"set": s["title"], "engine": eng.name,
                              **{k: v for k, v in row.items() if not k.startswith("_")}}), flush=True)
        results["sets"][set_name] = {"title": s["title"], "words": s["words"], "clips": len(s["clips"]),
                                     "examples_refused": enrolled.refused, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    slim = {**results, "sets": {n: {**r, "rows": {e: {k: v for k, v in row.items() if not k.startswith("_")}
                                                  for e, row in r["rows"].items()}}
                                for n, r in results["sets"].items()}}
    (args.out / "results.json").write_text(json.dumps(slim, indent=2))
    table = markdown(results)
    (args.out / "table.md").write_text(table + "\n")
    print(table)
    det_plot(curves, args.out / "det.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
