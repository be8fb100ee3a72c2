"""On-the-fly, batched waveform and feature augmentation (runs on the training device).

speed 0.9-1.1, random lead/trail context, reverberation (pyroomacoustics rooms from
kws.corpus.rooms when given, else synthetic exponential decays), real noise / coloured
noise / babble at 0-20 dB SNR, telephone band-limiting, gain and clipping, SpecAugment.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Tuple

import torch

SR = 16000


@dataclass
class AugmentConfig:
    speed: Tuple[float, float] = (0.9, 1.1)
    pad_max_s: float = 0.25
    p_reverb: float = 0.3
    rt60: Tuple[float, float] = (0.15, 0.8)
    p_noise: float = 0.8
    snr_db: Tuple[float, float] = (0.0, 20.0)
    p_bandlimit: float = 0.15
    gain_db: Tuple[float, float] = (-25.0, 5.0)
    freq_masks: int = 2
    freq_mask_max: int = 12
    time_masks: int = 1
    time_mask_max: int = 8

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AugmentConfig":
        """From JSON, where ranges come as lists."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _uniform(n, lo, hi, g, device):
    return lo + (hi - lo) * torch.rand(n, generator=g, device=device)


def resample_and_pad(wav: torch.Tensor, lengths: torch.Tensor, cfg: AugmentConfig,
                     g: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    """Speed change by linear interpolation plus random leading/trailing silence."""
    n, dev = wav.shape[0], wav.device
    f = _uniform(n, cfg.speed[0], cfg.speed[1], g, dev)
    pad = int(cfg.pad_max_s * SR)
    p0 = (torch.rand(n, generator=g, device=dev) * pad).long()
    p1 = (torch.rand(n, generator=g, device=dev) * pad).long()
    new_len = p0 + (lengths.float() / f).floor().long() + p1
    L = int(new_len.max())
    j = torch.arange(L, device=dev)[None, :].float()
    pos = (j - p0[:, None].float()) * f[:, None]
    valid = (pos >= 0) & (pos <= (lengths[:, None] - 1).float())
    lo = pos.floor().clamp(0, wav.shape[1] - 1).long()
    hi = (lo + 1).clamp(max=wav.shape[1] - 1)
    w = (pos - lo.float()).clamp(0, 1)
    out = torch.gather(wav, 1, lo) * (1 - w) + torch.gather(wav, 1, hi) * w
    return out * valid, new_len


def reverb(wav: torch.Tensor, cfg: AugmentConfig, g: torch.Generator,
           rooms: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Convolve with room impulse responses: rows of ``rooms`` (simulated by pyroomacoustics,
    kws.corpus.rooms) when given, else exponentially decaying noise (synthetic rooms)."""
    n, dev = wav.shape[0], wav.device
    if rooms is not None:
        h = rooms[torch.randint(0, rooms.shape[0], (n,), generator=g, device=dev)].float()
        hl = h.shape[1]
    else:
        rt = _uniform(n, cfg.rt60[0], cfg.rt60[1], g, dev)
        hl = int(cfg.rt60[1] * SR)
        t = torch.arange(hl, device=dev)[None, :] / SR
        h = torch.randn(n, hl, generator=g, device=dev) * torch.exp(-6.9 * t / rt[:, None])
        h[:, 0] = 1.0 + h[:, 0].abs()
    h = h / h.norm(dim=1, keepdim=True).clamp(min=1e-9)
    nfft = 1 << (wav.shape[1] + hl - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(wav, nfft) * torch.fft.rfft(h, nfft), nfft)[:, : wav.shape[1]]
    scale = wav.abs().amax(1, keepdim=True) / y.abs().amax(1, keepdim=True).clamp(min=1e-6)
    return y * scale


def coloured_noise(n: int, L: int, g: torch.Generator, dev) -> torch.Tensor:
    """White, pink or brown noise (spectral slope 0, -1, -2 in power)."""
    white = torch.randn(n, L, generator=g, device=dev)
    spec = torch.fft.rfft(white)
    freqs = torch.arange(spec.shape[1], device=dev).clamp(min=1).float()
    slope = torch.randint(0, 3, (n, 1), generator=g, device=dev).float()
    spec = spec / freqs[None, :] ** (slope / 2)
    return torch.fft.irfft(spec, L)


def add_noise(wav: torch.Tensor, lengths: torch.Tensor, cfg: AugmentConfig, g: torch.Generator,
              noise_bank: Optional[torch.Tensor]) -> torch.Tensor:
    n, L, dev = wav.shape[0], wav.shape[1], wav.device
    kind = torch.randint(0, 3, (n,), generator=g, device=dev)   # 0 real, 1 coloured, 2 babble
    noise = coloured_noise(n, L, g, dev)
    if noise_bank is not None and noise_bank.shape[0] > L:
        starts = torch.randint(0, noise_bank.shape[0] - L, (n,), generator=g, device=dev)
        real = noise_bank[starts[:, None] + torch.arange(L, device=dev)[None, :]]
        noise = torch.where((kind == 0)[:, None], real, noise)
    babble = sum(torch.roll(wav, shifts=int(k), dims=0) for k in (1, 2, 3))
    babble = torch.roll(babble, shifts=int(torch.randint(0, L, (1,), generator=g, device=dev)), dims=1)
    noise = torch.where((kind == 2)[:, None], babble, noise)
    mask = torch.arange(L, device=dev)[None, :] < lengths[:, None]
    p_sig = (wav.square() * mask).sum(1) / lengths.clamp(min=1)
    p_noise = (noise.square() * mask).sum(1) / lengths.clamp(min=1)
    snr = _uniform(n, cfg.snr_db[0], cfg.snr_db[1], g, dev)
    k = torch.sqrt(p_sig / (p_noise.clamp(min=1e-10) * 10 ** (snr / 10)))
    return wav + noise * (k[:, None] * mask)


def bandlimit(wav: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    spec = torch.fft.rfft(wav)
    cut_hz = _uniform(wav.shape[0], 3300.0, 4000.0, g, wav.device)
    freqs = torch.fft.rfftfreq(wav.shape[1], 1 / SR).to(wav.device)
    return torch.fft.irfft(spec * (freqs[None, :] < cut_hz[:, None]), wav.shape[1])


def augment_waveforms(wav: torch.Tensor, lengths: torch.Tensor, cfg: AugmentConfig,
                      g: torch.Generator, noise_bank: Optional[torch.Tensor] = None,
                      rooms: Optional[torch.Tensor] = None):
    n, dev = wav.shape[0], wav.device
    wav, lengths = resample_and_pad(wav, lengths, cfg, g)

    def pick(p):
        return (torch.rand(n, generator=g, device=dev) < p)[:, None]

    wav = torch.where(pick(cfg.p_reverb), reverb(wav, cfg, g, rooms), wav)
    wav = torch.where(pick(cfg.p_noise), add_noise(wav, lengths, cfg, g, noise_bank), wav)
    wav = torch.where(pick(cfg.p_bandlimit), bandlimit(wav, g), wav)
    peak = wav.abs().amax(1, keepdim=True).clamp(min=1e-4)
    gain_db = _uniform(n, cfg.gain_db[0], cfg.gain_db[1], g, dev)[:, None]
    wav = (wav / peak * 0.7 * 10 ** (gain_db / 20)).clamp(-1, 1)
    return wav, lengths


def spec_augment(mel: torch.Tensor, fill: torch.Tensor, cfg: AugmentConfig, g: torch.Generator):
    """Frequency and time masks, filled with the per-bin feature mean."""
    n, T, F = mel.shape
    dev = mel.device
    out = mel
    for _ in range(cfg.freq_masks):
        w = torch.randint(0, cfg.freq_mask_max + 1, (n, 1), generator=g, device=dev)
        s = (torch.rand(n, 1, generator=g, device=dev) * (F - w)).long()
        f = torch.arange(F, device=dev)[None, :]
        m = ((f >= s) & (f < s + w))[:, None, :]
        out = torch.where(m, fill[None, None, :], out)
    for _ in range(cfg.time_masks):
        w = torch.randint(0, cfg.time_mask_max + 1, (n, 1), generator=g, device=dev)
        s = (torch.rand(n, 1, generator=g, device=dev) * (T - w).clamp(min=1)).long()
        t = torch.arange(T, device=dev)[None, :]
        m = ((t >= s) & (t < s + w))[:, :, None]
        out = torch.where(m, fill[None, None, :], out)
    return out
