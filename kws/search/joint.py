"""Joint lists of an index of both spaces (kws.search.fusion): one list index whose entries hold a
raw window and the head's window at the same place, so that a query's candidates are ranked by
about the fused score itself, not by either space's score alone.

**Entries.** The raw space's row ``p`` of a recording starts an entry: its raw rows ``p .. p + 3``
and its head rows ``p .. p + 3`` (both spaces' rows follow the same 80 ms steps of the
recording; the last row repeated past the recording's end), all unit rows, concatenated (4 x 96 +
4 x 128 values with the shipped model), projected to ``listed_dim`` dimensions by an uncentred
PCA of the index's own entries and turned at random, coded in fast-scan codes (``codec``,
kws.search.lists) with the raw segment's row id as list id. The inner product of two entries is
about the sum of their rows' cosines, position by position, in both spaces.

**Query windows.** The fused score at a raw end ``e`` is (raw score there + the head score at the
end whose term ends where the raw one's does) / 2 (kws.search.fusion.fuse). A raw template of
``Lr`` rows aligned to end at ``e`` starts at row ``b = e - Lr + 1``; a head template of ``Lh``
rows whose term ends at the same second starts at ``b + d``, ``d = round((raw term end - head
term end) / HOP_S)`` (each template's term end, in its own seconds). So a pair of templates (one
raw, one head) is one joint template over the rows ``b + j``, ``j`` from ``min(0, d)`` to
``max(Lr, Lh + d)``: its raw row ``j`` and its head row ``j - d``. Cut into windows of 4 rows
(as few as cover it, spread evenly), every row weighted by 1 / (its template's length x the
windows that hold it), the windows' inner products with the entries at ``b + j`` add up to
exactly raw score(e) + head score(e + d + Lh - Lr) (:func:`joint_windows`; before projection and
coding). A term's i-th raw template with its i-th head template is such a joint template (a text
query of 4 voices in each space: 4; ``pairs="all"``: every pair, 16), and an end's approximate
fused score is its best pair's.

**Lists and files.** ``joint/`` in the index folder: ``manifest.json`` (written last and
atomically, naming both spaces, every joint segment and every file's size and sha256),
``trained-G.faiss`` and ``trained-G.proj.npy`` (quantizers and projection), per raw segment of at
least ``min_list_rows`` rows ``ivf-NNNN.faiss`` (its lists, memory-mapped and read list by list,
kws.search.lists.Lists) and ``ivf-NNNN.crc.npy`` (a CRC-32 of every list, checked before a query
scans it). Appending lists the new raw segment only (on the newest quantizer, a new one once
the index has grown ``retrain_growth`` times past it); nothing listed before is rewritten.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from kws.checksum import sha256_file
from kws.errors import ArchiveDamaged, SearchIndexError, UsageError
from kws.search.lists import Lists, codec_kind, sorted_unique, window_starts, write_lists
from kws.search.rows import HOP_S, ROW_SCALE, Template
from kws.search.shards import SMALL_FILE, check_files, save_npy, write_atomic

JOINT_KIND = "kws-archive-joint"
JOINT_VERSION = 1
BATCH = 1 << 16             # entries made and listed at once


@dataclass(frozen=True)
class JointConfig:
    """Build settings of the joint lists (stored in their manifest) and query defaults."""
    context: int = 4               # rows of each space an entry holds
    listed_dim: int = 384          # dimensions an entry is projected to (uncentred PCA)
    codec: str = "fs128"           # fast-scan codes (kws.search.lists): fsM, M codes of 4 bits (64 bytes)
    nlist: int = 0                 # lists; 0: about sqrt(entries), a power of two
    coarse_cells: int = 64
    coarse_probe: int = 8
    kmeans_iter: int = 10
    train_rows: int = 0            # entries sampling the training; 0: 30 a list, at least 20,000
    retrain_growth: float = 4.0
    min_list_rows: int = 20_000    # smaller raw segments get no joint lists: scanned exactly
    seed: int = 0
    # query defaults: lists scanned by each joint window, entries kept by all of a term's windows
    # together (k / joint templates each, at least 64), ends of the best approximate fused score
    # scored exactly; measured at 1,000 h (docs/search.md, *An index of both spaces at 1,000 h*)
    nprobe: int = 12
    k: int = 16384
    rescore: int = 1536
    # a term of one template in each space (a recorded example): one joint template, so each of its
    # windows keeps k entries; measured at 100 h (docs/search.md, *Query by example with joint lists (100 h)*)
    single_nprobe: int = 48
    single_k: int = 8192
    single_rescore: int = 1536
    pairs: str = "index"           # the joint templates of a term: ``index``, its i-th raw template with its
                                   # i-th head template (where both spaces have as many), or ``all`` pairs

    def __post_init__(self):
        try:
            kind, _ = codec_kind(self.codec)
        except ValueError:
            kind = None
        if kind != "fs":
            raise UsageError(f"joint lists are coded in fast-scan codes (fsM), not {self.codec!r}")
        if self.context < 1 or self.listed_dim < 8 or min(self.nprobe, self.k, self.rescore, self.single_nprobe,
                                                           self.single_k, self.single_rescore) < 1:
            raise UsageError("context, nprobe, k, rescore (and single_*) >= 1 and listed_dim >= 8 are required")

    def build_part(self) -> dict:
        d = asdict(self)
        for q in ("nprobe", "k", "rescore", "single_nprobe", "single_k", "single_rescore", "pairs"):
            d.pop(q)
        return d


# ---------------------------------------------------------------------------- numerics
def pair_shift(raw: Template, head: Template) -> int:
    """``d``: rows from the raw template's first row to the head template's first row when both
    templates' terms end at the same second (module docstring)."""
    return int(np.round((raw.end_s - head.end_s) / HOP_S))


