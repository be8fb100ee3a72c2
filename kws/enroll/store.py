"""Keywords and their store.

A :class:`Keyword` holds its **utterances** as the front end heard them: the raw speech-embedding
vectors of each Kokoro rendering of its text and of each of its recordings, padded as
kws.spot.templates pads them, one after another (``sources``; ``segments`` gives each one's length,
``origins`` what it was). The detector cuts its templates from them (through the model's head),
so a keyword needs no re-enrolling when only the head changes; its threshold on the template
score is set for a false-alarm rate (kws.enroll.thresholds). A :class:`KeywordSet` is what the detector
matches against; it is saved as a store::

    DIR/keywords.json            version, model id, keywords (name, text, phonemes, threshold, EER, ...)
    DIR/vectors-<sha12>.npz      the utterances' vectors, one array per keyword

    DIR/keywords.backup.json     the previous good version of keywords.json (its vectors are kept)
    DIR/.keywords.lock           taken by every writer (``store_lock``), so that concurrent
                                 enrollments queue up instead of overwriting each other

Writes are atomic: the vectors go to a new file first, then ``keywords.json`` is replaced in one
``os.replace``; a crash or Ctrl-C leaves either the old store or the new one, never a mix.
Read-modify-write goes through :func:`edit_store`, which holds the lock from the read to the write.
Loading checks everything (JSON, fields and their types, checksum, array shapes) and answers a bad
store with :class:`CorruptStoreError`, whose message names the file and the way out:
:func:`restore_backup` (``python -m kws.enroll restore``) or :func:`reset_store` (``reset``); both
copy the files they replace into ``DIR/old-<time>/`` first. A store made by another model (another
embedding space) is refused with a clear message.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import shutil
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from kws.errors import KwsError

STORE_VERSION = 2             # 1: kws 0.1 (reference vectors of the v1.1 encoders)
STORE_FILE = "keywords.json"
BACKUP_FILE = "keywords.backup.json"
LOCK_FILE = ".keywords.lock"
LOCK_TIMEOUT_S = 120.0         # how long a writer waits for another one before giving up
_VECTORS_NAME = re.compile(r"vectors-[0-9a-f]{12}\.npz")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FIX_CMD = "python -m kws.enroll --store {d} {cmd}"


class StoreError(KwsError, RuntimeError):
    """A keyword store that cannot be used (corrupt, other model, duplicate or unknown names)."""


class CorruptStoreError(StoreError):
    """The store's files are damaged or not a kws store; the message says how to recover."""


class OtherModelError(StoreError, ValueError):
    """Keywords made with another model (another embedding space): re-enroll them. Raised by
    ``KeywordSet.load`` and by ``Detector`` alike."""


class _Bad(Exception):
    """What is wrong with a store file (turned into a CorruptStoreError by the caller)."""


@dataclass
class Keyword:
    name: str
    vectors: np.ndarray                     # (N, 96) raw front-end vectors of its utterances, back to back
    threshold: float
    segments: List[int] = field(default_factory=list)   # vectors in each utterance (sum = N)
    origins: List[str] = field(default_factory=list)    # each utterance: "kokoro:<voice>" or "recording"
    text: Optional[str] = None
    phonemes: Optional[str] = None
    source: str = "text"                    # text | examples | text+examples
    eer: Optional[float] = None
    tuned_on: Dict[str, object] = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    duration: Optional[float] = None        # median spoken duration of its utterances (s)

    def meta(self) -> dict:
        d = asdict(self)
        d.pop("vectors")
        return d

    def utterances(self) -> List[np.ndarray]:
        """Each utterance's raw vectors."""
        return np.split(self.vectors, np.cumsum(self.segments)[:-1]) if self.segments else [self.vectors]


