"""Real recordings from ../shared/data as labelled word clips.

- FSDD: spoken digits (8 kHz, trimmed tight), label = the digit's word, speaker in the name.
- wake words: alexa / computer / jarvis, long lead-in and trailing silence: trimmed by energy.

``pack`` writes a compact, compressed subset (for carrying to the GPU machine as validation data);
the evaluation reads the folders directly.

    python -m kws.corpus.real --data ../shared/data --out .carry/real.npz
"""
from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import List, NamedTuple, Optional

import numpy as np

from kws.audio.io import AudioError, load_audio
from kws.audio.io import trim_silence

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
WAKEWORDS = ("alexa", "computer", "jarvis")
DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


class Clip(NamedTuple):
    path: Path
    label: str
    speaker: str
    source: str


def fsdd_clips(data: Path) -> List[Clip]:
    out = []
    for p in sorted((data / "fsdd" / "recordings").glob("*.wav")):
        digit, speaker, _take = p.stem.split("_")
        out.append(Clip(p, DIGITS[int(digit)], speaker, "fsdd"))
    return out


def wakeword_clips(data: Path) -> List[Clip]:
    out = []
    for w in WAKEWORDS:
        for p in sorted((data / "wakewords" / w).iterdir()):
            if p.suffix.lower() in (".wav", ".flac"):
                out.append(Clip(p, w, "", "wakewords"))
    return out


def load_clip(clip: Clip, trim: bool = True) -> np.ndarray:
    x = load_audio(clip.path)
    if trim and clip.source == "wakewords":
        x = trim_silence(x, top_db=30.0, margin_s=0.08)
    return x


def speaker_half(speaker: str) -> str:
    """Deterministic half of the speechocean762 speakers ('0001'): 'a' tuning, 'b' held out."""
    import zlib

    return "a" if zlib.crc32(speaker.encode()) % 2 == 0 else "b"


def speech_files(data: Path, half: Optional[str] = None) -> List[Path]:
    """speechocean762 train recordings in file name order; ``half``: only that half's speakers
    (speaker_half of the folder's number, SPEAKER0001 -> '0001'); None: all speakers."""
    files = sorted((Path(data) / "speechocean762-train" / "audio").rglob("*.ogg"))
    if half is not None:
        files = [f for f in files if speaker_half(f.parent.name.replace("SPEAKER", "")) == half]
    return files


def read_speech(data: Path, seconds: float, rng: Optional[random.Random] = None,
                max_files: Optional[int] = None, half: Optional[str] = None) -> List[np.ndarray]:
    """speechocean762 train sentences (real read speech, none of the test keywords), in file
    name order or shuffled by ``rng``, until ``seconds`` of audio are loaded (the last file
    whole). ``half``: only speakers of that half (speaker_half); None: all speakers."""
    files = speech_files(data, half)[:max_files]
    if rng is not None:
        rng.shuffle(files)
    out, total = [], 0
    for f in files:
        x = load_audio(f)
        out.append(x)
        total += x.size
        if total >= seconds * 16000:
            break
    return out


def held_out_speech_files(data: Path) -> List[Path]:
    """Real speech by speakers never trained on: LibriSpeech test-other (librispeech-bits) and
    the held-out half 'b' of the speechocean762 speakers."""
    return sorted((Path(data) / "librispeech-bits" / "test-other").glob("*.opus")) + speech_files(data, "b")


def babble(data: Path, talkers: int, seconds: float, seed: int = 0,
           files: Optional[List[Path]] = None) -> np.ndarray:
    """``talkers`` overlapping streams of real speech, each normalised to the same level and
    summed: babble (2-8 talkers) or crowd (20 and more). ``files``: whose speech (default: the
    held-out speakers, held_out_speech_files)."""
    rng = random.Random(seed)
    files = files or held_out_speech_files(data)
    n = int(seconds * 16000)
    out = np.zeros(n, np.float32)
    cache: dict = {}
    for _ in range(talkers):
        parts, total = [], 0
        while total < n:
            f = rng.choice(files)
            if f not in cache:
                cache[f] = load_audio(f)
            x = cache[f]
            x = x / max(1e-5, float(np.sqrt(np.mean(x ** 2))))
            parts.append(x)
            total += x.size
        stream = np.concatenate(parts)
        s = rng.randrange(0, stream.size - n + 1)
        out += stream[s:s + n]
    return (out / max(1e-5, float(np.abs(out).max())) * 0.5).astype(np.float32)


def split_of(clip: Clip) -> str:
    """Deterministic half split: 'a' (tuning) or 'b' (held-out testing), by file name hash."""
    import zlib

    return "a" if zlib.crc32(clip.path.name.encode() + clip.label.encode()) % 2 == 0 else "b"


def pack(data: Path, out: Path, fsdd_per_digit: int = 40, per_wakeword: int = 80, seed: int = 0) -> dict:
    rng = random.Random(seed)
    chosen: List[Clip] = []
    fsdd = fsdd_clips(data)
    # only split 'a' (validation while training); split 'b' stays unseen for the reported numbers
    for d in DIGITS:
        chosen += rng.sample([c for c in fsdd if c.label == d and split_of(c) == "a"], fsdd_per_digit)
    wake = wakeword_clips(data)
    for w in WAKEWORDS:
        chosen += rng.sample([c for c in wake if c.label == w and split_of(c) == "a"], per_wakeword)
    audio, kept = [], []
    for c in chosen:
        try:
            x = load_clip(c)
        except AudioError as exc:   # a few FLAC files of the wake-word set are damaged
            print(f"skipped: {exc}")
            continue
        audio.append(np.round(np.clip(x, -1, 1) * 32767).astype(np.int16))
        kept.append(c)
    chosen = kept
    lengths = np.array([a.size for a in audio], dtype=np.int64)
    np.savez_compressed(out, audio=np.concatenate(audio), length=lengths,
                        label=np.array([c.label for c in chosen]),
                        source=np.array([c.source for c in chosen]))
    return {"clips": len(chosen), "seconds": float(lengths.sum() / 16000)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kws.corpus.real", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    print(pack(args.data, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
