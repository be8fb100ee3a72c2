"""Kokoro-82M in PyTorch, with its weights read from the int8 ONNX file kws ships, to render the
training corpus batched on a GPU.

Training side only (the detector and ``kws enroll`` keep onnxruntime, kws.enroll.kokoro); needs torch
and the ``onnx`` package (to read the file)::

    from kws.corpus import kokoro_torch
    from kws.enroll import kokoro

    model = kokoro_torch.load(device="cuda")            # ~/.cache/kws/kokoro/kokoro-v1.0.int8.onnx
    ids = kokoro.tokens(phonemes)
    audio, dur = model.synthesize_timed(ids, kokoro.voices().style("af_heart", ids.size - 2), speed=1.0)
    outs = model.synthesize_batch([ids1, ids2, ...], styles, speeds)   # [(audio, durations), ...]

``audio`` is 24 kHz float32 and ``dur`` each token's duration in frames of 600 samples, as
:func:`kws.enroll.kokoro.synthesize_timed` gives them.

The network is Kokoro's (StyleTTS2 / iSTFTNet; the ``kokoro`` package 0.9.4, Apache-2.0, models.py,
modules.py, istftnet.py), written again here without transformers: a small ALBERT (one shared layer
applied 12 times), the prosody predictor (LSTMs, AdaLayerNorm, AdaIN residual blocks), the text
encoder, and the decoder with its harmonic-plus-noise source and the inverse STFT. Where the ONNX
export differs from the package, this follows the export (kokoro-onnx's v1.0):

- the sine source has no random noise and no random initial phase (the graph has no random op):
  the excitation is ``tanh(linear(0.1 * sin(phase) * voiced))``;
- the forward STFT of the source is ``torch.stft`` with reflect padding (the graph's STFT op, 20-point
  Hann, hop 5), its phase ``atan(im / re)`` with the graph's quadrant corrections;
- the inverse STFT is the graph's: a transposed convolution with the file's ``inverse_basis``, the
  first 20 output samples divided by the file's ``window_sum`` (where it is above 1.2e-38), times 4,
  10 samples cut at each end.

Weights: every initializer of the file that is a weight is read and dequantised to float32
(``(q - zero_point) * scale``, per tensor or per output channel as stored), weight norm already folded.
Those named after their parameter (``decoder.decoder.generator.resblocks.4.convs2.2.bias``) are taken by
name; the others (folded convolution weights such as ``/decoder/decoder/encode/Mul_output_0_quantized``,
``onnx::MatMul_NNNN``, the LSTMs of ``DynamicQuantizeLSTM``) by the node that reads them: its name
gives the module. LSTM weights are stored ``[direction, input, 4 * hidden]`` with the gates in ONNX's
order i, o, f, c; they are transposed and put in torch's order i, f, g, o. :func:`load` checks that
every parameter got exactly one tensor and that no weight of the file was left over.

The ONNX graph quantises activations on the fly (uint8 per tensor before each integer convolution
or matrix product); this model computes in float32 with the dequantised weights, so the audio is close
to onnxruntime's, not equal to it (benchmarks/kokoro_torch_check.py measures how close).

Batching: :meth:`KokoroTorch.forward` takes padded token ids with their lengths and one style and
speed per row; every convolution sees zeros past a row's end, instance norms and LSTMs use only a
row's own frames, the source's reflect padding is per row, so a row renders as it would alone (to
float rounding).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from kws.enroll.kokoro import FRAME_24K, SAMPLE_RATE, STYLE_DIM

N_TOKENS = 178
HIDDEN = 512
MAX_DUR = 50


# ----------------------------------------------------------------------------- helpers
def _mask(lengths: torch.Tensor, n: int) -> torch.Tensor:
    """[B, 1, n] float mask of the first ``lengths[b]`` positions."""
    return (torch.arange(n, device=lengths.device)[None, :] < lengths[:, None]).to(torch.float32)[:, None, :]


def _inorm(x: torch.Tensor, m: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Instance norm over time of [B, C, T] using only the positions where ``m`` [B, 1, T] is 1."""
    n = m.sum(-1, keepdim=True).clamp(min=1.0)
    mean = (x * m).sum(-1, keepdim=True) / n
    d = x - mean
    var = (d * d * m).sum(-1, keepdim=True) / n
    return d / torch.sqrt(var + eps)


