"""The head's network in torch (the graph kws.model.head runs) and its twin of the matcher's score
(kws.spot.templates): what kws.train.head trains."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kws.model.backbone import DIM
from kws.spot.templates import TRIM


@dataclass
class HeadConfig:
    context: int = 4          # C: input vectors per output (causal)
    hidden: int = 256         # 0: a linear map of the window (no hidden layers)
    layers: int = 2           # ReLU layers of `hidden` units
    dim: int = 96             # output dimension

    @classmethod
    def from_dict(cls, d: dict) -> "HeadConfig":
        return cls(**d)


class HeadNet(nn.Module):
    """[B, T, 96] raw vectors -> [B, T - C + 1, dim] (not normalised); output j from inputs
    j .. j + C - 1. ``mean``/``std`` standardise the window's input; the skip reads the raw
    current vector divided by ``scale`` (the mean raw norm)."""

    def __init__(self, cfg: HeadConfig, mean: Optional[np.ndarray] = None,
                 std: Optional[np.ndarray] = None, scale: float = 1.0):
        super().__init__()
        self.cfg = cfg
        C = cfg.context
        self.register_buffer("mean", torch.as_tensor(mean if mean is not None else np.zeros(DIM), dtype=torch.float32))
        self.register_buffer("inv_std", 1.0 / torch.as_tensor(std if std is not None else np.ones(DIM), dtype=torch.float32))
        self.register_buffer("inv_scale", torch.tensor(1.0 / scale, dtype=torch.float32))
        layers: List[nn.Module] = []
        if cfg.hidden > 0:
            layers.append(nn.Linear(DIM * C, cfg.hidden))
            for _ in range(cfg.layers - 1):
                layers.append(nn.Linear(cfg.hidden, cfg.hidden))
            self.out = nn.Linear(cfg.hidden, cfg.dim)
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)
        else:
            self.out = nn.Linear(DIM * C, cfg.dim)
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)
        self.hidden = nn.ModuleList(layers)
        self.skip = nn.Linear(DIM, cfg.dim, bias=False)
        with torch.no_grad():
            w = torch.zeros(cfg.dim, DIM)
            k = min(cfg.dim, DIM)
            w[:k, :k] = torch.eye(k)
            self.skip.weight.copy_(w)

    @property
    def context(self) -> int:
        return self.cfg.context

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        C = self.cfg.context
        T = x.shape[1] - C + 1
        z = (x - self.mean) * self.inv_std
        win = torch.cat([z[:, i:i + T] for i in range(C)], dim=-1) if C > 1 else z
        h = win
        for lin in self.hidden:
            h = torch.relu(lin(h))
        return self.out(h) + self.skip(x[:, C - 1:] * self.inv_scale)


def apply_head(head: HeadNet, x: torch.Tensor) -> torch.Tensor:
    """[B, T, 96] -> unit [B, T, D]: the start edge-padded (the first vector repeated C - 1 times),
    as kws.model.head does."""
    C = head.context
    if C > 1:
        x = torch.cat([x[:, :1].expand(-1, C - 1, -1), x], dim=1)
    return F.normalize(head(x).float(), dim=-1)


def right_aligned(full: torch.Tensor, n: torch.Tensor, lmax: int,
                  trim_end: int = TRIM) -> Tuple[torch.Tensor, torch.Tensor]:
    """Templates cut from the head's vectors of padded utterances: ``full`` [nt, F, D] with ``n``
    valid vectors each -> [nt, lmax, D] holding rows TRIM .. n - trim_end at the end (zeros before),
    and the lengths L = n - TRIM - trim_end (capped to lmax: the last lmax rows of the cut), as
    kws.spot.templates.cut(n, TRIM, trim_end)."""
    L = (n - TRIM - trim_end).clamp(min=1, max=lmax)
    j = torch.arange(lmax, device=full.device)[None, :]
    start = (n - trim_end - L)[:, None]                   # first kept row
    idx = (start + j - (lmax - L)[:, None]).clamp(min=0, max=full.shape[1] - 1)
    rows = torch.gather(full, 1, idx[..., None].expand(-1, -1, full.shape[2]))
    mask = (j >= (lmax - L)[:, None]).to(rows.dtype)
    return rows * mask[..., None], L


def score_series(T: torch.Tensor, L: torch.Tensor, X: torch.Tensor,
                 xlen: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Template scores at every query vector: ``T`` [nt, lmax, D] right-aligned unit templates of
    lengths ``L``, ``X`` [nq, N, D] unit query vectors -> [nq, N, nt]; -2 where a template does
    not fit yet (e < L - 1) or past ``xlen``. The score at ``e`` is kws.spot.templates' mean aligned
    cosine."""
    nt, lmax, D = T.shape
    nq, N, _ = X.shape
    Xp = F.pad(X, (0, 0, lmax - 1, 0))
    U = Xp.unfold(1, lmax, 1)                              # [nq, N, D, lmax]
    U = U.permute(0, 1, 3, 2).reshape(nq * N, lmax * D)
    G = (U @ T.reshape(nt, lmax * D).t()).view(nq, N, nt) / L.to(X.dtype)[None, None, :]
    e = torch.arange(N, device=X.device)
    bad = e[:, None] < (L[None, :] - 1)                    # [N, nt]
    G = G.masked_fill(bad[None], -2.0)
    if xlen is not None:
        G = G.masked_fill((e[None, :] >= xlen[:, None])[..., None], -2.0)
    return G
