"""The server's settings (``python -m kws serve``'s options)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple
from urllib.parse import urlparse

from kws.errors import UsageError
from kws.spot.detector import DetectorConfig


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
