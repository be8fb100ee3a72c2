"""The phoneme encoder of the head's CLAP loss (kws.train.head): a keyword's phoneme ids ->
a unit vector the head's pooled vectors are pulled towards.

Embedding -> BiLSTM -> masked mean pooling -> linear -> L2-normalised. Padding never changes an
embedding (packed sequences), so a batch gives the same vectors as its items one by one. Only
training uses it; nothing of it ships.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def masked_mean(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean over the first ``lengths[b]`` steps of (B, T, D)."""
    mask = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]).to(x.dtype)
    return (x * mask[..., None]).sum(1) / lengths.clamp(min=1).to(x.dtype)[:, None]


class TextEncoder(nn.Module):
    """(B, L) phoneme token ids (0 = padding) + (B,) lengths -> (B, embed_dim) unit vectors."""

    def __init__(self, n_tokens: int, phone_dim: int, hidden: int, layers: int, embed_dim: int,
                 dropout: float = 0.0):
        super().__init__()
        # created in this order so that a seed gives the weights it gave before (lstm, proj, embed)
        self.lstm = nn.LSTM(phone_dim, hidden, num_layers=layers, batch_first=True,
                            bidirectional=True, dropout=dropout if layers > 1 else 0.0)
        self.proj = nn.Linear(2 * hidden, embed_dim)
        self.embed = nn.Embedding(n_tokens, phone_dim, padding_idx=0)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return F.normalize(self.proj(masked_mean(out, lengths)).float(), dim=-1)


def pad_ids(seqs: Sequence[np.ndarray], device) -> Tuple[torch.Tensor, torch.Tensor]:
    """kws.enroll.phonemes.pad_ids, as tensors on ``device``: (B, L) ids and (B,) lengths."""
    from kws.enroll import phonemes

    ids, lengths = phonemes.pad_ids(seqs)
    return torch.from_numpy(ids).to(device), torch.from_numpy(lengths).to(device)

