"""Make the bundled sample recording kws/assets/sample.wav: sentences holding the demo keywords,
spoken by Kokoro-82M in blends of two of its voices (new voices: none of the 28 a typed keyword's
templates come from) at speeds other than 1, separated by pauses, over quiet pink noise (the
stand-in for a microphone).

    python demos/make_sample.py
"""
from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np

from kws.audio.io import write_wav
from kws.enroll import kokoro
from kws.enroll.phonemes import pronounce

LINES = [
    "Good morning. I think it will rain later today.",
    "Computer, turn on the kitchen lights.",
    "The meeting moved to three o'clock.",
    "Jarvis, play some music please.",
    "We should buy bread and milk on the way home.",
    "Alexa, what time is it?",
]


def speak(text: str, rendering: kokoro.Rendering) -> np.ndarray:
    """A sentence in one voice, its punctuation kept (Kokoro pauses at commas)."""
    out = []
    for token in re.findall(r"[A-Za-z']+|[,.?]", text):
        if token in ",.?":
            out[-1] += token
        else:
            out.append(kokoro.pronunciation_phonemes(pronounce(token)))
    return kokoro.render(" ".join(out), rendering)


def main() -> None:
    rng = np.random.default_rng(0)
    pick = random.Random(0)
    names = kokoro.voices().names
    parts, starts, at = [], [], 0
    for i, text in enumerate(LINES):
        a, b = pick.sample(names, 2)
        r = kokoro.Rendering(a, round(pick.uniform(0.9, 1.1), 2), b, round(pick.uniform(0.3, 0.7), 2))
        parts += [np.zeros(int(16000 * pick.uniform(0.6, 1.2)), np.float32), speak(text, r) * 0.5]
        starts.append((at + parts[-2].size) / 16000)
        at += parts[-2].size + parts[-1].size
    x = np.concatenate(parts + [np.zeros(8000, np.float32)])
    white = rng.normal(size=x.size)
    spec = np.fft.rfft(white) / np.sqrt(np.arange(1, x.size // 2 + 2))
    pink = np.fft.irfft(spec, x.size)
    pink *= np.sqrt(np.mean(x ** 2) / np.mean(pink ** 2) / 10 ** (25 / 10))
    out = Path(__file__).resolve().parents[1] / "kws" / "assets" / "sample.wav"
    write_wav(out, (x + pink).astype(np.float32))
    print(f"wrote {out} ({x.size / 16000:.1f} s)")
    for text, t in zip(LINES, starts):
        print(f"  {t:5.2f} s  {text}")


if __name__ == "__main__":
    main()
