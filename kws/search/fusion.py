"""Searching in both spaces at once (what ``kws search index`` makes by default, ``--vectors both``):
one folder holding the same recordings as rows of the raw space (``raw/``) and of the head's
(``head/``), each an :class:`~kws.search.archive.ArchiveIndex`, and a term scored in each, the two
scores of each place added.

The two spaces are wrong about different places: on held-out read speech, adding an utterance's
best raw score to its best head score lowers the text-query EER below either space alone
(docs/search.md). Here the scores are added where the term lies, not per utterance:

- **candidates** (format 2, the default): the joint lists (kws.search.joint: one list index whose
  entries hold a raw window and the head's window at the same place) propose the ends of the best
  approximate fused score; those are scored exactly (the fused score, both spaces' rows), the best
  of their recording within a second are the places, and the :data:`JOINT_PLACES` best places,
  with :data:`MARGIN_S` either side, are judged. Neither space has lists of its own (the folder
  stays under 15 MB an hour). Format 1 (``lists="spaces"``, still read and appended to): each
  space's best places from its own lists (the ends of the best approximate score,
  :data:`PAIR_RESCORE` of them for a text, :data:`PAIR_SINGLE_RESCORE` for an example, rescored
  exactly, and of those the best of their recording within a second), ``candidates`` of them per
  space, each with :data:`MARGIN_S` either side: at 1,000 h the fused best places are too often in
  neither space's list (docs/search.md, *An index of both spaces at 1,000 h*). Stretches of one
  recording that overlap are joined; with ``exact``, every recording whole. They are not judged
  as events in their own space: the fused score judges them again;
- **the fused score** at each end ``e`` of a candidate recording is the mean of the raw score
  there and the best head score among the ends whose term ends (each space's own estimate, its
  best template where it aligned) lie within :data:`ALIGN_S` of the raw one's (-1 where none):
  the spaces' templates end in different amounts of silence (0.25 s and 0.44 s after the word
  with the shipped model), so their peaks for one spoken word lie a few vectors apart;
- **hits** are the events of that series by the one event rule (kws.spot.events.peak_positions),
  with the raw space's times of the term.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from kws.errors import SearchIndexError, UsageError
from kws.search.lists import sorted_unique
from kws.search.query import Hit, stretch_peaks, top_hits
from kws.search.rows import HOP_S, PAD_S, Space, Template
from kws.spot.events import PEAK_FLOOR, REFRACTORY

PAIR_KIND = "kws-archive-pair"
# 2: joint lists (kws.search.joint) propose the candidates, each space's rows have no lists of their own;
# 1: each space's own lists propose its places (this kws still reads and appends to such an index)
PAIR_VERSION = 2
PAIR_READS = (1, 2)
NO_LISTS = 1 << 62     # a space's min_list_rows where the joint lists propose: it gets no lists of its own
LIST_KINDS = ("joint", "spaces", "both")
JOIN_ENDS = 3          # candidate ends of a recording this close are scored as one stretch
ALIGN_S = 0.2        # the two spaces' term ends, at one place, at most this far apart
REACH = 8            # ends either side of a raw end where the head's aligned end is looked for
MARGIN_S = 1.5       # seconds scored either side of a candidate event (more than the event rule's 1 s)
# ends of the best approximate score each space rescores exactly, for a term of several templates
# (a text query) and of one (an example): half of what each space rescores alone
# (ArchiveConfig.rescore and single_rescore), as its places are only candidates here, scored again
# in both spaces (docs/search.md, *An index of both spaces at 100 h*)
PAIR_RESCORE = 1024
PAIR_SINGLE_RESCORE = 4096
JOINT_PLACES = 80      # places from the joint lists judged by the event rule (a term's, of all segments)
EXACT_ROWS = 1 << 20   # rows of candidate stretches fused at once (an exact scan reads its archive so)


def is_pair(folder: Union[str, os.PathLike]) -> bool:
    """Whether ``folder`` is an index of both spaces (its manifest says so)."""
    try:
        return json.loads((Path(folder) / "manifest.json").read_text()).get("kind") == PAIR_KIND
    except (OSError, ValueError, AttributeError):
        return False


def mark_pair(root: Union[str, os.PathLike], lists: str = "joint") -> None:
    """Make ``root`` an index of both spaces: its manifest, written atomically (once). ``lists``:
    what proposes a query's candidates, ``joint`` (kws.search.joint; the default), ``spaces``
    (each space's own lists, as format 1 did) or ``both`` (to compare the two)."""
    if lists not in LIST_KINDS:
        raise UsageError(f"lists must be one of {', '.join(LIST_KINDS)}, not {lists!r}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    mpath = root / "manifest.json"
    if not mpath.exists():
        tmp = mpath.with_suffix(".tmp")
        tmp.write_text(json.dumps({"kind": PAIR_KIND, "version": PAIR_VERSION, "spaces": ["raw", "head"],
                                   "lists": lists}, indent=1) + "\n")
        os.replace(tmp, mpath)


def query_templates(index, make: Callable[[Space], List[Template]]):
    """A term's templates for ``index``: ``make(space)`` in its space, or, for an index of both
    spaces, the pair (raw templates, head templates) its queries take."""
    if isinstance(index, PairedIndex):
        return make(index.raw.space), make(index.head.space)
    return make(index.space)


def fuse(raw: np.ndarray, raw_ends: np.ndarray, head: np.ndarray, head_ends: np.ndarray,
         align_s: float = ALIGN_S, reach: int = REACH, offset: int = 0) -> np.ndarray:
    """The fused score at every raw end: (raw[e] + the best head[e'] with
    |head_ends[e'] - raw_ends[e]| <= ``align_s`` and |e' - (e + offset)| <= ``reach``) / 2, -1
    standing for a head score where no head end aligns. ``raw_ends``/``head_ends``: each space's
    estimate of the second the term ends there; ``offset``: the head series' index of the raw
    series' first end (its stretch may begin earlier)."""
    raw = np.asarray(raw, np.float64)
    n, m = raw.size, np.asarray(head).size
    return (raw + _aligned_head(raw_ends, head, head_ends, np.arange(n) + int(offset), 0, m, align_s, reach)) / 2


def _aligned_head(raw_ends: np.ndarray, head: np.ndarray, head_ends: np.ndarray, at: np.ndarray, lo, hi,
                  align_s: float, reach: int) -> np.ndarray:
    """For every raw end, the best head[e'] with lo <= e' < hi, |e' - at| <= ``reach`` and
    |head_ends[e'] - its raw end| <= ``align_s``, -1 where none: :func:`fuse`'s head score. ``at``:
    the head index of each raw end; ``lo``/``hi``: its head stretch (scalars, or one per raw end
    where stretches are joined end to end)."""
    head = np.asarray(head, np.float64)
    e = np.asarray(at)[:, None] + np.arange(-reach, reach + 1)[None, :]
    ok = (e >= np.reshape(lo, (-1, 1))) & (e < np.reshape(hi, (-1, 1)))
    if not head.size:
        return np.full(e.shape[0], -1.0)
    ec = np.clip(e, 0, head.size - 1)
    ok &= np.abs(np.asarray(head_ends, np.float64)[ec] - np.asarray(raw_ends, np.float64)[:, None]) <= align_s
    return np.where(ok, head[ec], -1.0).max(axis=1)


class PairedIndex:
    """An index of both spaces (module docstring). ``PairedIndex(root)`` opens one or prepares a
    new one; :meth:`add` indexes into both; :meth:`query` answers with the fused score."""

    def __init__(self, root: Union[str, os.PathLike], verify: bool = False, model=None,
                 lists: Optional[str] = None, joint_config=None):
        """``lists`` (a new index only; see :func:`mark_pair`): ``joint`` by default;
        ``joint_config``: kws.search.joint.JointConfig of a new index's joint lists."""
        from kws.search.archive import ArchiveConfig, ArchiveIndex
        from kws.search.joint import JointLists
        from kws.search.rows import search_model

        self.root = Path(root)
        mpath = self.root / "manifest.json"
        if mpath.exists():
            if not is_pair(self.root):
                raise SearchIndexError(f"{self.root} is an index of one space, not of both (--vectors both "
                                       "needs a new folder)")
            pm = json.loads(mpath.read_text())
            version = pm.get("version")
            if version not in PAIR_READS:
                raise SearchIndexError(f"{self.root} is an index of both spaces of format version {version}; "
                                       f"this kws reads versions {' and '.join(map(str, PAIR_READS))}: index the "
                                       "recordings again into a new folder")
            self.lists = pm.get("lists", "spaces")
        elif self.root.exists() and any(self.root.iterdir()):
            raise SearchIndexError(f"{self.root} has no manifest.json: a half-written or foreign index. "
                                   "Delete the folder and index again")
        else:
            self.lists = lists or "joint"
            if self.lists not in LIST_KINDS:
                raise UsageError(f"lists must be one of {', '.join(LIST_KINDS)}, not {self.lists!r}")
        model = search_model(model) if model is None or isinstance(model, (str, os.PathLike)) else model
        own = {} if self.lists != "joint" else {"min_list_rows": NO_LISTS}
        self.raw = ArchiveIndex(self.root / "raw", None if (self.root / "raw" / "manifest.json").exists()
                                else ArchiveConfig(vectors="raw", **own), verify=verify, model=model)
        self.head = ArchiveIndex(self.root / "head", None if (self.root / "head" / "manifest.json").exists()
                                 else ArchiveConfig(vectors="head", **own), verify=verify, model=model)
        if self.raw.config.vectors != "raw" or self.head.config.vectors != "head":
            raise SearchIndexError(f"{self.root}: its raw/ and head/ indexes hold other spaces")
        self.joint = None
        if self.lists in ("joint", "both"):
            jroot = self.root / "joint"
            self.joint = JointLists(jroot, self.raw, self.head, None if (jroot / "manifest.json").exists()
                                    else joint_config, verify=verify)

    @property
    def space_name(self) -> str:
        return f"{self.raw.space_name} + {self.head.space_name}"

    @property
    def files(self) -> Dict[str, dict]:
        """The recordings both spaces hold (kept until :meth:`add` or either manifest changes)."""
        key = (id(self.raw.manifest), id(self.head.manifest), len(self.raw.files), len(self.head.files))
        if getattr(self, "_files_key", None) != key:
            h = self.head.files
            self._files = {k: v for k, v in self.raw.files.items() if k in h}
            self._files_key = key
        return self._files

    def __len__(self) -> int:
        return len(self.files)

    @property
    def seconds(self) -> float:
        return float(sum(f["seconds"] for f in self.files.values()))

    def size_bytes(self) -> int:
        return self.raw.size_bytes() + self.head.size_bytes() + (self.joint.size_bytes() if self.joint else 0)

    def size_parts(self) -> Dict[str, int]:
        """Bytes on disk of the rows (both spaces' rows, hashes, metadata), of each space's own
        lists (their quantizers included) and of the joint lists."""
        out = {"rows": 0, "space_lists": 0, "joint_lists": self.joint.size_bytes() if self.joint else 0}
        for ix in (self.raw, self.head):
            for rel, c in (ix.manifest or {}).get("checksums", {}).items():
                name = rel.rsplit("/", 1)[-1]
                out["space_lists" if name.startswith(("ivf-", "trained-")) else "rows"] += int(c["size"])
        return out

    def verify(self) -> dict:
        import time

        t0 = time.perf_counter()
        a, b = self.raw.verify(), self.head.verify()
        j = self.joint.verify() if self.joint else {"files": 0, "bytes": 0}
        return {"files": a["files"] + b["files"] + j["files"], "bytes": a["bytes"] + b["bytes"] + j["bytes"],
                "seconds": time.perf_counter() - t0}

    def add(self, paths, **kw) -> dict:
        """Index ``paths`` into both spaces (ArchiveIndex.add's arguments); the counts are the raw
        space's, rows and segment both spaces'."""
        mark_pair(self.root, self.lists)
        self._files_key = None
        a = self.raw.add(paths, **kw)
        b = self.head.add(paths, **kw)
        if self.joint is not None:       # the new raw segment's joint lists (and any a run left unlisted)
            j = self.joint.update(quiet=kw.get("quiet", True))
            a = dict(a, joint=j, retrained=a["retrained"] or j["retrained"])
        out = dict(a)
        out["failed"] = sorted(set(a["failed"]) | set(b["failed"]))
        out["rows"] = a["rows"] + b["rows"]
        out["segment"] = [a["segment"], b["segment"]]
        out["retrained"] = bool(a["retrained"] or b["retrained"])
        return out

    def add_joint(self, config=None, quiet: bool = True) -> dict:
        """Give an index of both spaces that has none (format 1, each space's own lists) joint lists
        of every segment as well (``lists`` becomes ``both``; kws.search.joint.JointConfig
        ``config``); its rows and each space's lists stay as they are. Returns what was listed."""
        from kws.search.joint import JointLists
        from kws.search.shards import write_atomic

        if self.joint is None:
            self.joint = JointLists(self.root / "joint", self.raw, self.head, config)
        rep = self.joint.update(quiet=quiet)
        if self.lists != "both" and self.lists != "joint":
            pm = json.loads((self.root / "manifest.json").read_text())
            pm.update(version=PAIR_VERSION, lists="both")
            write_atomic(self.root / "manifest.json", (json.dumps(pm, indent=1) + "\n").encode())
            self.lists = "both"
        return rep

    # ------------------------------------------------------------------ queries
    def file_scores(self, file: str, templates: Tuple[Sequence[Template], Sequence[Template]],
                    first: int = 0, stop: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """The fused score at every end of one recording (its ends ``first .. stop - 1``) and the
        raw space's (N, 2) seconds of the term ending there. ``templates``: (raw templates, head
        templates) of the term. Both spaces' rows follow the same 80 ms steps of the recording."""
        key = file if file in self.files else str(Path(file).resolve())
        return self._fused(templates, [(key, int(first), stop)])[0]

    def _fused(self, templates, windows: List[Tuple[str, int, Optional[int]]]) -> List[Tuple[np.ndarray, np.ndarray]]:
        """:meth:`file_scores` of many stretches (recording, first end, stop), each space's rows read
        and scored in one go, the fused score of all of them computed at once."""
        raw_t, head_t = templates
        # the head's ends REACH beyond either side, so that an end near the edge finds its match
        wide = [(k, max(0, a - REACH), None if b is None else b + REACH) for k, a, b in windows]
        rs = self.raw.span_scores(raw_t, windows)
        hs = self.head.span_scores(head_t, wide)
        if not rs:
            return []
        n = np.array([r.size for r, _ in rs], np.int64)
        m = np.array([h.size for h, _ in hs], np.int64)
        r0, h0 = np.r_[0, np.cumsum(n)[:-1]], np.r_[0, np.cumsum(m)[:-1]]
        w = np.repeat(np.arange(len(rs)), n)                     # each raw end's stretch
        offset = np.array([a - b for (_, a, _), (_, b, _) in zip(windows, wide)], np.int64)
        at = h0[w] + np.arange(int(n.sum())) - r0[w] + offset[w]  # in the joined head series
        raw = np.concatenate([r for r, _ in rs]).astype(np.float64)
        raw_end = np.concatenate([t[:, 1] for _, t in rs])
        best = _aligned_head(raw_end, np.concatenate([h for h, _ in hs]), np.concatenate([t[:, 1] for _, t in hs]),
                             at, h0[w], h0[w] + m[w], ALIGN_S, REACH)
        fused = ((raw + best) / 2).astype(np.float32)
        return [(fused[a:a + k], t) for a, k, (_, t) in zip(r0, n, rs)]

    def query(self, templates: Tuple[Sequence[Template], Sequence[Template]], top: int = 10,
              exact: bool = False, per_file: Optional[int] = None, threshold: Optional[float] = None,
              nprobe: Optional[int] = None, candidates: int = 0, k: Optional[int] = None,
              rescore: Optional[int] = None, places: bool = True, source: Optional[str] = None,
              pairs: Optional[str] = None) -> List[Hit]:
        """The ``top`` best hits of a term by the fused score. ``templates``: (raw templates, head
        templates) of the term; ``exact``: every file, every position, :data:`EXACT_ROWS` rows at a
        time. ``source``: what proposes the candidates, ``joint`` (the joint lists, where the index
        has them: the default) or ``spaces`` (each space's own lists). ``candidates``: places
        judged by the event rule (joint: of all, default :data:`JOINT_PLACES`; spaces: per space,
        default max(64, 8 top)). ``nprobe``, ``k``, ``rescore``: the lists' settings (joint:
        kws.search.joint.JointConfig, spaces: kws.search.archive.ArchiveConfig; the index's own by
        default; ``pairs``: JointConfig.pairs). ``places`` (spaces only): each space's best exactly rescored ends a second apart,
        of :data:`PAIR_RESCORE` rescored for a term of several templates, :data:`PAIR_SINGLE_RESCORE`
        for one; else its events, judged again around them."""
        raw_t, head_t = templates
        if not raw_t or not head_t:
            raise UsageError("a query needs at least one template in each space")
        source = source or ("joint" if self.joint is not None else "spaces")
        if source not in ("joint", "spaces"):
            raise UsageError(f"source is joint or spaces, not {source!r}")
        if source == "joint" and self.joint is None:
            raise UsageError(f"{self.root} has no joint lists (an index of both spaces of format 1)")
        both = self.files
        if exact:
            spans = {f: [(0, None)] for f in both}
        elif source == "joint":
            spans = self._joint_spans(templates, candidates or JOINT_PLACES, nprobe, k, rescore, pairs)
        else:
            n = candidates or max(64, 8 * top)
            found: Dict[str, List[Tuple[float, float]]] = {}
            for ix, ts in ((self.raw, raw_t), (self.head, head_t)):
                r = rescore or ((PAIR_RESCORE if len(ts) > 1 else PAIR_SINGLE_RESCORE) if places else None)
                for h in ix.query(ts, top=n, nprobe=nprobe, k=k, rescore=r, places=places):
                    if h.file in both:
                        found.setdefault(h.file, []).append((h.start - MARGIN_S, h.end + MARGIN_S))
            spans = {f: _joined(w) for f, w in found.items()}
        floor = PEAK_FLOOR if threshold is None else max(PEAK_FLOOR, float(threshold))
        files = list(spans)
        windows = [(f, a, b) for f in files for a, b in spans[f]]
        which = np.array([i for i, f in enumerate(files) for _ in spans[f]], np.int64)
        # the stretches in batches of about EXACT_ROWS rows (an exact scan: whole recordings), each
        # batch's best events kept: the rows of a whole archive are never all in memory at once
        keep = max(64, 8 * top) if per_file is None else None
        owner, scores, times, i = [], [], [], 0
        while i < len(windows):
            j, rows = i, 0
            while j < len(windows) and (j == i or rows + self._rows(windows[j]) <= EXACT_ROWS):
                rows += self._rows(windows[j])
                j += 1
            w, sc, t = self._events((raw_t, head_t), windows[i:j], floor)
            if keep is not None and sc.size > keep:
                b = np.argpartition(-sc, keep)[:keep]
                w, sc, t = w[b], sc[b], t[b]
            owner.append(which[i:j][w])
            scores.append(sc)
            times.append(t)
            i = j
        if not owner or not sum(x.size for x in owner):
            return []
        return top_hits(files, np.concatenate(owner), np.concatenate(scores), np.concatenate(times),
                        top, per_file)

    def _joint_spans(self, templates, n: int, nprobe: Optional[int], k: Optional[int],
                     rescore: Optional[int], pairs: Optional[str] = None) -> Dict[str, List[Tuple[int, Optional[int]]]]:
        """Candidate stretches from the joint lists: each raw segment's ends of the best approximate
        fused score (kws.search.joint.JointLists.candidates), their fused score computed exactly,
        of those the best of their recording within a second (places), and around the ``n`` best
        places :data:`MARGIN_S` either side. A raw segment without joint lists (under
        ``min_list_rows`` rows) gives its recordings whole."""
        from kws.search.query import ArchiveQueries

        raw_t, head_t = templates
        both = self.files
        spans: Dict[str, List[Tuple[int, Optional[int]]]] = {}
        keys: List[str] = []
        local: List[np.ndarray] = []
        for rseg in self.raw.segments():
            if self.joint.segment(rseg.entry["name"]) is None:
                for i, key in enumerate(rseg.keys):
                    if rseg.live[i] and key in both:
                        spans[key] = [(0, None)]
                continue
            e, _ = self.joint.candidates(rseg, raw_t, head_t, nprobe, k, rescore, pairs)
            e = ArchiveQueries._live_ends(rseg, np.sort(e))
            if not e.size:
                continue
            f = rseg.file_of(e)
            uf, inv = np.unique(f, return_inverse=True)
            base = len(keys)
            keys += [rseg.keys[i] for i in uf]
            local.append(np.stack([inv.ravel() + base, e - rseg.file_first[f]], 1))
        if not local:
            return spans
        fe = np.concatenate(local)
        ok = np.array([keys[i] in both and keys[i] not in spans for i in range(len(keys))], bool)[fe[:, 0]]
        fe = fe[ok]
        if not fe.size:
            return spans
        fe = fe[np.lexsort((fe[:, 1], fe[:, 0]))]
        owner, end = fe[:, 0], fe[:, 1]
        sc, tm = self._fused_at(templates, keys, owner, end)
        # places: no end of the recording within the refractory second scores higher (of equal, the first)
        keep = np.ones(sc.size, bool)
        for d in range(1, REFRACTORY + 1):
            near = (owner[d:] == owner[:-d]) & (end[d:] - end[:-d] <= REFRACTORY)
            keep[d:] &= ~(near & (sc[d:] <= sc[:-d]))
            keep[:-d] &= ~(near & (sc[:-d] < sc[d:]))
        p = np.flatnonzero(keep & (sc >= PEAK_FLOOR))
        if p.size > n:
            p = p[np.argpartition(-sc[p], n)[:n]]
        found: Dict[str, List[Tuple[float, float]]] = {}
        for i in p:
            found.setdefault(keys[int(owner[i])], []).append((float(tm[i, 0]) - MARGIN_S, float(tm[i, 1]) + MARGIN_S))
        for f, w in found.items():
            spans[f] = _joined(w)
        return spans

    def _fused_at(self, templates, keys: List[str], owner: np.ndarray, end: np.ndarray
                  ) -> Tuple[np.ndarray, np.ndarray]:
        """The fused score (:func:`fuse`, exactly as :meth:`file_scores` gives it) at the ends
        ``end`` of the recordings ``keys[owner]``, sorted by (owner, end), and the raw space's
        (N, 2) seconds of the term there: each space's score at only the ends it needs (the raw
        end, and the head's ends within :data:`REACH` of it), their rows read once each."""
        from kws.search.query import ArchiveQueries
        from kws.spot.templates import TemplateBank

        raw_t, head_t = templates
        times = np.zeros((end.size, 2), np.float32)
        brt = TemplateBank.build([[T.vectors for T in raw_t]])
        bht = TemplateBank.build([[T.vectors for T in head_t]])
        self.raw._check_templates([raw_t])
        self.head._check_templates([head_t])
        st_r = np.array([T.start_s for T in raw_t])
        en_r = np.array([T.end_s for T in raw_t])
        en_h = np.array([T.end_s for T in head_t])
        rsegs, hsegs = self.raw.segments(), self.head.segments()
        # where each recording's rows are in each space: (segment, its first row there, rows)
        loc = self._locations(keys)
        rseg_of, rfirst, hseg_of, hfirst, n_h = loc.T
        f = np.asarray(owner, np.int64)
        end = np.asarray(end, np.int64)
        # the raw score and its best template's term at each end
        raw = np.full(end.size, -1.0)
        which = np.zeros(end.size, np.int64)
        for si in sorted_unique(rseg_of[f]):
            m = rseg_of[f] == si
            ids = rfirst[f[m]] + end[m]
            sc, w = ArchiveQueries._score_ends(rsegs[si], brt, ids)
            raw[m], which[m] = sc, w
        t0 = (end - (brt.length[which] - 1)) * HOP_S - PAD_S
        times[:, 0], times[:, 1] = t0 + st_r[which], t0 + en_r[which]       # float32, as span_scores
        # the head's ends within REACH (inside the recording) whose term, by some head template,
        # can end within ALIGN_S of the raw one's (the best template's must: fuse), scored once each
        he = end[:, None] + np.arange(-REACH, REACH + 1)[None, :]
        inside = (he >= 0) & (he < n_h[f][:, None])
        lag = (bht.length - 1) * HOP_S + PAD_S - en_h                 # term end = e' HOP_S - lag
        near = np.zeros(he.shape, bool)
        for g in np.unique(np.round(lag, 6)):
            near |= np.abs(he * HOP_S - g - times[:, 1:2]) <= ALIGN_S + 1e-3
        inside &= near
        head = np.full(he.shape, -1.0)
        hend = np.zeros(he.shape)
        for si in sorted_unique(hseg_of[f]):
            m = (hseg_of[f] == si)[:, None] & inside
            ids = (hfirst[f][:, None] + he)[m]
            u, inv = np.unique(ids, return_inverse=True)
            sc, w = ArchiveQueries._score_ends(hsegs[si], bht, u)
            head[m] = sc[inv.ravel()]
            # as kws.search.query span_scores gives it: float32 seconds
            hend[m] = ((he[m] - (bht.length[w[inv.ravel()]] - 1)) * HOP_S - PAD_S
                       + en_h[w[inv.ravel()]]).astype(np.float32)
        ok = inside & (np.abs(hend - times[:, 1:2].astype(np.float64)) <= ALIGN_S)
        ok &= head > -1.0
        best = np.where(ok, head, -1.0).max(axis=1)
        out = ((raw + best) / 2).astype(np.float32)
        return out, times

    def _locations(self, keys: Sequence[str]) -> np.ndarray:
        """(raw segment, the recording's first row there, head segment, its first row there, its
        rows in the head space) of each recording that answers (kept while neither space's
        manifest changes)."""
        key = (id(self.raw.manifest), id(self.head.manifest))
        if getattr(self, "_loc_key", None) != key:
            self._loc, self._loc_key = {}, key
        out = np.empty((len(keys), 5), np.int64)
        for i, k in enumerate(keys):
            v = self._loc.get(k)
            if v is None:
                (a, b), (c, d) = self.raw._where(k), self.head._where(k)
                hs = self.head.segments()[c]
                v = self._loc[k] = (a, int(self.raw.segments()[a].file_first[b]), c, int(hs.file_first[d]),
                                    int(hs.file_n[d]))
            out[i] = v
        return out

    def _rows(self, window: Tuple[str, int, Optional[int]]) -> int:
        f, a, b = window
        n = int(self.files[f]["rows"])
        return max(0, (n if b is None else min(n, b)) - a)

    def _events(self, templates, windows: List[Tuple[str, int, Optional[int]]], floor: float
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The events of the fused score on each stretch (recording, first end, stop), each stretch
        on its own: (its stretch's index, score, (N, 2) seconds of the term) of every event."""
        fused = self._fused(templates, windows)
        none = (np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 2), np.float32))
        if not fused:
            return none
        n = np.array([s.size for s, _ in fused], np.int64)
        first = np.r_[0, np.cumsum(n)[:-1]]
        s = np.concatenate([s for s, _ in fused]).astype(np.float64)
        t = np.concatenate([t for _, t in fused])
        live = n > 0
        if not live.any():
            return none
        p = stretch_peaks(s, first[live], REFRACTORY, floor)     # each stretch's events on its own
        w = np.flatnonzero(live)[np.searchsorted(first[live], p, side="right") - 1]
        at = p - first[w]
        a = np.array([x for _, x, _ in windows], np.int64)
        b = np.array([-1 if y is None else y for _, _, y in windows], np.int64)
        # an event within a second of a stretch's edge inside a recording may not be one
        ok = ~((a[w] > 0) & (at < REFRACTORY))
        ok &= ~((b[w] >= 0) & (a[w] + n[w] == b[w]) & (at >= n[w] - REFRACTORY))
        return w[ok], s[p[ok]], t[p[ok]]


def _joined(spans: List[Tuple[float, float]]) -> List[Tuple[int, int]]:
    """Seconds of a recording (overlapping ones joined) as its ends [first, stop): an end e sees
    the recording up to HOP_S e - PAD_S + 0.78 s, so the term ending at t is near end (t + PAD_S) / HOP_S."""
    out: List[List[int]] = []
    for s, e in sorted(spans):
        a = max(0, int(np.floor((s + PAD_S) / HOP_S)))
        b = int(np.ceil((e + PAD_S) / HOP_S)) + 1
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]
