"""The local server of ``python -m kws web``: the page, the model files the page's detector loads,
and a small JSON API over the keyword store.

Standard library only (``http.server``, a thread per request, one worker thread for enrollments,
which render Kokoro voices for seconds). Bound to 127.0.0.1 by default; requests whose ``Host`` is
not this machine's loopback name are refused (so that another site cannot reach the API through a
DNS name pointed at 127.0.0.1), and POST bodies must be JSON (so that a plain form on another site
cannot post to it).

API (JSON in and out; an error is ``{"error": "readable message"}`` with a 4xx/5xx status):

    GET  /api/info                  model id, store folder, the voices a typed keyword is rendered in
    GET  /api/keywords              the store's keywords with their templates (the format of
                                    ``python -m kws enroll export``, without the raw vectors), each
                                    with its ``room`` entry: what its threshold learnt so far
                                    (kws.spot.room.KeywordRoom.to_json, from the store's room.json, or
                                    fresh: its bank tail, target and floor)
    POST /api/room                  {"keywords": {name: room entry}}: what the page's thresholds
                                    learnt, merged into the store's room.json (atomic save)
    GET  /api/export                the whole export file (``enroll export``), as a download
    POST /api/check-take            {"audio": base64 float32 16 kHz}: one recorded take checked as
                                    ``enroll add --examples`` checks a file
    POST /api/enroll                {"name", "text"?, "takes"?: [base64 ...]} -> {"job": id}
    GET  /api/jobs/ID               an enrollment's progress: state, step, done/total, lines, error
    POST /api/rename                {"old", "new"}
    POST /api/remove                {"name"}
    POST /api/demo                  add the demo keywords (computer, jarvis, alexa)
    GET  /model/FILE                the model's manifest, backbone network, its step graph (where
                                    the manifest names one), mel constants, head
    GET  /sample.wav                the bundled sample recording
"""
from __future__ import annotations

import base64
import itertools
import json
import math
import mimetypes
import queue
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional, Sequence
from urllib.parse import unquote, urlsplit

import numpy as np

from kws.errors import KwsError
from kws.web import static_dir

MAX_BODY = 32 << 20                  # bytes of a POST body (3 takes of 10 s are under 2 MB)
MAX_TAKES = 10
MAX_ROOM_BODY = 4 << 20              # bytes of a POST /api/room body (about 1 kB a keyword)
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".gz": "application/gzip", ".png": "image/png", ".txt": "text/plain; charset=utf-8"}
LOOPBACK = ("127.0.0.1", "localhost", "::1")


# fitting a keyword's bank tail scores its templates along the model's background bank (seconds):
# one at a time (kws.spot.room keeps each one for the process)
_TAILS_LOCK = threading.Lock()


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Job:
    """One enrollment, run by the worker thread; the page polls its state."""

    def __init__(self, job_id: str, name: str):
        self.id, self.name = job_id, name
        self.state = "queued"              # queued | running | done | error
        self.step = "waiting for the enrollment before it"
        self.done = 0
        self.total = 0
        self.lines: List[str] = []
        self.error: Optional[str] = None
        self.started = time.time()
        self.seconds: Optional[float] = None
        self._lock = threading.Lock()

    def update(self, **kw) -> None:
        with self._lock:
            for k, v in kw.items():
                setattr(self, k, v)

    def line(self, text: str) -> None:
        with self._lock:
            self.lines.append(text.strip())

    def to_dict(self) -> dict:
        with self._lock:
            return {"id": self.id, "name": self.name, "state": self.state, "step": self.step,
                    "done": self.done, "total": self.total, "lines": list(self.lines),
                    "error": self.error, "seconds": self.seconds}


