"""Training the head: a small network on the frozen backbone's vectors, trained at the matcher's level.

    python -m kws.train.head train configs/head.json [key=value ...]
    python -m kws.train.head export runs/head/c4h256/best.pt --out runs/head/c4h256/export   # then: python -m export.model --head runs/head/c4h256/export

The head (:class:`HeadNet`) maps raw backbone vectors (96-d, one every 80 ms; kws.model.backbone) to the
vectors templates are matched in (kws.model.head): output ``j`` reads inputs ``j .. j + C - 1`` (a window
of ``C`` vectors ending at the current one), through a linear layer, ``layers`` ReLU layers of
``hidden`` units and a linear output of ``dim``, plus a linear skip from the current vector (set to
the identity at the start, so training starts from the raw templates).

**Loss at the matcher's level.** A template is the head's vectors of a clean Kokoro rendering of a
word (silence-trimmed, padded with kws.spot.templates.PAD_S of silence, TRIM vectors cut off each end;
the shipped head was trained with 0.5 s of padding); a query is
the head's vectors of a whole *item* as the stream gives it: a word in context (another rendering
of it between silence, another word or real speech; the word inside a rendered sentence; a real
word of a speechocean762 speaker inside their sentence), augmented on the GPU (rooms, noise,
music, babble at -5-20 dB, reverberation with RT60 up to 2.5 s, telephone band, gain). The score of
template ``T`` (``L`` vectors) on a query is what :class:`kws.spot.templates.Matcher` computes: the best,
over the query's vectors ``e``, of the mean cosine ``(1/L) sum_j cos(T[j], x[e - L + 1 + j])``; a
word's score is the best of its templates. Then:

- **DWD** (audio-audio, weight 1.0): for each query, softmax cross-entropy over the batch's words
  plus a null class, logits ``scale x score`` and ``scale x theta`` (``scale`` and the threshold
  ``theta`` learnt); and for each word, cross-entropy over all the batch's queries with its own
  as the positives (the keyword's view: one threshold per keyword). Queries that hold no batch word are trained to the null class: a prefix or a
  suffix of a word (partial words), real speech without any batch word, babble / music / noise
  alone; everything reverberant or noisy as the positives are;
- **CLAP** (audio-text, weight 0.1): the head's vectors over a template, or over the span of a
  query its best template aligned with, mean-pooled and projected, against a small phoneme
  encoder of the word (kws.train.encoders.TextEncoder), symmetric InfoNCE (kws.train.losses).

Several heads (``variants``) train on the same batches at once, each with its own optimiser: the
backbone, the augmentation and the batches are shared; every ``eval_minutes`` each is measured on
the validation set (tuning half of ../shared/data, kws.train.head_eval) and its best weights kept.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kws.model.backbone import DIM, VEC_HOP, VEC_SPAN, as_files, num_vectors
from kws.spot.templates import MIN_LENGTH, PAD_S, TRIM

SR = 16000
RECIPE = "head-template-dwd-clap-1"


# ============================================================================ the head
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


# ============================================================================ matching
def right_aligned(full: torch.Tensor, n: torch.Tensor, lmax: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Templates cut from the head's vectors of padded utterances: ``full`` [nt, F, D] with ``n``
    valid vectors each -> [nt, lmax, D] holding rows TRIM .. n - TRIM at the end (zeros before),
    and the lengths L = n - 2 TRIM (capped to lmax: the last lmax rows of the cut)."""
    L = (n - 2 * TRIM).clamp(min=1, max=lmax)
    j = torch.arange(lmax, device=full.device)[None, :]
    start = (n - TRIM - L)[:, None]                       # first kept row
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


# ============================================================================ losses
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


# ============================================================================ config
@dataclass
class Variant:
    name: str = "c4h256"
    head: HeadConfig = field(default_factory=HeadConfig)
    alpha_clap: float = 0.1
    alpha_dwd: float = 1.0
    lr: float = 1e-3
    init: Optional[str] = None      # continue from this checkpoint's weights (head and loss parameters)

    @classmethod
    def from_dict(cls, d: dict) -> "Variant":
        d = dict(d)
        return cls(head=HeadConfig.from_dict(d.pop("head", {})), **d)


@dataclass
class TrainConfig:
    corpus: str = "/tmp/kcorpus"            # kws.corpus.kokoro_corpus output
    speech: Optional[str] = None            # stage-speech output (scripts/head_scale.sh gather): index.json + audio
    backbone: str = "kws/assets/model"            # a folder with backbone.onnx + backbone_mel.npz
    noise: Optional[str] = None
    music: Optional[Union[str, List[str]]] = None   # one file or several (joined)
    rooms: Optional[str] = None
    val: Optional[str] = None               # kws.train.head_eval validation file (npy)
    out: str = "runs/head"
    variants: List[Variant] = field(default_factory=lambda: [Variant()])
    words_per_batch: int = 256
    templates_per_word: int = 2
    queries_per_word: int = 2
    negatives: float = 0.35                 # negative items per positive item
    item_s: float = 4.0                     # every item padded to this (fixed shapes)
    max_word_s: float = 1.6
    template_max: int = 22                  # template vectors kept at most (the last ones)
    p_query: Tuple[float, float, float] = (0.35, 0.35, 0.3)   # word alone / in a sentence / real
    p_context: Tuple[float, float, float] = (0.3, 0.35, 0.35)  # silence / rendered sentence / real speech
    p_negative: Tuple[float, float, float, float] = (0.3, 0.2, 0.25, 0.25)  # prefix, suffix, speech, noise only
    cluster: float = 0.5                    # share of the batch's words drawn as phonetic neighbours
    p_reverb: float = 0.5
    p_rooms: float = 0.4                    # of reverberated items: a simulated room, else a synthetic tail
    rt60: Tuple[float, float] = (0.25, 2.5)
    drr_db: Tuple[float, float] = (-15.0, 10.0)
    p_reverb_after_noise: float = 0.5
    p_noise: float = 0.85
    # real, music, babble, one talker, coloured, TV (one talker over music); a config of five
    # weights (before TV) gives TV none
    noise_kinds: Tuple[float, ...] = (0.15, 0.2, 0.4, 0.15, 0.1, 0.0)
    snr_db: Tuple[float, float] = (-5.0, 20.0)
    babble_talkers: Tuple[int, int] = (2, 8)
    p_bandlimit: float = 0.1
    p_clip: float = 0.0                     # driven into clipping by 3-15 dB
    gain_db: Tuple[float, float] = (-30.0, 3.0)
    minutes: float = 8.0
    steps: int = 0                          # > 0: stop after this many steps (tests)
    warmup: float = 0.05
    weight_decay: float = 1e-2
    eval_minutes: float = 1.5
    seed: int = 0
    tf32: bool = True

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        variants = [Variant.from_dict(v) for v in d.pop("variants", [{}])]
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise SystemExit(f"unknown config keys: {', '.join(sorted(unknown))}")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(variants=variants, **d)

    def to_dict(self) -> dict:
        return asdict(self)


