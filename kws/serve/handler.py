"""One client of the server: its events read and answered, one detector per audio stream.

``describe`` is answered with ``info``; ``detect`` (names) chooses the keywords of this
connection; ``audio-start`` / ``audio-chunk`` / ``audio-stop`` feed a :class:`~kws.spot.detector.Detector`
through :class:`~kws.serve.pcm.PcmConverter`, in pieces of at least ``batch_s`` on the server's
thread pool; each detection is sent as ``detection`` (the client's clock: the first chunk's
timestamp plus the keyword's end in the stream), and ``audio-stop`` is answered with
``not-detected`` when nothing fired since ``audio-start``; ``ping`` -> ``pong``. What the
thresholds learnt is saved when a stream ends.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import List, Optional

import numpy as np

from kws.audio.io import SAMPLE_RATE
from kws.enroll.store import KeywordSet
from kws.serve.framing import (AudioChunk, AudioStart, AudioStop, ClientError, Describe, Error, Event, Ping, Pong,
                               async_write_event, audio_format, read_event, wake)
from kws.serve.pcm import PcmConverter
from kws.spot.detector import Detection, Detector

log = logging.getLogger("kws.serve")


def _name_key(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").split())


class Connection:
    """One client of ``server`` (a kws.serve.server.KwsServer: its config, model, keyword
    source and thread pool): reads events with limits, one Detector per audio stream."""

    def __init__(self, server, reader: asyncio.StreamReader,
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
        return await read_event(self.reader, self.cfg)

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
        fmt = audio_format(data)
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
        fmt = audio_format(event.data)
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