def default_store_dir() -> Path:
    """``$KWS_STORE`` if set (the store folder itself, like ``--store``), else
    ``<user data folder>/kws/keywords`` (platformdirs)."""
    env = os.environ.get("KWS_STORE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("kws", appauthor=False)) / "keywords"


def resolve_store(path: Optional[Union[str, os.PathLike]] = None) -> Path:
    """The store folder: ``path`` (``--store``) if given, else :func:`default_store_dir`.

    Before, ``$KWS_STORE`` named the folder *above* the store; a store found only one level down,
    in ``keywords/``, is refused with a message rather than silently ignored.
    """
    d = Path(path).expanduser() if path else default_store_dir()
    below = d / "keywords"
    if not (d / STORE_FILE).exists() and (below / STORE_FILE).exists():
        raise StoreError(f"{d} holds no keyword store, but {below} does. --store and $KWS_STORE both "
                         f"name the store folder itself (KWS_STORE used to name the folder above it): "
                         f"use --store {below} or KWS_STORE={below}")
    return d


_locks: Dict[str, object] = {}
_locks_guard = threading.Lock()


@contextmanager
def store_lock(directory: Union[str, os.PathLike], timeout: float = LOCK_TIMEOUT_S) -> Iterator[Path]:
    """Hold the store's lock file (``filelock``: an OS lock, released if the process dies).

    Re-entrant within a thread; other threads and processes wait up to ``timeout`` seconds, then
    get a :class:`StoreError`.
    """
    from filelock import FileLock, Timeout

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    key = str(d.resolve())
    with _locks_guard:
        lock = _locks.get(key)
        if lock is None:
            lock = _locks[key] = FileLock(str(d / LOCK_FILE))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise StoreError(f"{d}: another kws process has been writing to this keyword store for "
                         f"{timeout:.0f} s (lock {d / LOCK_FILE}); try again when it is done") from None
    try:
        yield d
    finally:
        lock.release()


@contextmanager
def edit_store(directory: Union[str, os.PathLike], model_id: str,
               timeout: float = LOCK_TIMEOUT_S) -> Iterator["KeywordSet"]:
    """Read-modify-write under the store's lock::

        with edit_store(store_dir, bundle.model_id) as ks:
            ks.add(keyword)

    Yields the stored keywords (an empty set where there is no store yet) and saves them when the
    block ends without an exception; on an exception nothing is written.
    """
    with store_lock(directory, timeout) as d:
        ks = KeywordSet.load(d, model_id) if (d / STORE_FILE).exists() else KeywordSet(model_id)
        yield ks
        ks.save(d)


def _validate_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 64 or any(c in name for c in "\n\r\t/\\"):
        raise StoreError(f"keyword name {name!r} must be 1-64 characters without slashes or tabs")
    return name


class KeywordSet:
    """An ordered set of keywords for one model (``model_id``)."""

    def __init__(self, model_id: str, keywords: Optional[List[Keyword]] = None):
        self.model_id = model_id
        self._kw: Dict[str, Keyword] = {}
        for k in keywords or []:
            self.add(k)

    # ---- container
    def __len__(self) -> int:
        return len(self._kw)

    def __iter__(self) -> Iterator[Keyword]:
        return iter(self._kw.values())

    def __contains__(self, name: str) -> bool:
        return name in self._kw

    def __getitem__(self, name: str) -> Keyword:
        if name not in self._kw:
            raise StoreError(f"no keyword named {name!r} (have: {', '.join(self._kw) or 'none'})")
        return self._kw[name]

    @property
    def names(self) -> List[str]:
        return list(self._kw)

    def add(self, kw: Keyword, replace: bool = False) -> None:
        kw.name = _validate_name(kw.name)
        if kw.name in self._kw and not replace:
            raise StoreError(f"a keyword named {kw.name!r} exists already (remove or rename it first)")
        v = np.asarray(kw.vectors, dtype=np.float32)
        if v.ndim != 2 or v.shape[0] == 0 or not np.all(np.isfinite(v)):
            raise StoreError(f"keyword {kw.name!r}: vectors must be a non-empty finite (n, D) array")
        segs = list(kw.segments) or [v.shape[0]]
        if any(int(n) <= 0 for n in segs) or sum(segs) != v.shape[0] or \
                (kw.origins and len(kw.origins) != len(segs)):
            raise StoreError(f"keyword {kw.name!r}: its utterances' lengths {segs} do not add up to "
                             f"its {v.shape[0]} vectors")
        kw.vectors, kw.segments = v, [int(n) for n in segs]
        self._kw[kw.name] = kw

    def remove(self, name: str) -> Keyword:
        kw = self[name]
        del self._kw[name]
        return kw

    def rename(self, old: str, new: str) -> None:
        new = _validate_name(new)
        if new in self._kw:
            raise StoreError(f"a keyword named {new!r} exists already")
        kw = self.remove(old)
        kw.name = new
        self._kw[new] = kw

    # ---- store
    def save(self, directory: Union[str, os.PathLike]) -> Path:
        """Write the store atomically (under its lock); the version it replaces, if it was good,
        becomes ``keywords.backup.json``."""
        with store_lock(directory) as d:
            buf = io.BytesIO()
            np.savez(buf, **{f"k{i}": k.vectors for i, k in enumerate(self._kw.values())})
            data = buf.getvalue()
            vec_name = f"vectors-{hashlib.sha256(data).hexdigest()[:12]}.npz"
            _atomic_write(d / vec_name, data)
            doc = {"version": STORE_VERSION, "model_id": self.model_id, "vectors": vec_name,
                   "vectors_sha256": hashlib.sha256(data).hexdigest(),
                   "keywords": [k.meta() for k in self._kw.values()]}
            text = json.dumps(doc, indent=2).encode()
            current = d / STORE_FILE
            keep = {vec_name}
            if current.is_file():
                try:
                    raw = current.read_bytes()
                    if raw == text:
                        return current            # unchanged: keep the backup as it is
                    old = _parse_store(d, raw)
                    _atomic_write(d / BACKUP_FILE, raw)
                    keep.add(old[0]["vectors"])
                except (OSError, _Bad):
                    pass                          # not a good version: the older backup stays
            keep |= _backup_vectors(d)
            _atomic_write(current, text)
            for old_vec in d.glob("vectors-*.npz"):       # now unreferenced
                if old_vec.name not in keep:
                    old_vec.unlink(missing_ok=True)
        return d / STORE_FILE

    @classmethod
    def load(cls, directory: Union[str, os.PathLike], model_id: Optional[str] = None) -> "KeywordSet":
        """Read and check a store; :class:`CorruptStoreError` (naming the file and the way out)
        for anything damaged, :class:`StoreError` for a store of another model."""
        d = Path(directory)
        f = d / STORE_FILE
        if not f.is_file():
            hint = (f"; a backup is there: {_FIX_CMD.format(d=_q(d), cmd='restore')}"
                    if (d / BACKUP_FILE).is_file() else
                    "; enroll a keyword first: python -m kws.enroll add \"hey computer\"")
            raise StoreError(f"{d}: no keyword store here (no {STORE_FILE}){hint}")
        _refuse_old_version(f)
        for attempt in range(5):
            raw = _read(f)
            try:
                doc, arrs = _parse_store(d, raw)
                break
            except _Bad as exc:
                # a writer may have replaced keywords.json (and removed the vectors it named)
                # between the two reads: read again if the file changed meanwhile
                if attempt == 4 or _read(f) == raw:
                    raise _corrupt(d, f, str(exc)) from None
        if model_id is not None and doc["model_id"] != model_id:
            raise OtherModelError(f"{f}: made with model {doc['model_id']!r}, but the model in use is "
                                  f"{model_id!r}; its templates do not fit. Make them again for this "
                                  f"model: python -m kws enroll migrate")
        return cls(doc["model_id"], [Keyword(vectors=a, **m) for m, a in zip(doc["keywords"], arrs)])


class OldStoreError(OtherModelError):
    """A store written by kws 0.1 (vectors of the v1.1 encoders); ``python -m kws enroll migrate``
    re-makes its typed keywords."""


def store_version(f: Path) -> object:
    """The ``version`` a store file declares (None when it cannot be read as a store)."""
    try:
        doc = json.loads(f.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return doc.get("version") if isinstance(doc, dict) else None


def _refuse_old_version(f: Path) -> None:
    if store_version(f) == 1:
        d = f.parent
        raise OldStoreError(
            f"{f}: made by an earlier kws, for a model that no longer ships. Its typed keywords can be "
            f"made again for the current model with `{_FIX_CMD.format(d=_q(d), cmd='migrate')}` "
            f"(keywords enrolled from recordings must be recorded again: their audio was not kept); "
            f"the old files are kept in {d / 'old-<time>'}")


# ------------------------------------------------------------------ store checks and recovery
_FIELD_TYPES = {"name": (str,), "threshold": (int, float), "segments": (list,), "origins": (list,),
                "text": (str, type(None)),
                "phonemes": (str, type(None)), "source": (str,), "eer": (int, float, type(None)),
                "tuned_on": (dict,), "created": (int, float), "duration": (int, float, type(None))}
_REQUIRED = ("name", "threshold")


def _q(path: Path) -> str:
    s = str(path)
    return s if re.fullmatch(r"[\w./~:+-]+", s) else "'" + s.replace("'", "'\\''") + "'"


def _read(f: Path) -> bytes:
    try:
        return f.read_bytes()
    except OSError as exc:
        raise StoreError(f"{f}: cannot be read ({exc.strerror or exc})") from exc


def _corrupt(d: Path, f: Path, why: str) -> CorruptStoreError:
    """The error for a damaged store: what is wrong, and the commands that recover."""
    way = [f"start an empty store with `{_FIX_CMD.format(d=_q(d), cmd='reset')}`"]
    b = _good_backup(d) if f.name != BACKUP_FILE else None
    if b is not None:
        names = ", ".join(m["name"] for m in b[0]["keywords"][:8])
        more = "" if len(b[0]["keywords"]) <= 8 else ", ..."
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime((d / BACKUP_FILE).stat().st_mtime))
        n = len(b[0]["keywords"])
        way.insert(0, f"restore the last good version (saved {when}, {n} keyword{'s' * (n != 1)}: "
                      f"{names or 'none'}{more}) with `{_FIX_CMD.format(d=_q(d), cmd='restore')}`")
    return CorruptStoreError(f"{f}: corrupt keyword store ({why}). To recover, " + ", or ".join(way) +
                             f"; both keep a copy of the current files in {d / 'old-<time>'}")


def _good_backup(d: Path) -> Optional[Tuple[dict, List[np.ndarray]]]:
    b = d / BACKUP_FILE
    try:
        return _parse_store(d, b.read_bytes()) if b.is_file() else None
    except (OSError, _Bad):
        return None


def _backup_vectors(d: Path) -> set:
    """The vectors file the backup refers to (kept when old vectors are cleaned up)."""
    try:
        doc = json.loads((d / BACKUP_FILE).read_bytes().decode("utf-8"))
        name = doc.get("vectors") if isinstance(doc, dict) else None
        return {name} if isinstance(name, str) and _VECTORS_NAME.fullmatch(name) else set()
    except (OSError, ValueError, RecursionError):
        return set()


def _json(raw: bytes) -> object:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _Bad(f"not UTF-8 text: byte {exc.start}") from None
    except (ValueError, RecursionError) as exc:
        raise _Bad(f"not valid JSON: {str(exc)[:120]}") from None


def _check_meta(i: int, m: object, extra: Tuple[str, ...] = ()) -> None:
    """One keyword's metadata (the ``i``-th): an object of known fields of the right types."""
    if not isinstance(m, dict):
        raise _Bad(f"keyword #{i + 1} is a {type(m).__name__}, not an object")
    label = repr(m["name"]) if isinstance(m.get("name"), str) else f"#{i + 1}"
    missing = [k for k in _REQUIRED + extra if k not in m]
    unknown = sorted(set(m) - set(_FIELD_TYPES) - set(extra))
    if missing or unknown:
        raise _Bad(f"keyword {label}: " + "; ".join(
            ([f"no {', '.join(missing)}"] if missing else []) +
            ([f"unknown field {', '.join(map(str, unknown))}"] if unknown else [])))
    for k, v in m.items():
        if k in extra:
            continue
        ok = isinstance(v, _FIELD_TYPES[k]) and not isinstance(v, bool)
        if ok and isinstance(v, (int, float)):
            try:
                ok = math.isfinite(float(v))
            except OverflowError:
                ok = False
        if not ok:
            raise _Bad(f"keyword {label}: '{k}' is {v!r}"[:200])


def export_doc(ks: "KeywordSet", model=None) -> dict:
    """The keywords as one JSON-able document (``python -m kws.enroll export``). With the
    ``model``, each keyword also carries its ``templates`` in the model's matching space, rounded
    to 5 decimals: what another runtime (the browser's, kws/web) matches against."""
    docs = []
    for k in ks:
        d = dict(k.meta(), vectors=k.vectors.tolist())
        if model is not None:
            from kws.spot.templates import keyword_templates

            d["templates"] = [np.round(t, 5).tolist() for t in keyword_templates(model, k)]
        docs.append(d)
    return {"format": "kws-keywords", "model_id": ks.model_id, "keywords": docs}


def parse_export(raw: bytes, name: str) -> Tuple[Optional[str], List[Tuple[dict, np.ndarray]]]:
    """Check an export document (the bytes of file ``name``): its model id and, per keyword,
    (metadata, (n, D) vectors). :class:`StoreError` says what is wrong."""
    try:
        doc = _json(raw)
        if not isinstance(doc, dict) or not isinstance(doc.get("keywords"), list):
            raise _Bad("no list of 'keywords'")
        model_id = doc.get("model_id")
        if not isinstance(model_id, (str, type(None))):
            raise _Bad(f"'model_id' is {model_id!r}")
        out = []
        for i, m in enumerate(doc["keywords"]):
            m = {k: v for k, v in m.items() if k != "templates"} if isinstance(m, dict) else m
            _check_meta(i, m, extra=("vectors",))
            try:
                v = np.array(m["vectors"], dtype=np.float32)
            except (TypeError, ValueError):
                v = np.zeros(0, np.float32)
            if v.ndim == 1 and v.size:
                v = v[None]
            if v.ndim != 2 or 0 in v.shape or not np.all(np.isfinite(v)):
                raise _Bad(f"keyword {m['name']!r}: 'vectors' is not a non-empty list of equal-length "
                           f"lists of numbers")
            out.append(({k: x for k, x in m.items() if k != "vectors"}, v))
        return model_id, out
    except _Bad as exc:
        raise StoreError(f"{name}: not a kws keyword export ({exc})") from None


def _parse_store(d: Path, raw: bytes) -> Tuple[dict, List[np.ndarray]]:
    """Check a store document (``raw``: the bytes of a keywords.json in ``d``) and its vectors
    file completely; :class:`_Bad` says what is wrong."""
    doc = _json(raw)
    if not isinstance(doc, dict):
        raise _Bad(f"a JSON {type(doc).__name__} where an object is expected")
    if doc.get("version") != STORE_VERSION:
        v = doc.get("version")
        newer = isinstance(v, int) and not isinstance(v, bool) and v > STORE_VERSION
        raise _Bad(f"store version {v!r}; this kws reads version {STORE_VERSION}"
                   + (" (a newer kws wrote it: upgrade kws to use it)" if newer else ""))
    for key, pat in (("model_id", None), ("vectors", _VECTORS_NAME), ("vectors_sha256", _SHA256)):
        v = doc.get(key)
        if not isinstance(v, str) or (pat is not None and not pat.fullmatch(v)):
            raise _Bad(f"'{key}' is {v!r}")
    metas = doc.get("keywords")
    if not isinstance(metas, list):
        raise _Bad(f"'keywords' is a {type(metas).__name__}, not a list")
    for i, m in enumerate(metas):
        _check_meta(i, m)
    vf = d / doc["vectors"]
    try:
        data = vf.read_bytes()
    except OSError as exc:
        raise _Bad(f"its vectors file {vf.name} cannot be read: {exc.strerror or exc}") from None
    if hashlib.sha256(data).hexdigest() != doc["vectors_sha256"]:
        raise _Bad(f"checksum mismatch in {vf.name}")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrs = {k: npz[k] for k in npz.files}
    except Exception as exc:   # zipfile, numpy format and pickle errors of several types
        raise _Bad(f"{vf.name} is not a readable numpy archive: {str(exc)[:120]}") from None
    if sorted(arrs) != sorted(f"k{i}" for i in range(len(metas))):
        raise _Bad(f"{vf.name} holds {len(arrs)} arrays for {len(metas)} keywords")
    out, dims, names = [], set(), set()
    for i, m in enumerate(metas):
        a = arrs[f"k{i}"]
        if (a.dtype.kind != "f" or a.ndim != 2 or 0 in a.shape or not np.all(np.isfinite(a))):
            raise _Bad(f"keyword {m['name']!r}: vectors of shape {a.shape}, type {a.dtype}")
        segs = m.get("segments") or [a.shape[0]]
        if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in segs) \
                or sum(segs) != a.shape[0]:
            raise _Bad(f"keyword {m['name']!r}: utterance lengths {segs} do not fit {a.shape[0]} vectors")
        if not all(isinstance(o, str) for o in m.get("origins", [])):
            raise _Bad(f"keyword {m['name']!r}: 'origins' is not a list of strings")
        dims.add(a.shape[1])
        if m["name"] in names:
            raise _Bad(f"keyword {m['name']!r} appears twice")
        names.add(m["name"])
        try:
            _validate_name(m["name"])
        except StoreError as exc:
            raise _Bad(str(exc)) from None
        out.append(a)
    if len(dims) > 1:
        raise _Bad(f"keywords have vectors of different sizes {sorted(dims)}")
    return doc, out


