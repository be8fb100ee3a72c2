"""Archive index: speech-embedding vectors of many hours on disk, searched by templates.

    python -m kws search index ~/archive --index big.archive        # build, or append new files
    python -m kws search query big.archive "elephant"                # text: TTS renderings as templates
    python -m kws search query big.archive --example clip.wav        # a recorded word or phrase

Representation: every recording becomes one 96-d speech-embedding vector per 80 ms (kws.model.backbone),
whitened (the mean and covariance of real read speech, ``kws/assets/search/whitening.npz`` beside the front
end: raw vectors share a large common part, mean cosine 0.63, which drowns the word in the
score; held-out read speech measures 21 % mean EER whitened against 33-38 % raw, docs/search.md),
stored as int8 rows (unit vectors x 127, 96 bytes a vector, 4.3 MB an hour). A query is a set of
**templates**, each a sequence of L such vectors (a recording of the term, or TTS renderings of
its text); a template ending at position e of a recording scores

    s(e) = (1/L) sum_j cos(T[j], x[e - L + 1 + j])

(the diagonal of the cosine matrix), and a hit scores the best of its templates.

Layout of an archive folder (docs/search.md):

- ``manifest.json``: written last and atomically (write a temporary file, fsync, rename). It
  lists the segments, their files and, for every other file of the index, its size and sha256.
  A folder without it, or whose files do not match it, is refused (a half-written index).
- ``trained.faiss``: the FAISS coarse quantizer and scalar quantizer, trained once on a sample of
  rows (retrained, with the lists rebuilt from the stored rows, when the archive has grown
  ``retrain_growth`` times past the rows it was trained on).
- ``seg-NNNN/``: one segment per indexing run. Its recordings were split into **shards**, one per
  worker (kws.search.dist runs them on a Dask cluster): ``shard-KKK.i8`` (rows),
  ``shard-KKK.hash`` (a 32-bit hash of every row) and ``shard-KKK.json`` (its files). Every
  shard's rows were added to a copy of the trained index, and these blocks were merged into one
  FAISS inverted-file index whose lists stay on disk, memory-mapped (``ivf-G.faiss`` +
  ``ivf-G.ivfdata``, FAISS ``OnDiskInvertedLists``), with a CRC-32 of every list
  (``ivf-G.crc.npy``). The lists hold an entry for every ``stride``-th row (default 2:
  neighbouring vectors overlap by 90 % of their 0.78 s span): ``context`` consecutive rows
  concatenated and projected to ``listed_dim`` dimensions (uncentred PCA, ``trained-G.proj.npy``),
  so that the inner product of two entries is about the template score over ``context`` rows;
  coded with 8 bits a dimension.

Search: each template's entries (every ``query_step``-th start) look up their ``k`` nearest
entries in the ``nprobe`` nearest lists; an entry found at position p for the template's start j
proposes the template end p + L - 1 - j and its neighbours within the stride. Every proposed end
is then scored exactly with s(e) from the memory-mapped rows, and overlapping hits of a file are
merged. The exact scan (``exact=True``) computes s(e) at every position of the archive, the
reference.

Integrity, with no wrong answer from damaged files: opening checks that every file listed has its
size and that the small files have their sha256; the large files are checked where a query reads
them: the CRC-32 of every inverted list it scans, and the hash of every row it scores (sha256 of
gigabytes at every open would cost seconds). ``verify()`` (``kws search verify``) checks the
sha256 of everything. Appending recordings adds a segment and rewrites only the manifest.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from kws.checksum import sha256_file
from kws.errors import MissingExtra, SearchIndexError, UsageError

ARCHIVE_VERSION = 1
DIM = 96
HOP_S = 0.08                    # seconds between vectors
SPAN_S = 12512 / 16000          # audio seen by one vector (0.782 s)
PAD_S = 0.4                     # silence added before and after a recording (edge words get vectors)
_Q = 127.0
_HASH_W = np.random.default_rng(20261202).integers(1, 2 ** 20, DIM).astype(np.float64)
SMALL_FILE = 64 << 20           # files up to this size get their sha256 checked at every open
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif")


class ArchiveDamaged(SearchIndexError):
    """An archive whose files do not match their checksums, or that was not finished."""


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


@dataclass(frozen=True)
class ArchiveConfig:
    """Build settings (stored in the manifest) and query defaults."""
    nlist: int = 0                 # inverted lists; 0: about sqrt(listed rows), a power of two
    coarse_cells: int = 64         # top level of the two-level coarse quantizer (list centroids)
    coarse_probe: int = 8          # top-level cells searched to assign a row to a list
    stride: int = 2                # every stride-th row goes into the lists
    context: int = 1               # a listed entry: this many consecutive rows, concatenated ...
    listed_dim: int = 96           # ... and projected to this many dimensions (uncentred PCA)
    train_rows: int = 0            # rows sampling the training; 0: 30 a list, at least 20,000
    kmeans_iter: int = 10
    retrain_growth: float = 4.0    # retrain when the archive grows this many times past its training
    min_list_rows: int = 20_000    # smaller segments (under 27 minutes) get no lists: scanned exactly
    seed: int = 0
    # query defaults
    nprobe: int = 16               # lists scanned per query vector
    k: int = 1024                  # nearest entries kept per query vector, shared by the templates
                                   # (each template's vectors keep k / templates, at least 64)
    query_step: int = 1            # every query_step-th template vector looks up rows

    def __post_init__(self):
        if self.nlist < 0 or self.coarse_cells < 1 or self.coarse_probe < 1 or self.stride < 1:
            raise UsageError("nlist >= 0, coarse_cells >= 1, coarse_probe >= 1 and stride >= 1 are required")
        if self.context < 1 or not 8 <= self.listed_dim <= self.context * DIM:
            raise UsageError(f"context >= 1 and 8 <= listed_dim <= context x {DIM} are required")
        if min(self.nprobe, self.k, self.query_step, self.kmeans_iter) < 1:
            raise UsageError("nprobe, k, query_step and kmeans_iter must be at least 1")
        if self.min_list_rows < 0:
            raise UsageError("min_list_rows must be 0 or more")
        if self.retrain_growth <= 1:
            raise UsageError("retrain_growth must be above 1")

    def build_part(self) -> dict:
        d = asdict(self)
        for q in ("nprobe", "k", "query_step"):
            d.pop(q)
        return d


@dataclass
class Template:
    """L vectors (unit rows, float32) and where the term lies in them: seconds from the start of
    the first vector's span to the term's start and end."""
    vectors: np.ndarray
    start_s: float
    end_s: float
    label: str = ""

    def __post_init__(self):
        v = np.asarray(self.vectors, np.float32)
        if v.ndim != 2 or v.shape[1] != DIM or v.shape[0] < 1:
            raise UsageError(f"a template is (L, {DIM}) vectors with L >= 1, not {v.shape}")
        self.vectors = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


# ---------------------------------------------------------------------------- vectors
_BACKBONE = {}


def default_backbone():
    """The shipped speech-embedding front end (the model's, kws/assets/model), loaded once."""
    from kws.model.backbone import Backbone, as_files

    if "b" not in _BACKBONE:
        _BACKBONE["b"] = Backbone(as_files(ASSETS / "model"))
    return _BACKBONE["b"]


ASSETS = Path(__file__).resolve().parents[1] / "assets"
WHITENING = ASSETS / "search" / "whitening.npz"


def backbone_id() -> str:
    """Names the front end and whitening the rows were made with (sha256, first 16 digits)."""
    h = hashlib.sha256((ASSETS / "model" / "backbone.onnx").read_bytes())
    h.update(WHITENING.read_bytes())
    return "speech_embedding-whitened-" + h.hexdigest()[:16]


def fit_whitening(vectors: np.ndarray, eps: float = 1e-3) -> Dict[str, np.ndarray]:
    """Mean and whitening matrix of raw front-end vectors (each first scaled to unit length):
    eigenvectors of the covariance over sqrt(eigenvalue + eps * largest)."""
    x = np.asarray(vectors, np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    mean = x.mean(0)
    w, v = np.linalg.eigh(np.cov((x - mean).T))
    return {"mean": mean.astype(np.float32), "W": (v / np.sqrt(w + eps * w.max())).astype(np.float32)}


_WHITE: dict = {}


def whiten(v: np.ndarray) -> np.ndarray:
    """Raw front-end vectors (n, 96) -> whitened unit vectors (float32)."""
    if "w" not in _WHITE:
        z = np.load(WHITENING)
        _WHITE["w"] = (z["mean"].astype(np.float32), z["W"].astype(np.float32))
    mean, W = _WHITE["w"]
    v = np.asarray(v, np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    y = (v - mean) @ W
    return y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)


def quantize_rows(v: np.ndarray) -> np.ndarray:
    """Unit rows (scaled to unit length here) as int8, x 127."""
    v = np.asarray(v, np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return np.clip(np.round(v * _Q), -127, 127).astype(np.int8)


def to_rows(raw: np.ndarray) -> np.ndarray:
    """Raw front-end vectors -> the int8 rows an archive stores (whitened, unit, x 127)."""
    return quantize_rows(whiten(raw))


def backbone_vectors(audio: np.ndarray, backbone=None, pad_s: float = PAD_S) -> np.ndarray:
    """Raw front-end vectors of a recording with ``pad_s`` of silence either side."""
    b = backbone or default_backbone()
    pad = np.zeros(int(round(pad_s * 16000)), np.float32)
    return b(np.concatenate([pad, np.asarray(audio, np.float32).reshape(-1), pad]))


def audio_rows(audio: np.ndarray, backbone=None) -> np.ndarray:
    """int8 rows of one recording: the vectors of the audio with PAD_S of silence either side;
    row i sees the recording's seconds [HOP_S i - PAD_S, HOP_S i - PAD_S + SPAN_S)."""
    return to_rows(backbone_vectors(audio, backbone))


TEMPLATE_PAD_S = 0.25        # silence around a recorded example (held-out read speech: 0.25 > 0.1, 0.4)


def template_from_audio(audio: np.ndarray, label: str = "", backbone=None, trim: bool = True,
                        pad_s: float = TEMPLATE_PAD_S) -> Template:
    """A recorded word or phrase as a template: leading and trailing silence trimmed, then
    ``pad_s`` of silence added either side (at least enough for one vector)."""
    from kws.audio.io import AudioError, trim_silence

    x = trim_silence(np.asarray(audio, np.float32)) if trim else np.asarray(audio, np.float32)
    if x.size < 1600:
        raise AudioError("an example must hold at least 0.1 s of sound")
    pad = round(max(pad_s, (SPAN_S - x.size / 16000) / 2 + 0.001) * 16000) / 16000
    rows = to_rows(backbone_vectors(x, backbone, pad))
    return Template(rows.astype(np.float32) / _Q, pad, pad + x.size / 16000, label)


def templates_from_text(text: str, voices: int = 8, backbone=None) -> List[Template]:
    """Templates of a typed term: Kokoro renderings (kws.enroll.kokoro, as keywords are rendered) in
    ``voices`` of its 28 voices, spread over the list."""
    from kws.enroll import kokoro
    from kws.enroll.phonemes import pronounce

    phonemes = kokoro.pronunciation_phonemes(pronounce(text))
    all_r = kokoro.default_renderings()
    pick = np.unique(np.linspace(0, len(all_r) - 1, max(1, min(voices, len(all_r)))).round().astype(int))
    out = []
    for i in pick:
        audio = kokoro.render(phonemes, all_r[i])
        if audio is not None and audio.size >= 1600:
            out.append(template_from_audio(audio, text, backbone))
    if not out:
        raise UsageError(f"no rendering of {text!r} could be made")
    return out


def row_hash(rows: np.ndarray) -> np.ndarray:
    """A 32-bit hash of each int8 row (a random linear form modulo a prime): any one changed byte
    changes it, and most other damage does."""
    # |sum| < 96 * 127 * 2**20 < 2**34: exact in float64, so BLAS computes it exactly
    h = (np.asarray(rows, np.int8).astype(np.float64) @ _HASH_W).astype(np.int64)
    return (h % 4294967291).astype(np.uint32)


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


def diagonal_scores(x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """s(e) for every end e = L-1 .. n-1 of unit rows ``x`` (n, D) and template ``T`` (L, D)."""
    L, n = T.shape[0], x.shape[0]
    if n < L:
        return np.zeros(0, np.float32)
    G = x @ T.T                                   # (n, L)
    s = np.zeros(n - L + 1, np.float32)
    for j in range(L):
        s += G[j:n - L + 1 + j, j]
    return s / L


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _save_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, arr)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- shards (workers)
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
    _write_atomic(path.with_name(path.name + ".hash"),
                  (np.concatenate(hashes) if hashes else np.zeros(0, np.uint32)).tobytes())
    os.replace(tmp, path.with_name(path.name + ".i8"))
    meta = {"rows": n, "files": entries}
    _write_atomic(path.with_name(path.name + ".json"), json.dumps(meta).encode())
    return meta


def embed_shard(path: str, items: List[Tuple[str, int, int]]) -> dict:
    """Runs on a worker: embed the recordings ``items`` (path, size, mtime_ns) into the shard
    ``path``. Unreadable files are listed under ``failed``. Re-running it rewrites the shard."""
    from kws.audio.io import AudioError, load_audio

    failed = []

    def gen():
        for p, size, mtime_ns in items:
            try:
                audio = load_audio(p)
            except AudioError as exc:
                failed.append(str(exc))
                continue
            yield str(p), audio_rows(audio), audio.size / 16000, size, mtime_ns
    meta = write_shard(Path(path), gen())
    meta["failed"] = failed
    meta["backbone"] = backbone_id()
    return meta


def _read_rows(path: Path, rows: int) -> np.ndarray:
    if rows == 0:
        return np.zeros((0, DIM), np.int8)
    return np.memmap(path, np.int8, "r", shape=(rows, DIM))


def context_vectors(x: np.ndarray, at: np.ndarray, context: int, P: np.ndarray) -> np.ndarray:
    """Listed entries of unit rows ``x`` (float or int8 x 127) at positions ``at``: rows
    at .. at + context - 1 (the last row repeated past the end) concatenated, then projected by
    ``P``. The inner product of two such entries is about the sum of the cosines of their rows,
    position by position (the diagonal of the template score over ``context`` rows)."""
    n = x.shape[0]
    idx = np.minimum(at[:, None] + np.arange(context)[None], n - 1)
    z = np.asarray(x[idx.ravel()], np.float32).reshape(at.size, context * DIM)
    if x.dtype == np.int8:
        z /= _Q
    return np.ascontiguousarray(z @ P)


def add_shard_to_block(trained_path: str, shard_i8: str, rows: int, first_id: int, stride: int,
                       context: int, out: str) -> str:
    """Runs on a worker: add the entries of every ``stride``-th row of a shard (ids ``first_id`` +
    row) to a copy of the trained index and write it to ``out`` (atomically)."""
    faiss = import_faiss()
    index = faiss.read_index(trained_path)
    P = np.load(trained_path.replace(".faiss", ".proj.npy"))
    x = _read_rows(Path(shard_i8), rows)
    step = 1 << 17
    for s in range(0, rows, step):
        sel = np.arange(s + (-s) % stride, min(rows, s + step), stride)
        if sel.size:
            a, b = int(sel[0]), min(rows, int(sel[-1]) + context)
            z = context_vectors(np.asarray(x[a:b]), sel - a, context, P)
            index.add_with_ids(z, (sel + first_id).astype(np.int64))
    faiss.write_index(index, out + ".tmp")
    os.replace(out + ".tmp", out)
    return out


# ---------------------------------------------------------------------------- the archive
class _Segment:
    """One segment, open for queries."""

    def __init__(self, root: Path, entry: dict, faiss, files: Dict[str, dict], trained: Optional[str]):
        self.root = root / entry["name"]
        self.entry = entry
        self.shards = entry["shards"]
        self.firsts = np.array([s["first"] for s in self.shards], np.int64)   # segment row ids
        self.rows = [_read_rows(self.root / (s["name"] + ".i8"), s["rows"]) for s in self.shards]
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
            with _c_output_muted():
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


def list_crcs(index) -> np.ndarray:
    import faiss

    ivf = faiss.extract_index_ivf(index)
    il = ivf.invlists
    out = np.zeros(ivf.nlist, np.uint32)
    for l in range(ivf.nlist):
        n = il.list_size(l)
        if n:
            codes = faiss.rev_swig_ptr(il.get_codes(l), n * il.code_size)
            ids = faiss.rev_swig_ptr(il.get_ids(l), n)
            out[l] = zlib.crc32(ids, zlib.crc32(codes))
    return out


def auto_nlist(listed_rows: int) -> int:
    """About 2 sqrt(listed entries) lists, a power of two, between 16 and 65536, at least 39
    training entries each."""
    want = 2 ** int(round(np.log2(max(16.0, 2 * np.sqrt(max(1, listed_rows))))))
    return int(max(1, min(want, 65536, listed_rows // 39 or 1)))


class ArchiveIndex:
    """A folder of segments of int8 speech-embedding rows with an on-disk FAISS index (see the
    module docstring). ``ArchiveIndex(root)`` opens one (checking it) or prepares a new one."""

    def __init__(self, root: Union[str, os.PathLike], config: Optional[ArchiveConfig] = None,
                 verify: bool = False):
        self.root = Path(root)
        self.manifest: Optional[dict] = None
        self._segments: Optional[List[_Segment]] = None
        mpath = self.root / "manifest.json"
        if mpath.exists():
            try:
                m = json.loads(mpath.read_text())
            except json.JSONDecodeError as exc:
                raise ArchiveDamaged(f"{mpath}: damaged ({exc})") from exc
            if m.get("kind") != "kws-archive" or m.get("version") != ARCHIVE_VERSION:
                raise SearchIndexError(f"{mpath}: not a kws archive index of version {ARCHIVE_VERSION}")
            if m.get("backbone") != backbone_id():
                raise SearchIndexError(f"{self.root} was built with the front end {m.get('backbone')}, "
                                       f"not {backbone_id()}: re-index into a new folder")
            stored = ArchiveConfig(**m["config"])
            if config is not None and config.build_part() != stored.build_part():
                raise SearchIndexError(f"{self.root} was built with {stored}; use another folder for {config}")
            self.config = config or stored
            self.manifest = m
            self._check(full=verify)
        else:
            if self.root.exists() and any(self.root.iterdir()):
                raise ArchiveDamaged(f"{self.root} has no manifest.json: a half-written or foreign index. "
                                     "Delete the folder and index again")
            self.config = config or ArchiveConfig()

    # ------------------------------------------------------------------ integrity
    def _listed(self) -> Dict[str, dict]:
        return self.manifest["checksums"] if self.manifest else {}

    def _check(self, full: bool = False) -> None:
        for rel, c in self._listed().items():
            p = self.root / rel
            try:
                size = p.stat().st_size
            except FileNotFoundError:
                raise ArchiveDamaged(f"{p} is missing: the index is incomplete; rebuild it") from None
            if size != c["size"]:
                raise ArchiveDamaged(f"{p}: {size} bytes, the manifest says {c['size']} "
                                     "(half-written or damaged): rebuild the index")
            if (full or size <= SMALL_FILE) and sha256_file(p) != c["sha256"]:
                raise ArchiveDamaged(f"{p} does not match its sha256 (damaged): rebuild the index")

    def verify(self) -> dict:
        """sha256 of every file of the index and CRC-32 of every list. Raises ArchiveDamaged."""
        t0 = time.perf_counter()
        self._check(full=True)
        for seg in self.segments():
            if seg.index is not None:
                seg.check_lists(np.arange(seg.crc.size))
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

    def segments(self) -> List[_Segment]:
        if self._segments is None:
            faiss = import_faiss() if any(s.get("ivf") for s in self.manifest["segments"]) else None
            self._segments = [_Segment(self.root, e, faiss, self.files, self.manifest["trained"])
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

        def embed(jobs):
            return _run(embed_shard, jobs, workers, address, quiet, "embedding shards")

        if not todo:                       # nothing to embed: at most files to forget
            if gone and self.manifest is not None:
                m = json.loads(json.dumps(self.manifest))
                for k in gone:
                    m["files"].pop(k, None)
                _write_atomic(self.root / "manifest.json", json.dumps(m, indent=1).encode())
                self.manifest, self._segments = m, None
            stats.update({"segment": None, "rows_added": 0, "retrained": False,
                          "build_s": time.perf_counter() - t0})
            return stats
        if shards is None:
            if address:
                from kws.search.dist import cluster_workers

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

        def write(js):
            for job in js:
                meta = write_shard(Path(job[0]), ((k, r, s, 0, 0) for k, r, s in shards[job[1]]))
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
        from kws.progress import progress

        self.root.mkdir(parents=True, exist_ok=True)
        self._clean_orphans()
        m = self.manifest or {"kind": "kws-archive", "version": ARCHIVE_VERSION, "backbone": backbone_id(),
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
        if total >= max(1, self.config.min_list_rows):      # FAISS is needed from here on only
            faiss = import_faiss()
            retrain = (m["trained"] is None or total > self.config.retrain_growth * m["trained_rows"])
            t0 = time.perf_counter()
            if retrain:
                m["trained"] = f"trained-{gen:04d}.faiss"
                self._train(m["segments"] + [seg], m["trained"], faiss)
                m["trained_rows"] = total
                report["retrained"] = True
            timing["train_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            redo = m["segments"] + [seg] if retrain else [seg]
            for s in progress(redo, "inverted lists", quiet=quiet or len(redo) == 1, unit="segment"):
                s["ivf"] = (self._build_lists(s, m["trained"], f"ivf-{gen:04d}", faiss, workers, address, quiet)
                            if s["rows"] and s["rows"] >= self.config.min_list_rows else None)
            timing["lists_s"] = time.perf_counter() - t0
        m["segments"].append(seg)
        m["config"] = asdict(self.config)
        t0 = time.perf_counter()
        m["checksums"] = self._checksums(m)
        timing["checksums_s"] = time.perf_counter() - t0
        _write_atomic(self.root / "manifest.json", json.dumps(m, indent=1).encode())
        self.manifest, self._segments = m, None
        self._clean_orphans()
        report.update(timing)
        report["shard_meta"] = list(metas.values())
        return report

    def _checksums(self, m: dict) -> Dict[str, dict]:
        old = self._listed()
        out = {}
        paths = [Path(m["trained"]), Path(m["trained"].replace(".faiss", ".proj.npy"))] if m["trained"] else []
        for s in m["segments"]:
            for sh in s["shards"]:
                paths += [Path(s["name"]) / (sh["name"] + x) for x in (".i8", ".hash", ".json")]
            if s["ivf"]:
                paths += [Path(s["name"]) / (s["ivf"] + x) for x in (".faiss", ".ivfdata", ".crc.npy")]
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
                x = _read_rows(self.root / s["name"] / (sh["name"] + ".i8"), sh["rows"])
                take = sh["rows"] if share >= 1 else int(rng.binomial(sh["rows"], share))
                if take:
                    idx = np.sort(rng.choice(sh["rows"], take, replace=False))
                    parts.append(context_vectors(x, idx, self.config.context,
                                                 np.eye(self.config.context * DIM, dtype=np.float32)))
        return np.concatenate(parts)

    def _train(self, segs: List[dict], name: str, faiss) -> None:
        """Coarse quantizer (two levels: spherical k-means lists, found through a small IVF over
        their centroids, so that assigning a row costs a few hundred inner products, not nlist)
        and the 8-bit scalar quantizer, trained on a sample of rows; written to ``name``."""
        c = self.config
        total = sum(s["rows"] for s in segs)
        nlist = c.nlist or auto_nlist(total // c.stride)
        want = c.train_rows or max(20_000, 30 * nlist)
        z = self._sample(segs, want)
        # uncentred PCA: inner products, and so the ranking, survive the projection
        w, v = np.linalg.eigh(z.astype(np.float64).T @ z.astype(np.float64) / max(1, z.shape[0]))
        P = np.ascontiguousarray(v[:, ::-1][:, :c.listed_dim], dtype=np.float32)
        x = np.ascontiguousarray(z @ P)
        d = P.shape[1]
        nlist = max(1, min(nlist, x.shape[0] // 39 or 1))
        km = faiss.Kmeans(d, nlist, niter=c.kmeans_iter, spherical=True, seed=c.seed,
                          verbose=False, max_points_per_centroid=256)
        with _c_output_muted():           # FAISS warns of few training points on small archives
            km.train(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))
        cells = max(1, min(c.coarse_cells, nlist // 39 or 1))
        top = faiss.IndexFlatIP(d)
        quant = faiss.IndexIVFFlat(top, d, cells, faiss.METRIC_INNER_PRODUCT)
        quant.cp.spherical = True
        quant.cp.seed = c.seed
        with _c_output_muted():
            quant.train(km.centroids)
        quant.add(km.centroids)
        quant.nprobe = min(c.coarse_probe, cells)
        index = faiss.IndexIVFScalarQuantizer(quant, d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT, False)
        index.train(x)
        _save_npy(self.root / name.replace(".faiss", ".proj.npy"), P)
        tmp = self.root / (name + ".tmp")
        faiss.write_index(index, str(tmp))
        os.replace(tmp, self.root / name)

    def _build_lists(self, seg: dict, trained: str, ivf: str, faiss, workers: int,
                     address: Optional[str], quiet: bool) -> str:
        """Each shard's rows into a block (on the workers), the blocks merged into one on-disk
        index ``ivf``.faiss/.ivfdata with a CRC-32 of every list (.crc.npy). Returns ``ivf``."""
        import faiss.contrib.ondisk as ondisk

        d = self.root / seg["name"]
        jobs = [(str(self.root / trained), str(d / (sh["name"] + ".i8")), sh["rows"], sh["first"],
                 self.config.stride, self.config.context, str(d / f"{sh['name']}.{ivf}.block"))
                for sh in seg["shards"] if sh["rows"]]
        blocks = [out for _, out in _run(add_shard_to_block, jobs, workers, address, quiet, "shard lists")]
        for x in (".faiss", ".ivfdata"):
            if (d / (ivf + x)).exists():
                (d / (ivf + x)).unlink()
        index = faiss.read_index(str(self.root / trained))
        with _c_output_muted():
            ondisk.merge_ondisk(index, sorted(blocks), str(d / (ivf + ".ivfdata")))
        faiss.write_index(index, str(d / (ivf + ".faiss")))
        _save_npy(d / (ivf + ".crc.npy"), list_crcs(index))
        del index
        for b in blocks:
            Path(b).unlink()
        return ivf

    # ------------------------------------------------------------------ querying
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
    def _valid_ends(seg: _Segment, ends: np.ndarray, L: int) -> np.ndarray:
        """Ends whose L rows lie within one live recording."""
        f = np.searchsorted(seg.file_first, ends, side="right") - 1
        fc = np.maximum(f, 0)
        return (ends >= 0) & (ends < seg.n) & (f >= 0) & (ends - L + 1 >= seg.file_first[fc]) & seg.live[fc]

    def _approx_segment(self, seg: _Segment, templates: Sequence[Template], nprobe: int, k: int,
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

    def _score_ends(self, seg: _Segment, templates, ends: np.ndarray):
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
        G = (Tall / _Q) @ rows.T                   # every template vector against every row read
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

    def _exact_segment(self, seg: _Segment, templates: Sequence[Template], keep: int, chunk: int):
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
                G = (block.astype(np.float32) / _Q) @ Tall
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
        x = self.file_rows(key).astype(np.float32) / _Q
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


class _c_output_muted:
    """Silence what FAISS's C++ code prints on stdout/stderr (file names it resizes or updates)."""

    def __enter__(self):
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
        os.dup2(self.saved[0], 1)
        os.dup2(self.saved[1], 2)
        for fd in self.saved:
            os.close(fd)
        return False


def _stamp(path: Path) -> List[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _run(fn: Callable, jobs: list, workers: int, address: Optional[str], quiet: bool, desc: str):
    """Yield (job, fn(job...)) for every job: in this process (workers <= 1, no address), else on
    a Dask cluster (kws.search.dist), where a job whose worker dies is run again elsewhere."""
    if workers > 1 or address:
        from kws.search.dist import run_tasks

        yield from run_tasks(fn, jobs, workers=workers, address=address, quiet=quiet, desc=desc)
        return
    from kws.progress import progress

    for job in progress(jobs, desc, quiet=quiet or len(jobs) < 2, unit="shard"):
        yield job, fn(*job)
