"""Spoken-term search over recordings (STD): an index of window embeddings, queried by text or example.

    python -m kws search index PATH... [--index DIR]      # files or folders, re-run to update
    python -m kws search query DIR "term" [--example clip.wav] [--top 10] [--json] [--plot out.png]

Indexing embeds sliding windows (default 0.2-0.6 s every 0.15 s, the paper's STD protocol) of every
file once with the audio encoder and stores them per file ("shard") as int8 rows (unit vectors
times 127; cosine error below 0.01) with their start and end times, as plain ``.npy`` files, plus
one packed copy of all rows that a query scans memory-mapped, in chunks. ``index.json`` names the model, the window settings and, per file,
its size and modification time: re-indexing skips unchanged files, re-embeds changed ones and
drops files that are gone. The index is saved after every file, so an interrupted run keeps
everything finished so far.

A query is one vector (the text encoder's embedding of the term, or the audio encoder's of an
example recording); its cosine with every window is a scan of int8 rows, chunk by chunk, so
memory stays flat however large the index. Windows overlapping a better window of the same file
are merged into its hit.

Large indexes: ``--approximate`` (``IndexConfig(kind="ivf")``) replaces the packed copy by a FAISS
inverted-list index over projected int8 rows (kws.search_ann); the shards stay, so the exact scan
is still there (``--exact``) as the reference. Indexing runs on a Dask cluster (kws.search_dist):
a local one on this machine's cores by default, or a running one (``--address``). ``--clip DIR``
cuts every hit with 0.5 s of context into WAV files (``--play`` plays them). See docs/search.md.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from kws.audio import AudioError, load_audio, trim_silence
from kws.bundle import Bundle
from kws.errors import SearchIndexError, UsageError
from kws.windows import frames_in, make_plan

if TYPE_CHECKING:                       # kws.search_ann imports this module
    from kws.search_ann import AnnConfig

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif")
INDEX_VERSION = 1
_Q = 127.0


@dataclass(frozen=True)
class IndexConfig:
    window_s: Tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.6)
    hop_s: float = 0.15
    variant: str = "int8"          # encoder used for the windows (queries use the same bundle)
    batch: int = 128               # windows per encoder call
    min_speech: float = 0.5        # webrtcvad: skip windows with less speech than this (0: keep all)
    kind: str = "exact"            # "exact": packed rows scanned; "ivf": approximate (FAISS) index

    def __post_init__(self):
        if not self.window_s or min(self.window_s) <= 0.025:
            raise UsageError("window_s must hold lengths above 25 ms")
        if self.hop_s <= 0:
            raise UsageError("hop_s must be positive")
        if self.variant not in ("int8", "fp32"):
            raise UsageError("variant must be int8 or fp32")
        if not 0 <= self.min_speech <= 1:
            raise UsageError("min_speech must be within 0..1")
        if self.kind not in ("exact", "ivf"):
            raise UsageError("kind must be exact or ivf")


@dataclass
class Hit:
    file: str
    start: float
    end: float
    score: float
    windows: int = 1               # windows merged into this hit

    def to_dict(self) -> dict:
        return {"file": self.file, "start": round(self.start, 3), "end": round(self.end, 3),
                "score": round(self.score, 4), "windows": self.windows}


def audio_files(paths: Iterable[Union[str, os.PathLike]]) -> List[Path]:
    """Audio files named, or found under the folders named (sorted, absolute)."""
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
    seen, uniq = set(), []
    for p in out:
        if p not in seen:
            seen.add(p)
            uniq.append(p)
    return uniq


def speech_slots(audio: np.ndarray) -> np.ndarray:
    """webrtcvad's decision (mode 2) for every 10 ms slot of a recording, as 0/1."""
    from kws.vad import StreamingVad

    v = StreamingVad(capacity_slots=audio.size // 160 + 4)
    v.push(audio)
    return v.flags.get(0, v.flags.total)[:, 0].astype(np.float32)


def window_embeddings(bundle: Bundle, audio: np.ndarray, cfg: IndexConfig = IndexConfig(),
                      block_s: float = 60.0):
    """(N, D) embeddings of the sliding windows of one recording, with (N, 2) start/end seconds.

    Windows end every ``hop_s``; at each end, one window of each length of the window plan
    (kws.windows: ``window_s`` as window lengths on log-mel models, as word durations on
    speech-embedding models) that fits, unless less than ``min_speech`` of it is speech for
    webrtcvad. A recording shorter than the shortest window gives one window, the whole
    recording. Frames are computed ``block_s`` at a time, so memory does not grow with the
    recording's length.
    """
    fe = bundle.frontend
    audio = np.asarray(audio, dtype=np.float32)
    T = fe.count(audio.size)
    D = bundle.embedding_dim
    if T == 0:
        return np.zeros((0, D), np.float32), np.zeros((0, 2), np.float32)
    plan = make_plan(fe, cfg.hop_s, cfg.window_s, [None], per_duration=1)
    hop, wins = plan.hop, list(plan.lengths)
    if cfg.min_speech > 0:
        flags = speech_slots(audio)
        csum = np.r_[0.0, np.cumsum(flags)]

        def speech(first, stop):
            a, b = (min(v // 160, flags.size) for v in fe.samples(first, stop))
            return (csum[b] - csum[a]) / max(1, b - a)
    embs, times = [], []
    if T < wins[0]:   # shorter than every window: the whole recording is one window
        embs.append(bundle.embed_frames(fe.frames(audio)[None], np.array([T])))
        times.append(np.array([fe.word_times(0, T)]))
    block = max(hop, frames_in(fe, block_s) // hop * hop)
    for b0 in range(0, T + 1, block):             # window ends in [b0, b0 + block)
        first = max(0, b0 - wins[-1])
        last = min(T, b0 + block - 1)
        frames = None
        for L in wins:
            ends = np.arange(L, T + 1, hop)
            ends = ends[(ends >= b0) & (ends < b0 + block)]
            if cfg.min_speech > 0:
                ends = np.array([e for e in ends if speech(e - L, e) >= cfg.min_speech], dtype=np.int64)
            if ends.size == 0:
                continue
            if frames is None:
                a, b = fe.samples(first, last)
                frames = fe.frames(audio[a:b])
            for s in range(0, ends.size, cfg.batch):
                e = ends[s:s + cfg.batch]
                x = np.stack([frames[j - L - first:j - first] for j in e])
                embs.append(bundle.embed_frames(x, np.full(len(e), L)))
                times.append(np.array([fe.word_times(j - L, j) for j in e]))
    if not embs:      # no window held enough speech
        return np.zeros((0, D), np.float32), np.zeros((0, 2), np.float32)
    emb = np.concatenate(embs).astype(np.float32)
    tt = np.concatenate(times).astype(np.float32)
    order = np.lexsort((tt[:, 1], tt[:, 0]))
    return emb[order], tt[order]


def quantize(emb: np.ndarray) -> np.ndarray:
    return np.clip(np.round(emb * _Q), -127, 127).astype(np.int8)


def embed_file(bundle: Bundle, path: Union[str, os.PathLike], cfg: IndexConfig):
    """One file's int8 window rows, (N, 2) times, seconds of audio and seconds spent embedding;
    or, for a file that cannot be read, the error message (a string)."""
    try:
        audio = load_audio(path)
    except AudioError as exc:
        return str(exc)
    t0 = time.perf_counter()
    emb, times = window_embeddings(bundle, audio, cfg)
    return quantize(emb), times, audio.size / 16000, time.perf_counter() - t0


_BUNDLES: dict = {}


def _remote_embed(path: str, bundle_path: Optional[str], variant: str, cfg: dict):
    """Runs on a Dask worker: (model id, embed_file's result). The bundle is loaded once a process."""
    key = (bundle_path, variant)
    if key not in _BUNDLES:
        _BUNDLES[key] = Bundle.load(bundle_path, variant=variant)
    b = _BUNDLES[key]
    cfg = IndexConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})
    return b.model_id, embed_file(b, path, cfg)


def merge_hits(file: str, scores: np.ndarray, times: np.ndarray, top: int,
               threshold: Optional[float] = None) -> List[Hit]:
    """Best windows of one file, each absorbing the lower-scoring windows that overlap it."""
    if scores.size == 0:
        return []
    cand = np.argsort(-scores, kind="stable")
    if threshold is not None:
        cand = cand[scores[cand] >= threshold]
    hits: List[Hit] = []
    taken = np.zeros(scores.size, bool)
    for i in cand:
        if taken[i]:
            continue
        s, e = times[i]
        over = (times[:, 0] < e) & (times[:, 1] > s) & ~taken
        taken |= over
        hits.append(Hit(file, float(s), float(e), float(scores[i]), int(over.sum())))
        if len(hits) >= top:
            break
    return hits


class SearchIndex:
    """A folder of per-file window embeddings (see the module docstring)."""

    def __init__(self, root: Union[str, os.PathLike], bundle: Optional[Bundle] = None,
                 config: Optional[IndexConfig] = None, ann: Optional[AnnConfig] = None):
        from kws.search_ann import AnnConfig, AnnIndex

        self.root = Path(root)
        meta_path = self.root / "index.json"
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
            except json.JSONDecodeError as exc:
                raise SearchIndexError(f"{meta_path}: damaged ({exc})") from exc
            if meta.get("version") != INDEX_VERSION:
                raise SearchIndexError(f"{meta_path}: index version {meta.get('version')}, need {INDEX_VERSION}")
            stored = IndexConfig(**{k: tuple(v) if isinstance(v, list) else v
                                    for k, v in meta["config"].items()})
            if config is not None and config != stored:
                raise SearchIndexError(f"{self.root} was built with {stored}; use another folder for {config}")
            self.config = stored
            self.files: Dict[str, dict] = meta["files"]
            self.model_id = meta["model_id"]
        else:
            if self.root.exists() and any(self.root.iterdir()):
                raise SearchIndexError(f"{self.root} exists and is not a kws index (no index.json)")
            self.config = config or IndexConfig()
            self.files = {}
            self.model_id = None
        self.bundle = bundle or Bundle.load(variant=self.config.variant)
        if self.model_id is not None and self.model_id != self.bundle.model_id:
            raise SearchIndexError(f"{self.root} was built by model {self.model_id}, not "
                              f"{self.bundle.model_id}: re-index into a new folder")
        self.model_id = self.bundle.model_id
        self.ann = AnnIndex(self.root, ann or AnnConfig()) if self.config.kind == "ivf" else None
        if self.ann is not None:
            from kws.search_ann import import_faiss

            import_faiss()      # a clear message now rather than after hours of embedding

    # ------------------------------------------------------------------ building
    def _save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.files = dict(sorted(self.files.items()))     # the same order whoever finished first
        meta = {"version": INDEX_VERSION, "model_id": self.model_id, "config": asdict(self.config),
                "files": self.files}
        tmp = self.root / "index.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, self.root / "index.json")

    @staticmethod
    def _shard_name(path: str) -> str:
        return hashlib.sha1(path.encode()).hexdigest()[:16]

    def add(self, paths: Sequence[Union[str, os.PathLike]], quiet: bool = False,
            prune: bool = True, workers: int = 1, address: Optional[str] = None) -> dict:
        """Index the files (folders are searched); skip unchanged ones. Returns counts and timing.

        ``prune`` drops files that no longer exist from the index. ``workers`` > 1 embeds files
        on a local Dask cluster of that many processes, ``address`` on a running cluster
        (kws.search_dist); either way this process alone writes the index, one file at a time.
        """
        files = audio_files(paths)
        (self.root / "shards").mkdir(parents=True, exist_ok=True)
        stats = {"indexed": 0, "unchanged": 0, "failed": [], "removed": 0, "audio_s": 0.0,
                 "embed_s": 0.0, "windows": 0}
        todo = []
        for p in files:
            st = p.stat()
            old = self.files.get(str(p))
            if old and old["size"] == st.st_size and old["mtime_ns"] == st.st_mtime_ns:
                stats["unchanged"] += 1
            else:
                todo.append((p, st.st_size, st.st_mtime_ns))
        if todo and (workers > 1 or address):
            results = self._embed_distributed(todo, workers, address, quiet)
        else:
            results = self._embed_here(todo, quiet)
        for (p, size, mtime_ns), out in results:
            if isinstance(out, str):
                stats["failed"].append(out)
                continue
            emb, times, seconds, took = out
            self._store(str(p), size, mtime_ns, emb, times, seconds)
            stats["embed_s"] += took
            stats["indexed"] += 1
            stats["audio_s"] += seconds
            stats["windows"] += int(emb.shape[0])
        if prune:
            for key in [k for k in self.files if not Path(k).exists()]:
                self._drop(key)
                stats["removed"] += 1
        self._save()
        stats.update(self.refresh(quiet=quiet))
        return stats

    def _embed_distributed(self, todo, workers: int, address: Optional[str], quiet: bool):
        """Like :meth:`_embed_here`, on a Dask cluster (kws.search_dist), in any order; every
        result's model id must be this index's."""
        from kws.bundle import default_bundle_path
        from kws.search_dist import run_tasks

        # the shipped bundle: every worker uses its own installed copy (checked by model id)
        shipped = Path(self.bundle.path).resolve() == default_bundle_path().resolve()
        bpath = None if shipped else str(Path(self.bundle.path).resolve())
        cfg = asdict(self.config)
        jobs = [(str(item[0]), bpath, self.bundle.variant, cfg) for item in todo]
        by_path = {str(item[0]): item for item in todo}
        for job, out in run_tasks(_remote_embed, jobs, workers=workers, address=address, quiet=quiet,
                                  desc="indexing", unit="file"):
            item = by_path[job[0]]
            if isinstance(out, BaseException):
                yield item, f"{item[0]}: not indexed ({type(out).__name__}: {out})"
                continue
            model_id, res = out
            if model_id != self.bundle.model_id:
                raise SearchIndexError(f"a worker embedded with model {model_id}, not "
                                       f"{self.bundle.model_id}: install the same kws on every worker")
            yield item, res

    def _embed_here(self, todo, quiet: bool):
        """(file, (int8 rows, times, seconds, embedding seconds) or an error message), in order."""
        from kws.progress import progress

        for item in progress(todo, "indexing", quiet=quiet, unit="file"):
            yield item, embed_file(self.bundle, item[0], self.config)

    def _store(self, key: str, size: int, mtime_ns: int, emb: np.ndarray, times: np.ndarray,
               seconds: float) -> None:
        """Write one file's shard (atomically) and record it in index.json."""
        name = self._shard_name(key)
        for suffix, arr in ((".emb.npy", emb), (".times.npy", times)):
            tmp = self.root / "shards" / (name + suffix + ".tmp")
            with open(tmp, "wb") as fh:
                np.save(fh, arr)
            os.replace(tmp, self.root / "shards" / (name + suffix))
        self.files[key] = {"size": size, "mtime_ns": mtime_ns, "shard": name,
                           "seconds": round(seconds, 3), "windows": int(emb.shape[0])}
        self._save()

    def refresh(self, quiet: bool = True) -> dict:
        """Rebuild what queries read from the shards if it is out of date: the packed copy
        (exact kind) or the approximate structure (ivf kind)."""
        if self.ann is not None:
            if self.ann.current(self._stamp()):
                return {}
            return {"ann": self.ann.sync(self.files, self.shard_rows, self._stamp(), quiet=quiet)}
        if not self._packed():
            self.pack()
        return {}

    def shard_rows(self, key: str) -> Tuple[np.ndarray, np.ndarray]:
        """(int8 rows memory-mapped, (N, 2) times) of one indexed file."""
        name = self.files[key]["shard"]
        return (np.load(self.root / "shards" / (name + ".emb.npy"), mmap_mode="r"),
                np.load(self.root / "shards" / (name + ".times.npy")))

    # ------------------------------------------------------------------ packed rows
    def _stamp(self) -> str:
        return hashlib.sha1(json.dumps(self.files, sort_keys=True).encode()).hexdigest()

    def _packed(self):
        """(emb memmap, times, owner, file keys) of the packed copy, if it matches the index."""
        meta = self.root / "packed.json"
        if not meta.exists():
            return None
        try:
            m = json.loads(meta.read_text())
        except json.JSONDecodeError:
            return None
        if m.get("stamp") != self._stamp():
            return None
        return (np.load(self.root / "packed.emb.npy", mmap_mode="r"),
                np.load(self.root / "packed.times.npy", mmap_mode="r"),
                np.load(self.root / "packed.owner.npy", mmap_mode="r"), m["files"])

    def pack(self) -> None:
        """All shards in one row-major file, so that a query is one sequential scan (the shards
        stay: re-indexing a file rewrites its shard, then the packed copy)."""
        keys = list(self.files)
        n = sum(int(self.files[k]["windows"]) for k in keys)
        D = self.bundle.embedding_dim
        tmp = {x: self.root / f"packed.{x}.npy.tmp" for x in ("emb", "times", "owner")}
        emb = np.lib.format.open_memmap(tmp["emb"], mode="w+", dtype=np.int8, shape=(n, D))
        times = np.zeros((n, 2), np.float32)
        owner = np.zeros(n, np.int32)
        pos = 0
        for i, k in enumerate(keys):
            e, t = self.shard_rows(k)
            emb[pos:pos + e.shape[0]] = e
            times[pos:pos + e.shape[0]] = t
            owner[pos:pos + e.shape[0]] = i
            pos += e.shape[0]
        emb.flush()
        del emb
        for x, arr in (("times", times), ("owner", owner)):
            with open(tmp[x], "wb") as fh:
                np.save(fh, arr)
        for x, path in tmp.items():
            os.replace(path, self.root / f"packed.{x}.npy")
        meta_tmp = self.root / "packed.json.tmp"
        meta_tmp.write_text(json.dumps({"stamp": self._stamp(), "files": keys}))
        os.replace(meta_tmp, self.root / "packed.json")

    def _drop(self, key: str) -> None:
        name = self.files.pop(key)["shard"]
        for suffix in (".emb.npy", ".times.npy"):
            try:
                (self.root / "shards" / (name + suffix)).unlink()
            except FileNotFoundError:
                pass

    # ------------------------------------------------------------------ querying
    def __len__(self) -> int:
        return len(self.files)

    @property
    def seconds(self) -> float:
        return float(sum(f["seconds"] for f in self.files.values()))

    def size_bytes(self, part: str = "all") -> int:
        """Bytes on disk: ``"shards"`` (the per-file rows), ``"search"`` (what queries read: the
        packed copy, or the approximate structure) or ``"all"``."""
        shards = sum(p.stat().st_size for p in (self.root / "shards").glob("*.npy"))
        search = (self.ann.size_bytes() if self.ann is not None
                  else sum(p.stat().st_size for p in self.root.glob("packed.*.npy")))
        return {"shards": shards, "search": search, "all": shards + search}[part]

    def embed_query(self, text: Optional[str] = None, example: Optional[Union[str, os.PathLike]] = None,
                    tts: bool = True) -> np.ndarray:
        """The query vector: a text's (joined by TTS renderings where an engine is installed and
        ``tts``, as typed keywords are: kws.anchors) or an example recording's."""
        if (text is None) == (example is None):
            raise UsageError("give a text or an example recording (one of them)")
        if text is not None:
            from kws.anchors import keyword_vector
            from kws.phonemes import pronounce

            pron = pronounce(text)
            return keyword_vector(self.bundle, pron, " ".join(pron.words) or text, tts=tts)[0]
        return self.bundle.embed_audio(trim_silence(load_audio(example, min_seconds=0.1)))

    def file_scores(self, file: str, query: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Cosine of every window of one indexed file with the query: (scores, (N, 2) times)."""
        key = file if file in self.files else str(Path(file).resolve())
        if key not in self.files:
            raise SearchIndexError(f"{file} is not in the index {self.root}")
        emb, times = self.shard_rows(key)
        q = np.asarray(query, np.float32) / _Q
        scores = np.concatenate([np.asarray(emb[s:s + 65536], np.float32) @ q
                                 for s in range(0, emb.shape[0], 65536)] or [np.zeros(0, np.float32)])
        return scores, times

    def query(self, query: np.ndarray, top: int = 10, threshold: Optional[float] = None,
              per_file: Optional[int] = None, chunk: int = 1 << 18, exact: bool = False,
              nprobe: Optional[int] = None) -> List[Hit]:
        """Best ``top`` hits over the whole index (at most ``per_file`` from one file).

        Exact kind, with the packed copy: one scan in chunks of rows, keeping each chunk's best
        windows as candidates, then merging overlapping candidates per file. Approximate kind:
        the best candidates from the FAISS index (``nprobe`` lists), merged the same way.
        ``exact``, or an out-of-date packed copy or structure (an interrupted indexing run):
        every shard is scanned."""
        keep = max(256, 40 * top)
        packed = None if exact or self.ann is not None else self._packed()
        if self.ann is not None and not exact and self.ann.current(self._stamp()):
            sc, slots = self.ann.search(query, keep, nprobe)
            keys, own, times = self.ann.locate(slots)
            return merge_candidates(keys, own, sc, times, top, per_file, threshold)
        if packed is None:
            hits: List[Hit] = []
            for key in self.files:
                scores, times = self.file_scores(key, query)
                hits += merge_hits(key, scores, times, per_file or top, threshold)
            hits.sort(key=lambda h: -h.score)
            return hits[:top]
        emb, times, owner, keys = packed
        idx, sc = scan_candidates(emb, query, keep, threshold, chunk)
        return merge_candidates(keys, np.asarray(owner[idx]), sc, np.asarray(times[idx]), top,
                                per_file, threshold)


def scan_candidates(rows: np.ndarray, query: np.ndarray, keep: int,
                    threshold: Optional[float] = None, chunk: int = 1 << 18
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """Exact scan of int8 ``rows`` (memory-mapped or not) in chunks: (row numbers, cosines) of
    each chunk's ``keep`` best rows (those at or above ``threshold``)."""
    q = np.asarray(query, np.float32) / _Q
    cand_idx, cand_s = [], []
    for s in range(0, rows.shape[0], chunk):
        sc = np.asarray(rows[s:s + chunk], np.float32) @ q
        if threshold is not None:
            sel = np.nonzero(sc >= threshold)[0]
            if sel.size > keep:
                sel = sel[np.argpartition(-sc[sel], keep)[:keep]]
        else:
            sel = np.argpartition(-sc, keep)[:keep] if sc.size > keep else np.arange(sc.size)
        cand_idx.append(sel + s)
        cand_s.append(sc[sel])
    if not cand_idx:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(cand_idx), np.concatenate(cand_s)


def merge_candidates(keys: Sequence[str], owner: np.ndarray, scores: np.ndarray, times: np.ndarray,
                     top: int, per_file: Optional[int] = None, threshold: Optional[float] = None
                     ) -> List[Hit]:
    """The ``top`` hits from candidate windows: ``owner`` indexes ``keys`` (their files), merged
    per file by :func:`merge_hits` (at most ``per_file`` a file)."""
    hits: List[Hit] = []
    for f in np.unique(owner):
        m = owner == f
        hits += merge_hits(keys[f], scores[m], times[m], per_file or top, threshold)
    hits.sort(key=lambda h: -h.score)
    return hits[:top]


def clip_hits(hits: Sequence[Hit], out_dir: Union[str, os.PathLike], context: float = 0.5
              ) -> List[Path]:
    """Cut every hit's audio with ``context`` seconds either side (within the file) into
    ``out_dir/NN_<file>_<start>-<end>.wav`` (NN: rank). Returns the paths, in rank order."""
    from kws.audio import write_wav

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


def play_clips(paths: Sequence[Path]) -> None:
    """Play clips one after the other on the default output device (sounddevice)."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:      # OSError: PortAudio library not found
        raise AudioError(f"cannot play: {exc}") from exc
    for p in paths:
        audio = load_audio(p)
        try:
            sd.play(audio, 16000)
            sd.wait()
        except Exception as exc:              # PortAudioError: no output device
            raise AudioError(f"cannot play {p.name}: {exc} (the clips are in {p.parent})") from exc


def plot_scores(index: SearchIndex, file: str, query: np.ndarray, label: str, out: str,
                hits: Sequence[Hit] = ()) -> None:
    """Score over time (best window ending near each moment) for one file, hits marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores, times = index.file_scores(file, query)
    ends = np.round(times[:, 1], 2)
    u = np.unique(ends)
    best = np.array([scores[ends == t].max() for t in u])
    fig, ax = plt.subplots(figsize=(10, 3))
    ax.plot(u, best, lw=1)
    for h in hits:
        if h.file == str(Path(file).resolve()) or h.file == file:
            ax.axvspan(h.start, h.end, color="tab:orange", alpha=0.3)
    ax.set_xlabel("time (s, window end)")
    ax.set_ylabel("cosine")
    ax.set_title(f"{label!r} in {Path(file).name}")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