def _lstm(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """A bidirectional batch-first LSTM over [B, T, C] with per-row lengths; zeros past a row's end."""
    T = x.shape[1]
    if bool((lengths == T).all()):
        return lstm(x)[0]
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = lstm(packed)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
    return out


# ----------------------------------------------------------------------------- ALBERT
class AlbertLayer(nn.Module):
    def __init__(self, hidden=768, heads=12, inter=2048):
        super().__init__()
        self.heads = heads
        self.attention = nn.Module()
        a = self.attention
        a.query, a.key, a.value, a.dense = (nn.Linear(hidden, hidden) for _ in range(4))
        a.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)
        self.ffn = nn.Linear(hidden, inter)
        self.ffn_output = nn.Linear(inter, hidden)
        self.full_layer_layer_norm = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        B, T, H = x.shape
        a = self.attention
        d = H // self.heads

        def split(t):
            return t.view(B, T, self.heads, d).transpose(1, 2)

        q, k, v = split(a.query(x)), split(a.key(x)), split(a.value(x))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(d) + bias
        ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H)
        h = a.LayerNorm(x + a.dense(ctx))
        f = self.ffn_output(F.gelu(self.ffn(h), approximate="tanh"))
        return self.full_layer_layer_norm(f + h)


class Albert(nn.Module):
    """transformers' AlbertModel (last hidden state) for Kokoro's PL-BERT: embeddings of 128,
    projected to 768, one shared layer applied 12 times, gelu_new."""

    def __init__(self, vocab=N_TOKENS, emb=128, hidden=768, layers=12, max_pos=512):
        super().__init__()
        self.layers = layers
        self.embeddings = nn.Module()
        e = self.embeddings
        e.word_embeddings = nn.Embedding(vocab, emb)
        e.position_embeddings = nn.Embedding(max_pos, emb)
        e.token_type_embeddings = nn.Embedding(2, emb)
        e.LayerNorm = nn.LayerNorm(emb, eps=1e-12)
        self.encoder = nn.Module()
        self.encoder.embedding_hidden_mapping_in = nn.Linear(emb, hidden)
        self.encoder.albert_layer_groups = nn.ModuleList([nn.Module()])
        self.encoder.albert_layer_groups[0].albert_layers = nn.ModuleList([AlbertLayer(hidden)])

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        T = ids.shape[1]
        e = self.embeddings
        pos = torch.arange(T, device=ids.device)
        x = e.word_embeddings(ids) + e.position_embeddings(pos)[None] + e.token_type_embeddings.weight[0]
        x = self.encoder.embedding_hidden_mapping_in(e.LayerNorm(x))
        bias = (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min
        layer = self.encoder.albert_layer_groups[0].albert_layers[0]
        for _ in range(self.layers):
            x = layer(x, bias)
        return x


# ----------------------------------------------------------------------------- blocks
class AdaIN1d(nn.Module):
    def __init__(self, style_dim, channels):
        super().__init__()
        self.fc = nn.Linear(style_dim, channels * 2)

    def forward(self, x, s, m):
        gamma, beta = self.fc(s)[:, :, None].chunk(2, dim=1)
        return ((1 + gamma) * _inorm(x, m) + beta) * m


class AdaLayerNorm(nn.Module):
    def __init__(self, style_dim, channels):
        super().__init__()
        self.channels = channels
        self.fc = nn.Linear(style_dim, channels * 2)

    def forward(self, x, s):            # x [B, T, C]
        gamma, beta = self.fc(s)[:, None, :].chunk(2, dim=-1)
        return (1 + gamma) * F.layer_norm(x, (self.channels,), eps=1e-5) + beta


class AdainResBlk1d(nn.Module):
    def __init__(self, dim_in, dim_out, style_dim=128, upsample=False):
        super().__init__()
        self.upsample = upsample
        self.learned_sc = dim_in != dim_out
        self.conv1 = nn.Conv1d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv1d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN1d(style_dim, dim_in)
        self.norm2 = AdaIN1d(style_dim, dim_out)
        if self.learned_sc:
            self.conv1x1 = nn.Conv1d(dim_in, dim_out, 1, 1, 0, bias=False)
        if upsample:
            self.pool = nn.ConvTranspose1d(dim_in, dim_in, 3, 2, groups=dim_in, padding=1, output_padding=1)

    def forward(self, x, s, m, m_out):
        """x [B, C, T] zero past each row's end (mask ``m``); ``m_out`` the mask at the output rate."""
        h = F.leaky_relu(self.norm1(x, s, m), 0.2)
        if self.upsample:
            h = self.pool(h) * m_out
        h = self.conv1(h) * m_out
        h = F.leaky_relu(self.norm2(h, s, m_out), 0.2)
        h = self.conv2(h)
        sc = F.interpolate(x, scale_factor=2, mode="nearest") if self.upsample else x
        if self.learned_sc:
            sc = self.conv1x1(sc)
        return (h + sc) * m_out / math.sqrt(2)


class AdaINResBlock1(nn.Module):
    def __init__(self, channels, kernel_size=3, dilation=(1, 3, 5), style_dim=128):
        super().__init__()
        self.convs1 = nn.ModuleList([nn.Conv1d(channels, channels, kernel_size, 1, dilation=d,
                                               padding=d * (kernel_size - 1) // 2) for d in dilation])
        self.convs2 = nn.ModuleList([nn.Conv1d(channels, channels, kernel_size, 1, dilation=1,
                                               padding=(kernel_size - 1) // 2) for _ in dilation])
        self.adain1 = nn.ModuleList([AdaIN1d(style_dim, channels) for _ in dilation])
        self.adain2 = nn.ModuleList([AdaIN1d(style_dim, channels) for _ in dilation])
        self.alpha1 = nn.ParameterList([nn.Parameter(torch.ones(1, channels, 1)) for _ in dilation])
        self.alpha2 = nn.ParameterList([nn.Parameter(torch.ones(1, channels, 1)) for _ in dilation])

    def forward(self, x, s, m):
        for c1, c2, n1, n2, a1, a2 in zip(self.convs1, self.convs2, self.adain1, self.adain2,
                                          self.alpha1, self.alpha2):
            xt = n1(x, s, m)
            xt = xt + (1 / a1) * torch.sin(a1 * xt) ** 2
            xt = c1(xt) * m
            xt = n2(xt, s, m)
            xt = xt + (1 / a2) * torch.sin(a2 * xt) ** 2
            xt = c2(xt) * m
            x = xt + x
        return x


# ----------------------------------------------------------------------------- text side
class TextEncoder(nn.Module):
    def __init__(self, channels=HIDDEN, kernel_size=5, depth=3, n_symbols=N_TOKENS):
        super().__init__()
        self.embedding = nn.Embedding(n_symbols, channels)
        self.cnn = nn.ModuleList()
        for _ in range(depth):
            blk = nn.ModuleList([nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2),
                                 nn.LayerNorm(channels, eps=1e-5)])
            self.cnn.append(blk)
        self.lstm = nn.LSTM(channels, channels // 2, 1, batch_first=True, bidirectional=True)

    def forward(self, ids, lengths, m):
        x = self.embedding(ids).transpose(1, 2) * m          # [B, C, T]
        for conv, ln in self.cnn:
            x = conv(x)
            x = F.leaky_relu(ln(x.transpose(1, 2)).transpose(1, 2), 0.2) * m
        x = _lstm(self.lstm, x.transpose(1, 2), lengths)
        return x.transpose(1, 2) * m


class DurationEncoder(nn.Module):
    def __init__(self, sty_dim=128, d_model=HIDDEN, nlayers=3):
        super().__init__()
        self.lstms = nn.ModuleList()
        for _ in range(nlayers):
            self.lstms.append(nn.LSTM(d_model + sty_dim, d_model // 2, 1, batch_first=True, bidirectional=True))
            self.lstms.append(AdaLayerNorm(sty_dim, d_model))

    def forward(self, x, s, lengths, m):
        """x [B, C, T] -> [B, T, C + style]."""
        T = x.shape[-1]
        sx = s[:, None, :].expand(-1, T, -1)
        mt = m.transpose(1, 2)                                 # [B, T, 1]
        x = torch.cat([x.transpose(1, 2), sx], -1) * mt
        for block in self.lstms:
            if isinstance(block, AdaLayerNorm):
                x = torch.cat([block(x, s), sx], -1) * mt
            else:
                x = _lstm(block, x, lengths)
        return x


class ProsodyPredictor(nn.Module):
    def __init__(self, style_dim=128, d_hid=HIDDEN, nlayers=3, max_dur=MAX_DUR):
        super().__init__()
        self.text_encoder = DurationEncoder(style_dim, d_hid, nlayers)
        self.lstm = nn.LSTM(d_hid + style_dim, d_hid // 2, 1, batch_first=True, bidirectional=True)
        self.duration_proj = nn.Module()
        self.duration_proj.linear_layer = nn.Linear(d_hid, max_dur)
        self.shared = nn.LSTM(d_hid + style_dim, d_hid // 2, 1, batch_first=True, bidirectional=True)
        self.F0 = nn.ModuleList([AdainResBlk1d(d_hid, d_hid, style_dim),
                                 AdainResBlk1d(d_hid, d_hid // 2, style_dim, upsample=True),
                                 AdainResBlk1d(d_hid // 2, d_hid // 2, style_dim)])
        self.N = nn.ModuleList([AdainResBlk1d(d_hid, d_hid, style_dim),
                                AdainResBlk1d(d_hid, d_hid // 2, style_dim, upsample=True),
                                AdainResBlk1d(d_hid // 2, d_hid // 2, style_dim)])
        self.F0_proj = nn.Conv1d(d_hid // 2, 1, 1, 1, 0)
        self.N_proj = nn.Conv1d(d_hid // 2, 1, 1, 1, 0)

    def F0Ntrain(self, en, s, flen, m, m2):
        x = _lstm(self.shared, en.transpose(1, 2), flen).transpose(1, 2)     # [B, 512, F]
        F0, N = x, x
        for blk, mi, mo in zip(self.F0, (m, m, m2), (m, m2, m2)):
            F0 = blk(F0, s, mi, mo)
        for blk, mi, mo in zip(self.N, (m, m, m2), (m, m2, m2)):
            N = blk(N, s, mi, mo)
        return (self.F0_proj(F0) * m2)[:, 0], (self.N_proj(N) * m2)[:, 0]


# ----------------------------------------------------------------------------- decoder
class Generator(nn.Module):
    def __init__(self, style_dim=128, resblock_kernel_sizes=(3, 7, 11), upsample_rates=(10, 6),
                 upsample_initial_channel=512, resblock_dilation_sizes=((1, 3, 5),) * 3,
                 upsample_kernel_sizes=(20, 12), n_fft=20, hop=5):
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.num_upsamples = len(upsample_rates)
        self.n_fft, self.hop = n_fft, hop
        self.upp = int(np.prod(upsample_rates)) * hop          # 300 samples per F0 frame
        self.m_source = nn.Module()
        self.m_source.l_linear = nn.Linear(9, 1)
        self.noise_convs = nn.ModuleList()
        self.noise_res = nn.ModuleList()
        self.ups = nn.ModuleList()
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            self.ups.append(nn.ConvTranspose1d(upsample_initial_channel // 2 ** i,
                                               upsample_initial_channel // 2 ** (i + 1), k, u, padding=(k - u) // 2))
        self.resblocks = nn.ModuleList()
        for i in range(len(self.ups)):
            ch = upsample_initial_channel // 2 ** (i + 1)
            for k, d in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(AdaINResBlock1(ch, k, d, style_dim))
            if i + 1 < len(upsample_rates):
                stride = int(np.prod(upsample_rates[i + 1:]))
                self.noise_convs.append(nn.Conv1d(n_fft + 2, ch, kernel_size=stride * 2, stride=stride,
                                                  padding=(stride + 1) // 2))
                self.noise_res.append(AdaINResBlock1(ch, 7, (1, 3, 5), style_dim))
            else:
                self.noise_convs.append(nn.Conv1d(n_fft + 2, ch, kernel_size=1))
                self.noise_res.append(AdaINResBlock1(ch, 11, (1, 3, 5), style_dim))
        self.conv_post = nn.Conv1d(ch, n_fft + 2, 7, 1, padding=3)
        # the graph's STFT window and inverse STFT (filled by load())
        self.register_buffer("stft_window", torch.hann_window(n_fft, periodic=True))
        self.register_buffer("inverse_basis", torch.zeros(n_fft + 2, 1, n_fft))
        self.register_buffer("window_sum", torch.zeros(n_fft))
        self.register_buffer("harmonics", torch.arange(1, 10, dtype=torch.float32))

    def source(self, f0, flen2):
        """The harmonic source [B, n] (n = 300 samples per F0 frame) of the F0 curve [B, 2F]."""
        B, L = f0.shape
        up = f0.repeat_interleave(self.upp, dim=1)              # nearest x300  [B, n]
        fn = up[:, :, None] * self.harmonics                       # [B, n, 9]
        rad = fn / SAMPLE_RATE
        rad = rad - torch.floor(rad)
        # linear resize by 1/300 (half-pixel): the mean of samples 149 and 150 of each frame
        rad = F.interpolate(rad.transpose(1, 2), scale_factor=1 / self.upp, mode="linear").transpose(1, 2)
        phase = torch.cumsum(rad, dim=1) * 2.0 * math.pi * self.upp  # [B, L, 9]
        # frames past a row's end repeat its last one, so the interpolation clamps at the row's end
        idx = torch.minimum(torch.arange(L, device=f0.device)[None, :], (flen2 - 1)[:, None])
        phase = torch.gather(phase, 1, idx[:, :, None].expand(-1, -1, phase.shape[-1]))
        phase = F.interpolate(phase.transpose(1, 2), scale_factor=self.upp, mode="linear").transpose(1, 2)
        uv = (up > 10.0).to(torch.float32)[:, :, None]
        sines = torch.sin(phase) * 0.1 * uv
        return torch.tanh(self.m_source.l_linear(sines))[:, :, 0]

    def stft(self, x, n):
        """Magnitude and phase [B, 11, frames] of x [B, N] (row b: its first n[b] samples,
        reflect-padded by n_fft / 2 at both of its ends)."""
        B, N = x.shape
        p = self.n_fft // 2
        j = torch.arange(N + 2 * p, device=x.device)[None, :] - p       # [1, N + 2p]
        nb = n[:, None]
        j = torch.where(j < 0, -j, j)
        j = torch.where(j >= nb, 2 * (nb - 1) - j, j)
        j = j.clamp(0, N - 1)
        xp = torch.gather(x, 1, j)
        spec = torch.stft(xp, self.n_fft, self.hop, self.n_fft, window=self.stft_window, center=False,
                          onesided=True, return_complex=True)
        re, im = spec.real, spec.imag
        mag = torch.sqrt(re * re + im * im)
        at = torch.atan(im / re)
        phase = torch.where(re < 0, torch.where(im > 0, at + math.pi, at - math.pi), at)
        return mag, torch.nan_to_num(phase, nan=0.0)

    def istft(self, spec, phase, mf):
        real = spec * torch.cos(phase) * mf
        imag = spec * torch.sin(phase) * mf
        y = F.conv_transpose1d(torch.cat([real, imag], 1), self.inverse_basis, stride=self.hop)[:, 0]
        k = min(self.n_fft, y.shape[-1])
        ws = self.window_sum[:k]
        head = torch.where(ws > 1.1754943508222875e-38, y[:, :k] / ws.clamp(min=1e-38), y[:, :k])
        y = torch.cat([head, y[:, k:]], 1) * 4.0
        return y[:, self.n_fft // 2:]

    def forward(self, x, s, f0, flen2):
        """x [B, 512, 2F], F0 curve [B, 2F] (zero past each row's ``flen2``) -> audio [B, 600 F]."""
        n = flen2 * self.upp                                 # samples of each row
        frames = n // self.hop + 1
        har_src = self.source(f0, flen2)
        mag, ph = self.stft(har_src, n)
        mf = _mask(frames, mag.shape[-1])
        har = torch.cat([mag, ph], 1) * mf
        lens = flen2
        for i in range(self.num_upsamples):
            x = F.leaky_relu(x, 0.1)
            lens = lens * (10 if i == 0 else 6)
            if i == self.num_upsamples - 1:
                lens = lens + 1
            m = _mask(lens, lens.max())
            xs_ = self.noise_convs[i](har)[:, :, :m.shape[-1]] * m
            xs_ = self.noise_res[i](xs_, s, m)
            x = self.ups[i](x)
            if i == self.num_upsamples - 1:
                x = F.pad(x, (1, 0), mode="reflect")
            x = (x[:, :, :m.shape[-1]] + xs_) * m
            acc = None
            for j in range(self.num_kernels):
                r = self.resblocks[i * self.num_kernels + j](x, s, m)
                acc = r if acc is None else acc + r
            x = acc / self.num_kernels
        x = F.leaky_relu(x, 0.01)
        x = self.conv_post(x)
        spec = torch.exp(x[:, : self.n_fft // 2 + 1])
        phase = torch.sin(x[:, self.n_fft // 2 + 1:])
        return self.istft(spec, phase, m)


class Decoder(nn.Module):
    def __init__(self, dim_in=HIDDEN, style_dim=128):
        super().__init__()
        self.encode = AdainResBlk1d(dim_in + 2, 1024, style_dim)
        self.decode = nn.ModuleList([AdainResBlk1d(1024 + 2 + 64, 1024, style_dim) for _ in range(3)]
                                    + [AdainResBlk1d(1024 + 2 + 64, 512, style_dim, upsample=True)])
        self.F0_conv = nn.Conv1d(1, 1, kernel_size=3, stride=2, groups=1, padding=1)
        self.N_conv = nn.Conv1d(1, 1, kernel_size=3, stride=2, groups=1, padding=1)
        self.asr_res = nn.Sequential(nn.Conv1d(512, 64, kernel_size=1))
        self.generator = Generator(style_dim)

    def forward(self, asr, F0_curve, N, s, flen, m, m2):
        F0 = self.F0_conv(F0_curve[:, None]) * m
        N = self.N_conv(N[:, None]) * m
        x = self.encode(torch.cat([asr, F0, N], 1), s, m, m)
        asr_res = self.asr_res(asr) * m
        for block in self.decode:
            mo = m2 if block.upsample else m
            x = block(torch.cat([x, asr_res, F0, N], 1), s, m, mo)
        return self.generator(x, s, F0_curve, 2 * flen)


class KokoroTorch(nn.Module):
    """Kokoro-82M (v1.0) inference. Parameter names follow the ``kokoro`` package's KModel."""

    def __init__(self):
        super().__init__()
        self.bert = Albert()
        self.bert_encoder = nn.Linear(768, HIDDEN)
        self.predictor = ProsodyPredictor()
        self.text_encoder = TextEncoder()
        self.decoder = Decoder()

    @property
    def device(self) -> torch.device:
        return self.bert_encoder.weight.device

    @torch.no_grad()
    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, styles: torch.Tensor,
                speeds: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """ids [B, T] (row b: its first ``lengths[b]`` tokens, with the 0 at both ends), styles
        [B, 256], speeds [B] -> (audio [B, S], samples [B], durations [B, T] float frames (0 past a
        row's end), frames [B])."""
        B, T = ids.shape
        m = _mask(lengths, T)                                  # [B, 1, T]
        s_pro, s_dec = styles[:, 128:], styles[:, :128]
        bert = self.bert(ids, m[:, 0])
        d_en = self.bert_encoder(bert).transpose(1, 2) * m
        d = self.predictor.text_encoder(d_en, s_pro, lengths, m)           # [B, T, 640]
        x = _lstm(self.predictor.lstm, d, lengths)
        dur = torch.sigmoid(self.predictor.duration_proj.linear_layer(x)).sum(-1) / speeds[:, None]
        dur = torch.round(dur).clamp(min=1.0) * m[:, 0]                    # [B, T]
        di = dur.to(torch.long)
        flen = di.sum(1)                                                   # frames per row
        Fm = int(flen.max())
        ends = torch.cumsum(di, 1)                                         # [B, T]
        starts = ends - di
        f = torch.arange(Fm, device=ids.device)[None, None, :]
        aln = ((f >= starts[:, :, None]) & (f < ends[:, :, None])).to(torch.float32)   # [B, T, F]
        en = d.transpose(1, 2) @ aln                                       # [B, 640, F]
        mf = _mask(flen, Fm)
        mf2 = _mask(2 * flen, 2 * Fm)
        F0, N = self.predictor.F0Ntrain(en, s_pro, flen, mf, mf2)
        t_en = self.text_encoder(ids, lengths, m)
        asr = t_en @ aln
        audio = self.decoder(asr, F0, N, s_dec, flen, mf, mf2)
        return audio, flen * FRAME_24K, dur, flen

    # ------------------------------------------------------------------ numpy in and out
    def synthesize_batch(self, ids: Sequence[np.ndarray], styles: Sequence[np.ndarray],
                         speeds: Optional[Sequence[float]] = None) -> List[Tuple[np.ndarray, np.ndarray]]:
        """Several renderings in one forward: token ids (kws.enroll.kokoro.tokens), one 256-d style
        and one speed each -> [(audio 24 kHz float32, durations in frames of 600 samples)]."""
        n = len(ids)
        speeds = [1.0] * n if speeds is None else list(speeds)
        T = max(len(i) for i in ids)
        dev = self.device
        x = torch.zeros(n, T, dtype=torch.long)
        for b, i in enumerate(ids):
            x[b, :len(i)] = torch.as_tensor(np.asarray(i, np.int64))
        lengths = torch.tensor([len(i) for i in ids], dtype=torch.long)
        st = torch.as_tensor(np.stack([np.asarray(s, np.float32).reshape(STYLE_DIM) for s in styles]))
        sp = torch.tensor(speeds, dtype=torch.float32)
        audio, samples, dur, _ = self(x.to(dev), lengths.to(dev), st.to(dev), sp.to(dev))
        audio, samples, dur = audio.float().cpu().numpy(), samples.cpu().numpy(), dur.cpu().numpy()
        return [(audio[b, :samples[b]].copy(), dur[b, :len(ids[b])].astype(np.float64)) for b in range(n)]

    def synthesize_timed(self, ids: np.ndarray, style: np.ndarray, speed: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
        """As kws.enroll.kokoro.synthesize_timed: (24 kHz float32 audio, each token's duration in
        frames of 600 samples)."""
        return self.synthesize_batch([ids], [style], [speed])[0]


# ----------------------------------------------------------------------------- weights
def default_path() -> Path:
    from kws.enroll.kokoro import model_path

    return model_path()


def load(onnx_path=None, device="cpu") -> KokoroTorch:
    """Kokoro with the weights of the int8 ONNX file (kws's model file by default), in float32 on
    ``device``, in eval mode. Raises ValueError when a parameter gets no tensor or a tensor of
    the wrong shape, or a weight of the file finds no parameter."""
    from kws.corpus.kokoro_torch_weights import onnx_weights

    weights, src, unused = onnx_weights(onnx_path)
    model = KokoroTorch()
    sd = model.state_dict()
    sd_keys = set(sd) - {"decoder.generator.harmonics"}
    missing = sorted(sd_keys - set(weights))
    extra = sorted(set(weights) - set(sd))
    if missing or extra:
        raise ValueError(f"ONNX weights do not fit: missing {missing[:10]} ({len(missing)}), "
                         f"extra {extra[:10]} ({len(extra)})")
    for k, v in weights.items():
        t = torch.tensor(v)
        if tuple(t.shape) != tuple(sd[k].shape):
            if t.numel() == sd[k].numel():
                t = t.reshape(sd[k].shape)
            else:
                raise ValueError(f"{k}: shape {tuple(t.shape)} from {src[k]}, want {tuple(sd[k].shape)}")
        sd[k] = t
    model.load_state_dict(sd)
    model.unused_initializers = unused
    model.weight_sources = src
    model.int8_inputs = dict(onnx_weights.int8_inputs)
    return model.to(device).eval()
