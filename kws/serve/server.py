"""Wyoming wake-word server: kws for Home Assistant and any other Wyoming client.

    python -m kws serve --uri tcp://127.0.0.1:10400        # or unix:///run/kws.sock

The protocol's events come from the ``wyoming`` package (the ``serve`` extra):

- ``describe`` -> ``info``: the served keywords as wake-word models (name, phrase, languages);
- ``detect`` (names): which of them to listen for on this connection (default: all);
- ``audio-start`` / ``audio-chunk`` / ``audio-stop``: PCM of any rate, 1-4 byte samples and any
  number of channels, converted to 16 kHz mono float32 (streaming soxr resampling) and fed to one
  :class:`~kws.spot.detector.Detector` per connection;
- each detection is sent as ``detection`` (name, timestamp: milliseconds of the keyword's end on
  the client's clock, i.e. the first chunk's timestamp plus the keyword's end in the stream), and
  ``audio-stop`` is answered with ``not-detected`` when nothing fired since ``audio-start``;
- ``ping`` -> ``pong``; other event types are ignored.

Keywords come from the keyword store (``python -m kws.enroll``). Its ``keywords.json`` is looked
at again at most every ``reload_s`` seconds; when it changed, new connections and running
streams use the new keywords (a running stream restarts its detector, so a keyword spoken
across that moment can be missed). With no keyword enrolled the demo keywords are served.

A bad client cannot take the server down: event headers, extra data and payloads have size
limits, a client silent for ``idle_timeout_s`` is dropped, at most ``max_clients`` are served at
once, and each refusal or drop is answered with an ``error`` event where possible and logged.
The detectors run in a thread pool (onnxruntime and numpy release the GIL) so that one client's
audio never stalls the event loop.
"""
from __future__ import annotations

import asyncio
import copy
import ipaddress
import json
import logging
import os
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import List, Optional, Sequence, Set, Tuple
from urllib.parse import urlparse

import numpy as np

from kws import __version__
from kws.audio.io import SAMPLE_RATE, AudioError, prepare
from kws.enroll.demo import demo_keywords
from kws.enroll.store import STORE_FILE, KeywordSet, StoreError, default_store_dir
from kws.errors import MissingExtra, UsageError
from kws.model.model import Model
from kws.spot.detector import Detection, Detector, DetectorConfig

try:
    from wyoming import wake
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.error import Error
    from wyoming.event import Event, async_write_event
    from wyoming.info import Attribution, Describe, Info, WakeModel, WakeProgram
    from wyoming.ping import Ping, Pong
except ImportError as _exc:          # optional extra: KwsServer and serve() say what to install
    _MISSING: Optional[ImportError] = _exc
else:
    _MISSING = None

log = logging.getLogger("kws.serve")

MISSING_MESSAGE = ("python -m kws serve needs the Wyoming protocol package: pip install 'kws[serve]' "
                   "(or pip install wyoming)")


def require_wyoming() -> None:
    """Raise :class:`~kws.errors.MissingExtra` (an ImportError) with the install command when the ``wyoming`` package is missing."""
    if _MISSING is not None:
        raise MissingExtra(MISSING_MESSAGE) from _MISSING


@dataclass(frozen=True)
class ServeConfig:
    """Server settings; the defaults are those of ``python -m kws serve``."""
    uri: str = "tcp://127.0.0.1:10400"     # tcp://HOST:PORT (port 0: any free port) or unix://PATH
    store: Optional[Path] = None            # keyword store folder; None: kws.enroll.store.default_store_dir()
    texts: Tuple[str, ...] = ()             # serve these text keywords instead of the store (no reload)
    threshold: Optional[float] = None       # one threshold for every keyword (default: each its own)
    fa_per_hour: Optional[float] = None     # false alarms an hour the thresholds of ``texts`` are set for (default 1)
    detector: DetectorConfig = DetectorConfig()
    model: Optional[Path] = None            # model folder; None: the shipped model
    languages: Tuple[str, ...] = ("en",)    # what ``info`` says the wake words are in
    max_clients: int = 128                  # connections served at once; more are refused
    idle_timeout_s: float = 60.0            # drop a client that sends nothing for this long
    write_timeout_s: float = 10.0           # drop a client that does not read its events
    max_line: int = 64 * 1024               # bytes of an event's JSON header line
    max_data: int = 64 * 1024               # bytes of an event's extra JSON data
    max_payload: int = 1 << 20              # bytes of one event's payload (5.4 s of 48 kHz stereo 16-bit)
    reload_s: float = 1.0                   # look at the store's keywords.json at most this often
    workers: int = 0                        # detector threads; 0: one per CPU core
    batch_s: float = 0.06                   # hand audio to a detector thread in pieces of at least this
                                            # (10 ms chunks: 6x fewer thread hand-offs; adds <= 60 ms)

    def __post_init__(self):
        if urlparse(self.uri).scheme not in ("tcp", "unix"):
            raise UsageError(f"{self.uri}: the URI must be tcp://HOST:PORT or unix://PATH")
        if self.max_clients < 1 or self.idle_timeout_s <= 0 or self.write_timeout_s <= 0:
            raise UsageError("max_clients must be >= 1 and the timeouts > 0")
        if min(self.max_line, self.max_data, self.max_payload) < 1024 or min(self.reload_s, self.batch_s) < 0:
            raise UsageError("size limits must be >= 1024 bytes, reload_s and batch_s >= 0")


