import json
import os

import numpy as np
import pytest
import soundfile as sf

from kws.bundle import Bundle
from kws.enroll import main as enroll
from kws.keywords import Keyword, KeywordSet, StoreError


def _kw(name, d=512, seed=0):
    v = np.random.default_rng(seed).normal(size=(1, d)).astype(np.float32)
    return Keyword(name=name, vectors=v, threshold=0.3, text=name)


def test_store_round_trip(tmp_path):
    ks = KeywordSet("m1", [_kw("a"), _kw("b", seed=1)])
    ks.save(tmp_path)
    back = KeywordSet.load(tmp_path, "m1")
    assert back.names == ["a", "b"]
    np.testing.assert_allclose(back["b"].vectors, ks["b"].vectors, rtol=1e-6, atol=1e-7)
    assert len(list(tmp_path.glob("vectors-*.npz"))) == 1
    back.remove("a")
    back.save(tmp_path)
    assert len(list(tmp_path.glob("vectors-*.npz"))) == 2      # the store's and its backup's
    back.add(_kw("c", seed=3))
    back.save(tmp_path)
    assert len(list(tmp_path.glob("vectors-*.npz"))) == 2      # older vectors cleaned up
    assert KeywordSet.load(tmp_path).names == ["b", "c"]


def test_refuses_other_model_and_corruption(tmp_path):
    KeywordSet("m1", [_kw("a")]).save(tmp_path)
    with pytest.raises(StoreError, match="made with model 'm1'"):
        KeywordSet.load(tmp_path, "m2")
    vf = next(tmp_path.glob("vectors-*.npz"))
    vf.write_bytes(vf.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(StoreError, match="checksum"):
        KeywordSet.load(tmp_path)
    (tmp_path / "keywords.json").write_text("{broken")
    with pytest.raises(StoreError, match="corrupt"):
        KeywordSet.load(tmp_path)


def test_crash_during_save_leaves_old_store(tmp_path, monkeypatch):
    KeywordSet("m1", [_kw("a")]).save(tmp_path)
    before = (tmp_path / "keywords.json").read_bytes()
    ks = KeywordSet.load(tmp_path)
    ks.add(_kw("b", seed=2))
    real_replace = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        if str(dst).endswith("keywords.json"):
            raise KeyboardInterrupt   # Ctrl-C at the worst moment
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(KeyboardInterrupt):
        ks.save(tmp_path)
    monkeypatch.setattr(os, "replace", real_replace)
    assert (tmp_path / "keywords.json").read_bytes() == before
    assert KeywordSet.load(tmp_path).names == ["a"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_duplicate_and_bad_names():
    ks = KeywordSet("m", [_kw("a")])
    with pytest.raises(StoreError, match="exists"):
        ks.add(_kw("a"))
    with pytest.raises(StoreError):
        ks.add(_kw(""))
    with pytest.raises(StoreError):
        ks.rename("a", "x/y")
    with pytest.raises(StoreError, match="no keyword"):
        ks.remove("zzz")


def _store_bytes(d):
    return {p.name: p.read_bytes() for p in sorted(d.glob("*"))} if d.exists() else {}


def test_enroll_by_text_without_tts_then_list_rename_remove(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("kws.tts.available_engines", lambda: [])
    st = str(tmp_path / "s")
    assert enroll(["--store", st, "add", "hey snowboy"]) == 0
    out = capsys.readouterr().out
    assert "fallback G2P" in out and "background" in out or "threshold=" in out
    ks = KeywordSet.load(st)
    k = ks["hey snowboy"]
    # no TTS engine: the text alone, with a looser false-alarm target, and the user told so
    assert k.tuned_on["method"] == "false-alarm-rate" and k.tuned_on["tts_renderings"] == 0
    assert k.tuned_on["target_per_hour"] == 5.0 and k.tuned_on["expected_per_hour"] == pytest.approx(5.0, rel=0.01)
    assert 0.2 <= k.threshold < 1 and "no TTS engine installed" in out
    assert enroll(["--store", st, "rename", "hey snowboy", "snowboy"]) == 0
    assert enroll(["--store", st, "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])[0]["name"] == "snowboy"
    assert enroll(["--store", st, "remove", "snowboy"]) == 0
    assert len(KeywordSet.load(st)) == 0


@pytest.mark.parametrize("make, msg", [
    (lambda: np.zeros(16000, np.float32), "silent"),
    (lambda: np.clip(np.sin(np.arange(16000) / 3) * 3, -1, 1).astype(np.float32), "clipped"),
    (lambda: np.full(800, 0.1, np.float32), "too short"),
    (lambda: (np.random.default_rng(0).normal(size=16000 * 12) * 0.1).astype(np.float32), "too long"),
])
def test_bad_examples_leave_store_unchanged(tmp_path, capsys, make, msg):
    st = tmp_path / "s"
    KeywordSet(Bundle.load().model_id, [_kw("a")]).save(st)
    before = _store_bytes(st)
    f = tmp_path / "ex.wav"
    sf.write(f, make(), 16000)
    assert enroll(["--store", str(st), "add", "thing", "--examples", str(f)]) == 2
    assert msg in capsys.readouterr().err
    assert _store_bytes(st) == before


@pytest.mark.parametrize("args, msg", [
    (["add", "!!!"], "no letters"),
    (["add", "a"], "exists already"),
    (["add", "x", "--examples", "/no/such.wav"], "no such file"),
    (["rename", "nope", "b"], "no keyword"),
])
def test_bad_commands(tmp_path, capsys, args, msg):
    st = tmp_path / "s"
    KeywordSet(Bundle.load().model_id, [_kw("a")]).save(st)
    before = _store_bytes(st)
    assert enroll(["--store", str(st)] + args) == 2
    assert msg in capsys.readouterr().err
    assert _store_bytes(st) == before


def test_enroll_snowboy_by_text_and_three_examples_with_tts(tmp_path, capsys, espeak):
    """End to end, offline: text enrollment tuned with TTS, and example enrollment."""
    from kws.tts import Render, synthesize

    st = str(tmp_path / "s")
    assert enroll(["--store", st, "add", "snowboy"]) == 0
    k = KeywordSet.load(st)["snowboy"]
    assert k.tuned_on["method"] == "false-alarm-rate" and k.eer is not None and k.eer < 0.3
    assert k.tuned_on["expected_per_hour"] == pytest.approx(0.5, rel=0.01)
    assert k.tuned_on["tts_renderings"] > 0 and k.tuned_on["tts_positives"] > 0
    assert k.tuned_on["negatives"] > 1000 and 0 <= k.tuned_on["recall_at_threshold"] <= 1
    clips = synthesize([Render("snowboy", "espeak-ng", v, {"speed": 150, "pitch": 50})
                        for v in ("en-us", "en-gb+f3", "en-us+m3", "en-029")])
    files = []
    for i, c in enumerate(clips[:3]):
        f = tmp_path / f"ex{i}.wav"
        pad = np.zeros(4000, np.int16)
        sf.write(f, np.concatenate([pad, c, pad]), 16000)
        files.append(str(f))
    assert enroll(["--store", st, "add", "--name", "snowboy-ex", "--examples", *files]) == 0
    k2 = KeywordSet.load(st)["snowboy-ex"]
    assert k2.source == "examples" and k2.threshold > 0
    test_clip = tmp_path / "test.wav"
    sf.write(test_clip, np.concatenate([np.zeros(8000, np.int16), clips[3], np.zeros(8000, np.int16)]), 16000)
    capsys.readouterr()
    assert enroll(["--store", st, "test", str(test_clip)]) == 0
    out = capsys.readouterr().out
    assert "snowboy-ex" in out and "DETECTED" in out
