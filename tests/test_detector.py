"""The streaming detector (kws.spot.detector) on the bundled sample and the demo keywords shipped for
the shipped model: events, streaming equals offline, the VAD gate, bad input, other models."""
import numpy as np
import pytest

from kws import Detector, DetectorConfig
from kws.audio.io import load_audio
from kws.enroll.demo import DEMO_KEYWORDS, sample_recording
from kws.enroll.store import KeywordSet, OtherModelError
from kws.spot.detector import PRIMED_VECTORS
from kws.spot.templates import Matcher, template_scores
from tests.conftest import SPOKEN, VOICES, demo_set


@pytest.fixture(scope="module")
def sample():
    return load_audio(sample_recording())


@pytest.fixture(scope="module")
def demo(model):
    return Detector(demo_set(), model)


def _key(events):
    return [(e.keyword, round(e.score, 4), round(e.start, 3), round(e.end, 3)) for e in events]


def test_events_on_the_sample_where_the_keywords_are_said(demo, sample):
    ev = demo.detect(sample)
    assert [e.keyword for e in ev] == [k for k in DEMO_KEYWORDS if k in {e.keyword for e in ev}]   # in order
    assert {"jarvis", "alexa"} <= {e.keyword for e in ev}
    for e in ev:
        assert e.score >= e.threshold == demo.thresholds[e.keyword]
        assert abs(e.start - SPOKEN[e.keyword]) < 1.0 and 0.2 < e.end - e.start < 1.5, e
    assert len(ev) == len({e.keyword for e in ev})            # one event a keyword


def test_all_three_demo_keywords_fire_on_the_sample(demo, sample):
    assert [e.keyword for e in demo.detect(sample)] == list(DEMO_KEYWORDS)


@pytest.mark.parametrize("vad", [True, False])
def test_streaming_equals_offline(model, sample, vad):
    det = Detector(demo_set(), model, DetectorConfig(vad=vad))
    offline = _key(det.detect(sample))
    det.reset()
    counted = det.vectors
    r = np.random.default_rng(7)
    events, pos = [], 0
    while pos < sample.size:
        n = int(r.integers(1, 5000))
        events += det.process(sample[pos:pos + n])
        pos += n
    events += det.flush()
    assert _key(events) == offline and offline
    # one each 80 ms, after the silence a stream starts with (PRIMED_VECTORS of it, unscored)
    silence = np.zeros(PRIMED_VECTORS * det.frontend.hop, np.float32)
    heard = model.vectors(np.concatenate([silence, sample])).shape[0] - model.vectors(silence).shape[0]
    assert det.vectors - counted == counted == heard


def test_streamed_scores_are_the_templates_scores_of_the_whole_recording(model, sample):
    """Every vector's score while streaming (any chunking, VAD off) is what the templates give on
    the whole recording's vectors (after the silence a stream starts with), and best_scores is the best of them on the padded clip."""
    det = Detector(demo_set(), model, DetectorConfig(vad=False))
    x = sample[: 16000 * 8]
    seen = []
    update = det._update
    det._update = lambda scores, spans: (seen.append(np.array(scores)), update(scores, spans))[1]
    det.reset()
    for s in range(0, x.size, 1234):
        det.process(x[s:s + 1234])
    silence = np.zeros(PRIMED_VECTORS * det.frontend.hop, np.float32)     # what a stream starts after
    v, n0 = model.vectors(np.concatenate([silence, x])), model.vectors(silence).shape[0]
    assert len(seen) == v.shape[0] - n0 > 50
    np.testing.assert_allclose(np.stack(seen), Matcher(det.bank).scores(v)[n0:], atol=1e-5)
    np.testing.assert_allclose(np.stack(seen), det.bank.keyword_scores(template_scores(det.bank, v))[n0:], atol=1e-4)
    assert det.bank.keywords == 3 and det.bank.length.size == sum(len(k.segments) for k in det.keywords)


