import json
import subprocess
import sys

from kws import Detector, Model
from kws.audio.io import load_audio
from kws.enroll.demo import demo_store, sample_recording
from kws.enroll.store import KeywordSet, export_doc
from kws.model.model import default_model_path
from kws.spot.detector import DetectorConfig
from kws.spot.templates import Matcher
from tests.conftest import ROOT, SPOKEN

DEMO = ROOT / "demos" / "embedded_match.py"


def test_embedded_demo_matches_kws_without_importing_it(tmp_path):
    model = Model.load()
    ks = KeywordSet.load(demo_store(), model.model_id)
    # the file `python -m kws enroll --store kws/assets/demo export keywords.json` writes
    (tmp_path / "keywords.json").write_text(json.dumps(export_doc(ks, model)))
    args = [str(default_model_path()), str(tmp_path / "keywords.json"), str(sample_recording())]
    # run the demo's main() (it prints its lines, then the test prints what it returned) in a
    # fresh process that must never import kws
    code = (f"import json, runpy, sys; "
            f"r = runpy.run_path({str(DEMO)!r})['main'](*{args!r}); "
            "assert not [m for m in sys.modules if m == 'kws' or m.startswith('kws.')], 'kws imported'; "
            "print(json.dumps(r))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       cwd=tmp_path, check=False)
    assert r.returncode == 0, r.stderr
    *lines, last = r.stdout.strip().splitlines()
    got = json.loads(last)
    assert list(got) == ks.names and all(any(ln.startswith(n + ":") for ln in lines) for n in ks.names)

    audio = load_audio(sample_recording())
    det = Detector(ks, model, DetectorConfig(vad=False))
    best = Matcher(det.bank).scores(model.vectors(audio)).max(axis=0)
    for k, name in enumerate(ks.names):
        assert abs(got[name]["best"] - float(best[k])) < 1e-4, name
        assert abs(got[name]["threshold"] - ks[name].threshold) < 1e-9
    events = det.detect(audio)
    mine = [(n, start, end, s) for n in got for start, end, s in got[n]["detections"]]
    assert len(mine) == len(events)
    for e in events:
        match = [m for m in mine if m[0] == e.keyword and abs(m[1] - e.start) < 0.01]
        assert len(match) == 1, (e, mine)
        assert abs(match[0][2] - e.end) < 0.01 and abs(match[0][3] - e.score) < 1e-4
    # the sample says each demo keyword once, where it was spoken
    assert sorted(n for n, *_ in mine) == sorted(SPOKEN)
    for n, start, _, _ in mine:
        assert abs(start - SPOKEN[n]) < 0.3


def test_embedded_demo_scores_keywords_as_kws_with_a_soft_maximum():
    """The demo's keyword score (demos/embedded_match.py keyword_scores) against
    kws.spot.templates, best template (soft_max 0) and soft maximum (a model's templates.soft_max)."""
    import runpy

    import numpy as np

    from kws.spot.templates import TemplateBank, template_scores, unit

    demo = runpy.run_path(str(DEMO))
    rng = np.random.default_rng(5)
    tpls = [unit(rng.normal(size=(n, 12))).astype(np.float32) for n in (3, 6, 4)]
    x = unit(rng.normal(size=(25, 12))).astype(np.float32)
    x[8:12] = tpls[2]
    for soft in (0.0, 20.0):
        bank = TemplateBank.build([tpls], soft_max=soft)
        got, _ = demo["keyword_scores"](tpls, x, soft)
        np.testing.assert_allclose(got, bank.keyword_scores(template_scores(bank, x))[:, 0], atol=1e-5)
