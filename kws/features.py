"""Log-mel front end (numpy, run time): offline and streaming forms that give the same frames.

Frame ``i`` covers samples ``[i*hop, i*hop + win)``; no centre padding, so a stream can emit a
frame as soon as its last sample arrives. The torch twin used in training lives in
``kws.train.features`` and uses the filterbank and window defined here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class MelConfig:
    """Feature parameters. They are recorded in a model bundle's manifest and checked on load."""

    sample_rate: int = 16000
    win_length: int = 400      # 25 ms
    hop_length: int = 160      # 10 ms
    n_fft: int = 512
    n_mels: int = 128
    f_min: float = 20.0
    f_max: float = 8000.0
    log_floor: float = 1e-6

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> "MelConfig":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def _hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def _mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(cfg: MelConfig = MelConfig()) -> np.ndarray:
    """(n_mels, n_fft//2+1) triangular HTK-scale filterbank, float32."""
    n_bins = cfg.n_fft // 2 + 1
    freqs = np.linspace(0.0, cfg.sample_rate / 2.0, n_bins)
    mel_pts = np.linspace(_hz_to_mel(cfg.f_min), _hz_to_mel(cfg.f_max), cfg.n_mels + 2)
    hz_pts = _mel_to_hz(mel_pts)
    fb = np.zeros((cfg.n_mels, n_bins), dtype=np.float64)
    for m in range(cfg.n_mels):
        lo, mid, hi = hz_pts[m], hz_pts[m + 1], hz_pts[m + 2]
        up = (freqs - lo) / max(mid - lo, 1e-9)
        down = (hi - freqs) / max(hi - mid, 1e-9)
        fb[m] = np.maximum(0.0, np.minimum(up, down))
    return fb.astype(np.float32)


def analysis_window(cfg: MelConfig = MelConfig()) -> np.ndarray:
    """Periodic Hann window of ``win_length`` samples (same as torch.hann_window)."""
    n = np.arange(cfg.win_length, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / cfg.win_length)).astype(np.float32)


def num_frames(n_samples: int, cfg: MelConfig = MelConfig()) -> int:
    if n_samples < cfg.win_length:
        return 0
    return 1 + (n_samples - cfg.win_length) // cfg.hop_length


class LogMel:
    """Offline log-mel: ``LogMel()(audio)`` -> (frames, n_mels) float32."""

    def __init__(self, cfg: MelConfig = MelConfig()):
        self.cfg = cfg
        self._fb_t = np.ascontiguousarray(mel_filterbank(cfg).T)
        self._window = analysis_window(cfg)

    def frames_from(self, audio: np.ndarray, start: int, count: int) -> np.ndarray:
        """Log-mel of ``count`` frames whose first frame starts at sample ``start``."""
        cfg = self.cfg
        if count <= 0:
            return np.zeros((0, cfg.n_mels), dtype=np.float32)
        idx = start + np.arange(count)[:, None] * cfg.hop_length + np.arange(cfg.win_length)[None, :]
        frames = audio[idx] * self._window
        spec = np.fft.rfft(frames, n=cfg.n_fft, axis=1)
        power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
        mel = power @ self._fb_t
        return np.log(np.maximum(mel, cfg.log_floor)).astype(np.float32)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"expected mono 1-D audio, got shape {audio.shape}")
        return self.frames_from(audio, 0, num_frames(audio.size, self.cfg))


@dataclass
class StreamingLogMel:
    """Push PCM chunks of any size, get exactly the frames the offline computation gives.

    Keeps only the samples a future frame still needs (less than one window).
    """

    cfg: MelConfig = MelConfig()
    _pending: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32), repr=False)
    frames_emitted: int = 0

    def __post_init__(self):
        self._logmel = LogMel(self.cfg)

    def push(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        buf = np.concatenate([self._pending, chunk]) if self._pending.size else chunk
        n = num_frames(buf.size, self.cfg)
        out = self._logmel.frames_from(buf, 0, n)
        consumed = n * self.cfg.hop_length
        self._pending = buf[consumed:].copy()
        self.frames_emitted += n
        return out

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)
        self.frames_emitted = 0
