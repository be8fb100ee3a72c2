"""Per-keyword thresholds.

- ``tune``: the threshold at the equal error rate between positive scores (the user's examples
  and/or TTS renderings of the keyword, with noise) and negative scores (the bundle's bank of real
  background-speech windows plus TTS renderings of phonetically close words).
- ``background_threshold``: the documented fallback when no TTS engine and no examples are at hand:
  the 99.9th percentile (third highest) of the keyword's scores on the background bank (3000 windows of real read speech;
  on continuous speech this still gives false alarms: see the README numbers), never below ``FLOOR``.
"""
from __future__ import annotations

import random
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from kws.bundle import Bundle
from kws.metrics import eer

FLOOR = 0.2
BACKGROUND_QUANTILE = 0.999


@lru_cache(maxsize=4)
def _background(path: str) -> np.ndarray:
    bank = np.load(path).astype(np.float32)
    return bank / np.maximum(np.linalg.norm(bank, axis=1, keepdims=True), 1e-12)


def background_scores(bundle: Bundle, vectors: np.ndarray) -> np.ndarray:
    bank = _background(str(bundle.path / bundle.manifest["background"]["file"]))
    return (bank @ np.asarray(vectors, dtype=np.float32).T).max(axis=1)


def background_threshold(bundle: Bundle, vectors: np.ndarray, duration: Optional[float] = None) -> float:
    return float(max(FLOOR, np.quantile(background_scores(bundle, vectors), BACKGROUND_QUANTILE)))


def tune(pos: Sequence[float], neg: Sequence[float]) -> Tuple[float, float]:
    """(EER, threshold) between positive and negative scores."""
    pos, neg = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
    if pos.size == 0 or neg.size == 0:
        raise ValueError("threshold tuning needs positive and negative scores")
    scores = np.r_[pos, neg]
    labels = np.r_[np.ones(pos.size, bool), np.zeros(neg.size, bool)]
    rate, thr = eer(scores, labels)
    return rate, float(thr)


def phonetic_neighbours(phonemes: Sequence[str], n: int = 12, seed: int = 0) -> List[str]:
    """Dictionary words whose pronunciation is 1-2 phoneme edits from ``phonemes`` (confusers)."""
    from kws.g2p import edit_distance
    from kws.phonemes import cmu_lexicon

    target = [p for p in phonemes if p != "|"]
    cands = []
    for w, p in cmu_lexicon().items():
        if not w.isalpha() or abs(len(p) - len(target)) > 2:
            continue
        d = edit_distance(p, target)
        if 1 <= d <= 2:
            cands.append((d, w))
    rng = random.Random(seed)
    rng.shuffle(cands)
    cands.sort(key=lambda x: x[0])
    return [w for _, w in cands[:n]]


def tts_clips(texts: Sequence[str], per_text: int, seed: int = 0) -> Dict[str, List[np.ndarray]]:
    """Renderings of each text by the installed TTS engines (empty when there is none)."""
    from kws import tts

    engines = tts.available_engines()
    if not engines:
        return {t: [] for t in texts}
    rng = random.Random(seed)
    renders = [(t, tts.random_render(t, engines[i % len(engines)], rng))
               for t in texts for i in range(per_text)]
    audio = tts.synthesize([r for _, r in renders])
    out: Dict[str, List[np.ndarray]] = {t: [] for t in texts}
    for (t, _), a in zip(renders, audio):
        if a is not None:
            out[t].append(a.astype(np.float32) / 32768.0)
    return out


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    n = rng.normal(size=x.size).astype(np.float32)
    p = float(np.mean(x ** 2)) + 1e-10
    return x + n * np.sqrt(p / 10 ** (snr_db / 10))