# ============================================================================ data
@dataclass
class Data:
    """All audio in one int16 buffer on the device, and where everything lies in it."""

    buffer: torch.Tensor
    words: List[str]
    phone_ids: List[np.ndarray]
    iso_off: np.ndarray
    iso_len: np.ndarray
    iso_word: np.ndarray
    sen_off: np.ndarray
    sen_len: np.ndarray
    occ_sentence: np.ndarray
    occ_word: np.ndarray
    occ_start: np.ndarray
    occ_end: np.ndarray
    real_off: np.ndarray          # speechocean762 sentences (known words)
    real_len: np.ndarray
    rocc_file: np.ndarray         # real word occurrences: file, word id (-1 not a vocabulary word), start, end
    rocc_word: np.ndarray
    rocc_start: np.ndarray
    rocc_end: np.ndarray
    talk_off: np.ndarray          # all real speech (babble and talkers)
    talk_len: np.ndarray
    noise: Optional[torch.Tensor] = None
    music: Optional[torch.Tensor] = None
    rooms: Optional[torch.Tensor] = None


def _decode(path: str) -> np.ndarray:
    from kws.audio.io import load_audio

    return np.round(np.clip(load_audio(path), -1, 1) * 32767).astype(np.int16)


def load_data(cfg: TrainConfig, device, workers: int = 0) -> Tuple[Data, dict]:
    from multiprocessing import Pool

    corpus = Path(cfg.corpus)
    z = np.load(corpus / "index.npz")
    tts = np.load(corpus / "audio.npy")
    words = [str(w) for w in z["words"]]
    wid = {w: i for i, w in enumerate(words)}
    parts = [tts]
    pos = tts.size
    real_off, real_len, talk_off, talk_len = [], [], [], []
    rocc = {"file": [], "word": [], "start": [], "end": []}
    if cfg.speech:
        idx = json.loads((Path(cfg.speech) / "index.json").read_text())
        files = [str(Path(cfg.speech) / f["file"]) for f in idx["files"]]
        with Pool(workers or os.cpu_count() or 1) as pool:
            audio = pool.map(_decode, files, chunksize=4)
        for rec, a in zip(idx["files"], audio):
            parts.append(a)
            talk_off.append(pos), talk_len.append(a.size)
            if rec["role"] == "sentence":
                f_id = len(real_off)
                real_off.append(pos), real_len.append(a.size)
                for w, s, e in rec["words"]:
                    s_i, e_i = int(s * SR), min(int(e * SR), a.size)
                    rocc["file"].append(f_id), rocc["word"].append(wid.get(w.lower(), -1))
                    rocc["start"].append(pos + s_i), rocc["end"].append(pos + e_i)
            pos += a.size
    if not talk_off:          # no real speech: the rendered sentences stand in for it
        talk_off, talk_len = list(z["sen_off"]), list(z["sen_len"])
    buffer = torch.from_numpy(np.concatenate(parts)).to(device)

    def audio_file(path):
        if not path:
            return None
        from kws.audio.io import load_audio

        paths = [path] if isinstance(path, str) else list(path)
        return torch.from_numpy(np.concatenate([load_audio(p) for p in paths])).to(device)

    rooms = None
    if cfg.rooms:
        rooms = torch.from_numpy(np.load(cfg.rooms)["rir"].astype(np.float32)).to(device)
    from kws.enroll.phonemes import pronounce

    phone_ids = [np.array(pronounce(w).ids(), np.int64) for w in words]
    a = lambda v: np.array(v, dtype=np.int64)  # noqa: E731
    d = Data(buffer=buffer, words=words, phone_ids=phone_ids,
             iso_off=z["iso_off"], iso_len=z["iso_len"], iso_word=z["iso_word"],
             sen_off=z["sen_off"], sen_len=z["sen_len"], occ_sentence=z["occ_sentence"],
             occ_word=z["occ_word"], occ_start=z["occ_start"], occ_end=z["occ_end"],
             real_off=a(real_off), real_len=a(real_len), rocc_file=a(rocc["file"]), rocc_word=a(rocc["word"]),
             rocc_start=a(rocc["start"]), rocc_end=a(rocc["end"]), talk_off=a(talk_off), talk_len=a(talk_len),
             noise=audio_file(cfg.noise), music=audio_file(cfg.music), rooms=rooms)
    stats = {"words": len(words), "word_renderings": int(d.iso_off.size), "sentences": int(d.sen_off.size),
             "sentence_words": int(d.occ_word.size), "real_sentences": len(real_off),
             "real_words": int((d.rocc_word >= 0).sum()), "real_word_types": int(np.unique(d.rocc_word[d.rocc_word >= 0]).size),
             "speech_hours": float(sum(talk_len) / SR / 3600), "tts_hours": float(tts.size / SR / 3600)}
    return d, stats


