"""The library API (kws.enroll_keyword, KwsError) and the command tree (kws.commands)."""
import argparse
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kws
from kws.audio import load_audio, write_wav
from kws.demo import DEMO_KEYWORDS, sample_recording
from kws.errors import KwsError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle():
    return kws.Bundle.load()


@pytest.fixture(scope="module")
def jarvis_clip():
    """'jarvis' as said in the bundled sample, with 0.3 s of its surroundings either side."""
    x = load_audio(sample_recording())
    e = next(e for e in kws.Detector.from_texts(DEMO_KEYWORDS).detect(x) if e.keyword == "jarvis")
    return x, x[int((e.start - 0.3) * 16000):int((e.end + 0.3) * 16000)], e.start


# ------------------------------------------------------------------ enroll_keyword
def test_enroll_keyword_by_text_tuned_with_tts(bundle, espeak):
    kw = kws.enroll_keyword("snowboy", bundle=bundle)
    assert kw.name == kw.text == "snowboy" and kw.source == "text"
    assert kw.phonemes == "S N OW B OY" and kw.vectors.shape == (1, bundle.embedding_dim)
    assert kw.tuned_on["method"] == "false-alarm-rate" and kw.tuned_on["tts_positives"] > 0
    assert kw.tuned_on["tts_renderings"] > 0                       # the TTS anchor joined the text
    assert kw.tuned_on["expected_per_hour"] == pytest.approx(0.5, rel=0.01)
    assert kw.eer is not None and kw.eer < 0.3 and 0 < kw.threshold < 1


def test_enroll_keyword_by_text_without_tts_or_tuning(bundle, monkeypatch):
    monkeypatch.setattr("kws.tts.available_engines", lambda: [])
    lines = []
    kw = kws.enroll_keyword("hey computer", progress=lines.append, bundle=bundle)
    assert kw.tuned_on["method"] == "false-alarm-rate" and kw.tuned_on["target_per_hour"] == 5.0
    assert kw.tuned_on["tts_renderings"] == 0 and kw.eer is None          # nothing to tune with
    assert any("no TTS engine installed" in line for line in lines)
    calibrated = kws.enroll_keyword("hey computer", tune=False, bundle=bundle)
    assert calibrated.threshold == pytest.approx(kw.threshold) and calibrated.eer is None
    np.testing.assert_allclose(calibrated.vectors, kw.vectors)
    by_phonemes = kws.enroll_keyword("snowboy", phonemes="S N OW1 B OY2", tune=False, bundle=bundle)
    assert by_phonemes.phonemes == "S N OW B OY" and by_phonemes.text is None


def test_enroll_keyword_by_examples_detects_it(bundle, jarvis_clip, tmp_path, monkeypatch):
    monkeypatch.setattr("kws.tts.available_engines", lambda: [])      # examples alone tune it
    sample, clip, start = jarvis_clip
    f = tmp_path / "jarvis.wav"
    write_wav(f, clip)
    kw = kws.enroll_keyword("my jarvis", examples=[clip, str(f)], bundle=bundle)
    assert kw.source == "examples" and kw.text is None and kw.phonemes is None
    assert kw.tuned_on["method"] == "false-alarm-rate" and kw.tuned_on["examples"] == 2
    assert kw.tuned_on["expected_per_hour"] == pytest.approx(0.5, rel=0.01)
    assert kw.tuned_on["positives"] == 4 and kw.tuned_on["negatives"] == kw.tuned_on["background_hops"]
    assert kw.duration == pytest.approx(clip.size / 16000, rel=0.3)       # windows sized to it
    events = kws.Detector(kws.KeywordSet(bundle.model_id, [kw]), bundle).detect(sample)
    assert [e.keyword for e in events] == ["my jarvis"] and abs(events[0].start - start) < 0.5
    both = kws.enroll_keyword("jarvis", text="jarvis", examples=[clip], tune=False, bundle=bundle)
    assert both.source == "text+examples" and both.vectors.shape[0] == 2


