import json
import subprocess
import sys


from kws.commands import main


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "kws", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_help_lists_subcommands():
    r = _run("--help")
    assert r.returncode == 0
    for c in ("listen", "detect", "search", "enroll", "evaluate", "train", "export"):
        assert c in r.stdout


def test_detect_on_bundled_sample_prints_json_lines(tmp_path, monkeypatch, espeak):
    r = subprocess.run([sys.executable, "-m", "kws", "detect", "--keyword", "jarvis", "-k", "alexa"],
                       capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "KWS_STORE": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    events = [json.loads(l) for l in r.stdout.splitlines()]
    assert [e["keyword"] for e in events] == ["jarvis", "alexa"]


def test_detect_without_tts_engine_says_how_to_do_better(tmp_path):
    r = subprocess.run([sys.executable, "-m", "kws", "detect", "-k", "jarvis"], capture_output=True,
                       text=True, timeout=300, env={"KWS_STORE": str(tmp_path), "PATH": ""})
    assert r.returncode == 0, r.stderr
    assert "no TTS engine installed" in r.stderr and "espeak-ng" in r.stderr


def test_listen_without_microphone_falls_back_to_sample(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("KWS_STORE", str(tmp_path))
    import kws.mic

    def no_mic(device=None):
        raise kws.mic.NoMicrophone("no input device")

    monkeypatch.setattr(kws.mic, "input_device", no_mic)
    assert main(["listen", "--no-realtime", "--no-view"]) == 0
    cap = capsys.readouterr()
    assert "bundled sample" in cap.err
    assert cap.out.count("DETECTED") == 3


def test_search_cli_index_and_query(tmp_path, capsys):
    from kws.demo import sample_recording

    ix = tmp_path / "ix"
    assert main(["search", "index", str(sample_recording()), "--index", str(ix), "--representation",
                 "windows"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["indexed"] == 1 and stats["windows"] > 0
    assert main(["search", "query", str(ix), "jarvis", "--json", "--top", "3",
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


def test_bad_inputs_exit_2_with_message(tmp_path, capsys):
    assert main(["detect", "-k", "computer", str(tmp_path / "missing.wav")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["detect", "-k", "???"]) == 2
    assert "no letters" in capsys.readouterr().err


def test_runtime_never_imports_torch():
    code = ("import sys, numpy as np; import kws; from kws import Detector; "
            "d = Detector.from_texts(['computer']); d.process(np.zeros(16000, np.float32)); "
            "from kws import enroll, commands, evaluate, enrollment, search, serve; commands.build_parser(); "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr
