"""The audio-text loss of the head's training (kws.train.head): CLAP-style symmetric InfoNCE.

A batch holds N audio embeddings, each of one of K words (``labels[i]`` in 0..K-1), and K text
embeddings, row ``k`` of word ``k``; both unit vectors.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def clap_loss(audio: torch.Tensor, text: torch.Tensor, labels: torch.Tensor,
              logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric audio-text InfoNCE with a learnable temperature (CLAP-style).

    audio->text: each clip against the K texts, target its word.
    text->audio: each text against the N clips; its clips are all positives, so the target is
    uniform over them (the mean of their log-probabilities).
    """
    scale = logit_scale.clamp(max=4.6052).exp()          # temperature >= 0.01
    K = text.shape[0]
    logits = scale * audio @ text.t()                      # (N, K)
    a2t = F.cross_entropy(logits, labels)
    logp = F.log_softmax(logits.t(), dim=1)                # (K, N)
    pos = (labels[None, :] == torch.arange(K, device=labels.device)[:, None]).to(logp.dtype)
    t2a = -((logp * pos).sum(1) / pos.sum(1).clamp(min=1)).mean()
    return 0.5 * (a2t + t2a)