class WebApp:
    """What the handlers work on: the model, the store folder, the enrollment jobs."""

    def __init__(self, store: Path, model, voices: Optional[Sequence[str]] = None):
        self.store = Path(store)
        self.model = model
        self.voices = list(voices) if voices else None
        self.static = static_dir()
        self.jobs: Dict[str, Job] = {}
        self._ids = itertools.count(1)
        self._queue: "queue.Queue" = queue.Queue()
        self._room_lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name="kws-web-enroll", daemon=True)
        self._worker.start()

    # ---------------------------------------------------------------- store
    def keywords(self):
        from kws.enroll.store import STORE_FILE, KeywordSet

        if not (self.store / STORE_FILE).exists():
            return KeywordSet(self.model.model_id)
        return KeywordSet.load(self.store, self.model.model_id)

    def keyword_doc(self, with_vectors: bool = False) -> dict:
        """The store's keywords as ``enroll export`` writes them; for the page (not
        ``with_vectors``) without the raw vectors and with each keyword's room entry."""
        from kws.enroll.store import export_doc

        ks = self.keywords()
        doc = export_doc(ks, self.model)
        if not with_vectors:
            try:
                rooms = self.room_entries(ks)
            except KwsError as exc:          # e.g. no background bank: the thresholds stay the bank's
                rooms = {}
                doc["room_error"] = f"the thresholds cannot learn the room: {exc}"
            for k in doc["keywords"]:
                k.pop("vectors", None)
                if k["name"] in rooms:
                    k["room"] = rooms[k["name"]].to_json()
        doc["store"] = str(self.store)
        return doc

    # ---------------------------------------------------------------- thresholds that learn the room
    @property
    def room_path(self) -> Path:
        from kws.spot.room import ROOM_FILE

        return self.store / ROOM_FILE

    def _room(self, keywords) -> "object":
        """kws.spot.room.Room for ``keywords`` (a list of Keyword), with the shipped AdaptConfig: the
        store's room.json where it holds the same keyword, else fresh entries (the bank tail from
        the keyword's enrollment record, or fitted now)."""
        from kws.spot.room import AdaptConfig, Room, RoomState

        saved = RoomState.load(self.room_path, self.model.model_id)
        with _TAILS_LOCK:
            return Room.for_keywords(self.model, list(keywords), AdaptConfig(), saved)

    def room_entries(self, ks) -> Dict[str, "object"]:
        """Each keyword's room entry (kws.spot.room.KeywordRoom), by name. Fresh entries are written to
        the store's room.json at once (nothing learnt yet), so that their bank tails are not fitted
        again by the next server, ``kws serve`` or a detector given the store."""
        from kws.spot.room import RoomState

        if len(ks) == 0:
            return {}
        with self._room_lock:
            entries = dict(zip(ks.names, self._room(list(ks)).entries))
            state = RoomState.load(self.room_path, self.model.model_id)
            fresh = {n: e for n, e in entries.items() if n not in state.entries
                     or (state.entries[n].key, state.entries[n].bank) != (e.key, e.bank)}
            if fresh:
                state.entries.update(fresh)
                try:
                    state.save(self.room_path)
                except OSError:
                    pass                     # a read-only store: fitted again next time
        return entries

    def save_room(self, body: dict) -> dict:
        """Merge what the page's thresholds learnt (``{"keywords": {name: room entry}}``) into the
        store's room.json. Only what was learnt is taken (the peaks' histogram, the hours, the
        lowest and the current threshold); the bank tail, target, floor and bins stay the store's.
        400 for malformed entries or unknown keywords, 409 for a keyword that changed since the
        page loaded it (re-enrolled, or its threshold set again)."""
        from kws.spot.room import AdaptConfig, RoomState

        posted = body.get("keywords")
        if not isinstance(posted, dict) or not posted:
            raise ApiError(400, "'keywords' must be an object: keyword name -> what its threshold learnt")
        ks = self.keywords()
        unknown = [n for n in posted if n not in ks]
        if unknown:
            raise ApiError(400, f"no keyword named {unknown[0]!r} in the store")
        names = list(posted)
        with self._room_lock:
            current = dict(zip(names, self._room([ks[n] for n in names]).entries))
            learnt = {n: _learnt_entry(n, posted[n], current[n], AdaptConfig()) for n in names}
            state = RoomState.load(self.room_path, self.model.model_id)
            for n, e in learnt.items():
                state.entries[n] = e
            try:
                path = state.save(self.room_path)
            except OSError as exc:
                raise ApiError(500, f"what the thresholds learnt could not be saved to {self.room_path}: "
                                    f"{exc}") from None
        return {"saved": names, "file": str(path),
                "thresholds": {n: (e.bank if e.threshold is None else e.threshold) for n, e in learnt.items()}}

    def voice_names(self) -> List[str]:
        if self.voices is not None:
            return self.voices
        from kws.enroll import kokoro

        return [r.voice for r in kokoro.default_renderings()]

    def info(self) -> dict:
        from kws.enroll import build as en

        return {"model_id": self.model.model_id, "store": str(self.store),
                "voices": len(self.voice_names()), "take_limits": {
                    "min_s": en.MIN_EXAMPLE_S, "max_s": en.MAX_EXAMPLE_S, "max_sound_s": en.MAX_SPEECH_S}}

    def rename(self, old: str, new: str) -> None:
        from kws.enroll.store import edit_store

        with edit_store(self.store, self.model.model_id) as ks:
            ks.rename(old, new)

    def remove(self, name: str) -> None:
        from kws.enroll.store import edit_store

        with edit_store(self.store, self.model.model_id) as ks:
            ks.remove(name)

    def add_demo(self) -> List[str]:
        from kws.enroll.demo import demo_keywords
        from kws.enroll.store import edit_store

        demo = demo_keywords(self.model)
        added = []
        with edit_store(self.store, self.model.model_id) as ks:
            for kw in demo:
                if kw.name not in ks:
                    ks.add(kw)
                    added.append(kw.name)
        return added

    # ---------------------------------------------------------------- takes
    @staticmethod
    def decode_take(b64: object, label: str) -> np.ndarray:
        if not isinstance(b64, str) or not b64:
            raise ApiError(400, f"{label}: no audio")
        try:
            raw = base64.b64decode(b64, validate=True)
        except ValueError:
            raise ApiError(400, f"{label}: the audio is not base64") from None
        if len(raw) % 4:
            raise ApiError(400, f"{label}: the audio is not float32 samples")
        audio = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        if not np.all(np.isfinite(audio)):
            raise ApiError(400, f"{label}: the audio holds NaN or infinite samples")
        return audio

    def check_take(self, b64: object, label: str = "the take") -> dict:
        from kws.audio.io import SAMPLE_RATE
        from kws.enroll.build import check_example

        audio = self.decode_take(b64, label)
        speech = check_example(audio, label)
        return {"ok": True, "seconds": round(audio.size / SAMPLE_RATE, 2),
                "sound_s": round(speech.size / SAMPLE_RATE, 2)}

    # ---------------------------------------------------------------- enrollment
    def submit(self, body: dict) -> Job:
        from kws.enroll.build import check_example
        from kws.enroll.store import _validate_name

        text = body.get("text")
        text = text.strip() if isinstance(text, str) else None
        takes = body.get("takes") or []
        if not isinstance(takes, list) or len(takes) > MAX_TAKES:
            raise ApiError(400, f"'takes' must be a list of at most {MAX_TAKES} recordings")
        name = body.get("name")
        name = name.strip() if isinstance(name, str) and name.strip() else text
        if not text and not takes:
            raise ApiError(400, "type the keyword, or record it")
        if not name:
            raise ApiError(400, "give the keyword a name")
        try:
            name = _validate_name(name)
        except KwsError as exc:
            raise ApiError(400, str(exc)) from None
        if name in self.keywords():
            raise ApiError(409, f"a keyword named {name!r} exists already (remove or rename it first)")
        examples = [check_example(self.decode_take(t, f"take {i + 1}"), f"take {i + 1}")
                    for i, t in enumerate(takes)]
        job = Job(str(next(self._ids)), name)
        self.jobs[job.id] = job
        self._queue.put((job, name, text or None, examples))
        return job

    def _work(self) -> None:
        while True:
            job, name, text, examples = self._queue.get()
            try:
                self._enroll(job, name, text, examples)
            except KwsError as exc:
                job.update(state="error", error=str(exc))
            except Exception as exc:             # a bug: say so on the page and in the terminal
                traceback.print_exc()
                job.update(state="error", error=f"internal error: {type(exc).__name__}: {exc}")
            finally:
                job.update(seconds=round(time.time() - job.started, 1))

    def _enroll(self, job: Job, name: str, text: Optional[str], examples: List[np.ndarray]) -> None:
        from kws.enroll.build import build_keyword, keyword_pronunciation, render_utterances
        from kws.enroll.store import edit_store

        job.update(state="running", started=time.time())
        rendered = []
        if text:
            pron = keyword_pronunciation(text, None)
            voices = self.voice_names()
            job.update(step="rendering with Kokoro", done=0, total=len(voices))
            job.line(f"pronounced {pron}")
            for i, v in enumerate(voices):
                rendered += render_utterances(pron, voices=[v])
                job.update(done=i + 1)
        job.update(step="setting the threshold on the background bank", done=0, total=0)
        kw = build_keyword(self.model, name, text, None, examples, tune=True, progress=job.line,
                           utterances=rendered or None)
        job.update(step="fitting the bank's tail of its scores (for thresholds that learn the room)")
        try:
            self._room([kw])                 # kws.spot.room keeps its tail: the page's next /api/keywords needs it
        except KwsError:
            pass                             # /api/keywords says why
        job.update(step="saving")
        with edit_store(self.store, self.model.model_id) as ks:
            ks.add(kw)
        fa = kw.tuned_on.get("expected_per_hour")
        job.line(f"threshold {kw.threshold:.3f}, ~{fa:.2g} false alarms an hour of speech expected"
                 if isinstance(fa, (int, float)) else f"threshold {kw.threshold:.3f}")
        job.update(state="done", step="added", done=job.total)

    # ---------------------------------------------------------------- model files
    def model_file(self, name: str) -> Path:
        m = self.model.manifest
        allowed = {"manifest.json", m["frontend"]["network"], m["frontend"]["constants"]}
        if m["frontend"].get("step_network"):        # the network's step graph, which streams run
            allowed.add(m["frontend"]["step_network"])
        if m.get("head"):
            allowed.add(m["head"]["file"])
        if name not in allowed:
            raise ApiError(404, f"the model has no file {name!r} for the page")
        p = self.model.path / name
        if not p.is_file():
            raise ApiError(404, f"the model's file {name} is missing from {self.model.path}")
        return p


