"""The head's CLAP side (kws.train.losses, kws.train.encoders): the loss by hand, the phoneme
encoder's padding, and the parameter names a head checkpoint stores."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kws.train.encoders import TextEncoder  # noqa: E402
from kws.train.losses import clap_loss  # noqa: E402


def _unit(rows):
    a = np.array(rows, dtype=np.float64)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_clap_loss_hand_computed():
    audio = _unit([[1, 0], [0.8, 0.6], [0, 1], [0.6, 0.8]])
    text = _unit([[1, 0], [0, 1]])
    labels = [0, 0, 1, 1]
    scale = 2.0
    logits = scale * audio @ text.T
    a2t = np.mean([-(logits[i, l] - np.log(np.exp(logits[i]).sum())) for i, l in enumerate(labels)])
    t2a = 0.0
    for k in range(2):
        lse = np.log(np.exp(logits[:, k]).sum())
        pos = [i for i, l in enumerate(labels) if l == k]
        t2a += -np.mean([logits[i, k] - lse for i in pos])
    want = 0.5 * (a2t + t2a / 2)
    got = clap_loss(torch.tensor(audio), torch.tensor(text), torch.tensor(labels),
                    torch.tensor(math.log(scale), dtype=torch.float64))
    assert float(got) == pytest.approx(want, rel=1e-9)


def test_padding_does_not_change_text_embeddings():
    torch.manual_seed(0)
    tenc = TextEncoder(40, phone_dim=8, hidden=16, layers=2, embed_dim=8).eval()
    with torch.no_grad():
        ids = torch.tensor([[5, 6, 7, 0, 0], [3, 4, 5, 6, 7]])
        tb = tenc(ids, torch.tensor([3, 5]))
        t0 = tenc(ids[:1, :3], torch.tensor([3]))
        torch.testing.assert_close(tb[0], t0[0], atol=1e-6, rtol=1e-5)
        assert torch.allclose(tb.norm(dim=1), torch.ones(2))


def test_head_loss_parameters_keep_their_checkpoint_names():
    """A head checkpoint stores LossParams' state ('loss'), which a run with ``init`` loads."""
    from kws.enroll.phonemes import TOKENS
    from kws.train.losses import LossParams

    sd = LossParams(64, True, len(TOKENS)).state_dict()
    assert set(sd) == {"log_scale", "theta", "logit_scale", "proj.weight", "proj.bias",
                       "text.embed.weight", "text.proj.weight", "text.proj.bias",
                       *(f"text.lstm.{k}_l0{d}" for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                         for d in ("", "_reverse"))}
    assert sd["text.embed.weight"].shape == (len(TOKENS), 64) and sd["text.proj.weight"].shape == (128, 256)