def test_benchmarks_enroll_examples_as_the_product_does(bundle, jarvis_clip):
    """evaluate.example_detector (evaluate, compare_engines) trims examples like enroll add."""
    from kws.detector import DetectorConfig
    from kws.evaluate import example_detector

    padded = np.concatenate([np.zeros(16000, np.float32), jarvis_clip[1], np.zeros(16000, np.float32)])
    silent = np.zeros(16000, np.float32)
    got = example_detector(bundle, {"jarvis": iter([silent, padded, jarvis_clip[1]])}, DetectorConfig(), n=1)
    det = got.detector
    assert len(got.refused["jarvis"]) == 1 and "silent" in got.refused["jarvis"][0]
    assert len(got.examples["jarvis"]) == 1 and got.examples["jarvis"][0].size < padded.size
    enrolled = kws.enroll_keyword("jarvis", examples=[padded], tune=False, bundle=bundle)
    np.testing.assert_allclose(det.keywords["jarvis"].vectors, enrolled.vectors, atol=1e-6)
    assert det.keywords["jarvis"].threshold == pytest.approx(enrolled.threshold)
    untrimmed = bundle.embed_clips([padded])[0]
    assert abs(float(untrimmed @ enrolled.vectors[0]) - 1.0) > 1e-3


def test_enroll_keyword_refuses_bad_examples(bundle):
    from kws.enrollment import EnrollError

    with pytest.raises(EnrollError, match="silent") as info:
        kws.enroll_keyword("x", examples=[np.zeros(16000, np.float32)], bundle=bundle)
    assert isinstance(info.value, KwsError) and isinstance(info.value, ValueError)
    with pytest.raises(EnrollError, match="too short"):
        kws.enroll_keyword("x", examples=[np.full(800, 0.1, np.float32)], bundle=bundle)
    with pytest.raises(kws.KwsError, match="no such file"):
        kws.enroll_keyword("x", examples=["/no/such.wav"], bundle=bundle)
    with pytest.raises(kws.KwsError, match="NaN"):
        kws.enroll_keyword("x", examples=[np.full(8000, np.nan, np.float32)], bundle=bundle)


# ------------------------------------------------------------------ one exception base
def _store_of(model_id, where):
    kws.KeywordSet(model_id, [kws.Keyword("a", np.eye(1, 96, dtype=np.float32), 0.3)]).save(where)
    return where


def _missing_wyoming(monkeypatch):
    import kws.serve

    monkeypatch.setattr(kws.serve, "_MISSING", ImportError("No module named 'wyoming'"))
    kws.serve.require_wyoming()


def _no_microphone(monkeypatch):
    import kws.mic

    monkeypatch.setattr(kws.mic, "list_input_devices", lambda: [])       # a machine without one
    kws.mic.input_device()


ERRORS = {   # kind: (how to meet it, the class, the built-in class it also is)
    "audio": (lambda tmp, mp: load_audio(tmp / "missing.wav"), "kws.audio.AudioError", ValueError),
    "text": (lambda tmp, mp: kws.Detector.from_texts(["???"]), "kws.phonemes.TextError", ValueError),
    "bundle": (lambda tmp, mp: kws.Bundle.load(tmp), "kws.bundle.BundleError", RuntimeError),
    "store": (lambda tmp, mp: kws.KeywordSet.load(tmp), "kws.keywords.StoreError", RuntimeError),
    "corrupt store": (lambda tmp, mp: (tmp / "keywords.json").write_text("{") and kws.KeywordSet.load(tmp),
                      "kws.keywords.CorruptStoreError", RuntimeError),
    "other model's store": (lambda tmp, mp: kws.KeywordSet.load(_store_of("m1", tmp), "m2"),
                            "kws.keywords.OtherModelError", ValueError),
    "other model's keywords": (lambda tmp, mp: kws.Detector(kws.KeywordSet.load(_store_of("m1", tmp))),
                               "kws.keywords.OtherModelError", ValueError),
    "search index": (lambda tmp, mp: (tmp / "x").write_text("x") and kws.SearchIndex(tmp),
                     "kws.search.SearchIndexError", RuntimeError),
    "microphone": (lambda tmp, mp: _no_microphone(mp), "kws.mic.NoMicrophone", RuntimeError),
    "setting": (lambda tmp, mp: kws.DetectorConfig(hop_s=0), "kws.errors.UsageError", ValueError),
    "missing extra": (lambda tmp, mp: _missing_wyoming(mp), "kws.errors.MissingExtra", ImportError),
    "enrollment": (lambda tmp, mp: kws.enroll_keyword("x", examples=[np.zeros(8000, np.float32)]),
                   "kws.enrollment.EnrollError", ValueError),
}


