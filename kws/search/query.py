"""Searching an archive: its segments open for queries, candidate ends from the inverted lists,
the detector's scores from the rows, and the hits.

**Score and hits.** A term is scored as the detector scores a keyword: every template's mean
cosine along the diagonal (kws.spot.templates.template_scores), the best template at each end of
a recording (-1 where none fits yet), and a hit is an event of that score series by the one event
rule (kws.spot.events.peak_positions: a maximum reached by a rise, the highest within 1 s on both
sides, at or above 0).

**Exact scan** (``exact=True``, the reference): the score at every end of every recording.
**Lists** (kws.search.lists): where an entry is a window of rows (``context`` > 1, the default),
each template's windows find their nearest entries in their ``nprobe`` nearest lists, the places
where the template, aligned there, scores best by about the detector's score; where an entry is
one row, each template vector that hears the term finds its nearest rows, and an entry found
votes for the end it aligns its template to with its inner product. The ``rescore`` ends of the
best approximate score and the ``spread`` ends on either side of the best of them are then
scored exactly from the memory-mapped rows, and the events of these stretches of the series are
the hits. Nothing damaged answers: the CRC-32 of every
inverted list a query scans and the hash of every row it scores are checked first.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from kws.errors import ArchiveDamaged, SearchIndexError, UsageError
from kws.search.rows import HOP_S, PAD_S, SPAN_S, Template, row_hash
from kws.search.lists import Lists, context_vectors, sorted_unique, window_queries
from kws.search.shards import read_rows
from kws.spot.events import PEAK_FLOOR, REFRACTORY, peak_positions
from kws.spot.templates import TemplateBank, template_scores


@dataclass
class Hit:
    """Where a term was found: a file, the seconds it spans there (its best template's term,
    where that template aligned), and the score."""
    file: str
    start: float
    end: float
    score: float

    def to_dict(self) -> dict:
        return {"file": self.file, "start": round(self.start, 3), "end": round(self.end, 3),
                "score": round(self.score, 4)}


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


def _unique_inverse(a: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and where each element of ``a`` is among them."""
    a = np.asarray(a).ravel()
    order = np.argsort(a, kind="stable")
    s = a[order]
    first = np.r_[True, s[1:] != s[:-1]] if s.size else np.zeros(0, bool)
    inv = np.empty(a.size, np.int64)
    inv[order] = np.cumsum(first) - 1
    return s[first], inv


class Segment:
    """One segment, open for queries."""

    def __init__(self, root: Path, entry: dict, faiss, files: Dict[str, dict], trained: Optional[str],
                 dim: int, codec: str = "sq8"):
        self.root = root / entry["name"]
        self.entry = entry
        self.dim = dim
        self.shards = entry["shards"]
        self.firsts = np.array([s["first"] for s in self.shards], np.int64)   # segment row ids
        self.rows = [read_rows(self.root / (s["name"] + ".i8"), s["rows"], dim) for s in self.shards]
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
        self._key_index = {k: i for i, k in enumerate(keys)}
        self.file_first = np.array(ffirst, np.int64)
        self.file_n = np.array(fn, np.int64)
        self.file_seconds = np.array(fsec, np.float64)
        # a file indexed again lives in its newest segment; a removed one in none
        self.live = np.array([files.get(k, {}).get("segment") == entry["name"] for k in keys], bool)
        self.n = int(entry["rows"])
        self.lists = None
        if entry.get("ivf"):
            ivf = self.root / entry["ivf"]
            self.lists = Lists(faiss, ivf.with_suffix(".faiss"), ivf.with_suffix(".crc.npy"), root / trained, codec)

    def live_index(self, key: str) -> Optional[int]:
        """Where a recording is in this segment's files, if it answers from here (None: not here,
        or indexed again in a newer segment, or removed)."""
        i = self._key_index.get(key)
        return i if i is not None and self.live[i] else None

    def file_of(self, ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.file_first, ids, side="right") - 1

    def gather(self, ids: np.ndarray, dtype=np.int8) -> np.ndarray:
        """Rows of segment row ids (any order), their hashes checked: int8, or their values as
        ``dtype`` (float32 for scoring: one copy, hashed as it is)."""
        out = np.empty((ids.size, self.dim), dtype)
        sh = np.searchsorted(self.firsts, ids, side="right") - 1
        for s in sorted_unique(sh):
            m = sh == s
            local = ids[m] - self.firsts[s]
            rows = np.asarray(self.rows[s][local]).astype(dtype, copy=False)
            if not np.array_equal(row_hash(rows), np.asarray(self.hashes[s][local])):
                raise ArchiveDamaged(f"{self.root / self.shards[s]['name']}.i8: rows do not match "
                                     "their hashes (damaged): rebuild the index")
            out[m] = rows
        return out

