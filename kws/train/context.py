"""Training windows that look like what the detector sees: words in context, and what is not a word.

Every positive is a word (a TTS rendering, or a real word cut from a speechocean762 sentence by
its forced-alignment times) placed in context: for TTS words, silence, another TTS word or a piece
of real speech on each side with a random gap; for real words, the sentence around them. The
whole item is then augmented (speed per segment, rooms, noise / music / babble of other speakers
at 0-20 dB SNR, telephone band, gain), and a window of backbone vectors is cut around the word,
with the detector's geometry (vector ``j`` sees samples ``[1280 j, 1280 j + 12512)``):

- positive: the first vector's field ends between 0.1 s before and ``min(0.25 s, 0.4 x duration)``
  after the word's start, the last vector's field ends 0.03 s before to 0.3 s after its end;
- negative, prefix: the window ends inside the first 45 % of the word (or before it);
- negative, suffix: every vector's field starts after 60 % of the word (the right context);
- negative, background: items with no target word at all: real speech, silence, noise, music or
  babble alone.

``window_span_range`` states the positive geometry once, for the run-time window plan too.
Everything heavy runs batched on the training device; the host only draws indices.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from kws.backbone import VEC_HOP, VEC_SPAN

SR = 16000
VEC_S = VEC_HOP / SR                 # 0.08 s between vectors
LEAD_S = 1.8                         # where the target word starts in an assembled item
MAX_VECTORS = 26


def window_span_range(duration_s: float) -> Tuple[float, float]:
    """Range of (last - first) vector field ends, in seconds, of the positive windows of a word
    lasting ``duration_s``: what training shows as positives and what the detector should try."""
    return max(0.0, duration_s - 0.03 - min(0.25, 0.4 * duration_s)), duration_s + 0.40


@dataclass
class ContextConfig:
    max_target_s: float = 2.0
    context_s: Tuple[float, float] = (0.0, 1.2)     # length of the context on each side
    gap_s: Tuple[float, float] = (0.02, 0.35)       # silence between a TTS word and its context
    p_context: Tuple[float, float, float] = (0.3, 0.35, 0.35)   # silence, TTS word, real speech
    speed: Tuple[float, float] = (0.88, 1.12)
    context_gain_db: Tuple[float, float] = (-8.0, 4.0)
    p_negative: float = 0.5             # items that also give a prefix or suffix negative window
    background_items: float = 0.15      # extra items with no target word (fraction of positives)
    # augmentation of whole items
    p_reverb: float = 0.35
    p_noise: float = 0.85
    noise_kinds: Tuple[float, float, float, float] = (0.2, 0.25, 0.4, 0.15)  # real noise, music, babble, coloured
    snr_db: Tuple[float, float] = (-2.0, 22.0)
    babble_speakers: Tuple[int, int] = (2, 8)
    p_bandlimit: float = 0.15
    gain_db: Tuple[float, float] = (-30.0, 3.0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ContextConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass
class Sources:
    """All audio as one int16 buffer on the device, with the index of what lies where."""

    buffer: torch.Tensor                 # (S,) int16
    tts_off: np.ndarray                  # TTS clips (train split)
    tts_len: np.ndarray
    tts_text: np.ndarray
    occ_off: np.ndarray                  # real word occurrences (absolute sample positions)
    occ_len: np.ndarray
    occ_text: np.ndarray
    occ_sent_lo: np.ndarray              # the sentence each occurrence lies in
    occ_sent_hi: np.ndarray
    speech_off: np.ndarray               # real speech recordings (context, babble, background)
    speech_len: np.ndarray
    noise: Optional[torch.Tensor] = None     # float32 noise recordings, concatenated
    music: Optional[torch.Tensor] = None     # float32 music, concatenated
    rooms: Optional[torch.Tensor] = None     # (R, L) room impulse responses

    def speech_chunk(self, rng: np.random.Generator, n: int, length: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Random pieces of real speech: (start, length) per row (length capped by the file)."""
        f = rng.integers(0, len(self.speech_off), n)
        ln = np.minimum(length, self.speech_len[f])
        st = self.speech_off[f] + (rng.random(n) * (self.speech_len[f] - ln + 1)).astype(np.int64)
        return st, ln


