"""The window plan: which windows of front-end frames are embedded, every how many frames.

One place turns seconds into frames for the detector, offline scoring and search. A window is the
``length`` frames ending at a hop; every keyword scores the best of the lengths it uses.

- log-mel front end (format-1 bundles): fixed window lengths in seconds for every keyword
  (``DetectorConfig.window_s``, default 0.3 / 0.6 / 0.9 s);
- speech-embedding front end (format 2): each keyword gets the lengths that fit its expected
  duration (from its examples, its TTS renderings or its phoneme count), the geometry the model was
  trained with (``span_range``); ``window_s`` given explicitly means "durations to size for",
  for every keyword.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from kws.frontend import SAMPLE_RATE, Frontend

# phonemes -> expected duration of a spoken word: 0.12 s + 0.075 s per phoneme (a fit to the
# forced-aligned speechocean762 words, 1-6 phonemes, made a little faster for native speakers)
DURATION_BASE_S = 0.12
DURATION_PER_PHONE_S = 0.075
DEFAULT_DURATION_S = 0.6


def duration_from_phonemes(n_phonemes: int) -> float:
    return DURATION_BASE_S + DURATION_PER_PHONE_S * max(1, int(n_phonemes))


def spoken_duration(phonemes: Sequence[str]) -> float:
    """Expected duration of a keyword spoken from its phonemes ("|" between words is no sound)."""
    return duration_from_phonemes(sum(1 for p in phonemes if p != "|"))


def span_range(duration_s: float) -> Tuple[float, float]:
    """Range of (last - first) frame-field ends, in seconds, of windows that hold a word of
    ``duration_s`` the way the speech-embedding model was trained (kws.train.context)."""
    return max(0.0, duration_s - 0.03 - min(0.25, 0.4 * duration_s)), duration_s + 0.40


def lengths_for_duration(frontend: Frontend, duration_s: float, n: int = 3) -> Tuple[int, ...]:
    """Window lengths (frames) for a word of ``duration_s`` on a speech-embedding front end."""
    step = frontend.hop / SAMPLE_RATE
    lo, hi = span_range(duration_s)
    spans = [lo + (hi - lo) * f for f in (np.linspace(0.2, 0.8, n) if n > 1 else [0.5])]
    return tuple(sorted({max(1, 1 + int(round(s / step))) for s in spans}))


def frames_in(frontend: Frontend, seconds: float) -> int:
    """Whole frames (rounded) in ``seconds`` of audio: how the detector's refractory time and the
    search index's processing blocks become frames."""
    return int(round(seconds * SAMPLE_RATE / frontend.hop))


@dataclass(frozen=True)
class WindowPlan:
    hop: int                          # frames between hops
    lengths: Tuple[int, ...]          # window lengths in frames, ascending
    use: np.ndarray                   # (K, len(lengths)) bool: keyword k scores length j

    @property
    def longest(self) -> int:
        return self.lengths[-1]

    def seconds(self, frontend: Frontend) -> Tuple[float, ...]:
        """Audio each window length sees, in seconds."""
        return tuple((frontend.samples(0, L)[1]) / SAMPLE_RATE for L in self.lengths)


def make_plan(frontend: Frontend, hop_s: float, window_s: Optional[Sequence[float]],
              durations: Sequence[Optional[float]], per_duration: int = 3) -> WindowPlan:
    """The plan for keywords of expected ``durations`` (None: unknown); ``per_duration`` lengths
    per duration on speech-embedding front ends (search indexes use one)."""
    hop = max(1, int(round(hop_s * SAMPLE_RATE / frontend.hop)))
    k = max(1, len(durations))
    if frontend.kind == "logmel":
        ws = window_s or (0.3, 0.6, 0.9)
        lengths = tuple(sorted({max(1, frontend.count(int(round(w * SAMPLE_RATE)))) for w in ws}))
        return WindowPlan(hop, lengths, np.ones((k, len(lengths)), bool))
    if window_s:
        per = [tuple(sorted({L for w in window_s for L in lengths_for_duration(frontend, w, per_duration)}))] * k
    else:
        per = [lengths_for_duration(frontend, d if d else DEFAULT_DURATION_S, per_duration) for d in durations] or \
              [lengths_for_duration(frontend, DEFAULT_DURATION_S, per_duration)]
    lengths = tuple(sorted({L for p in per for L in p}))
    use = np.array([[L in p for L in lengths] for p in per], dtype=bool)
    return WindowPlan(hop, lengths, use)