def _text_keywords(texts: Sequence[str], threshold: Optional[float], model: Model,
                   config: DetectorConfig, fa_per_hour: Optional[float] = None) -> KeywordSet:
    return Detector.from_texts(list(texts), threshold=threshold, model=model, config=config,
                               fa_per_hour=fa_per_hour).keywords


class KeywordSource:
    """The keywords served and a version number that changes whenever they do.

    ``--keyword`` texts are fixed. Otherwise the store is read at start (a store that cannot be
    used raises :class:`StoreError`) and again whenever its ``keywords.json`` changes (mtime,
    size or inode); a store that becomes unreadable keeps the keywords served and is logged.
    """

    def __init__(self, model: Model, config: ServeConfig):
        self.model = model
        self.config = config
        self.store = Path(config.store) if config.store else default_store_dir()
        self.version = 0
        self.demo = False
        self._key: object = ()
        self._checked = float("-inf")
        self._demo_set: Optional[KeywordSet] = None
        if config.texts:
            self.keywords = _text_keywords(config.texts, config.threshold, model, config.detector,
                                           config.fa_per_hour)
            self.version = 1
        else:
            self._refresh(initial=True)

    def current(self) -> Tuple[int, KeywordSet]:
        """(version, keywords), re-reading the store when it changed (at most every reload_s)."""
        if not self.config.texts:
            now = time.monotonic()
            if now - self._checked >= self.config.reload_s:
                self._checked = now
                self._refresh(initial=False)
        return self.version, self.keywords

    def _stat(self) -> Optional[Tuple[int, int, int]]:
        try:
            st = os.stat(self.store / STORE_FILE)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def _refresh(self, initial: bool) -> None:
        key = self._stat()
        if key == self._key:
            return
        ks: Optional[KeywordSet] = None
        if key is not None:
            try:
                ks = KeywordSet.load(self.store, self.model.model_id)
            except StoreError as exc:
                if initial:
                    raise
                # a newer write changes the key again and is read then
                self._key = key
                log.warning("keyword store changed but cannot be read; still serving %s: %s",
                            ", ".join(self.keywords.names), exc)
                return
        self._key = key
        if ks is None or len(ks) == 0:
            if self._demo_set is None:
                self._demo_set = demo_keywords(self.model)
            if not self.demo or initial:
                log.info("no keywords enrolled in %s: serving the demo keywords %s (add your own with "
                         "python -m kws.enroll add \"...\"; they are picked up without a restart)",
                         self.store, ", ".join(self._demo_set.names))
            ks, self.demo = self._demo_set, True
        else:
            self.demo = False
            log.info("%s %d keyword(s) from %s: %s", "serving" if initial else "keyword store changed; now serving",
                     len(ks), self.store, ", ".join(ks.names))
        if self.config.threshold is not None:          # --threshold: one for all, the store left as it is
            ks = copy.deepcopy(ks)
            for k in ks:
                k.threshold = float(self.config.threshold)
        self.keywords = ks
        self.version += 1


