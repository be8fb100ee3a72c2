"""The one event rule (kws.spot.events.peaks) and the streaming detector's events
(kws.spot.events.Firing, what kws.spot.detector fires on).

Thresholds are set on ``peaks`` (a false alarm is a background peak at or above the threshold),
so the detector must fire where ``peaks`` says. It cannot look ahead, though. By default it fires
where the score first reaches the threshold (``at="crossing"``): on isolated peaks, once for each
of ``peaks``' events, at the start of the stretch above the threshold that holds it. With
``at="peak"`` it fires as soon as the score falls after a rise, then holds quiet for the
refractory time: on isolated peaks exactly at ``peaks``' events; where a higher peak follows
within the refractory time they differ, and the test below pins down how.
"""
import numpy as np
import pytest

from kws.spot.events import Firing, peaks


def detector_events(series: np.ndarray, threshold: float, refractory: int, at: str = "peak"):
    """(score, vector) of each event the detector's own event logic (Firing, then flush at the
    end) gives on a one-keyword score series."""
    firing, thr = Firing(1, refractory, at), np.array([threshold], np.float32)
    events = []
    for e, s in enumerate(series):
        events += firing.push(np.array([s], np.float32), [(e, e + 1)], thr)
    return [(score, span[1] - 1) for _, score, span in events + firing.flush(thr)]


def isolated_peaks(rng, n: int, refractory: int, threshold: float) -> np.ndarray:
    """Noise under the threshold and bumps (triangles, some with a flat top, some under the
    threshold, the first and last possibly cut by the ends of the series) more than
    ``refractory`` vectors apart."""
    s = rng.uniform(0, threshold - 0.1, n)
    pos = int(rng.integers(-3, 5))
    while pos < n:
        w = int(rng.integers(1, 4))
        shape = 1 - np.abs(np.arange(-w, w + 1)) / (w + 1)
        if rng.random() < 0.2:
            shape = np.insert(shape, w, 1.0)                 # a flat top: equal neighbours
        bump = rng.uniform(threshold - 0.2, 1.0) * shape
        idx = pos + np.arange(bump.size)
        keep = (idx >= 0) & (idx < n)
        s[idx[keep]] = np.maximum(s[idx[keep]], bump[keep])
        pos += bump.size + refractory + 1 + int(rng.integers(0, 20))
    return s.astype(np.float32)


def test_detector_fires_at_the_peaks_where_they_stand_apart():
    """Random series of isolated peaks, refractory times of 1-15 vectors: the detector's events
    are ``peaks(series, refractory, floor=threshold)``, events at the ends of a series included."""
    total = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        r = int(rng.integers(1, 16))
        thr = float(np.float32(rng.uniform(0.4, 0.8)))
        s = isolated_peaks(rng, int(rng.integers(50, 800)), r, thr)
        got = detector_events(s, thr, r)
        want = peaks(s, refractory=r, floor=thr)
        assert sorted((score for score, _ in got), reverse=True) == want.tolist(), seed
        assert all(e2 - e1 > r for (_, e1), (_, e2) in zip(got, got[1:])), seed
        total += len(got)
    assert total > 300


def test_where_a_higher_peak_follows_within_the_refractory_time():
    """The detector fires at the first peak and stays quiet through the higher one; ``peaks``
    keeps the higher one, the highest within the refractory time on both sides."""
    s = np.array([0.0, 0.6, 0.2, 0.9, 0.1, 0.0, 0.0, 0.0, 0.7, 0.0], np.float32)
    assert detector_events(s, 0.5, 3) == [(pytest.approx(0.6), 1), (pytest.approx(0.7), 8)]
    assert peaks(s, refractory=3, floor=0.5).tolist() == pytest.approx([0.9, 0.7])
    assert [e for _, e in detector_events(s, 0.5, 1)] == [1, 3, 8]      # further apart: the same
    assert peaks(s, refractory=1, floor=0.5).tolist() == pytest.approx([0.9, 0.7, 0.6])


def test_firing_at_the_crossing_gives_one_event_per_peak_where_its_stretch_begins():
    """The default: on the same random series, one event for each of ``peaks``' events, at the
    first vector of the stretch at or above the threshold that holds the peak, never after it."""
    total = earlier = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        r = int(rng.integers(1, 16))
        thr = float(np.float32(rng.uniform(0.4, 0.8)))
        s = isolated_peaks(rng, int(rng.integers(50, 800)), r, thr)
        got = detector_events(s, thr, r, at="crossing")
        at_peaks = [e for _, e in detector_events(s, thr, r, at="peak")]
        assert len(got) == len(at_peaks) == peaks(s, refractory=r, floor=thr).size, seed
        for (score, e), p in zip(got, at_peaks):
            assert score == s[e] >= thr and e <= p and np.all(s[e:p + 1] >= thr), seed
            assert e == 0 or s[e - 1] < thr, seed                    # where the stretch begins
            earlier += p - e
        total += len(got)
    assert total > 300 and earlier > 0


def test_crossing_fires_once_a_stretch_and_waits_out_the_refractory_time():
    s = np.array([0.0, 0.6, 0.7, 0.9, 0.6, 0.1, 0.7, 0.8, 0.2, 0.0, 0.0, 0.0, 0.0, 0.6, 0.0], np.float32)
    # a stretch fires at its start (vectors 1, 6 and 13); one that begins within the refractory
    # time of an event fires where it first lies past it (5 vectors: at 7), one that lies wholly
    # within it never (7 vectors)
    one = [(pytest.approx(0.6), 1)]
    assert detector_events(s, 0.5, 1, at="crossing") == one + [(pytest.approx(0.7), 6), (pytest.approx(0.6), 13)]
    assert detector_events(s, 0.5, 5, at="crossing") == one + [(pytest.approx(0.8), 7), (pytest.approx(0.6), 13)]
    assert detector_events(s, 0.5, 7, at="crossing") == one + [(pytest.approx(0.6), 13)]
    assert detector_events(s[:6], 0.5, 3, at="crossing") == [(pytest.approx(0.6), 1)]   # nothing left to flush
    with pytest.raises(ValueError):
        Firing(1, 3, "top")
