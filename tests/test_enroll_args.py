"""Every argument, file and store path is checked before anything is rendered: one line, exit 2."""
import os

import numpy as np
import pytest
import soundfile as sf

from kws.commands import main
from kws.enroll import kokoro, render_cache
from kws.enroll.store import Keyword, KeywordSet
from kws.model.model import Model


@pytest.fixture
def no_kokoro(tmp_path, monkeypatch):
    """Any use of Kokoro (the model's join, its session, a rendering) fails the test; the render
    cache is empty."""
    monkeypatch.setenv(render_cache.ENV_DIR, str(tmp_path / "cache"))
    render_cache._memo.clear()
    for name in ("render_timed", "render", "session", "model_path", "ready"):
        monkeypatch.setattr(kokoro, name, lambda *a, **k: pytest.fail("Kokoro used before the arguments were checked"))


@pytest.fixture
def store(tmp_path):
    st = tmp_path / "store"
    v = np.random.default_rng(0).normal(size=(6, 96)).astype(np.float32)
    KeywordSet(Model.load().model_id, [Keyword("hey toaster", v, 0.5, text="hey toaster", segments=[6],
                                               origins=["kokoro:af_heart"])]).save(st)
    return st


def _err(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err)
    return err[-1]


@pytest.mark.parametrize("args, msg", [
    (["add", "hey oven", "--false-alarms-per-hour", "-1"], "false-alarm rate must be > 0"),
    (["add", "hey oven", "--false-alarms-per-hour", "0"], "false-alarm rate must be > 0"),
    (["add", "hey oven", "--false-alarms-per-hour", "nan"], "false-alarm rate must be > 0"),
    (["add", "hey toaster"], "exists already (remove or rename it first, or add --replace)"),
    (["add", "x", "--phonemes", "S N QQ"], "not ARPAbet phonemes: QQ"),
    (["add", "!!!"], "no letters"),
    (["add", "hey oven", "--not", "東京"], "only English words"),
    (["add", "hey oven", "--not", "???"], "no letters"),
    (["add", "hey oven", "--examples", "MISSING.wav"], "no such file"),
    (["add", "hey oven", "--examples", "NOTAUDIO.wav"], "cannot be read as audio"),
    (["check", "hey oven", "--false-alarms-per-hour", "-3"], "false-alarm rate must be > 0"),
    (["check"], "give the keyword's text"),
    (["test", "MISSING.wav"], "no such file"),
])
def test_enroll_refuses_before_rendering(tmp_path, capsys, no_kokoro, store, args, msg):
    (tmp_path / "NOTAUDIO.wav").write_text("hello")
    names = {"MISSING.wav": "missing.wav", "NOTAUDIO.wav": "NOTAUDIO.wav"}
    args = [str(tmp_path / names[a]) if a in names else a for a in args]
    before = sorted(p.name for p in store.iterdir())
    assert main(["enroll", "--store", str(store), *args]) == 2
    last = _err(capsys)
    assert last.startswith("error: ") and msg in last, last
    assert sorted(p.name for p in store.iterdir()) == before


def test_a_store_path_that_is_a_file(tmp_path, capsys, no_kokoro):
    f = tmp_path / "afile"
    f.write_text("x")
    assert main(["enroll", "--store", str(f), "add", "hey oven"]) == 2
    assert "is a file, not a keyword store folder" in _err(capsys)
    assert main(["detect", "--store", str(f), "-k", "hey oven"]) == 2
    assert "is a file, not a keyword store folder" in _err(capsys)
    assert main(["enroll", "--store", str(f / "below"), "add", "hey oven"]) == 2
    assert "is a file, not a folder" in _err(capsys)
    assert f.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_a_store_that_cannot_be_written(tmp_path, capsys, no_kokoro):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert main(["enroll", "--store", str(ro / "store"), "add", "hey oven"]) == 2
        assert "cannot be written" in _err(capsys)
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize("args, msg", [
    (["-k", "hey oven", "--false-alarms-per-hour", "-1", "OK.wav"], "false-alarm rate must be > 0"),
    (["-k", "hey oven", "--false-alarms-per-hour", "0", "OK.wav"], "false-alarm rate must be > 0"),
    (["-k", "hey oven", "--threshold", "7", "OK.wav"], "--threshold must be a score between -1 and 1"),
    (["-k", "hey oven", "OK.wav", "MISSING.wav"], "no such file"),
    (["-k", "hey oven", "DIR"], "is a directory"),
    (["-k", "hey oven", "NOTAUDIO.wav"], "cannot be read as audio"),
    (["-k", "???", "OK.wav"], "no letters"),
])
def test_detect_refuses_before_rendering(tmp_path, capsys, monkeypatch, no_kokoro, args, msg):
    monkeypatch.setenv("KWS_STORE", str(tmp_path / "store"))
    (tmp_path / "NOTAUDIO.wav").write_text("hello")
    sf.write(tmp_path / "OK.wav", np.zeros(16000, np.float32), 16000)
    names = {"OK.wav": "OK.wav", "MISSING.wav": "missing.wav", "NOTAUDIO.wav": "NOTAUDIO.wav", "DIR": "."}
    args = [str(tmp_path / names[a]) if a in names else a for a in args]
    assert main(["detect", *args]) == 2
    last = _err(capsys)
    assert last.startswith("error: ") and msg in last, last
