"""benchmarks/compare_engines.py: PocketSphinx gets pronunciations it accepts, example enrollment is
the product's (and EfficientWord-Net hears the same trimmed examples), openWakeWord scores only the
keywords it has a head for, the background is held-out speech only."""
import importlib.util
import shutil
import sys

import numpy as np
import pytest

from kws.audio.io import load_audio
from kws.enroll.phonemes import word_phonemes
from kws.enroll.store import KeywordSet
from kws.model.model import Model
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import compare_engines as ce  # noqa: E402


def _need(module: str, install: str):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} not installed ({install})")


class FakeDecoder:
    """PocketSphinx 5's rules for add_word: one word, upper-case ARPAbet phones it knows."""

    def __init__(self, known):
        self.dict = dict(known)

    def lookup_word(self, w):
        return self.dict.get(w)

    def add_word(self, w, phones, update=True):
        if " " in w or any(p != p.upper() for p in phones.split()):
            raise RuntimeError(f"Failed to add word {w}")
        self.dict[w] = phones


def test_missing_words_added_one_by_one_in_upper_case():
    d = FakeDecoder({"hey": "HH EY", "computer": "K AH M P Y UW T ER"})
    added = ce.add_missing_words(d, ["hey zorblax", "computer", "zorblax quendril"])
    assert set(added) == {"zorblax", "quendril"}
    for w in ("zorblax", "quendril"):
        assert d.lookup_word(w) == " ".join(word_phonemes(w)[0]).upper()
    assert d.lookup_word("hey") == "HH EY"


def test_pocketsphinx_spots_made_up_word_and_phrase(tmp_path):
    _need("pocketsphinx", "pip install pocketsphinx")
    if not shutil.which("flite"):
        pytest.skip("flite not installed (apt-get install flite)")
    import classic_tts as tts

    eng = ce.PocketSphinxEngine(["zorblax", "Hey Zorblax", "computer"], thresholds=[1e-20, 1.0])
    assert eng.phrases == ["zorblax", "hey zorblax", "computer"]
    assert eng.added == {"zorblax": " ".join(word_phonemes("zorblax")[0]).upper()}
    assert eng.decoders[0].lookup_word("zorblax") == eng.added["zorblax"]
    said = tts.synthesize([tts.Render("i said hey zorblax to the machine", "flite", "slt",
                                      {"stretch": 1.0, "f0": 120})])[0]
    assert said is not None, "flite gave no audio"
    scores = eng.clip_scores([ce.padded(said.astype(np.float32) / 32768)])[0]
    assert scores[0] > -100 and scores[1] > -100, "the made-up word and the phrase were not spotted"
    assert scores[2] == -100, "'computer' spotted where nobody said it"


def _product_files(clips, n=3):
    """The first ``n`` files that `kws.enroll add --examples` accepts, in the given order."""
    from kws.audio.io import AudioError
    from kws.enroll.build import EnrollError, check_example

    out = []
    for c in clips:
        try:
            check_example(load_audio(c.path), str(c.path))
        except (AudioError, EnrollError):
            continue
        out.append(c.path)
        if len(out) == n:
            return out
    raise AssertionError("not enough usable example files")


