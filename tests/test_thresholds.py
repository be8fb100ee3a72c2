"""Thresholds for a false-alarm rate (kws.enroll.thresholds): peaks as the detector fires, the tail."""
import numpy as np
import pytest

from kws.enroll.thresholds import fit_tail, tune
from kws.spot.events import peaks


def test_peaks_are_local_maxima_a_refractory_time_apart():
    s = np.array([0.1, 0.5, 0.2, 0.9, 0.3, 0.1, 0.1, 0.1, 0.6, 0.1])
    assert peaks(s, refractory=1).tolist() == [0.9, 0.6, 0.5]
    assert peaks(s, refractory=2).tolist() == [0.9, 0.6]          # 0.5 is within 2 of 0.9
    assert peaks(s, refractory=10).tolist() == [0.9]
    assert peaks(s, refractory=1, floor=0.55).tolist() == [0.9, 0.6]
    flat = np.array([0.2, 0.7, 0.7, 0.7, 0.2])
    assert peaks(flat, refractory=2).tolist() == [0.7]             # a plateau is one event
    assert peaks(np.zeros(0)).size == 0


def test_tail_threshold_and_rate_are_inverse():
    rng = np.random.default_rng(0)
    p = 0.5 + rng.exponential(0.05, size=400)          # 400 peaks in 4 hours: 100 an hour
    tail = fit_tail(p, hours=4.0, m=40)
    assert tail.rate(tail.u) == pytest.approx(10.0)      # 40 peaks at or above u in 4 h
    for r in (5.0, 1.0, 0.1):
        assert tail.rate(tail.threshold(r)) == pytest.approx(r, rel=1e-6)
    assert tail.threshold(0.1) > tail.threshold(1.0) > tail.threshold(5.0)
    # above 10 an hour, thresholds are read off the peaks themselves
    assert tail.threshold(50.0) == pytest.approx(np.sort(p)[::-1][200])
    # an exponential tail of scale 0.05 is recovered
    assert tail.beta == pytest.approx(0.05, rel=0.4)


def test_tail_needs_peaks():
    with pytest.raises(ValueError):
        fit_tail([0.5, 0.4], hours=1.0)


def test_tune_gives_the_equal_error_rate():
    e, thr = tune([0.9, 0.8, 0.7, 0.4], [0.1, 0.2, 0.5, 0.3])
    assert e == pytest.approx(0.25)
    assert 0.4 <= thr <= 0.7
    with pytest.raises(ValueError):
        tune([], [0.1])
