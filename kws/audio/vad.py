"""Speech gating, streaming: one speech flag per 10 ms slot, independent of chunk sizes.

A slot is speech when webrtcvad says so for its 30 ms frame *and* (with ``noise_margin_db`` set)
the speech-band energy (250-3500 Hz) of that frame and the one before stands at least the margin
above the noise floor, the lowest such energy of the last ``floor_s`` seconds. webrtcvad alone
takes loud stationary noise for speech (white noise at -20 dBFS, pink at -30 dBFS: nearly every
frame passed, and the detector fired on it). Stationary noise never rises far above its own
minimum: over an hour of pink noise at -30 dBFS, two isolated 60 ms frames stood more than 4 dB
above the 1.5 s minimum, none in white noise over half an hour; speech comes and goes in
syllables that stand well above it. (Brown noise, whose band energy swings more, webrtcvad
itself rejects.) benchmarks/noise_gate.py measures the gate on real wake-word clips in noise.
"""
from __future__ import annotations

from collections import deque
from typing import Deque, Optional, Tuple

import numpy as np

from kws.audio.ringbuffer import RingBuffer
from kws.errors import UsageError

FRAME = 480      # 30 ms at 16 kHz, webrtcvad's longest frame
SLOT = 160       # 10 ms, one mel hop
BAND_HZ = (250.0, 3500.0)     # speech band of the noise-floor check
_WINDOW = np.hanning(FRAME)
_freqs = np.fft.rfftfreq(FRAME, 1.0 / 16000)
_BAND = (_freqs >= BAND_HZ[0]) & (_freqs <= BAND_HZ[1])


class NoiseFloor:
    """Sliding minimum of frame energies (dB) over the last ``window`` frames, streaming."""

    def __init__(self, window: int):
        if window < 1:
            raise UsageError("noise floor window must be at least one frame")
        self.window = window
        self._mins: Deque[Tuple[int, float]] = deque()    # (frame index, energy), energies increasing
        self._n = 0

    def push(self, energy_db: float) -> float:
        """Add the next frame's energy; return the floor over the window that ends with it."""
        while self._mins and self._mins[-1][1] >= energy_db:
            self._mins.pop()
        self._mins.append((self._n, energy_db))
        if self._mins[0][0] <= self._n - self.window:
            self._mins.popleft()
        self._n += 1
        return self._mins[0][1]


class StreamingVad:
    """Speech flags of a stream. ``noise_margin_db`` None: webrtcvad alone; the detector passes
    ``DetectorConfig.vad_noise_margin_db`` (4 dB)."""

    def __init__(self, mode: int = 2, capacity_slots: int = 1000,
                 noise_margin_db: Optional[float] = None, floor_s: float = 1.5):
        import webrtcvad

        if mode not in (0, 1, 2, 3):
            raise UsageError(f"VAD mode must be 0-3, got {mode}")
        if noise_margin_db is not None and noise_margin_db < 0:
            raise UsageError(f"noise margin must be >= 0 dB, got {noise_margin_db}")
        self._vad = webrtcvad.Vad(mode)
        self._pending = np.zeros(0, dtype=np.int16)
        self.noise_margin_db = noise_margin_db
        self._floor = NoiseFloor(max(1, int(round(floor_s * 16000 / FRAME))))
        self.flags = RingBuffer(capacity_slots, 1, dtype=np.uint8)
        self._prev_power: Optional[float] = None

    def push(self, chunk: np.ndarray) -> None:
        pcm = np.clip(np.asarray(chunk, dtype=np.float32) * 32768.0, -32768, 32767).astype(np.int16)
        buf = np.concatenate([self._pending, pcm]) if self._pending.size else pcm
        n = buf.size // FRAME
        out = np.zeros(3 * n, dtype=np.uint8)
        for i in range(n):
            out[3 * i: 3 * i + 3] = self._vad.is_speech(buf[i * FRAME:(i + 1) * FRAME].tobytes(), 16000)
        if self.noise_margin_db is not None and n:
            out &= self._above_floor(buf[:n * FRAME])
        self.flags.push(out[:, None])
        self._pending = buf[n * FRAME:]

    def _above_floor(self, pcm: np.ndarray) -> np.ndarray:
        """One 0/1 per 10 ms slot: the speech-band energy of its 30 ms frame and the one before
        stands ``noise_margin_db`` above the floor."""
        frames = pcm.reshape(-1, FRAME).astype(np.float64)
        frames = (frames - frames.mean(axis=1, keepdims=True)) * _WINDOW
        power = (np.abs(np.fft.rfft(frames, axis=1)[:, _BAND]) ** 2).sum(axis=1) / FRAME
        first = power[0] if self._prev_power is None else self._prev_power
        prev = np.concatenate([[first], power[:-1]])
        self._prev_power = float(power[-1])
        energy = 10.0 * np.log10((power + prev) / 2 + 1.0)     # 60 ms: this frame and the last; int16 units
        ok = np.zeros(energy.size, dtype=np.uint8)
        for i, e in enumerate(energy):
            ok[i] = e >= self._floor.push(float(e)) + self.noise_margin_db
        return np.repeat(ok, FRAME // SLOT)

    def speech_fraction(self, start_slot: int, stop_slot: int) -> float:
        """Fraction of speech among slots [start, stop) (those already decided)."""
        stop = min(stop_slot, self.flags.total)
        start = max(start_slot, self.flags.total - self.flags.capacity, 0)
        if stop <= start:
            return 0.0
        return float(self.flags.get(start, stop).mean())
