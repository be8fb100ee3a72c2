"""espeak-ng and flite voices for benchmarks that need speech Kokoro did not make (kws renders
typed keywords with Kokoro: a stream spoken by other engines keeps the detector's templates and
its test audio apart). benchmarks/latency_live.py speaks its planted keywords with them.

Each render returns mono int16 audio at 16 kHz, trimmed of leading and trailing silence and
normalised to 0.7 of full scale, or None where the engine failed or gave silence. An engine that
is not installed is not offered (``available_engines()``).
"""
from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from kws.audio.io import SAMPLE_RATE, resample, trim_silence

ESPEAK_ACCENTS = ("en-us", "en-us", "en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland",
                  "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
ESPEAK_VARIANTS = (
    "", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "klatt",
    "klatt2", "klatt3", "klatt4", "klatt6", "croak", "adam", "Alex", "Alicia", "Andrea", "Andy",
    "Annie", "aunty", "belinda", "benjamin", "boris", "caleb", "david", "Denis", "ed", "edward",
    "Gene", "gustave", "Henrique", "Hugo", "iven", "iven2", "iven3", "Jacky", "john", "Lee",
    "linda", "Marco", "Mario", "max", "Michael", "michel", "Mike", "norbert", "paul", "quincy",
    "rob", "robert", "steph", "steph2", "steph3", "travis", "victor", "zac", "anika", "grandpa",
    "grandma", "shelby", "sandro", "announcer")
FLITE_VOICES = ("kal16", "awb", "rms", "slt")


@dataclass
class Render:
    text: str
    engine: str
    voice: str
    params: Dict[str, float] = field(default_factory=dict)


def available_engines() -> List[str]:
    return [e for e in ("espeak-ng", "flite") if shutil.which(e)]


def random_render(text: str, engine: str, rng: random.Random) -> Render:
    """Draw a voice and prosody for ``engine``."""
    if engine == "espeak-ng":
        accent = rng.choice(ESPEAK_ACCENTS)
        variant = rng.choice(ESPEAK_VARIANTS)
        voice = accent + (f"+{variant}" if variant else "")
        return Render(text, engine, voice, {"speed": rng.randint(115, 210), "pitch": rng.randint(20, 80)})
    if engine == "flite":
        return Render(text, engine, rng.choice(FLITE_VOICES),
                      {"stretch": round(rng.uniform(0.8, 1.3), 3), "f0": rng.randint(90, 210)})
    raise ValueError(f"unknown TTS engine {engine!r}")


def _command(r: Render, path: str) -> List[str]:
    if r.engine == "espeak-ng":
        return ["espeak-ng", "-v", r.voice, "-s", str(int(r.params["speed"])), "-p", str(int(r.params["pitch"])),
                "-w", path, r.text]
    if r.engine == "flite":
        return ["flite", "-voice", r.voice, "--setf", f"duration_stretch={r.params['stretch']}", "--setf",
                f"int_f0_target_mean={r.params['f0']}", "-t", r.text, "-o", path]
    raise ValueError(f"unknown TTS engine {r.engine!r}")


def synthesize(renders: Sequence[Render]) -> List[Optional[np.ndarray]]:
    """int16 audio of each render (None where the engine failed or gave silence)."""
    tmp = tempfile.mkdtemp()
    out: List[Optional[np.ndarray]] = [None] * len(renders)
    try:
        for i, r in enumerate(renders):
            path = os.path.join(tmp, f"{i}.wav")
            if subprocess.run(_command(r, path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=60).returncode == 0:
                out[i] = _finish(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _read_wav(path: str) -> np.ndarray:
    with wave.open(path, "rb") as w:
        sr, n, ch, width = w.getframerate(), w.getnframes(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(n)
    if width != 2:
        raise RuntimeError(f"{path}: expected 16-bit PCM")
    x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if ch > 1:
        x = x.reshape(-1, ch).mean(axis=1)
    return resample(x, sr, SAMPLE_RATE)


def _finish(path: str) -> Optional[np.ndarray]:
    try:
        x = trim_silence(_read_wav(path))
    except Exception:
        return None
    if x.size < SAMPLE_RATE // 20 or np.abs(x).max() < 1e-3:
        return None
    x = x / max(1e-3, np.abs(x).max()) * 0.7
    return np.round(x * 32767).astype(np.int16)
