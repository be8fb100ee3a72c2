"""Input a new user may give: accented or foreign keywords, truncated or random audio files, a
missing train extra, an unlucky working directory, an installed evaluate."""
import io
import json
import os
import subprocess
import sys
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kws.audio.io import AudioError, AudioWarning, load_audio, prepare
from kws.commands import run_as
from kws.enroll.phonemes import TextError, normalize, pronounce, transliterate
from kws.enroll.store import KeywordSet

enroll = partial(run_as, "enroll")          # python -m kws enroll ARGS

ROOT = Path(__file__).resolve().parents[1]


def _run(args, cwd=None, env=None, timeout=300):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env=env)


# ------------------------------------------------------------------ keyword text
@pytest.mark.parametrize("text, words", [
    ("café", ["cafe"]), ("Zürich", ["zurich"]), ("naïve", ["naive"]), ("straße", ["strasse"]),
    ("crème brûlée", ["creme", "brulee"]), ("don\u2019t stop", ["don't", "stop"]),
    ("\uff43\uff4f\uff4d\uff50\uff55\uff54\uff45\uff52", ["computer"]), ("hey\u2014jarvis", ["hey", "jarvis"]),
])
def test_accented_latin_is_transliterated_not_truncated(text, words):
    assert normalize(text) == words
    assert pronounce(text).words == tuple(words)


@pytest.mark.parametrize("text, shown", [
    ("東京", "'東京'"), ("hey 東京", "'東京'"), ("Привет мир", "'Привет', 'мир'"), ("αβγ", "'αβγ'"),
])
def test_other_scripts_are_refused_by_name(text, shown):
    with pytest.raises(TextError, match="only English words can be pronounced: " + shown):
        normalize(text)


def test_transliterate_leaves_plain_text_alone():
    s = "Hey computer, it's 7 o'clock!"
    assert transliterate(s) == s


def test_enroll_cafe_and_tokyo(tmp_path, capsys, monkeypatch, one_voice):
    st_ = str(tmp_path / "s")
    assert enroll(["--store", st_, "add", "café", "--no-tune"]) == 0
    k = KeywordSet.load(st_)["café"]
    assert k.text == "café" and k.phonemes == pronounce("cafe").__str__()
    before = {p.name: p.read_bytes() for p in (tmp_path / "s").glob("*.json")}
    assert enroll(["--store", st_, "add", "東京"]) == 2
    assert "only English words can be pronounced: '東京'" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (tmp_path / "s").glob("*.json")} == before
    from kws.commands import main
    assert main(["detect", "-k", "東京"]) == 2
    assert "only English words" in capsys.readouterr().err


# ------------------------------------------------------------------ truncated audio
@pytest.mark.parametrize("fmt", ["WAV", "AIFF"])
def test_truncated_file_warns_with_name_and_amount(tmp_path, fmt):
    p = tmp_path / f"cut.{fmt.lower()}"
    x = (np.random.default_rng(0).normal(size=16000) * 0.1).astype(np.float32)
    sf.write(p, x, 16000, format=fmt, subtype="PCM_16")
    p.write_bytes(p.read_bytes()[:len(p.read_bytes()) * 6 // 10])
    with pytest.warns(AudioWarning, match=r"cut\.\w+: truncated: read 0\.\d\d s of the 1\.00 s"):
        y = load_audio(p)
    assert 0.5 * 16000 < y.size < 0.65 * 16000


def test_whole_files_do_not_warn(tmp_path):
    for fmt, sub in (("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", "PCM_16"), ("AIFF", "PCM_24")):
        p = tmp_path / f"ok.{fmt.lower()}"
        sf.write(p, np.zeros(8000, np.float32) + 0.1, 16000, format=fmt, subtype=sub)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert load_audio(p).size == 8000


def test_detect_and_enroll_report_a_truncated_file(tmp_path):
    from kws.enroll.demo import sample_recording

    cut = tmp_path / "cut.wav"
    whole = sample_recording().read_bytes()
    kept = (len(whole) - 44) * 2 // 3                                      # 14.9 s of its 22.3 s
    cut.write_bytes(whole[:44 + kept])
    env = dict(os.environ, KWS_STORE=str(tmp_path / "store"))
    r = _run(["-m", "kws", "detect", str(cut)], env=env)                 # the demo keywords
    assert r.returncode == 0, r.stderr
    assert f"warning: {cut}: truncated: read {kept // 2 / 16000:.2f} s" in r.stderr and "Traceback" not in r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert "jarvis" in [e["keyword"] for e in events]                   # the part that was there (12.4 s)
    assert all(e["end"] < kept // 2 / 16000 for e in events)
    ex = tmp_path / "ex.wav"
    x = np.zeros(16000, np.float32)
    x[4000:10000] = np.sin(np.arange(6000) / 5) * 0.3
    sf.write(ex, x, 16000, subtype="PCM_16")
    ex.write_bytes(ex.read_bytes()[:44 + 24000])
    r = _run(["-m", "kws.enroll", "add", "--name", "thing", "--examples", str(ex), "--no-tune"], env=env)
    assert r.returncode == 0, r.stderr
    assert f"warning: {ex}: truncated: read 0.75 s of the 1.00 s" in r.stderr


def test_all_blocks_read_for_long_files(tmp_path, monkeypatch):
    monkeypatch.setattr("kws.audio.io._BLOCK", 1000)
    p = tmp_path / "long.wav"
    x = (np.arange(16000 * 3) % 100 / 1000).astype(np.float32)
    sf.write(p, x, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(p), x)


# ------------------------------------------------------------------ fuzz: the audio reader
def _clear_or_valid(path):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AudioWarning)
            y = load_audio(path)
    except AudioError as exc:
        assert str(path) in str(exc)
    else:
        assert y.dtype == np.float32 and y.ndim == 1 and y.size > 0 and np.all(np.isfinite(y))


def _encoded(fmt, subtype, channels=1, sr=16000):
    x = np.random.default_rng(1).uniform(-0.5, 0.5, size=(4000, channels))
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


_GOOD = {k: _encoded(*k) for k in [("WAV", "PCM_16"), ("WAV", "FLOAT", 2), ("FLAC", "PCM_16"),
                                   ("OGG", "VORBIS"), ("AIFF", "PCM_24", 1, 8000)]}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ""]))
