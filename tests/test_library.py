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
from kws.audio.io import load_audio, write_wav
from kws.enroll.demo import sample_recording
from kws.errors import KwsError
from tests.conftest import VOICES, demo_set

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def jarvis_clip():
    """'jarvis' as said in the bundled sample, with 0.3 s of its surroundings either side."""
    x = load_audio(sample_recording())
    e = next(e for e in kws.Detector(demo_set(["jarvis"])).detect(x) if e.keyword == "jarvis")
    return x, x[int((e.start - 0.3) * 16000):int((e.end + 0.3) * 16000)], e.start


# ------------------------------------------------------------------ enroll_keyword
def test_enroll_keyword_by_text(model):
    kw = kws.enroll_keyword("snowboy", model=model, voices=VOICES)
    assert kw.name == kw.text == "snowboy" and kw.source == "text"
    assert kw.phonemes == "S N OW B OY" and kw.vectors.shape == (sum(kw.segments), 96)
    assert kw.origins == [f"kokoro:{v}" for v in VOICES] and all(n > 4 for n in kw.segments)
    assert kw.tuned_on["method"] == "false-alarm-rate" and kw.tuned_on["templates"] == 3
    assert kw.tuned_on["expected_per_hour"] == pytest.approx(1.0, rel=0.01)
    assert kw.tuned_on["positives"] == 6 and 0 <= kw.tuned_on["recall_at_threshold"] <= 1
    assert kw.eer is not None and kw.eer < 0.3 and 0.3 <= kw.threshold < 1
    assert 0.3 < kw.duration < 1.0                   # "snowboy" takes about 0.6 s to say


def test_enroll_keyword_by_text_without_tuning_or_by_phonemes(model, few_voices):
    lines = []
    kw = kws.enroll_keyword("hey snowboy", progress=lines.append, model=model)
    assert any("fallback G2P: snowboy" in line for line in lines)
    calibrated = kws.enroll_keyword("hey snowboy", tune=False, model=model)
    assert calibrated.threshold == pytest.approx(kw.threshold) and calibrated.eer is None
    assert "recall_at_threshold" not in calibrated.tuned_on and kw.eer is not None
    np.testing.assert_allclose(calibrated.vectors, kw.vectors)
    by_phonemes = kws.enroll_keyword("snowboy", phonemes="S N OW1 B OY2", tune=False, model=model)
    assert by_phonemes.phonemes == "S N OW B OY" and by_phonemes.text is None
    assert by_phonemes.source == "text" and len(by_phonemes.segments) == len(few_voices)
    loose = kws.enroll_keyword("hey snowboy", tune=False, model=model, fa_per_hour=10.0)
    assert loose.threshold <= kw.threshold and loose.tuned_on["target_per_hour"] == 10.0
    with pytest.raises(kws.KwsError, match="no Kokoro voice"):
        kws.enroll_keyword("hey snowboy", model=model, voices=["xx_nobody"])


def test_enroll_keyword_by_examples_detects_it(model, jarvis_clip, tmp_path):
    sample, clip, start = jarvis_clip
    f = tmp_path / "jarvis.wav"
    write_wav(f, clip)
    kw = kws.enroll_keyword("my jarvis", examples=[clip, str(f)], model=model)
    assert kw.source == "examples" and kw.text is None and kw.phonemes is None
    assert kw.origins == ["recording", "recording"] and kw.tuned_on["templates"] == 2
    assert kw.tuned_on["expected_per_hour"] == pytest.approx(1.0, rel=0.01)
    assert kw.tuned_on["positives"] == 4                     # each recording, clean and in noise
    assert kw.duration == pytest.approx(clip.size / 16000, rel=0.3)       # speech around it in the sample
    events = kws.Detector(kws.KeywordSet(model.model_id, [kw]), model).detect(sample)
    assert [e.keyword for e in events] == ["my jarvis"] and abs(events[0].start - start) < 0.5
    both = kws.enroll_keyword("jarvis", text="jarvis", examples=[clip], tune=False, model=model, voices=VOICES)
    assert both.source == "text+examples" and len(both.segments) == len(VOICES) + 1
    assert both.origins[-1] == "recording" and both.origins[0] == f"kokoro:{VOICES[0]}"


