"""The losses of the head's training (kws.train.head): the DWD loss over template scores with a null
class (:func:`dwd_template_loss`), the CLAP-style audio-text InfoNCE (:func:`clap_loss`), the
distillation of a teacher head's scores between clean templates (:func:`template_scores`), and one
batch's loss for one head (:func:`batch_loss`).

CLAP:

A batch holds N audio embeddings, each of one of K words (``labels[i]`` in 0..K-1), and K text
embeddings, row ``k`` of word ``k``; both unit vectors.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from kws.spot.templates import TRIM
from kws.train.net import HeadNet, apply_head, right_aligned, score_series


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


class LossParams(nn.Module):
    """The DWD scale and threshold, and the CLAP side: text encoder, projection, temperature."""

    def __init__(self, dim: int, clap: bool, n_tokens: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(10.0)))
        self.theta = nn.Parameter(torch.tensor(0.5))
        self.clap = clap
        if clap:
            from kws.train.encoders import TextEncoder

            self.text = TextEncoder(n_tokens, phone_dim=64, hidden=128, layers=1, embed_dim=128)
            self.proj = nn.Linear(dim, 128)
            self.logit_scale = nn.Parameter(torch.tensor(2.6593))


def dwd_template_loss(wscore: torch.Tensor, labels: torch.Tensor, params: LossParams) -> torch.Tensor:
    """``wscore`` [nq, K] word scores, ``labels`` [nq] word index or -1 (none) -> the mean of two
    cross-entropies: each query over the K words and the null class, and each word over the
    queries (its own are the positives)."""
    scale = params.log_scale.clamp(max=math.log(100.0)).exp()
    K = wscore.shape[1]
    logits = scale * torch.cat([wscore, params.theta.expand(wscore.shape[0], 1)], dim=1)
    target = torch.where(labels >= 0, labels, torch.full_like(labels, K))
    rows = F.cross_entropy(logits, target)
    # each word against every query (its own queries are the positives): the keyword's view,
    # where one threshold per keyword separates its utterances from everything else
    logp = F.log_softmax(scale * wscore.t(), dim=1)                     # [K, nq]
    pos = (labels[None, :] == torch.arange(K, device=labels.device)[:, None]).to(logp.dtype)
    cols = -((logp * pos).sum(1) / pos.sum(1).clamp(min=1)).mean()
    return 0.5 * (rows + cols)


def template_scores(T_full: torch.Tensor, tpl_n: torch.Tensor, lmax: int,
                    trim_end: int = TRIM) -> torch.Tensor:
    """Every template's best score in every template utterance: ``T_full`` [nt, F, D] a head's unit
    vectors of the (clean, rendered) template utterances with ``tpl_n`` valid vectors each ->
    [nt (utterance), nt (template)]. What the matcher would score one rendering against another:
    the distillation target (a teacher head's) and the student's own."""
    T, L = right_aligned(T_full, tpl_n, lmax, trim_end)
    return score_series(T, L, T_full, xlen=tpl_n).amax(1)


def batch_loss(head: HeadNet, params: LossParams, tpl_raw: torch.Tensor, tpl_n: torch.Tensor,
               q_raw: torch.Tensor, labels: torch.Tensor, K: int, Nt: int, lmax: int,
               alpha_clap: float, alpha_dwd: float, text_ids=None, trim_end: int = TRIM,
               teacher: Optional[torch.Tensor] = None, alpha_kd: float = 0.0) -> Tuple[torch.Tensor, dict]:
    """The loss of one batch for one head. ``tpl_raw`` [K*Nt, F, 96] raw vectors of the template
    utterances (word-major), ``q_raw`` [nq, N, 96] of the query items, ``labels`` [nq] word index
    or -1. ``teacher`` [K*Nt, K*Nt]: a teacher head's :func:`template_scores` on the same
    templates; ``alpha_kd`` times the mean squared difference of the head's own joins the loss
    (the teacher's geometry of clean words kept while the head learns noise and rooms)."""
    T_full = apply_head(head, tpl_raw)
    T, L = right_aligned(T_full, tpl_n, lmax, trim_end)
    X = apply_head(head, q_raw)
    G = score_series(T, L, X)                                  # [nq, N, nt]
    S = G.amax(1)                                              # [nq, nt]
    W = S.view(S.shape[0], K, Nt).amax(-1)                     # [nq, K]
    zero = X.new_zeros(())
    ld = dwd_template_loss(W, labels, params) if alpha_dwd else zero
    lc = zero
    if alpha_clap and params.clap:
        from kws.train.losses import clap_loss

        pos = torch.nonzero(labels >= 0).squeeze(1)
        lab = labels[pos]
        cols = lab[:, None] * Nt + torch.arange(Nt, device=X.device)[None, :]      # own templates
        Gp = torch.gather(G[pos], 2, cols[:, None, :].expand(-1, G.shape[1], -1))  # [np, N, Nt]
        flat = Gp.reshape(Gp.shape[0], -1).argmax(1)
        e = flat // Nt
        t = cols.gather(1, (flat % Nt)[:, None]).squeeze(1)
        Lt = L[t]
        n = torch.arange(X.shape[1], device=X.device)[None, :]
        m = ((n <= e[:, None]) & (n > (e - Lt)[:, None])).to(X.dtype)
        q_emb = (m[..., None] * X[pos]).sum(1) / Lt[:, None].to(X.dtype)
        tm = (T.abs().sum(-1) > 0).to(X.dtype)
        t_emb = (T * tm[..., None]).sum(1) / L[:, None].to(X.dtype)
        audio = F.normalize(params.proj(torch.cat([q_emb, t_emb])), dim=-1)
        a_lab = torch.cat([lab, torch.arange(K, device=X.device).repeat_interleave(Nt)])
        ids, ln = text_ids
        text = params.text(ids, ln)
        lc = clap_loss(audio, text, a_lab, params.logit_scale)
    lk = zero
    if alpha_kd and teacher is not None:
        lk = (template_scores(T_full, tpl_n, lmax, trim_end) - teacher).pow(2).mean()
    total = alpha_dwd * ld + alpha_clap * lc + alpha_kd * lk
    with torch.no_grad():
        own = W.gather(1, labels.clamp(min=0)[:, None]).squeeze(1)
        other = W.clone()
        other.scatter_(1, labels.clamp(min=0)[:, None], -2.0)
        posm = labels >= 0
        acc = (own > other.amax(1))[posm].float().mean() if posm.any() else X.new_zeros(())
    return total, {"dwd": float(ld.detach()), "clap": float(lc.detach()), "kd": float(lk.detach()), "top1": float(acc),
                   "theta": float(params.theta.detach()), "scale": float(params.log_scale.detach().exp())}