def _learnt_entry(name: str, d: object, cur, cfg) -> "object":
    """The store's entry ``cur`` (kws.spot.room.KeywordRoom) with what the page learnt, ``d``, checked."""
    from kws.spot.room import KeywordRoom

    label = f"keyword {name!r}"

    def num(x) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x))

    if not isinstance(d, dict):
        raise ApiError(400, f"{label}: what its threshold learnt must be an object")
    key = d.get("key")
    if not isinstance(key, str):
        raise ApiError(400, f"{label}: no 'key' (the room entry the page was given)")
    if key != cur.key or ("bank" in d and not (num(d["bank"]) and abs(float(d["bank"]) - cur.bank) < 1e-6)):
        raise ApiError(409, f"{label} changed since the page loaded it (enrolled or tuned again): "
                            f"what it learnt there was not saved; reload the page")
    if "lo" in d and not (num(d["lo"]) and abs(float(d["lo"]) - cur.lo) < 1e-9):
        raise ApiError(400, f"{label}: its histogram starts at {d['lo']!r}, the store's at {cur.lo!r}")
    counts = d.get("counts")
    n = len(cur.counts)
    if not (isinstance(counts, list) and len(counts) == n and all(num(c) and 0 <= c <= 1e9 for c in counts)):
        raise ApiError(400, f"{label}: 'counts' must be a list of {n} numbers >= 0 (the histogram of its peaks)")
    hours, listened = d.get("hours"), d.get("listened_h")
    if not (num(hours) and num(listened) and 0 <= hours <= 1e6 and 0 <= listened <= 1e6
            and hours <= listened * (1 + 1e-9) + 1e-12):
        raise ApiError(400, f"{label}: 'hours' and 'listened_h' must be numbers, 0 <= hours <= listened_h")
    lo_t, hi_t = cur.bank - cfg.bound - 1e-6, cur.bank + cfg.bound + 1e-6
    if cur.floor is not None:
        lo_t = max(lo_t, cur.floor - 1e-6)
    thr, lowest = d.get("threshold"), d.get("lowest")
    if not (thr is None or (num(thr) and lo_t <= thr <= hi_t)):
        raise ApiError(400, f"{label}: 'threshold' must be null or a number within [{lo_t:.4f}, {hi_t:.4f}]")
    if not (lowest is None or (num(lowest) and cur.bank - cfg.bound - 1e-6 <= lowest <= cur.bank + 1e-6)):
        raise ApiError(400, f"{label}: 'lowest' must be null or a number within "
                            f"[{cur.bank - cfg.bound:.4f}, {cur.bank:.4f}]")
    return KeywordRoom(key=cur.key, bank=cur.bank, target=cur.target, tail=dict(cur.tail), lo=cur.lo,
                       counts=[float(c) for c in counts], hours=float(hours), listened_h=float(listened),
                       lowest=math.inf if lowest is None else float(lowest),
                       threshold=None if thr is None else float(thr), floor=cur.floor)


