"""Template matching (kws.spot.templates): hand-computed scores, streaming equals offline, any chunking."""
import numpy as np
import pytest

from kws.spot.templates import (MIN_LENGTH, Matcher, TemplateBank, TemplateError, check_length, combine, cut,
                                template_scores, unit)


def _unit_rows(rng, n, d=8):
    return unit(rng.normal(size=(n, d)).astype(np.float32))


def _pushed_in_chunks(matcher, x, rng, most):
    """The matcher's scores of ``x`` pushed in chunks of 0 to ``most - 1`` vectors."""
    parts, pos = [], 0
    while pos < x.shape[0]:
        n = int(rng.integers(0, most))
        parts.append(matcher.push(x[pos:pos + n]))
        pos += n
    return np.concatenate(parts)


def test_score_is_the_mean_cosine_along_the_diagonal(rng):
    t = _unit_rows(rng, 3)
    x = _unit_rows(rng, 6)
    m = Matcher(TemplateBank.build([[t]]))
    got = m.scores(x)[:, 0]
    assert got[0] == got[1] == -1.0                      # the template does not fit yet
    for e in range(2, 6):
        want = np.mean([t[j] @ x[e - 2 + j] for j in range(3)])
        assert got[e] == pytest.approx(want, abs=1e-6)
    # the template itself, planted in the stream, scores 1 where it ends
    x[1:4] = t
    assert m.scores(x)[3, 0] == pytest.approx(1.0, abs=1e-6)


def test_keyword_score_is_its_best_template_and_keywords_are_separate(rng):
    a1, a2, b = _unit_rows(rng, 2), _unit_rows(rng, 4), _unit_rows(rng, 3)
    x = _unit_rows(rng, 12)
    bank = TemplateBank.build([[a1, a2], [b]])
    s = Matcher(bank).scores(x)
    one = [Matcher(TemplateBank.build([[t]])).scores(x)[:, 0] for t in (a1, a2, b)]
    np.testing.assert_allclose(s[:, 0], np.maximum(one[0], one[1]), atol=1e-6)
    np.testing.assert_allclose(s[:, 1], one[2], atol=1e-6)


def test_soft_max_by_hand():
    # m + log(mean(exp(t (s - m)))) / t, m the best: between the mean and the best
    s = np.array([[0.5, 0.4, 0.1], [0.2, 0.2, 0.2]], np.float32)
    want0 = 0.5 + np.log((1 + np.exp(20 * -0.1) + np.exp(20 * -0.4)) / 3) / 20
    np.testing.assert_allclose(combine(s, 20.0), [want0, 0.2], atol=1e-6)
    np.testing.assert_array_equal(combine(s, 0.0), s.max(axis=1))
    assert 0.5 > combine(s, 20.0)[0] > s[0].mean()
    # -inf entries are no template: left out of the mean
    np.testing.assert_allclose(combine(np.array([0.5, 0.4, -np.inf], np.float32), 20.0),
                               combine(np.array([0.5, 0.4], np.float32), 20.0), atol=1e-7)
    # sharper and sharper: the best
    assert combine(s, 1e4)[0] == pytest.approx(0.5, abs=2e-4)
    with pytest.raises(ValueError, match="soft_max"):
        TemplateBank.build([[np.ones((3, 4), np.float32)]], soft_max=-1.0)


def test_soft_max_keyword_score_streams_as_offline(rng):
    """A keyword of several templates under the soft maximum: each stream vector's score is the
    soft maximum of the templates' own scores, streamed in any chunking as in one call, and the
    batched scores of thresholds and evaluation give the same."""
    a1, a2, a3, b = _unit_rows(rng, 2), _unit_rows(rng, 4), _unit_rows(rng, 3), _unit_rows(rng, 3)
    x = _unit_rows(rng, 40)
    bank = TemplateBank.build([[a1, a2, a3], [b]], soft_max=20.0)
    whole = Matcher(bank).scores(x)
    one = np.stack([Matcher(TemplateBank.build([[t]])).scores(x)[:, 0] for t in (a1, a2, a3)], axis=1)
    m = one.max(axis=1)
    want = m + np.log(np.exp(20.0 * (one - m[:, None])).mean(axis=1)) / 20.0
    np.testing.assert_allclose(whole[:, 0], want, atol=1e-5)
    assert np.all(whole[:, 0] < m + 1e-7) and np.any(whole[:, 0] < m - 1e-3)
    np.testing.assert_allclose(whole[:, 1], Matcher(TemplateBank.build([[b]])).scores(x)[:, 0], atol=1e-6)
    np.testing.assert_array_equal(_pushed_in_chunks(Matcher(bank), x, rng, 7), whole)
    np.testing.assert_allclose(bank.keyword_scores(template_scores(bank, x, block=8)), whole, atol=1e-5)


def test_streaming_any_chunking_equals_one_call(rng):
    bank = TemplateBank.build([[_unit_rows(rng, n) for n in (3, 5, 7)], [_unit_rows(rng, 4)]])
    x = _unit_rows(rng, 60)
    whole = Matcher(bank).scores(x)
    np.testing.assert_array_equal(_pushed_in_chunks(Matcher(bank), x, rng, 9), whole)


def test_batched_scores_equal_the_matcher(rng):
    bank = TemplateBank.build([[_unit_rows(rng, n) for n in (3, 6)], [_unit_rows(rng, 5)]])
    x = _unit_rows(rng, 50)
    fast = bank.keyword_scores(template_scores(bank, x, block=16))
    np.testing.assert_allclose(fast, Matcher(bank).scores(x), atol=1e-5)


def test_best_template_is_reported(rng):
    a, b = _unit_rows(rng, 3), _unit_rows(rng, 3)
    x = _unit_rows(rng, 8)
    x[2:5] = b
    m = Matcher(TemplateBank.build([[a, b]]))
    m.push(x[:5])
    assert m.best_template[-1, 0] == 1


def test_cut_and_lengths():
    assert cut(20) == (2, 18)
    check_length(MIN_LENGTH)
    with pytest.raises(TemplateError, match="recording 1 holds too little sound"):
        check_length(MIN_LENGTH - 1, "recording 1")
    with pytest.raises(TemplateError, match="too long"):
        check_length(500)
    with pytest.raises(TemplateError):
        TemplateBank.build([[]])
