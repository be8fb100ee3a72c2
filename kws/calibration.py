"""How often a keyword's score crosses a threshold on speech and noise that hold no keyword.

A bundle ships a bank of background *hops* (``background.npz``): for each of H detector hops taken
from real speech (and babble, music and noise) that holds none of any user's keywords, the
embeddings of windows of J lengths ending there (int8). A keyword's score at a hop is the best of
its window lengths (snapped to the bank's), exactly as the detector scores it.

A threshold for a wanted false-alarm rate sits far out in the tail of those H scores (1 false alarm
an hour is one hop in tens of thousands), so the top of the distribution is modelled: above its
95th percentile ``u``, scores are taken to fall off exponentially (a generalised Pareto tail with
shape 0; the mean excess ``beta`` is its scale):

    P(score > t) = 0.05 * exp(-(t - u) / beta)            for t >= u

The tail's prediction ``r = P(score > t) * hops per hour`` is then corrected by what the
detector was measured to do: peak picking merges the hops of one crossing, and the real tail is
not exactly exponential. When the bank is built (export/background.py), other background audio
is streamed through the detector with many keywords at thresholds for several predicted rates,
and the events counted fit ``events = a * r ** (1 + b)``. Expected false alarms per hour at ``t``:

    a * r(t) ** (1 + b)
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Sequence

import numpy as np

TAIL_FRACTION = 0.05
DEFAULT_FA_PER_HOUR = 0.5           # per keyword, the default target of thresholds
# typed keywords without TTS renderings (no engine installed) separate less well: a looser target
# keeps them detectable, and the user is told how to do better
TEXT_ONLY_FA_PER_HOUR = 5.0


@dataclass(frozen=True)
class TailModel:
    """The keyword's background score distribution: its top described by an exponential tail."""

    u: float             # the (1 - TAIL_FRACTION) quantile
    beta: float          # mean excess over u of the scores above it
    scores: np.ndarray   # all hop scores, sorted ascending

    def exceedance(self, t: float) -> float:
        """Probability that a background hop scores above ``t``."""
        if t >= self.u:
            return TAIL_FRACTION * float(np.exp(-(t - self.u) / max(self.beta, 1e-6)))
        n = self.scores.size
        return float(n - np.searchsorted(self.scores, t, side="right")) / n

    def threshold(self, p: float) -> float:
        """The threshold with exceedance ``p`` per hop."""
        if p >= TAIL_FRACTION:
            return float(np.quantile(self.scores, 1.0 - p))
        return float(self.u + self.beta * np.log(TAIL_FRACTION / p))


def fit_tail(scores: Sequence[float]) -> TailModel:
    s = np.sort(np.asarray(scores, dtype=np.float64))
    if s.size < 20:
        raise ValueError("a tail needs at least 20 background scores")
    u = float(np.quantile(s, 1.0 - TAIL_FRACTION))
    top = s[s > u]
    beta = float(np.mean(top - u)) if top.size else 1e-3
    return TailModel(u, max(beta, 1e-4), s)


@dataclass(frozen=True)
class Bank:
    vectors: np.ndarray      # (H, J, D) float32 unit vectors
    lengths: np.ndarray      # (J,) window lengths in frames
    hop_s: float             # seconds between the detector's hops the bank was made for
    kappa: float = 1.0       # a: events per predicted crossing (measured when the bank was built)
    kappa_exp: float = 0.0   # b: how that factor changes with the rate (events = a r^(1+b))

    @property
    def hops_per_hour(self) -> float:
        return 3600.0 / self.hop_s

    def events(self, predicted: float) -> float:
        """Events an hour the detector gives where the tail predicts ``predicted`` crossings."""
        return self.kappa * predicted ** (1.0 + self.kappa_exp)

    def predicted(self, events: float) -> float:
        """The inverse of :meth:`events`."""
        return (events / self.kappa) ** (1.0 / (1.0 + self.kappa_exp))


@lru_cache(maxsize=4)
def _load(path: str, kappa: float, kappa_exp: float, hop_s: float) -> Bank:
    z = np.load(path)
    v = z["vectors"].astype(np.float32) / float(z["scale"])
    v /= np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
    return Bank(v, z["lengths"].astype(np.int64), hop_s, kappa, kappa_exp)


def bank(bundle) -> Optional[Bank]:
    """The bundle's hop bank, or None for bundles made before hop banks existed."""
    meta = bundle.manifest.get("background", {})
    if meta.get("kind") != "hops":
        return None
    return _load(str(bundle.path / meta["file"]), float(meta.get("kappa", 1.0)),
                 float(meta.get("kappa_exp", 0.0)), float(meta["hop_s"]))


def hop_scores(b: Bank, vectors: np.ndarray, lengths: Optional[Sequence[int]] = None) -> np.ndarray:
    """(H,) the keyword's score at every bank hop: best of its vectors and its window lengths
    (each snapped to the nearest bank length; None: all of them)."""
    vec = np.asarray(vectors, dtype=np.float32).reshape(-1, b.vectors.shape[-1])
    if lengths is None:
        cols = np.arange(b.lengths.size)
    else:
        cols = np.unique([int(np.argmin(np.abs(b.lengths - L))) for L in lengths])
    s = np.einsum("hjd,kd->hjk", b.vectors[:, cols], vec)
    return s.max(axis=(1, 2))


def expected_fa_per_hour(b: Bank, tail: TailModel, threshold: float) -> float:
    return b.events(tail.exceedance(threshold) * b.hops_per_hour)


def threshold_for(b: Bank, tail: TailModel, fa_per_hour: float) -> float:
    """The threshold at which ``tail`` expects ``fa_per_hour`` false alarms an hour."""
    return tail.threshold(b.predicted(fa_per_hour) / b.hops_per_hour)


def fit_event_factor(predicted: Sequence[float], counted: Sequence[float]) -> tuple:
    """(a, b) of ``counted = a * predicted ** (1 + b)``, least squares on logs weighted by the
    counts (levels with no event are left out); b is kept within [-0.5, 1]."""
    p = np.asarray(predicted, dtype=np.float64)
    c = np.asarray(counted, dtype=np.float64)
    m = (c > 0) & (p > 0)
    if m.sum() == 0:
        return 1.0, 0.0
    x, y, w = np.log(p[m]), np.log(c[m] / p[m]), np.sqrt(c[m])
    if m.sum() == 1 or np.ptp(x) == 0:
        return float(np.exp(np.average(y, weights=w))), 0.0
    A = np.stack([np.ones_like(x), x], 1) * w[:, None]
    (la, b), *_ = np.linalg.lstsq(A, y * w, rcond=None)
    b = float(np.clip(b, -0.5, 1.0))
    la = float(np.average(y - b * x, weights=w))
    return float(np.exp(la)), b
