"""Per-keyword thresholds, set for a false-alarm rate on hours of background.

The model ships a **background bank** (kws.enroll.background; ``background.npz``, built by
``python -m export.model``): about 11 hours of speech, talk, television, babble, music and noise
that hold no keyword, as the matcher sees them (the head's vectors), in contiguous segments.
These thresholds are where a keyword starts; while the detector listens they learn the room
(kws.spot.room). A keyword's templates are scored along every segment exactly as the detector
scores a stream (kws.spot.templates); the detector fires at a local peak above the threshold and
then stays quiet for ``refractory`` vectors, so the false alarms a threshold ``t`` gives are the
**peaks** of that score series at or above ``t``, each the highest within the refractory time
around it (kws.spot.events.peaks).

A rate is counted per hour of the bank's *speech* (``H``: the hours of its segments that hold
speech, kws.enroll.background.SPEECH_KINDS, 7.9 of the shipped 10.7 h): its highest peaks come
from speech, and where the detector hears music or noise alone it hears few. Counted over all the
bank's hours, the same threshold gave held-out read speech half as many false alarms again as
promised (benchmarks/threshold_targets.py, docs/thresholds.md).

With ``H`` hours of background the threshold for ``r`` false alarms an hour lies between the
``r*H``-th and the next highest peak. At the rates users want (about one an hour) that is the
third or fourth peak of three hours: too few to read directly, so the top of the peaks is
modelled. The ``m`` highest peaks (:data:`TAIL_PEAKS`) are taken to fall off exponentially above
the lowest of them, ``u``, with the mean excess ``beta`` as scale (a generalised Pareto tail of
shape 0, fitted by maximum likelihood):

    false alarms an hour at t  =  (m / H) * exp(-(t - u) / beta)        for t >= u

and the threshold for ``r`` is ``u + beta * ln(m / (r H))``. Below ``u`` the peaks are counted.

``tune`` gives the equal-error-rate threshold between two sets of scores, for reports (EER).
"""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from kws.enroll.background import Background
from kws.enroll.background import load as load_background
from kws.metrics import eer
from kws.spot.events import REFRACTORY, peaks
from kws.spot.templates import TemplateBank

DEFAULT_FA_PER_HOUR = 1.0     # per keyword: the default target of every threshold
TAIL_PEAKS = 40               # background peaks the exponential tail is fitted to
MIN_THRESHOLD = 0.3           # no threshold below this (a keyword that matches everything)


_BACKGROUNDS: dict = {}


def background(model) -> Background:
    """The model's background bank in matching space (kws.enroll.background; cached per model)."""
    key = (str(model.background_file), model.model_id)
    if key not in _BACKGROUNDS:
        _BACKGROUNDS[key] = load_background(model)
    return _BACKGROUNDS[key]


CHUNK = 1 << 14               # bank vectors scored at once (whole segments; a longer one alone)