class Handler(BaseHTTPRequestHandler):
    server_version = "kws-web"
    protocol_version = "HTTP/1.1"

    @property
    def app(self) -> WebApp:
        return self.server.app          # type: ignore[attr-defined]

    def log_message(self, fmt, *args):     # quiet unless asked
        if getattr(self.server, "verbose", False):
            super().log_message(fmt, *args)

    # ---------------------------------------------------------------- plumbing
    def _send(self, status: int, body: bytes, ctype: str, extra: Optional[dict] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj, status: int = 200, extra: Optional[dict] = None) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json", extra)

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    def _host_ok(self) -> bool:
        if not getattr(self.server, "check_host", True):
            return True
        host = (self.headers.get("Host") or "").strip().lower()
        if host.startswith("["):
            name = host[1:host.find("]")] if "]" in host else host
        else:
            name = host.rsplit(":", 1)[0] if ":" in host else host
        return name in LOOPBACK

    def _body(self, limit: int = MAX_BODY) -> dict:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(415, "send JSON (Content-Type: application/json)")
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError(400, "bad Content-Length") from None
        if n > limit:
            raise ApiError(413, f"request body of {n} bytes; at most {limit}")
        raw = self.rfile.read(n)
        try:
            doc = json.loads(raw.decode("utf-8")) if raw else {}
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(400, f"the request body is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return doc

    def _dispatch(self, fn) -> None:
        try:
            if not self._host_ok():
                raise ApiError(403, "this server answers only requests addressed to this machine "
                                    "(Host 127.0.0.1 or localhost)")
            fn()
        except ApiError as exc:
            self._error(exc.status, str(exc))
        except KwsError as exc:
            status = 409 if "exists already" in str(exc) else 404 if "no keyword named" in str(exc) else 400
            self._error(status, str(exc))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:
            traceback.print_exc()
            self._error(500, f"internal error: {type(exc).__name__}: {exc}")

    # ---------------------------------------------------------------- routes
    def do_GET(self) -> None:
        self._dispatch(self._get)

    def do_HEAD(self) -> None:
        self._dispatch(self._get)

    def do_POST(self) -> None:
        self._dispatch(self._post)

    def _get(self) -> None:
        path = unquote(urlsplit(self.path).path)
        app = self.app
        if path == "/api/info":
            return self._json(app.info())
        if path == "/api/keywords":
            return self._json(app.keyword_doc())
        if path == "/api/export":
            return self._json(app.keyword_doc(with_vectors=True),
                              extra={"Content-Disposition": 'attachment; filename="keywords.json"'})
        if path.startswith("/api/jobs/"):
            job = app.jobs.get(path[len("/api/jobs/"):])
            if job is None:
                raise ApiError(404, "no such enrollment")
            return self._json(job.to_dict())
        if path.startswith("/api/"):
            raise ApiError(404, f"no API {path}")
        if path.startswith("/model/"):
            f = app.model_file(path[len("/model/"):])
            return self._send(200, f.read_bytes(), mimetypes.guess_type(f.name)[0] or "application/octet-stream")
        if path == "/sample.wav":
            from kws.enroll.demo import sample_recording

            return self._send(200, sample_recording().read_bytes(), "audio/wav")
        if path in ("/", "/index.html"):
            path = "/index.html"
        return self._static(path)

    def _static(self, path: str) -> None:
        rel = Path(path.lstrip("/"))
        if any(p in ("..", "") for p in rel.parts) or rel.suffix not in STATIC_TYPES:
            raise ApiError(404, f"not found: {path}")
        f = (self.app.static / rel).resolve()
        if self.app.static not in f.parents or not f.is_file():
            raise ApiError(404, f"not found: {path}")
        self._send(200, f.read_bytes(), STATIC_TYPES[f.suffix])

    def _post(self) -> None:
        path = urlsplit(self.path).path
        body = self._body(MAX_ROOM_BODY if path == "/api/room" else MAX_BODY)
        app = self.app
        if path == "/api/check-take":
            return self._json(app.check_take(body.get("audio"), str(body.get("label") or "the take")))
        if path == "/api/enroll":
            job = app.submit(body)
            return self._json(job.to_dict(), 202)
        if path == "/api/rename":
            old, new = body.get("old"), body.get("new")
            if not isinstance(old, str) or not isinstance(new, str):
                raise ApiError(400, "give the old and the new name")
            app.rename(old, new)
            return self._json({"ok": True})
        if path == "/api/remove":
            name = body.get("name")
            if not isinstance(name, str):
                raise ApiError(400, "give the name of the keyword to remove")
            app.remove(name)
            return self._json({"ok": True})
        if path == "/api/demo":
            return self._json({"added": app.add_demo()})
        if path == "/api/room":
            return self._json(app.save_room(body))
        raise ApiError(404, f"no API {path}")


class WebServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app: WebApp, host: str = "127.0.0.1", port: int = 8765, verbose: bool = False):
        self.app = app
        self.verbose = verbose
        self.check_host = host in LOOPBACK
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"


def make_server(store, model=None, host: str = "127.0.0.1", port: int = 8765,
                voices: Optional[Sequence[str]] = None, verbose: bool = False) -> WebServer:
    """A server for ``store`` (not yet serving: call ``serve_forever``, e.g. in a thread)."""
    from kws.model.model import Model

    return WebServer(WebApp(Path(store), model or Model.load(), voices), host, port, verbose)


def main_loop(server: WebServer) -> None:
    try:
        server.serve_forever()
    finally:
        server.server_close()
        print("stopped", file=sys.stderr)