def test_vad_skips_silence(model):
    det = Detector(demo_set(["computer"]), model, DetectorConfig(vad=True))
    assert det.process(np.zeros(16000 * 3, np.float32)) == []
    assert det.vectors > 20 and det.vectors_skipped == det.vectors
    assert det.last_scores == {"computer": -1.0}


def test_refractory_time_between_events(model, sample):
    """The same keyword said twice, its events 1.5 s apart: both fire with refractory_s 1 (the
    default), the second not with refractory_s 2; 3 s apart, both fire with refractory_s 2."""
    ks = demo_set(["alexa"])
    (e,) = Detector(ks, model).detect(sample)
    word = sample[int((e.start - 0.1) * 16000):int((e.end + 0.1) * 16000)]
    gap = lambda s: np.zeros(int(s * 16000), np.float32)  # noqa: E731
    close = np.concatenate([gap(1), word, gap(1.5 - word.size / 16000), word, gap(1)])
    apart = np.concatenate([gap(1), word, gap(3.0 - word.size / 16000), word, gap(1)])
    one_s, two_s = Detector(ks, model), Detector(ks, model, DetectorConfig(refractory_s=2.0))
    ev = one_s.detect(close)
    assert len(ev) == 2 and ev[1].start - ev[0].start == pytest.approx(1.5, abs=0.1)
    assert [x.start for x in two_s.detect(close)] == [ev[0].start]
    assert len(two_s.detect(apart)) == 2


def test_bad_input(demo, model):
    with pytest.raises(ValueError, match="NaN"):
        demo.process(np.array([0.0, np.nan], dtype=np.float32))
    with pytest.raises(ValueError, match="no keywords"):
        Detector(KeywordSet(model.model_id), model)
    with pytest.raises(ValueError, match="refractory_s"):
        DetectorConfig(refractory_s=-1)
    with pytest.raises(ValueError, match="vad_min_speech"):
        DetectorConfig(vad_min_speech=1.5)
    with pytest.raises(ValueError, match="fire must be one of crossing, peak"):
        DetectorConfig(fire="top")
    demo.reset()
    assert demo.process(np.zeros(0, np.float32)) == [] and demo.flush() == []


def test_refuses_keywords_of_another_model(model):
    ks = demo_set()
    other = KeywordSet("tpl-another-model", list(ks))
    with pytest.raises(OtherModelError, match="made for model 'tpl-another-model'") as info:
        Detector(other, model)
    assert "re-enroll" in str(info.value) and model.model_id in str(info.value)
    assert isinstance(info.value, ValueError)


def test_from_texts_thresholds(model, sample, few_voices):
    fixed = Detector.from_texts(["jarvis"], threshold=0.0625, model=model, voices=VOICES[:2])
    assert fixed.thresholds == {"jarvis": 0.0625} and fixed.keywords["jarvis"].origins == \
        [f"kokoro:{v}" for v in VOICES[:2]]
    own = Detector.from_texts(["jarvis"], model=model, voices=VOICES[:2])
    loose = Detector.from_texts(["jarvis"], model=model, voices=VOICES[:2], fa_per_hour=20.0)
    assert 0.0 < loose.thresholds["jarvis"] < own.thresholds["jarvis"] < 1.0
    assert own.keywords["jarvis"].tuned_on["target_per_hour"] == 1.0
    assert loose.keywords["jarvis"].tuned_on["target_per_hour"] == 20.0
    # a threshold as low as 0.0625 (given, not tuned) fires on more than the keyword; its own
    # threshold nowhere else
    assert len(fixed.detect(sample)) > 1
    assert all(abs(e.start - SPOKEN["jarvis"]) < 1.0 for e in own.detect(sample))