def _set_aside(d: Path) -> Path:
    """Copy every store file into a new ``d/old-<time>/`` folder; return it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    dest, n = d / f"old-{stamp}", 1
    while dest.exists():
        n += 1
        dest = d / f"old-{stamp}-{n}"
    dest.mkdir()
    for p in [d / STORE_FILE, d / BACKUP_FILE, *sorted(d.glob("vectors-*.npz"))]:
        if p.is_file():
            shutil.copy2(p, dest / p.name)
    return dest


def restore_backup(directory: Union[str, os.PathLike]) -> Tuple["KeywordSet", Path]:
    """Make the last good version (``keywords.backup.json``) the store again.

    The files it replaces are copied to ``DIR/old-<time>/`` first. Returns the restored keywords
    and that folder.
    """
    with store_lock(directory) as d:
        b = d / BACKUP_FILE
        if not b.is_file():
            raise StoreError(f"{d}: no backup to restore ({BACKUP_FILE} is written when a store is "
                             f"changed); {_FIX_CMD.format(d=_q(d), cmd='reset')} starts an empty store")
        raw = _read(b)
        try:
            _parse_store(d, raw)
        except _Bad as exc:
            raise _corrupt(d, b, str(exc)) from None
        aside = _set_aside(d)
        _atomic_write(d / STORE_FILE, raw)
        return KeywordSet.load(d), aside


def reset_store(directory: Union[str, os.PathLike]) -> Optional[Path]:
    """Start an empty store: the current files are copied to ``DIR/old-<time>/`` (returned; None
    where there was nothing), then ``keywords.json`` is removed. The backup stays restorable."""
    with store_lock(directory) as d:
        if not any(p.is_file() for p in [d / STORE_FILE, d / BACKUP_FILE, *d.glob("vectors-*.npz")]):
            return None
        aside = _set_aside(d)
        (d / STORE_FILE).unlink(missing_ok=True)
        return aside


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