# ============================================================================ templates
@torch.no_grad()
def template_vectors(data: Data, backbone, device, batch: int = 512) -> Tuple[torch.Tensor, torch.Tensor]:
    """Raw vectors of every word rendering as a template source (kws.spot.templates.source_vectors:
    trimmed audio padded with PAD_S of silence): [n_iso, F, 96] and the vector count of each."""
    pad = int(PAD_S * SR)
    lens = data.iso_len + 2 * pad
    n = np.array([num_vectors(int(x)) for x in lens])
    F_ = int(n.max())
    out = torch.zeros(len(lens), F_, DIM, device=device)
    L_all = VEC_SPAN + (F_ - 1) * VEC_HOP
    order = np.argsort(lens)
    for s in range(0, len(order), batch):
        ids = order[s:s + batch]
        Lb = int(lens[ids].max())
        Lb = max(Lb, VEC_SPAN)
        pos = torch.arange(Lb, device=device)[None, :] - pad
        off = torch.from_numpy(data.iso_off[ids]).to(device)[:, None]
        ln = torch.from_numpy(data.iso_len[ids]).to(device)[:, None]
        valid = (pos >= 0) & (pos < ln)
        src = (off + pos.clamp(min=0)).clamp(max=data.buffer.numel() - 1)
        wav = torch.where(valid, data.buffer[src].float() / 32768.0, torch.zeros((), device=device))
        v = backbone(wav)
        out[torch.from_numpy(ids).to(device), : v.shape[1]] = v[:, :F_]
    del L_all
    return out, torch.from_numpy(n).to(device)