class PcmConverter:
    """Wyoming PCM (any rate, 1-4 byte signed little-endian samples, 1 byte unsigned, any channel
    count) to 16 kHz mono float32, streaming.

    Resampling keeps its state across chunks (soxr.ResampleStream), so chunk boundaries leave no
    seams; bytes of an incomplete frame wait for the next chunk. :meth:`finish` returns what the
    resampler still holds at the end of the stream.
    """

    def __init__(self, rate: int, width: int, channels: int):
        if width not in (1, 2, 3, 4):
            raise AudioError(f"sample width {width} bytes is not supported (1, 2, 3 or 4)")
        if not 1 <= channels <= 32:
            raise AudioError(f"{channels} channels is not supported (1 to 32)")
        if not 1000 <= rate <= 384000:
            raise AudioError(f"sample rate {rate} Hz is not supported (1000 to 384000)")
        self.format = (rate, width, channels)
        self._frame = width * channels
        self._carry = b""
        self._rs = None
        if rate != SAMPLE_RATE:
            import soxr

            self._rs = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")

    def _decode(self, raw: bytes) -> np.ndarray:
        rate, width, channels = self.format
        if width == 3:           # 24-bit: put the three bytes in the top of an int32
            b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.uint32)
            a = (b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24).view(np.int32)
        else:
            a = np.frombuffer(raw, {1: np.uint8, 2: "<i2", 4: "<i4"}[width])
        # integer scaling to [-1, 1) and channel mixing as for files; the rate is handled here
        return prepare(a.reshape(-1, channels), SAMPLE_RATE, name="audio-chunk")

    def __call__(self, payload: bytes) -> np.ndarray:
        raw = self._carry + payload
        usable = len(raw) - len(raw) % self._frame
        self._carry = raw[usable:]
        if usable == 0:
            return np.zeros(0, np.float32)
        x = self._decode(raw[:usable])
        return x if self._rs is None else self._rs.resample_chunk(x)

    def finish(self) -> np.ndarray:
        self._carry = b""
        if self._rs is None:
            return np.zeros(0, np.float32)
        return self._rs.resample_chunk(np.zeros(0, np.float32), last=True)


class ClientError(Exception):
    """A request the server answers with an ``error`` event and then closes the connection."""

    def __init__(self, text: str, code: str):
        super().__init__(text)
        self.code = code


def _length(header: dict, key: str, limit: int) -> int:
    n = header.get(key)
    if n is None:
        return 0
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ClientError(f"{key} must be a non-negative integer, got {n!r}", "malformed-event")
    if n > limit:
        raise ClientError(f"{key} {n} is over the limit of {limit} bytes", "event-too-large")
    return n