class Batcher:
    """Draws batches of K words x M clips (+ negatives) and turns them into backbone inputs."""

    def __init__(self, src: Sources, n_texts: int, cfg: ContextConfig, words_per_batch: int,
                 clips_per_word: int, real_words_per_batch: int, rng: np.random.Generator,
                 g: torch.Generator):
        self.src, self.cfg, self.rng, self.g = src, cfg, rng, g
        self.K, self.M, self.Kr = words_per_batch, clips_per_word, real_words_per_batch
        self.dev = src.buffer.device
        self.tts_by_text: Dict[int, np.ndarray] = _group(src.tts_text)
        self.occ_by_text: Dict[int, np.ndarray] = _group(src.occ_text)
        self.tts_words = np.array(sorted(t for t, v in self.tts_by_text.items()
                                         if len(v) + len(self.occ_by_text.get(t, ())) >= 2))
        self.real_words = np.array(sorted(t for t, v in self.occ_by_text.items()
                                          if len(v) + len(self.tts_by_text.get(t, ())) >= 2))
        if len(self.tts_words) + len(self.real_words) < 2:
            raise ValueError("not enough words with two clips to train on")

    # ------------------------------------------------------------------ host side
    def draw(self) -> dict:
        rng, M = self.rng, self.M
        kr = min(self.Kr, len(self.real_words))
        real = rng.choice(self.real_words, size=kr, replace=False) if kr else np.zeros(0, np.int64)
        pool = np.setdiff1d(self.tts_words, real)
        kt = min(self.K - kr, len(pool))
        words = np.concatenate([real, rng.choice(pool, size=kt, replace=False)]).astype(np.int64)
        rows = []            # (kind 0 tts / 1 real, index)
        for i, w in enumerate(words):
            occ = self.occ_by_text.get(int(w), np.zeros(0, np.int64))
            tts = self.tts_by_text.get(int(w), np.zeros(0, np.int64))
            n_real = min(len(occ), M if i < kr else int(rng.integers(0, 2)) * min(len(occ), 1))
            picks = [(1, int(o)) for o in rng.choice(occ, size=n_real, replace=False)] if n_real else []
            if len(tts):
                picks += [(0, int(t)) for t in rng.choice(tts, size=M - len(picks), replace=len(tts) < M - len(picks))]
            else:
                picks += [(1, int(o)) for o in rng.choice(occ, size=M - len(picks), replace=True)]
            rows += picks
        labels = np.repeat(np.arange(len(words)), M)
        return {"words": words, "rows": rows, "labels": labels}

    def _layout(self, rows: List[Tuple[int, int]], n_bg: int):
        """Segments (left context, target, right context) of every item, in samples."""
        cfg, rng, s = self.cfg, self.rng, self.src
        n = len(rows) + n_bg
        lead = int(LEAD_S * SR)
        seg_src = np.zeros((n, 3), np.int64)
        seg_len = np.zeros((n, 3), np.int64)        # source samples
        seg_f = np.ones((n, 3), np.float64)         # speed factor (source samples per output sample)
        seg_dst = np.zeros((n, 3), np.int64)
        seg_gain = np.ones((n, 3), np.float64)
        max_t = int(cfg.max_target_s * SR)
        for i, (kind, idx) in enumerate(rows):
            f = rng.uniform(*cfg.speed)
            if kind == 1:      # real word in its sentence: one speed for the sentence
                t0, tl = int(s.occ_off[idx]), int(min(s.occ_len[idx], max_t))
                lo, hi = int(s.occ_sent_lo[idx]), int(s.occ_sent_hi[idx])
                cl = min(t0 - lo, int(rng.uniform(*cfg.context_s) * SR))
                cr = min(hi - (t0 + tl), int(rng.uniform(*cfg.context_s) * SR))
                seg_src[i] = (t0 - cl, t0, t0 + tl)
                seg_len[i] = (cl, tl, max(cr, 0))
                seg_f[i] = f
                out = np.round(seg_len[i] / f).astype(np.int64)
                seg_dst[i] = (lead - out[0], lead, lead + out[1])
                continue
            tl0 = int(s.tts_len[idx])
            tl = min(tl0, max_t)
            t0 = int(s.tts_off[idx]) + int(rng.integers(0, tl0 - tl + 1))
            seg_src[i, 1], seg_len[i, 1], seg_f[i, 1], seg_dst[i, 1] = t0, tl, f, lead
            t_out = int(round(tl / f))
            for side, col in ((0, 0), (1, 2)):
                kind_c = rng.choice(3, p=cfg.p_context)
                want = int(rng.uniform(*cfg.context_s) * SR)
                if kind_c == 0 or want < 400:
                    continue
                if kind_c == 1:
                    j = int(rng.integers(0, len(s.tts_off)))
                    ln = min(want, int(s.tts_len[j]))
                    st = int(s.tts_off[j]) + (int(s.tts_len[j]) - ln if side == 0 else 0)
                else:
                    st, ln = s.speech_chunk(rng, 1, np.array([want]))
                    st, ln = int(st[0]), int(ln[0])
                fc = rng.uniform(*cfg.speed)
                gap = int(rng.uniform(*cfg.gap_s) * SR)
                out = int(round(ln / fc))
                seg_src[i, col], seg_len[i, col], seg_f[i, col] = st, ln, fc
                seg_dst[i, col] = lead - gap - out if side == 0 else lead + t_out + gap
                seg_gain[i, col] = 10 ** (rng.uniform(*cfg.context_gain_db) / 20)
            if seg_dst[i, 0] < 0:    # context longer than the lead: drop its start
                cut = -seg_dst[i, 0]
                seg_src[i, 0] += int(cut * seg_f[i, 0])
                seg_len[i, 0] = max(0, seg_len[i, 0] - int(cut * seg_f[i, 0]))
                seg_dst[i, 0] = 0
        # background items: real speech or silence only (noise comes in augmentation)
        for i in range(len(rows), n):
            if rng.random() < 0.6:
                want = int(rng.uniform(1.0, 3.5) * SR)
                st, ln = s.speech_chunk(rng, 1, np.array([want]))
                seg_src[i, 1], seg_len[i, 1] = int(st[0]), int(ln[0])
                seg_f[i, 1] = rng.uniform(*cfg.speed)
                seg_dst[i, 1] = int(rng.uniform(0.2, LEAD_S) * SR)
        seg_len[:, :] = np.maximum(seg_len, 0)
        return seg_src, seg_len, seg_f, seg_dst, seg_gain

    # ------------------------------------------------------------------ device side
    def assemble(self, seg_src, seg_len, seg_f, seg_dst, seg_gain) -> Tuple[torch.Tensor, torch.Tensor]:
        """(n, L) float waveforms, and (n, 2) target [start, end) in output samples."""
        dev = self.dev
        src = torch.from_numpy(seg_src).to(dev)
        ln = torch.from_numpy(seg_len).to(dev)
        f = torch.from_numpy(seg_f).to(dev, torch.float32)
        dst = torch.from_numpy(seg_dst).to(dev)
        gain = torch.from_numpy(seg_gain).to(dev, torch.float32)
        out_len = torch.floor(ln.float() / f).long()
        L = int((dst + out_len).max().item()) + int(0.5 * SR)
        pos = torch.arange(L, device=dev, dtype=torch.float32)[None, :]
        buf = self.src.buffer
        top = buf.numel() - 2
        wav = torch.zeros(src.shape[0], L, device=dev)
        for c in range(3):
            rel = pos - dst[:, c:c + 1].float()
            valid = (rel >= 0) & (rel < out_len[:, c:c + 1].float()) & (ln[:, c:c + 1] > 0)
            q = src[:, c:c + 1].float() + rel.clamp(min=0) * f[:, c:c + 1]
            q = torch.minimum(q, (src[:, c:c + 1] + ln[:, c:c + 1] - 1).float().clamp(min=0))
            lo = q.floor().long().clamp(0, top)
            w = (q - lo.float()).clamp(0, 1)
            x = buf[lo].float() * (1 - w) + buf[(lo + 1).clamp(max=top + 1)].float() * w
            wav = wav + torch.where(valid, x / 32768.0 * gain[:, c:c + 1], torch.zeros((), device=dev))
        target = torch.stack([dst[:, 1], dst[:, 1] + out_len[:, 1]], 1)
        return wav, target

    def windows(self, target: np.ndarray, n_items: int, n_pos_items: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Window (item, start sample, vectors, kind): kind 0 positive, 1 negative."""
        rng, cfg = self.rng, self.cfg
        items, starts, counts, kinds = [], [], [], []
        for i in range(n_items):
            ws, we = target[i]
            if i < n_pos_items:
                dur = (we - ws) / SR
                e_first = ws / SR + rng.uniform(-0.10, min(0.25, 0.4 * dur))
                e_last = we / SR + rng.uniform(-0.03, 0.30)
                self._add(items, starts, counts, kinds, i, e_first, e_last, 0)
                if rng.random() < cfg.p_negative:
                    span = e_last - e_first + rng.uniform(-0.2, 0.2)
                    if rng.random() < 0.5:       # prefix: ends inside the first 45 % (or before)
                        e_last_n = ws / SR + rng.uniform(-0.3, 0.45) * dur
                    else:                        # suffix: every field starts after 60 %
                        e_last_n = ws / SR + 0.6 * dur + VEC_SPAN / SR + max(span, 0) + rng.uniform(0, 0.3)
                    self._add(items, starts, counts, kinds, i, e_last_n - max(span, 0), e_last_n, 1)
            else:
                n_vec = int(rng.integers(3, 22))
                e_last = rng.uniform(LEAD_S + 0.3, LEAD_S + 3.0)
                self._add(items, starts, counts, kinds, i, e_last - (n_vec - 1) * VEC_S, e_last, 1)
        return np.array(items), np.array(starts), np.array(counts), np.array(kinds)

    @staticmethod
    def _add(items, starts, counts, kinds, i, e_first, e_last, kind):
        n = int(np.clip(1 + round((e_last - e_first) / VEC_S), 1, MAX_VECTORS))
        start = int(round(e_last * SR)) - VEC_SPAN - (n - 1) * VEC_HOP
        if start < 0:
            n = max(1, n + start // VEC_HOP)
            start = max(0, int(round(e_last * SR)) - VEC_SPAN - (n - 1) * VEC_HOP)
        items.append(i)
        starts.append(start)
        counts.append(n)
        kinds.append(kind)

    def crop(self, wav: torch.Tensor, items, starts, counts) -> Tuple[torch.Tensor, torch.Tensor]:
        """(W, samples) window audio and (W,) vector counts; audio past an item's end is silence."""
        dev = wav.device
        n_max = int(counts.max())
        L = VEC_SPAN + (n_max - 1) * VEC_HOP
        it = torch.from_numpy(items).to(dev)
        st = torch.from_numpy(starts).to(dev)
        cnt = torch.from_numpy(counts).to(dev)
        idx = st[:, None] + torch.arange(L, device=dev)[None, :]
        keep = (torch.arange(L, device=dev)[None, :] < (VEC_SPAN + (cnt - 1) * VEC_HOP)[:, None]) & (idx < wav.shape[1])
        x = wav[it[:, None], idx.clamp(max=wav.shape[1] - 1)] * keep
        return x, cnt

    def prepare(self) -> dict:
        """The host's share of a batch (indices, layout, windows): no device work, so it can run
        in a thread ahead of the training step (Prefetcher)."""
        d = self.draw()
        n_pos = len(d["rows"])
        n_bg = int(round(self.cfg.background_items * n_pos))
        layout = self._layout(d["rows"], n_bg)
        seg_len, seg_f, seg_dst = layout[1], layout[2], layout[3]
        target = np.stack([seg_dst[:, 1], seg_dst[:, 1] + np.floor(seg_len[:, 1] / seg_f[:, 1])], 1).astype(np.int64)
        items, starts, counts, kinds = self.windows(target, n_pos + n_bg, n_pos)
        labels = np.where(kinds == 0, d["labels"][np.minimum(items, n_pos - 1)], -1)
        return {"layout": layout, "items": items, "starts": starts, "counts": counts,
                "labels": labels, "words": d["words"]}

    def realise(self, prep: dict, augment_fn=None):
        """Device side: assemble, augment, cut the windows. Returns window audio, vector counts,
        labels (-1: negative) and the batch's words."""
        with torch.no_grad():
            wav, target = self.assemble(*prep["layout"])
            if augment_fn is not None:
                wav = augment_fn(wav, target)
            x, cnt = self.crop(wav, prep["items"], prep["starts"], prep["counts"])
        return x, cnt, torch.from_numpy(prep["labels"]).to(x.device), prep["words"]

    def batch(self, augment_fn=None):
        """One training batch (prepare + realise)."""
        return self.realise(self.prepare(), augment_fn)


class Prefetcher:
    """Runs Batcher.prepare in a background thread, a few batches ahead, with its own generator."""

    def __init__(self, batcher: Batcher, seed: int, depth: int = 3):
        import queue
        import threading

        self.batcher = batcher
        self._q: "queue.Queue" = queue.Queue(maxsize=depth)
        self._rng = np.random.default_rng(seed)
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        b = self.batcher
        b_rng = b.rng
        while not self._stop:
            b.rng = self._rng              # only this thread draws from the batcher from now on
            try:
                item = b.prepare()
            except Exception as exc:        # surface the error in the training loop
                item = exc
            self._q.put(item)
        b.rng = b_rng

    def next(self) -> dict:
        item = self._q.get()
        if isinstance(item, Exception):
            raise item
        return item

    def close(self):
        self._stop = True


def _group(keys: np.ndarray) -> Dict[int, np.ndarray]:
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    cuts = np.flatnonzero(np.diff(k)) + 1
    return {int(g[0]): order[s:e] for g, s, e in zip(np.split(k, cuts), np.r_[0, cuts], np.r_[cuts, len(k)])
            if len(g)}


# ---------------------------------------------------------------------- augmentation
def _uniform(n, lo, hi, g, dev):
    return lo + (hi - lo) * torch.rand(n, generator=g, device=dev)


def _reverb(wav: torch.Tensor, rooms: Optional[torch.Tensor], g: torch.Generator) -> torch.Tensor:
    n, dev = wav.shape[0], wav.device
    if rooms is not None:
        h = rooms[torch.randint(0, rooms.shape[0], (n,), generator=g, device=dev)].float()
    else:
        rt = _uniform(n, 0.15, 0.8, g, dev)
        hl = int(0.8 * SR)
        t = torch.arange(hl, device=dev)[None, :] / SR
        h = torch.randn(n, hl, generator=g, device=dev) * torch.exp(-6.9 * t / rt[:, None])
        h[:, 0] = 1.0 + h[:, 0].abs()
    h = h / h.norm(dim=1, keepdim=True).clamp(min=1e-9)
    nfft = 1 << (wav.shape[1] + h.shape[1] - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(wav, nfft) * torch.fft.rfft(h, nfft), nfft)[:, : wav.shape[1]]
    scale = wav.abs().amax(1, keepdim=True) / y.abs().amax(1, keepdim=True).clamp(min=1e-6)
    return y * scale


def _bank_cut(bank: torch.Tensor, n: int, L: int, g: torch.Generator) -> torch.Tensor:
    dev = bank.device
    if bank.numel() <= L + 1:
        reps = (L + 1) // max(bank.numel(), 1) + 2
        bank = bank.repeat(reps)
    st = torch.randint(0, bank.numel() - L, (n,), generator=g, device=dev)
    return bank[st[:, None] + torch.arange(L, device=dev)[None, :]]


def _coloured(n: int, L: int, g: torch.Generator, dev) -> torch.Tensor:
    white = torch.randn(n, L, generator=g, device=dev)
    spec = torch.fft.rfft(white)
    freqs = torch.arange(spec.shape[1], device=dev).clamp(min=1).float()
    slope = torch.randint(0, 3, (n, 1), generator=g, device=dev).float()
    return torch.fft.irfft(spec / freqs[None, :] ** (slope / 2), L)


class Augmenter:
    """Noise of four kinds (real recordings, music, babble of 2-8 other speakers, coloured), rooms,
    telephone band and gain, on whole items; SNR is measured on the target word."""

    def __init__(self, src: Sources, cfg: ContextConfig, g: torch.Generator, rng: np.random.Generator):
        self.src, self.cfg, self.g, self.rng = src, cfg, g, rng

    def babble(self, n: int, L: int) -> torch.Tensor:
        cfg, s = self.cfg, self.src
        dev = s.buffer.device
        k = int(self.rng.integers(cfg.babble_speakers[0], cfg.babble_speakers[1] + 1))
        out = torch.zeros(n, L, device=dev)
        for _ in range(k):
            st, ln = s.speech_chunk(self.rng, n, np.full(n, L))
            st_t = torch.from_numpy(st).to(dev)
            ln_t = torch.from_numpy(ln).to(dev)
            shift = torch.from_numpy(self.rng.integers(0, L, n)).to(dev)
            pos = (torch.arange(L, device=dev)[None, :] + shift[:, None]) % ln_t.clamp(min=1)[:, None]
            x = s.buffer[(st_t[:, None] + pos).clamp(max=s.buffer.numel() - 1)].float() / 32768.0
            x = x / x.square().mean(1, keepdim=True).sqrt().clamp(min=1e-5)
            out = out + x * 10 ** (_uniform(n, -6, 3, self.g, dev)[:, None] / 20)
        return out

    def __call__(self, wav: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        cfg, g = self.cfg, self.g
        n, L, dev = wav.shape[0], wav.shape[1], wav.device

        def pick(p):
            return (torch.rand(n, generator=g, device=dev) < p)[:, None]

        wav = torch.where(pick(cfg.p_reverb), _reverb(wav, self.src.rooms, g), wav)
        kinds = torch.multinomial(torch.tensor(cfg.noise_kinds, device=dev), n, replacement=True,
                                  generator=g)
        noise = _coloured(n, L, g, dev)
        if self.src.noise is not None:
            noise = torch.where((kinds == 0)[:, None], _bank_cut(self.src.noise, n, L, g), noise)
        if self.src.music is not None:
            noise = torch.where((kinds == 1)[:, None], _bank_cut(self.src.music, n, L, g), noise)
        noise = torch.where((kinds == 2)[:, None], self.babble(n, L), noise)
        pos = torch.arange(L, device=dev)[None, :]
        in_t = (pos >= target[:, :1]) & (pos < target[:, 1:])
        has_t = in_t.any(1, keepdim=True)
        speech = (wav.square() * in_t).sum(1, keepdim=True) / in_t.sum(1, keepdim=True).clamp(min=1)
        whole = wav.square().mean(1, keepdim=True)
        p_sig = torch.where(has_t, speech, whole).clamp(min=1e-6)
        p_noise = noise.square().mean(1, keepdim=True).clamp(min=1e-10)
        snr = _uniform(n, cfg.snr_db[0], cfg.snr_db[1], g, dev)[:, None]
        wav = torch.where(pick(cfg.p_noise), wav + noise * torch.sqrt(p_sig / (p_noise * 10 ** (snr / 10))), wav)
        if cfg.p_bandlimit > 0:
            spec = torch.fft.rfft(wav)
            cut = _uniform(n, 3300.0, 4000.0, g, dev)
            freqs = torch.fft.rfftfreq(L, 1 / SR).to(dev)
            lo = _uniform(n, 0.0, 300.0, g, dev)
            band = torch.fft.irfft(spec * ((freqs[None, :] < cut[:, None]) & (freqs[None, :] > lo[:, None])), L)
            wav = torch.where(pick(cfg.p_bandlimit), band, wav)
        peak = wav.abs().amax(1, keepdim=True).clamp(min=1e-4)
        gain = 10 ** (_uniform(n, cfg.gain_db[0], cfg.gain_db[1], g, dev)[:, None] / 20)
        return (wav / peak * 0.9 * gain).clamp(-1, 1)
