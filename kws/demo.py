"""The demo: keywords detected when none is enrolled, and the bundled sample recording."""
from __future__ import annotations

from pathlib import Path

DEMO_KEYWORDS = ("computer", "jarvis", "alexa")


def sample_recording() -> Path:
    """``kws/assets/sample.wav``: TTS sentences over noise that hold the three demo keywords."""
    return Path(__file__).resolve().parent / "assets" / "sample.wav"