def joint_windows(raw_t: Sequence[Template], head_t: Sequence[Template], context: int = 4, pairs: str = "all"):
    """The joint windows of every pair (raw template i, head template j) of a term (module
    docstring; ``pairs`` ``index``: only i == j, where both spaces have as many templates),
    unprojected: (windows (n, context * (raw dim + head dim)), their pair index (i * len(head_t)
    + j), the row ``j`` of the joint template where each starts (raw template rows: 0 .. Lr - 1),
    and each pair's Lr). An entry at the raw row ``b + j`` (its window's start) proposes the raw
    end ``b + Lr - 1``."""
    dr = raw_t[0].vectors.shape[1]
    dh = head_t[0].vectors.shape[1]
    out, owner, start, lr = [], [], [], []
    for i, R in enumerate(raw_t):
        r = np.asarray(R.vectors, np.float32)
        Lr = r.shape[0]
        for j, H in enumerate(head_t):
            lr.append(Lr)
            if pairs == "index" and len(raw_t) == len(head_t) and i != j:
                continue
            h = np.asarray(H.vectors, np.float32)
            Lh = h.shape[0]
            d = pair_shift(R, H)
            lo, hi = min(0, d), max(Lr, Lh + d)
            starts = lo + window_starts(hi - lo, context)
            # every template row's windows: its weight 1 / (its template's length x those windows)
            pos = starts[:, None] + np.arange(context)[None, :]              # joint rows of each window
            cov_r = np.bincount(pos.ravel() - lo, minlength=hi - lo)[np.arange(Lr) - lo]
            cov_h = np.bincount(pos.ravel() - lo, minlength=hi - lo)[np.arange(Lh) + d - lo]
            wr = r / (Lr * cov_r)[:, None]
            wh = h / (Lh * cov_h)[:, None]
            for s in starts:
                w = np.zeros((context, dr + dh), np.float32)
                for t in range(context):
                    a = s + t
                    if 0 <= a < Lr:
                        w[t, :dr] = wr[a]
                    if 0 <= a - d < Lh:
                        w[t, dr:] = wh[a - d]
                out.append(np.concatenate([w[:, :dr].ravel(), w[:, dr:].ravel()]))
                owner.append(i * len(head_t) + j)
                start.append(s)
    return (np.stack(out).astype(np.float32), np.array(owner, np.int64), np.array(start, np.int64),
            np.array(lr, np.int64))


