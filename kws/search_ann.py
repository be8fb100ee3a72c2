"""Approximate search for large indexes: FAISS inverted lists over projected int8 window vectors.

An index built with ``IndexConfig(kind="ivf")`` (``kws search index --approximate``) keeps its
per-file shards (full int8 rows: the exact reference, and the source for re-indexing) and, instead
of the packed copy of all rows, an approximate structure in ``ann/``:

- a projection ``P`` (D x d): the leading eigenvectors of the rows' *uncentred* second moment,
  d the fewest keeping ``energy`` of it, at most ``max_dim`` (128). Uncentred, so inner products
  are kept (a centred PCA adds a per-row term and breaks the ranking). Window vectors of a speech
  encoder lie close to a low-dimensional subspace, so 128 bytes a window keep the ranking
  (recall measured by benchmarks/search_scale.py, docs/search.md);
- a FAISS ``IndexIVFScalarQuantizer`` (8 bits a dimension, inner product) over the projected rows,
  with ``cells`` spherical k-means lists (about 2 sqrt(N)); a query scans the ``nprobe`` nearest
  lists, so its cost grows about as sqrt(N), not N;
- ``times.bin`` (start, end per row, float32) and ``ann.json`` (per file: its id range and the
  size/mtime it was added at). Row ids are slots in ``times.bin``; a removed or re-indexed file's
  slots are removed from the FAISS index and left dead until a rebuild.

The structure is derived from the shards: :func:`sync` brings it up to date after indexing
(adding new files, removing changed or deleted ones; retraining when the index has grown four
times past the size it was trained at, or when dead slots outnumber live ones). If it is damaged
or missing it is rebuilt from the shards. FAISS is an optional dependency
(``pip install "kws[search]"``).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from kws.errors import MissingExtra, UsageError

_Q = 127.0
ANN_VERSION = 1


def import_faiss():
    """FAISS, or a :class:`MissingExtra` that says how to install it."""
    try:
        import faiss
    except ImportError as exc:
        raise MissingExtra('an approximate index needs FAISS: pip install "kws[search]" '
                           "(or pip install faiss-cpu)") from exc
    threads = os.environ.get("KWS_THREADS")
    if threads:
        faiss.omp_set_num_threads(max(1, int(threads)))
    return faiss


@dataclass(frozen=True)
class AnnConfig:
    """Settings of the approximate structure (build: ``energy``, ``max_dim``, ``cells``, training;
    query: ``nprobe``)."""
    energy: float = 0.999          # share of the rows' second moment the projection keeps ...
    max_dim: int = 128             # ... in at most this many dimensions (= bytes a window)
    cells: int = 0                 # inverted lists; 0: about 2 sqrt(rows), a power of two
    nprobe: int = 128              # lists scanned per query (recall against cost)
    train_rows: int = 0            # rows (sampled across files) that train it; 0: 40 a list
    kmeans_iter: int = 10          # k-means iterations of the list centroids
    seed: int = 0

    def __post_init__(self):
        if not 0.5 < self.energy <= 1.0:
            raise UsageError("energy must be within (0.5, 1]")
        if self.max_dim < 8:
            raise UsageError("max_dim must be at least 8")
        if self.cells < 0 or self.nprobe < 1 or self.train_rows < 0 or self.kmeans_iter < 1:
            raise UsageError("cells >= 0, nprobe >= 1, train_rows >= 0 and kmeans_iter >= 1 are required")


def auto_cells(n_rows: int) -> int:
    """About 2 sqrt(N) lists (a power of two), at least 39 training rows each (FAISS's minimum)."""
    want = 2.0 * np.sqrt(max(n_rows, 1))
    cells = 2 ** int(round(np.log2(want)))
    return int(max(1, min(cells, 65536, n_rows // 39 or 1)))


def projection(sample: np.ndarray, energy: float, max_dim: int = 1 << 30) -> np.ndarray:
    """(D, d) float32: leading eigenvectors of sample^T sample keeping ``energy`` of its trace
    (d a multiple of 8, at most ``max_dim``)."""
    m = sample.astype(np.float64).T @ sample.astype(np.float64) / max(1, sample.shape[0])
    w, v = np.linalg.eigh(m)
    w, v = w[::-1], v[:, ::-1]
    cum = np.cumsum(np.clip(w, 0, None)) / max(float(np.clip(w, 0, None).sum()), 1e-12)
    d = int(np.searchsorted(cum, energy - 1e-9) + 1)
    d = min(v.shape[0], max_dim, max(8, -(-d // 8) * 8))   # a multiple of 8, at least 8
    return np.ascontiguousarray(v[:, :d], dtype=np.float32)


class AnnIndex:
    """The approximate structure of one index folder (see the module docstring)."""

    def __init__(self, root: Path, config: AnnConfig = AnnConfig()):
        self.root = Path(root) / "ann"
        self.config = config
        self.meta: Optional[dict] = None
        self._index = None
        self._times = None
        meta = self.root / "ann.json"
        if meta.exists():
            try:
                m = json.loads(meta.read_text())
                if m.get("version") == ANN_VERSION:
                    self.meta = m
            except json.JSONDecodeError:
                self.meta = None

    # ------------------------------------------------------------------ state
    def current(self, stamp: str) -> bool:
        """True when the structure holds exactly the index's files (``stamp`` of index.json)."""
        f = self.root / "ivf.faiss"
        return (self.meta is not None and self.meta.get("stamp") == stamp and f.exists()
                and f.stat().st_size == self.meta.get("ivf_bytes"))

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.glob("*") if p.is_file()) if self.root.exists() else 0

    def _load(self, mmap: bool):
        faiss = import_faiss()
        flags = (faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY) if mmap else 0
        return faiss.read_index(str(self.root / "ivf.faiss"), flags)

    # ------------------------------------------------------------------ building
    def sync(self, files: Dict[str, dict], shard_rows, stamp: str, quiet: bool = True) -> dict:
        """Bring the structure up to date with ``files`` (index.json entries).

        ``shard_rows(key)`` returns (int8 rows, times) of one file. Returns what was done."""
        from kws.progress import progress

        faiss = import_faiss()
        live = {k: f for k, f in files.items() if int(f["windows"]) > 0}
        n_live = sum(int(f["windows"]) for f in live.values())
        m, index = self.meta, None
        if m is not None and (self.root / "ivf.faiss").exists():
            try:
                index = self._load(mmap=False)
            except RuntimeError:
                m, index = None, None
        stale = [k for k, e in (m or {}).get("files", {}).items()
                 if k not in live or (e["size"], e["mtime_ns"]) != (live[k]["size"], live[k]["mtime_ns"])]
        dead = (m["dead"] + sum(m["files"][k]["n"] for k in stale)) if m else 0
        retrain = (index is None or m is None or n_live > 4 * max(1, m["trained_rows"])
                   or dead > n_live)
        report = {"retrained": bool(retrain), "added_files": 0, "removed_files": 0}
        if n_live == 0:
            self._clear()
            return report
        self.root.mkdir(parents=True, exist_ok=True)
        if retrain:
            P = self._train_projection(live, shard_rows)
            index = self._new_index(P, live, shard_rows, n_live, faiss)
            m = {"version": ANN_VERSION, "dim_in": int(P.shape[0]), "dim": int(P.shape[1]),
                 "cells": int(index.nlist), "trained_rows": n_live, "slots": 0, "dead": 0,
                 "files": {}, "config": asdict(self.config)}
            np.save(self.root / "projection.tmp.npy", P)
            times_mode = "wb"
        else:
            P = np.load(self.root / "projection.npy")
            for k in stale:
                e = m["files"].pop(k)
                index.remove_ids(faiss.IDSelectorRange(e["first"], e["first"] + e["n"]))
                report["removed_files"] += 1
            m["dead"] = dead
            times_mode = "ab"
        todo = [k for k in live if k not in m["files"]]
        tpath = self.root / "times.bin"
        if times_mode == "ab" and tpath.exists():  # drop a tail written by an interrupted sync
            with open(tpath, "r+b") as fh:
                fh.truncate(m["slots"] * 8)
        with open(self.root / ("times.tmp.bin" if retrain else "times.bin"), times_mode) as tf:
            for k in progress(todo, "approximate index", quiet=quiet, unit="file"):
                rows, times = shard_rows(k)
                first = m["slots"]
                if rows.shape[0]:
                    x = (np.asarray(rows, np.float32) / _Q) @ P
                    index.add_with_ids(x, np.arange(first, first + rows.shape[0], dtype=np.int64))
                    tf.write(np.ascontiguousarray(times, np.float32).tobytes())
                m["files"][k] = {"first": first, "n": int(rows.shape[0]), "size": live[k]["size"],
                                 "mtime_ns": live[k]["mtime_ns"]}
                m["slots"] = first + int(rows.shape[0])
                report["added_files"] += 1
        m["stamp"] = stamp
        faiss.write_index(index, str(self.root / "ivf.tmp.faiss"))
        m["ivf_bytes"] = (self.root / "ivf.tmp.faiss").stat().st_size
        if retrain:
            os.replace(self.root / "projection.tmp.npy", self.root / "projection.npy")
            os.replace(self.root / "times.tmp.bin", tpath)
        os.replace(self.root / "ivf.tmp.faiss", self.root / "ivf.faiss")
        tmp = self.root / "ann.json.tmp"
        tmp.write_text(json.dumps(m))
        os.replace(tmp, self.root / "ann.json")
        self.meta, self._index, self._times = m, None, None
        return report

    def _clear(self) -> None:
        for p in self.root.glob("*") if self.root.exists() else ():
            p.unlink()
        self.meta, self._index, self._times = None, None, None

    def _sample(self, live: Dict[str, dict], shard_rows, n_live: int) -> np.ndarray:
        rng = np.random.default_rng(self.config.seed)
        want = self.config.train_rows or 40 * (self.config.cells or auto_cells(n_live))
        share = min(1.0, max(want, 20_000) / max(1, n_live))
        parts = []
        for k in live:
            rows, _ = shard_rows(k)
            take = rows.shape[0] if share >= 1 else rng.binomial(rows.shape[0], share)
            if take:
                idx = np.sort(rng.choice(rows.shape[0], take, replace=False))
                parts.append(np.asarray(rows[idx], np.float32) / _Q)
        return np.concatenate(parts)

    def _train_projection(self, live, shard_rows) -> np.ndarray:
        n_live = sum(int(f["windows"]) for f in live.values())
        self._train_sample = self._sample(live, shard_rows, n_live)
        return projection(self._train_sample, self.config.energy, self.config.max_dim)

    def _new_index(self, P: np.ndarray, live, shard_rows, n_live: int, faiss):
        x = self._train_sample @ P
        cells = self.config.cells or auto_cells(n_live)
        cells = max(1, min(cells, x.shape[0]))
        quantizer = faiss.IndexFlatIP(P.shape[1])
        index = faiss.IndexIVFScalarQuantizer(quantizer, P.shape[1], cells,
                                              faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        index.cp.spherical = True
        index.cp.seed = self.config.seed
        index.cp.niter = self.config.kmeans_iter
        t0 = time.perf_counter()
        index.train(np.ascontiguousarray(x))
        self.train_s = time.perf_counter() - t0
        del self._train_sample
        return index

    # ------------------------------------------------------------------ querying
    def search(self, query: np.ndarray, k: int, nprobe: Optional[int] = None
               ) -> Tuple[np.ndarray, np.ndarray]:
        """(scores, slots) of the ``k`` best rows (fewer when the index is smaller)."""
        if self._index is None:
            self._index = self._load(mmap=True)
            self._P = np.load(self.root / "projection.npy")
        self._index.nprobe = int(nprobe or self.config.nprobe)
        q = (np.asarray(query, np.float32) @ self._P)[None]
        scores, ids = self._index.search(np.ascontiguousarray(q), int(k))
        ok = ids[0] >= 0
        return scores[0][ok], ids[0][ok]

    def locate(self, slots: np.ndarray) -> Tuple[List[str], np.ndarray, np.ndarray]:
        """(file keys in first-slot order, owner position of each slot, (n, 2) times)."""
        if self._times is None:
            self._times = np.memmap(self.root / "times.bin", np.float32, "r", shape=(self.meta["slots"], 2))
            order = sorted(self.meta["files"].items(), key=lambda kv: kv[1]["first"])
            self._keys = [k for k, _ in order]
            self._firsts = np.array([e["first"] for _, e in order], np.int64)
        owner = np.searchsorted(self._firsts, slots, side="right") - 1
        return self._keys, owner, np.asarray(self._times[slots])