def _name_key(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").split())


def _audio_format(data: dict) -> Tuple[int, int, int]:
    vals = [data.get(k) for k in ("rate", "width", "channels")]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        raise ClientError(f"audio events need integer rate, width and channels, got {vals}", "bad-audio-format")
    return vals[0], vals[1], vals[2]


class _Connection:
    """One client: reads events with limits, one Detector per audio stream."""

    def __init__(self, server: "KwsServer", reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, name: str):
        self.server = server
        self.cfg = server.config
        self.reader = reader
        self.writer = writer
        self.name = name
        self.names: Optional[List[str]] = None    # from `detect`; None: every keyword
        self.det: Optional[Detector] = None
        self.version = -1
        self.conv: Optional[PcmConverter] = None
        self.streaming = False
        self.start_ts: Optional[int] = None       # audio-start's timestamp (ms)
        self.base_ms: Optional[float] = None      # client clock (ms) at stream position 0
        self.offset = 0.0                         # stream seconds before the current detector
        self.fed = 0                              # samples fed to the current detector
        self.pending: List[np.ndarray] = []       # converted audio waiting for batch_s of it
        self.pending_n = 0
        self.found = 0                            # detections since audio-start
        self.audio_s = 0.0
        self.detections = 0

    # ------------------------------------------------------------------ reading
    async def _read_event(self) -> Optional["Event"]:
        try:
            line = await self.reader.readline()
        except ValueError as exc:      # asyncio's LimitOverrunError, surfaced by readline
            raise ClientError(f"event header longer than {self.cfg.max_line} bytes", "event-too-large") from exc
        if not line:
            return None
        if not line.endswith(b"\n"):
            raise asyncio.IncompleteReadError(line, None)
        try:
            header = json.loads(line)
        except ValueError:
            raise ClientError("event header is not JSON", "malformed-event") from None
        if not isinstance(header, dict) or not isinstance(header.get("type"), str):
            raise ClientError("event header must be a JSON object with a string 'type'", "malformed-event")
        data = header.get("data") or {}
        if not isinstance(data, dict):
            raise ClientError("event 'data' must be a JSON object", "malformed-event")
        n = _length(header, "data_length", self.cfg.max_data)
        if n:
            try:
                extra = json.loads(await self.reader.readexactly(n))
            except ValueError:
                raise ClientError("event data is not JSON", "malformed-event") from None
            if not isinstance(extra, dict):
                raise ClientError("event data must be a JSON object", "malformed-event")
            data = {**data, **extra}
        p = _length(header, "payload_length", self.cfg.max_payload)
        payload = await self.reader.readexactly(p) if p else None
        return Event(type=header["type"], data=data, payload=payload)

    async def send(self, event: "Event") -> None:
        await asyncio.wait_for(async_write_event(event, self.writer), self.cfg.write_timeout_s)

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        why = "client closed the connection"
        try:
            while True:
                try:
                    event = await asyncio.wait_for(self._read_event(), self.cfg.idle_timeout_s)
                except asyncio.TimeoutError:
                    why = f"nothing received for {self.cfg.idle_timeout_s:g} s; dropped"
                    log.warning("%s: %s", self.name, why)
                    break
                if event is None:
                    break
                await self._handle(event)
        except ClientError as exc:
            why = f"{exc.code}: {exc}"
            log.warning("%s: %s; closing", self.name, exc)
            try:
                await self.send(Error(text=str(exc), code=exc.code).event())
            except (ConnectionError, asyncio.TimeoutError):
                pass
        except asyncio.IncompleteReadError:
            why = "disconnected in the middle of an event"
            log.warning("%s: %s", self.name, why)
        except asyncio.TimeoutError:
            why = f"did not read its events for {self.cfg.write_timeout_s:g} s; dropped"
            log.warning("%s: %s", self.name, why)
        except ConnectionError as exc:
            why = f"connection lost ({exc.__class__.__name__})"
        except asyncio.CancelledError:
            why = "server stopping"
            raise
        except Exception:       # a bug must cost this connection only, never the server
            why = "internal error"
            log.exception("%s: internal error; closing this connection", self.name)
        finally:
            if self.streaming:
                why += " (mid-stream, no audio-stop)"
            self._save_room()
            self.det = self.conv = None
            self.writer.close()
            log.info("%s: closed: %s; %.1f s of audio, %d detection(s)", self.name, why,
                     self.audio_s, self.detections)

    async def _handle(self, event: "Event") -> None:
        t = event.type
        if AudioChunk.is_type(t):
            await self._chunk(event)
            return
        await self._flush()                  # every other event sees all audio before it processed
        log.debug("%s: %s %s", self.name, t, event.data)
        if Describe.is_type(t):
            await self.send(self.server.info().event())
        elif wake.Detect.is_type(t):
            names = event.data.get("names")
            if names is not None and (not isinstance(names, list) or
                                      not all(isinstance(n, str) for n in names)):
                raise ClientError(f"detect: names must be a list of strings, got {names!r}", "malformed-event")
            self.names = names or None
            self.version = -1        # applies at once, also to a running stream
        elif AudioStart.is_type(t):
            self._start(event.data)
        elif AudioStop.is_type(t):
            await self._stop()
        elif Ping.is_type(t):
            await self.send(Pong(text=event.data.get("text")).event())
        else:
            log.debug("%s: ignoring event %r", self.name, t)

    # ------------------------------------------------------------------ audio
    def _selected(self, ks: KeywordSet) -> KeywordSet:
        if self.names is None:
            return ks
        # exact names first; else as openWakeWord's clients spell them (any case, '_' for ' ')
        by_key = {_name_key(n): n for n in ks.names}
        found = {n: n if n in ks else by_key.get(_name_key(n)) for n in self.names}
        have = [m for m in dict.fromkeys(found.values()) if m is not None]
        missing = [n for n, m in found.items() if m is None]
        if missing:
            log.warning("%s: asked for unknown wake word(s) %s (serving: %s)", self.name,
                        ", ".join(missing), ", ".join(ks.names))
        if not have:
            raise ClientError(f"none of the wake words {self.names} is served (have: {', '.join(ks.names)})",
                              "unknown-wake-word")
        return KeywordSet(ks.model_id, [replace(ks[n]) for n in have])

    def _new_detector(self) -> None:
        from kws.spot.room import AdaptConfig, room_file

        src = self.server.source
        version, ks = src.current()
        cfg, room = self.cfg.detector, None
        if self.cfg.threshold is not None:          # thresholds given: they stay
            cfg = replace(cfg, adapt=AdaptConfig(enabled=False))
        elif not self.cfg.texts:                     # what the store's keywords learnt persists
            room = room_file(src.store, src.demo)
        self.det = Detector(self._selected(ks), self.server.model, cfg, room=room)
        self.version = version
        self.fed = 0

    def _start(self, data: dict) -> None:
        fmt = _audio_format(data)
        try:
            self.conv = PcmConverter(*fmt)
        except ValueError as exc:
            raise ClientError(str(exc), "bad-audio-format") from None
        ts = data.get("timestamp")
        self.start_ts = ts if isinstance(ts, (int, float)) and not isinstance(ts, bool) else None
        self.base_ms = None
        self.offset = 0.0
        self.pending, self.pending_n = [], 0
        self.found = 0
        self.streaming = True
        self._new_detector()
        log.debug("%s: audio-start %d Hz, %d byte(s), %d channel(s)", self.name, *fmt)

    async def _chunk(self, event: "Event") -> None:
        fmt = _audio_format(event.data)
        if not self.streaming:              # a chunk without audio-start starts a stream
            self._start(event.data)
        elif fmt != self.conv.format:       # the format changed mid-stream
            await self._feed(self.conv.finish())
            try:
                self.conv = PcmConverter(*fmt)
            except ValueError as exc:
                raise ClientError(str(exc), "bad-audio-format") from None
        ts = event.data.get("timestamp")
        if self.base_ms is None and isinstance(ts, (int, float)) and not isinstance(ts, bool):
            self.base_ms = ts - 1000.0 * (self.offset + (self.fed + self.pending_n) / SAMPLE_RATE)
        await self._feed(self.conv(event.payload or b""))

    async def _feed(self, x: np.ndarray) -> None:
        """Queue converted audio; the detector gets it in pieces of at least batch_s."""
        if x.size:
            self.pending.append(x)
            self.pending_n += x.size
        if self.pending_n >= self.cfg.batch_s * SAMPLE_RATE:
            await self._flush()

    async def _flush(self) -> None:
        if not self.pending_n:
            return
        x = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        self.pending, self.pending_n = [], 0
        if self.server.source.current()[0] != self.version:
            await self._emit(self.det.flush())      # keywords changed: a new detector, same clock
            self.offset += self.fed / SAMPLE_RATE
            self._new_detector()
        loop = asyncio.get_running_loop()
        events = await loop.run_in_executor(self.server.pool, self.det.process, x)
        self.fed += x.size
        self.audio_s += x.size / SAMPLE_RATE
        await self._emit(events)

    async def _emit(self, events: List[Detection]) -> None:
        for e in events:
            end = self.offset + e.end
            base = self.base_ms if self.base_ms is not None else (self.start_ts or 0)
            log.info("%s: DETECTED %r score %.3f (threshold %.3f) at %.2f s", self.name, e.keyword,
                     e.score, e.threshold, end)
            await self.send(wake.Detection(name=e.keyword, timestamp=int(round(base + 1000 * end))).event())
            self.found += 1
            self.detections += 1

    async def _stop(self) -> None:
        if self.streaming:
            await self._feed(self.conv.finish())
            await self._flush()
            await self._emit(self.det.flush())
        if not self.found:
            await self.send(wake.NotDetected().event())
        self.streaming = False
        self.found = 0
        self._save_room()
        self.det = self.conv = None

    def _save_room(self) -> None:
        """Keep what this stream's thresholds learnt (kws.spot.room), for the next stream and restarts."""
        if self.det is None:
            return
        try:
            self.det.save_room()
        except OSError as exc:
            log.warning("%s: learnt thresholds not saved: %s", self.name, exc)


def _bound_uri(scheme: str, sock) -> str:
    name = sock.getsockname()
    if scheme == "unix":
        return f"unix://{name}"
    host = name[0]
    return f"tcp://[{host}]:{name[1]}" if ":" in host else f"tcp://{host}:{name[1]}"


class KwsServer:
    """The Wyoming wake-word server. ``await start()``, then ``await serve_forever()`` or ``stop()``.

    One shared model and keyword source; one :class:`Detector` per connection.
    """

    def __init__(self, config: ServeConfig = ServeConfig(), model: Optional[Model] = None):
        require_wyoming()
        self.config = config
        self.model = model or Model.load(config.model)
        self.source = KeywordSource(self.model, config)
        self.workers = config.workers or os.cpu_count() or 1
        self.pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="kws-detect")
        self.address: Optional[str] = None
        self._server: Optional[asyncio.AbstractServer] = None
        self._unix_path: Optional[Path] = None
        self._tasks: Set[asyncio.Task] = set()
        self._seen = 0
        self._info: Tuple[int, Optional["Info"]] = (-1, None)
        # the first calls of the front end and head allocate; make them here, not in the first client's stream
        Detector(self.source.keywords, self.model, replace(config.detector, vad=False)).process(
            np.zeros(SAMPLE_RATE, np.float32))

    @property
    def clients(self) -> int:
        """Connections being served now."""
        return len(self._tasks)

    def info(self) -> "Info":
        version, ks = self.source.current()
        if self._info[0] != version:
            who = Attribution(name="kws", url="")
            # Home Assistant shows a model's description as the wake word's name: the phrase
            models = [WakeModel(name=k.name, attribution=who, installed=True, version=self.model.model_id,
                                description=k.text or k.name, phrase=k.text or k.name,
                                languages=list(self.config.languages))
                      for k in ks]
            prog = WakeProgram(name="kws", attribution=who, installed=True, version=__version__,
                               description="kws: open-vocabulary keyword spotting (type a word, it listens)"
                                           + (" - demo keywords, none enrolled" if self.source.demo else ""),
                               models=models)
            self._info = (version, Info(wake=[prog]))
        return self._info[1]

    async def start(self) -> str:
        """Bind and start accepting; returns the bound address (with the real port for port 0)."""
        u = urlparse(self.config.uri)
        cfg = self.config
        if u.scheme == "tcp":
            if not u.hostname or u.port is None:
                raise UsageError(f"{cfg.uri}: a tcp URI needs a host and a port, e.g. tcp://127.0.0.1:10400")
            self._server = await asyncio.start_server(self._accept, u.hostname, u.port, limit=cfg.max_line)
            try:
                loopback = ipaddress.ip_address(u.hostname).is_loopback
            except ValueError:
                loopback = u.hostname == "localhost"
            if not loopback:
                log.warning("listening on %s: reachable from other machines, and Wyoming has no "
                            "authentication; bind to 127.0.0.1 unless the client is elsewhere", u.hostname)
        else:                       # unix (ServeConfig checked the scheme)
            path = Path(u.netloc + u.path)
            if path.exists() or path.is_symlink():
                if not stat.S_ISSOCK(path.lstat().st_mode):
                    raise UsageError(f"{path}: exists and is not a socket; not replacing it")
                path.unlink()
            self._server = await asyncio.start_unix_server(self._accept, str(path), limit=cfg.max_line)
            self._unix_path = path
        self.address = _bound_uri(u.scheme, self._server.sockets[0])
        _, ks = self.source.current()
        log.info("listening on %s for %s (%d thread(s), at most %d clients)", self.address,
                 ", ".join(ks.names), self.workers, cfg.max_clients)
        return self.address

    async def serve_forever(self) -> None:
        assert self._server is not None, "call start() first"
        try:
            await self._server.serve_forever()
        except asyncio.CancelledError:
            pass

    async def stop(self) -> None:
        """Stop accepting, end every connection, free the threads and the socket file."""
        if self._server is not None:
            self._server.close()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        self.pool.shutdown(wait=True)
        if self._unix_path is not None:
            self._unix_path.unlink(missing_ok=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._seen += 1
        peer = writer.get_extra_info("peername")
        name = f"#{self._seen} " + (f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and peer else "unix")
        if len(self._tasks) >= self.config.max_clients:
            log.warning("%s: refused, %d clients connected already (max_clients)", name, len(self._tasks))
            try:
                await asyncio.wait_for(async_write_event(Error(
                    text=f"server busy: {len(self._tasks)} clients connected", code="busy").event(), writer),
                    self.config.write_timeout_s)
            except (ConnectionError, asyncio.TimeoutError):
                pass
            writer.close()
            return
        task = asyncio.current_task()
        self._tasks.add(task)
        log.info("%s: connected (%d client(s))", name, len(self._tasks))
        try:
            await _Connection(self, reader, writer, name).run()
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.discard(task)


def serve(config: ServeConfig = ServeConfig()) -> None:
    """Run the server until SIGINT or SIGTERM."""
    import signal

    async def main() -> None:
        server = KwsServer(config)
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):      # not on this platform's loop
                pass
        runner = asyncio.create_task(server.serve_forever())
        await stop.wait()
        log.info("stopping (%d client(s) connected)", server.clients)
        await server.stop()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        log.info("stopped")

    asyncio.run(main())