def test_benchmark_examples_enroll_as_the_product(shared_data, tmp_path, monkeypatch, few_voices):
    from kws.commands import run_as
    from kws.enroll.build import check_example
    from kws.evaluate import Renders

    model = Model.load()
    s = ce.load_set(shared_data, "wake", 1, seed=0)
    s["words"], s["example_clips"] = ["alexa"], {"alexa": s["example_clips"]["alexa"]}
    enrolled = ce.enroll_set(model, s)
    files = _product_files(s["example_clips"]["alexa"])
    store = tmp_path / "store"
    assert run_as("enroll", ["--store", str(store), "add", "--name", "alexa", "--examples", *map(str, files)]) == 0
    assert run_as("enroll", ["--store", str(store), "add", "alexa", "--name", "alexa both", "--examples",
                        *map(str, files)]) == 0
    product = KeywordSet.load(store, model.model_id)
    renders = Renders()
    for engine, name, source in (("kws-examples", "alexa", "examples"),
                                 ("kws-typed+examples", "alexa both", "text+examples")):
        eng = ce.make_engine(engine, s, enrolled, model, renders)
        bench = eng.keywords["alexa"]
        np.testing.assert_allclose(bench.vectors, product[name].vectors, atol=1e-6)
        assert bench.threshold == pytest.approx(product[name].threshold, abs=1e-6)
        assert bench.source == product[name].source == source and bench.segments == product[name].segments
    typed = ce.make_engine("kws-typed", s, enrolled, model, renders)
    assert typed.name == "kws, typed" and typed.keywords["alexa"].origins == [f"kokoro:{v}" for v in few_voices]
    # the kws engine scores a clip as a detector that has been listening to silence does
    from kws.spot.detector import Detector

    clip = ce.padded(load_audio(files[0]))
    det = Detector(typed.keywords, model)
    heard = np.concatenate([np.zeros(int(ce.LISTENING_S * 16000), np.float32), clip])
    assert typed.clip_scores([clip])[0, 0] == pytest.approx(det.best_scores(heard, pad_s=0.0)[0], abs=1e-4)
    assert typed.clip_scores([clip])[0, 0] != pytest.approx(det.best_scores(clip, pad_s=0.0)[0], abs=1e-4)
    assert len(typed.background_events([clip])) == 1 and typed.model_mb() > 1.0
    # EfficientWord-Net gets those trimmed examples, not the files as they are
    monkeypatch.setattr(ce, "EfficientWordEngine", lambda examples: examples)
    given = ce.make_engine("efficientword", s, enrolled, model, renders)["alexa"]
    assert len(given) == 3
    for x, f in zip(given, files):
        raw = load_audio(f)
        np.testing.assert_array_equal(x, check_example(raw, str(f)))
        assert x.size < raw.size - 1600, "example not trimmed"


def test_openwakeword_scores_only_its_heads(shared_data):
    _need("openwakeword", "pip install --no-deps openwakeword==0.5.1")
    from kws.audio.io import AudioError
    from kws.corpus.real import load_clip, split_of, wakeword_clips

    with pytest.raises(ce.NotApplicable):
        ce.OpenWakeWordEngine(["computer", "jarvis"])
    eng = ce.OpenWakeWordEngine(["alexa", "computer", "jarvis"])
    assert eng.words == ["alexa"]
    clips = {w: [] for w in ("alexa", "computer")}
    for c in wakeword_clips(shared_data):
        if c.label in clips and split_of(c) == "b" and len(clips[c.label]) < 3:
            try:
                clips[c.label].append(ce.padded(load_clip(c)))
            except AudioError:
                continue
    s = eng.clip_scores(clips["alexa"] + clips["computer"])
    assert s.shape == (6, 1)
    assert s[:3, 0].min() > s[3:, 0].max(), "openWakeWord's alexa head scored 'computer' above 'alexa'"
    assert eng.model_mb() > 1.0


def test_background_is_held_out_speech_of_an_hour(shared_data):
    import soundfile as sf

    from kws.corpus.real import held_out_speech_files, speaker_half

    files = held_out_speech_files(shared_data)
    assert not [f for f in files if "train-clean-100" in str(f)], "LibriSpeech train-clean-100 is training data"
    so = [f for f in files if "speechocean762" in str(f)]
    assert so and all(speaker_half(f.parent.name.replace("SPEAKER", "")) == "b" for f in so)
    hours = sum(sf.info(str(f)).duration for f in files) / 3600
    assert hours >= 1.0


def test_table_says_what_the_threshold_allowed():
    row = {"keywords": ["alexa"], "eer_clean": 0.01, "eer_10db": 0.02, "miss_at_1fa_h": 0.05,
           "per_keyword": {"alexa": {"eer_clean": 0.01, "eer_10db": 0.02, "miss_at_1fa_h": 0.05}},
           "rtf_one_core": 0.02, "model_mb": 3.3, "load_rss_mb": 160.0}
    md = ce.markdown({"kws_model": "m", "background": {"hours": 1.52, "files": 1260, "allowed_false_alarms": 1},
                      "sets": {"wake": {"title": "wake words", "words": ["alexa", "computer", "jarvis"],
                                        "clips": 180, "rows": {"openWakeWord 0.5.1": row}}}})
    assert "openWakeWord 0.5.1 (alexa only)" in md
    assert "1.52 h" in md and "allowed 1 false alarm." in md
