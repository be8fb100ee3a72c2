"""Audio and text encoders: BiLSTM -> masked mean pooling -> linear -> L2-normalised 512-d.

Both take padded batches with lengths; padding never changes an embedding (packed sequences),
so a batch gives the same vectors as its items one by one. The ONNX exporter in
``export/onnx_export.py`` rebuilds exactly this computation with the ONNX LSTM operator.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from kws.phonemes import TOKENS


@dataclass
class EncoderConfig:
    n_mels: int = 128
    hidden: int = 256
    layers: int = 3
    embed_dim: int = 512
    phone_dim: int = 128
    n_tokens: int = len(TOKENS)
    dropout: float = 0.1
    # audio encoder only (None: same as hidden / layers). A smaller audio encoder is what a
    # distilled student uses (kws.train.distill); the text encoder keeps hidden / layers.
    audio_hidden: Optional[int] = None
    audio_layers: Optional[int] = None
    # frames stacked into one LSTM step (2: 20 ms steps of 256 values). Fewer, wider steps make
    # the audio encoder cheaper to run; frames past a row's length are zeroed before stacking.
    stack: int = 1
    # what the audio encoder reads: "logmel" (128-bin log-mel, 10 ms frames) or
    # "speech_embedding" (the frozen backbone's 96-d vectors, 80 ms apart: kws.backbone)
    frontend: str = "logmel"

    def audio_sizes(self) -> Tuple[int, int]:
        return (self.audio_hidden or self.hidden, self.audio_layers or self.layers)

    def to_dict(self) -> dict:
        return asdict(self)


def masked_mean(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean over the first ``lengths[b]`` steps of (B, T, D)."""
    mask = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]).to(x.dtype)
    return (x * mask[..., None]).sum(1) / lengths.clamp(min=1).to(x.dtype)[:, None]


def stack_frames(x: torch.Tensor, lengths: torch.Tensor, stack: int):
    """(B, T, D) -> (B, ceil(T/stack), stack*D), lengths -> ceil(lengths/stack).

    Frames at or past a row's length are zeroed first, so a row's result never depends on how
    the batch was padded."""
    if stack == 1:
        return x, lengths
    B, T, D = x.shape
    mask = (torch.arange(T, device=x.device)[None, :] < lengths[:, None]).to(x.dtype)
    x = x * mask[..., None]
    pad = (-T) % stack
    if pad:
        x = F.pad(x, (0, 0, 0, pad))
    return x.reshape(B, (T + pad) // stack, stack * D), (lengths + stack - 1) // stack


class _BiLSTMEncoder(nn.Module):
    def __init__(self, in_dim: int, cfg: EncoderConfig, hidden: Optional[int] = None,
                 layers: Optional[int] = None):
        super().__init__()
        hidden, layers = hidden or cfg.hidden, layers or cfg.layers
        self.lstm = nn.LSTM(in_dim, hidden, num_layers=layers, batch_first=True,
                            bidirectional=True, dropout=cfg.dropout if layers > 1 else 0.0)
        self.proj = nn.Linear(2 * hidden, cfg.embed_dim)

    def encode(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        pooled = masked_mean(out, lengths)
        return F.normalize(self.proj(pooled).float(), dim=-1)


class AudioEncoder(_BiLSTMEncoder):
    """(B, T, n_mels) log-mel + (B,) frame counts -> (B, 512) unit vectors."""

    def __init__(self, cfg: EncoderConfig = EncoderConfig()):
        super().__init__(cfg.n_mels * cfg.stack, cfg, *cfg.audio_sizes())
        self.stack = cfg.stack
        self.register_buffer("feat_mean", torch.zeros(cfg.n_mels))
        self.register_buffer("feat_std", torch.ones(cfg.n_mels))

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x, lengths = stack_frames((mel - self.feat_mean) / self.feat_std, lengths, self.stack)
        return self.encode(x, lengths)


class TextEncoder(_BiLSTMEncoder):
    """(B, L) phoneme token ids (0 = padding) + (B,) lengths -> (B, 512) unit vectors."""

    def __init__(self, cfg: EncoderConfig = EncoderConfig()):
        super().__init__(cfg.phone_dim, cfg)
        self.embed = nn.Embedding(cfg.n_tokens, cfg.phone_dim, padding_idx=0)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.encode(self.embed(ids), lengths)


class JointModel(nn.Module):
    """Both encoders plus the learnable loss parameters (temperature, DWD scale/bias)."""

    def __init__(self, cfg: EncoderConfig = EncoderConfig()):
        super().__init__()
        self.cfg = cfg
        self.audio = AudioEncoder(cfg)
        self.text = TextEncoder(cfg)
        # CLAP-style temperature: logits = exp(logit_scale) * cos, initialised at 1/0.07
        self.logit_scale = nn.Parameter(torch.tensor(2.6593))
        # DWD / GE2E-style similarity scale and bias
        self.dwd_scale = nn.Parameter(torch.tensor(10.0))
        self.dwd_bias = nn.Parameter(torch.tensor(-5.0))
        if cfg.frontend != "logmel":
            # the null class of negative windows (kws.train.losses); not part of either encoder
            self.null = nn.Parameter(F.normalize(torch.randn(cfg.embed_dim), dim=0))

    def forward(self, mel, mel_lengths, ids, id_lengths):
        """Both embeddings in one call (the form DistributedDataParallel wraps)."""
        return self.audio(mel, mel_lengths), self.text(ids, id_lengths)


def text_encoder_from_onnx(text: "TextEncoder", path: str) -> None:
    """Load a shipped bundle's text encoder graph (export/onnx_export.py) back into ``text``:
    the inverse of the exporter's weight layout (gate order i, o, f, c back to torch's i, f, g, o)."""
    import re

    import numpy as np
    import onnx
    from onnx import numpy_helper

    m = onnx.load(path)
    init = {re.sub(r"_\d+$", "", i.name): numpy_helper.to_array(i) for i in m.graph.initializer}
    H = text.lstm.hidden_size

    def torch_order(w):
        i, o, f, c = (w[k * H:(k + 1) * H] for k in range(4))
        return np.concatenate([i, f, c, o], axis=0)

    sd = {"embed.weight": init["phone_embed"], "proj.weight": init["text_proj_w"],
          "proj.bias": init["text_proj_b"]}
    for layer in range(text.lstm.num_layers):
        W, R, B = init[f"text_W{layer}"], init[f"text_R{layer}"], init[f"text_B{layer}"]
        for d, sfx in enumerate(("", "_reverse")):
            sd[f"lstm.weight_ih_l{layer}{sfx}"] = torch_order(W[d])
            sd[f"lstm.weight_hh_l{layer}{sfx}"] = torch_order(R[d])
            sd[f"lstm.bias_ih_l{layer}{sfx}"] = torch_order(B[d][:4 * H])
            sd[f"lstm.bias_hh_l{layer}{sfx}"] = torch_order(B[d][4 * H:])
    text.load_state_dict({k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in sd.items()})
