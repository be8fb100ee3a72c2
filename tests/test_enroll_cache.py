"""Renderings and typed keywords cached on disk (kws.enroll.render_cache): hits, misses, damaged entries,
the size bound; detect -k of an enrolled or earlier-typed text without rendering."""
import json
import os

import numpy as np
import pytest

from kws.commands import main
from kws.enroll import kokoro, render_cache
from kws.enroll.store import KeywordSet

VOICE = kokoro.Rendering("af_heart")
PH = "hˈA"                                  # "hey": the shortest rendering worth caching


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv(render_cache.ENV_DIR, str(d))
    monkeypatch.delenv(render_cache.ENV_MB, raising=False)
    render_cache._memo.clear()
    yield d
    render_cache._memo.clear()


@pytest.fixture
def renders(monkeypatch):
    """Count the renderings Kokoro makes."""
    calls = []
    real = kokoro.render_timed

    def counting(phonemes, rendering, threads=1):
        calls.append((phonemes, rendering.voice))
        return real(phonemes, rendering, threads)

    monkeypatch.setattr(kokoro, "render_timed", counting)
    return calls


def _entries(d, kind="renderings"):
    return sorted((d / kind).rglob("*.npz")) if (d / kind).exists() else []


def test_rendering_miss_hit_and_damaged_entry(cache, renders):
    first = render_cache.render(PH, [VOICE])[0]
    assert len(renders) == 1 and len(_entries(cache)) == 1
    assert first.durations.sum() == pytest.approx(first.audio.size, abs=2)
    render_cache._memo.clear()                                   # a new process: from disk
    again = render_cache.render(PH, [VOICE])[0]
    assert len(renders) == 1
    np.testing.assert_array_equal(again.audio, first.audio)
    np.testing.assert_array_equal(again.durations, first.durations)
    (entry,) = _entries(cache)
    entry.write_bytes(entry.read_bytes()[:200])                  # cut short: damaged
    render_cache._memo.clear()
    third = render_cache.render(PH, [VOICE])[0]                  # ignored, rendered again, rewritten
    assert len(renders) == 2
    np.testing.assert_array_equal(third.audio, first.audio)
    (entry,) = _entries(cache)
    assert entry.stat().st_size > 1000 and not list(cache.rglob("*.tmp"))
    entry.write_bytes(b"not a numpy archive at all")
    render_cache._memo.clear()
    render_cache.render(PH, [VOICE])
    assert len(renders) == 3


def test_key_is_the_model_the_phonemes_and_the_rendering(cache):
    k = render_cache.rendering_key(PH, VOICE)
    assert k == render_cache.rendering_key(PH, kokoro.Rendering("af_heart"))
    assert k != render_cache.rendering_key(PH, kokoro.Rendering("am_adam"))
    assert k != render_cache.rendering_key(PH, kokoro.Rendering("af_heart", speed=1.1))
    assert k != render_cache.rendering_key(PH, kokoro.Rendering("af_heart", other="am_adam", t=0.5))
    assert k != render_cache.rendering_key("hˈI", VOICE)
    doc = json.loads(k)
    assert doc["kokoro"] == kokoro.MODEL_SHA256 and doc["tokens"] == kokoro.tokens(PH).tolist()


def test_cache_off_and_size_bound(cache, monkeypatch, renders):
    monkeypatch.setenv(render_cache.ENV_DIR, "off")
    assert render_cache.root() is None
    render_cache.render(PH, [VOICE])
    assert not cache.exists() and len(renders) == 1
    monkeypatch.setenv(render_cache.ENV_DIR, str(cache))
    render_cache.render(PH, [VOICE])                  # held in this process: not rendered again
    assert len(renders) == 1 and not _entries(cache)
    render_cache._memo.clear()
    render_cache.render(PH, [VOICE])
    assert len(renders) == 2
    old = _entries(cache)[0]
    os.utime(old, (1, 1))                             # used long ago
    for i in range(5):                                # fill the cache with others
        render_cache._write(cache / "renderings" / "zz" / f"{i}.npz",
                            {"key": np.array(str(i)), "audio": np.zeros(50_000, np.float32)})
    assert render_cache.size() > 1_000_000
    monkeypatch.setenv(render_cache.ENV_MB, "1")      # 1 MB: over, the oldest go first
    assert render_cache.prune() > 0
    assert not old.exists() and render_cache.size() <= 0.8e6