# ============================================================================ batches
class Batcher:
    """Host side of a batch: which words, which renderings, where every segment of every item goes."""

    def __init__(self, data: Data, cfg: TrainConfig, tpl_count: np.ndarray, rng: np.random.Generator):
        self.d, self.cfg, self.rng = data, cfg, rng
        W = len(data.words)
        ok_tpl = (tpl_count - 2 * TRIM) >= MIN_LENGTH
        ok_len = data.iso_len <= cfg.max_word_s * SR
        self.iso_by_word = _group(data.iso_word[ok_tpl & ok_len], np.flatnonzero(ok_tpl & ok_len), W)
        okw = (data.occ_end - data.occ_start) <= cfg.max_word_s * SR
        self.occ_by_word = _group(data.occ_word[okw], np.flatnonzero(okw), W)
        rk = (data.rocc_word >= 0) & ((data.rocc_end - data.rocc_start) <= cfg.max_word_s * SR) & \
             ((data.rocc_end - data.rocc_start) >= 0.15 * SR)
        self.rocc_by_word = _group(data.rocc_word[rk], np.flatnonzero(rk), W)
        Nt = cfg.templates_per_word
        self.eligible = np.array([w for w in range(W) if len(self.iso_by_word[w]) >= Nt and
                                  (len(self.iso_by_word[w]) > Nt or len(self.occ_by_word[w]) or len(self.rocc_by_word[w]))])
        if len(self.eligible) < 2:
            raise ValueError("fewer than two words have enough renderings to train on")
        # in spelling order, neighbours share their beginning (compute, computer, computing)
        spelled = [data.words[w] for w in self.eligible]
        self.by_sound = self.eligible[np.argsort(spelled, kind="stable")]
        # occurrences of each sentence (rendered and real), for context free of batch words
        self.sen_occ = _group(data.occ_sentence, np.arange(data.occ_sentence.size), data.sen_off.size)
        self.real_occ = _group(data.rocc_file, np.arange(data.rocc_file.size), data.real_off.size)
        self.item = int(cfg.item_s * SR)

    # ---------------------------------------------------------------- words
    def draw_words(self) -> np.ndarray:
        cfg, rng = self.cfg, self.rng
        K = min(cfg.words_per_batch, len(self.eligible))
        n_cl = int(K * cfg.cluster) // 4 * 4
        chosen: List[int] = []
        seen = set()
        tries = 0
        while len(chosen) < n_cl and tries < 10 * K:
            tries += 1
            s = int(rng.integers(0, max(1, len(self.by_sound) - 4)))
            for w in self.by_sound[s:s + 4]:
                if int(w) not in seen and len(chosen) < n_cl:
                    seen.add(int(w))
                    chosen.append(int(w))
        rest = np.setdiff1d(self.eligible, np.array(chosen, dtype=np.int64))
        chosen += [int(w) for w in rng.choice(rest, size=K - len(chosen), replace=False)]
        return np.array(chosen, dtype=np.int64)

    # ---------------------------------------------------------------- context
    def _context(self, side: int, want: int, batch: set, speech: bool = False) -> Tuple[int, int]:
        """(start, length) of a piece of a rendered sentence or of real speech with no batch word,
        ``want`` samples long at most, or (0, 0) for silence. ``side`` 0: before the target (the
        piece's end is used), 1: after it. ``speech``: never silence."""
        cfg, rng, d = self.cfg, self.rng, self.d
        kind = rng.choice(3, p=np.array(cfg.p_context) / sum(cfg.p_context))
        if speech and kind == 0:
            kind = int(rng.integers(1, 3))
        if kind == 0 or want < 800:
            return 0, 0
        for _ in range(4):
            if kind == 1 and d.sen_off.size:
                f = int(rng.integers(0, d.sen_off.size))
                off, ln = int(d.sen_off[f]), int(d.sen_len[f])
                occ = self.sen_occ[f]
                ws, we, wid = d.occ_start[occ], d.occ_end[occ], d.occ_word[occ]
            elif d.real_off.size:
                f = int(rng.integers(0, d.real_off.size))
                off, ln = int(d.real_off[f]), int(d.real_len[f])
                occ = self.real_occ[f]
                ws, we, wid = d.rocc_start[occ], d.rocc_end[occ], d.rocc_word[occ]
            else:
                return 0, 0
            piece = min(want, ln)
            st = off + int(rng.integers(0, ln - piece + 1))
            hit = np.isin(wid, list(batch)) & (ws < st + piece) & (we > st)
            if not hit.any():
                return st, piece
        return 0, 0

    # ---------------------------------------------------------------- items
    def prepare(self) -> dict:
        cfg, rng, d = self.cfg, self.rng, self.d
        words = self.draw_words()
        K, Nt, Nq = len(words), cfg.templates_per_word, cfg.queries_per_word
        batch = set(int(w) for w in words)
        tpl = np.zeros((K, Nt), np.int64)
        segs: List[list] = []          # per item: list of (src, length, dst, speed, gain)
        target: List[Tuple[int, int]] = []
        labels: List[int] = []
        pq = np.array(cfg.p_query, dtype=np.float64)
        for k, w in enumerate(words):
            iso = self.iso_by_word[w]
            pick = rng.permutation(iso)
            tpl[k] = pick[:Nt]
            spare = list(pick[Nt:])
            for _ in range(Nq):
                avail = np.array([len(spare) > 0, len(self.occ_by_word[w]) > 0, len(self.rocc_by_word[w]) > 0])
                p = pq * avail
                if p.sum() == 0:           # only the template renderings: reuse one of them
                    spare = list(pick[:Nt])
                    p = pq * np.array([1, 0, 0])
                kind = int(rng.choice(3, p=p / p.sum()))
                if kind == 0:
                    r = spare.pop(int(rng.integers(0, len(spare))))
                    s, t = self._word_alone(int(d.iso_off[r]), int(d.iso_len[r]), batch)
                elif kind == 1:
                    o = int(rng.choice(self.occ_by_word[w]))
                    s, t = self._in_sentence(d.occ_start[o], d.occ_end[o], d.occ_sentence[o], False, batch)
                else:
                    o = int(rng.choice(self.rocc_by_word[w]))
                    s, t = self._in_sentence(d.rocc_start[o], d.rocc_end[o], d.rocc_file[o], True, batch)
                segs.append(s), target.append(t), labels.append(k)
        n_neg = int(round(cfg.negatives * K * Nq))
        pn = np.array(cfg.p_negative) / sum(cfg.p_negative)
        for _ in range(n_neg):
            kind = int(rng.choice(4, p=pn))
            if kind <= 1:
                w = int(words[int(rng.integers(0, K))])
                r = int(rng.choice(self.iso_by_word[w]))
                s, t = self._partial(int(d.iso_off[r]), int(d.iso_len[r]), kind == 0, batch)
            elif kind == 2:
                want = int(rng.uniform(1.0, 3.5) * SR)
                st, ln = self._context(1, want, batch, speech=True)
                s = [(st, ln, int(rng.uniform(0.1, 0.4) * SR), 1.0, 1.0)] if ln else []
                t = (s[0][2], s[0][2] + ln) if ln else (0, 0)
            else:
                s, t = [], (0, 0)
            segs.append(s), target.append(t), labels.append(-1)
        return {"words": words, "templates": tpl, "segments": segs, "target": np.array(target, np.int64),
                "labels": np.array(labels, np.int64)}

    def _word_alone(self, off: int, ln: int, batch: set):
        rng = self.rng
        left = int(rng.uniform(0.05, 1.0) * SR)
        gap_l, gap_r = (int(rng.uniform(0.03, 0.3) * SR) for _ in range(2))
        ls, ll = self._context(0, left, batch)
        t0 = (ll + gap_l) if ll else left
        segs = []
        if ll:
            segs.append((ls, ll, 0, 1.0, _db(rng.uniform(-8, 4))))
        segs.append((off, ln, t0, 1.0, 1.0))
        room = self.item - (t0 + ln) - gap_r
        rs, rl = self._context(1, min(int(rng.uniform(0.1, 1.0) * SR), max(room, 0)), batch)
        if rl:
            segs.append((rs, rl, t0 + ln + gap_r, 1.0, _db(rng.uniform(-8, 4))))
        return segs, (t0, t0 + ln)

    def _in_sentence(self, ws: int, we: int, f: int, real: bool, batch: set):
        """A word with its own sentence around it (up to 1 s each side), never reaching another
        batch word's occurrence in that sentence."""
        rng, d = self.rng, self.d
        if real:
            lo, hi = int(d.real_off[f]), int(d.real_off[f] + d.real_len[f])
            occ = self.real_occ[f]
            os_, oe, ow = d.rocc_start[occ], d.rocc_end[occ], d.rocc_word[occ]
        else:
            lo, hi = int(d.sen_off[f]), int(d.sen_off[f] + d.sen_len[f])
            occ = self.sen_occ[f]
            os_, oe, ow = d.occ_start[occ], d.occ_end[occ], d.occ_word[occ]
        other = np.isin(ow, list(batch)) & ~((os_ == ws) & (oe == we))
        left = max(lo, int(ws) - int(rng.uniform(0.05, 1.0) * SR))
        right = min(hi, int(we) + int(rng.uniform(0.1, 1.0) * SR))
        if other.any():
            before = oe[other & (oe <= ws)]
            after = os_[other & (os_ >= we)]
            if before.size:
                left = max(left, int(before.max()))
            if after.size:
                right = min(right, int(after.min()))
        f_speed = rng.uniform(0.9, 1.1) if real else 1.0
        lead = int(rng.uniform(0.0, 0.3) * SR)
        ln = right - left
        out_len = int(ln / f_speed)
        if lead + out_len > self.item:
            ln = int((self.item - lead) * f_speed)
        t0 = lead + int((ws - left) / f_speed)
        t1 = lead + int((we - left) / f_speed)
        return [(left, ln, lead, f_speed, 1.0)], (t0, min(t1, self.item))

    def _partial(self, off: int, ln: int, prefix: bool, batch: set):
        """The first 30-60 % (prefix) or the last 35-60 % (suffix) of a rendering, with context
        on the open side (silence or speech without batch words)."""
        rng = self.rng
        if prefix:
            part = int(ln * rng.uniform(0.3, 0.6))
            src, sl = off, part
        else:
            part = int(ln * rng.uniform(0.35, 0.6))
            src, sl = off + ln - part, part
        t0 = int(rng.uniform(0.1, 1.0) * SR)
        segs = [(src, sl, t0, 1.0, 1.0)]
        if prefix:
            cs, cl = self._context(1, int(rng.uniform(0.3, 1.5) * SR), batch)
            if cl:
                segs.append((cs, cl, t0 + sl + int(rng.uniform(0.0, 0.2) * SR), 1.0, _db(rng.uniform(-6, 3))))
        else:
            cs, cl = self._context(0, min(t0, int(rng.uniform(0.3, 1.0) * SR)), batch)
            if cl:
                segs.append((cs, cl, max(0, t0 - cl - int(rng.uniform(0.0, 0.2) * SR)), 1.0, _db(rng.uniform(-6, 3))))
        return segs, (t0, t0 + sl)


