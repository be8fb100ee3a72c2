"""Audio input: read any soundfile format, mix to mono, resample to 16 kHz float32.

Every failure raises :class:`AudioError` naming the file and what is wrong with it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np

SAMPLE_RATE = 16000

PathLike = Union[str, os.PathLike]


class AudioError(ValueError):
    """Audio that cannot be used: missing, unreadable, empty, too short or malformed."""


def to_mono(data: np.ndarray) -> np.ndarray:
    """Average the channels of a (frames, channels) array; pass 1-D arrays through."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data.mean(axis=1)
    elif data.ndim != 1:
        raise AudioError(f"expected 1-D or (frames, channels) audio, got shape {data.shape}")
    return data


def resample(audio: np.ndarray, orig_sr: int, target_sr: int = SAMPLE_RATE) -> np.ndarray:
    """High-quality resampling (soxr, 'HQ'): float32 in, float32 out."""
    audio = np.asarray(audio, dtype=np.float32)
    if orig_sr <= 0:
        raise AudioError(f"sample rate must be positive, got {orig_sr}")
    if orig_sr == target_sr or audio.size == 0:
        return audio
    import soxr

    return soxr.resample(audio, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def prepare(audio: np.ndarray, sample_rate: int, *, min_seconds: float = 0.0,
            name: str = "audio") -> np.ndarray:
    """Mono float32 at 16 kHz from any array and rate; integer PCM is scaled to [-1, 1)."""
    audio = np.asarray(audio)
    if audio.dtype.kind in "iu":
        info = np.iinfo(audio.dtype)
        half = (float(info.max) - float(info.min) + 1.0) / 2.0   # 32768 for int16, 128 for uint8
        audio = (audio.astype(np.float64) - (float(info.min) + half)) / half
    elif audio.dtype.kind != "f":
        raise AudioError(f"{name}: unsupported sample type {audio.dtype}")
    audio = to_mono(audio).astype(np.float32, copy=False)
    if audio.size == 0:
        raise AudioError(f"{name}: contains no samples")
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{name}: contains NaN or infinite samples")
    audio = resample(audio, int(sample_rate))
    if audio.size < min_seconds * SAMPLE_RATE:
        raise AudioError(
            f"{name}: {audio.size / SAMPLE_RATE:.3f} s long, at least {min_seconds:.3f} s needed")
    return audio


def load_audio(path: PathLike, *, min_seconds: float = 0.0) -> np.ndarray:
    """Read ``path`` (WAV, FLAC, Ogg/Opus, ... anything libsndfile reads) as mono 16 kHz float32."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types (LibsndfileError, RuntimeError...)
        raise AudioError(f"{path}: cannot be read as audio ({exc})") from exc
    return prepare(data, sr, min_seconds=min_seconds, name=str(path))


def write_wav(path: PathLike, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write float audio as 16-bit PCM WAV."""
    import soundfile as sf

    sf.write(str(path), np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16")
