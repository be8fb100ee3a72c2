"""Events: kws's one rule from a keyword's score series to its events, offline and streaming.

:func:`peaks` is the rule: the local maxima of the score reached by a rise, each the highest
score within ``refractory`` vectors on both sides. A keyword's false alarms on the background
bank are its peaks there, so thresholds are set on it (kws.enroll.thresholds), and evaluations
count events with it. :class:`PeakTracker` finds the same peaks in a stream, ``refractory``
vectors late (thresholds that learn the room keep the peaks below the threshold, kws.spot.room).

:class:`Firing` is the streaming detector's side (kws.spot.detector): it cannot look ahead. By
default (``at="crossing"``) a keyword fires at the first vector of each rise of its score to its
threshold or above, then stays quiet until the score has fallen below the threshold again and
``refractory`` vectors have passed: one event for each stretch of the score above the threshold,
the same stretches :func:`peaks` counts one event in (tests/test_event_rule.py), but heard when
the stretch begins instead of one vector after its top: 0.18 s sooner at the median on held-out
recordings (docs/live.md, *Latency*). With ``at="peak"`` it fires at a maximum reached by a rise, at or
above its threshold, as soon as the score falls, and then stays quiet for ``refractory`` vectors:
wherever the maxima at or above the threshold each are the highest score within ``refractory``
vectors (isolated peaks), exactly at :func:`peaks`' events; where a higher one follows closer, at
the first, where :func:`peaks` keeps the higher.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

PEAK_FLOOR = 0.0              # scores under this are never counted as peaks
REFRACTORY = 12               # vectors (80 ms) the detector stays quiet after an event: 1 s (DetectorConfig)


def peaks(series: np.ndarray, refractory: int = REFRACTORY, floor: float = PEAK_FLOOR) -> np.ndarray:
    """The events of a score series, their scores highest first: the local maxima reached by a
    rise, each the highest score within ``refractory`` vectors on both sides (of equal ones, the
    first), at or above ``floor``.

    Thresholds are set on it (kws.enroll.thresholds), and kws.evaluate, kws.train.head_eval and
    benchmarks/compare_engines.py count events with it."""
    s = np.asarray(series, np.float64)
    return np.sort(s[peak_positions(s, refractory, floor)])[::-1]


def peak_positions(series: np.ndarray, refractory: int = REFRACTORY, floor: float = PEAK_FLOOR) -> np.ndarray:
    """Where :func:`peaks`' events lie: their indices in the series, in order of time (spoken-term
    search reports its hits there, kws.search.query)."""
    s = np.asarray(series, np.float64)
    if s.size == 0:
        return np.zeros(0, np.int64)
    r = int(refractory)
    padded = np.concatenate([np.full(r, -np.inf), s, np.full(r, -np.inf)])
    win_max = np.lib.stride_tricks.sliding_window_view(padded, 2 * r + 1).max(axis=1)
    rose = s > np.concatenate([[-np.inf], s[:-1]])       # reached by a rise, as the detector sees it
    idx = np.nonzero((s >= win_max) & rose & (s >= floor))[0]
    # equal maxima within the window: the first one only
    keep = np.ones(idx.size, bool)
    tied = np.nonzero((np.diff(idx) <= r) & (s[idx[1:]] == s[idx[:-1]]))[0] + 1 if idx.size > 1 else idx[:0]
    for a in tied:                                       # (rare: the loop runs over ties only)
        if keep[a - 1]:
            keep[a] = False
    return idx[keep].astype(np.int64)


class PeakTracker:
    """Streaming twin of :func:`peaks` for many keywords at once: push each
    vector's scores, get the peaks confirmed ``refractory`` vectors later (a local maximum reached
    by a rise, the highest within ``refractory`` vectors on either side, ties: the first)."""

    def __init__(self, keywords: int, refractory: int):
        self.r = int(refractory)
        self.w = 2 * self.r + 2          # the window and the value before it
        self._ring = np.full((self.w, keywords), -np.inf, np.float32)
        self._n = 0
        self._last_i = np.full(keywords, -(1 << 40), np.int64)     # each keyword's last peak
        self._last_s = np.full(keywords, np.nan, np.float32)
        # ring slots of the candidate's neighbours, relative to it; a slot not yet written holds
        # -inf, which is what the event rule sees before a stream's start
        self._left = np.arange(-self.r, 0)
        self._right = np.arange(1, self.r + 1)

    def push(self, scores: np.ndarray):
        """One vector's (K,) scores -> (indices of keywords with a peak, their scores, the peak's
        vector index) for the vector ``refractory`` back."""
        self._ring[self._n % self.w] = scores
        self._n += 1
        i = self._n - 1 - self.r                       # the candidate
        if i < 0:
            return None
        ring, w = self._ring, self.w
        cand = ring[i % w]
        before = ring[(i - 1) % w]
        left = ring[(i + self._left) % w].max(axis=0, initial=-np.inf)
        right = ring[(i + self._right) % w].max(axis=0, initial=-np.inf)
        ok = (cand > before) & (cand >= left) & (cand >= right) & (cand > -1.0)
        ok &= ~((self._last_i >= i - self.r) & (self._last_s == cand))      # equal maxima: the first
        if not ok.any():
            return None
        ks = np.nonzero(ok)[0]
        self._last_i[ks] = i
        self._last_s[ks] = cand[ks]
        return ks, cand[ks], i


FIRE_AT = ("crossing", "peak")


@dataclass
class _Track:
    prev: float = -2.0
    prev_span: Tuple[int, int] = (0, 0)
    rising: bool = False
    above: bool = False              # ("crossing") the score is at or above the threshold since the last event
    quiet_until: int = -1            # vector index before which the keyword may not fire


class Firing:
    """The detector's events for many keywords at once: push each vector's scores, with the span
    of vectors [first, end) each keyword's best template lies over, get (keyword, score, span) of
    the events the vector brings. ``at="crossing"`` (the detector's default): this vector's, where
    its score reaches the threshold after being under it (or, for a stretch above the threshold
    that began within ``refractory`` vectors of the last event, where it first lies past them).
    ``at="peak"``: the previous vector's, where its score was reached by a rise, is at or above
    the threshold and lies at least ``refractory`` vectors after the last event."""

    def __init__(self, keywords: int, refractory: int, at: str = "crossing"):
        if at not in FIRE_AT:
            raise ValueError(f"at must be one of {', '.join(FIRE_AT)}, not {at!r}")
        self.refractory = int(refractory)
        self.at = at
        self.tracks = [_Track() for _ in range(keywords)]

    @property
    def last(self) -> List[float]:
        """Each keyword's latest score (-2 before the first)."""
        return [tr.prev for tr in self.tracks]

    def push(self, scores: np.ndarray, spans: Sequence[Tuple[int, int]],
             thresholds: np.ndarray) -> List[Tuple[int, float, Tuple[int, int]]]:
        events = []
        if self.at == "crossing":
            for k, tr in enumerate(self.tracks):
                s = float(scores[k])
                if s >= thresholds[k]:
                    # a stretch at or above the threshold fires where it begins, once
                    if not tr.above and spans[k][1] >= tr.quiet_until:
                        events.append((k, s, spans[k]))
                        tr.quiet_until = spans[k][1] + self.refractory + 1
                        tr.above = True
                else:
                    tr.above = False
                tr.prev = s
            return events
        for k, tr in enumerate(self.tracks):
            s = float(scores[k])
            # the peak is the previous vector; after an event, peaks up to refractory vectors later
            # stay quiet
            if tr.rising and s < tr.prev and tr.prev >= thresholds[k] and tr.prev_span[1] >= tr.quiet_until:
                events.append((k, tr.prev, tr.prev_span))
                tr.quiet_until = tr.prev_span[1] + self.refractory + 1
            tr.rising = s > tr.prev or (tr.rising and s == tr.prev)
            tr.prev = s
            tr.prev_span = spans[k]
        return events

    def flush(self, thresholds: np.ndarray) -> List[Tuple[int, float, Tuple[int, int]]]:
        """End of stream: (``at="peak"``) a keyword whose score was still rising at the last vector
        fires there. The tracks start afresh."""
        events = []
        for k, tr in enumerate(self.tracks):
            if self.at == "peak" and tr.rising and tr.prev >= thresholds[k] and tr.prev_span[1] >= tr.quiet_until:
                events.append((k, tr.prev, tr.prev_span))
            self.tracks[k] = _Track()
        return events