def _db(x: float) -> float:
    return float(10 ** (x / 20))


def _group(keys: np.ndarray, values: np.ndarray, n: int) -> List[np.ndarray]:
    order = np.argsort(keys, kind="stable")
    k, v = keys[order], values[order]
    out = [np.zeros(0, np.int64)] * n
    if k.size:
        cuts = np.flatnonzero(np.diff(k)) + 1
        for s, e in zip(np.r_[0, cuts], np.r_[cuts, k.size]):
            out[int(k[s])] = v[s:e].astype(np.int64)
    return out


# ============================================================================ device side
def assemble(buffer: torch.Tensor, segments: Sequence[list], length: int) -> torch.Tensor:
    """Items from segments (src, length, dst, speed, gain): [n, length] float waveforms."""
    dev = buffer.device
    n = len(segments)
    S = max(1, max(len(s) for s in segments))
    arr = np.zeros((n, S, 5), np.float64)
    for i, s in enumerate(segments):
        for j, seg in enumerate(s):
            arr[i, j] = seg
    a = torch.from_numpy(arr).to(dev)
    src, ln, dst, f, gain = (a[..., c] for c in range(5))
    out_len = torch.floor(ln / f)
    pos = torch.arange(length, device=dev, dtype=torch.float64)[None, :]
    wav = torch.zeros(n, length, device=dev)
    top = buffer.numel() - 1
    for j in range(S):
        rel = pos - dst[:, j:j + 1]
        valid = (rel >= 0) & (rel < out_len[:, j:j + 1]) & (ln[:, j:j + 1] > 0)
        q = src[:, j:j + 1] + rel.clamp(min=0) * f[:, j:j + 1]
        q = torch.minimum(q, (src[:, j:j + 1] + ln[:, j:j + 1] - 1).clamp(min=0))
        lo = q.floor().long().clamp(0, top)
        w = (q - lo.double()).clamp(0, 1).float()
        x = buffer[lo].float() * (1 - w) + buffer[(lo + 1).clamp(max=top)].float() * w
        wav = wav + torch.where(valid, x / 32768.0 * gain[:, j:j + 1].float(), torch.zeros((), device=dev))
    return wav


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


# ============================================================================ one step
def batch_loss(head: HeadNet, params: LossParams, tpl_raw: torch.Tensor, tpl_n: torch.Tensor,
               q_raw: torch.Tensor, labels: torch.Tensor, K: int, Nt: int, lmax: int,
               alpha_clap: float, alpha_dwd: float, text_ids=None) -> Tuple[torch.Tensor, dict]:
    """The loss of one batch for one head. ``tpl_raw`` [K*Nt, F, 96] raw vectors of the template
    utterances (word-major), ``q_raw`` [nq, N, 96] of the query items, ``labels`` [nq] word index
    or -1."""
    T_full = apply_head(head, tpl_raw)
    T, L = right_aligned(T_full, tpl_n, lmax)
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
    total = alpha_dwd * ld + alpha_clap * lc
    with torch.no_grad():
        own = W.gather(1, labels.clamp(min=0)[:, None]).squeeze(1)
        other = W.clone()
        other.scatter_(1, labels.clamp(min=0)[:, None], -2.0)
        posm = labels >= 0
        acc = (own > other.amax(1))[posm].float().mean() if posm.any() else X.new_zeros(())
    return total, {"dwd": float(ld.detach()), "clap": float(lc.detach()), "top1": float(acc),
                   "theta": float(params.theta.detach()), "scale": float(params.log_scale.detach().exp())}


