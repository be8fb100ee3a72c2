"""Shards: what the workers of an indexing run write (kws.search.dist runs them, here or on a Dask
cluster), and the FAISS pieces they need.

A segment's recordings are split into shards, one per worker. :func:`embed_shard` turns a
shard's recordings into rows and writes ``shard-KKK.i8`` (rows), ``shard-KKK.hash`` (a 32-bit
hash of every row) and ``shard-KKK.json`` (its files), each atomically, so a shard redone after
a worker's death replaces nothing half-written; :func:`add_shard_to_block` adds a shard's entries
to a copy of the trained index, to be merged into the segment's inverted lists.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, List, Tuple, Union

import numpy as np

from kws.checksum import sha256_file
from kws.errors import ArchiveDamaged, MissingExtra, SearchIndexError
from kws.search.rows import row_hash

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif")


def audio_files(paths: Iterable[Union[str, os.PathLike]]) -> List[Path]:
    """Audio files named, or found under the folders named (sorted, absolute, each once)."""
    from kws.audio.io import AudioError

    out: List[Path] = []
    for p in paths:
        p = Path(p).expanduser()
        if p.is_dir():
            out += sorted(q.resolve() for q in p.rglob("*") if q.suffix.lower() in AUDIO_SUFFIXES
                          and q.is_file())
        elif p.exists():
            out.append(p.resolve())
        else:
            raise AudioError(f"{p}: no such file or folder")
    return list(dict.fromkeys(out))


def import_faiss():
    """FAISS (its threads set by $KWS_THREADS), or a :class:`MissingExtra` that says how to
    install it."""
    try:
        import faiss
    except ImportError as exc:
        raise MissingExtra('a large archive index needs FAISS: pip install "kws[search]" '
                           "(or pip install faiss-cpu)") from exc
    threads = os.environ.get("KWS_THREADS")
    if threads:
        faiss.omp_set_num_threads(max(1, int(threads)))
    return faiss


SMALL_FILE = 64 << 20           # files up to this size get their sha256 checked at every open


def check_files(root: Path, checksums: dict, full: bool = False, small: int = SMALL_FILE) -> None:
    """Every file an index's manifest lists (``checksums``: path relative to ``root`` -> its
    ``size`` and ``sha256``) is there at its size, and, where ``full`` or at most ``small`` bytes,
    matches its sha256. Raises ArchiveDamaged saying which file and what to do."""
    for rel, c in checksums.items():
        p = root / rel
        try:
            size = p.stat().st_size
        except FileNotFoundError:
            raise ArchiveDamaged(f"{p} is missing: the index is incomplete; rebuild it") from None
        if size != c["size"]:
            raise ArchiveDamaged(f"{p}: {size} bytes, the manifest says {c['size']} "
                                 "(half-written or damaged): rebuild the index")
        if (full or size <= small) and sha256_file(p) != c["sha256"]:
            raise ArchiveDamaged(f"{p} does not match its sha256 (damaged): rebuild the index")


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, arr)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_shard(path: Path, files: Iterable[Tuple[str, np.ndarray, float, int, int]]) -> dict:
    """Write one shard: ``files`` yields (key, int8 rows, seconds, size, mtime_ns). Writes
    ``path.i8`` (rows), ``path.hash`` and ``path.json``, each atomically; returns the json."""
    path = Path(path)
    tmp = path.with_name(path.name + ".i8.tmp")
    entries, hashes, n = [], [], 0
    with open(tmp, "wb") as fh:
        for key, rows, seconds, size, mtime_ns in files:
            rows = np.ascontiguousarray(rows, np.int8)
            fh.write(rows.tobytes())
            hashes.append(row_hash(rows))
            entries.append([key, n, int(rows.shape[0]), round(float(seconds), 3), int(size), int(mtime_ns)])
            n += rows.shape[0]
        fh.flush()
        os.fsync(fh.fileno())
    write_atomic(path.with_name(path.name + ".hash"),
                  (np.concatenate(hashes) if hashes else np.zeros(0, np.uint32)).tobytes())
    os.replace(tmp, path.with_name(path.name + ".i8"))
    meta = {"rows": n, "files": entries}
    write_atomic(path.with_name(path.name + ".json"), json.dumps(meta).encode())
    return meta


_SPACES: dict = {}


def shard_space(kind: str, model_path: str):
    """The space (kws.search.rows.Space) of ``kind`` for the model at ``model_path``, made once a
    process (a worker embeds many shards)."""
    from kws.search.rows import Space, search_model

    key = (kind, model_path)
    if key not in _SPACES:
        _SPACES[key] = Space(kind, search_model(model_path))
    return _SPACES[key]


def embed_shard(path: str, items: List[Tuple[str, int, int]], kind: str, model_path: str, name: str) -> dict:
    """Runs on a worker: embed the recordings ``items`` (path, size, mtime_ns) into the shard
    ``path`` in the space ``kind`` of the model at ``model_path``, whose name must be ``name``
    (the index's). Unreadable files are listed under ``failed``. Re-running it rewrites the shard."""
    from kws.audio.io import AudioError, load_audio

    space = shard_space(kind, model_path)
    if space.name != name:
        raise SearchIndexError(f"the worker's model makes {space.name}, the index holds {name}: every "
                               "worker needs the same kws and model")
    failed = []

    def gen():
        for p, size, mtime_ns in items:
            try:
                audio = load_audio(p)
            except AudioError as exc:
                failed.append(str(exc))
                continue
            yield str(p), space.rows(audio), audio.size / 16000, size, mtime_ns
    meta = write_shard(Path(path), gen())
    meta["failed"] = failed
    meta["space"] = space.name
    return meta


def read_rows(path: Path, rows: int, dim: int) -> np.ndarray:
    if rows == 0:
        return np.zeros((0, dim), np.int8)
    return np.memmap(path, np.int8, "r", shape=(rows, dim))


def add_shard_entries(index, P: np.ndarray, shard_i8: str, rows: int, dim: int, first_id: int, stride: int,
                      context: int) -> None:
    """Add the entries of every ``stride``-th row of a shard (ids ``first_id`` + row; windows of
    ``context`` rows projected by ``P``, kws.search.lists.context_vectors) to ``index``."""
    from kws.search.lists import context_vectors

    x = read_rows(Path(shard_i8), rows, dim)
    step = 1 << 17
    for s in range(0, rows, step):
        sel = np.arange(s + (-s) % stride, min(rows, s + step), stride)
        if sel.size:
            a, b = int(sel[0]), min(rows, int(sel[-1]) + context)
            z = context_vectors(np.asarray(x[a:b]), sel - a, context, P)
            index.add_with_ids(z, (sel + first_id).astype(np.int64))


def add_shard_to_block(trained_path: str, shard_i8: str, rows: int, dim: int, first_id: int, stride: int,
                       context: int, out: str) -> str:
    """Runs on a worker: add a shard's entries (:func:`add_shard_entries`) to a copy of the
    trained index and write it to ``out`` (atomically)."""
    faiss = import_faiss()
    index = faiss.read_index(trained_path)
    add_shard_entries(index, np.load(trained_path.replace(".faiss", ".proj.npy")), shard_i8, rows, dim, first_id,
                      stride, context)
    faiss.write_index(index, out + ".tmp")
    os.replace(out + ".tmp", out)
    return out