def stretch_scores(bank: TemplateBank, rows: np.ndarray, starts: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Every keyword's score (best template, -1 where none fits) and that template, at every row
    of ``rows``, a concatenation of stretches of recordings that begin at ``starts`` (sorted row
    offsets, the first 0): a template fits at a row only where its rows lie in one stretch.
    Returns (n, K) scores and (n, K) template indices."""
    x = np.asarray(rows).astype(np.float32, copy=False)            # int8 rows: scaled to unit here
    S = template_scores(bank, x)                                    # (n, T)
    pos = np.arange(x.shape[0])
    into = pos - np.asarray(starts)[np.searchsorted(starts, pos, side="right") - 1]
    S[into[:, None] < (bank.length[None, :] - 1)] = -1.0
    K = bank.keywords
    best = np.full((x.shape[0], K), -1.0, np.float32)
    which = np.zeros((x.shape[0], K), np.int64)
    for k in range(K):
        cols = np.nonzero(bank.owner == k)[0]
        a = S[:, cols].argmax(axis=1)
        best[:, k] = S[pos, cols[a]]
        which[:, k] = cols[a]
    return best, which


def stretch_peaks(series: np.ndarray, starts: np.ndarray, refractory: int = REFRACTORY,
                  floor: float = PEAK_FLOOR) -> np.ndarray:
    """The events (kws.spot.events.peak_positions) of each stretch of ``series`` (stretches
    begin at the sorted offsets ``starts``, the first 0), each stretch on its own: positions in
    ``series``."""
    n = series.size
    if n == 0:
        return np.zeros(0, np.int64)
    r = int(refractory)
    st = np.asarray(starts, np.int64)
    which = np.searchsorted(st, np.arange(n), side="right") - 1
    gapped = np.full(n + r * (st.size + 1), -np.inf)
    gapped[np.arange(n) + r * (which + 1)] = series
    p = peak_positions(gapped, r, floor)
    w = np.searchsorted(st + r * (np.arange(st.size) + 1), p, side="right") - 1
    return p - r * (w + 1)


def top_hits(keys: Sequence[str], owner: np.ndarray, scores: np.ndarray, times: np.ndarray,
             top: int, per_file: Optional[int] = None) -> list:
    """The ``top`` best events (:class:`Hit`), at most ``per_file`` of one file."""
    order = np.argsort(-scores, kind="stable")
    hits: list = []
    count: Dict[int, int] = {}
    for i in order:
        f = int(owner[i])
        if per_file is not None and count.get(f, 0) >= per_file:
            continue
        count[f] = count.get(f, 0) + 1
        hits.append(Hit(keys[f], float(times[i, 0]), float(times[i, 1]), float(scores[i])))
        if len(hits) >= top:
            break
    return hits


class ArchiveQueries:
    """The queries of :class:`kws.search.archive.ArchiveIndex` (its ``manifest``, ``config``,
    ``files``, ``root``, ``space_name`` and ``segments()``)."""

    def query(self, templates: Sequence[Template], top: int = 10, exact: bool = False,
              nprobe: Optional[int] = None, k: Optional[int] = None, per_file: Optional[int] = None,
              threshold: Optional[float] = None, query_step: Optional[int] = None,
              spread: Optional[int] = None, rescore: Optional[int] = None, places: bool = False) -> list:
        """The ``top`` best hits (:class:`Hit`) of one term given by its templates; ``exact``:
        score every position of the archive (the reference). ``nprobe``, ``k``, ``query_step``,
        ``rescore``, ``spread``: see ArchiveConfig (its values by default). ``places``: from the
        lists, the best places of the exactly rescored ends (the best end of each second), not
        events judged again around them: candidates for a caller that scores their
        surroundings itself (kws.search.fusion)."""
        return self.query_many([templates], top, exact, nprobe, k, per_file, threshold,
                               query_step=query_step, spread=spread, rescore=rescore, places=places)[0]

    def _check_templates(self, queries) -> None:
        if not queries or any(not q for q in queries):
            raise UsageError("a query needs at least one template")
        if self.manifest is None:
            raise SearchIndexError(f"{self.root} holds no index yet")
        for q in queries:
            for T in q:
                if T.space and T.space != self.space_name:
                    raise UsageError(f"a template of {T.space} cannot search {self.root}, whose rows are "
                                     f"{self.space_name}: make it with the index's space (ArchiveIndex.space)")
                if T.vectors.shape[1] != self.dim:
                    raise UsageError(f"templates of {T.vectors.shape[1]} values cannot search rows of {self.dim}")

    def query_many(self, queries: Sequence[Sequence[Template]], top: int = 10, exact: bool = False,
                   nprobe: Optional[int] = None, k: Optional[int] = None,
                   per_file: Optional[int] = None, threshold: Optional[float] = None,
                   chunk: int = 1 << 20, query_step: Optional[int] = None,
                   spread: Optional[int] = None, rescore: Optional[int] = None,
                   places: bool = False) -> List[list]:
        """:meth:`query` for several terms at once (the exact scan reads the rows once for all)."""
        self._check_templates(queries)
        flat = [T for q in queries for T in q]
        bank = TemplateBank.build([[T.vectors for T in q] for q in queries])
        starts = np.array([T.start_s for T in flat])
        stops = np.array([T.end_s for T in flat])
        floor = PEAK_FLOOR if threshold is None else max(PEAK_FLOOR, float(threshold))
        parts = [[] for _ in queries]          # per query: (keys, owner, scores, times)
        keep = max(64, 8 * top)
        for seg in self.segments():
            if exact or seg.lists is None:
                found = self._exact_segment(seg, bank, keep, chunk, floor)
            else:
                found, base = [], 0
                for qi, q in enumerate(queries):      # each term's templates propose its ends
                    sub = bank if len(queries) == 1 else TemplateBank.build([[T.vectors for T in q]])
                    c, one = self.config, len(q) == 1          # one template: ArchiveConfig.single_*
                    e_, s_, t_, _ = self._approx_segment(seg, list(q), sub,
                                                      nprobe or (c.single_nprobe if one else c.nprobe),
                                                      k or (c.single_k if one else c.k), query_step or c.query_step,
                                                      c.spread if spread is None else spread, floor,
                                                      rescore or (c.single_rescore if one else c.rescore), keep,
                                                      places)
                    found.append((e_, s_, t_ + base, np.full(e_.size, qi)))
                    base += len(q)
                found = tuple(np.concatenate([g[i] for g in found]) for i in range(4))
            ends, sc, ti, qi = found
            if ends.size == 0:
                continue
            f = seg.file_of(ends)
            t0 = (ends - seg.file_first[f] - (bank.length[ti] - 1)) * HOP_S - PAD_S
            st = np.clip(t0 + starts[ti], 0, seg.file_seconds[f])
            en = np.clip(t0 + stops[ti], 0, seg.file_seconds[f])
            for q in sorted_unique(qi):
                m = qi == q
                uf, inv = np.unique(f[m], return_inverse=True)
                parts[q].append(([seg.keys[i] for i in uf], inv.ravel(), sc[m], np.stack([st[m], en[m]], 1)))
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

    def _exact_segment(self, seg: Segment, bank: TemplateBank, keep: int, chunk: int, floor: float):
        """The score at every end of every live recording of the segment, in chunks of whole
        recordings (their rows' hashes checked); per chunk and term, the ``keep`` best events.
        Returns (ends, scores, templates, terms)."""
        chunk = max(4096, min(chunk, (64 << 20) // (4 * max(1, bank.rows.shape[0]))))
        out = []
        for s, sh in enumerate(seg.shards):
            x = seg.rows[s]
            fs = np.nonzero((seg.file_first >= sh["first"]) & (seg.file_first < sh["first"] + sh["rows"]))[0]
            i = 0
            while i < fs.size:
                j = i + 1                              # whole recordings, about ``chunk`` rows
                while j < fs.size and seg.file_first[fs[j]] + seg.file_n[fs[j]] - seg.file_first[fs[i]] <= chunk:
                    j += 1
                group = fs[i:j][seg.live[fs[i:j]]]
                i = j
                if group.size == 0:
                    continue
                a = int(seg.file_first[group[0]] - sh["first"])
                b = int(seg.file_first[group[-1]] + seg.file_n[group[-1]] - sh["first"])
                block = np.asarray(x[a:b]).astype(np.float32)      # scored as float32, hashed as it is
                if not np.array_equal(row_hash(block), np.asarray(seg.hashes[s][a:b])):
                    raise ArchiveDamaged(f"{seg.root / sh['name']}.i8: rows do not match their hashes "
                                         "(damaged): rebuild the index")
                # the live recordings of the group, one after the other (dead ones left out)
                local = [np.arange(seg.file_first[g] - sh["first"] - a, seg.file_first[g] - sh["first"] - a
                                   + seg.file_n[g]) for g in group]
                idx = np.concatenate(local)
                fstarts = np.cumsum([0] + [len(v) for v in local[:-1]])
                out.append(self._events(seg, bank, block[idx], fstarts, idx + a + sh["first"], keep, floor,
                                        None))
        return _join(out)

    def _events(self, seg: Segment, bank: TemplateBank, rows: np.ndarray, starts: np.ndarray,
                ids: np.ndarray, keep: int, floor: float, score_at: Optional[np.ndarray]):
        """Events of every term over stretches of rows (segment row ids ``ids``, stretches
        beginning at ``starts``), the ``keep`` best of each term; only at ``score_at`` (a mask of
        the rows whose ends were scored) when given."""
        best, which = stretch_scores(bank, rows, starts)
        out = []
        for k in range(bank.keywords):
            series = best[:, k].astype(np.float64)
            if score_at is not None:
                series[~score_at] = -np.inf
            p = stretch_peaks(series, starts, REFRACTORY, floor)
            if p.size > keep:
                p = p[np.argpartition(-series[p], keep)[:keep]]
            out.append((ids[p], best[p, k], which[p, k], np.full(p.size, k)))
        return _join(out)

    def _approx_segment(self, seg: Segment, templates: Sequence[Template], bank: TemplateBank, nprobe: int,
                        k: int, step: int, spread: int, floor: float, rescore: int, judge: int,
                        places: bool = False):
        """Candidate ends from the lists (each template's lookups keep their ``k / templates``
        nearest entries in their ``nprobe`` nearest lists): :meth:`_window_proposals` where an
        entry is a window of rows, :meth:`_vote_proposals` where it is one row. The ``rescore``
        ends of the best approximate score are scored exactly from the rows, and around the
        ``judge`` best of them (and ``spread`` ends either side) the events are the hits; with
        ``places``, the ``judge`` best of them a second apart (:meth:`_places`).
        Returns (ends, scores, templates, 0s)."""
        kk = max(64, k // len(templates))
        if self.config.context > 1:
            t, e, part, base, denom = self._window_proposals(seg, templates, nprobe, kk)
        else:
            t, e, part, base, denom = self._vote_proposals(seg, templates, nprobe, kk, step)
        # a template's approximate score at an end: its parts found there, the bound of those not
        # found (``base``), over the rows they cover; an end's: its best template's
        width = seg.n + int(bank.length.max())
        key = t * width + e
        if key.size == 0:
            return _join([])
        u, inv = _unique_inverse(key)
        t, e = u // width, u % width
        approx = (np.bincount(inv, weights=part) + base[t]) / denom[t]
        order = np.lexsort((-approx, e))                     # by end, the best template's first
        e, approx = e[order], approx[order]
        first = np.r_[True, e[1:] != e[:-1]] & (e < seg.n)
        e, approx = e[first], approx[first]
        if e.size > rescore:
            e = e[np.argpartition(-approx, rescore)[:rescore]]
        if places:
            return self._places(seg, bank, e, floor, judge)
        return self._rescore(seg, bank, e, spread, floor, judge)

    def _places(self, seg: Segment, bank: TemplateBank, e: np.ndarray, floor: float, judge: int):
        """The term's exact score at the candidate ends ``e``, and the ``judge`` best of those that
        are the best of their recording's candidates within the refractory second (the event
        rule's spacing, without judging the ends around them). Returns (ends, scores,
        templates, 0s)."""
        e = self._live_ends(seg, np.sort(e))
        sc, which = self._score_ends(seg, bank, e)
        ok = sc >= floor
        e, sc, which = e[ok], sc[ok], which[ok]
        f = seg.file_of(e)
        # an end is a place where no end of its recording within the refractory second scores
        # higher (of equal ones, the first): e is sorted, so its neighbours lie at most REFRACTORY
        # places before and after it
        keep = np.ones(e.size, bool)
        for d in range(1, REFRACTORY + 1):
            near = (f[d:] == f[:-d]) & (e[d:] - e[:-d] <= REFRACTORY)
            keep[d:] &= ~(near & (sc[d:] <= sc[:-d]))
            keep[:-d] &= ~(near & (sc[:-d] < sc[d:]))
        k = np.flatnonzero(keep)
        if k.size > judge:
            k = k[np.argpartition(-sc[k], judge)[:judge]]
        return e[k], sc[k], which[k], np.zeros(k.size, np.int64)

    def _window_proposals(self, seg: Segment, templates: Sequence[Template], nprobe: int, kk: int):
        """Every template's windows (kws.search.lists.window_queries) find their ``kk`` nearest
        entries: the rows where the template, aligned there, scores best. A window's entry found
        at row p proposes the end p + L - 1 - j (j: the window's start in the template of L rows)
        with its inner product; one not found there is bounded by the window's ``kk``-th best.
        Returns (templates, ends, parts, bound of each template, rows each covers)."""
        Q, owner, start, width = window_queries(templates, self.config.context, seg.lists.proj)
        D, ids = seg.lists.search(Q, kk, nprobe)
        ok = ids >= 0
        n_ok = ok.sum(1)
        kth = np.where(n_ok > 0, D[np.arange(D.shape[0]), np.maximum(n_ok - 1, 0)], 0.0).astype(np.float64)
        lengths = np.array([T.vectors.shape[0] for T in templates], np.int64)
        offs = lengths[owner] - 1 - start
        rows = np.broadcast_to(np.arange(Q.shape[0])[:, None], ids.shape)[ok]
        T = len(templates)
        return (owner[rows], ids[ok] + offs[rows], D[ok] - kth[rows], np.bincount(owner, kth, T),
                np.bincount(owner, width, T))

    def _vote_proposals(self, seg: Segment, templates: Sequence[Template], nprobe: int, kk: int, step: int):
        """Entries of single rows (``context`` 1): the template's vectors that hear the term
        (every ``step``-th) look up rows; an entry found at row p for the template's vector j
        votes for the end p + L - 1 - j with its inner product (entries not found add nothing):
        summed over the template's vectors and divided by L, about its score there. Returns
        (templates, ends, votes, 0 for each template, template lengths)."""
        qv, offs, owner = [], [], []
        for t, T in enumerate(templates):
            L = T.vectors.shape[0]
            js = np.arange(L)
            # those at the edges of a padded template hear mostly its silence, whose nearest rows
            # are the archive's pauses
            mid = js[(js * HOP_S + SPAN_S / 2 >= T.start_s) & (js * HOP_S + SPAN_S / 2 <= T.end_s)]
            js = (mid if mid.size else js)[::step]
            qv.append(context_vectors(T.vectors, js, 1, seg.lists.proj))
            offs.append(L - 1 - js)
            owner.append(np.full(js.size, t))
        Q = np.ascontiguousarray(np.concatenate(qv), np.float32)
        offs, owner = np.concatenate(offs), np.concatenate(owner)
        D, ids = seg.lists.search(Q, kk, nprobe)
        ok = ids >= 0
        rows = np.broadcast_to(np.arange(Q.shape[0])[:, None], ids.shape)[ok]
        lengths = np.array([T.vectors.shape[0] for T in templates], np.float64)
        return owner[rows], ids[ok] + offs[rows], D[ok], np.zeros(len(templates)), lengths

    def _rescore(self, seg: Segment, bank: TemplateBank, e: np.ndarray, spread: int, floor: float, judge: int):
        """The term's exact score at the candidate ends ``e``; the events around the ``judge`` best
        (with ``spread`` ends either side). Returns (ends, scores, templates, 0s)."""
        e = self._live_ends(seg, np.sort(e))
        # the term's score at each of them, exactly; events are judged around the ``judge`` best
        sc, _ = self._score_ends(seg, bank, e)
        if e.size > judge:
            e = np.sort(e[np.argpartition(-sc, judge)[:judge]])
        # the neighbourhood an event is judged in (it also covers the rows between listed ones)
        w = max(spread, self.config.stride - 1)
        ends = self._live_ends(seg, sorted_unique((e[:, None] + np.arange(-w, w + 1)[None]).ravel()))
        if ends.size == 0:
            return _join([])
        sc, which = self._score_ends(seg, bank, ends)
        f = seg.file_of(ends)
        starts = np.nonzero(np.r_[True, (np.diff(ends) != 1) | (np.diff(f) != 0)])[0]
        p = stretch_peaks(sc.astype(np.float64), starts, REFRACTORY, floor)
        e_, s_, t_, f_ = ends[p], sc[p], which[p], f[p]
        # stretches of one recording closer than the refractory time: the better event
        keep = np.ones(p.size, bool)
        order = np.lexsort((e_, f_))
        e_, s_, t_, f_ = e_[order], s_[order], t_[order], f_[order]
        for d in range(1, 9):
            near = (f_[d:] == f_[:-d]) & (e_[d:] - e_[:-d] <= REFRACTORY)
            later_worse = near & (s_[d:] <= s_[:-d])
            keep[d:] &= ~later_worse
            keep[:-d] &= ~(near & ~later_worse)
        return e_[keep], s_[keep], t_[keep], np.zeros(int(keep.sum()), np.int64)

    @staticmethod
    def _live_ends(seg: Segment, ends: np.ndarray) -> np.ndarray:
        ends = ends[(ends >= 0) & (ends < seg.n)]
        f = seg.file_of(ends)
        return ends[(f >= 0) & seg.live[np.maximum(f, 0)]]

    @staticmethod
    def _score_ends(seg: Segment, bank: TemplateBank, ends: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """The term's score (its best template's, -1 where none fits in the recording yet) and that
        template at each of the sorted segment row ids ``ends``: the score of
        kws.spot.templates.template_scores, from the rows (unit length) each end needs, read once
        each and their hashes checked."""
        best = np.full(ends.size, -1.0, np.float32)
        which = np.zeros(ends.size, np.int64)
        if ends.size == 0:
            return best, which
        Lmax = int(bank.length.max())
        need = sorted_unique((ends[:, None] - np.arange(Lmax)[None]).ravel())
        need = need[need >= 0]
        rows = seg.gather(need, np.float32)
        norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
        G = (bank.rows @ rows.T) / np.maximum(norms, 1e-12)   # every template row against every unit row
        # need holds every row of [e - Lmax + 1, e] (>= 0) of every end e, in order: the row e - d
        # sits d places before e
        at = np.searchsorted(need, ends)
        first = seg.file_first[seg.file_of(ends)]
        for t in range(bank.length.size):
            a, L = int(bank.start[t]), int(bank.length[t])
            ok = ends - L + 1 >= first
            p0 = at[ok] - (L - 1)
            sc = G[a][p0].copy()
            for j in range(1, L):
                sc += G[a + j][p0 + j]
            sc /= L
            idx = np.nonzero(ok)[0]
            better = sc > best[idx]
            best[idx[better]] = sc[better]
            which[idx[better]] = t
        return best, which

    def file_scores(self, file: str, templates: Sequence[Template], first: int = 0,
                    stop: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """The term's score (best template; -1 where none fits) at every end of one recording,
        with the (N, 2) start and end seconds of the term ending there (what `kws search query
        --plot` draws); with ``first``/``stop``, at its ends ``first .. stop - 1`` only (the rows
        before ``first`` that the longest template needs are read too)."""
        key = file if file in self.files else str(Path(file).resolve())
        return self.span_scores(templates, [(key, first, stop)])[0]

    def span_scores(self, templates: Sequence[Template], spans: Sequence[Tuple[str, int, Optional[int]]]
                    ) -> List[Tuple[np.ndarray, np.ndarray]]:
        """:meth:`file_scores` of many stretches of recordings (recording, first end, stop): each
        segment's rows for all of them gathered (their hashes checked) and scored at once."""
        self._check_templates([templates])
        bank = TemplateBank.build([[T.vectors for T in templates]])
        st = np.array([T.start_s for T in templates])
        en = np.array([T.end_s for T in templates])
        lmax = int(bank.length.max())
        empty = (np.zeros(0, np.float32), np.zeros((0, 2), np.float32))
        out: List[Tuple[np.ndarray, np.ndarray]] = [empty] * len(spans)
        segs = self.segments()
        per_seg: Dict[int, list] = {}
        for w, (key, a, b) in enumerate(spans):
            si, i = self._where(key)
            per_seg.setdefault(si, []).append((w, i, int(a), b))
        for si, items in per_seg.items():
            seg = segs[si]
            ids, starts, meta, pos = [], [], [], 0
            for w, i, a, b in items:
                n = int(seg.file_n[i])
                stop = n if b is None else min(n, int(b))
                if stop <= a:
                    continue
                lo = max(0, a - lmax + 1)                    # the rows the longest template needs before
                ids.append(seg.file_first[i] + np.arange(lo, stop))
                starts.append(pos)
                meta.append((w, lo, a, stop, pos))
                pos += stop - lo
            if not ids:
                continue
            best, which = stretch_scores(bank, seg.gather(np.concatenate(ids), np.float32),
                                         np.array(starts, np.int64))
            # every stretch's ends at once: their places in the gathered rows, and the ends
            w_, lo, a, stop, p = (np.array(v, np.int64) for v in zip(*meta))
            n = stop - a
            cut = np.cumsum(n)[:-1]                     # where each stretch's ends begin among all
            end = np.repeat(a, n) + np.arange(int(n.sum())) - np.repeat(np.r_[0, cut], n)
            into = np.repeat(p - lo, n) + end           # the end's row among the gathered ones
            t = which[into, 0]
            t0 = (end - (bank.length[t] - 1)) * HOP_S - PAD_S
            times = np.stack([t0 + st[t], t0 + en[t]], 1).astype(np.float32)
            sc = best[into, 0]
            for w, b, tt in zip(w_, np.split(sc, cut), np.split(times, cut)):
                out[int(w)] = (b, tt)
        return out

    def file_rows(self, key: str) -> np.ndarray:
        """int8 rows of one indexed recording."""
        si, i = self._where(key)
        seg = self.segments()[si]
        return seg.gather(np.arange(seg.file_first[i], seg.file_first[i] + seg.file_n[i]))

    def _where(self, key: str) -> Tuple[int, int]:
        """(segment, file index there) of a recording that answers: the segment it lives in."""
        for si, seg in enumerate(self.segments()):
            i = seg.live_index(key)
            if i is not None:
                return si, i
        raise SearchIndexError(f"{key} is not in the index {self.root}")


def _join(parts):
    if not parts:
        z = np.zeros(0, np.int64)
        return z, np.zeros(0, np.float32), z, z
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(4))