def test_demo_keywords_ship_for_the_shipped_model(model, monkeypatch, tmp_path, few_voices):
    """kws/assets/demo holds the demo keywords made for the shipped model (listen, detect and
    serve start at once); for another model they are enrolled from their text."""
    import json
    import shutil

    import kws.enroll.build
    from kws.enroll.demo import demo_keywords, demo_store
    from kws.model.model import Model

    ks = KeywordSet.load(demo_store(), model.model_id)
    assert ks.names == list(DEMO_KEYWORDS)
    for k in ks:
        assert k.text == k.name and k.source == "text" and len(k.origins) == 28
        assert k.tuned_on["target_per_hour"] == 1.0 and k.threshold >= 0.3
    real = kws.enroll.build.enroll_keyword
    monkeypatch.setattr(kws.enroll.build, "enroll_keyword", lambda *a, **k: pytest.fail("enrolled again"))
    assert [(k.name, k.threshold) for k in demo_keywords(model)] == [(k.name, k.threshold) for k in ks]
    monkeypatch.setattr(kws.enroll.build, "enroll_keyword", real)
    other = tmp_path / "model"
    shutil.copytree(model.path, other)
    m = json.loads((other / "manifest.json").read_text())
    (other / "manifest.json").write_text(json.dumps(dict(m, model_id="tpl-other-model")))
    made = demo_keywords(Model.load(other))
    assert made.model_id == "tpl-other-model" and made.names == list(DEMO_KEYWORDS)
    assert made["jarvis"].origins == [f"kokoro:{v}" for v in few_voices]


def test_a_keyword_said_at_the_start_of_a_stream_is_heard_as_later_on(model, sample):
    """jarvis cut out of the sample with 0.1 s before it, as a file that starts with the word: the
    detector fires on it with the score it has when 5 s of the sample come before it, since a
    stream starts as if silence had been heard before it (PRIMED_VECTORS). (Events at the peak,
    so that their scores are the peaks'.)"""
    det = Detector(demo_set(), model, DetectorConfig(vad=False, fire="peak"))
    at = int((SPOKEN["jarvis"] - 0.1) * 16000)
    clip = sample[at:at + 2 * 16000]
    alone = [e for e in det.detect(clip) if e.keyword == "jarvis"]
    later = [e for e in det.detect(sample[at - 5 * 16000:at + 2 * 16000]) if e.keyword == "jarvis"]
    assert len(alone) == len(later) == 1
    assert alone[0].start < 0.5 and abs(alone[0].score - later[0].score) < 0.05, (alone, later)


def test_a_model_with_a_soft_maximum_scores_keywords_with_it(model, sample, tmp_path):
    """A model whose manifest sets templates.soft_max (python -m export.model --soft-max T): the
    detector's keyword score is the soft maximum of its templates' (kws.spot.templates.combine),
    under the best template's and streamed as offline; the shipped model keeps the best."""
    import json
    import shutil

    from kws.model.model import Model
    from kws.spot.templates import TemplateBank, combine

    assert model.soft_max == 0.0
    soft = tmp_path / "model"
    shutil.copytree(model.path, soft)
    m = json.loads((soft / "manifest.json").read_text())
    m["templates"] = dict(m["templates"], soft_max=20.0)
    (soft / "manifest.json").write_text(json.dumps(m))
    sm = Model.load(soft)
    assert sm.soft_max == 20.0
    det_max = Detector(demo_set(), model, DetectorConfig(vad=False))
    det = Detector(demo_set(), sm, DetectorConfig(vad=False))
    assert det.bank.soft_max == 20.0
    clip = sample[int((SPOKEN["jarvis"] - 1.0) * 16000):int((SPOKEN["jarvis"] + 1.5) * 16000)]
    v = sm.vectors(clip)
    per = template_scores(det.bank, v)                                  # (n, templates)
    k = det.keywords.names.index("jarvis")
    want = combine(per[:, det.bank.owner == k], 20.0)
    got = det.bank.keyword_scores(per)[:, k]
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(Matcher(det.bank).scores(v)[:, k], want, atol=1e-4)
    best = TemplateBank.build(det.templates).keyword_scores(per)[:, k]
    assert np.all(got <= best + 1e-6) and got.max() < best.max() - 1e-3
    np.testing.assert_allclose(Matcher(det_max.bank).scores(v)[:, k], best, atol=1e-4)
