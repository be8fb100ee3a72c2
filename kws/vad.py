"""webrtcvad gating, streaming: one speech flag per 10 ms slot, independent of chunk sizes."""
from __future__ import annotations

import numpy as np

from kws.ringbuffer import RingBuffer

FRAME = 480      # 30 ms at 16 kHz, webrtcvad's longest frame
SLOT = 160       # 10 ms, one mel hop


class StreamingVad:
    def __init__(self, mode: int = 2, capacity_slots: int = 1000):
        import webrtcvad

        if mode not in (0, 1, 2, 3):
            raise ValueError(f"VAD mode must be 0-3, got {mode}")
        self._vad = webrtcvad.Vad(mode)
        self._pending = np.zeros(0, dtype=np.int16)
        self.flags = RingBuffer(capacity_slots, 1, dtype=np.uint8)

    def push(self, chunk: np.ndarray) -> None:
        pcm = np.clip(np.asarray(chunk, dtype=np.float32) * 32768.0, -32768, 32767).astype(np.int16)
        buf = np.concatenate([self._pending, pcm]) if self._pending.size else pcm
        n = buf.size // FRAME
        out = np.zeros(3 * n, dtype=np.uint8)
        for i in range(n):
            out[3 * i: 3 * i + 3] = self._vad.is_speech(buf[i * FRAME:(i + 1) * FRAME].tobytes(), 16000)
        self.flags.push(out[:, None])
        self._pending = buf[n * FRAME:]

    def speech_fraction(self, start_slot: int, stop_slot: int) -> float:
        """Fraction of speech among slots [start, stop) (those already decided)."""
        stop = min(stop_slot, self.flags.total)
        start = max(start_slot, self.flags.total - self.flags.capacity, 0)
        if stop <= start:
            return 0.0
        return float(self.flags.get(start, stop).mean())
