"""Inverted lists of a segment: what proposes the places a query's templates are scored at.

An entry of the lists is ``context`` consecutive rows of a recording (from a listed row on,
every ``stride``-th row), concatenated and projected to ``listed_dim`` dimensions by an
uncentred PCA (:func:`context_vectors`), so that the inner product of two entries is about the
sum of their rows' cosines, position by position: the diagonal of the template score over
``context`` rows. The lists are a FAISS inverted-file index over a two-level coarse quantizer,
its entries coded by the index's ``codec``:

- ``sq8`` (a byte a dimension) or ``pqM`` (M bytes, a product quantizer): lists in their own
  file (``ivf-G.ivfdata``, FAISS ``OnDiskInvertedLists``), memory-mapped;
- ``fsM`` (index format 3): a product quantizer of M codes of 4 bits, scanned by FAISS's
  fast-scan kernels (a few nanoseconds an entry), lists inside ``ivf-G.faiss``, which is
  memory-mapped; a list is read into FAISS the first time a query scans it (:class:`Lists`),
  so opening reads none.

Every list has a CRC-32 (``ivf-G.crc.npy``) that a query checks before it trusts the list
(each list once a process), so a damaged list never proposes.

**Windows** (``context`` > 1, kws.search.query): a template of L rows looks up its entries as
full windows of ``context`` rows (:func:`window_queries`: one window if L <= context, else
windows spread evenly over it; rows past a shorter template's end are zeros, so its window's
inner product is its own diagonal sum). The nearest entries of a window are the places where
the template, aligned there, scores best: a ranking of places by about the detector's score.
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Tuple

import numpy as np

from kws.errors import ArchiveDamaged
from kws.search.rows import ROW_SCALE


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique hashes integers in numpy 2.3+, 30x slower here)."""
    a = np.sort(np.asarray(a).ravel())
    return a[np.r_[True, a[1:] != a[:-1]]] if a.size else a


def codec_kind(codec: str) -> Tuple[str, int]:
    """('sq8', 0), ('pq', M) or ('fs', M) of a codec name; ValueError for anything else."""
    if codec == "sq8":
        return "sq8", 0
    if codec[:2] in ("pq", "fs") and codec[2:].isdigit() and int(codec[2:]) >= 1:
        return codec[:2], int(codec[2:])
    raise ValueError(codec)


def context_vectors(x: np.ndarray, at: np.ndarray, context: int, P: np.ndarray) -> np.ndarray:
    """Listed entries of unit rows ``x`` (float or int8 x 127) at positions ``at``: rows
    at .. at + context - 1 (the last row repeated past the end) concatenated, then projected by
    ``P``. The inner product of two such entries is about the sum of the cosines of their rows,
    position by position (the diagonal of the template score over ``context`` rows)."""
    n, dim = x.shape
    idx = np.minimum(at[:, None] + np.arange(context)[None], n - 1)
    z = np.asarray(x[idx.ravel()], np.float32).reshape(at.size, context * dim)
    if x.dtype == np.int8:
        z /= ROW_SCALE
    return np.ascontiguousarray(z @ P)


