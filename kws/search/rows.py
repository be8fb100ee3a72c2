"""What an archive stores of a recording: its whitened speech-embedding vectors as int8 rows.

Every recording becomes one 96-d speech-embedding vector per 80 ms (kws.model.backbone), whitened
(the mean and covariance of real read speech, ``kws/assets/search/whitening.npz`` beside the
front end: raw vectors share a large common part, mean cosine 0.63, which drowns the word in the
score; held-out read speech measures 21 % mean EER whitened against 33-38 % raw, docs/search.md),
stored as int8 rows (unit vectors x 127, 96 bytes a vector, 4.3 MB an hour), each with a 32-bit
hash (:func:`row_hash`) that a query checks before it trusts a row.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict

import numpy as np

from kws.spot.templates import source_vectors

DIM = 96
HOP_S = 0.08                    # seconds between vectors
SPAN_S = 12512 / 16000          # audio seen by one vector (0.782 s)
PAD_S = 0.4                     # silence added before and after a recording (edge words get vectors)
ROW_SCALE = 127.0               # an int8 row is a unit vector times this
_HASH_W = np.random.default_rng(20261202).integers(1, 2 ** 20, DIM).astype(np.float64)

_BACKBONE = {}


def default_backbone():
    """The shipped speech-embedding front end (the model's, kws/assets/model), loaded once."""
    from kws.model.backbone import Backbone, as_files

    if "b" not in _BACKBONE:
        _BACKBONE["b"] = Backbone(as_files(ASSETS / "model"))
    return _BACKBONE["b"]


ASSETS = Path(__file__).resolve().parents[1] / "assets"
WHITENING = ASSETS / "search" / "whitening.npz"


def backbone_id() -> str:
    """Names the front end and whitening the rows were made with (sha256, first 16 digits)."""
    h = hashlib.sha256((ASSETS / "model" / "backbone.onnx").read_bytes())
    h.update(WHITENING.read_bytes())
    return "speech_embedding-whitened-" + h.hexdigest()[:16]


def fit_whitening(vectors: np.ndarray, eps: float = 1e-3) -> Dict[str, np.ndarray]:
    """Mean and whitening matrix of raw front-end vectors (each first scaled to unit length):
    eigenvectors of the covariance over sqrt(eigenvalue + eps * largest)."""
    x = np.asarray(vectors, np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    mean = x.mean(0)
    w, v = np.linalg.eigh(np.cov((x - mean).T))
    return {"mean": mean.astype(np.float32), "W": (v / np.sqrt(w + eps * w.max())).astype(np.float32)}


_WHITE: dict = {}


def whiten(v: np.ndarray) -> np.ndarray:
    """Raw front-end vectors (n, 96) -> whitened unit vectors (float32)."""
    if "w" not in _WHITE:
        z = np.load(WHITENING)
        _WHITE["w"] = (z["mean"].astype(np.float32), z["W"].astype(np.float32))
    mean, W = _WHITE["w"]
    v = np.asarray(v, np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    y = (v - mean) @ W
    return y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)


def quantize_rows(v: np.ndarray) -> np.ndarray:
    """Unit rows (scaled to unit length here) as int8, x 127."""
    v = np.asarray(v, np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return np.clip(np.round(v * ROW_SCALE), -127, 127).astype(np.int8)


def to_rows(raw: np.ndarray) -> np.ndarray:
    """Raw front-end vectors -> the int8 rows an archive stores (whitened, unit, x 127)."""
    return quantize_rows(whiten(raw))


def backbone_vectors(audio: np.ndarray, backbone=None, pad_s: float = PAD_S) -> np.ndarray:
    """Raw front-end vectors of a recording with ``pad_s`` of silence either side."""
    return source_vectors(backbone or default_backbone(), audio, trim=False, pad_s=pad_s)


def audio_rows(audio: np.ndarray, backbone=None) -> np.ndarray:
    """int8 rows of one recording: the vectors of the audio with PAD_S of silence either side;
    row i sees the recording's seconds [HOP_S i - PAD_S, HOP_S i - PAD_S + SPAN_S)."""
    return to_rows(backbone_vectors(audio, backbone))


def row_hash(rows: np.ndarray) -> np.ndarray:
    """A 32-bit hash of each int8 row (a random linear form modulo a prime): any one changed byte
    changes it, and most other damage does."""
    # |sum| < 96 * 127 * 2**20 < 2**34: exact in float64, so BLAS computes it exactly
    h = (np.asarray(rows, np.int8).astype(np.float64) @ _HASH_W).astype(np.int64)
    return (h % 4294967291).astype(np.uint32)


def diagonal_scores(x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """s(e) for every end e = L-1 .. n-1 of unit rows ``x`` (n, D) and template ``T`` (L, D)."""
    L, n = T.shape[0], x.shape[0]
    if n < L:
        return np.zeros(0, np.float32)
    G = x @ T.T                                   # (n, L)
    s = np.zeros(n - L + 1, np.float32)
    for j in range(L):
        s += G[j:n - L + 1 + j, j]
    return s / L