def test_benchmarks_enroll_examples_as_the_product_does(model, jarvis_clip, few_voices):
    """kws.evaluate's keywords from examples (evaluate, compare_engines) are enroll add's: the
    first recordings enrollment accepts, trimmed as it trims them, the same threshold."""
    from kws.evaluate import Renders, accepted_examples, keywords

    padded = np.concatenate([np.zeros(16000, np.float32), jarvis_clip[1], np.zeros(16000, np.float32)])
    silent = np.zeros(16000, np.float32)
    got = accepted_examples({"jarvis": iter([silent, padded, jarvis_clip[1]])}, n=1)
    assert len(got.refused["jarvis"]) == 1 and "silent" in got.refused["jarvis"][0]
    assert len(got.examples["jarvis"]) == 1 and got.examples["jarvis"][0].size < padded.size - 1.8 * 16000
    renders = Renders()
    ks = keywords(model, renders, ["jarvis"], got.examples, typed=False)
    enrolled = kws.enroll_keyword("jarvis", examples=[padded], tune=False, model=model)
    np.testing.assert_allclose(ks["jarvis"].vectors, enrolled.vectors, atol=1e-6)
    assert ks["jarvis"].threshold == pytest.approx(enrolled.threshold) and ks["jarvis"].source == "examples"
    from kws.spot.templates import source_vectors

    np.testing.assert_allclose(enrolled.vectors, source_vectors(model.frontend.frames, got.examples["jarvis"][0]),
                               atol=1e-5)                    # the silence around it trimmed, as it was
    # typed, and typed + examples: `enroll add jarvis` and `enroll add jarvis --examples ...`
    both = keywords(model, renders, ["jarvis"], got.examples)["jarvis"]
    product = kws.enroll_keyword("jarvis", text="jarvis", examples=[padded], tune=False, model=model)
    np.testing.assert_allclose(both.vectors, product.vectors, atol=1e-6)
    assert both.threshold == pytest.approx(product.threshold) and both.source == "text+examples"


def test_enroll_keyword_refuses_bad_examples(model):
    from kws.enroll.build import EnrollError

    with pytest.raises(EnrollError, match="silent") as info:
        kws.enroll_keyword("x", examples=[np.zeros(16000, np.float32)], model=model)
    assert isinstance(info.value, KwsError) and isinstance(info.value, ValueError)
    with pytest.raises(EnrollError, match="too short"):
        kws.enroll_keyword("x", examples=[np.full(800, 0.1, np.float32)], model=model)
    with pytest.raises(kws.KwsError, match="no such file"):
        kws.enroll_keyword("x", examples=["/no/such.wav"], model=model)
    with pytest.raises(kws.KwsError, match="NaN"):
        kws.enroll_keyword("x", examples=[np.full(8000, np.nan, np.float32)], model=model)
    click = np.zeros(8000, np.float32)
    click[4000:4000 + 640] = 0.5 * np.sin(np.arange(640) / 3)            # 0.04 s of sound
    with pytest.raises(EnrollError, match="too little sound to make a template"):
        kws.enroll_keyword("x", examples=[click], model=model)


# ------------------------------------------------------------------ one exception base
def _store_of(model_id, where):
    kws.KeywordSet(model_id, [kws.Keyword("a", np.eye(1, 96, dtype=np.float32), 0.3)]).save(where)
    return where


def _old_store(where):
    """A store written by kws 0.1 (version 1): what OldStoreError is for."""
    _store_of("m1", where)
    f = where / "keywords.json"
    f.write_text(json.dumps(dict(json.loads(f.read_text()), version=1)))
    return where


def _missing_wyoming(monkeypatch):
    import kws.serve.framing

    monkeypatch.setattr(kws.serve.framing, "_MISSING", ImportError("No module named 'wyoming'"))
    kws.serve.framing.require_wyoming()