def window_starts(length: int, context: int) -> np.ndarray:
    """Where a template of ``length`` rows is cut into windows of ``context`` rows: 0 if it fits
    in one, else as few windows as cover it, spread evenly (the last one ends at its end)."""
    if length <= context:
        return np.zeros(1, np.int64)
    n = -(-length // context)
    return np.round(np.linspace(0, length - context, n)).astype(np.int64)


def window_queries(templates, context: int, P: np.ndarray):
    """The windows of every template (:func:`window_starts`; rows past a template's end are
    zeros) projected by ``P``: (vectors, their template, their start row in it, rows they hold)."""
    q, owner, start, width = [], [], [], []
    for t, T in enumerate(templates):
        v = np.asarray(T.vectors, np.float32)
        L, dim = v.shape
        for j in window_starts(L, context):
            w = np.zeros((context, dim), np.float32)
            w[:min(context, L - j)] = v[j:j + context]
            q.append(w.ravel())
            owner.append(t)
            start.append(j)
            width.append(min(context, L - j))
    Q = np.ascontiguousarray(np.stack(q) @ P, np.float32)
    return Q, np.array(owner, np.int64), np.array(start, np.int64), np.array(width, np.float64)


def make_index(faiss, codec: str, quant, d: int, nlist: int):
    """An untrained inverted-file index of ``codec`` over the coarse quantizer ``quant``."""
    kind, m = codec_kind(codec)
    if kind == "sq8":
        return faiss.IndexIVFScalarQuantizer(quant, d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                             faiss.METRIC_INNER_PRODUCT, False)
    if kind == "pq":
        index = faiss.IndexIVFPQ(quant, d, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexIVFPQFastScan(quant, d, nlist, m, 4, faiss.METRIC_INNER_PRODUCT)
    index.by_residual = False        # the entries themselves, as the 8-bit codes are
    return index


class ListBytes:
    """The bytes of an index's lists, as numpy views (no copy), and their CRC-32."""

    def __init__(self, faiss, invlists):
        self.faiss = faiss
        self.il = invlists
        b = faiss.downcast_InvertedLists(invlists)
        # fast-scan lists pack their codes in blocks of n_per_block entries
        self.blocks = (int(b.n_per_block), int(b.block_size)) if isinstance(b, faiss.BlockInvertedLists) else None

    def crc(self, l: int) -> int:
        """CRC-32 of list ``l``: its codes, then its ids."""
        n = self.il.list_size(l)
        if n == 0:
            return 0
        size = -(-n // self.blocks[0]) * self.blocks[1] if self.blocks else n * self.il.code_size
        codes = self.faiss.rev_swig_ptr(self.il.get_codes(l), size)
        return zlib.crc32(self.faiss.rev_swig_ptr(self.il.get_ids(l), n), zlib.crc32(codes))


def list_crcs(index) -> np.ndarray:
    """CRC-32 of every list of an inverted-file index (:meth:`ListBytes.crc`)."""
    import faiss

    ivf = faiss.extract_index_ivf(index)
    lb = ListBytes(faiss, ivf.invlists)
    return np.array([lb.crc(l) for l in range(ivf.nlist)], np.uint32)


def write_lists(faiss, index, out: Path) -> np.ndarray:
    """Write a segment's lists ``out``.faiss (atomically); returns every list's CRC-32."""
    tmp = out.with_name(out.name + ".faiss.tmp")
    faiss.write_index(index, str(tmp))
    tmp.replace(out.with_suffix(".faiss"))
    return list_crcs(index)


def merge_blocks(faiss, trained: Path, blocks, out: Path) -> np.ndarray:
    """Merge the blocks (each shard's entries in a copy of the trained index) into on-disk lists
    ``out`` (``.faiss`` and ``.ivfdata``); returns every list's CRC-32. (Not for fast-scan lists:
    FAISS 1.15 damages its heap merging those, so they are filled in one index instead.)"""
    import faiss.contrib.ondisk as ondisk

    for x in (".faiss", ".ivfdata"):
        if out.with_suffix(x).exists():
            out.with_suffix(x).unlink()
    index = faiss.read_index(str(trained))
    with c_output_muted():
        ondisk.merge_ondisk(index, sorted(str(b) for b in blocks), str(out.with_suffix(".ivfdata")))
    return write_lists(faiss, index, out)


class FastScanFile:
    """The fast-scan lists inside a segment's ``ivf-G.faiss``, memory-mapped and read list by
    list: the file is the trained index (``trained``, whose lists are empty) with every list
    filled, so its lists' table (FAISS's ``ilbl`` section: per list, its ids, then its codes
    packed in blocks) starts where the trained file's empty table does."""

    def __init__(self, path: Path, trained: Path, nlist: int, n_per_block: int, block_size: int):
        import struct

        self.path = path
        self.data = np.asarray(np.memmap(path, np.uint8, "r"))      # a plain view: slices cost less
        buf = memoryview(self.data)
        at = trained.stat().st_size - (4 + 32 + 16 * nlist)     # the trained file's table: all empty
        ok = at > 0 and bytes(self.data[at:at + 4]) == b"ilbl" and \
            struct.unpack_from("<Q", buf, at + 4)[0] == nlist and \
            struct.unpack_from("<2Q", buf, at + 20) == (n_per_block, block_size)
        self.table = np.zeros((nlist, 3), np.int64)                  # entries, ids' offset, codes' offset
        p = at + 36
        for l in range(nlist if ok else 0):
            if p + 8 > self.data.size:
                ok = False
                break
            n = struct.unpack_from("<Q", buf, p)[0]
            self.table[l] = n, p + 8, p + 16 + 8 * n
            p += 16 + 8 * n
            if p > self.data.size or struct.unpack_from("<Q", buf, p - 8)[0] != -(-n // n_per_block) * block_size:
                ok = False
                break
            p += -(-n // n_per_block) * block_size
        del buf
        if not ok or p != self.data.size:
            raise ArchiveDamaged(f"{path}: its lists are not laid out as its trained index's (damaged): "
                                 "rebuild the index")
        self.n_per_block, self.block_size = n_per_block, block_size

    def list_bytes(self, l: int) -> Tuple[np.ndarray, np.ndarray]:
        """(packed codes, ids) of list ``l``, as views of the mapped file."""
        n, ids, codes = (int(v) for v in self.table[l])
        return self.data[codes:codes + -(-n // self.n_per_block) * self.block_size], self.data[ids:ids + 8 * n]


class Lists:
    """A segment's lists, open for queries: nearest entries, every list checked before use.
    Format 3 (fast-scan): the trained index with empty lists, each list read from the mapped
    ``ivf-G.faiss`` (:class:`FastScanFile`) the first time a query scans it, after its CRC-32
    is checked; opening reads none. Format 2: FAISS's on-disk lists, mapped."""

    def __init__(self, faiss, path: Path, crc_path: Path, trained: Path, codec: str):
        self.faiss = faiss
        self.path = path
        self.fast = codec_kind(codec)[0] == "fs"
        with c_output_muted():
            self.index = faiss.read_index(str(trained if self.fast else path),
                                          faiss.IO_FLAG_READ_ONLY if self.fast else
                                          faiss.IO_FLAG_ONDISK_SAME_DIR | faiss.IO_FLAG_READ_ONLY)
        self.ivf = faiss.extract_index_ivf(self.index)
        self.nlist = int(self.ivf.nlist)
        self.crc = np.load(crc_path)
        self.proj = np.load(str(trained).replace(".faiss", ".proj.npy"))
        self.checked = np.zeros(self.crc.size, bool)
        if self.fast:
            self.blocks = faiss.downcast_InvertedLists(self.ivf.invlists)
            self.file = FastScanFile(path, trained, self.nlist, int(self.blocks.n_per_block),
                                     int(self.blocks.block_size))
            self.ivf.ntotal = self.index.ntotal = int(self.file.table[:, 0].sum())
        else:
            self.bytes = ListBytes(faiss, self.ivf.invlists)

    def check(self, lists: np.ndarray, load: bool = True) -> None:
        """CRC-32 of every list about to be scanned (each once per process); fast-scan lists are
        read in then (``load``)."""
        for l in sorted_unique(lists):
            l = int(l)
            if l < 0 or self.checked[l]:
                continue
            if self.fast:
                codes, ids = self.file.list_bytes(l)
                crc = zlib.crc32(ids, zlib.crc32(codes)) if ids.size else 0
            else:
                crc = self.bytes.crc(l)
            if crc != int(self.crc[l]):
                data = self.path.with_suffix(".ivfdata") if self.path.with_suffix(".ivfdata").exists() else self.path
                raise ArchiveDamaged(f"{data}: list {l} does not match its CRC-32 (damaged): rebuild the index")
            if self.fast and load:
                n = ids.size // 8
                self.blocks.resize(l, n)
                if n:
                    self.faiss.rev_swig_ptr(self.blocks.get_codes(l), codes.size)[:] = codes
                    self.faiss.rev_swig_ptr(self.blocks.get_ids(l), n)[:] = ids.view(np.int64)
            self.checked[l] = self.checked[l] or load or not self.fast

    def search(self, Q: np.ndarray, k: int, nprobe: int) -> Tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest entries (inner products, row ids; -1 where fewer) of every vector
        of ``Q`` in its ``nprobe`` nearest lists, those lists checked (and read) first."""
        nprobe = min(nprobe, self.nlist)
        self.ivf.nprobe = nprobe
        _, assign = self.ivf.quantizer.search(Q, nprobe)
        self.check(assign)
        return self.ivf.search_preassigned(Q, k, assign, np.zeros(assign.shape, np.float32))


class c_output_muted:
    """Silence what FAISS's C++ code prints on stdout/stderr (file names it resizes or updates)."""

    def __enter__(self):
        import os
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        self.saved = [os.dup(1), os.dup(2)]
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)
        return self

    def __exit__(self, *exc):
        import os

        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        for fd in self.saved:
            os.close(fd)
        return False