def test_typed_keyword_cached_and_detect_takes_it_without_rendering(cache, tmp_path, monkeypatch, capsys,
                                                                       one_voice):
    import kws
    from kws.model.model import Model

    model = Model.load()
    kw = kws.enroll_keyword("hey snowboy", model=model, tune=False)
    monkeypatch.setattr(kokoro, "render_timed", lambda *a, **k: pytest.fail("rendered again"))
    again = kws.enroll_keyword("Hey, Snowboy!", model=model, tune=False)          # the same words
    assert again.threshold == kw.threshold and again.tuned_on == kw.tuned_on
    assert again.text == "Hey, Snowboy!" and again.name == "Hey, Snowboy!"
    np.testing.assert_array_equal(again.vectors, kw.vectors)
    # a keyword entry that is damaged is made again from the cached renderings: still no rendering
    (entry,) = _entries(cache, "keywords")
    entry.write_bytes(b"PK\x03\x04 damaged")
    third = kws.enroll_keyword("hey snowboy", model=model, tune=False)
    assert third.threshold == pytest.approx(kw.threshold) and entry.stat().st_size > 1000
    # another false-alarm target is another keyword (its threshold is set again, no rendering)
    loose = kws.enroll_keyword("hey snowboy", model=model, tune=False, fa_per_hour=10)
    assert loose.tuned_on["target_per_hour"] == 10.0
    # detect -k of a typed-before text: from the cache, said on stderr
    monkeypatch.setenv("KWS_STORE", str(tmp_path / "empty-store"))
    assert main(["detect", "-k", "hey snowboy"]) == 0
    err = capsys.readouterr().err
    assert f"detecting 'hey snowboy' (threshold {kw.threshold:.3f}, typed before)" in err
    assert "nothing heard" in err and "rendering" not in err


def test_detect_takes_an_enrolled_keyword_from_the_store(cache, tmp_path, monkeypatch, capsys, one_voice):
    st = tmp_path / "store"
    assert main(["enroll", "--store", str(st), "add", "hey snowboy", "--no-tune", "--name", "snowy"]) == 0
    capsys.readouterr()
    stored = KeywordSet.load(st)["snowy"]
    render_cache.clear()                               # not from the cache: from the store
    for f in ("render_timed", "session", "model_path"):
        monkeypatch.setattr(kokoro, f, lambda *a, **k: pytest.fail("Kokoro used"))
    assert main(["detect", "--store", str(st), "-k", "Hey snowboy"]) == 0
    err = capsys.readouterr().err
    assert f"detecting 'Hey snowboy' (threshold {stored.threshold:.3f}, from the store)" in err


def test_slow_steps_say_so(cache, monkeypatch):
    """The model's first join and the rendering each give a line when they take over a second."""
    import time

    lines = []
    real_path = kokoro.model_path()
    monkeypatch.setattr(kokoro, "_sessions", {})
    monkeypatch.setattr(kokoro, "_verified", lambda p: (_ for _ in ()).throw(kokoro.KokoroError("changed")))
    monkeypatch.setattr(kokoro, "_join", lambda target: (time.sleep(1.3), real_path)[1])
    kokoro.ready(lines.append)
    assert lines == ["joining the Kokoro model into the cache (first use, 92 MB) ..."]
    monkeypatch.undo()
    monkeypatch.setenv(render_cache.ENV_DIR, str(cache))
    lines.clear()
    render_cache.render(PH, [VOICE, kokoro.Rendering("am_michael")], label="hey", say=lines.append)
    assert lines == ["rendering 'hey' in 2 voices ..."]
    lines.clear()
    render_cache.render(PH, [VOICE, kokoro.Rendering("am_michael")], label="hey", say=lines.append)
    assert lines == []                                   # cached: nothing to say