# ============================================================================ validation
@torch.no_grad()
def _pad_batch(seqs: List[np.ndarray], device) -> Tuple[torch.Tensor, torch.Tensor]:
    n = max(s.shape[0] for s in seqs)
    x = torch.zeros(len(seqs), n, DIM, device=device)
    for i, s in enumerate(seqs):
        x[i, : s.shape[0]] = torch.from_numpy(np.asarray(s, np.float32))
    return x, torch.tensor([s.shape[0] for s in seqs], device=device)


@torch.no_grad()
def validate(head: Optional[HeadNet], val: dict, device, lmax: int = 40) -> dict:
    """kws.train.head_eval's measures computed on the device (``head`` None: raw templates)."""
    from kws.metrics import eer, miss_at_false_alarm_rate
    from kws.spot.events import peaks
    from kws.train.head_eval import DIGIT_WORDS, WAKE

    def run(x):
        return apply_head(head, x) if head is not None else F.normalize(x, dim=-1)

    def bank(words):
        seqs = [t for w in words for t in val["templates"][w]]
        own = np.repeat(np.arange(len(words)), [len(val["templates"][w]) for w in words])
        x, n = _pad_batch(seqs, device)
        T, L = right_aligned(run(x), n, lmax)
        return T, L, torch.from_numpy(own).to(device)

    def clip_scores(T, L, own, seqs, K):
        out = []
        for s in range(0, len(seqs), 256):
            x, n = _pad_batch(seqs[s:s + 256], device)
            S = score_series(T, L, run(x), n).amax(1)          # [b, nt]
            Wk = torch.full((S.shape[0], K), -2.0, device=device)
            Wk = Wk.scatter_reduce(1, own[None].expand(S.shape[0], -1), S, "amax")
            out.append(Wk.cpu().numpy())
        return np.concatenate(out)

    res = {}
    T, L, own = bank(WAKE)
    hours = sum(v.shape[0] for v in val["background"]) * 0.08 / 3600
    pk = {w: [] for w in WAKE}
    for v in val["background"]:
        x, n = _pad_batch([v], device)
        G = score_series(T, L, run(x), n)[0]                  # [N, nt]
        Wk = torch.full((G.shape[0], len(WAKE)), -2.0, device=device)
        Wk = Wk.scatter_reduce(1, own[None].expand(G.shape[0], -1), G, "amax").cpu().numpy()
        for k, w in enumerate(WAKE):
            pk[w] += peaks(Wk[:, k]).tolist()
    lab = np.array(val["wake_label"])
    for cond, seqs in val["wake"].items():
        sc = clip_scores(T, L, own, seqs, len(WAKE))
        e = [eer(sc[:, k], lab == w)[0] for k, w in enumerate(WAKE)]
        m = [miss_at_false_alarm_rate(sc[lab == w, k], pk[w], hours, 1.0)[0] for k, w in enumerate(WAKE)]
        res[f"wake_{cond}"] = {"eer": float(np.mean(e)), "miss_1fah": float(np.mean(m))}
    T, L, own = bank(DIGIT_WORDS)
    dl = np.array(val["fsdd_label"])
    for cond, seqs in val["fsdd"].items():
        sc = clip_scores(T, L, own, seqs, len(DIGIT_WORDS))
        acc = float(np.mean(np.array(DIGIT_WORDS)[sc.argmax(1)] == dl))
        e = [eer(sc[:, k], dl == w)[0] for k, w in enumerate(DIGIT_WORDS)]
        res[f"digits_{cond}"] = {"accuracy": acc, "eer": float(np.mean(e))}
    wk = [v for k, v in res.items() if k.startswith("wake_")]
    res["score"] = float(np.mean([v["eer"] + v["miss_1fah"] for v in wk]) + (1 - res.get("digits_clean", {"accuracy": 1})["accuracy"]))
    return res


def load_val(path: str) -> dict:
    v = np.load(path, allow_pickle=True).item()
    return v


def compact_val(sets: dict, wake_conditions=("clean", "babble10", "reverb"), fsdd_conditions=("clean",),
                max_wake: int = 330, max_fsdd: int = 600, seed: int = 0) -> dict:
    """A small validation file from kws.train.head_eval's half 'a' (validation speakers' background)."""
    from kws.train.head_eval import validation_subset

    s = validation_subset(sets)
    rng = np.random.default_rng(seed)
    wi = np.sort(rng.permutation(len(s["wake_label"]))[:max_wake])
    fi = np.sort(rng.permutation(len(s["fsdd_label"]))[:max_fsdd])
    return {"templates": s["templates"], "background": s["background"],
            "wake_label": [s["wake_label"][i] for i in wi],
            "wake": {c: [s["wake"][c][i] for i in wi] for c in wake_conditions},
            "fsdd_label": [s["fsdd_label"][i] for i in fi],
            "fsdd": {c: [s["fsdd"][c][i] for i in fi] for c in fsdd_conditions}}


# ============================================================================ training
class Prefetcher:
    """Batcher.prepare in a background thread, a few batches ahead (the host's share of a step
    overlaps the device's)."""

    def __init__(self, batcher: Batcher, depth: int = 4):
        import queue
        import threading

        self.batcher = batcher
        self._q: "queue.Queue" = queue.Queue(maxsize=depth)
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop:
            try:
                item = self.batcher.prepare()
            except Exception as exc:          # surfaces in the training loop
                item = exc
            self._q.put(item)

    def next(self) -> dict:
        item = self._q.get()
        if isinstance(item, Exception):
            raise item
        return item

    def close(self):
        self._stop = True
        try:
            while True:
                self._q.get_nowait()
        except Exception:
            pass


