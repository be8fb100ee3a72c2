"""Audio input: read any soundfile format, mix to mono, resample to 16 kHz float32.

Every failure raises :class:`AudioError` naming the file and what is wrong with it. A file that
ends before its header says it should (a truncated WAV, AIFF or FLAC) is read up to the cut with
an :class:`AudioWarning` naming the file and how much of it was there.
"""
from __future__ import annotations

import os
import struct
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Tuple, Union

import numpy as np

from kws.errors import KwsError

SAMPLE_RATE = 16000
MIN_RATE, MAX_RATE = 4000, 768000      # sample rates accepted from files and devices
_BLOCK = 1 << 18                       # frames read at a time: memory follows the data, not the header

PathLike = Union[str, os.PathLike]


class AudioError(KwsError, ValueError):
    """Audio that cannot be used: missing, unreadable, empty, too short or malformed."""


class AudioWarning(UserWarning):
    """Audio that is used, but not all of it was there (a truncated file)."""


@contextmanager
def plain_warnings() -> Iterator[None]:
    """Within the block, an :class:`AudioWarning` prints as one line, ``warning: ...``, on stderr
    (every time, not once per place); other warnings as usual. The command line tools use this."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", AudioWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, AudioWarning):
                print(f"warning: {message}", file=sys.stderr, flush=True)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def to_mono(data: np.ndarray) -> np.ndarray:
    """Average the channels of a (frames, channels) array; pass 1-D arrays through."""
    data = np.asarray(data)
    if data.ndim == 2:
        if data.shape[1] == 0:
            raise AudioError(f"audio of shape {data.shape} has no channels")
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
    if not MIN_RATE <= int(sample_rate) <= MAX_RATE:
        raise AudioError(f"{name}: sample rate {sample_rate} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
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
        with sf.SoundFile(str(path)) as f:
            sr, declared = f.samplerate, f.frames
            if not MIN_RATE <= sr <= MAX_RATE:
                raise AudioError(f"{path}: sample rate {sr} Hz is outside {MIN_RATE}-{MAX_RATE} Hz")
            blocks = []
            while True:
                b = f.read(_BLOCK, dtype="float32", always_2d=True)
                if b.shape[0]:
                    blocks.append(b)
                if b.shape[0] < _BLOCK:
                    break
    except AudioError:
        raise
    except Exception as exc:  # soundfile raises several types (LibsndfileError, RuntimeError...)
        raise AudioError(f"{path}: cannot be read as audio ({exc})") from exc
    if not blocks and declared > 0:
        raise AudioError(f"{path}: no samples could be read, though its header announces "
                         f"{declared / sr:.2f} s (truncated or damaged)")
    data = np.concatenate(blocks) if blocks else np.zeros((0, 1), np.float32)
    announced = max(declared, _header_frames(path) or 0)
    if 0 < data.shape[0] < announced:
        warnings.warn(f"{path}: truncated: read {data.shape[0] / sr:.2f} s of the {announced / sr:.2f} s "
                      f"its header announces ({data.shape[0] / announced:.0%})", AudioWarning, stacklevel=2)
    return prepare(data, sr, min_seconds=min_seconds, name=str(path))


def _header_frames(path: Path) -> Optional[int]:
    """Frames a WAV or AIFF header announces (libsndfile quietly shortens a truncated file's
    count to what is there); None for other formats, streamed WAVs and unusual layouts."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
        if head[:4] in (b"RIFF", b"RIFX") and head[8:12] == b"WAVE":
            end = "<" if head[:4] == b"RIFF" else ">"
            pos, align = 12, 0
            while pos + 8 <= len(head):
                cid, n = head[pos:pos + 4], struct.unpack(end + "I", head[pos + 4:pos + 8])[0]
                if cid == b"fmt " and n >= 16:
                    align = struct.unpack(end + "H", head[pos + 20:pos + 22])[0]
                elif cid == b"data":
                    return n // align if align and n not in (0, 0xFFFFFFFF) else None
                pos += 8 + n + (n & 1)
        elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
            pos = 12
            while pos + 8 <= len(head):
                cid, n = head[pos:pos + 4], struct.unpack(">I", head[pos + 4:pos + 8])[0]
                if cid == b"COMM" and n >= 6:
                    return struct.unpack(">I", head[pos + 10:pos + 14])[0]
                pos += 8 + n + (n & 1)
    except (OSError, struct.error):
        return None
    return None


def write_wav(path: PathLike, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """Write float audio as 16-bit PCM WAV."""
    import soundfile as sf

    sf.write(str(path), np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16")


def sound_span(x: np.ndarray, top_db: float = 40.0) -> Tuple[int, int]:
    """[start, stop) in samples of ``x`` from its first to its last 10 ms frame within ``top_db``
    of its loudest: where its sound is (all of ``x`` when it is shorter than a frame)."""
    hop = SAMPLE_RATE // 100
    n = x.size // hop
    if n == 0:
        return 0, x.size
    e = (x[: n * hop].reshape(n, hop) ** 2).mean(axis=1) + 1e-12
    db = 10 * np.log10(e)
    on = np.nonzero(db > db.max() - top_db)[0]
    return int(on[0] * hop), int((on[-1] + 1) * hop)


def trim_silence(x: np.ndarray, top_db: float = 40.0, margin_s: float = 0.03) -> np.ndarray:
    """Cut leading/trailing parts more than ``top_db`` under the loudest 10 ms frame."""
    a, b = sound_span(x, top_db)
    m = int(margin_s * SAMPLE_RATE)
    return x[max(0, a - m): min(x.size, b + m)]
