"""The model folder (kws.model.model): checked on load, clear errors."""
import json
import shutil

import numpy as np
import pytest

from kws.model.model import Model, ModelError, default_model_path


def test_shipped_model_loads_and_gives_vectors():
    m = Model.load()
    assert m.model_id.startswith("tpl-")
    v = m.vectors(np.zeros(16000, np.float32))
    assert v.shape == (3, m.manifest["head"]["dim"] if m.manifest.get("head") else 96)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


@pytest.fixture
def copy(tmp_path):
    d = tmp_path / "model"
    shutil.copytree(default_model_path(), d)
    return d


def test_corrupt_or_missing_files_are_refused(copy):
    f = copy / "backbone.onnx"
    data = bytearray(f.read_bytes())
    data[5000] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum mismatch"):
        Model.load(copy)
    f.unlink()
    with pytest.raises(ModelError, match="missing"):
        Model.load(copy)


def test_not_a_model(copy, tmp_path):
    with pytest.raises(ModelError, match="no manifest"):
        Model.load(tmp_path)
    mf = copy / "manifest.json"
    mf.write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        Model.load(copy)
    mf.write_text(json.dumps({"format": "kws-bundle", "format_version": 1}))
    with pytest.raises(ModelError, match="encoder bundle"):
        Model.load(copy)
    mf.write_text(json.dumps({"format": "kws-model", "format_version": 99}))
    with pytest.raises(ModelError, match="newer kws"):
        Model.load(copy)


def test_templates_cut_with_fewer_vectors_at_the_end(copy):
    """A manifest's templates.trim_end (a head trained to end its templates sooner) cuts each
    template's end there and nowhere else; without it both ends drop ``trim``."""
    from kws.enroll.store import Keyword
    from kws.spot.templates import keyword_templates

    from kws.spot.templates import source_vectors

    t = np.arange(16000) / 16000
    clip = (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(np.pi * t)).astype(np.float32)
    m = Model.load(copy)
    assert m.trim_end == m.trim
    v = source_vectors(m.frontend.frames, clip, pad_s=m.pad_s)
    kw = Keyword(name="tone", vectors=v, threshold=0.5, segments=[v.shape[0]], origins=["recording"])
    before = keyword_templates(m, kw)[0]
    mf = copy / "manifest.json"
    doc = json.loads(mf.read_text())
    doc["templates"]["trim_end"] = m.trim + 2
    mf.write_text(json.dumps(doc))
    m2 = Model.load(copy)
    assert m2.trim_end == m.trim + 2
    after = keyword_templates(m2, kw)[0]
    assert after.shape[0] == before.shape[0] - 2
    np.testing.assert_allclose(after, before[:-2], atol=1e-6)
    # the embedded demo (numpy + onnxruntime alone) cuts them the same way
    import runpy
    from pathlib import Path

    demo = runpy.run_path(str(Path(__file__).resolve().parents[1] / "demos" / "embedded_match.py"))
    meta = m2.manifest["head"]
    got = demo["keyword_templates"](demo["session"](str(copy / meta["file"])), int(meta["context"]), m2.trim,
                                    {"vectors": v.tolist(), "segments": [v.shape[0]]}, m2.trim_end)[0]
    np.testing.assert_allclose(got, after, atol=1e-5)


def test_step_graph_is_checked_and_optional(copy):
    """The manifest's frontend.step_network is checked like every file; a folder made before it
    (no entry, no file) loads, keeps its model id and streams the same vectors on whole windows;
    ``python -m export.model --add-step`` gives it the shipped manifest again."""
    shipped = Model.load()
    step = shipped.manifest["frontend"]["step_network"]
    assert step in shipped.manifest["files"] and shipped.frontend.stream().stepped
    f = copy / step
    good = f.read_bytes()
    f.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(ModelError, match="checksum mismatch"):
        Model.load(copy)
    f.unlink()
    with pytest.raises(ModelError, match="missing"):
        Model.load(copy)
    mf = copy / "manifest.json"
    doc = json.loads(mf.read_text())
    del doc["frontend"]["step_network"], doc["files"][step]
    mf.write_text(json.dumps(doc, indent=2) + "\n")
    old = Model.load(copy)
    assert old.model_id == shipped.model_id and not old.frontend.stream().stepped
    t = np.arange(40000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(np.pi * t)).astype(np.float32)
    a, b = shipped.frontend.stream(), old.frontend.stream()
    got = [(a.push(x[s:s + 800]), b.push(x[s:s + 800])) for s in range(0, x.size, 800)]
    np.testing.assert_allclose(np.concatenate([g[0] for g in got]), np.concatenate([g[1] for g in got]),
                               rtol=1e-5, atol=1e-5)
    pytest.importorskip("onnx")
    from export.model import add_step

    add_step(copy)
    assert mf.read_text() == (default_model_path() / "manifest.json").read_text()
    assert (copy / step).read_bytes() == (default_model_path() / step).read_bytes()
    assert Model.load(copy).frontend.stream().stepped
