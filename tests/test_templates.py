"""Template matching (kws.spot.templates): hand-computed scores, streaming equals offline, any chunking."""
import numpy as np
import pytest

from kws.spot.templates import (MIN_LENGTH, Matcher, TemplateBank, TemplateError, check_length, cut,
                           template_scores, unit)


def _unit_rows(rng, n, d=8):
    return unit(rng.normal(size=(n, d)).astype(np.float32))


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


def test_streaming_any_chunking_equals_one_call(rng):
    bank = TemplateBank.build([[_unit_rows(rng, n) for n in (3, 5, 7)], [_unit_rows(rng, 4)]])
    x = _unit_rows(rng, 60)
    whole = Matcher(bank).scores(x)
    m = Matcher(bank)
    parts, pos = [], 0
    while pos < x.shape[0]:
        n = int(rng.integers(0, 9))
        parts.append(m.push(x[pos:pos + n]))
        pos += n
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_batched_scores_equal_the_matcher(rng):
    bank = TemplateBank.build([[_unit_rows(rng, n) for n in (3, 6)], [_unit_rows(rng, 5)]])
    x = _unit_rows(rng, 50)
    fast = bank.keyword_max(template_scores(bank, x, block=16))
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
