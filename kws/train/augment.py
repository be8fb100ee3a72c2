"""The head training's augmentation, on the device: rooms, noise of six kinds, telephone band,
clipping and level (:class:`Augment`)."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from kws.train.config import TrainConfig
from kws.train.data import SR, Data


def _u(n, lo, hi, g, dev):
    return lo + (hi - lo) * torch.rand(n, generator=g, device=dev)


class Augment:
    """Rooms (simulated, or a synthetic tail with RT60 up to 2.5 s and a chosen direct-to-reverberant
    ratio), before or after the noise (then the noise is reverberant too); noise of six kinds at
    -5-20 dB SNR on the target (absolute level on items without speech); telephone band; clipping;
    gain."""

    def __init__(self, data: Data, cfg: TrainConfig, g: torch.Generator, rng: np.random.Generator):
        self.d, self.cfg, self.g, self.rng = data, cfg, g, rng

    def _talkers(self, n: int, L: int, k: int) -> torch.Tensor:
        d, dev = self.d, self.d.buffer.device
        out = torch.zeros(n, L, device=dev)
        for _ in range(k):
            f = self.rng.integers(0, d.talk_off.size, n)
            off = torch.from_numpy(d.talk_off[f]).to(dev)
            ln = torch.from_numpy(d.talk_len[f]).to(dev).clamp(min=1)
            shift = torch.from_numpy(self.rng.integers(0, 1 << 30, n)).to(dev)
            pos = (torch.arange(L, device=dev)[None, :] + shift[:, None]) % ln[:, None]
            x = d.buffer[(off[:, None] + pos).clamp(max=d.buffer.numel() - 1)].float() / 32768.0
            x = x / x.square().mean(1, keepdim=True).sqrt().clamp(min=1e-5)
            out = out + x * 10 ** (_u(n, -6, 3, self.g, dev)[:, None] / 20)
        return out

    def _bank(self, bank: torch.Tensor, n: int, L: int) -> torch.Tensor:
        dev = bank.device
        if bank.numel() <= L + 1:
            bank = bank.repeat((L + 1) // max(bank.numel(), 1) + 2)
        st = torch.randint(0, bank.numel() - L, (n,), generator=self.g, device=dev)
        return bank[st[:, None] + torch.arange(L, device=dev)[None, :]]

    def _coloured(self, n: int, L: int, dev) -> torch.Tensor:
        white = torch.randn(n, L, generator=self.g, device=dev)
        spec = torch.fft.rfft(white)
        freqs = torch.arange(spec.shape[1], device=dev).clamp(min=1).float()
        slope = torch.randint(0, 3, (n, 1), generator=self.g, device=dev).float()
        return torch.fft.irfft(spec / freqs[None, :] ** (slope / 2), L)

    def rir(self, n: int, dev) -> torch.Tensor:
        cfg, g = self.cfg, self.g
        hl = int(1.5 * SR)
        t = torch.arange(hl, device=dev)[None, :] / SR
        rt = torch.exp(_u(n, math.log(cfg.rt60[0]), math.log(cfg.rt60[1]), g, dev))[:, None]
        tail = torch.randn(n, hl, generator=g, device=dev) * torch.exp(-6.9 * t / rt)
        onset = (t >= 0.002).float() * torch.clamp(t / 0.02, max=1.0)      # a short gap and a 20 ms ramp
        tail = tail * onset
        drr = _u(n, cfg.drr_db[0], cfg.drr_db[1], g, dev)[:, None]
        tail = tail / tail.norm(dim=1, keepdim=True).clamp(min=1e-9) * 10 ** (-drr / 20)
        tail[:, 0] = 1.0
        if self.d.rooms is not None:
            r = self.d.rooms[torch.randint(0, self.d.rooms.shape[0], (n,), generator=g, device=dev)]
            r = F.pad(r, (0, hl - r.shape[1])) if r.shape[1] < hl else r[:, :hl]
            use = torch.rand(n, 1, generator=g, device=dev) < cfg.p_rooms
            tail = torch.where(use, r, tail)
        return tail / tail.norm(dim=1, keepdim=True).clamp(min=1e-9)

    def reverb(self, wav: torch.Tensor) -> torch.Tensor:
        n, L = wav.shape
        h = self.rir(n, wav.device)
        nfft = 1 << (L + h.shape[1] - 1).bit_length()
        y = torch.fft.irfft(torch.fft.rfft(wav, nfft) * torch.fft.rfft(h, nfft), nfft)[:, :L]
        return y * (wav.abs().amax(1, keepdim=True) / y.abs().amax(1, keepdim=True).clamp(min=1e-6))

    def noise(self, n: int, L: int, dev) -> torch.Tensor:
        cfg, g = self.cfg, self.g
        weights = list(cfg.noise_kinds) + [0.0] * (6 - len(cfg.noise_kinds))
        if self.d.music is None:          # no music: neither music nor TV
            weights[1] = weights[5] = 0.0
        kinds = torch.multinomial(torch.tensor(weights, device=dev, dtype=torch.float), n,
                                  replacement=True, generator=g)
        out = self._coloured(n, L, dev)
        if self.d.noise is not None:
            out = torch.where((kinds == 0)[:, None], self._bank(self.d.noise, n, L), out)
        if self.d.music is not None:
            out = torch.where((kinds == 1)[:, None], self._bank(self.d.music, n, L), out)
        k = int(self.rng.integers(cfg.babble_talkers[0], cfg.babble_talkers[1] + 1))
        out = torch.where((kinds == 2)[:, None], self._talkers(n, L, k), out)
        out = torch.where((kinds == 3)[:, None], self._talkers(n, L, 1), out)
        if self.d.music is not None and bool((kinds == 5).any()):
            music = self._bank(self.d.music, n, L)
            music = music / music.square().mean(1, keepdim=True).sqrt().clamp(min=1e-5)
            tv = self._talkers(n, L, 1) + music * 10 ** (_u(n, -10.0, 6.0, g, dev)[:, None] / 20)
            out = torch.where((kinds == 5)[:, None], tv, out)
        return out

    def __call__(self, wav: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cfg, g = self.cfg, self.g
        n, L, dev = wav.shape[0], wav.shape[1], wav.device

        def pick(p):
            return (torch.rand(n, generator=g, device=dev) < p)[:, None]

        rev = pick(cfg.p_reverb)
        late = pick(cfg.p_reverb_after_noise)
        wav = torch.where(rev & ~late, self.reverb(wav), wav)
        pos = torch.arange(L, device=dev)[None, :]
        in_t = (pos >= target[:, :1]) & (pos < target[:, 1:])
        has_t = in_t.any(1, keepdim=True)
        p_sig = (wav.square() * in_t).sum(1, keepdim=True) / in_t.sum(1, keepdim=True).clamp(min=1)
        nz = self.noise(n, L, dev)
        p_noise = nz.square().mean(1, keepdim=True).clamp(min=1e-10)
        snr = _u(n, cfg.snr_db[0], cfg.snr_db[1], g, dev)[:, None]
        k_rel = torch.sqrt(p_sig.clamp(min=1e-8) / (p_noise * 10 ** (snr / 10)))
        k_abs = 10 ** (_u(n, -45.0, -15.0, g, dev)[:, None] / 20) / p_noise.sqrt()
        k = torch.where(has_t & (p_sig > 1e-8), k_rel, k_abs)
        silent = wav.abs().amax(1, keepdim=True) < 1e-4
        wav = torch.where(pick(cfg.p_noise) | silent, wav + nz * k, wav)
        wav = torch.where(rev & late, self.reverb(wav), wav)
        if cfg.p_bandlimit > 0:
            spec = torch.fft.rfft(wav)
            cut = _u(n, 3300.0, 4000.0, g, dev)
            lo = _u(n, 0.0, 300.0, g, dev)
            freqs = torch.fft.rfftfreq(L, 1 / SR).to(dev)
            band = torch.fft.irfft(spec * ((freqs[None, :] < cut[:, None]) & (freqs[None, :] > lo[:, None])), L)
            wav = torch.where(pick(cfg.p_bandlimit), band, wav)
        if cfg.p_clip > 0:
            drive = 10 ** (_u(n, 3.0, 15.0, g, dev)[:, None] / 20)
            peak = wav.abs().amax(1, keepdim=True).clamp(min=1e-4)
            wav = torch.where(pick(cfg.p_clip), (wav / peak * drive).clamp(-1, 1), wav)
        peak = wav.abs().amax(1, keepdim=True).clamp(min=1e-4)
        gain = 10 ** (_u(n, cfg.gain_db[0], cfg.gain_db[1], g, dev)[:, None] / 20)
        return (wav / peak * 0.9 * gain).clamp(-1, 1)
