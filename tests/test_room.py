"""Thresholds that learn the room (kws.spot.room): the streamed peak rule, the fit, bounds, persistence,
and the detector's use of it."""
import json
import math

import numpy as np
import pytest

from kws.spot.events import PeakTracker, peaks
from kws.spot.room import AdaptConfig, KeywordRoom, Room, RoomState


def _tracked(series: np.ndarray, r: int):
    K = series.shape[1]
    tr = PeakTracker(K, r)
    got = [[] for _ in range(K)]
    for x in list(series) + [np.full(K, -np.inf, np.float32)] * r:
        found = tr.push(x)
        if found is not None:
            for k, p in zip(found[0], found[1]):
                got[k].append(float(p))
    return [np.sort(np.array(g))[::-1] for g in got]


@pytest.mark.parametrize("seed", range(20))
def test_peak_tracker_equals_the_event_rule(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 500))
    r = (12, 0, 1, 5)[seed % 4]
    s = (rng.normal(size=(n, 3)).cumsum(0) * 0.05 + rng.normal(size=(n, 3)) * 0.1).astype(np.float32)
    s = np.clip(s, -0.95, None)
    for k, got in enumerate(_tracked(s, r)):
        want = peaks(s[:, k], r, floor=-0.99)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def _entry(bank=0.6, beta=0.03, floor=None, bound=0.1, window=0.1):
    tail = {"u": 0.45, "beta": beta, "m": 40.0, "hours": 10.0}
    # bank threshold for 1 an hour on this tail: u + beta ln(m / (r H)) = 0.45 + 0.03 ln 4
    lo = bank - bound - window - 0.05
    return KeywordRoom(key="k", bank=bank, target=1.0, tail=tail, lo=lo, lowest=bank, floor=floor)


def _feed(room: Room, shift: float, hours: float, rng, beta=0.03):
    """Peaks of a room whose tail is the bank's moved by ``shift``: Poisson counts per minute."""
    e = room.entries[0]
    tail = e.tail
    rate_at = lambda t: tail["m"] / tail["hours"] * math.exp(-(t - tail["u"] - shift) / beta)  # noqa: E731
    for _ in range(int(round(hours * 60))):
        thr = float(room.current()[0])
        lo = min(e.lowest, thr) - room.config.window - 0.01       # only the peaks the fit reads
        n = rng.poisson((rate_at(lo) - rate_at(thr)) / 60)
        for p in lo - beta * np.log(1 - rng.uniform(0, 1 - math.exp(-(thr - lo) / beta), n)):
            room.observe(0, float(p))
        room.listened(int(60 / 0.08))


def test_thresholds_move_toward_the_room_and_stay_in_bounds():
    rng = np.random.default_rng(0)
    bank_thr = 0.45 + 0.03 * math.log(4.0)
    for shift, want in ((0.05, bank_thr + 0.05), (-0.06, bank_thr - 0.06), (0.15, bank_thr + 0.1)):
        room = Room([_entry(bank=bank_thr)], AdaptConfig(max_step=0.01, update_s=60.0))
        _feed(room, shift, 4.0, rng)
        assert abs(float(room.current()[0]) - want) < 0.025, (shift, room.current())
    room = Room([_entry(bank=bank_thr)], AdaptConfig())
    _feed(room, 0.0, 2.0, rng)
    assert abs(float(room.current()[0]) - bank_thr) < 0.02       # the bank was right: stays


def test_no_move_before_min_minutes_and_at_most_max_step():
    rng = np.random.default_rng(1)
    room = Room([_entry()], AdaptConfig(min_minutes=5, max_step=0.004))
    _feed(room, 0.2, 4 / 60, rng)
    assert room.entries[0].threshold is None
    seen = [float(room.current()[0])]
    for _ in range(20):
        _feed(room, 0.2, 1 / 60, rng)
        seen.append(float(room.current()[0]))
    assert np.max(np.abs(np.diff(seen))) <= 0.004 + 1e-6
    assert seen[-1] > seen[0]


