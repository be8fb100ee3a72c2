"""Stationary noise is never scored: the VAD gate holds on white, pink and brown noise at any
level, and still opens for speech in that noise."""
import numpy as np
import pytest

from kws import Detector, DetectorConfig
from kws.audio.io import load_audio
from kws.audio.vad import NoiseFloor, StreamingVad
from kws.enroll.demo import sample_recording
from tests.conftest import SPOKEN, demo_set

SR = 16000


def coloured(kind: str, seconds: float, dbfs: float, seed: int = 0) -> np.ndarray:
    """White, pink (1/f power) or brown (1/f^2) Gaussian noise at an RMS level in dBFS."""
    n = int(seconds * SR)
    w = np.random.default_rng(seed).normal(size=n)
    if kind != "white":
        f = np.fft.rfftfreq(n, 1 / SR)
        f[0] = f[1]
        w = np.fft.irfft(np.fft.rfft(w) / (np.sqrt(f) if kind == "pink" else f), n)
    return (w / np.sqrt(np.mean(w ** 2)) * 10 ** (dbfs / 20)).astype(np.float32)


@pytest.fixture(scope="module")
def det(model):
    return Detector(demo_set(["computer", "jarvis"]), model)


def _stream(det, audio, seed=0):
    """Random chunk sizes, as a microphone gives them."""
    det.reset()
    rng, events, pos = np.random.default_rng(seed), [], 0
    while pos < audio.size:
        n = int(rng.integers(160, 4000))
        events += det.process(audio[pos:pos + n])
        pos += n
    return events + det.flush()


@pytest.mark.parametrize("kind", ["white", "pink", "brown"])
@pytest.mark.parametrize("dbfs", [-60, -40, -30, -20])
def test_stationary_noise_gives_no_events(det, kind, dbfs):
    events = _stream(det, coloured(kind, 30, dbfs, seed=dbfs * -7))
    assert events == [], [(e.keyword, round(e.score, 3), e.threshold, e.start) for e in events]


def test_five_minutes_of_gaussian_noise_at_minus_40_dbfs(det):
    """The case reported: 5 min of Gaussian noise at -40 dBFS, keywords computer and jarvis."""
    n0, skipped0 = det.vectors, det.vectors_skipped
    assert _stream(det, coloured("white", 300, -40, seed=40)) == []
    assert det.vectors - n0 == 300 * 16000 // det.frontend.hop          # one vector each 80 ms, from the start
    scored = (det.vectors - n0) - (det.vectors_skipped - skipped0)
    assert scored <= 10, f"{scored} vectors were scored"


def _scores_each_vector(det, audio):
    """Each keyword's score at every vector (-1 where the gate closed), streaming 80 ms at a time."""
    det.reset()
    hop, out = det.frontend.hop, []
    for s in range(0, audio.size, hop):
        before = det.vectors
        det.process(audio[s:s + hop])
        if det.vectors > before:
            out.append(list(det.last_scores.values()))
    return np.array(out)


@pytest.mark.parametrize("kind", [
    "white", "pink", "brown"])
def test_the_gate_still_opens_for_speech_in_noise(model, kind):
    """The bundled sample (speech at about -25 dBFS) with noise at -30 dBFS added: where each demo
    keyword scores best, as it is said, the gate is open (the scores are those the detector without
    the gate gives), and the detections are those without the gate."""
    x = load_audio(sample_recording())
    x = x + coloured(kind, x.size / SR, -30, seed=3)
    gated, open_ = Detector(demo_set(), model), Detector(demo_set(), model, DetectorConfig(vad=False))
    on, off = _scores_each_vector(gated, x), _scores_each_vector(open_, x)
    assert on.shape == off.shape and on.shape[0] > 200
    assert (on == -1).all(axis=1).any(), "the gate never closed"          # pauses and noise between sentences
    t = (np.arange(on.shape[0]) + 1) * gated.frontend.hop / SR               # when each vector is complete
    for k, when in enumerate(SPOKEN.values()):
        said = np.nonzero((t > when - 0.5) & (t < when + 1.5))[0]
        best = said[np.argmax(off[said, k])]                     # where the word has been heard
        near = slice(best - 2, best + 3)
        np.testing.assert_array_equal(on[near, k], off[near, k])
        assert off[best, k] > np.median(off[:, k]) + 0.2    # the word is heard: it stands above the rest
    assert [(e.keyword, e.start) for e in gated.detect(x)] == [(e.keyword, e.start) for e in open_.detect(x)]


@pytest.mark.parametrize("kind", [
    pytest.param("white", marks=pytest.mark.xfail(strict=True, reason="at about 5 dB SNR of white noise "
                 "computer scores under its threshold where the sample says it (0.37 against 0.48)")),
    "pink", "brown"])
def test_keywords_found_clean_are_found_in_noise(model, kind):
    """The demo keywords found in the sample clean are still found, where they are spoken, with
    noise at -30 dBFS added (about 5 dB under the speech)."""
    x = load_audio(sample_recording())
    d = Detector(demo_set(), model)
    clean = {e.keyword: e.start for e in d.detect(x)}
    assert {"jarvis", "alexa"} <= set(clean)
    events = d.detect(x + coloured(kind, x.size / SR, -30, seed=3))
    for k in clean:
        assert any(e.keyword == k and abs(e.start - clean[k]) < 1.0 for e in events), (k, events)


def test_noise_floor_is_the_sliding_minimum():
    rng = np.random.default_rng(0)
    e = rng.normal(size=500) * 10
    nf = NoiseFloor(37)
    got = [nf.push(float(v)) for v in e]
    want = [e[max(0, i - 36):i + 1].min() for i in range(e.size)]
    np.testing.assert_allclose(got, want)


def test_gate_flags_do_not_depend_on_chunk_sizes():
    x = load_audio(sample_recording())[: SR * 8] + coloured("pink", 8, -35)
    whole = StreamingVad(capacity_slots=2000, noise_margin_db=4.0)
    whole.push(x)
    parts = StreamingVad(capacity_slots=2000, noise_margin_db=4.0)
    rng, pos = np.random.default_rng(1), 0
    while pos < x.size:
        n = int(rng.integers(1, 3000))
        parts.push(x[pos:pos + n])
        pos += n
    a, b = whole.flags.get(0, whole.flags.total), parts.flags.get(0, parts.flags.total)
    np.testing.assert_array_equal(a, b)
    assert 0.2 < a.mean() < 0.9                  # speech and pauses both present
    with pytest.raises(ValueError):
        StreamingVad(noise_margin_db=-1)
