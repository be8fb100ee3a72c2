"""The evaluation command end to end on a tiny sample of the real sets (numbers are checked in
test_metrics; here: every section runs, the report and plot are written, the halves differ)."""
import json

from kws.commands import main


def test_evaluate_small_run_writes_report(shared_data, tmp_path, capsys):
    out = tmp_path / "rep"
    rc = main(["evaluate", "--data", str(shared_data), "--out", str(out), "--per-keyword", "4", "--fsdd", "20",
               "--background-s", "8", "--synthetic-words", "0", "--std-utterances", "8",
               "--std-queries", "2", "--half", "a", "--windows", "0.3,0.6,0.9", "--quiet"])
    assert rc == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["test_half"] == "a" and rep["detector"]["window_s"] == [0.3, 0.6, 0.9]
    assert rep["wakewords"]["clips"] >= 10 and 0 <= rep["wakewords"]["text"]["mean_eer"] <= 1
    assert set(rep["std"]) == {"paper_windows", "detector_windows"}
    assert rep["std"]["paper_windows"]["utterances"] == 8
    md = (out / "report.md").read_text()
    assert "TUNING half" in md and "STD on real read speech" in md
    assert (out / "det_wakewords.png").stat().st_size > 1000
    assert main(["evaluate", "--data", str(tmp_path / "nothing"), "--out", str(out)]) == 2