def test_floor_of_confusions_is_kept():
    rng = np.random.default_rng(2)
    bank_thr = 0.45 + 0.03 * math.log(4.0)
    room = Room([_entry(bank=bank_thr, floor=bank_thr - 0.03)], AdaptConfig(max_step=0.05))
    _feed(room, -0.3, 1.0, rng)
    assert float(room.current()[0]) == pytest.approx(bank_thr - 0.03, abs=1e-6)


def test_state_round_trip_other_model_and_damage(tmp_path):
    room = Room([_entry()], AdaptConfig())
    room.observe(0, 0.5)
    room.listened(int(120 / 0.08))
    st = RoomState("m1")
    st.update(["hey"], room)
    p = st.save(tmp_path)
    assert p.name == "room.json"
    back = RoomState.load(tmp_path, "m1")
    assert back.entries["hey"].to_json() == room.entries[0].to_json()
    assert RoomState.load(tmp_path, "m2").entries == {}
    p.write_text("{not json")
    assert RoomState.load(tmp_path, "m1").entries == {}
    doc = {"version": 99, "model_id": "m1", "keywords": {}}
    p.write_text(json.dumps(doc))
    assert RoomState.load(tmp_path, "m1").entries == {}


# ---------------------------------------------------------------- the detector
@pytest.fixture(scope="module")
def demo():
    from kws.enroll.demo import demo_keywords
    from kws.model.model import Model

    m = Model.load()
    return m, demo_keywords(m)


def _sample():
    from kws.audio.io import load_audio
    from kws.enroll.demo import sample_recording

    return load_audio(sample_recording())


def test_learning_streams_as_offline_and_persists(demo, tmp_path):
    from kws.spot.detector import Detector, DetectorConfig

    model, ks = demo
    x = np.tile(_sample(), 4)                   # ~90 s
    cfg = DetectorConfig(adapt=AdaptConfig(update_s=10.0, min_minutes=0.2, max_step=0.02))
    a = Detector(ks, model, cfg)
    whole = a.detect(x)
    b = Detector(ks, model, cfg)
    b.reset()
    streamed = []
    rng = np.random.default_rng(0)
    i = 0
    while i < x.size:
        n = int(rng.integers(100, 5000))
        streamed += b.process(x[i:i + n])
        i += n
    streamed += b.flush()
    assert [(e.keyword, round(e.score, 5), e.start) for e in whole] == \
           [(e.keyword, round(e.score, 5), e.start) for e in streamed]
    assert a.thresholds == b.thresholds
    assert a.thresholds != a.bank_thresholds          # it learnt something in 90 s at these settings
    path = a.save_room(tmp_path / "room.json")
    c = Detector(ks, model, cfg, room=tmp_path / "room.json")
    assert c.thresholds == a.thresholds               # a restart keeps what was learnt
    d = Detector(ks, model, DetectorConfig(adapt=AdaptConfig(enabled=False)), room=path)
    assert d.thresholds == pytest.approx(d.bank_thresholds, abs=1e-6)   # the switch


def test_events_are_never_learnt_from(demo):
    from kws.spot.detector import Detector, DetectorConfig

    model, ks = demo
    det = Detector(ks, model, DetectorConfig(adapt=AdaptConfig(update_s=1e9)))
    seen = []
    orig = det.room.observe
    det.room.observe = lambda k, p: (seen.append((k, p)), orig(k, p))
    events = det.detect(_sample())
    assert events
    thr = det.thresholds
    assert seen and all(p < thr[ks.names[k]] for k, p in seen)


def test_rename_and_remove_keep_room_json_in_step(tmp_path):
    from kws.spot.room import rename_learnt

    room = Room([_entry(), _entry()], AdaptConfig())
    st = RoomState("m1")
    st.update(["a", "b"], room)
    st.save(tmp_path)
    rename_learnt(tmp_path, {"a": "c", "b": None}, "m1")
    assert sorted(RoomState.load(tmp_path, "m1").entries) == ["c"]
