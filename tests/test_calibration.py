import numpy as np
import pytest

from kws import calibration
from kws.calibration import Bank, fit_tail


def test_tail_fit_hand_computed():
    s = np.arange(1, 101, dtype=np.float64)          # 1..100
    t = fit_tail(s)
    u = np.quantile(s, 0.95)                           # 95.05
    top = s[s > u]                                     # 96..100
    assert t.u == pytest.approx(u)
    assert t.beta == pytest.approx(np.mean(top - u))
    # in the tail: 0.05 * exp(-(x - u) / beta); below u: the empirical fraction
    assert t.exceedance(u + 2 * t.beta) == pytest.approx(0.05 * np.exp(-2))
    assert t.exceedance(50.5) == pytest.approx(0.5)
    for p in (0.01, 1e-4, 1e-6):
        assert t.exceedance(t.threshold(p)) == pytest.approx(p)
    assert t.threshold(0.5) == pytest.approx(np.quantile(s, 0.5))


def test_tail_needs_enough_scores():
    with pytest.raises(ValueError):
        fit_tail(np.arange(10.0))


def test_hop_scores_take_the_best_vector_and_the_snapped_lengths():
    # 2 hops x 3 lengths (4, 8, 12 frames) x D=2
    v = np.array([[[1, 0], [0, 1], [0.6, 0.8]],
                  [[0, 1], [1, 0], [0.8, 0.6]]], dtype=np.float32)
    b = Bank(v, np.array([4, 8, 12]), 0.16, kappa=2.0)
    kw = np.array([[1.0, 0.0]])
    assert calibration.hop_scores(b, kw).tolist() == pytest.approx([1.0, 1.0])
    # lengths 5 and 13 snap to 4 and 12: the middle column is left out
    assert calibration.hop_scores(b, kw, [5, 13]).tolist() == pytest.approx([1.0, 0.8])
    # two vectors: the best of them
    two = np.array([[0.0, 1.0], [0.6, 0.8]])
    assert calibration.hop_scores(b, two, [12]).tolist() == pytest.approx([1.0, 0.96])


def test_expected_rate_and_threshold_agree():
    rng = np.random.default_rng(0)
    tail = fit_tail(rng.normal(size=2000))
    b = Bank(np.zeros((1, 1, 2), np.float32), np.array([4]), hop_s=0.16, kappa=1.5)
    t = calibration.threshold_for(b, tail, 0.5)
    assert calibration.expected_fa_per_hour(b, tail, t) == pytest.approx(0.5)
    assert b.hops_per_hour == pytest.approx(22500)
    # a lower rate needs a higher threshold
    assert calibration.threshold_for(b, tail, 0.1) > t


def test_event_factor_fit_recovers_a_power_law():
    p = np.array([40.0, 20.0, 10.0, 5.0])
    a, b = calibration.fit_event_factor(p, 0.7 * p ** 1.3)
    assert a == pytest.approx(0.7) and b == pytest.approx(0.3)
    bank = Bank(np.zeros((1, 1, 2), np.float32), np.array([4]), 0.16, a, b)
    assert bank.events(bank.predicted(0.5)) == pytest.approx(0.5)
    assert calibration.fit_event_factor(p, np.zeros(4)) == (1.0, 0.0)        # nothing counted
