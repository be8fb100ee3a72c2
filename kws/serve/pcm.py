"""Wyoming audio to the detector's: PCM of any rate, sample width and channel count to 16 kHz mono
float32, streaming."""
from __future__ import annotations

import numpy as np

from kws.audio.io import SAMPLE_RATE, AudioError, prepare


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
