"""The background bank's audio: about 11 hours that hold no keyword, none of it audio the
evaluation tests on, as segments of about a minute (kind, 16 kHz audio).

    python -m export.model --talk DIR --music A.ogg --music B.ogg --music C.ogg [--household DEB]

Kinds (hours with the defaults; ``export.model`` writes the exact hours into the manifest):

- ``speech`` (2.4 h): real read speech of the training side: LibriSpeech train-clean-100 (251
  speakers) and the tuning half of the speechocean762 speakers, utterances joined into 60-s
  stretches as a stream would bring them;
- ``talk`` (>= 4 h): Kokoro-82M talk, natural sentences in the 28 voices and blends of two at
  0.85-1.15x speed, paused as someone talking (``python -m kws.corpus.kokoro_talk --split bank``;
  never the split the evaluation uses);
- ``tv`` (``tv_minutes``, 150 by default): talk or read speech over music at 0-15 dB, as a
  television brings it;
- ``speech+babble`` (20 min) and ``babble`` (45 min): real speech under babble of 3-8 other
  talkers, and babble or crowd of 2-30 talkers alone;
- ``music`` (all the music given, about 1.7 h): four Debian music packages (GPL-2+ game music:
  wesnoth-1.16-music, singularity-music, hyperrogue-music, planetblupi-music-ogg), cut by
  ``python -m kws.corpus.stage music``; the evaluation's music is another package's
  (warzone2100-music);
- ``household`` (20 min): a fan's hum and rush, running water, dish clatter, and the freedesktop
  sound theme's bells, phones and alarms (sound-theme-freedesktop, CC-BY-SA / GPL-2+) over room
  noise;
- ``noise`` (6 min): white, pink and brown noise.

Levels are drawn per segment (speech as recorded; music, noise and babble -35 to -12 dBFS).
Everything is deterministic for a seed.
"""
from __future__ import annotations

import random
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from kws.audio.io import load_audio
from kws.corpus.real import babble, speech_files

SR = 16000
SEGMENT_S = 60.0


def speech_sources(data: Path) -> List[Path]:
    """Training-side read speech: never the evaluation's speakers."""
    ls = sorted((Path(data) / "librispeech-bits" / "train-clean-100").glob("*.opus"))
    return ls + speech_files(data, "a")


def stretches(files: List[Path], seconds: float, rng: random.Random) -> Iterator[np.ndarray]:
    """The files' audio, in a shuffled order, cut into stretches of ``seconds`` (the last shorter)."""
    files = list(files)
    rng.shuffle(files)
    buf: List[np.ndarray] = []
    n = 0
    want = int(seconds * SR)
    for f in files:
        x = load_audio(f)
        buf.append(x)
        n += x.size
        while n >= want:
            cat = np.concatenate(buf)
            yield cat[:want]
            buf, n = [cat[want:]], cat.size - want
    if n > SR * 5:
        yield np.concatenate(buf)


def coloured_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    w = rng.normal(size=n)
    if kind == "white":
        x = w
    else:
        f = np.fft.rfftfreq(n, 1 / SR)
        f[0] = f[1]
        spec = np.fft.rfft(w) / (np.sqrt(f) if kind == "pink" else f)
        x = np.fft.irfft(spec, n)
    return (x / np.abs(x).max()).astype(np.float32)


def level(x: np.ndarray, db: float) -> np.ndarray:
    """``x`` scaled to an RMS of ``db`` dBFS."""
    rms = float(np.sqrt(np.mean(x ** 2))) + 1e-9
    return (x * (10 ** (db / 20) / rms)).astype(np.float32)


def rms_db(x: np.ndarray) -> float:
    """``x``'s RMS level in dBFS."""
    return 20 * float(np.log10(np.sqrt(np.mean(x ** 2)) + 1e-9))


