"""Keywords and their store.

A :class:`Keyword` holds one or more reference vectors (its text embedding, the mean of its
example embeddings, or both) and a threshold on the cosine score. A :class:`KeywordSet` is what the
detector matches against; it is saved as a store::

    DIR/keywords.json            version, model id, keywords (name, text, phonemes, threshold, EER, ...)
    DIR/vectors-<sha12>.npz      the reference vectors, one array per keyword

Writes are atomic: the vectors go to a new file first, then ``keywords.json`` is replaced in one
``os.replace``; a crash or Ctrl-C leaves either the old store or the new one, never a mix.
A store made by another model (another embedding space) is refused with a clear message.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Union

import numpy as np

STORE_VERSION = 1
STORE_FILE = "keywords.json"


class StoreError(RuntimeError):
    """A keyword store that cannot be used (corrupt, other model, duplicate or unknown names)."""


@dataclass
class Keyword:
    name: str
    vectors: np.ndarray                     # (n, D) unit vectors; score = max cosine over them
    threshold: float
    text: Optional[str] = None
    phonemes: Optional[str] = None
    source: str = "text"                    # text | examples | text+examples
    eer: Optional[float] = None
    tuned_on: Dict[str, object] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    duration: Optional[float] = None        # expected spoken duration (s): sizes its windows

    def meta(self) -> dict:
        d = asdict(self)
        d.pop("vectors")
        return d


def default_store_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(os.environ.get("KWS_STORE") or user_data_dir("kws", appauthor=False)) / "keywords"


def _validate_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 64 or any(c in name for c in "\n\r\t/\\"):
        raise StoreError(f"keyword name {name!r} must be 1-64 characters without slashes or tabs")
    return name


class KeywordSet:
    """An ordered set of keywords for one model (``model_id``)."""

    def __init__(self, model_id: str, keywords: Optional[List[Keyword]] = None):
        self.model_id = model_id
        self._kw: Dict[str, Keyword] = {}
        for k in keywords or []:
            self.add(k)

    # ---- container
    def __len__(self) -> int:
        return len(self._kw)

    def __iter__(self) -> Iterator[Keyword]:
        return iter(self._kw.values())

    def __contains__(self, name: str) -> bool:
        return name in self._kw

    def __getitem__(self, name: str) -> Keyword:
        if name not in self._kw:
            raise StoreError(f"no keyword named {name!r} (have: {', '.join(self._kw) or 'none'})")
        return self._kw[name]

    @property
    def names(self) -> List[str]:
        return list(self._kw)

    def add(self, kw: Keyword, replace: bool = False) -> None:
        kw.name = _validate_name(kw.name)
        if kw.name in self._kw and not replace:
            raise StoreError(f"a keyword named {kw.name!r} exists already (remove or rename it first)")
        v = np.asarray(kw.vectors, dtype=np.float32)
        if v.ndim == 1:
            v = v[None]
        if v.ndim != 2 or v.shape[0] == 0 or not np.all(np.isfinite(v)):
            raise StoreError(f"keyword {kw.name!r}: vectors must be a non-empty finite (n, D) array")
        kw.vectors = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        self._kw[kw.name] = kw

    def remove(self, name: str) -> Keyword:
        kw = self[name]
        del self._kw[name]
        return kw

    def rename(self, old: str, new: str) -> None:
        new = _validate_name(new)
        if new in self._kw:
            raise StoreError(f"a keyword named {new!r} exists already")
        kw = self.remove(old)
        kw.name = new
        self._kw[new] = kw

    # ---- matching
    def matrix(self) -> tuple:
        """(V, D) all vectors stacked, (V,) owner keyword index, (K,) thresholds."""
        kws = list(self._kw.values())
        if not kws:
            return np.zeros((0, 0), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32)
        mat = np.concatenate([k.vectors for k in kws])
        owner = np.concatenate([np.full(len(k.vectors), i) for i, k in enumerate(kws)])
        thr = np.array([k.threshold for k in kws], dtype=np.float32)
        return mat.astype(np.float32), owner, thr

    def scores(self, emb: np.ndarray) -> np.ndarray:
        """(N, D) embeddings -> (N, K) score of each keyword (max over its vectors)."""
        mat, owner, _ = self.matrix()
        return max_per_keyword(np.asarray(emb, dtype=np.float32) @ mat.T, owner, len(self))

    # ---- store
    def save(self, directory: Union[str, os.PathLike]) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, **{f"k{i}": k.vectors for i, k in enumerate(self._kw.values())})
        data = buf.getvalue()
        vec_name = f"vectors-{hashlib.sha256(data).hexdigest()[:12]}.npz"
        _atomic_write(d / vec_name, data)
        doc = {"version": STORE_VERSION, "model_id": self.model_id, "vectors": vec_name,
               "vectors_sha256": hashlib.sha256(data).hexdigest(),
               "keywords": [k.meta() for k in self._kw.values()]}
        _atomic_write(d / STORE_FILE, json.dumps(doc, indent=2).encode())
        for old in d.glob("vectors-*.npz"):       # now unreferenced
            if old.name != vec_name:
                old.unlink(missing_ok=True)
        return d / STORE_FILE

    @classmethod
    def load(cls, directory: Union[str, os.PathLike], model_id: Optional[str] = None) -> "KeywordSet":
        d = Path(directory)
        f = d / STORE_FILE
        if not f.exists():
            raise StoreError(f"{d}: no keyword store here (no {STORE_FILE}); enroll a keyword first: "
                             f"python -m kws.enroll add \"hey computer\"")
        try:
            doc = json.loads(f.read_text())
        except json.JSONDecodeError as exc:
            raise StoreError(f"{f}: corrupt ({exc})") from exc
        if doc.get("version") != STORE_VERSION:
            raise StoreError(f"{f}: store version {doc.get('version')} is not supported (expected {STORE_VERSION})")
        if model_id is not None and doc.get("model_id") != model_id:
            raise StoreError(f"{f}: made with model {doc.get('model_id')!r}, but the model in use is "
                             f"{model_id!r}; its embeddings do not fit. Re-enroll the keywords "
                             f"(python -m kws.enroll export/import keeps their texts).")
        vf = d / doc["vectors"]
        try:
            data = vf.read_bytes()
        except OSError as exc:
            raise StoreError(f"{vf}: missing ({exc})") from exc
        if hashlib.sha256(data).hexdigest() != doc["vectors_sha256"]:
            raise StoreError(f"{vf}: checksum mismatch, the store is corrupt")
        arrs = np.load(io.BytesIO(data))
        kws = []
        for i, meta in enumerate(doc["keywords"]):
            kws.append(Keyword(vectors=arrs[f"k{i}"], **meta))
        return cls(doc["model_id"], kws)


def max_per_keyword(sims: np.ndarray, owner: np.ndarray, n_keywords: int) -> np.ndarray:
    """(N, V) similarities to all stacked vectors -> (N, K): each keyword's best vector."""
    out = np.full((sims.shape[0], n_keywords), -1.0, dtype=np.float32)
    for i in range(n_keywords):
        out[:, i] = sims[:, owner == i].max(axis=1)
    return out


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
