"""Make the bundled sample recording kws/assets/sample.wav: TTS sentences containing the demo
keywords, separated by pauses, over quiet pink noise (the stand-in for a microphone).

    python demos/make_sample.py        # needs flite (apt-get install flite)
"""
from __future__ import annotations

import random
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from kws.audio import load_audio, write_wav

LINES = [
    ("slt", "Good morning. I think it will rain later today."),
    ("rms", "Computer, turn on the kitchen lights."),
    ("slt", "The meeting moved to three o'clock."),
    ("awb", "Jarvis, play some music please."),
    ("rms", "We should buy bread and milk on the way home."),
    ("slt", "Alexa, what time is it?"),
]


def main() -> None:
    rng = np.random.default_rng(0)
    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (voice, text) in enumerate(LINES):
            wav = Path(tmp) / f"{i}.wav"
            subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(wav)], check=True)
            parts += [np.zeros(int(16000 * random.Random(i).uniform(0.6, 1.2)), np.float32), load_audio(wav) * 0.5]
    x = np.concatenate(parts + [np.zeros(8000, np.float32)])
    white = rng.normal(size=x.size)
    spec = np.fft.rfft(white) / np.sqrt(np.arange(1, x.size // 2 + 2))
    pink = np.fft.irfft(spec, x.size)
    pink *= np.sqrt(np.mean(x ** 2) / np.mean(pink ** 2) / 10 ** (25 / 10))
    out = Path(__file__).resolve().parents[1] / "kws" / "assets" / "sample.wav"
    write_wav(out, (x + pink).astype(np.float32))
    print(f"wrote {out} ({x.size / 16000:.1f} s)")


if __name__ == "__main__":
    main()
