"""The conformance file (tests/data/conformance.json and .wav, made by tests/make_conformance.py):
the Python detector and demos/embedded_match.py give its front-end vectors, head vectors, scores
and events. The page's kws/web/kws.js is held to it in tests/test_web.py."""
import json
import subprocess
import sys

import numpy as np
import pytest

from kws.model.graph_bytes import signed_products_exact
from tests import make_conformance as mc
from tests.conftest import ROOT

DEMO = ROOT / "demos" / "embedded_match.py"
# scores and unit vectors: the file is made on an x86-64 CPU with VNNI, where onnxruntime's int8
# products are exact; on one without (AVX2 alone) kws and the embedded demo make the head's weights
# uint8 (kws.model.graph_bytes), and an activation here and there still rounds to the next int8
# step, so there the numbers agree to one step of the head's output
TOL = 1e-4 if signed_products_exact() else 0.02
TOL_RAW = 1e-3                   # the front end's raw vectors (values up to about 80)


@pytest.fixture(scope="module")
def conformance():
    from kws.model.model import Model

    doc, audio = mc.load()
    model = Model.load()
    if model.model_id != doc["model_id"]:
        pytest.fail(f"{mc.JSON.relative_to(ROOT)} is of model {doc['model_id']}, the shipped one is "
                    f"{model.model_id}: make it again with python tests/make_conformance.py")
    return doc, audio, model


def check_events(got, want, score_tol=TOL):
    """Detections (dicts of keyword, score, start, end) against the file's."""
    assert [e["keyword"] for e in got] == [e["keyword"] for e in want], (got, want)
    for g, w in zip(got, want):
        assert abs(g["score"] - w["score"]) < score_tol, (g, w)
        assert abs(g["start"] - w["start"]) < 2e-3 and abs(g["end"] - w["end"]) < 2e-3, (g, w)


def test_python_detector(conformance):
    from kws.spot.detector import Detector, DetectorConfig
    from kws.spot.room import AdaptConfig
    from kws.spot.templates import keyword_templates

    doc, audio, model = conformance
    ks = mc.keyword_set(doc)
    for kw, d in zip(ks, doc["keywords"]):
        got = keyword_templates(model, kw)
        assert [len(t) for t in got] == [len(t) for t in d["templates"]]
        np.testing.assert_allclose(np.concatenate(got), np.concatenate(d["templates"]), atol=TOL)
    stream = np.concatenate([np.zeros(doc["primed_samples"], np.float32), audio])
    raw = model.frontend.frames(stream)
    np.testing.assert_allclose(raw, doc["raw"], atol=TOL_RAW)
    np.testing.assert_allclose(model.head(raw), doc["vectors"], atol=TOL)

    det = Detector(ks, model, DetectorConfig(vad=False, adapt=AdaptConfig(enabled=False)))
    seen = []
    update = det._update
    det._update = lambda scores, spans: (seen.append(np.array(scores)), update(scores, spans))[1]
    det.reset()
    events = []
    for s in range(0, audio.size, 777):                 # streamed in chunks of any size
        events += det.process(audio[s:s + 777])
    events += det.flush()
    np.testing.assert_allclose(np.stack(seen), np.array(doc["scores"])[doc["unscored"]:], atol=TOL)
    check_events([e.to_dict() for e in events], doc["events"])
    check_events([e.to_dict() for e in det.detect(audio)], doc["events"])


def test_embedded_demo(conformance, tmp_path):
    """The demo's stages, in a fresh process that never imports kws."""
    doc, _, model = conformance
    code = f"""
import json, os, runpy, sys, wave
import numpy as np
d = runpy.run_path({str(DEMO)!r})
model, doc = {str(model.path)!r}, json.load(open({str(mc.JSON)!r}))
manifest = d["read_json"](os.path.join(model, "manifest.json"))
with wave.open({str(mc.WAV)!r}, "rb") as w:
    x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
hs, ctx = d["session"](os.path.join(model, manifest["head"]["file"])), int(manifest["head"]["context"])
raw = d["raw_vectors"](model, np.concatenate([np.zeros(d["PRIMED"], np.float32), x]))
stream, n0 = d["stream_vectors"](model, hs, ctx, x)
tpls = [d["keyword_templates"](hs, ctx, manifest["templates"]["trim"], kw,
                              manifest["templates"].get("trim_end")) for kw in doc["keywords"]]
scores = np.stack([d["keyword_scores"](t, stream)[0] for t in tpls], axis=1)
results = d["main"](model, {str(mc.JSON)!r}, {str(mc.WAV)!r})
assert not [m for m in sys.modules if m == "kws" or m.startswith("kws.")], "kws imported"
print(json.dumps({{"raw": raw.tolist(), "vectors": stream.tolist(), "unscored": n0, "scores": scores.tolist(),
                  "templates": [[t.tolist() for t in ts] for ts in tpls], "results": results}}))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["unscored"] == doc["unscored"]
    np.testing.assert_allclose(got["raw"], doc["raw"], atol=TOL_RAW)
    np.testing.assert_allclose(got["vectors"], doc["vectors"], atol=TOL)
    np.testing.assert_allclose(got["scores"], doc["scores"], atol=TOL)
    for ts, d in zip(got["templates"], doc["keywords"]):
        np.testing.assert_allclose(np.concatenate(ts), np.concatenate(d["templates"]), atol=TOL)
    events = sorted(({"keyword": n, "start": a, "end": b, "score": s}
                     for n, res in got["results"].items() for a, b, s in res["detections"]),
                    key=lambda e: e["start"])
    check_events(events, doc["events"])
