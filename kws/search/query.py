"""Searching an archive: its segments open for queries, candidate ends from the inverted lists,
exact scores from the rows, and the best hits.

Each template's entries (every ``query_step``-th start) look up their ``k`` nearest entries in
the ``nprobe`` nearest lists; an entry found at position p for the template's start j proposes
the template end p + L - 1 - j and its neighbours within the stride. Every proposed end is then
scored exactly with s(e) (kws.search.terms) from the memory-mapped rows, and overlapping hits of
a file are merged. The exact scan (``exact=True``) computes s(e) at every position of the
archive, the reference. Nothing damaged answers: the CRC-32 of every inverted list a query scans
and the hash of every row it scores are checked first.
"""
from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from kws.errors import ArchiveDamaged, SearchIndexError, UsageError
from kws.search.rows import DIM, HOP_S, PAD_S, ROW_SCALE, diagonal_scores, row_hash
from kws.search.shards import c_output_muted, context_vectors, read_rows
from kws.search.terms import Template


@dataclass
class Hit:
    """Where a term was found: a file, the seconds it spans there, the score, and how many
    candidates overlapping it were merged into it."""
    file: str
    start: float
    end: float
    score: float
    windows: int = 1

    def to_dict(self) -> dict:
        return {"file": self.file, "start": round(self.start, 3), "end": round(self.end, 3),
                "score": round(self.score, 4), "windows": self.windows}


def clip_hits(hits: Sequence[Hit], out_dir: Union[str, os.PathLike], context: float = 0.5) -> List[Path]:
    """Cut every hit's audio with ``context`` seconds either side (within the file) into
    ``out_dir/NN_<file>_<start>-<end>.wav`` (NN: rank). Returns the paths, in rank order."""
    from kws.audio.io import load_audio, write_wav

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for rank, h in enumerate(hits, 1):
        audio = load_audio(h.file)
        s = max(0, int((h.start - context) * 16000))
        e = min(audio.size, int(np.ceil((h.end + context) * 16000)))
        p = out / f"{rank:02d}_{Path(h.file).stem}_{h.start:.2f}-{h.end:.2f}.wav"
        write_wav(p, audio[s:e])
        paths.append(p)
    return paths


