"""Confusions at enrollment (kws.enroll.confusions): a phrase's parts cut from its renderings at Kokoro's
word boundaries, the threshold floor, ``enroll check``, and ``enroll test`` from one pass of the
detector."""
import numpy as np
import pytest
import soundfile as sf

from kws.audio.io import trim_silence
from kws.commands import main
from kws.enroll import confusions, kokoro, render_cache
from kws.enroll.phonemes import pronounce
from kws.enroll.store import KeywordSet


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("render-cache")


@pytest.fixture(autouse=True)
def cache(cache_dir, monkeypatch):
    """The renderings of this module's tests, shared between them, never in the user's cache."""
    monkeypatch.setenv(render_cache.ENV_DIR, str(cache_dir))
    return cache_dir


def test_word_spans_from_durations():
    # tokens: start, h ˈ A, space, t ˈ O, end; durations in samples
    d = np.array([100, 10, 0, 30, 5, 20, 0, 40, 50], np.float64)
    lead = kokoro.AUDIO_LEAD
    d[0] += lead                                          # the sound comes this much early
    assert kokoro.word_spans("hˈA tˈO", d) == [(100, 140), (145, 205)]
    assert kokoro.char_span(d, 0, 3) == (100, 140) and kokoro.char_span(d, 4, 5) == (145, 165)
    assert kokoro.word_spans("hˈA tˈO", d, n=180) == [(100, 140), (145, 180)]
    assert kokoro.token_spans(d, lead=0)[1].tolist() == [100 + lead, 110 + lead]


def test_phrase_parts():
    ph = kokoro.pronunciation_phonemes(pronounce("hey toaster"))
    parts = {p.text: p for p in confusions.phrase_parts(["hey", "toaster"], ph)}
    assert [(t, p.kind) for t, p in parts.items()] == [("hey", "word"), ("toaster", "word"), ("hey toa", "partial")]
    assert ph[slice(*parts["toaster"].ranges[0])] == "tˈOstəɹ"
    assert ph[slice(*parts["hey toa"].ranges[0])] == "hˈA tˈO"
    assert [p.must_not_fire for p in parts.values()] == [True, True, False]
    three = [(p.text, p.kind) for p in confusions.phrase_parts(
        ["ok", "google", "home"], kokoro.pronunciation_phonemes(pronounce("ok google home")))]
    assert ("ok google", "prefix") in three and ("google home", "suffix") in three and ("home", "word") in three
    assert confusions.phrase_parts(["computer"], kokoro.pronunciation_phonemes(pronounce("computer"))) == []


def test_phrase_words_cut_at_their_boundaries():
    """Kokoro's durations put each word where its sound is: 'hey' begins where the rendering's
    sound begins, 'toaster' holds the rest of it, a short gap between them; each cut holds sound."""
    ph = kokoro.pronunciation_phonemes(pronounce("hey toaster"))
    (t,) = render_cache.render(ph, [kokoro.Rendering("am_michael")])
    (hey_a, hey_b), (toa_a, toa_b) = kokoro.word_spans(ph, t.durations, t.audio.size)
    assert t.durations.size == len(ph) + 2 and abs(t.durations.sum() - t.audio.size) <= 2
    assert hey_b <= toa_a and toa_a - hey_b < 0.15 * 16000              # the space token between
    loud = np.nonzero(np.abs(t.audio) > 0.01 * np.abs(t.audio).max())[0]
    assert abs(loud[0] - hey_a) < 0.06 * 16000 and toa_a < loud[-1] <= toa_b
    parts = {p.text: p for p in confusions.phrase_parts(["hey", "toaster"], ph)}
    (hey,) = confusions.cut_part(t, parts["hey"])
    (toaster,) = confusions.cut_part(t, parts["toaster"])
    assert hey.size == hey_b - hey_a and toaster.size == toa_b - toa_a
    assert 0.1 < hey.size / 16000 < 0.5 and 0.4 < toaster.size / 16000 < 1.2
    for clip in (hey, toaster):
        assert trim_silence(clip, top_db=40.0, margin_s=0.0).size > 0.6 * clip.size   # sound, not silence


def test_the_floor_raises_the_threshold(few_voices):
    """A word that must not fire (here the keyword itself, said by another voice) scores above
    the false-alarm threshold: the threshold goes above it, and tuned_on says so."""
    import kws
    from kws.model.model import Model

    model = Model.load()
    plain = kws.enroll_keyword("hey snowboy", model=model)
    t = plain.tuned_on
    assert t["bank_threshold"] == pytest.approx(plain.threshold, abs=1e-4) or plain.threshold > t["bank_threshold"]
    assert {"hey", "snowboy"} <= {n["text"] for n in t["neighbours"]}
    scores = [n["score"] for n in t["neighbours"]]
    assert scores == sorted(scores, reverse=True)
    must = [n["score"] for n in t["neighbours"] if n["kind"] in confusions.MUST_NOT_FIRE]
    assert t["floor"] == pytest.approx(max(must) + confusions.MARGIN, abs=1e-4)
    assert plain.threshold == pytest.approx(max(t["bank_threshold"], t["floor"]), abs=1e-4)
    strict = kws.enroll_keyword("hey snowboy", model=model, not_words=["hey snowboy"])
    s = strict.tuned_on
    top = next(n for n in s["neighbours"] if n["kind"] == "not")
    assert top["text"] == "hey snowboy" and s["floor"] == pytest.approx(top["score"] + confusions.MARGIN, abs=1e-4)
    assert s["floor"] > s["bank_threshold"] and strict.threshold == pytest.approx(s["floor"], abs=1e-4)
    assert s["bank_threshold"] == pytest.approx(t["bank_threshold"], abs=1e-6)
    assert s["expected_per_hour"] < s["target_per_hour"]                 # a higher threshold: fewer
    assert s["recall_at_threshold"] <= s["recall_at_bank_threshold"]
    # the reason names the raised threshold, or the recall that raising it cost
    reason = strict.tuned_on["rating_reason"]
    assert strict.tuned_on["rating"] in ("fair", "risky") and ("raised" in reason or "costs recall" in reason) or \
        strict.tuned_on["rating"] == "risky"


