"""Microphone input through sounddevice: device's own rate, converted to 16 kHz on the fly."""
from __future__ import annotations

import queue
from typing import Iterator

import numpy as np

from kws.audio import SAMPLE_RATE


class NoMicrophone(RuntimeError):
    pass


def _sd():
    try:
        import sounddevice as sd
    except OSError as exc:     # PortAudio library missing
        raise NoMicrophone(f"audio input unavailable: {exc}") from exc
    return sd


def input_device(device=None) -> dict:
    sd = _sd()
    try:
        info = sd.query_devices(device, kind="input")
    except Exception as exc:
        raise NoMicrophone(f"no input device{'' if device is None else ' ' + repr(device)}: {exc}") from exc
    if not info or info.get("max_input_channels", 0) < 1:
        raise NoMicrophone("no input device with a channel to record from")
    return info


STALL_S = 5.0      # no audio for this long from a running input stream: the device is gone


def stream(device=None, block_s: float = 0.05, overflow_warn=print) -> Iterator[np.ndarray]:
    """Yield float32 16 kHz mono blocks from the microphone until the caller stops.

    The audio callback never raises (an exception there would make PortAudio stop the stream and
    leave this generator waiting forever): a block it cannot take is counted, and reported
    through ``overflow_warn`` with the blocks dropped for lack of room. A stream that stops
    delivering raises :class:`NoMicrophone`.
    """
    import soxr

    sd = _sd()
    info = input_device(device)
    rate = int(info["default_samplerate"])
    q: "queue.Queue[np.ndarray]" = queue.Queue(maxsize=200)
    overflows = [0]
    failed = [0, None]          # blocks the callback could not take, the last exception

    def callback(indata, frames, time_info, status):
        try:
            if status.input_overflow:
                overflows[0] += 1
            q.put_nowait(np.array(indata[:, 0], dtype=np.float32))
        except queue.Full:
            overflows[0] += 1
        except Exception as exc:
            failed[0] += 1
            failed[1] = exc

    rs = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")
    with sd.InputStream(device=device, channels=1, samplerate=rate, dtype="float32",
                        blocksize=int(rate * block_s), callback=callback) as st:
        reported = [0, 0]
        while True:
            try:
                block = q.get(timeout=STALL_S)
            except queue.Empty:
                raise NoMicrophone(f"no audio from the input device for {STALL_S:.0f} s "
                                   f"({'stream stopped' if not st.active else 'unplugged?'})") from None
            if overflows[0] > reported[0]:
                overflow_warn(f"warning: {overflows[0] - reported[0]} audio block(s) dropped (CPU too slow?)")
                reported[0] = overflows[0]
            if failed[0] > reported[1]:
                overflow_warn(f"warning: {failed[0] - reported[1]} audio block(s) dropped: {failed[1]!r}")
                reported[1] = failed[0]
            yield rs.resample_chunk(block)


def record(seconds: float, device=None) -> np.ndarray:
    from kws.audio import prepare

    sd = _sd()
    info = input_device(device)
    rate = int(info["default_samplerate"])
    data = sd.rec(int(seconds * rate), samplerate=rate, channels=1, dtype="float32", device=device)
    sd.wait()
    return prepare(data, rate, name="recording")
