"""Per-keyword thresholds.

- ``background_threshold``: the default. The threshold at which the keyword is expected to fire
  ``fa_per_hour`` times an hour (default 0.5) on speech, babble, music and noise that do not hold
  it: from its scores on the bundle's bank of background hops and a fitted tail (kws.calibration).
  ``calibrate`` also gives the rate expected at that threshold, for reports.
- ``tune``: the threshold at the equal error rate between positive scores (the user's examples
  and/or TTS renderings of the keyword, with noise) and negative scores; enrollment reports it
  (the EER says how separable the keyword is), but the EER threshold of a few hundred negatives
  lets tens of false alarms an hour through on continuous speech.
- bundles made before hop banks (v1.1 and older): the 99.9th percentile of the keyword's scores on
  their bank of windows, never below ``FLOOR``.
"""
from __future__ import annotations

import random
from functools import lru_cache
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from kws.bundle import Bundle
from kws.metrics import eer

FLOOR = 0.2
BACKGROUND_QUANTILE = 0.999


@lru_cache(maxsize=4)
def _background(path: str) -> np.ndarray:
    bank = np.load(path).astype(np.float32)
    return bank / np.maximum(np.linalg.norm(bank, axis=1, keepdims=True), 1e-12)


def background_scores(bundle: Bundle, vectors: np.ndarray, duration: Optional[float] = None) -> np.ndarray:
    """The keyword's scores on the bundle's background: one per hop of the hop bank (the best of
    its window lengths), or one per window in older bundles."""
    from kws import calibration

    b = calibration.bank(bundle)
    if b is not None:
        return calibration.hop_scores(b, vectors, keyword_lengths(bundle, duration))
    bank = _background(str(bundle.path / bundle.manifest["background"]["file"]))
    return (bank @ np.asarray(vectors, dtype=np.float32).T).max(axis=1)


def keyword_lengths(bundle: Bundle, duration: Optional[float]) -> Tuple[int, ...]:
    """The window lengths the default detector gives a keyword of ``duration`` seconds."""
    from kws.detector import DetectorConfig
    from kws.windows import make_plan

    return make_plan(bundle.frontend, DetectorConfig().hop_s, None, [duration]).lengths


class Calibration(NamedTuple):
    threshold: float                  # for the false-alarm rate asked
    expected_per_hour: Optional[float]   # false alarms an hour expected there (None: no hop bank)
    scores: np.ndarray                # the keyword's background scores (background_scores)


def calibrate(bundle: Bundle, vectors: np.ndarray, duration: Optional[float] = None,
              fa_per_hour: Optional[float] = None) -> Calibration:
    """The default threshold: ``fa_per_hour`` (default kws.calibration.DEFAULT_FA_PER_HOUR)
    expected false alarms an hour of background, for a keyword of ``vectors`` spoken in about
    ``duration`` seconds; with the rate expected at it and the scores it came from (one pass over
    the bundle's bank)."""
    from kws import calibration

    scores = background_scores(bundle, vectors, duration)
    b = calibration.bank(bundle)
    if b is None:
        return Calibration(float(max(FLOOR, np.quantile(scores, BACKGROUND_QUANTILE))), None, scores)
    tail = calibration.fit_tail(scores)
    rate = calibration.DEFAULT_FA_PER_HOUR if fa_per_hour is None else fa_per_hour
    thr = float(max(FLOOR, calibration.threshold_for(b, tail, rate)))
    return Calibration(thr, calibration.expected_fa_per_hour(b, tail, thr), scores)


def background_threshold(bundle: Bundle, vectors: np.ndarray, duration: Optional[float] = None,
                         fa_per_hour: Optional[float] = None) -> float:
    """:func:`calibrate`'s threshold alone."""
    return calibrate(bundle, vectors, duration, fa_per_hour).threshold


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