def joint_entries(raw_rows: np.ndarray, head_rows: np.ndarray, at: np.ndarray, context: int = 4) -> np.ndarray:
    """Unprojected entries of one recording's rows (int8 x 127 or unit floats, the same count in
    both spaces) at its rows ``at``: raw rows at .. at + context - 1, then the head rows there (the
    last row repeated past the end), each space's rows concatenated."""
    n = raw_rows.shape[0]
    idx = np.minimum(np.asarray(at)[:, None] + np.arange(context)[None], n - 1).ravel()
    parts = []
    for x in (raw_rows, head_rows):
        z = np.asarray(x[idx], np.float32).reshape(len(at), context * x.shape[1])
        if x.dtype == np.int8:
            z /= ROW_SCALE
        parts.append(z)
    return np.concatenate(parts, 1)


def approximate_ends(D: np.ndarray, ids: np.ndarray, owner: np.ndarray, start: np.ndarray, lr: np.ndarray,
                     pairs: int) -> Tuple[np.ndarray, np.ndarray]:
    """Each window's nearest entries (inner products ``D``, raw row ids ``ids``, -1 where fewer) as
    the ends they propose, with the approximate fused score: per pair and end, the inner products
    of its windows that found the entry there plus, for each that did not, its last (kth) inner
    product (the most it could add), halved; an end's, its best pair's. Returns (ends, scores),
    ends sorted."""
    ok = ids >= 0
    n_ok = ok.sum(1)
    kth = np.where(n_ok > 0, D[np.arange(D.shape[0]), np.maximum(n_ok - 1, 0)], 0.0).astype(np.float64)
    rows = np.broadcast_to(np.arange(D.shape[0])[:, None], ids.shape)[ok]
    pr = owner[rows]
    e = ids[ok] - start[rows] + lr[pr] - 1
    part = D[ok].astype(np.float64) - kth[rows]
    base = np.bincount(owner, kth, pairs)
    if e.size == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    lo = int(e.min())
    key = (e - lo) * pairs + pr                            # by end, then pair: one sort
    order = np.argsort(key)
    s = key[order]
    first = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    tot = np.add.reduceat(part[order], first)
    u = s[first]
    ee = u // pairs + lo
    approx = (tot + base[u % pairs]) / 2
    g = np.flatnonzero(np.r_[True, ee[1:] != ee[:-1]])   # an end's best pair
    return ee[g], np.maximum.reduceat(approx, g)


def _sparse_entries(r: np.ndarray, h: np.ndarray, need: np.ndarray, at: np.ndarray, n: int, context: int):
    """:func:`joint_entries` at ``at`` from only the rows ``need`` (sorted) of a recording of ``n``."""
    idx = np.searchsorted(need, np.minimum(at[:, None] + np.arange(context)[None], n - 1))
    parts = []
    for x in (r, h):
        parts.append(np.asarray(x[idx.ravel()], np.float32).reshape(at.size, context * x.shape[1]) / ROW_SCALE)
    return np.concatenate(parts, 1)


