import numpy as np
import pytest

from kws import Detector, DetectorConfig
from kws.audio import load_audio
from kws.demo import DEMO_KEYWORDS, sample_recording
from kws.detector import detect_audio


@pytest.fixture(scope="module")
def sample():
    return load_audio(sample_recording())


@pytest.fixture(scope="module")
def demo():
    return Detector.from_texts(DEMO_KEYWORDS)


def _key(events):
    return [(e.keyword, round(e.score, 4), round(e.start, 3), round(e.end, 3)) for e in events]


def test_detects_the_three_spoken_keywords_in_order(demo, sample):
    ev = detect_audio(demo, sample)
    assert [e.keyword for e in ev] == ["computer", "jarvis", "alexa"]
    assert all(e.score >= e.threshold for e in ev)
    assert 4 < ev[0].start < 7 and 10 < ev[1].start < 13 and 17 < ev[2].start < 20


@pytest.mark.parametrize("vad", [True, False])
def test_streaming_equals_offline(sample, vad):
    det = Detector.from_texts(DEMO_KEYWORDS, config=DetectorConfig(vad=vad))
    offline = _key(detect_audio(det, sample))
    det.reset()
    r = np.random.default_rng(7)
    events, pos = [], 0
    while pos < sample.size:
        n = int(r.integers(1, 5000))
        events += det.process(sample[pos:pos + n])
        pos += n
    events += det.flush()
    assert _key(events) == offline and offline


def test_vad_skips_silence():
    det = Detector.from_texts(["computer"], config=DetectorConfig(vad=True))
    det.process(np.zeros(16000 * 3, np.float32))
    assert det.hops > 0 and det.hops_skipped == det.hops
    assert det.last_scores == {"computer": -1.0}


def test_bad_input(demo):
    with pytest.raises(ValueError, match="NaN"):
        demo.process(np.array([0.0, np.nan], dtype=np.float32))
    from kws.keywords import KeywordSet

    with pytest.raises(ValueError, match="no keywords"):
        Detector(KeywordSet(demo.bundle.model_id))
    with pytest.raises(ValueError):
        DetectorConfig(hop_s=0)


def test_window_scores_equal_streamed_hop_scores(demo, sample):
    """Offline scoring (batched by window length) gives the scores streaming gives at every hop."""
    from kws.bundle import Bundle
    from kws.detector import window_scores

    b32 = Bundle.load(variant="fp32")
    from kws.keywords import KeywordSet
    ks = KeywordSet(b32.model_id, list(demo.keywords))
    det = Detector(ks, b32, DetectorConfig(vad=False, variant="fp32"))
    x = sample[: 16000 * 6]
    offline = window_scores(det.bundle, det.keywords, x, det.config, det.plan)
    seen = []
    update = det._update
    det._update = lambda scores, windows: (seen.append(np.array(scores)), update(scores, windows))[1]
    det.reset()
    for s in range(0, x.size, 1234):
        det.process(x[s:s + 1234])
    assert len(seen) == len(offline) > 10
    np.testing.assert_allclose(np.stack(seen), offline, atol=1e-4)
