"""Wyoming wake-word server: kws for Home Assistant and any other Wyoming client.

    python -m kws serve --uri tcp://127.0.0.1:10400        # or unix:///run/kws.sock

This module accepts the connections (:class:`KwsServer`); one client's events are handled by
kws.serve.handler, read off the wire by kws.serve.framing, its audio converted by kws.serve.pcm,
the keywords served kept by kws.serve.source. The protocol's events come from the ``wyoming``
package (the ``serve`` extra):

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
import ipaddress
import logging
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Optional, Set, Tuple
from urllib.parse import urlparse

import numpy as np

from kws import __version__
from kws.audio.io import SAMPLE_RATE
from kws.errors import UsageError
from kws.model.model import Model
from kws.serve.config import ServeConfig
from kws.serve.framing import Attribution, Error, Info, WakeModel, WakeProgram, async_write_event
from kws.serve.handler import Connection
from kws.serve.source import KeywordSource
from kws.spot.detector import Detector

log = logging.getLogger("kws.serve")


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
            await Connection(self, reader, writer, name).run()
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
