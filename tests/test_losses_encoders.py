import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from kws.train.encoders import AudioEncoder, EncoderConfig, JointModel, TextEncoder  # noqa: E402
from kws.train.losses import clap_loss, dwd_loss, joint_loss  # noqa: E402


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


def test_dwd_loss_hand_computed():
    audio = _unit([[1, 0], [0.8, 0.6], [0, 1], [0.6, 0.8], [0.3, 0.9]])
    labels = [0, 0, 1, 1, 1]
    s, b = 10.0, -5.0
    want = 0.0
    for i, l in enumerate(labels):
        sims = []
        for k in range(2):
            members = [j for j, lj in enumerate(labels) if lj == k and (j != i or k != l)]
            c = audio[members].mean(0)
            c /= np.linalg.norm(c)
            sims.append(s * audio[i] @ c + b)
        want += -(sims[l] - np.log(np.exp(sims).sum()))
    want /= len(labels)
    got = dwd_loss(torch.tensor(audio), torch.tensor(labels), 2, torch.tensor(s, dtype=torch.float64),
                   torch.tensor(b, dtype=torch.float64))
    assert float(got) == pytest.approx(want, rel=1e-9)


def test_dwd_text_anchored_hand_computed():
    audio = _unit([[1, 0], [0.8, 0.6], [0, 1], [0.6, 0.8], [0.3, 0.9]])
    text = _unit([[0.9, -0.1], [-0.2, 1.0]])
    labels = [0, 0, 1, 1, 1]
    s, b, w = 7.0, -2.0, 1.5
    want = 0.0
    for i, l in enumerate(labels):
        sims = []
        for k in range(2):
            members = [j for j, lj in enumerate(labels) if lj == k and (j != i or k != l)]
            c = (audio[members].sum(0) + w * text[k]) / (len(members) + w)
            c /= np.linalg.norm(c)
            sims.append(s * audio[i] @ c + b)
        want += -(sims[l] - np.log(np.exp(sims).sum()))
    want /= len(labels)
    got = dwd_loss(torch.tensor(audio), torch.tensor(labels), 2, torch.tensor(s, dtype=torch.float64),
                   torch.tensor(b, dtype=torch.float64), torch.tensor(text), w)
    assert float(got) == pytest.approx(want, rel=1e-9)
    plain = dwd_loss(torch.tensor(audio), torch.tensor(labels), 2, torch.tensor(s, dtype=torch.float64),
                     torch.tensor(b, dtype=torch.float64))
    assert float(plain) != pytest.approx(want, rel=1e-3)
    with pytest.raises(ValueError):
        dwd_loss(torch.tensor(audio), torch.tensor(labels), 2, torch.tensor(s), torch.tensor(b), None, 1.0)


def test_joint_loss_weights():
    m = JointModel(EncoderConfig(hidden=8, layers=1, embed_dim=4))
    a = F.normalize(torch.randn(6, 4), dim=1)
    t = F.normalize(torch.randn(3, 4), dim=1)
    lab = torch.tensor([0, 0, 1, 1, 2, 2])
    total, parts = joint_loss(a, t, lab, m, 0.1, 1.0)
    assert float(total) == pytest.approx(0.1 * parts["clap"] + parts["dwd"], rel=1e-5)
    total, parts = joint_loss(a, t, lab, m, 1.0, 0.0)
    assert float(total) == pytest.approx(parts["clap"], rel=1e-6)


def test_padding_does_not_change_embeddings():
    torch.manual_seed(0)
    cfg = EncoderConfig(hidden=16, layers=2, embed_dim=8)
    enc = AudioEncoder(cfg).eval()
    x = [torch.randn(n, 128) for n in (5, 17, 9)]
    batch = torch.zeros(3, 17, 128)
    for i, xi in enumerate(x):
        batch[i, :len(xi)] = xi
    with torch.no_grad():
        b = enc(batch, torch.tensor([5, 17, 9]))
        for i, xi in enumerate(x):
            single = enc(xi[None], torch.tensor([len(xi)]))
            torch.testing.assert_close(b[i], single[0], atol=1e-6, rtol=1e-5)
        assert torch.allclose(b.norm(dim=1), torch.ones(3))
    tenc = TextEncoder(cfg).eval()
    with torch.no_grad():
        ids = torch.tensor([[5, 6, 7, 0, 0], [3, 4, 5, 6, 7]])
        tb = tenc(ids, torch.tensor([3, 5]))
        t0 = tenc(ids[:1, :3], torch.tensor([3]))
        torch.testing.assert_close(tb[0], t0[0], atol=1e-6, rtol=1e-5)


def test_null_class_losses_hand_computed():
    """Negatives join CLAP as a text row (the null vector) that is their target, and DWD as a
    centroid that is their target."""
    audio = _unit([[1, 0], [0.8, 0.6], [0, 1], [0.6, 0.8]])
    neg = _unit([[-1, 0.2], [0.3, -1]])
    text = _unit([[1, 0], [0, 1]])
    null = np.array([-1.0, -1.0])
    z = null / np.linalg.norm(null)
    labels = [0, 0, 1, 1]
    scale = 3.0
    rows = np.vstack([text, z])
    A = np.vstack([audio, neg])
    lab = labels + [2, 2]
    logits = scale * A @ rows.T
    a2t = np.mean([-(logits[i, l] - np.log(np.exp(logits[i]).sum())) for i, l in enumerate(lab)])
    t2a = 0.0
    for k in range(2):
        lse = np.log(np.exp(logits[:, k]).sum())
        t2a += -np.mean([logits[i, k] - lse for i, l in enumerate(lab) if l == k])
    want = 0.5 * (a2t + t2a / 2)
    got = clap_loss(torch.tensor(audio), torch.tensor(text), torch.tensor(labels),
                    torch.tensor(math.log(scale), dtype=torch.float64), torch.tensor(neg), torch.tensor(null))
    assert float(got) == pytest.approx(want, rel=1e-9)
    s, b = 10.0, -5.0
    want = 0.0
    for i, l in enumerate(lab):
        sims = []
        for k in range(2):
            members = [j for j, lj in enumerate(labels) if lj == k and (j != i or k != l)]
            c = audio[members].mean(0)
            c /= np.linalg.norm(c)
            sims.append(s * A[i] @ c + b)
        sims.append(s * A[i] @ z + b)
        want += -(sims[l] - np.log(np.exp(sims).sum()))
    want /= len(lab)
    got = dwd_loss(torch.tensor(audio), torch.tensor(labels), 2, torch.tensor(s, dtype=torch.float64),
                   torch.tensor(b, dtype=torch.float64), neg=torch.tensor(neg), null=torch.tensor(null))
    assert float(got) == pytest.approx(want, rel=1e-9)
