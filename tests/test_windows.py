import numpy as np

from kws.frontend import LogMelFrontend
from kws.windows import duration_from_phonemes, lengths_for_duration, make_plan, span_range


class _Backbone:
    """The speech-embedding front end's geometry, without its network."""
    kind, dim, hop, span = "speech_embedding", 96, 1280, 12512


def test_logmel_plan_is_the_old_fixed_windows():
    p = make_plan(LogMelFrontend(), 0.15, None, [0.5, None])
    assert p.hop == 15 and p.lengths == (28, 58, 88)           # 0.3 / 0.6 / 0.9 s of 10 ms frames
    assert p.use.shape == (2, 3) and p.use.all()


def test_backbone_plan_sizes_each_keyword_to_its_duration():
    fe = _Backbone()
    short, long_ = lengths_for_duration(fe, 0.4), lengths_for_duration(fe, 1.2)
    assert max(short) < min(long_)
    lo, hi = span_range(0.4)
    assert all(lo <= (L - 1) * 0.08 + 0.04 and (L - 1) * 0.08 - 0.04 <= hi for L in short)
    p = make_plan(fe, 0.15, None, [0.4, 1.2])
    assert p.hop == 2                                           # 0.16 s of 80 ms frames
    assert p.lengths == tuple(sorted(set(short) | set(long_)))
    assert [L for L, u in zip(p.lengths, p.use[0]) if u] == list(short)
    assert [L for L, u in zip(p.lengths, p.use[1]) if u] == list(long_)
    # given window_s: the same lengths for every keyword
    q = make_plan(fe, 0.15, (0.5,), [0.4, 1.2])
    assert q.use.all() and q.lengths == lengths_for_duration(fe, 0.5)


def test_duration_from_phonemes_grows():
    d = [duration_from_phonemes(n) for n in (1, 3, 6, 9)]
    assert d == sorted(d) and 0.5 < duration_from_phonemes(6) < 0.7
    assert np.isclose(duration_from_phonemes(0), duration_from_phonemes(1))
