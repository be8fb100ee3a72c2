"""The evaluation command end to end on a tiny sample of the real sets (numbers are checked in
test_metrics; here: every section runs, the report and plot are written, the halves differ)."""
import json

from kws.commands import main


def test_evaluate_small_run_writes_report(shared_data, tmp_path, capsys, monkeypatch, few_voices):
    monkeypatch.setattr("kws.evaluate.CALIBRATION_WORDS", 2)
    monkeypatch.setattr("kws.evaluate.DIGITS", ("zero", "one", "two"))      # every section runs; fewer renderings
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
    assert (out / "det_wakewords.png").stat().st_size > 1000
    assert main(["evaluate", "--data", str(tmp_path / "nothing"), "--out", str(out)]) == 2
    assert "no recordings at" in capsys.readouterr().err