# ---------------------------------------------------------------------------- the lists
class JointLists:
    """The joint lists of an index of both spaces (``root``: its ``joint/`` folder), open or new."""

    def __init__(self, root: Path, raw, head, config: Optional[JointConfig] = None, verify: bool = False):
        self.root = Path(root)
        self.raw, self.head = raw, head
        self.manifest: Optional[dict] = None
        self._lists: Dict[str, Lists] = {}
        mpath = self.root / "manifest.json"
        if mpath.exists():
            try:
                m = json.loads(mpath.read_text())
            except json.JSONDecodeError as exc:
                raise ArchiveDamaged(f"{mpath}: damaged ({exc})") from exc
            if not isinstance(m, dict) or m.get("kind") != JOINT_KIND:
                raise ArchiveDamaged(f"{mpath}: not the joint lists of an index of both spaces")
            if m.get("version") != JOINT_VERSION:
                raise SearchIndexError(f"{self.root}: joint lists of format version {m.get('version')}; this kws "
                                       f"reads version {JOINT_VERSION}: index the recordings again into a new folder")
            if (m.get("raw_space"), m.get("head_space")) != (raw.space_name, head.space_name):
                raise SearchIndexError(f"{self.root}: joint lists of {m.get('raw_space')} + {m.get('head_space')}, "
                                       f"not of this index's spaces: index the recordings again into a new folder")
            # its build settings; the query defaults are this kws's (they are not what was built)
            stored = JointConfig(**{k: v for k, v in m["config"].items() if k in JointConfig().build_part()})
            if config is not None and config.build_part() != stored.build_part():
                raise SearchIndexError(f"{self.root} was built with {stored}; use another folder for {config}")
            self.config = config or stored
            self.manifest = m
            self._check(full=verify)
        else:
            # none yet, or a first listing that never finished (its manifest is written last): no
            # segment has joint lists, so every recording is scanned exactly until update() lists
            # them (and removes what was left)
            self.config = config or JointConfig()

    # ------------------------------------------------------------------ integrity
    def _check(self, full: bool = False) -> None:
        check_files(self.root, (self.manifest or {}).get("checksums", {}), full, SMALL_FILE)
        raw_rows = {s["name"]: s["rows"] for s in (self.raw.manifest or {}).get("segments", [])}
        for s in (self.manifest or {}).get("segments", []):
            if raw_rows.get(s["name"]) != s["rows"]:
                raise ArchiveDamaged(f"{self.root}: its lists of {s['name']} hold {s['rows']} rows, the raw "
                                     f"space's segment {raw_rows.get(s['name'])}: rebuild the index")

    def verify(self) -> dict:
        self._check(full=True)
        for s in self.segments():
            self.lists(s).check(np.arange(self.lists(s).nlist), load=False)
        cs = (self.manifest or {}).get("checksums", {})
        return {"files": len(cs), "bytes": int(sum(c["size"] for c in cs.values()))}

    def size_bytes(self) -> int:
        return int(sum(c["size"] for c in (self.manifest or {}).get("checksums", {}).values()))

    def segments(self) -> List[dict]:
        return list((self.manifest or {}).get("segments", []))

    def segment(self, raw_name: str) -> Optional[dict]:
        for s in self.segments():
            if s["name"] == raw_name:
                return s
        return None

    def lists(self, s: dict) -> Lists:
        if s["name"] not in self._lists:
            from kws.search.shards import import_faiss

            ivf = self.root / s["ivf"]
            self._lists[s["name"]] = Lists(import_faiss(), ivf.with_suffix(".faiss"), ivf.with_suffix(".crc.npy"),
                                           self.root / s["trained"], self.config.codec)
        return self._lists[s["name"]]

    # ------------------------------------------------------------------ building
    def _pairs_of(self, rseg) -> List[Tuple[int, object, int]]:
        """Per file of raw segment ``rseg`` (its index there): the head segment and first row of
        the same recording, where the head space holds it with as many rows (else None)."""
        hsegs = self.head.segments()
        out = []
        for i, key in enumerate(rseg.keys):
            hs = None
            for s in hsegs:
                j = s.live_index(key)
                if j is not None and int(s.file_n[j]) == int(rseg.file_n[i]):
                    hs = (s, int(s.file_first[j]))
                    break
            out.append(hs)
        return out

    @staticmethod
    def _rows(seg, first: int, idx: np.ndarray) -> np.ndarray:
        """int8 rows ``first + idx`` of a segment (one recording's: one shard)."""
        s = int(np.searchsorted(seg.firsts, first, side="right") - 1)
        return np.asarray(seg.rows[s][first - seg.firsts[s] + idx])

    def _entries(self, rseg, where, files: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Unprojected entries (:func:`joint_entries`) at rows ``at`` (within their recording) of
        the raw segment's recordings ``files``, each row read once."""
        c = self.config.context
        z = np.empty((files.size, c * (self.raw.dim + self.head.dim)), np.float32)
        order = np.argsort(files, kind="stable")
        fs = files[order]
        cut = np.flatnonzero(np.r_[True, fs[1:] != fs[:-1]])
        for a, b in zip(cut, np.r_[cut[1:], fs.size]):
            f = int(fs[a])
            sel = order[a:b]
            n = int(rseg.file_n[f])
            hs, h0 = where[f]
            need = sorted_unique(np.minimum(at[sel][:, None] + np.arange(c)[None], n - 1))
            z[sel] = _sparse_entries(self._rows(rseg, int(rseg.file_first[f]), need), self._rows(hs, h0, need),
                                     need, at[sel], n, c)
        return z

    def update(self, quiet: bool = True) -> dict:
        """List every raw segment of at least ``min_list_rows`` rows that has no joint lists yet
        (a new one, or one an interrupted run left unlisted); then write the manifest. Returns
        what was done."""
        from kws.progress import progress
        from kws.search.archive import auto_nlist, trained_index
        from kws.search.shards import import_faiss

        self.root.mkdir(parents=True, exist_ok=True)
        m = json.loads(json.dumps(self.manifest)) if self.manifest else {
            "kind": JOINT_KIND, "version": JOINT_VERSION, "raw_space": self.raw.space_name,
            "head_space": self.head.space_name, "config": asdict(self.config), "segments": [], "checksums": {},
            "trained": None, "trained_rows": 0}
        self._clean_orphans(m)
        done = {s["name"] for s in m["segments"]}
        live = {s["name"] for s in (self.raw.manifest or {}).get("segments", [])}
        m["segments"] = [s for s in m["segments"] if s["name"] in live]
        todo = [s for s in self.raw.segments() if s.entry["name"] not in done and s.n >= max(1, self.config.min_list_rows)]
        rep = {"listed": [], "retrained": False, "train_s": 0.0, "lists_s": 0.0}
        if not todo:
            if m != self.manifest:
                self._write(m)
            return rep
        faiss = import_faiss()
        c = self.config
        for rseg in todo:
            where = self._pairs_of(rseg)
            total = sum(s["rows"] for s in m["segments"]) + rseg.n
            t0 = time.perf_counter()
            if m["trained"] is None or total > c.retrain_growth * m["trained_rows"]:
                # a new quantizer, trained on a sample of every listed segment's entries and the new one's
                name = f"trained-{rseg.entry['name'][4:]}.faiss"
                nlist = c.nlist or auto_nlist(total, 1.0)
                want = c.train_rows or max(20_000, 30 * nlist)
                listed = {x["name"] for x in m["segments"]}
                z = self._sample([s for s in self.raw.segments() if s.entry["name"] in listed or s is rseg],
                                 rseg, where, want)
                index, P = trained_index(faiss, z, nlist, c.listed_dim, c.codec, c.seed, c.kmeans_iter,
                                         c.coarse_cells, c.coarse_probe)
                save_npy(self.root / name.replace(".faiss", ".proj.npy"), P)
                tmp = self.root / (name + ".tmp")
                faiss.write_index(index, str(tmp))
                os.replace(tmp, self.root / name)
                m["trained"], m["trained_rows"] = name, total
                rep["retrained"] = True
            rep["train_s"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            index = faiss.read_index(str(self.root / m["trained"]))
            P = np.load(self.root / m["trained"].replace(".faiss", ".proj.npy"))
            files = [f for f in range(len(rseg.keys)) if where[f] is not None]
            batches, cur, size = [], [], 0
            for f in files:
                cur.append(f)
                size += int(rseg.file_n[f])
                if size >= BATCH:
                    batches.append(cur)
                    cur, size = [], 0
            if cur:
                batches.append(cur)
            for b in progress(batches, "joint lists", quiet=quiet or len(batches) < 2, unit="batch"):
                fs = np.concatenate([np.full(int(rseg.file_n[f]), f) for f in b])
                at = np.concatenate([np.arange(int(rseg.file_n[f])) for f in b])
                z = self._entries(rseg, where, fs, at)
                index.add_with_ids(np.ascontiguousarray(z @ P), (rseg.file_first[fs] + at).astype(np.int64))
            ivf = f"ivf-{rseg.entry['name'][4:]}"
            crcs = write_lists(faiss, index, self.root / ivf)
            save_npy(self.root / (ivf + ".crc.npy"), crcs)
            del index
            m["segments"].append({"name": rseg.entry["name"], "rows": rseg.n, "trained": m["trained"], "ivf": ivf})
            rep["lists_s"] += time.perf_counter() - t0
            rep["listed"].append(rseg.entry["name"])
        self._write(m)
        return rep

    def _sample(self, segs, new, where_new, want: int) -> np.ndarray:
        rng = np.random.default_rng(self.config.seed)
        total = sum(s.n for s in segs)
        share = min(1.0, want / max(1, total))
        parts = []
        for s in segs:
            where = where_new if s is new else self._pairs_of(s)
            files = np.array([f for f in range(len(s.keys)) if where[f] is not None], np.int64)
            if not files.size:
                continue
            n = s.file_n[files]
            take = int(n.sum()) if share >= 1 else int(rng.binomial(int(n.sum()), share))
            if not take:
                continue
            pick = np.sort(rng.choice(int(n.sum()), take, replace=False))
            cum = np.r_[0, np.cumsum(n)]
            fi = np.searchsorted(cum, pick, side="right") - 1
            parts.append(self._entries(s, where, files[fi], pick - cum[fi]))
        return np.concatenate(parts)

    def _write(self, m: dict) -> None:
        old = (self.manifest or {}).get("checksums", {})
        names = sorted({s["trained"] for s in m["segments"]})
        rels = [r for t in names for r in (t, t.replace(".faiss", ".proj.npy"))]
        rels += [s["ivf"] + x for s in m["segments"] for x in (".faiss", ".crc.npy")]
        cs = {}
        for rel in rels:
            st = (self.root / rel).stat()
            stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
            cs[rel] = old[rel] if rel in old and old[rel].get("stamp") == stamp else \
                {"size": st.st_size, "sha256": sha256_file(self.root / rel), "stamp": stamp}
        m["checksums"] = cs
        write_atomic(self.root / "manifest.json", json.dumps(m, indent=1).encode())
        self.manifest = m
        self._lists = {}
        self._clean_orphans(m)

    def _clean_orphans(self, m: dict) -> None:
        """Remove what an interrupted run left: files the manifest does not list."""
        keep = set(m.get("checksums", {})) | {"manifest.json"}
        for p in self.root.iterdir() if self.root.exists() else ():
            if p.name not in keep:
                shutil.rmtree(p) if p.is_dir() else p.unlink()

    # ------------------------------------------------------------------ queries
    def candidates(self, rseg, raw_t: Sequence[Template], head_t: Sequence[Template], nprobe: Optional[int] = None,
                   k: Optional[int] = None, rescore: Optional[int] = None, pairs: Optional[str] = None
                   ) -> Tuple[np.ndarray, np.ndarray]:
        """The ``rescore`` ends of raw segment ``rseg`` with the best approximate fused score
        (:func:`approximate_ends`), from its joint lists: (segment row ids, approximate scores)."""
        s = self.segment(rseg.entry["name"])
        c = self.config
        one = len(raw_t) == 1 and len(head_t) == 1
        nprobe = nprobe or (c.single_nprobe if one else c.nprobe)
        k = k or (c.single_k if one else c.k)
        rescore = rescore or (c.single_rescore if one else c.rescore)
        lists = self.lists(s)
        W, owner, start, lr = joint_windows(raw_t, head_t, c.context, pairs or c.pairs)
        n_pairs = len(raw_t) * len(head_t)
        kk = max(64, k // len(np.unique(owner)))
        D, ids = lists.search(np.ascontiguousarray(W @ lists.proj), kk, nprobe)
        e, approx = approximate_ends(D, ids, owner, start, lr, n_pairs)
        ok = (e >= 0) & (e < rseg.n)
        e, approx = e[ok], approx[ok]
        if e.size > rescore:
            b = np.argpartition(-approx, rescore)[:rescore]
            e, approx = e[b], approx[b]
        return e, approx
