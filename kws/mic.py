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


def stream(device=None, block_s: float = 0.05, overflow_warn=print) -> Iterator[np.ndarray]:
    """Yield float32 16 kHz mono blocks from the microphone until the caller stops."""
    import soxr

    sd = _sd()
    info = input_device(device)
    rate = int(info["default_samplerate"])
    q: "queue.Queue[np.ndarray]" = queue.Queue(maxsize=200)
    overflows = [0]

    def callback(indata, frames, time_info, status):
        if status.input_overflow:
            overflows[0] += 1
        try:
            q.put_nowait(indata[:, 0].copy())
        except queue.Full:
            overflows[0] += 1

    rs = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32")
    with sd.InputStream(device=device, channels=1, samplerate=rate, dtype="float32",
                        blocksize=int(rate * block_s), callback=callback):
        reported = 0
        while True:
            block = q.get()
            if overflows[0] > reported:
                overflow_warn(f"warning: {overflows[0] - reported} audio block(s) dropped (CPU too slow?)")
                reported = overflows[0]
            yield rs.resample_chunk(block)


def record(seconds: float, device=None) -> np.ndarray:
    from kws.audio import prepare

    sd = _sd()
    info = input_device(device)
    rate = int(info["default_samplerate"])
    data = sd.rec(int(seconds * rate), samplerate=rate, channels=1, dtype="float32", device=device)
    sd.wait()
    return prepare(data, rate, name="recording")
