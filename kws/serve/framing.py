"""The Wyoming protocol on the wire: events read with limits, the errors a client is answered with.

The protocol's events come from the ``wyoming`` package (the ``serve`` extra), imported here
only: where it is missing, importing one of them (as the server's modules do) raises
:class:`~kws.errors.MissingExtra`, which says what to install. An event is a JSON header line,
optional extra JSON data and an optional payload. A bad client cannot take the server down:
headers, extra data and payloads have size limits (:class:`~kws.serve.config.ServeConfig`), and
what breaks them is a :class:`ClientError`, answered with an ``error`` event.
"""
from __future__ import annotations

import asyncio
import json
from typing import Optional, Tuple

from kws.errors import MissingExtra
from kws.serve.config import ServeConfig

try:
    from wyoming import wake
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.error import Error
    from wyoming.event import Event, async_write_event
    from wyoming.info import Attribution, Describe, Info, WakeModel, WakeProgram
    from wyoming.ping import Ping, Pong
except ImportError as _exc:          # optional extra: importing the server says what to install
    _MISSING: Optional[ImportError] = _exc
else:
    _MISSING = None
_PROTOCOL = ("wake", "AudioChunk", "AudioStart", "AudioStop", "Error", "Event", "async_write_event", "Attribution",
             "Describe", "Info", "WakeModel", "WakeProgram", "Ping", "Pong")

MISSING_MESSAGE = ("python -m kws serve needs the Wyoming protocol package: pip install 'kws[serve]' "
                   "(or pip install wyoming)")


def require_wyoming() -> None:
    """Raise :class:`~kws.errors.MissingExtra` (an ImportError) with the install command when the
    ``wyoming`` package is missing."""
    if _MISSING is not None:
        raise MissingExtra(MISSING_MESSAGE) from _MISSING


def __getattr__(name: str):
    """A protocol name asked for without the ``wyoming`` package: what to install."""
    if name in _PROTOCOL:
        require_wyoming()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def audio_format(data: dict) -> Tuple[int, int, int]:
    vals = [data.get(k) for k in ("rate", "width", "channels")]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in vals):
        raise ClientError(f"audio events need integer rate, width and channels, got {vals}", "bad-audio-format")
    return vals[0], vals[1], vals[2]


async def read_event(reader: asyncio.StreamReader, cfg: ServeConfig) -> Optional["Event"]:
    """The next event from a client, its header, data and payload held to ``cfg``'s limits
    (:class:`ClientError` otherwise); None at the end of the stream."""
    try:
        line = await reader.readline()
    except ValueError as exc:      # asyncio's LimitOverrunError, surfaced by readline
        raise ClientError(f"event header longer than {cfg.max_line} bytes", "event-too-large") from exc
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
    n = _length(header, "data_length", cfg.max_data)
    if n:
        try:
            extra = json.loads(await reader.readexactly(n))
        except ValueError:
            raise ClientError("event data is not JSON", "malformed-event") from None
        if not isinstance(extra, dict):
            raise ClientError("event data must be a JSON object", "malformed-event")
        data = {**data, **extra}
    p = _length(header, "payload_length", cfg.max_payload)
    payload = await reader.readexactly(p) if p else None
    return Event(type=header["type"], data=data, payload=payload)
