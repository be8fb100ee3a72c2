"""What an archive stores of a recording: vectors of the model as int8 rows, and the templates a
query is made of in the same space.

An index is made in one **space** (its manifest names it, with the model id; kws.search.archive):

- ``raw`` (default): the model's front-end vectors (kws.model.model.Model's front end, 96 values)
  whitened with the mean and covariance of real read speech (``kws/assets/search/whitening.npz``:
  raw vectors share a large common part, mean cosine 0.63, that drowns the word), templates padded
  with 0.25 s of silence and not cut. With the shipped model, spoken-term search by text and by
  recorded example measures better here than in the head's space (docs/search.md), so indexes
  and queries use it unless told otherwise.
- ``head``: what the detector matches. Every recording goes through the model's front end and
  head (one unit vector per 80 ms, 128 values for the shipped head), and a template is cut from
  an utterance with the model's geometry (kws.spot.templates: trimmed of silence, padded with the
  model's ``pad_s``, ``trim`` vectors dropped at each end), as keywords' templates are.

Both spaces score a template and find its hits by the same rule (kws.search.query: the detector's
mean cosine along the diagonal and kws.spot.events' event rule).

Rows are unit vectors x 127 as int8 (``dim`` bytes a vector: 4.3 MB an hour for the raw space's,
5.8 MB for the head's), each
with a 32-bit hash (:func:`row_hash`) that a query checks before it trusts a row. A recording is
padded with :data:`PAD_S` of silence either side so that words at its edges get vectors: row i
sees the recording's seconds [HOP_S i - PAD_S, HOP_S i - PAD_S + SPAN_S).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np

from kws.errors import UsageError
from kws.spot.templates import MIN_LENGTH, TRIM_TOP_DB, cut, source_vectors

HOP_S = 0.08                    # seconds between vectors
SPAN_S = 12512 / 16000          # audio seen by one vector (0.782 s)
PAD_S = 0.4                     # silence added before and after a recording (edge words get vectors)
ROW_SCALE = 127.0               # an int8 row is a unit vector times this
RAW_PAD_S = 0.25                # silence around an utterance made a template in the raw space
RAW_TRIM_MARGIN_S = 0.03        # sound kept beyond the trimmed silence there
WHITENING = Path(__file__).resolve().parents[1] / "assets" / "search" / "whitening.npz"
SPACES = ("raw", "head")
DEFAULT_SPACE = "raw"            # measured better for search with the shipped model (docs/search.md)

_MODELS: Dict[str, object] = {}
_HASH_W: Dict[int, tuple] = {}           # dimension -> (the hash form in pieces, bits a piece)
_WHITE: Dict[str, tuple] = {}


def search_model(path: Optional[Union[str, os.PathLike]] = None):
    """The model search embeds with (kws.model.model.Model; default: the shipped one), loaded
    once per process. The files search uses, the front end's and the head's, are checked against
    the model's sha256 (not its background bank, which search never reads: 26 MB less to hash
    before a query starts).

    Raises:
        kws.model.model.ModelError: not a model, or a front-end or head file damaged or replaced.
    """
    from kws.checksum import sha256_file
    from kws.model.model import Model, ModelError, default_model_path

    key = str(Path(path).resolve()) if path is not None else str(default_model_path())
    if key not in _MODELS:
        model = Model.load(key, verify=False)
        fe, head = model.manifest["frontend"], model.manifest.get("head")
        for name in [fe["network"], fe["constants"]] + ([head["file"]] if head else []):
            want = model.manifest["files"][name]["sha256"]
            if sha256_file(model.path / name) != want:
                raise ModelError(f"{model.path / name}: checksum mismatch (file is corrupt or was replaced)")
        _MODELS[key] = model
    return _MODELS[key]


@dataclass
class Template:
    """L vectors (unit rows, float32) and where the term lies in them: seconds from the start of
    the first vector's span to the term's start and end. ``space`` names the vectors (a
    :class:`Space`'s ``name``, '' when not known)."""
    vectors: np.ndarray
    start_s: float
    end_s: float
    label: str = ""
    space: str = ""

    def __post_init__(self):
        v = np.asarray(self.vectors, np.float32)
        if v.ndim != 2 or v.shape[0] < 1 or v.shape[1] < 1:
            raise UsageError(f"a template is (L, D) vectors with L >= 1, not {v.shape}")
        self.vectors = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


class Space:
    """The vectors of one space (see the module docstring) for one model: a recording's rows and
    an utterance's template."""

    def __init__(self, kind: str = DEFAULT_SPACE, model=None):
        if kind not in SPACES:
            raise UsageError(f"unknown vector space {kind!r}: one of {', '.join(SPACES)}")
        self.kind = kind
        self.model = model if model is not None else search_model()
        if kind == "head":
            h = self.model.manifest.get("head")
            self.dim = int(h["dim"]) if h else int(self.model.frontend.dim)
        else:
            self.dim = int(self.model.frontend.dim)

    @property
    def name(self) -> str:
        """What an index's rows and a query's templates must agree on: the space, the model id
        and, for the raw space, the whitening."""
        if self.kind == "head":
            return f"head:{self.model.model_id}"
        return f"raw:{self.model.model_id}:{_whitening()[2]}"

    def vectors(self, audio: np.ndarray) -> np.ndarray:
        """Unit vectors (float32) of a whole recording, :data:`PAD_S` of silence either side."""
        if self.kind == "head":
            return source_vectors(self.model.vectors, audio, trim=False, pad_s=PAD_S)
        return whiten(source_vectors(self.model.frontend.frames, audio, trim=False, pad_s=PAD_S))

    def rows(self, audio: np.ndarray) -> np.ndarray:
        """int8 rows of one recording."""
        return quantize_rows(self.vectors(audio))

    def template(self, audio: np.ndarray, label: str = "", trim: bool = True) -> Template:
        """An utterance of the term (a recorded example, a rendering) as a template: trimmed of
        silence (``trim``), padded, through the front end (and head), cut."""
        from kws.audio.io import AudioError, trim_silence

        x = np.asarray(audio, np.float32).reshape(-1)
        if trim:
            x = trim_silence(x, top_db=TRIM_TOP_DB, margin_s=0.0 if self.kind == "head" else RAW_TRIM_MARGIN_S)
        if x.size < 1600:
            raise AudioError("an utterance must hold at least 0.1 s of sound")
        dur = x.size / 16000
        if self.kind == "head":
            pad = self.model.pad_s
            h = self.model.head(source_vectors(self.model.frontend.frames, x, trim=False, pad_s=pad))
            a, b = cut(h.shape[0], self.model.trim, self.model.trim_end)
            if b - a < MIN_LENGTH:        # (a phrase may be longer than a keyword's 3.2 s)
                raise AudioError(f"{label or 'the utterance'} holds too little sound to make a template "
                                 f"({max(0, b - a)} vector(s) of 80 ms once padded and cut, at least {MIN_LENGTH})")
            return Template(h[a:b], pad - a * HOP_S, pad - a * HOP_S + dur, label, self.name)
        # raw: at least enough silence for one vector
        pad = round(max(RAW_PAD_S, (SPAN_S - dur) / 2 + 0.001) * 16000) / 16000
        v = whiten(source_vectors(self.model.frontend.frames, x, trim=False, pad_s=pad))
        return Template(quantize_rows(v).astype(np.float32) / ROW_SCALE, pad, pad + dur, label, self.name)


def _whitening() -> tuple:
    if "w" not in _WHITE:
        z = np.load(WHITENING)
        _WHITE["w"] = (z["mean"].astype(np.float32), z["W"].astype(np.float32),
                       hashlib.sha256(WHITENING.read_bytes()).hexdigest()[:16])
    return _WHITE["w"]


def fit_whitening(vectors: np.ndarray, eps: float = 1e-3) -> Dict[str, np.ndarray]:
    """Mean and whitening matrix of raw front-end vectors (each first scaled to unit length):
    eigenvectors of the covariance over sqrt(eigenvalue + eps * largest)."""
    x = np.asarray(vectors, np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    mean = x.mean(0)
    w, v = np.linalg.eigh(np.cov((x - mean).T))
    return {"mean": mean.astype(np.float32), "W": (v / np.sqrt(w + eps * w.max())).astype(np.float32)}


def whiten(v: np.ndarray) -> np.ndarray:
    """Raw front-end vectors (n, 96) -> whitened unit vectors (float32)."""
    mean, W, _ = _whitening()
    v = np.asarray(v, np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    y = (v - mean) @ W
    return y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)


def quantize_rows(v: np.ndarray) -> np.ndarray:
    """Unit rows (scaled to unit length here) as int8, x 127."""
    v = np.asarray(v, np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return np.clip(np.round(v * ROW_SCALE), -127, 127).astype(np.int8)


def row_hash(rows: np.ndarray) -> np.ndarray:
    """A 32-bit hash of each int8 row (a random linear form modulo a prime): any one changed byte
    changes it, and most other damage does. ``rows``: int8, or the same values as float32 (what
    the scoring reads; no other copy is made)."""
    rows = np.asarray(rows)
    if rows.dtype != np.float32:
        rows = np.asarray(rows, np.int8).astype(np.float32)
    d = rows.shape[1]
    if d not in _HASH_W:
        w = np.random.default_rng(20261202).integers(1, 2 ** 20, d)
        # the form in pieces of b bits, each product summed exactly in float32 (every partial
        # sum an integer below 2**24), so BLAS computes it exactly: sum_i piece_i * 2**(b i)
        b = max(1, int(np.floor(np.log2((2 ** 24 - 1) / (d * 127.0 + 1)))))
        pieces = [((w >> (b * i)) & ((1 << b) - 1)).astype(np.float32) for i in range(-(-20 // b))]
        _HASH_W[d] = (np.stack(pieces, 1), b)
    W, b = _HASH_W[d]
    parts = (rows @ W).astype(np.int64)
    h = parts[:, 0].copy()
    for i in range(1, W.shape[1]):
        h += parts[:, i] << (b * i)
    return (h % 4294967291).astype(np.uint32)
