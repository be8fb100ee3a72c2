"""benchmarks/room_thresholds.py: the best threshold after settling and the streams pooled equal
hand-computed cases."""
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import room_thresholds as rt  # noqa: E402

HOP = 0.08
MODEL = SimpleNamespace(frontend=SimpleNamespace(hop=int(HOP * 16000)))


def _series(n, bumps):
    """A score series at 0.1 with a one-vector bump of each value at each index."""
    s = np.full(n, 0.1)
    for i, v in bumps.items():
        s[i] = v
    return s


def test_oracle_after_settling_hand_computed():
    # 9000 vectors = 720 s; settle at 360 s (vector 4500). Background bumps of 'alexa': before
    # settling 0.9 (which the whole stream's best must step over), after it 0.7 and 0.6; two
    # clips planted after settling peaking at 0.65 and 0.8, one before at 0.95.
    n = 9000
    clips = [("alexa", 100.0, 101.0), ("alexa", 400.0, 401.0), ("alexa", 600.0, 601.0)]
    s = _series(n, {1000: 0.9, 6000: 0.7, 7000: 0.6,
                    int(100.5 / HOP): 0.95, int(400.5 / HOP): 0.65, int(600.5 / HOP): 0.8})
    ks = [SimpleNamespace(name="alexa")]
    hours_all = (n * HOP - 3.0) / 3600                       # 0.2 h: at least one false alarm left
    best = rt.oracle(MODEL, ks, s[:, None], clips, hours_all, settle_s=360.0)["alexa"]
    # whole stream: the highest background peak (0.9) is the one false alarm allowed
    assert best["threshold"] == pytest.approx(0.9001)
    assert best["recall"] == pytest.approx(1 / 3)           # only the 0.95 clip
    after = best["after"]
    assert after["threshold"] == pytest.approx(0.7001)      # after settling the top peak is 0.7
    assert after["found"] == [False, True]                   # 0.65 missed, 0.8 found
    assert after["hours"] == pytest.approx((n - 4500) * HOP / 3600 - 2.0 / 3600)


def test_pooled_hand_computed():
    def row(found, count_after, hours, share):
        return {"found_after": {"alexa": found, "computer": [], "jarvis": []},
                "per_keyword": {"alexa": {"count_after": count_after}}, "hours_after": hours,
                "share_above_3_after": share}

    def cond(found, best, count_after, hours, share):
        r = {k: row(found, count_after, hours, share) for k in ("bank", "room", "first")}
        r["best"] = {w: {"after": {"found": best if w == "alexa" else []}} for w in rt.WAKE}
        return {"conditions": {"clean": r}}

    runs = {"0": cond([True, False, True], [True, True, True], 1, 0.5, 0.0),
            "1": cond([True, True], [True, False], 2, 1.0, 0.5)}
    p = rt.pooled(runs, ["alexa"])["clean"]["room"]
    assert p["hours_after"] == pytest.approx(1.5)
    assert p["pooled_fa_after"] == pytest.approx(3 / 1.5)   # 3 false alarms in 1.5 h
    assert p["share_above_3_after"] == pytest.approx(0.25)
    a = p["wake_words"]["alexa"]
    assert (a["found"], a["clips"], a["best_found"]) == (4, 5, 4)
    d = np.array([0, -1, 0, 0, 1], float)                    # found minus best, clip by clip
    assert a["points_below_best"] == pytest.approx(0.0)
    assert a["ci95_points"] == pytest.approx(100 * 1.96 * d.std(ddof=1) / np.sqrt(5))
