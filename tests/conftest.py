import atexit
import os
import shutil
import tempfile
import sys
from pathlib import Path

# numpy's BLAS on one thread, as kws runs onnxruntime (KWS_THREADS): with both cores busy, a
# multi-threaded BLAS makes the small matrix products of thresholds and matching many times slower.
# Set before numpy is imported; the commands tests start inherit it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# renderings and typed keywords cached for this test run only, never in the user's cache, and
# removed when the run ends
if "KWS_RENDER_CACHE" not in os.environ:
    os.environ["KWS_RENDER_CACHE"] = tempfile.mkdtemp(prefix="kws-render-cache-")
    atexit.register(shutil.rmtree, os.environ["KWS_RENDER_CACHE"], True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

# Typed keywords in tests are rendered by these 3 of Kokoro's 28 voices (all 28 take about 14 s
# a keyword on one core): American female and male, British female.
VOICES = ("af_heart", "am_michael", "bf_emma")


# where the bundled sample (kws/assets/sample.wav) says each demo keyword, in seconds
SPOKEN = {"computer": 5.4, "jarvis": 12.4, "alexa": 19.8}   # where the words begin (demos/make_sample.py)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def shared_data():
    if not DATA.exists():
        pytest.skip(f"real recordings not found at {DATA} (../shared/data)")
    return DATA


@pytest.fixture
def store_dir(tmp_path, monkeypatch):
    d = tmp_path / "store"
    monkeypatch.setenv("KWS_STORE", str(tmp_path / "userdata"))
    return d


_RENDERS: dict = {}


def _few_voices(mp, voices=VOICES):
    """Typed keywords rendered by ``voices`` only; each rendering made once per test session
    (Kokoro's output is a deterministic function of the phonemes and the voice)."""
    from kws.enroll import kokoro

    real = kokoro.render_timed

    def render_timed(phonemes, rendering, threads=1):
        key = (phonemes, rendering)
        if key not in _RENDERS:
            _RENDERS[key] = real(phonemes, rendering, threads)
        t = _RENDERS[key]
        return t._replace(audio=t.audio.copy()) if hasattr(t, "_replace") else t

    mp.setattr(kokoro, "default_renderings", lambda: [kokoro.Rendering(v) for v in voices])
    mp.setattr(kokoro, "render_timed", render_timed)
    return voices


@pytest.fixture
def few_voices(monkeypatch):
    """Typed keywords (enroll add "...", --keyword, from_texts) spoken by VOICES only."""
    return _few_voices(monkeypatch)


@pytest.fixture
def one_voice(monkeypatch):
    """Typed keywords spoken by one voice: where only the store or the command line is tested."""
    return _few_voices(monkeypatch, VOICES[:1])


def kws_command(voices=VOICES):
    """The command line of ``python -m kws`` with typed keywords rendered by ``voices`` only:
    append the arguments (``[*kws_command(), "detect", "-k", "jarvis"]``)."""
    code = ("import sys; from kws.enroll import kokoro; "
            f"kokoro.default_renderings = lambda: [kokoro.Rendering(v) for v in {list(voices)!r}]; "
            "from kws.commands import main; sys.exit(main(sys.argv[1:]))")
    return [sys.executable, "-c", code]


@pytest.fixture
def recordings(tmp_path):
    """A folder of four recordings r0.wav .. r3.wav cut from the bundled sample (20.7 s of
    speech, overlapping by 1 s), as search indexes them (tests/test_search_*.py)."""
    from kws.audio.io import load_audio, write_wav
    from kws.enroll.demo import sample_recording

    x = load_audio(sample_recording())
    d = tmp_path / "rec"
    d.mkdir()
    for i, (a, b) in enumerate(((0, 6), (5, 11), (10, 16), (14, 20.6))):
        write_wav(d / f"r{i}.wav", x[int(a * 16000):int(b * 16000)])
    return d


@pytest.fixture(scope="session")
def model():
    from kws.model.model import Model

    return Model.load()


def demo_set(names=None):
    """The demo keywords shipped for the shipped model (kws/assets/demo), or those of ``names``,
    read afresh (the caller may change them)."""
    from kws.enroll.demo import demo_store
    from kws.enroll.store import KeywordSet
    from kws.model.model import Model

    ks = KeywordSet.load(demo_store(), Model.load().model_id)
    return ks if names is None else KeywordSet(ks.model_id, [ks[n] for n in names])


def tone(freq=440.0, seconds=1.0, sr=16000, amp=0.3):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def speechlike(rng, seconds=1.0, sr=16000):
    """Noise bursts with a moving formant-like tone: enough for VAD and the front end to react."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    f = 200 + 150 * np.sin(2 * np.pi * 3 * t)
    x = 0.3 * np.sin(2 * np.pi * np.cumsum(f) / sr) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)
    return (x + 0.02 * rng.normal(size=n)).astype(np.float32)
