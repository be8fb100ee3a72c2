"""Training windows in context (kws.train.context): the geometry the detector's window plan assumes."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kws.backbone import VEC_HOP, VEC_SPAN  # noqa: E402
from kws.train.context import Augmenter, Batcher, ContextConfig, Sources  # noqa: E402


def _sources(n_words=10, clip=8000, speech_s=10):
    tts = np.full(2 * n_words * clip, 1000, np.int16)          # every clip is a flat burst
    speech = np.full(speech_s * 16000, 5, np.int16)
    return Sources(buffer=torch.from_numpy(np.concatenate([tts, speech])),
                   tts_off=np.arange(2 * n_words) * clip, tts_len=np.full(2 * n_words, clip),
                   tts_text=np.repeat(np.arange(n_words), 2),
                   occ_off=np.zeros(0, np.int64), occ_len=np.zeros(0, np.int64),
                   occ_text=np.zeros(0, np.int64), occ_sent_lo=np.zeros(0, np.int64),
                   occ_sent_hi=np.zeros(0, np.int64),
                   speech_off=np.array([tts.size]), speech_len=np.array([speech.size]))


def test_positive_windows_hold_the_word_and_negatives_do_not():
    rng = np.random.default_rng(0)
    g = torch.Generator()
    g.manual_seed(0)
    cfg = ContextConfig(p_context=(1.0, 0.0, 0.0), speed=(1.0, 1.0), p_negative=1.0)
    b = Batcher(_sources(), 10, cfg, words_per_batch=5, clips_per_word=2, real_words_per_batch=0,
                rng=rng, g=g)
    x, cnt, labels, words = b.batch(None)
    assert len(words) == 5 and (labels >= 0).sum() == 10
    for i in range(x.shape[0]):
        n = int(cnt[i])
        inside = int((x[i, :VEC_SPAN + (n - 1) * VEC_HOP].abs() > 0.02).sum())
        if labels[i] >= 0:
            assert inside >= 0.95 * 8000, (i, n, inside)          # the whole word (30 ms slack)
        else:
            assert inside <= 0.45 * 8000 + 0.04 * 16000, (i, n, inside)   # a part of it at most
    # audio past a window's vectors is silence
    for i in range(x.shape[0]):
        assert float(x[i, VEC_SPAN + (int(cnt[i]) - 1) * VEC_HOP:].abs().sum()) == 0.0


def test_augmented_batch_is_finite_and_in_range():
    rng = np.random.default_rng(1)
    g = torch.Generator()
    g.manual_seed(1)
    src = _sources()
    src.noise = torch.randn(16000 * 3) * 0.1
    src.music = torch.randn(16000 * 3) * 0.1
    cfg = ContextConfig()
    b = Batcher(src, 10, cfg, 5, 2, 0, rng, g)
    x, cnt, labels, _ = b.batch(Augmenter(src, cfg, g, rng))
    assert torch.isfinite(x).all() and float(x.abs().max()) <= 1.0
    assert (labels == -1).any() and (labels >= 0).any()
