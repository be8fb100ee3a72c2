"""Training losses.

total = alpha_clap * clap_loss + alpha_dwd * dwd_loss   (defaults 0.1 and 1.0, as the paper)

Batches hold K words x M clips; ``labels[i]`` is the word (0..K-1) of audio embedding ``i`` and
row ``k`` of the text embeddings is word ``k``.

Negatives (optional, ``neg``): audio windows that hold no word of the batch (part of a word, the
words around it, noise or music alone). They join both losses as members of one extra class, the
"null" class, represented by a learnable unit vector ``null``: in CLAP as an extra text row that is
their target (and a distractor column for every text), in DWD as an extra centroid that is their
target. Without negatives both losses are exactly the paper's.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


def clap_loss(audio: torch.Tensor, text: torch.Tensor, labels: torch.Tensor,
              logit_scale: torch.Tensor, neg: Optional[torch.Tensor] = None,
              null: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Symmetric audio-text InfoNCE with a learnable temperature (CLAP-style).

    audio->text: each clip against the K texts, target its word.
    text->audio: each text against the N clips; its M clips are all positives, so the target is
    uniform over them (the mean of their log-probabilities).
    """
    scale = logit_scale.clamp(max=4.6052).exp()          # temperature >= 0.01
    K = text.shape[0]
    if neg is not None and neg.shape[0]:
        if null is None:
            raise ValueError("negatives need the null vector")
        audio = torch.cat([audio, neg])
        labels = torch.cat([labels, labels.new_full((neg.shape[0],), K)])
        rows = torch.cat([text, F.normalize(null, dim=-1)[None].to(text.dtype)])
    else:
        rows = text
    logits = scale * audio @ rows.t()                      # (N, K[+1])
    a2t = F.cross_entropy(logits, labels)
    logp = F.log_softmax(logits[:, :K].t(), dim=1)         # (K, N)
    pos = (labels[None, :] == torch.arange(K, device=labels.device)[:, None]).to(logp.dtype)
    t2a = -((logp * pos).sum(1) / pos.sum(1).clamp(min=1)).mean()
    return 0.5 * (a2t + t2a)


def dwd_loss(audio: torch.Tensor, labels: torch.Tensor, n_words: int,
             scale: torch.Tensor, bias: torch.Tensor, text: Optional[torch.Tensor] = None,
             text_weight: float = 0.0, neg: Optional[torch.Tensor] = None,
             null: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Audio-audio discrimination against word centroids (GE2E softmax form).

    Each clip is compared with every word's centroid; for its own word the centroid leaves the clip
    out. Cross-entropy over words with a learnable scale and bias. Needs M >= 2 clips per word.

    ``text_weight`` > 0 anchors the centroids on the text: word k's centroid becomes the mean of its
    clips and ``text_weight`` copies of its text embedding (row k of ``text``). This is our try at
    the paper's open question 1 (DWD slightly hurting text KWS): the audio clusters DWD shapes are
    pulled towards where the text encoder puts the word, instead of anywhere in the space.
    """
    dim = audio.shape[1]
    sums = torch.zeros(n_words, dim, device=audio.device, dtype=audio.dtype).index_add(0, labels, audio)
    counts = torch.bincount(labels, minlength=n_words).to(audio.dtype)
    if text_weight > 0:
        if text is None:
            raise ValueError("text_weight > 0 needs the text embeddings")
        sums = sums + text_weight * text
        counts = counts + text_weight
    cent = F.normalize(sums / counts.clamp(min=1)[:, None], dim=1)
    own = F.normalize((sums[labels] - audio) / (counts[labels] - 1).clamp(min=1e-6)[:, None], dim=1)
    sim = audio @ cent.t()
    own_sim = (audio * own).sum(1)
    sim = sim.scatter(1, labels[:, None], own_sim[:, None])
    if neg is not None and neg.shape[0]:
        if null is None:
            raise ValueError("negatives need the null vector")
        z = F.normalize(null, dim=-1).to(audio.dtype)
        sim = torch.cat([torch.cat([sim, (audio @ z)[:, None]], 1),
                         torch.cat([neg @ cent.t(), (neg @ z)[:, None]], 1)])
        labels = torch.cat([labels, labels.new_full((neg.shape[0],), n_words)])
    logits = scale.clamp(min=1e-3) * sim + bias
    return F.cross_entropy(logits, labels)


def joint_loss(audio, text, labels, model, alpha_clap: float = 0.1, alpha_dwd: float = 1.0,
               dwd_text_weight: float = 0.0, neg: Optional[torch.Tensor] = None):
    """Returns (total, parts) with the two weighted terms and the temperature for logging.
    ``neg``: negative audio windows (see the module docstring); needs ``model.null``."""
    zero = audio.new_zeros(())
    null = getattr(model, "null", None)
    lc = clap_loss(audio, text, labels, model.logit_scale, neg, null) if alpha_clap else zero
    ld = (dwd_loss(audio, labels, text.shape[0], model.dwd_scale, model.dwd_bias, text, dwd_text_weight,
                   neg, null) if alpha_dwd else zero)
    total = alpha_clap * lc + alpha_dwd * ld
    return total, {"clap": float(lc.detach()), "dwd": float(ld.detach()),
                   "temperature": float(1.0 / model.logit_scale.detach().clamp(max=4.6052).exp())}