def _unique(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique hashes integers in numpy 2.3+, 30x slower here)."""
    a = np.sort(np.asarray(a).ravel())
    return a[np.r_[True, a[1:] != a[:-1]]] if a.size else a


def _unique_inverse(a: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a).ravel()
    order = np.argsort(a, kind="stable")
    s = a[order]
    first = np.r_[True, s[1:] != s[:-1]] if s.size else np.zeros(0, bool)
    inv = np.empty(a.size, np.int64)
    inv[order] = np.cumsum(first) - 1
    return s[first], inv


class Segment:
    """One segment, open for queries."""

    def __init__(self, root: Path, entry: dict, faiss, files: Dict[str, dict], trained: Optional[str]):
        self.root = root / entry["name"]
        self.entry = entry
        self.shards = entry["shards"]
        self.firsts = np.array([s["first"] for s in self.shards], np.int64)   # segment row ids
        self.rows = [read_rows(self.root / (s["name"] + ".i8"), s["rows"]) for s in self.shards]
        self.hashes = [np.memmap(self.root / (s["name"] + ".hash"), np.uint32, "r", shape=(s["rows"],))
                       if s["rows"] else np.zeros(0, np.uint32) for s in self.shards]
        keys, ffirst, fn, fsec = [], [], [], []
        for s, sh in enumerate(self.shards):
            meta = json.loads((self.root / (sh["name"] + ".json")).read_text())
            for key, first, n, sec, _, _ in meta["files"]:
                keys.append(key)
                ffirst.append(sh["first"] + first)
                fn.append(n)
                fsec.append(sec)
        self.keys = keys
        self.file_first = np.array(ffirst, np.int64)
        self.file_n = np.array(fn, np.int64)
        self.file_seconds = np.array(fsec, np.float64)
        # a file indexed again lives in its newest segment; a removed one in none
        self.live = np.array([files.get(k, {}).get("segment") == entry["name"] for k in keys], bool)
        self.n = int(entry["rows"])
        self.index = None
        if entry.get("ivf"):
            ivf = entry["ivf"]
            with c_output_muted():
                self.index = faiss.read_index(str(self.root / f"{ivf}.faiss"),
                                              faiss.IO_FLAG_ONDISK_SAME_DIR | faiss.IO_FLAG_READ_ONLY)
            self.ivf = faiss.extract_index_ivf(self.index)
            self.crc = np.load(self.root / f"{ivf}.crc.npy")
            self.proj = np.load(root / trained.replace(".faiss", ".proj.npy"))
            self.checked = np.zeros(self.crc.size, bool)

    def gather(self, ids: np.ndarray) -> np.ndarray:
        """int8 rows of segment row ids (any order), their hashes checked."""
        out = np.empty((ids.size, DIM), np.int8)
        sh = np.searchsorted(self.firsts, ids, side="right") - 1
        for s in _unique(sh):
            m = sh == s
            local = ids[m] - self.firsts[s]
            rows = np.asarray(self.rows[s][local])
            if not np.array_equal(row_hash(rows), np.asarray(self.hashes[s][local])):
                raise ArchiveDamaged(f"{self.root / self.shards[s]['name']}.i8: rows do not match "
                                     "their hashes (damaged): rebuild the index")
            out[m] = rows
        return out

    def check_lists(self, lists: np.ndarray) -> None:
        """CRC-32 of every inverted list about to be scanned (each once per process)."""
        import faiss

        il = self.ivf.invlists
        for l in _unique(lists):
            if l < 0 or self.checked[l]:
                continue
            n = il.list_size(int(l))
            crc = 0
            if n:
                codes = faiss.rev_swig_ptr(il.get_codes(int(l)), n * il.code_size)
                ids = faiss.rev_swig_ptr(il.get_ids(int(l)), n)
                crc = zlib.crc32(ids, zlib.crc32(codes))
            if crc != int(self.crc[l]):
                raise ArchiveDamaged(f"{self.root}/{self.entry['ivf']}.ivfdata: list {int(l)} does not match its "
                                     "CRC-32 (damaged): rebuild the index")
            self.checked[l] = True


def top_hits(keys: Sequence[str], owner: np.ndarray, scores: np.ndarray, times: np.ndarray,
             top: int, per_file: Optional[int] = None) -> list:
    """The ``top`` best candidates (:class:`Hit`), greedily: a candidate overlapping a better one
    of the same file is absorbed into it."""
    order = np.argsort(-scores, kind="stable")
    hits: list = []
    taken: Dict[int, list] = {}
    for i in order:
        f = int(owner[i])
        s, e = float(times[i, 0]), float(times[i, 1])
        mine = taken.setdefault(f, [])
        for h in mine:
            if h.start < e and h.end > s:
                h.windows += 1
                break
        else:
            if per_file is not None and len(mine) >= per_file:
                continue
            h = Hit(keys[f], s, e, float(scores[i]), 1)
            mine.append(h)
            hits.append(h)
            if len(hits) >= top:
                break
    return hits


class ArchiveQueries:
    """The queries of :class:`kws.search.archive.ArchiveIndex` (its ``manifest``, ``config``,
    ``files``, ``root`` and ``segments()``)."""

    def query(self, templates: Sequence[Template], top: int = 10, exact: bool = False,
              nprobe: Optional[int] = None, k: Optional[int] = None, per_file: Optional[int] = None,
              threshold: Optional[float] = None, query_step: Optional[int] = None) -> list:
        """The ``top`` best hits (:class:`Hit`) of one term given by its templates (a hit scores
        its best template); ``exact``: score every position of the archive (the reference).
        ``nprobe``, ``k``, ``query_step``: see ArchiveConfig (its values by default)."""
        return self.query_many([templates], top, exact, nprobe, k, per_file, threshold,
                               query_step=query_step)[0]

    def query_many(self, queries: Sequence[Sequence[Template]], top: int = 10, exact: bool = False,
                   nprobe: Optional[int] = None, k: Optional[int] = None,
                   per_file: Optional[int] = None, threshold: Optional[float] = None,
                   chunk: int = 1 << 20, query_step: Optional[int] = None) -> List[list]:
        """:meth:`query` for several terms at once (the exact scan reads the rows once for all)."""
        if not queries or any(not q for q in queries):
            raise UsageError("a query needs at least one template")
        if self.manifest is None:
            raise SearchIndexError(f"{self.root} holds no index yet")
        flat = [T for q in queries for T in q]
        qof = np.repeat(np.arange(len(queries)), [len(q) for q in queries])
        Ls = np.array([T.vectors.shape[0] for T in flat])
        starts = np.array([T.start_s for T in flat])
        stops = np.array([T.end_s for T in flat])
        parts = [[] for _ in queries]          # per query: (keys, owner, scores, times)
        keep = max(64, 8 * top)
        for seg in self.segments():
            if exact or seg.index is None:
                ends, sc, ti = self._exact_segment(seg, flat, keep, chunk)
            else:
                got, base = [], 0
                for q in queries:                 # each term's templates propose and score its ends
                    e_, s_, t_ = self._approx_segment(seg, list(q), nprobe or self.config.nprobe,
                                                      k or self.config.k, query_step or self.config.query_step)
                    got.append((e_, s_, t_ + base))
                    base += len(q)
                ends, sc, ti = (np.concatenate([g[i] for g in got]) for i in range(3))
            if ends.size == 0:
                continue
            f = np.searchsorted(seg.file_first, ends, side="right") - 1
            ok = seg.live[f]
            if threshold is not None:
                ok &= sc >= threshold
            f, sc, ends, ti = f[ok], sc[ok], ends[ok], ti[ok]
            t0 = (ends - seg.file_first[f] - (Ls[ti] - 1)) * HOP_S - PAD_S
            st = np.clip(t0 + starts[ti], 0, seg.file_seconds[f])
            en = np.clip(t0 + stops[ti], 0, seg.file_seconds[f])
            for qi in _unique(qof[ti]):
                m = qof[ti] == qi
                uf, inv = _unique_inverse(f[m])
                parts[qi].append(([seg.keys[i] for i in uf], inv, sc[m], np.stack([st[m], en[m]], 1)))
        out = []
        for p in parts:
            if not p:
                out.append([])
                continue
            keys, owner, base = [], [], 0
            for kk, inv, _, _ in p:
                keys += kk
                owner.append(inv + base)
                base += len(kk)
            out.append(top_hits(keys, np.concatenate(owner), np.concatenate([x[2] for x in p]),
                                np.concatenate([x[3] for x in p]), top, per_file))
        return out

    @staticmethod
    def _valid_ends(seg: Segment, ends: np.ndarray, L: int) -> np.ndarray:
        """Ends whose L rows lie within one live recording."""
        f = np.searchsorted(seg.file_first, ends, side="right") - 1
        fc = np.maximum(f, 0)
        return (ends >= 0) & (ends < seg.n) & (f >= 0) & (ends - L + 1 >= seg.file_first[fc]) & seg.live[fc]

    def _approx_segment(self, seg: Segment, templates: Sequence[Template], nprobe: int, k: int,
                        step: int):
        """Candidate ends from the lists: each template's entries (every ``step``-th start) find
        their ``k / templates`` nearest entries in their ``nprobe`` nearest lists, each proposing
        a template end (and its neighbours within the stride); every proposed end is then scored
        exactly by every template."""
        c = self.config.context
        qv, owner, offs = [], [], []
        for t, T in enumerate(templates):
            L = T.vectors.shape[0]
            js = np.arange(max(1, L - c + 1))[::step]
            qv.append(context_vectors(T.vectors, js, c, seg.proj))
            owner.append(np.full(js.size, t))
            offs.append(L - 1 - js)
        Q = np.ascontiguousarray(np.concatenate(qv), np.float32)
        owner, offs = np.concatenate(owner), np.concatenate(offs)
        nprobe = min(nprobe, seg.ivf.nlist)
        seg.ivf.nprobe = nprobe
        _, assign = seg.ivf.quantizer.search(Q, nprobe)
        seg.check_lists(assign.ravel())
        k = max(64, k // len(templates))
        _, ids = seg.ivf.search_preassigned(Q, k, assign, np.zeros(assign.shape, np.float32))
        stride = self.config.stride
        shifts = np.arange(-(stride - 1), stride)
        e = (ids + offs[:, None])[ids >= 0]
        # rows between listed ones: the neighbouring ends are proposed too
        ends = _unique((e[:, None] + shifts[None]).ravel())
        ends = ends[self._valid_ends(seg, ends, min(T.vectors.shape[0] for T in templates))]
        return self._score_ends(seg, templates, ends)

    def _score_ends(self, seg: Segment, templates, ends: np.ndarray):
        """(ends, best template's s(e), that template) of every proposed end, every template
        scored from the rows (read once each, their hashes checked); -1 where none fits."""
        if ends.size == 0:
            return ends, np.zeros(0, np.float32), ends
        Ls = np.array([T.vectors.shape[0] for T in templates])
        Lmax = int(Ls.max())
        need = _unique((ends[:, None] - np.arange(Lmax)[None]).ravel())
        need = need[need >= 0]
        rows = seg.gather(need).astype(np.float32)
        Tall = np.concatenate([T.vectors for T in templates])
        G = (Tall / ROW_SCALE) @ rows.T                   # every template vector against every row read
        best = np.full(ends.size, -1.0, np.float32)
        which = np.zeros(ends.size, np.int64)
        col = 0
        # need holds every row of [e - Lmax + 1, e] (>= 0) of every end e, in order: the row
        # e - d sits d places before e
        at = np.searchsorted(need, ends)
        for t, L in enumerate(Ls):
            ok = self._valid_ends(seg, ends, int(L))
            p0 = at[ok] - (L - 1)
            sc = G[col][p0]
            for j in range(1, L):
                sc += G[col + j][p0 + j]
            sc /= L
            col += L
            better = sc > best[ok]
            idx = np.nonzero(ok)[0][better]
            best[idx] = sc[better]
            which[idx] = t
        return ends, best, which

    def _exact_segment(self, seg: Segment, templates: Sequence[Template], keep: int, chunk: int):
        """s(e) at every position of the segment, in chunks of rows (their hashes checked); per
        chunk and template, the ``keep`` best local peaks (ends scoring at least as well as the
        two ends either side)."""
        Ls = [T.vectors.shape[0] for T in templates]
        Tall = np.concatenate([T.vectors for T in templates]).T          # (D, sum L)
        chunk = max(4096, min(chunk, (64 << 20) // (4 * Tall.shape[1])))   # G below stays ~64 MB
        col = np.cumsum([0] + Ls)
        over = max(Ls) - 1
        ends_out, sc_out, t_out = [], [], []
        for s, sh in enumerate(seg.shards):
            x, n = seg.rows[s], sh["rows"]
            for a in range(0, n, chunk):
                b = min(n, a + chunk)
                a0 = max(0, a - over)
                block = np.asarray(x[a0:b])
                if not np.array_equal(row_hash(block[a - a0:]), np.asarray(seg.hashes[s][a:b])):
                    raise ArchiveDamaged(f"{seg.root / sh['name']}.i8: rows do not match their hashes "
                                         "(damaged): rebuild the index")
                G = (block.astype(np.float32) / ROW_SCALE) @ Tall
                gid = np.arange(a0, b) + sh["first"]                 # segment row ids
                for t, L in enumerate(Ls):
                    nn = b - a0 - L + 1
                    if nn <= 0:
                        continue
                    sc = G[0:nn, col[t]].copy()
                    for j in range(1, L):
                        sc += G[j:j + nn, col[t] + j]
                    sc /= L
                    e = gid[L - 1:]
                    pad = np.concatenate([[-np.inf] * 2, sc, [-np.inf] * 2])
                    peak = sc >= np.maximum.reduce([pad[i:i + nn] for i in (0, 1, 3, 4)])
                    idx = np.nonzero(peak & (e >= a + sh["first"]))[0]   # ends in this chunk only
                    idx = idx[self._valid_ends(seg, e[idx], L)]
                    if idx.size > keep:
                        idx = idx[np.argpartition(-sc[idx], keep)[:keep]]
                    ends_out.append(e[idx])
                    sc_out.append(sc[idx])
                    t_out.append(np.full(idx.size, t))
        if not ends_out:
            z = np.zeros(0, np.int64)
            return z, np.zeros(0, np.float32), z
        return np.concatenate(ends_out), np.concatenate(sc_out), np.concatenate(t_out)

    def file_scores(self, file: str, templates: Sequence[Template]) -> Tuple[np.ndarray, np.ndarray]:
        """s(e) (best template) at every end of one recording, with the (N, 2) start and end
        seconds of the term ending there (what `kws search query --plot` draws)."""
        key = file if file in self.files else str(Path(file).resolve())
        x = self.file_rows(key).astype(np.float32) / ROW_SCALE
        L = max(T.vectors.shape[0] for T in templates)
        n = max(0, x.shape[0] - L + 1)
        best = np.full(n, -1.0, np.float32)
        for T in templates:
            s = diagonal_scores(x, T.vectors)
            best = np.maximum(best, s[s.size - n:])         # ends L-1 .. n-1 of the longest
        ends = np.arange(L - 1, L - 1 + n)
        t0 = (ends - (L - 1)) * HOP_S - PAD_S
        T = max(templates, key=lambda t: t.vectors.shape[0])
        return best, np.stack([t0 + T.start_s, t0 + T.end_s], 1).astype(np.float32)

    def file_rows(self, key: str) -> np.ndarray:
        """int8 rows of one indexed recording."""
        for seg in self.segments():
            if key in seg.keys:
                i = seg.keys.index(key)
                if seg.live[i]:
                    ids = np.arange(seg.file_first[i], seg.file_first[i] + seg.file_n[i])
                    return seg.gather(ids)
        raise SearchIndexError(f"{key} is not in the index {self.root}")