def _band(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(x.size, 1 / SR)
    spec[(f < lo) | (f > hi)] = 0
    return np.fft.irfft(spec, x.size).astype(np.float32)


def _envelope(n: int, rng: np.random.Generator, rate_hz: float, depth: float) -> np.ndarray:
    k = max(2, int(n / SR * rate_hz))
    pts = 1 + depth * rng.uniform(-1, 1, k)
    return np.interp(np.arange(n), np.linspace(0, n, k), pts).astype(np.float32)


def household(seconds: float, rng: np.random.Generator, sounds: Sequence[np.ndarray] = ()) -> np.ndarray:
    """One stretch of household noise: a fan, running water, dish clatter or the theme's sounds."""
    n = int(seconds * SR)
    kind = rng.choice(["fan", "water", "clatter", "sounds" if len(sounds) else "fan"])
    t = np.arange(n) / SR
    if kind == "fan":
        hum = sum(np.sin(2 * np.pi * rng.uniform(48, 62) * h * t + rng.uniform(0, 6)) / h for h in (1, 2, 3, 5))
        x = coloured_noise(rng.choice(["pink", "brown"]), n, rng) + 0.3 * hum * rng.uniform(0.1, 1)
        x = x * _envelope(n, rng, 0.2, 0.1)
    elif kind == "water":
        x = _band(rng.normal(size=n).astype(np.float32), rng.uniform(300, 1200), rng.uniform(3000, 7000))
        x = x * _envelope(n, rng, 8.0, 0.5)
    else:
        x = 0.05 * coloured_noise("pink", n, rng)
        if kind == "clatter":
            for _ in range(int(seconds * rng.uniform(0.5, 3))):
                at, d = rng.integers(0, n - SR), rng.uniform(0.05, 0.4)
                m = int(d * SR)
                f0 = rng.uniform(1500, 7000)
                burst = np.sin(2 * np.pi * f0 * np.arange(m) / SR) * np.exp(-np.arange(m) / (m / 5))
                x[at:at + m] += burst * rng.uniform(0.3, 1.0)
        else:
            for _ in range(int(seconds / 6)):
                s = sounds[rng.integers(len(sounds))]
                at = rng.integers(0, max(1, n - s.size))
                m = min(s.size, n - at)
                x[at:at + m] += s[:m] / (np.abs(s).max() + 1e-6) * rng.uniform(0.3, 1.0)
    return level(np.asarray(x, np.float32), rng.uniform(-40, -15))


def theme_sounds(deb: Optional[Path]) -> List[np.ndarray]:
    """The sounds of a Debian sound theme package (sound-theme-freedesktop), 16 kHz."""
    if deb is None:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        files = sorted(p for p in Path(tmp).rglob("*") if p.suffix.lower() in (".oga", ".ogg", ".wav"))
        return [load_audio(p) for p in files]


def talk_files(talk: Optional[Path]) -> List[Path]:
    if talk is None:
        return []
    files = sorted(p for p in Path(talk).rglob("*") if p.suffix.lower() in (".ogg", ".opus", ".wav", ".flac"))
    if not files:
        raise SystemExit(f"{talk}: no talk audio inside (python -m kws.corpus.kokoro_talk --split bank)")
    return files


def segments(data: Path, talk: Optional[Path], music: Sequence[Path], household_deb: Optional[Path] = None,
             seed: int = 0, tv_minutes: int = 150, babble_minutes: int = 45,
             household_minutes: int = 20) -> Iterator[Tuple[str, np.ndarray]]:
    """The bank's segments, one at a time (11 hours of audio do not fit in memory at once)."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    files = speech_sources(data)
    for x in stretches(files, SEGMENT_S, rng):
        yield "speech", x
    talks = talk_files(talk)
    for f in talks:
        yield "talk", load_audio(f)
    tracks = [load_audio(m) for m in music]
    minute = int(SEGMENT_S * SR)
    for i in range(tv_minutes):                      # talk (or read speech) over music, as a television
        if talks and i % 3:
            x = load_audio(talks[rng.randrange(len(talks))])[:minute]
        else:
            x = next(stretches([rng.choice(files) for _ in range(12)], SEGMENT_S, rng))
        if tracks:
            m = tracks[rng.randrange(len(tracks))]
            s = rng.randrange(0, max(1, m.size - x.size))
            bed = np.resize(m[s:s + x.size], x.size)
            x = x + level(bed, rms_db(x) - rng.uniform(0, 15))
        yield "tv", np.clip(x, -1, 1).astype(np.float32)
    for _ in range(20):                              # read speech under babble
        x = next(stretches([rng.choice(files) for _ in range(12)], SEGMENT_S, rng))
        b = babble(data, rng.randint(3, 8), x.size / SR, rng.randrange(1 << 30), files)
        yield "speech+babble", x + level(b, rms_db(x) - rng.uniform(5, 15))
    for _ in range(babble_minutes):                  # babble and crowd alone
        yield "babble", level(babble(data, rng.randint(2, 30), SEGMENT_S, rng.randrange(1 << 30), files),
                              rng.uniform(-35, -15))
    for m in tracks:                                 # all the music, in minutes, at random levels
        for s in range(0, m.size - SR * 10, minute):
            yield "music", level(m[s:s + minute], rng.uniform(-35, -12))
    sounds = theme_sounds(household_deb)
    for _ in range(household_minutes):
        yield "household", household(SEGMENT_S, nrng, sounds)
    for kind in ("white", "pink", "brown"):          # 2 minutes of each noise
        for _ in range(2):
            yield "noise", level(coloured_noise(kind, minute, nrng), rng.uniform(-50, -20))