def vector_stats(tpl_raw: torch.Tensor, tpl_n: torch.Tensor) -> Tuple[np.ndarray, np.ndarray, float]:
    m = (torch.arange(tpl_raw.shape[1], device=tpl_raw.device)[None, :] < tpl_n[:, None])
    v = tpl_raw[m]
    return (v.mean(0).cpu().numpy(), v.std(0).clamp(min=1e-3).cpu().numpy(),
            float(v.norm(dim=1).mean()))


def lr_factor(frac: float, warmup: float) -> float:
    if frac < warmup:
        return frac / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (frac - warmup) / max(1e-9, 1 - warmup))))


def train(cfg: TrainConfig, device=None, log=print) -> dict:
    from kws.enroll.phonemes import TOKENS
    from kws.train.backbone import TorchBackbone

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if cfg.tf32 and device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    t0 = time.time()
    data, stats = load_data(cfg, device)
    backbone = TorchBackbone(as_files(cfg.backbone)).to(device)
    tpl_raw, tpl_n = template_vectors(data, backbone, device)
    stats["template_seconds"] = round(time.time() - t0, 1)
    log(json.dumps({"data": stats}))
    mean, std, scale = vector_stats(tpl_raw, tpl_n)
    rng = np.random.default_rng(cfg.seed)
    g = torch.Generator(device=device)
    g.manual_seed(cfg.seed)
    batcher = Batcher(data, cfg, tpl_n.cpu().numpy(), np.random.default_rng(cfg.seed + 1))
    feed = Prefetcher(batcher)
    aug = Augment(data, cfg, g, rng)
    val = load_val(cfg.val) if cfg.val else None
    heads, params, opts = [], [], []
    for v in cfg.variants:
        h = HeadNet(v.head, mean, std, scale).to(device)
        p = LossParams(v.head.dim, v.alpha_clap > 0, len(TOKENS)).to(device)
        if v.init:
            ck = torch.load(v.init, map_location=device, weights_only=False)
            h.load_state_dict(ck["state"])
            p.load_state_dict(ck["loss"])
        heads.append(h), params.append(p)
        opts.append(torch.optim.AdamW(list(h.parameters()) + list(p.parameters()), lr=v.lr,
                                      weight_decay=cfg.weight_decay))
    best = [float("inf")] * len(heads)
    history: List[dict] = []
    if val is not None:
        r = validate(None, val, device)
        log(json.dumps({"step": 0, "variant": "raw", "val": r}))
        history.append({"step": 0, "variant": "raw", "val": r})
    L_item = int(cfg.item_s * SR)
    L_item = VEC_SPAN + max(0, -(-(L_item - VEC_SPAN) // VEC_HOP)) * VEC_HOP
    lmax = cfg.template_max
    Nt = cfg.templates_per_word
    from kws.train.encoders import pad_ids

    start = time.time()
    next_eval = start + cfg.eval_minutes * 60
    step = 0
    while True:
        el = (time.time() - start) / 60
        if (cfg.steps and step >= cfg.steps) or (not cfg.steps and el >= cfg.minutes):
            break
        frac = step / cfg.steps if cfg.steps else el / cfg.minutes
        prep = feed.next()
        with torch.no_grad():
            wav = assemble(data.buffer, prep["segments"], L_item)
            tgt = torch.from_numpy(prep["target"]).to(device)
            wav = aug(wav, tgt)
            q_raw = backbone(wav)
        tsel = torch.from_numpy(prep["templates"].reshape(-1)).to(device)
        t_raw, t_n = tpl_raw[tsel], tpl_n[tsel]
        labels = torch.from_numpy(prep["labels"]).to(device)
        K = len(prep["words"])
        text_ids = pad_ids([data.phone_ids[w] for w in prep["words"]], device)
        logs = {}
        for h, p, o, v in zip(heads, params, opts, cfg.variants):
            for grp in o.param_groups:
                grp["lr"] = v.lr * lr_factor(frac, cfg.warmup)
            loss, parts = batch_loss(h, p, t_raw, t_n, q_raw, labels, K, Nt, lmax,
                                     v.alpha_clap, v.alpha_dwd, text_ids)
            o.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(list(h.parameters()) + list(p.parameters()), 5.0)
            o.step()
            logs[v.name] = {k: round(x, 4) for k, x in parts.items()}
        step += 1
        if step % 50 == 0 or step == 1:
            log(json.dumps({"step": step, "min": round((time.time() - start) / 60, 2), "items": int(labels.numel()),
                            "loss": logs}))
        last = (cfg.steps and step >= cfg.steps) or (not cfg.steps and (time.time() - start) / 60 >= cfg.minutes)
        if time.time() >= next_eval or last:
            next_eval = time.time() + cfg.eval_minutes * 60
            for i, (h, p, v) in enumerate(zip(heads, params, cfg.variants)):
                r = validate(h, val, device) if val is not None else {"score": float("nan")}
                history.append({"step": step, "variant": v.name, "val": r})
                log(json.dumps({"step": step, "variant": v.name, "val": r}))
                d = out / v.name
                d.mkdir(exist_ok=True)
                ck = {"recipe": RECIPE, "head": asdict(v.head), "state": h.state_dict(), "loss": p.state_dict(),
                      "step": step, "val": r, "variant": asdict(v)}
                torch.save(ck, d / "last.pt")
                if val is None or r["score"] < best[i]:
                    best[i] = r["score"]
                    torch.save(ck, d / "best.pt")
    feed.close()
    summary = {"steps": step, "minutes": round((time.time() - start) / 60, 2),
               "setup_minutes": round((start - t0) / 60, 2), "best": dict(zip([v.name for v in cfg.variants], best)),
               "data": stats}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    (out / "history.json").write_text(json.dumps(history))
    log(json.dumps({"done": summary}))
    return summary


# ============================================================================ export
def load_head(path: str) -> HeadNet:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    h = HeadNet(HeadConfig.from_dict(ck["head"]))
    h.load_state_dict(ck["state"])
    h.eval()
    return h


def export(ckpt: str, out: Path, int8: bool = True, summary: Optional[dict] = None) -> dict:
    """``head.onnx`` (fp32), ``head.int8.onnx`` (weights dynamically quantised to int8; the one
    ``file`` names when ``int8``), ``check.npz`` (a fixed input and the torch twin's unit outputs
    for it, kws.model.head's edge padding included) and ``head.json`` (context, dim, sha256, training)."""
    from kws.checksum import sha256_file as sha

    h = load_head(ckpt)
    out.mkdir(parents=True, exist_ok=True)
    C, D = h.context, h.cfg.dim
    x = torch.randn(1, 12 + C - 1, DIM) * 3
    f32 = out / "head.onnx"
    torch.onnx.export(h, (x,), str(f32), input_names=["vectors"], output_names=["out"],
                      dynamic_axes={"vectors": {0: "batch", 1: "time"}, "out": {0: "batch", 1: "steps"}},
                      opset_version=17, dynamo=False)
    meta = {"file": f32.name, "context": C, "dim": D, "sha256": sha(f32), "precision": "fp32",
            "fp32": {"file": f32.name, "sha256": sha(f32)}, "config": asdict(h.cfg), "recipe": RECIPE}
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        q = out / "head.int8.onnx"
        quantize_dynamic(str(f32), str(q), weight_type=QuantType.QInt8)
        meta["int8"] = {"file": q.name, "sha256": sha(q)}
        meta.update(file=q.name, sha256=sha(q), precision="int8")
    rng = np.random.default_rng(0)
    cx = (rng.normal(size=(16, DIM)) * 3).astype(np.float32)
    with torch.no_grad():
        cy = apply_head(h, torch.from_numpy(cx)[None])[0].numpy()
    np.savez(out / "check.npz", vectors=cx, out=cy)
    ck = torch.load(ckpt, map_location="cpu", weights_only=False)
    meta["training"] = summary or {"step": ck.get("step"), "validation": ck.get("val"),
                                   "variant": ck.get("variant")}
    (out / "head.json").write_text(json.dumps(meta, indent=1))
    return meta


def stage_speech(data: Optional[Path], out: Path) -> dict:
    """kws.corpus.stage's speech folder without the validation speakers' sentences
    (kws.train.head_eval.validation_speaker): those are the validation run's background."""
    from kws.corpus.real import DEFAULT_DATA
    from kws.corpus.stage import stage_speech as stage
    from kws.train.head_eval import validation_speaker

    stage(data or DEFAULT_DATA, out, half="a")
    idx = json.loads((out / "index.json").read_text())
    keep = []
    for f in idx["files"]:
        if f["role"] == "sentence" and validation_speaker(f["speaker"]):
            (out / f["file"]).unlink()
        else:
            keep.append(f)
    idx["files"] = keep
    idx["validation_speakers_removed"] = True
    (out / "index.json").write_text(json.dumps(idx))
    size = sum((out / f["file"]).stat().st_size for f in keep)
    return {"files": len(keep), "sentences": sum(f["role"] == "sentence" for f in keep),
            "megabytes": round(size / 2 ** 20, 1)}


# ============================================================================ CLI
def _overrides(cfg: dict, items: Sequence[str]) -> dict:
    """``key=value`` items over a config (values as JSON where they parse); a dotted key reaches
    inside: ``variants.0.init=runs/x/last.pt``."""
    for it in items:
        k, v = it.split("=", 1)
        try:
            value = json.loads(v)
        except json.JSONDecodeError:
            value = v
        *path, last = k.split(".")
        node = cfg
        for p in path:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        node[int(last) if isinstance(node, list) else last] = value
    return cfg


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kws.train.head", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("config", type=Path)
    t.add_argument("overrides", nargs="*", help="key=value (JSON values)")
    e = sub.add_parser("export")
    e.add_argument("checkpoint")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--no-int8", action="store_true")
    sp = sub.add_parser("stage-speech", help="real speech for training: the tuning half's speakers "
                        "but the validation ones, with word times, and LibriSpeech train-clean-100")
    sp.add_argument("--data", type=Path, default=None)
    sp.add_argument("--out", type=Path, required=True)
    v = sub.add_parser("val-file", help="the compact validation file for a training run")
    v.add_argument("--sets", type=Path, required=True, help="kws.train.head_eval prepare folder")
    v.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.cmd == "train":
        cfg = TrainConfig.from_dict(_overrides(json.loads(args.config.read_text()), args.overrides))
        train(cfg, log=lambda s: print(s, flush=True))
    elif args.cmd == "stage-speech":
        print(json.dumps(stage_speech(args.data, args.out)))
    elif args.cmd == "export":
        print(json.dumps(export(args.checkpoint, args.out, not args.no_int8)))
    else:
        from kws.train.head_eval import load_sets

        val = compact_val(load_sets(args.sets, "a"))
        np.save(args.out, val, allow_pickle=True)
        print(json.dumps({"out": str(args.out), "wake": len(val["wake_label"]), "fsdd": len(val["fsdd_label"]),
                          "background_h": sum(v.shape[0] for v in val["background"]) * 0.08 / 3600}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
