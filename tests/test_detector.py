import numpy as np
import pytest

from kws import Detector, DetectorConfig
from kws.audio import load_audio
from kws.cli import DEMO_KEYWORDS, sample_recording
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


@pytest.mark.parametrize("vad,probe", [(True, None), (False, None), (True, 0.6)])
def test_streaming_equals_offline(sample, vad, probe):
    det = Detector.from_texts(DEMO_KEYWORDS, config=DetectorConfig(vad=vad, probe_window_s=probe))
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


def test_two_stage_scoring(demo, sample):
    """A probe that never gates gives the single-stage events; a tight one embeds fewer windows."""
    full = Detector(demo.keywords, demo.bundle, DetectorConfig())
    never = Detector(demo.keywords, demo.bundle, DetectorConfig(probe_window_s=0.6, probe_margin=10.0))
    ev_full, ev_never = detect_audio(full, sample), detect_audio(never, sample)
    assert [e.keyword for e in ev_never] == [e.keyword for e in ev_full]
    assert [round(e.score, 2) for e in ev_never] == [round(e.score, 2) for e in ev_full]
    tight = Detector(demo.keywords, demo.bundle, DetectorConfig(probe_window_s=0.6, probe_margin=0.1))
    ev_tight = detect_audio(tight, sample)
    assert tight.hops_full < never.hops_full
    assert [e.keyword for e in ev_tight] == ["computer", "jarvis", "alexa"]
    with pytest.raises(ValueError, match="probe_window_s"):
        DetectorConfig(probe_window_s=0.5)