def _no_microphone(monkeypatch):
    import kws.audio.mic

    monkeypatch.setattr(kws.audio.mic, "list_input_devices", lambda: [])       # a machine without one
    kws.audio.mic.input_device()


ERRORS = {   # kind: (how to meet it, the class, the built-in class it also is)
    "audio": (lambda tmp, mp: load_audio(tmp / "missing.wav"), "kws.audio.io.AudioError", ValueError),
    "text": (lambda tmp, mp: kws.Detector.from_texts(["???"]), "kws.enroll.phonemes.TextError", ValueError),
    "model": (lambda tmp, mp: kws.Model.load(tmp), "kws.model.model.ModelError", RuntimeError),
    "store": (lambda tmp, mp: kws.KeywordSet.load(tmp), "kws.enroll.store.StoreError", RuntimeError),
    "corrupt store": (lambda tmp, mp: (tmp / "keywords.json").write_text("{") and kws.KeywordSet.load(tmp),
                      "kws.enroll.store.CorruptStoreError", RuntimeError),
    "other model's store": (lambda tmp, mp: kws.KeywordSet.load(_store_of("m1", tmp), "m2"),
                            "kws.enroll.store.OtherModelError", ValueError),
    "other model's keywords": (lambda tmp, mp: kws.Detector(kws.KeywordSet.load(_store_of("m1", tmp))),
                               "kws.enroll.store.OtherModelError", ValueError),
    "store of an earlier kws": (lambda tmp, mp: kws.KeywordSet.load(_old_store(tmp)),
                                "kws.enroll.store.OldStoreError", ValueError),
    "search index": (lambda tmp, mp: (tmp / "manifest.json").write_text("{}") and kws.ArchiveIndex(tmp),
                     "kws.errors.SearchIndexError", RuntimeError),
    "damaged search index": (lambda tmp, mp: (tmp / "x").write_text("x") and kws.ArchiveIndex(tmp),
                             "kws.errors.ArchiveDamaged", RuntimeError),
    "microphone": (lambda tmp, mp: _no_microphone(mp), "kws.audio.mic.NoMicrophone", RuntimeError),
    "setting": (lambda tmp, mp: kws.DetectorConfig(refractory_s=-1), "kws.errors.UsageError", ValueError),
    "missing extra": (lambda tmp, mp: _missing_wyoming(mp), "kws.errors.MissingExtra", ImportError),
    "enrollment": (lambda tmp, mp: kws.enroll_keyword("x", examples=[np.zeros(8000, np.float32)]),
                   "kws.enroll.build.EnrollError", ValueError),
    "kokoro": (lambda tmp, mp: kws.enroll_keyword("x", voices=["xx_nobody"]), "kws.enroll.kokoro.KokoroError",
               RuntimeError),
    "template": (lambda tmp, mp: kws.spot.templates.TemplateBank.build([[]]), "kws.spot.templates.TemplateError",
                 ValueError),
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
                       ("kws.enroll.g2p", "python -m kws g2p")):
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
    r = _run("-m", "kws", "export", "head", "--out", "model", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"cd {ROOT}" in r.stderr, r.stderr


# ------------------------------------------------------------------ what imports what
def test_run_time_never_imports_the_training_data_package():
    code = ("import sys, numpy as np, kws; from kws import commands; import kws.enroll.build, kws.search.archive, "
            "kws.serve.server, kws.audio.mic, kws.enroll.thresholds, kws.enroll.kokoro, kws.spot.templates; "
            "commands.build_parser(); "
            "kws.enroll_keyword('computer', examples=[np.random.default_rng(0).normal(size=8000) * 0.1], "
            "tune=False); kws.Detector.from_texts(['hello'], voices=['af_heart']); "
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
    assert "kws.enroll.phonemes" not in _imports(ROOT / "kws" / "enroll" / "g2p.py")
    assert not {"kws.enroll.phonemes", "kws.enroll.g2p"} & _imports(ROOT / "kws" / "enroll" / "lexicon.py")
