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


# ------------------------------------------------------------------ the bank scored fast
def _plain_keyword_peaks(bank, bg, refractory):
    """The straightforward computation: every segment scored alone, its peaks taken, all sorted."""
    from kws.spot.templates import template_scores

    out = [[] for _ in range(bank.keywords)]
    for seg in bg.split():
        if seg.shape[0] == 0:
            continue
        s = bank.keyword_scores(template_scores(bank, seg))
        for k in range(bank.keywords):
            out[k].append(peaks(s[:, k], refractory))
    return [np.sort(np.concatenate(p))[::-1] if p else np.zeros(0) for p in out]


def _random_bank(rng, segments, dim=16):
    from kws.enroll.background import Background
    from kws.model.head import unit

    v = unit(rng.normal(size=(int(np.sum(segments)), dim)).astype(np.float32))
    seg = np.asarray(segments, np.int64)
    return Background(v, seg, ("speech",) * seg.size, float(seg.sum()) * 0.08 / 3600)


@pytest.mark.parametrize("chunk", [1, 50, 300, 1 << 15])
def test_keyword_peaks_equal_the_segment_by_segment_computation(chunk, monkeypatch):
    from kws.enroll import thresholds as th
    from kws.spot.templates import TemplateBank

    rng = np.random.default_rng(7)
    # segments shorter and longer than the templates, an empty one, runs that cross chunk ends
    segments = [0, 3, 40, 1, 250, 7, 0, 600, 12, 2, 95, 330]
    bg = _random_bank(rng, segments)
    ts = [[rng.normal(size=(L, 16)).astype(np.float32) for L in (4, 9, 13)],
          [rng.normal(size=(L, 16)).astype(np.float32) for L in (6, 2)]]
    bank = TemplateBank.build(ts)
    monkeypatch.setattr(th, "CHUNK", chunk)
    want = _plain_keyword_peaks(bank, bg, th.REFRACTORY)
    got = th.keyword_peaks(bank, bg)
    for w, g in zip(want, got):
        assert w.size == g.size
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-6)
    for r in (1, 5):
        for w, g in zip(_plain_keyword_peaks(bank, bg, r), th.keyword_peaks(bank, bg, r)):
            np.testing.assert_allclose(g, w, rtol=0, atol=1e-6)


def test_the_shipped_banks_thresholds_equal_the_segment_by_segment_computation():
    """On the model's own bank: the same peaks, so the same threshold, as scoring each segment."""
    from kws.enroll import thresholds as th
    from kws.model.model import Model
    from kws.spot.templates import TemplateBank

    from kws.enroll.background import Background
    from kws.model.head import unit

    model = Model.load()
    bg = th.background(model)
    # the plain computation (kws.spot.templates.template_scores) makes rows unit length; the
    # shipped bank's decoded rows are deliberately not (kws.enroll.background: unbiased scores),
    # so both are given the same unit rows: what is compared is the search for peaks
    bg = Background(unit(bg.vectors), bg.segments, bg.kinds, bg.hours)
    rng = np.random.default_rng(3)
    picks = rng.choice(bg.vectors.shape[0] - 20, size=4, replace=False)
    ts = [bg.vectors[p:p + L] + 0.05 * rng.normal(size=(L, bg.vectors.shape[1])).astype(np.float32)
          for p, L in zip(picks, (5, 8, 11, 14))]
    bank = TemplateBank.build([ts])
    want = _plain_keyword_peaks(bank, bg, th.REFRACTORY)[0]
    got = th.keyword_peaks(bank, bg)[0]
    assert got.size == want.size
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    rate = th.DEFAULT_FA_PER_HOUR
    assert th.fit_tail(got, bg.hours).threshold(rate) == pytest.approx(
        th.fit_tail(want, bg.hours).threshold(rate), abs=1e-6)
