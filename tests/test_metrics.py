import numpy as np
import pytest

from kws.metrics import (average_precision, cross_modal_ap, eer, miss_at_false_alarm_rate,
                         same_different_ap)


def test_ap_hand_computed():
    # ranking: + - + -  -> precision at hits 1/1, 2/3 -> AP = (1 + 2/3) / 2
    assert average_precision([0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0]) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision([0.9, 0.8], [1, 1]) == 1.0


def test_eer_hand_computed():
    # perfectly separable -> 0; one swapped pair among 2+2 -> 0.5 crossing
    assert eer([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0])[0] == 0.0
    rate, thr = eer([0.9, 0.4, 0.6, 0.1], [1, 1, 0, 0])
    assert rate == pytest.approx(0.5)


def test_against_sklearn(rng):
    sk = pytest.importorskip("sklearn.metrics")
    for _ in range(5):
        y = rng.integers(0, 2, 300)
        s = y * 0.8 + rng.normal(size=300)
        s = np.round(s, 1)                         # ties
        assert average_precision(s, y) == pytest.approx(sk.average_precision_score(y, s))
        fpr, tpr, _ = sk.roc_curve(y, s)
        fnr = 1 - tpr
        i = np.nanargmin(np.abs(fnr - fpr))
        assert abs(eer(s, y)[0] - (fpr[i] + fnr[i]) / 2) < 0.05


def test_same_different_ap_small_case():
    emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    assert same_different_ap(emb, [0, 0, 1, 1]) == 1.0
    assert same_different_ap(emb, [0, 1, 0, 1]) < 0.6


def test_cross_modal_ap():
    a = np.eye(3, dtype=np.float32)
    assert cross_modal_ap(a, [0, 1, 2], a, [0, 1, 2]) == 1.0


def test_miss_at_fa_rate():
    miss, thr = miss_at_false_alarm_rate([0.9, 0.8, 0.5], [0.85, 0.3, 0.2], neg_hours=1.0, fa_per_hour=1.0)
    # one false alarm allowed: threshold just above the 2nd highest negative (0.3)
    assert thr > 0.3 and miss == 0.0
    miss, _ = miss_at_false_alarm_rate([0.9, 0.8, 0.5], [0.85, 0.3, 0.2], neg_hours=0.5)
    assert miss == pytest.approx(2 / 3)
