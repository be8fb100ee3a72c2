"""Archive index: the model's vectors of many hours on disk, searched by templates as the detector
matches keywords.

    python -m kws search index ~/archive --index big.archive        # build, or append new files
    python -m kws search query big.archive "elephant"                # text: TTS renderings as templates
    python -m kws search query big.archive --example clip.wav        # a recorded word or phrase

What is stored of a recording: kws.search.rows; what a query is: kws.search.terms; how it is
answered: kws.search.query; what the workers write: kws.search.shards.

Layout of an archive folder (docs/search.md):

- ``manifest.json``: written last and atomically (write a temporary file, fsync, rename). It
  names the format version (:data:`ARCHIVE_VERSION`) and the space of the rows with the model id
  (kws.search.rows.Space), lists the segments, their files and, for every other file of the
  index, its size and sha256. A folder without it, or whose files do not match it, is refused (a
  half-written index); an index of another format version or model is refused with the advice to
  index again, never searched.
- ``trained-G.faiss``: a FAISS coarse quantizer and the entries' quantizer, trained on a sample of
  the rows. A segment's lists use the newest one; when the archive has grown ``retrain_growth``
  times past the rows it was trained on, a new one is trained for the new segment, and the older
  segments keep their lists and quantizer: appending never rebuilds what is there.
- ``seg-NNNN/``: one segment per indexing run. Its recordings were split into **shards**, one per
  worker (kws.search.dist runs them on a Dask cluster): ``shard-KKK.i8`` (rows),
  ``shard-KKK.hash`` (a 32-bit hash of every row) and ``shard-KKK.json`` (its files). The
  segment's FAISS inverted-file index (kws.search.lists) holds an entry for every ``stride``-th
  row (default 1): ``context`` consecutive rows (a window, default 4) concatenated and projected
  to ``listed_dim`` dimensions (uncentred PCA, turned at random for fast-scan codes;
  ``trained-G.proj.npy``), so that the inner product of two entries is about the template score
  over ``context`` rows, with a CRC-32 of every list (``ivf-G.crc.npy``). Format 3 (``codec``
  fsM, the default) codes an entry as M codes of 4 bits (fast-scan), its lists filled in this
  process and kept in ``ivf-G.faiss``, each read when a query first scans it; format 2 (sq8,
  pqM: every second row alone, by default then) merged blocks the workers made into FAISS
  ``OnDiskInvertedLists`` (``ivf-G.ivfdata``). This kws reads and appends to both.

Integrity, with no wrong answer from damaged files: opening checks that every file listed has its
size and that the small files have their sha256; the large files are checked where a query reads
them: the CRC-32 of every inverted list it scans, and the hash of every row it scores (sha256 of
gigabytes at every open would cost seconds). ``verify()`` (``kws search verify``) checks the
sha256 of everything. Appending recordings adds a segment and rewrites only the manifest.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from kws.checksum import sha256_file
from kws.errors import ArchiveDamaged, SearchIndexError, UsageError
from kws.search.dist import cluster_workers, run_jobs
from kws.search.query import ArchiveQueries, Segment
from kws.search.rows import DEFAULT_SPACE, SPACES, Space
from kws.search.lists import c_output_muted, codec_kind, context_vectors, make_index, merge_blocks, write_lists
from kws.search.shards import (SMALL_FILE, add_shard_entries, add_shard_to_block, audio_files, check_files,
                               embed_shard, import_faiss, read_rows, save_npy, write_atomic, write_shard)

# 3: lists of fast-scan codes (codec fsM) inside the index file, memory-mapped (kws.search.lists); an index of
# another codec is written as version 2, which this kws reads and appends to as before.
# 2: rows in a space of the model (its raw front end's by default, or its head's), named with the model id; scores and
# hits as the detector's (kws.search.query). Version 1 held whitened front-end rows only.
ARCHIVE_VERSION = 3
READS = (2, 3)


@dataclass(frozen=True)
class ArchiveConfig:
    """Build settings (stored in the manifest) and query defaults."""
    vectors: str = DEFAULT_SPACE   # the space of the rows (kws.search.rows.Space): raw (default) or head
    nlist: int = 0                 # inverted lists; 0: about sqrt(listed rows), a power of two
    coarse_cells: int = 64         # top level of the two-level coarse quantizer (list centroids)
    coarse_probe: int = 8          # top-level cells searched to assign a row to a list
    stride: int = 1                # every stride-th row goes into the lists
    context: int = 4               # a listed entry: this many consecutive rows (a window), concatenated ...
    listed_dim: int = 256          # ... and projected to this many dimensions (uncentred PCA; 0: all)
    codec: str = "fs64"            # listed entries: fsM (M codes of 4 bits, fast-scan; format 3), sq8 (a byte
                                   # a dimension) or pqM (M bytes, product quantizer)
    train_rows: int = 0            # rows sampling the training; 0: 30 a list, at least 20,000
    kmeans_iter: int = 10
    retrain_growth: float = 4.0    # retrain when the archive grows this many times past its training
    min_list_rows: int = 20_000    # smaller segments (under 27 minutes) get no lists: scanned exactly
    seed: int = 0
    # query defaults
    nprobe: int = 12               # lists scanned per query vector
    k: int = 2048                  # nearest entries kept per query vector, shared by the templates
                                   # (each template's vectors keep k / templates, at least 64)
    query_step: int = 1            # every query_step-th template vector looks up rows (context 1)
    rescore: int = 2048            # proposed ends, best approximate score first, scored exactly
    spread: int = 2                # ends either side of each of them scored too
    # a query of one template (a recorded example, or a text in one voice) looks further: its
    # windows are a quarter of a text query's, and these keep it at recall@10 0.95 (docs/search.md)
    single_nprobe: int = 48
    single_k: int = 8192
    single_rescore: int = 8192

    def __post_init__(self):
        if self.nlist < 0 or self.coarse_cells < 1 or self.coarse_probe < 1 or self.stride < 1:
            raise UsageError("nlist >= 0, coarse_cells >= 1, coarse_probe >= 1 and stride >= 1 are required")
        if self.vectors not in SPACES:
            raise UsageError(f"vectors must be one of {', '.join(SPACES)}, not {self.vectors!r}")
        if self.context < 1 or not (self.listed_dim == 0 or self.listed_dim >= 8):
            raise UsageError("context >= 1 and listed_dim 0 (all) or at least 8 are required")
        if min(self.nprobe, self.k, self.query_step, self.kmeans_iter, self.rescore, self.single_nprobe,
               self.single_k, self.single_rescore) < 1 or self.spread < 0:
            raise UsageError("nprobe, k, query_step, rescore, kmeans_iter and single_nprobe, single_k, "
                             "single_rescore must be at least 1, spread at least 0")
        try:
            codec_kind(self.codec)
        except ValueError:
            raise UsageError(f"codec is sq8, pqM (M bytes an entry) or fsM (M codes of 4 bits, fast-scan), "
                             f"not {self.codec!r}") from None
        if self.min_list_rows < 0:
            raise UsageError("min_list_rows must be 0 or more")
        if self.retrain_growth <= 1:
            raise UsageError("retrain_growth must be above 1")

    def build_part(self) -> dict:
        d = asdict(self)
        for q in ("nprobe", "k", "query_step", "rescore", "spread", "single_nprobe", "single_k", "single_rescore"):
            d.pop(q)
        return d


def auto_nlist(listed_rows: int, per_root: float = 2.0) -> int:
    """About ``per_root`` sqrt(listed entries) lists, a power of two, between 16 and 65536, at
    least 39 training entries each."""
    want = 2 ** int(round(np.log2(max(16.0, per_root * np.sqrt(max(1, listed_rows))))))
    return int(max(1, min(want, 65536, listed_rows // 39 or 1)))


class ArchiveIndex(ArchiveQueries):
    """A folder of segments of int8 rows (the model's vectors) with an on-disk FAISS index (see the
    module docstring). ``ArchiveIndex(root)`` opens one (checking it) or prepares a new one."""

    def __init__(self, root: Union[str, os.PathLike], config: Optional[ArchiveConfig] = None,
                 verify: bool = False, model=None):
        """``model``: the kws model (kws.model.model.Model or its folder; default the shipped one)
        whose vectors the rows are; an index made with another model is refused."""
        from kws.search.rows import search_model

        self.root = Path(root)
        self.manifest: Optional[dict] = None
        self._segments: Optional[List[Segment]] = None
        model = search_model(model) if model is None or isinstance(model, (str, os.PathLike)) else model
        mpath = self.root / "manifest.json"
        if mpath.exists():
            try:
                m = json.loads(mpath.read_text())
            except json.JSONDecodeError as exc:
                raise ArchiveDamaged(f"{mpath}: damaged ({exc})") from exc
            if not isinstance(m, dict) or m.get("kind") != "kws-archive":
                raise SearchIndexError(f"{mpath}: not a kws archive index")
            if m.get("version") not in READS:
                v = m.get("version")
                older = isinstance(v, int) and v < min(READS)
                raise SearchIndexError(
                    f"{self.root} is a search index of format version {v}, "
                    f"{'made by an earlier' if older else 'not one this'} kws; this kws reads versions "
                    f"{' and '.join(map(str, READS))}{' (rows of the model, scored as the detector scores)' if older else ''}. "
                    f"Index the recordings again into a new folder: python -m kws search index PATH... --index NEW")
            stored = ArchiveConfig(**m["config"])
            if config is not None and config.build_part() != stored.build_part():
                raise SearchIndexError(f"{self.root} was built with {stored}; use another folder for {config}")
            self.config = config or stored
            self.space = Space(stored.vectors, model)
            if m.get("space") != self.space.name:
                raise SearchIndexError(f"{self.root} holds rows of {m.get('space')}, but this model makes "
                                       f"{self.space.name} (another model or whitening): index the "
                                       "recordings again into a new folder, or open it with its model")
            self.manifest = m
            self._check(full=verify)
        else:
            if self.root.exists() and any(self.root.iterdir()):
                raise ArchiveDamaged(f"{self.root} has no manifest.json: a half-written or foreign index. "
                                     "Delete the folder and index again")
            self.config = config or ArchiveConfig()
            self.space = Space(self.config.vectors, model)

    @property
    def space_name(self) -> str:
        return self.space.name

    @property
    def dim(self) -> int:
        return self.space.dim

    # ------------------------------------------------------------------ integrity
    def _listed(self) -> Dict[str, dict]:
        return self.manifest["checksums"] if self.manifest else {}

    def _check(self, full: bool = False) -> None:
        check_files(self.root, self._listed(), full, SMALL_FILE)

    def verify(self) -> dict:
        """sha256 of every file of the index and CRC-32 of every list. Raises ArchiveDamaged."""
        t0 = time.perf_counter()
        self._check(full=True)
        for seg in self.segments():
            if seg.lists is not None:
                seg.lists.check(np.arange(seg.lists.nlist), load=False)
        return {"files": len(self._listed()), "bytes": self.size_bytes(), "seconds": time.perf_counter() - t0}

    # ------------------------------------------------------------------ state
    @property
    def files(self) -> Dict[str, dict]:
        return self.manifest["files"] if self.manifest else {}

    def __len__(self) -> int:
        return len(self.files)

    @property
    def seconds(self) -> float:
        return float(sum(f["seconds"] for f in self.files.values()))

    @property
    def rows(self) -> int:
        return int(sum(s["rows"] for s in self.manifest["segments"])) if self.manifest else 0

    def size_bytes(self) -> int:
        return int(sum(c["size"] for c in self._listed().values()))

    def segments(self) -> List[Segment]:
        if self._segments is None:
            faiss = import_faiss() if any(s.get("ivf") for s in self.manifest["segments"]) else None
            self._segments = [Segment(self.root, e, faiss, self.files, e.get("trained"), self.dim, self.config.codec)
                              for e in self.manifest["segments"]]
        return self._segments

    # ------------------------------------------------------------------ building
    def add(self, paths: Sequence[Union[str, os.PathLike]], workers: int = 1,
            address: Optional[str] = None, quiet: bool = False, prune: bool = True,
            shards: Optional[int] = None) -> dict:
        """Index new and changed recordings under ``paths`` into a new segment, leaving the
        existing segments as they are; files gone or changed are removed (their rows no longer
        answer). ``shards`` (default: one per worker, of the local cluster of ``workers``
        processes or of the running cluster at ``address``) split the files by size. Returns
        counts and timings."""
        files = audio_files(paths)
        old = self.files
        todo, unchanged = [], 0
        for p in files:
            st = p.stat()
            e = old.get(str(p))
            if e and e["size"] == st.st_size and e["mtime_ns"] == st.st_mtime_ns:
                unchanged += 1
            else:
                todo.append((str(p), st.st_size, st.st_mtime_ns))
        gone = [k for k in old if not Path(k).exists()] if prune else []
        changed = [p for p, _, _ in todo if p in old]
        stats = {"indexed": 0, "unchanged": unchanged, "removed": len(gone), "failed": [],
                 "audio_s": 0.0, "rows": 0}
        t0 = time.perf_counter()

        def shard_jobs(seg_dir: Path, n_shards: int):
            buckets = [[] for _ in range(n_shards)]
            load = [0] * n_shards
            for item in sorted(todo, key=lambda t: -t[1]):        # largest first, to the lightest
                i = int(np.argmin(load))
                buckets[i].append(item)
                load[i] += item[1]
            return [(str(seg_dir / f"shard-{i:03d}"), sorted(b)) for i, b in enumerate(buckets) if b]

        where = (self.space.kind, str(self.space.model.path), self.space.name)

        def embed(jobs):
            return run_jobs(embed_shard, [job + where for job in jobs], workers, address, quiet,
                            "embedding shards")

        if not todo:                       # nothing to embed: at most files to forget
            if gone and self.manifest is not None:
                m = json.loads(json.dumps(self.manifest))
                for k in gone:
                    m["files"].pop(k, None)
                write_atomic(self.root / "manifest.json", json.dumps(m, indent=1).encode())
                self.manifest, self._segments = m, None
            stats.update({"segment": None, "rows_added": 0, "retrained": False,
                          "build_s": time.perf_counter() - t0})
            return stats
        if shards is None:
            if address:
                shards = cluster_workers(address)
            else:
                shards = max(1, workers)
        rep = self._new_segment(lambda seg_dir: shard_jobs(seg_dir, max(1, shards)), embed,
                                remove=gone + changed, quiet=quiet, workers=workers, address=address)
        for meta in rep.pop("shard_meta"):
            stats["failed"] += meta.get("failed", [])
            stats["indexed"] += len(meta["files"])
            stats["audio_s"] += sum(f[3] for f in meta["files"])
            stats["rows"] += meta["rows"]
        stats.update(rep)
        stats["build_s"] = time.perf_counter() - t0
        return stats

    def add_rows(self, shards: Sequence[Iterable[Tuple[str, np.ndarray, float]]],
                 workers: int = 1, address: Optional[str] = None, quiet: bool = True) -> dict:
        """Add recordings given as rows already: ``shards`` holds, per shard, an iterable of
        (key, int8 rows, seconds). The same segment, shards and lists as :meth:`add` (benchmarks
        use it for vectors made without audio; the shard files are written here)."""
        shards = list(shards)

        def jobs(seg_dir: Path):
            return [(str(seg_dir / f"shard-{i:03d}"), i) for i in range(len(shards))]

        def checked(items):
            for k, r, s in items:
                if r.ndim != 2 or r.shape[1] != self.dim or r.dtype != np.int8:
                    raise UsageError(f"rows of {k} are {r.dtype} {r.shape}, not int8 (n, {self.dim})")
                yield k, r, s, 0, 0

        def write(js):
            for job in js:
                meta = write_shard(Path(job[0]), checked(shards[job[1]]))
                yield job, meta
        t0 = time.perf_counter()
        rep = self._new_segment(jobs, write, remove=[], quiet=quiet, workers=workers, address=address)
        rep.pop("shard_meta")
        rep["build_s"] = time.perf_counter() - t0
        return rep

    def _new_segment(self, make_jobs, run_jobs, remove: List[str], quiet: bool, workers: int,
                     address: Optional[str]) -> dict:
        """Run the shard jobs into a new segment, (re)build the lists that need it, then replace
        the manifest. Files are only ever added under new names, so the old manifest and every
        file it lists stay valid until the new manifest replaces it (an interrupted run leaves
        the index as it was; the next run removes what it left)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._clean_orphans()
        version = ARCHIVE_VERSION if codec_kind(self.config.codec)[0] == "fs" else 2
        m = self.manifest or {"kind": "kws-archive", "version": version, "space": self.space.name,
                              "model_id": self.space.model.model_id, "dim": self.dim,
                              "config": asdict(self.config), "segments": [], "files": {},
                              "checksums": {}, "trained": None, "trained_rows": 0, "generation": 0}
        m = json.loads(json.dumps(m))               # a copy: the old manifest stays valid until replaced
        gen = m["generation"]
        m["generation"] = gen + 1
        name = f"seg-{gen:04d}"
        seg_dir = self.root / name
        seg_dir.mkdir()
        jobs = make_jobs(seg_dir)
        metas: Dict[str, dict] = {}
        timing = {}
        t0 = time.perf_counter()
        for job, meta in run_jobs(jobs):
            metas[job[0]] = meta
        timing["shards_s"] = time.perf_counter() - t0
        shards, first = [], 0
        for job in jobs:
            meta = metas[job[0]]
            shards.append({"name": Path(job[0]).name, "first": first, "rows": meta["rows"]})
            first += meta["rows"]
        for k in remove:
            m["files"].pop(k, None)
        for sh, job in zip(shards, jobs):
            for key, f0, n, sec, size, mtime_ns in metas[job[0]]["files"]:
                m["files"][key] = {"segment": name, "seconds": sec, "rows": n, "size": size,
                                   "mtime_ns": mtime_ns}
        seg = {"name": name, "rows": first, "shards": shards, "ivf": None}
        total = sum(s["rows"] for s in m["segments"]) + first
        report = {"segment": name, "rows_added": first, "retrained": False}
        if first and first >= max(1, self.config.min_list_rows):      # FAISS is needed from here on only
            faiss = import_faiss()
            # the segment's lists use the newest quantizer, or a new one trained on a sample of every
            # row once the archive has grown past it; the lists of older segments stay as they are
            retrain = (m["trained"] is None or total > self.config.retrain_growth * m["trained_rows"])
            t0 = time.perf_counter()
            if retrain:
                m["trained"] = f"trained-{gen:04d}.faiss"
                self._train(m["segments"] + [seg], m["trained"], faiss)
                m["trained_rows"] = total
                report["retrained"] = True
            timing["train_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            seg["trained"] = m["trained"]
            seg["ivf"] = self._build_lists(seg, m["trained"], f"ivf-{gen:04d}", faiss, workers, address, quiet)
            timing["lists_s"] = time.perf_counter() - t0
        m["segments"].append(seg)
        m["config"] = asdict(self.config)
        t0 = time.perf_counter()
        m["checksums"] = self._checksums(m)
        timing["checksums_s"] = time.perf_counter() - t0
        write_atomic(self.root / "manifest.json", json.dumps(m, indent=1).encode())
        self.manifest, self._segments = m, None
        self._clean_orphans()
        report.update(timing)
        report["shard_meta"] = list(metas.values())
        return report

    def _checksums(self, m: dict) -> Dict[str, dict]:
        old = self._listed()
        out = {}
        trained = sorted({s["trained"] for s in m["segments"] if s.get("trained")})
        paths = [Path(t) for name in trained for t in (name, name.replace(".faiss", ".proj.npy"))]
        for s in m["segments"]:
            for sh in s["shards"]:
                paths += [Path(s["name"]) / (sh["name"] + x) for x in (".i8", ".hash", ".json")]
            if s["ivf"]:
                ondisk = codec_kind(m["config"]["codec"])[0] != "fs"      # fast-scan lists: in the .faiss
                paths += [Path(s["name"]) / (s["ivf"] + x) for x in (".faiss", ".ivfdata", ".crc.npy")
                          if x != ".ivfdata" or ondisk]
        for rel in paths:
            key = rel.as_posix()
            stamp = _stamp(self.root / rel)
            if key in old and old[key].get("stamp") == stamp:
                out[key] = old[key]                # the same file as when it was summed
            else:
                out[key] = {"size": stamp[0], "sha256": sha256_file(self.root / rel), "stamp": stamp}
        return out

    def _clean_orphans(self) -> None:
        """Remove what an interrupted or superseded run left: segments and files that the
        manifest does not list."""
        listed = set(self._listed())
        segs = {s["name"] for s in (self.manifest or {}).get("segments", [])}
        for p in self.root.iterdir() if self.root.exists() else ():
            if p.is_dir() and p.name.startswith("seg-"):
                if p.name not in segs:
                    shutil.rmtree(p)
                    continue
                for q in p.iterdir():
                    if f"{p.name}/{q.name}" not in listed:
                        q.unlink()
            elif p.is_file() and p.name not in listed and p.name != "manifest.json":
                p.unlink()

    def _sample(self, segs: List[dict], want: int) -> np.ndarray:
        """About ``want`` entries (``context`` rows from a random start, concatenated) drawn
        evenly from every shard of ``segs``, as float32."""
        rng = np.random.default_rng(self.config.seed)
        total = sum(s["rows"] for s in segs)
        share = min(1.0, want / max(1, total))
        parts = []
        for s in segs:
            for sh in s["shards"]:
                x = read_rows(self.root / s["name"] / (sh["name"] + ".i8"), sh["rows"], self.dim)
                take = sh["rows"] if share >= 1 else int(rng.binomial(sh["rows"], share))
                if take:
                    idx = np.sort(rng.choice(sh["rows"], take, replace=False))
                    parts.append(context_vectors(x, idx, self.config.context,
                                                 np.eye(self.config.context * self.dim, dtype=np.float32)))
        return np.concatenate(parts)

    def _train(self, segs: List[dict], name: str, faiss) -> None:
        """Coarse quantizer (two levels: spherical k-means lists, found through a small IVF over
        their centroids, so that assigning a row costs a few hundred inner products, not nlist)
        and the entries' codec (8-bit scalar quantizer, or a product quantizer), trained on a
        sample of rows; written to ``name``."""
        c = self.config
        total = sum(s["rows"] for s in segs)
        fast = codec_kind(c.codec)[0] == "fs"
        # fast-scan lists are scanned in a few nanoseconds an entry: fewer, longer lists
        nlist = c.nlist or auto_nlist(total // c.stride, 1.0 if fast else 2.0)
        want = c.train_rows or max(20_000, 30 * nlist)
        z = self._sample(segs, want)
        index, P = trained_index(faiss, z, nlist, c.listed_dim or c.context * self.dim, c.codec, c.seed,
                                 c.kmeans_iter, c.coarse_cells, c.coarse_probe)
        save_npy(self.root / name.replace(".faiss", ".proj.npy"), P)
        tmp = self.root / (name + ".tmp")
        faiss.write_index(index, str(tmp))
        os.replace(tmp, self.root / name)

    def _build_lists(self, seg: dict, trained: str, ivf: str, faiss, workers: int,
                     address: Optional[str], quiet: bool) -> str:
        """The segment's lists ``ivf`` with a CRC-32 of every list (.crc.npy). Fast-scan lists
        (fsM) are filled here, shard by shard; the others from blocks (a shard's entries in a
        copy of the trained index, made on the workers) merged on disk. Returns ``ivf``."""
        from kws.progress import progress

        d = self.root / seg["name"]
        jobs = [(str(self.root / trained), str(d / (sh["name"] + ".i8")), sh["rows"], self.dim, sh["first"],
                 self.config.stride, self.config.context, str(d / f"{sh['name']}.{ivf}.block"))
                for sh in seg["shards"] if sh["rows"]]
        if codec_kind(self.config.codec)[0] == "fs":
            index = faiss.read_index(str(self.root / trained))
            P = np.load(self.root / trained.replace(".faiss", ".proj.npy"))
            for job in progress(jobs, "shard lists", quiet=quiet or len(jobs) < 2, unit="shard"):
                add_shard_entries(index, P, *job[1:7])
            crcs = write_lists(faiss, index, d / ivf)
        else:
            blocks = [out for _, out in run_jobs(add_shard_to_block, jobs, workers, address, quiet, "shard lists")]
            crcs = merge_blocks(faiss, self.root / trained, blocks, d / ivf)
            for b in blocks:
                Path(b).unlink()
        save_npy(d / (ivf + ".crc.npy"), crcs)
        return ivf


def trained_index(faiss, z: np.ndarray, nlist: int, listed_dim: int, codec: str, seed: int, kmeans_iter: int,
                  coarse_cells: int, coarse_probe: int):
    """An untrained-lists index trained on the sampled entries ``z`` (rows: entries before
    projection): the uncentred PCA to ``listed_dim`` dimensions (turned at random for fast-scan
    codes), ``nlist`` spherical k-means lists found through a two-level coarse quantizer
    (``coarse_cells`` cells over the list centroids, ``coarse_probe`` searched), and the entries'
    codec. Returns (index, projection)."""
    # uncentred PCA: inner products, and so the ranking, survive the projection
    w, v = np.linalg.eigh(z.astype(np.float64).T @ z.astype(np.float64) / max(1, z.shape[0]))
    P = v[:, ::-1][:, :listed_dim]
    if codec_kind(codec)[0] == "fs":  # turned at random: every 4-bit sub-quantizer gets an equal share of the variance
        R = np.linalg.qr(np.random.default_rng(seed).standard_normal((P.shape[1], P.shape[1])))[0]
        P = P @ R
    P = np.ascontiguousarray(P, dtype=np.float32)
    x = np.ascontiguousarray(z @ P)
    d = P.shape[1]
    nlist = max(1, min(nlist, x.shape[0] // 39 or 1))
    km = faiss.Kmeans(d, nlist, niter=kmeans_iter, spherical=True, seed=seed,
                      verbose=False, max_points_per_centroid=256)
    with c_output_muted():           # FAISS warns of few training points on small archives
        km.train(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))
    cells = max(1, min(coarse_cells, nlist // 39 or 1))
    top = faiss.IndexFlatIP(d)
    quant = faiss.IndexIVFFlat(top, d, cells, faiss.METRIC_INNER_PRODUCT)
    quant.cp.spherical = True
    quant.cp.seed = seed
    with c_output_muted():
        quant.train(km.centroids)
    quant.add(km.centroids)
    quant.nprobe = min(coarse_probe, cells)
    index = make_index(faiss, codec, quant, d, nlist)
    with c_output_muted():
        index.train(x)
    return index, P


def _stamp(path: Path) -> List[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]
