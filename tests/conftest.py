import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def shared_data():
    if not DATA.exists():
        pytest.skip(f"real recordings not found at {DATA} (../shared/data)")
    return DATA


@pytest.fixture
def espeak():
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    return "espeak-ng"


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    d = tmp_path / "store"
    monkeypatch.setenv("KWS_STORE", str(tmp_path / "userdata"))
    return d


def tone(freq=440.0, seconds=1.0, sr=16000, amp=0.3):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def speechlike(rng, seconds=1.0, sr=16000):
    """Noise bursts with a moving formant-like tone: enough for VAD and the encoder to react."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f = 200 + 150 * np.sin(2 * np.pi * 3 * t)
    x = 0.3 * np.sin(2 * np.pi * np.cumsum(f) / sr) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)
    return (x + 0.02 * rng.normal(size=n)).astype(np.float32)