@pytest.mark.parametrize("kind", list(ERRORS))
def test_one_except_catches_every_error_a_user_can_meet(kind, tmp_path, monkeypatch):
    make, name, builtin = ERRORS[kind]
    module, cls = name.rsplit(".", 1)
    expected = getattr(__import__(module, fromlist=[cls]), cls)
    with pytest.raises(kws.KwsError) as info:
        make(tmp_path, monkeypatch)
    assert type(info.value) is expected
    assert isinstance(info.value, builtin) and str(info.value)


# ------------------------------------------------------------------ the command tree
def _commands(parser, path=()):
    """Every (sub)command path of the tree."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield path + (name,)
                yield from _commands(sub, path + (name,))


def test_every_command_has_help(capsys):
    from kws.commands import COMMANDS, build_parser, main

    paths = list(_commands(build_parser()))
    assert {p[0] for p in paths} == set(COMMANDS)
    assert ("enroll", "add") in paths and ("search", "query") in paths and ("g2p", "build") in paths
    for p in paths:
        with pytest.raises(SystemExit) as info:
            main([*p, "--help"])
        assert info.value.code == 0, p
        assert "usage: python -m kws " + " ".join(p) in capsys.readouterr().out


def _run(*args, cwd=None, env=None, **kw):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env=env, **kw)


def test_module_aliases_run_the_same_commands(tmp_path):
    for mod, usage in (("kws.enroll", "python -m kws enroll"), ("kws.evaluate", "python -m kws evaluate"),
                       ("kws.g2p", "python -m kws g2p")):
        r = _run("-m", mod, "--help")
        assert r.returncode == 0 and usage in r.stdout and not r.stderr, (mod, r.stderr)
    env = dict(os.environ, KWS_STORE=str(tmp_path / "st"))
    r = _run("-m", "kws.enroll", "list", "--json", env=env)
    assert r.returncode == 0 and json.loads(r.stdout) == []


def test_store_before_a_command_that_has_none(capsys):
    from kws.commands import main

    with pytest.raises(SystemExit) as info:
        main(["--store", "/tmp/x", "search", "query", "ix", "term"])
    assert info.value.code == 2 and "--store goes with listen" in capsys.readouterr().err


def test_closed_pipe_ends_quietly(tmp_path):
    env = dict(os.environ, KWS_STORE=str(tmp_path / "st"))
    p = subprocess.Popen([sys.executable, "-m", "kws", "enroll", "list"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    p.stdout.close()                        # the reader is gone before kws writes
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 1 and "Traceback" not in err and "Exception ignored" not in err, err


def test_export_outside_the_checkout_says_where_to_run(tmp_path):
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch not installed (the train extra)")
    r = _run("-m", "kws", "export", "model.pt", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"cd {ROOT}" in r.stderr, r.stderr


# ------------------------------------------------------------------ what imports what
def test_run_time_never_imports_the_training_data_package():
    code = ("import sys, numpy as np, kws; from kws import commands, enrollment, search, serve, mic, "
            "thresholds, tts; commands.build_parser(); "
            "kws.enroll_keyword('computer', examples=[np.random.default_rng(0).normal(size=8000) * 0.1], "
            "tune=False); thresholds.tts_clips(['hello'], per_text=1); "
            "bad = sorted(m for m in sys.modules if m.startswith(('kws.corpus', 'kws.train', 'torch'))); "
            "print(bad)")
    r = _run("-c", code)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def _imports(path):
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_no_g2p_phonemes_circle():
    assert "kws.phonemes" not in _imports(ROOT / "kws" / "g2p.py")
    assert not {"kws.phonemes", "kws.g2p"} & _imports(ROOT / "kws" / "lexicon.py")
