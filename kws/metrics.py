"""Metrics (numpy only): average precision, EER, DET points, same-different AP, FA/hour.

Conventions: higher score = more likely a positive. Ties are scored as scikit-learn does
(all tied items enter the ranking together), so the tests can use it as an oracle.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np


def _sorted_counts(scores: np.ndarray, labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative true/false positives at each distinct threshold, highest first."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).astype(bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError("scores and labels differ in length")
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]     # last index of each tie group
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    return tp.astype(np.float64), fp.astype(np.float64), s[last]


def average_precision(scores, labels) -> float:
    """Area under the precision-recall curve as sum over recall steps (sklearn's definition)."""
    tp, fp, _ = _sorted_counts(scores, labels)
    n_pos = tp[-1] if tp.size else 0.0
    if n_pos == 0:
        return float("nan")
    precision = tp / (tp + fp)
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_points(scores, labels) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(false-positive rate, miss rate, threshold) at each distinct threshold, strict to lax."""
    tp, fp, thr = _sorted_counts(scores, labels)
    n_pos, n_neg = tp[-1], fp[-1]
    if n_pos == 0 or n_neg == 0:
        raise ValueError("need both positive and negative examples")
    fpr = np.r_[0.0, fp / n_neg]
    miss = np.r_[1.0, 1.0 - tp / n_pos]
    thr = np.r_[np.inf, thr]
    return fpr, miss, thr


def eer(scores, labels) -> Tuple[float, float]:
    """Equal error rate and the threshold where it is reached.

    Between the two operating points whose (FPR - miss) changes sign, both rates are
    interpolated linearly; the threshold is the one of the stricter point.
    """
    fpr, miss, thr = roc_points(scores, labels)
    d = fpr - miss                       # goes from -1 (strict) to +1 (lax)
    i = int(np.nonzero(d >= 0)[0][0])
    if d[i] == 0 or i == 0:
        return float(fpr[i]), float(thr[i])
    w = -d[i - 1] / (d[i] - d[i - 1])
    rate = fpr[i - 1] + w * (fpr[i] - fpr[i - 1])
    finite = thr[i - 1] if np.isfinite(thr[i - 1]) else thr[i]
    return float(rate), float(finite)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def same_different_ap(emb: np.ndarray, labels) -> float:
    """Word discrimination: AP over all N-choose-2 pairs, positive when both are the same word."""
    labels = np.asarray(labels)
    sim = cosine_matrix(emb, emb)
    iu = np.triu_indices(len(labels), k=1)
    return average_precision(sim[iu], labels[iu[0]] == labels[iu[1]])


def cross_modal_ap(audio_emb: np.ndarray, audio_labels, text_emb: np.ndarray, text_labels) -> float:
    """Text -> audio retrieval: AP over all (text, clip) pairs, positive when they name the same word."""
    sim = cosine_matrix(text_emb, audio_emb)
    pos = np.asarray(text_labels)[:, None] == np.asarray(audio_labels)[None, :]
    return average_precision(sim.ravel(), pos.ravel())


def miss_at_false_alarm_rate(pos_scores, neg_scores, neg_hours: float,
                             fa_per_hour: float = 1.0) -> Tuple[float, float]:
    """Miss rate when the threshold allows at most ``fa_per_hour`` false alarms per hour of negatives.

    ``neg_scores`` are scores of detections (events) in the negative audio. Returns (miss, threshold).
    """
    pos = np.sort(np.asarray(pos_scores, dtype=np.float64))
    neg = np.sort(np.asarray(neg_scores, dtype=np.float64))[::-1]
    allowed = int(np.floor(fa_per_hour * neg_hours))
    thr = np.nextafter(neg[allowed], np.inf) if allowed < neg.size else -np.inf
    miss = float(np.mean(pos < thr)) if pos.size else float("nan")
    return miss, float(thr)


def summarize_scores(scores, labels) -> Dict[str, float]:
    rate, thr = eer(scores, labels)
    return {"eer": rate, "eer_threshold": thr, "ap": average_precision(scores, labels)}
