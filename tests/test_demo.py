import subprocess
import sys

import numpy as np

from kws import Bundle
from kws.bundle import default_bundle_path
from kws.demo import sample_recording
from tests.conftest import ROOT, SPOKEN

DEMO = ROOT / "demos" / "embedded_match.py"


def test_embedded_demo_finds_keyword_without_importing_kws(tmp_path):
    np.save(tmp_path / "jarvis.npy", Bundle.load().embed_text("jarvis"))
    args = [str(default_bundle_path() / "audio.int8.onnx"), str(tmp_path / "jarvis.npy"), str(sample_recording())]
    code = (f"import runpy, sys; sys.argv = [{str(DEMO)!r}] + {args!r}; "
            f"runpy.run_path({str(DEMO)!r}, run_name='__main__'); "
            "assert not [m for m in sys.modules if m == 'kws' or m.startswith('kws.')], 'kws imported'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    words = r.stdout.split()          # "best score S at T s"
    assert float(words[2]) > 0.4 and abs(float(words[4]) - SPOKEN["jarvis"]) < 1.0