def test_enroll_check_prints_the_report_and_stores_nothing(tmp_path, capsys, few_voices):
    st = tmp_path / "store"
    assert main(["enroll", "--store", str(st), "check", "hey snowboy"]) == 0
    out = capsys.readouterr().out
    assert "'hey snowboy' [HH EY | S N OW B OY], 3 templates" in out and "not stored" in out
    assert "false alarms an hour of speech expected" in out and "recall" in out
    assert "closest: " in out and "snowboy " in out and "(a word of it)" in out
    rating = next(line for line in out.splitlines() if "rating: " in line)
    assert rating.split("rating: ")[1].split(":")[0] in ("good", "fair", "risky")
    assert not (st / "keywords.json").exists()


def test_rating_rules():
    ph = lambda text: pronounce(text).phonemes                       # noqa: E731
    near = [{"text": "toast", "kind": "start", "score": 0.40}]
    assert confusions.rate(ph("hey toaster"), 0.6, near, 0.95, 0.95, 0.6) == \
        ("good", "three syllables, recall 95%, no close neighbour")
    assert confusions.rate(ph("cat"), 0.6, near, 0.95) == ("risky", "one short syllable")
    assert confusions.rate(ph("jarvis"), 0.6, near, 0.95)[0] == "fair"
    assert confusions.rate(ph("hey toaster"), 0.6, near, 0.5)[1] == "found in only 50% of its renderings"
    fires = [{"text": "coaster", "kind": "end", "score": 0.62}]
    assert confusions.rate(ph("hey toaster"), 0.6, fires, 0.95) == ("risky", "'coaster' would fire it (0.62 >= 0.60)")
    close = [{"text": "toaster", "kind": "word", "score": 0.58}]
    assert confusions.rate(ph("hey toaster"), 0.6, close, 0.95, 0.95, 0.6) == \
        ("fair", "'toaster' comes within 0.02 of the threshold")
    word = [{"text": "toaster", "kind": "word", "score": 0.64}]
    raised = confusions.rate(ph("hey toaster"), 0.66, word, 0.70, 0.95, 0.53)
    assert raised == ("fair", "found in 70% of its renderings; 'toaster' alone scores close to it: not firing "
                             "on it costs recall (95% -> 70%)")
    partial = [{"text": "hey toa", "kind": "partial", "score": 0.7}]        # listed, not rated
    assert confusions.rate(ph("hey toaster"), 0.6, partial, 0.95)[0] == "good"


def test_enroll_add_reports_and_the_not_words(tmp_path, capsys, few_voices):
    st = tmp_path / "store"
    assert main(["enroll", "--store", str(st), "add", "hey snowboy", "--not", "hey snowboy"]) == 0
    out = capsys.readouterr().out
    k = KeywordSet.load(st)["hey snowboy"]
    assert k.threshold == pytest.approx(k.tuned_on["floor"], abs=1e-4)
    assert f"raised from {k.tuned_on['bank_threshold']:.3f}" in out and "'hey snowboy'" in out
    assert "(--not)" in out and "rating: " in out
    assert main(["enroll", "--store", str(st), "add", "hey snowboy", "--replace", "--no-tune"]) == 0
    capsys.readouterr()
    assert KeywordSet.load(st)["hey snowboy"].threshold < k.threshold


def test_enroll_test_is_the_detectors_one_pass(tmp_path, capsys, few_voices, monkeypatch, model):
    from kws.spot.detector import Detector

    st = tmp_path / "store"
    assert main(["enroll", "--store", str(st), "add", "snowboy", "--no-tune", "--false-alarms-per-hour", "30"]) == 0
    ph = kokoro.pronunciation_phonemes(pronounce("snowboy"))
    said = render_cache.render(ph, [kokoro.Rendering("bm_george")])[0].audio     # a voice it has no template of
    gap = np.zeros(16000, np.float32)
    audio = np.concatenate([gap, said, gap, gap, 0.5 * said, gap])
    f = tmp_path / "two.wav"
    sf.write(f, audio, 16000, subtype="FLOAT")
    quiet = tmp_path / "quiet.wav"
    sf.write(quiet, np.zeros(32000, np.float32), 16000)
    monkeypatch.setattr(Detector, "best_scores", lambda *a, **k: pytest.fail("a second calculation"))
    assert main(["enroll", "--store", str(st), "test", str(f), str(quiet)]) == 0
    out = capsys.readouterr().out
    block = out.split(f"{f}:")[1].split(f"{quiet}:")[0]
    ks = KeywordSet.load(st)
    want = Detector(ks, model).detect(audio)
    assert want, "the keyword should be found"
    got = [line.strip() for line in block.splitlines() if line.strip().startswith("event")]
    assert got == [f"event {e.keyword!r} at {e.start:.2f}-{e.end:.2f} s, fired at score {e.score:.3f}" for e in want]
    line = next(line for line in block.splitlines() if line.strip().startswith("snowboy"))
    best = float(line.split("best ")[1].split()[0])
    # the best score of the pass the events came from: at least the events' (a higher peak may
    # fall in the second after an event, when the detector stays quiet)
    assert best >= round(max(e.score for e in want), 3) and "DETECTED" in line
    rest = out.split(f"{quiet}:")[1]
    assert "DETECTED" not in rest and "nothing heard" in rest