def test_fuzz_random_bytes_as_audio(tmp_path_factory, data, suffix):
    p = tmp_path_factory.mktemp("a") / f"x{suffix}"
    p.write_bytes(data)
    _clear_or_valid(p)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(_GOOD)), cut=st.floats(0, 1),
       flips=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4))
def test_fuzz_truncated_and_damaged_files(tmp_path_factory, kind, cut, flips):
    b = bytearray(_GOOD[kind][:int(len(_GOOD[kind]) * cut)])
    for pos, val in flips:                # header damage
        if pos < len(b):
            b[pos] = val
    p = tmp_path_factory.mktemp("a") / "x.audio"
    p.write_bytes(bytes(b))
    _clear_or_valid(p)


@settings(max_examples=150, deadline=None)
@given(shape=st.lists(st.integers(0, 5), max_size=3),
       dtype=st.sampled_from(["float32", "float64", "int16", "uint8", "int32", "complex64", "bool", "U1"]),
       rate=st.sampled_from([-1, 0, 1, 3999, 8000, 16000, 44100, 10 ** 9]), value=st.sampled_from([0, 1, np.nan]))
def test_fuzz_prepare_any_array(shape, dtype, rate, value):
    try:
        with np.errstate(invalid="ignore"):
            a = np.full(shape, value, dtype=dtype)
    except (ValueError, TypeError):
        return
    try:
        y = prepare(a, rate)
    except AudioError:
        return
    assert y.dtype == np.float32 and y.ndim == 1 and np.all(np.isfinite(y))


# ------------------------------------------------------------------ train extra, cwd, installed evaluate
def test_train_without_torch_says_what_to_install():
    code = ("import sys; sys.modules['torch'] = None; from kws.commands import main; "
            "sys.exit(main(['train', 'x.json']))")
    r = _run(["-c", code])
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "needs torch and the train extra" in r.stderr and "pip install 'kws[train]' torch==" in r.stderr


def test_export_needs_no_torch_and_says_what_head_it_wants():
    """kws export builds the model folder (export/model.py: numpy and onnxruntime)."""
    code = ("import sys; sys.modules['torch'] = None; from kws.commands import main; "
            "sys.exit(main(['export', 'x.json']))")
    r = _run(["-c", code], cwd=ROOT)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "no head.json" in r.stderr and "python -m kws.train.head export" in r.stderr


def test_run_from_the_parent_of_a_checkout_named_kws(tmp_path):
    """Where a folder `kws` without __init__.py hides the package: works, or an error saying why."""
    (tmp_path / "kws").symlink_to(ROOT, target_is_directory=True)
    for args in (["-m", "kws", "detect"], ["-m", "kws.enroll", "list"]):
        r = _run(args, cwd=tmp_path, env=dict(os.environ, KWS_STORE=str(tmp_path / "st")))
        assert "Traceback" not in r.stderr and "not a model bundle" not in r.stderr
        if r.returncode != 0:       # an editable install: the folder shadows the package
            assert r.returncode == 2 and "in place of the installed one" in r.stderr, r.stderr


def test_installed_evaluate_asks_for_data(tmp_path, monkeypatch, capsys):
    from kws.commands import main

    monkeypatch.setattr("kws.commands.evaluate.checkout_root", lambda: None)    # an installed kws
    assert main(["evaluate", "--out", str(tmp_path / "r")]) == 2
    assert "give --data DIR" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