def run_scores(bank: TemplateBank, x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(n, T) every template's score at every vector of ``x``: the bank's rows, holding segments
    that begin at ``starts`` (offsets in ``x``, the first 0), -1 where a template does not fit in
    its segment yet; one matrix product for all the segments. The rows are taken as they are, not
    scaled to unit length: a bank of unit rows gives kws.spot.templates.template_scores of each
    segment on its own, up to float rounding; a coded bank's decoded rows are near unit length
    and deliberately left so (kws.enroll.background)."""
    n, t = x.shape[0], bank.length.size
    g = bank.rows @ x.T                                      # (R, n): each row's dots, contiguous
    out = np.full((t, n), -1.0, np.float32)
    place = np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))   # place in its segment
    for ti in range(t):
        a, l = int(bank.start[ti]), int(bank.length[ti])
        if n < l:
            continue
        acc = g[a, 0:n - l + 1].copy()
        for j in range(1, l):
            acc += g[a + j, j:n - l + 1 + j]
        row = out[ti, l - 1:]
        np.divide(acc, l, out=row)
        row[place[l - 1:] < l - 1] = -1.0                    # reaches into the segment before
    return out.T


def keyword_series(bank: TemplateBank, bg: Background, chunk: int = CHUNK) -> np.ndarray:
    """(N, K) each keyword's score at every vector of the bank, every segment scored on its own
    (-1 where none of a keyword's templates fits in the segment yet): the numbers of
    ``bank.keyword_scores(template_scores(bank, segment))`` for each segment, up to float rounding,
    computed on runs of whole segments (one matrix product a run, not one a segment)."""
    seg = np.asarray(bg.segments, np.int64)
    ends = np.cumsum(seg)
    starts = ends - seg
    out = np.empty((int(ends[-1]) if seg.size else 0, bank.keywords), np.float32)
    i = 0
    while i < seg.size:
        j = i + 1                              # segments [i, j) make one run of at most ``chunk``
        while j < seg.size and ends[j] - starts[i] <= chunk:
            j += 1
        a, b = int(starts[i]), int(ends[j - 1])
        if b > a:
            out[a:b] = bank.keyword_scores(run_scores(bank, bg.rows(a, b), starts[i:j] - a))
        i = j
    return out


def segment_peaks(series: np.ndarray, segments: Sequence[int], refractory: int = REFRACTORY) -> np.ndarray:
    """kws.spot.events.peaks of each segment of ``series`` (segments back to back), all together,
    highest first: the segments are laid out with ``refractory`` places of -inf between them,
    which no peak's window reaches across, and the peaks of that one series are taken."""
    seg = np.asarray(segments, np.int64)
    if series.shape[0] == 0:
        return np.zeros(0)
    gaps = np.repeat(np.arange(seg.size), seg) * int(refractory)     # -inf places before each vector
    laid = np.full(series.shape[0] + seg.size * int(refractory), -np.inf)
    laid[np.arange(series.shape[0]) + gaps] = series
    return peaks(laid, refractory)


def keyword_peaks(bank: TemplateBank, bg: Background, refractory: int = REFRACTORY) -> List[np.ndarray]:
    """Each keyword's background peaks (highest first), from its templates in ``bank``: the
    peaks of its score along each segment of the bank, as the detector would fire on them."""
    s = keyword_series(bank, bg)
    return [segment_peaks(s[:, k], bg.segments, refractory) for k in range(bank.keywords)]


class Tail(NamedTuple):
    """The top of a keyword's background peaks: ``m`` peaks at or above ``u``, mean excess
    ``beta``, over ``hours``."""

    u: float
    beta: float
    m: int
    hours: float
    peaks: np.ndarray            # all peaks, highest first

    def rate(self, t: float) -> float:
        """Expected false alarms an hour at threshold ``t``."""
        if t >= self.u:
            return self.m / self.hours * float(np.exp(-(t - self.u) / self.beta))
        return float(np.sum(self.peaks >= t)) / self.hours

    def threshold(self, rate: float) -> float:
        """The threshold expected to give ``rate`` false alarms an hour."""
        if rate * self.hours >= self.m:
            k = int(np.floor(rate * self.hours))
            return float(self.peaks[min(k, self.peaks.size - 1)]) if self.peaks.size else 0.0
        return float(self.u + self.beta * np.log(self.m / (rate * self.hours)))


def fit_tail(peak_scores: Sequence[float], hours: float, m: int = TAIL_PEAKS) -> Tail:
    p = np.sort(np.asarray(peak_scores, np.float64))[::-1]
    if p.size < 3:
        raise ValueError("a tail needs at least 3 background peaks")
    m = min(m, p.size)
    top = p[:m]
    u = float(top[-1])
    beta = float(np.mean(top[:-1] - u)) if m > 1 else 1e-3
    return Tail(u, max(beta, 1e-4), m, hours, p)


class Calibration(NamedTuple):
    threshold: float
    expected_per_hour: float      # false alarms an hour expected at the threshold
    tail: Tail


def calibrate(model, templates: Sequence[np.ndarray], fa_per_hour: Optional[float] = None) -> Calibration:
    """The threshold at which a keyword of these templates (matching space, unit rows) is
    expected to give ``fa_per_hour`` (default :data:`DEFAULT_FA_PER_HOUR`) false alarms an hour
    on the model's background, and the rate expected there."""
    rate = DEFAULT_FA_PER_HOUR if fa_per_hour is None else float(fa_per_hour)
    if not rate > 0:
        raise ValueError("the false-alarm rate must be > 0")
    bg = background(model)
    tail = fit_tail(keyword_peaks(TemplateBank.build([list(templates)], soft_max=model.soft_max), bg)[0],
                    bg.speech_hours())
    t = max(MIN_THRESHOLD, tail.threshold(rate))
    return Calibration(float(t), tail.rate(t), tail)


def tune(pos: Sequence[float], neg: Sequence[float]) -> Tuple[float, float]:
    """(EER, threshold) between positive and negative scores."""
    pos, neg = np.asarray(pos, dtype=np.float64), np.asarray(neg, dtype=np.float64)
    if pos.size == 0 or neg.size == 0:
        raise ValueError("threshold tuning needs positive and negative scores")
    scores = np.r_[pos, neg]
    labels = np.r_[np.ones(pos.size, bool), np.zeros(neg.size, bool)]
    rate, thr = eer(scores, labels)
    return rate, float(thr)


def add_noise(x: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` with white noise at ``snr_db``."""
    n = rng.normal(size=x.size).astype(np.float32)
    p = float(np.mean(x ** 2)) + 1e-10
    return (x + n * np.sqrt(p / 10 ** (snr_db / 10))).astype(np.float32)
