"""Torch twin of :mod:`kws.features` for training: same window, same filterbank, same frames."""
from __future__ import annotations

import torch

from kws.features import MelConfig, analysis_window, mel_filterbank


class TorchLogMel(torch.nn.Module):
    """(B, samples) float waveform -> (B, frames, n_mels) log-mel, frames as in kws.features."""

    def __init__(self, cfg: MelConfig = MelConfig()):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("fb_t", torch.from_numpy(mel_filterbank(cfg).T.copy()), persistent=False)
        self.register_buffer("window", torch.from_numpy(analysis_window(cfg)), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if wav.dim() == 1:
            wav = wav.unsqueeze(0)
        frames = wav.float().unfold(-1, cfg.win_length, cfg.hop_length) * self.window
        spec = torch.fft.rfft(frames, n=cfg.n_fft, dim=-1)
        power = spec.real.square() + spec.imag.square()
        mel = power @ self.fb_t
        return torch.log(torch.clamp(mel, min=cfg.log_floor))

    @staticmethod
    def frames_for(n_samples: torch.Tensor, cfg: MelConfig = MelConfig()) -> torch.Tensor:
        return torch.clamp((n_samples - cfg.win_length) // cfg.hop_length + 1, min=0)
