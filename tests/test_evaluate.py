"""The evaluation command end to end on a tiny sample of the real sets (numbers are checked in
test_metrics; here: every section runs, the report and plot are written, the halves differ)."""
import json

from kws.commands import main


def test_evaluate_small_run_writes_report(shared_data, tmp_path, capsys, monkeypatch, one_voice):
    from kws.corpus.real import babble

    # every section runs, on less: fewer typed words, each rendered by one voice (the renderings
    # are most of the time); babble (6 talkers) and crowd (24) of 20 s instead of 120 s (the 12
    # clips take a stretch of it each; the planted stream loops it)
    monkeypatch.setattr("kws.evaluate.CALIBRATION_WORDS", 2)
    monkeypatch.setattr("kws.evaluate.DIGITS", ("zero", "one", "two"))
    monkeypatch.setattr("kws.evaluate.babble", lambda data, talkers, seconds, seed=0, files=None:
                        babble(data, talkers, min(seconds, 20.0), seed, files))
    out = tmp_path / "rep"
    rc = main(["evaluate", "--data", str(shared_data), "--out", str(out), "--per-keyword", "4", "--fsdd", "20",
               "--background-s", "8", "--half", "a", "--quiet"])
    assert rc == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["test_half"] == "a" and 0 < rep["background_hours"] < 0.01
    (m,) = rep["models"]
    ww = m["wakewords"]
    assert ww["clips"] >= 10 and set(ww) >= {"typed", "examples", "typed+examples", "conditions_typed"}
    for mode in ("typed", "examples", "typed+examples"):
        assert 0 <= ww[mode]["eer"] <= 1 and set(ww[mode]["per_keyword"]) == {"alexa", "computer", "jarvis"}
    assert "_scores" not in ww["typed"]
    assert {"noise 10 dB", "babble 10 dB", "reverberant (RT60 0.5 s)"} <= set(ww["conditions_typed"])
    assert m["fsdd"]["clips"] >= 10 and 0 <= m["fsdd"]["accuracy_10way"] <= 1
    assert m["calibration"]["words"] == 2
    assert set(m["streamed"]) == {"clean", "babble 10 dB"} and m["streamed"]["clean"]["planted"] == ww["clips"]
    assert "std" not in rep
    md = (out / "report.md").read_text()
    assert "half 'a' (not for reporting)" in md and "streamed as deployed" in md
    assert set(m["streamed"]["clean"]["delay_s"]) == {"median", "p90", "chunk_s"} and "to its event" in md
    assert (out / "det_wakewords.png").stat().st_size > 1000
    assert main(["evaluate", "--data", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    assert "no recordings at" in capsys.readouterr().err


class _OneEvent:
    """A detector that returns one event of 'kw' (heard at 1.0-1.5 s) once 1.9 s have been fed."""

    def __init__(self):
        self.fed = 0

    def reset(self):
        self.fed = 0

    def process(self, chunk):
        from kws.spot.detector import Detection

        before, self.fed = self.fed, self.fed + chunk.size
        return [Detection("kw", 0.9, 0.5, 1.0, 1.5)] if before < 1.9 * 16000 <= self.fed else []

    def flush(self):
        return []


def test_streamed_delay_is_from_the_keywords_last_sound_to_the_chunk_that_returned_its_event():
    import numpy as np

    from kws.audio.io import sound_span
    from kws.evaluate import streamed

    stream = np.zeros(4 * 16000, np.float32)
    t = np.arange(int(0.5 * 16000)) / 16000
    stream[16000:16000 + t.size] = 0.3 * np.sin(2 * np.pi * 440 * t)   # the keyword: 1.0-1.5 s
    # the clip planted at 1.0-1.8 s holds 0.3 s of silence after its sound
    assert sound_span(stream[16000:int(1.8 * 16000)]) == (0, 8000)      # its sound ends 0.5 s in
    r = streamed(_OneEvent(), stream, [("kw", 1.0, 1.8)], chunk_s=0.1)
    assert r["recall"] == 1.0 and r["false_alarms"] == 0
    # the event comes back with the chunk that ends at 1.9 s: 0.4 s after the sound ended at 1.5 s
    assert abs(r["delay_s"]["median"] - 0.4) < 1e-9 and abs(r["delay_s"]["p90"] - 0.4) < 1e-9
