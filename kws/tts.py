"""Offline TTS engines: espeak-ng (accents x voice variants), flite, festival.

Enrollment renders a keyword and close-sounding words with them to tune its threshold
(kws.thresholds); the corpus builder (kws.corpus.build) renders its training words with them.
Each render returns mono int16 audio at 16 kHz, trimmed of leading and trailing silence, and the
exact engine, voice and parameters used, so every clip of the corpus can be reproduced.
Engines that are not installed are skipped (``available_engines()`` says which are there).
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

from kws.audio import SAMPLE_RATE, resample, trim_silence

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
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")


@dataclass
class Render:
    text: str
    engine: str
    voice: str
    params: Dict[str, float] = field(default_factory=dict)


def available_engines() -> List[str]:
    out = []
    if shutil.which("espeak-ng"):
        out.append("espeak-ng")
    if shutil.which("flite"):
        out.append("flite")
    if shutil.which("festival"):
        out.append("festival")
    return out


def random_render(text: str, engine: str, rng: random.Random) -> Render:
    """Draw a voice and prosody for ``engine``."""
    if engine == "espeak-ng":
        accent = rng.choice(ESPEAK_ACCENTS)
        variant = rng.choice(ESPEAK_VARIANTS)
        voice = accent + (f"+{variant}" if variant else "")
        return Render(text, engine, voice, {"speed": rng.randint(115, 210),
                                            "pitch": rng.randint(20, 80)})
    if engine == "flite":
        return Render(text, engine, rng.choice(FLITE_VOICES),
                      {"stretch": round(rng.uniform(0.8, 1.3), 3),
                       "f0": rng.randint(90, 210)})
    if engine == "festival":
        return Render(text, engine, rng.choice(FESTIVAL_VOICES),
                      {"stretch": round(rng.uniform(0.8, 1.3), 3)})
    raise ValueError(f"unknown TTS engine {engine!r}")


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


def synthesize(renders: Sequence[Render], workdir: Optional[str] = None) -> List[Optional[np.ndarray]]:
    """Render a list in one process (festival renders share one festival process).

    Returns int16 arrays (None where the engine failed or gave silence)."""
    tmp = tempfile.mkdtemp(dir=workdir)
    out: List[Optional[np.ndarray]] = [None] * len(renders)
    fest: List[int] = []
    try:
        for i, r in enumerate(renders):
            path = os.path.join(tmp, f"{i}.wav")
            if r.engine == "espeak-ng":
                cmd = ["espeak-ng", "-v", r.voice, "-s", str(int(r.params["speed"])),
                       "-p", str(int(r.params["pitch"])), "-w", path, r.text]
            elif r.engine == "flite":
                cmd = ["flite", "-voice", r.voice, "--setf",
                       f"duration_stretch={r.params['stretch']}", "--setf",
                       f"int_f0_target_mean={r.params['f0']}", "-t", r.text, "-o", path]
            elif r.engine == "festival":
                fest.append(i)
                continue
            else:
                raise ValueError(r.engine)
            if subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=60).returncode == 0:
                out[i] = _finish(path)
        if fest:
            script = os.path.join(tmp, "batch.scm")
            libdir = os.environ.get("FESTIVAL_LIBDIR")
            with open(script, "w") as fh:
                for i in fest:
                    r = renders[i]
                    text = r.text.replace('"', "")
                    fh.write(f"(voice_{r.voice})\n(Parameter.set 'Duration_Stretch {r.params['stretch']})\n"
                             f"(set! utt (SynthText \"{text}\"))\n"
                             f"(utt.save.wave utt \"{os.path.join(tmp, f'{i}.wav')}\" 'riff)\n")
            # init.scm and the voices live in festival's *data* dir (Debian: /usr/share/festival);
            # --libdir alone leaves festival looking for init.scm there (Debian's festival)
            cmd = ["festival"] + (["--libdir", libdir, "--datadir", libdir] if libdir else []) + ["-b", script]
            env = {**os.environ, "FESTDATADIR": libdir} if libdir else None
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=60 + 5 * len(fest), env=env)
            for i in fest:
                path = os.path.join(tmp, f"{i}.wav")
                if os.path.exists(path):
                    out[i] = _finish(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _finish(path: str) -> Optional[np.ndarray]:
    try:
        x = trim_silence(_read_wav(path))
    except Exception:
        return None
    if x.size < SAMPLE_RATE // 20 or np.abs(x).max() < 1e-3:
        return None
    x = x / max(1e-3, np.abs(x).max()) * 0.7
    return np.round(x * 32767).astype(np.int16)


def tts_clips(texts: Sequence[str], per_text: int, seed: int = 0) -> Dict[str, List[np.ndarray]]:
    """Renderings of each text by the installed engines (empty when there is none), float32."""
    engines = available_engines()
    if not engines:
        return {t: [] for t in texts}
    rng = random.Random(seed)
    renders = [(t, random_render(t, engines[i % len(engines)], rng)) for t in texts for i in range(per_text)]
    audio = synthesize([r for _, r in renders])
    out: Dict[str, List[np.ndarray]] = {t: [] for t in texts}
    for (t, _), a in zip(renders, audio):
        if a is not None:
            out[t].append(a.astype(np.float32) / 32768.0)
    return out
