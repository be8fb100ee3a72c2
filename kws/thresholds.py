"""Per-keyword thresholds.

- ``background_threshold``: the default. The threshold at which the keyword is expected to fire
  ``fa_per_hour`` times an hour (default 0.5) on speech, babble, music and noise that do not hold
  it: from its scores on the bundle's bank of background hops and a fitted tail (kws.calibration).
  ``expected_false_alarms`` gives the rate at any threshold, for reports.
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


def _tail(bundle: Bundle, vectors: np.ndarray, duration: Optional[float]):
    from kws import calibration

    b = calibration.bank(bundle)
    if b is None:
        return None, None
    return b, calibration.fit_tail(calibration.hop_scores(b, vectors, keyword_lengths(bundle, duration)))


def background_threshold(bundle: Bundle, vectors: np.ndarray, duration: Optional[float] = None,
                         fa_per_hour: Optional[float] = None) -> float:
    """The default threshold: ``fa_per_hour`` (default kws.calibration.DEFAULT_FA_PER_HOUR)
    expected false alarms an hour of background, for a keyword of ``vectors`` spoken in about
    ``duration`` seconds."""
    from kws import calibration

    b, tail = _tail(bundle, vectors, duration)
    if b is None:
        return float(max(FLOOR, np.quantile(background_scores(bundle, vectors), BACKGROUND_QUANTILE)))
    rate = calibration.DEFAULT_FA_PER_HOUR if fa_per_hour is None else fa_per_hour
    return float(max(FLOOR, calibration.threshold_for(b, tail, rate)))


def expected_false_alarms(bundle: Bundle, vectors: np.ndarray, duration: Optional[float],
                          threshold: float) -> Optional[float]:
    """False alarms an hour the keyword is expected to give at ``threshold`` (None: the bundle has
    no hop bank to say)."""
    from kws import calibration

    b, tail = _tail(bundle, vectors, duration)
    return None if b is None else calibration.expected_fa_per_hour(b, tail, threshold)


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
