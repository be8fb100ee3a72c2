"""Torch twin of :mod:`kws.model.backbone` for training: the frozen speech-embedding front end on the GPU.

Built from the same files the model ships (``backbone.onnx``, ``backbone_mel.npz``), so training
sees exactly the vectors the run-time front end computes (tested). Waveforms in, vectors out,
batched, so augmentation can happen on the waveform before it.
"""
from __future__ import annotations

from typing import List

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kws.model.backbone import (CONTEXT, LOG_FLOOR, MEL_HOP, MEL_WIN, PCM_SCALE, STRIDE, VEC_HOP,
                          BackboneFiles)


class _Act(nn.Module):
    """LeakyReLU(0.2) then max(x, -0.4), as the network's graph has it."""

    def __init__(self, alpha: float, floor: float):
        super().__init__()
        self.alpha, self.floor = alpha, floor

    def forward(self, x):
        return torch.clamp(F.leaky_relu(x, self.alpha), min=self.floor)


def network_from_onnx(path: str) -> nn.Sequential:
    """The conv stack of backbone.onnx as torch modules (weights copied, frozen)."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(path)
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    layers: List[nn.Module] = []
    nodes = list(m.graph.node)
    i = 0
    while i < len(nodes):
        n = nodes[i]
        at = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type == "Conv":
            w = init[n.input[1]]
            b = init[n.input[2]] if len(n.input) > 2 else None
            pads = list(at.get("pads", [0, 0, 0, 0]))
            if pads[0] != pads[2] or pads[1] != pads[3]:
                raise ValueError(f"asymmetric padding {pads} not supported")
            conv = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]), padding=(pads[0], pads[1]),
                             bias=b is not None)
            conv.weight.data = torch.from_numpy(w.copy())
            if b is not None:
                conv.bias.data = torch.from_numpy(b.copy())
            layers.append(conv)
        elif n.op_type == "LeakyRelu":
            nxt = nodes[i + 1]
            if nxt.op_type != "Max":
                raise ValueError("expected Max after LeakyRelu")
            floor = float(init[nxt.input[1]].reshape(-1)[0])
            layers.append(_Act(float(at["alpha"]), floor))
            i += 1
        elif n.op_type == "MaxPool":
            layers.append(nn.MaxPool2d(tuple(at["kernel_shape"]), tuple(at["strides"])))
        elif n.op_type in ("Unsqueeze", "Squeeze", "Transpose"):
            pass
        else:
            raise ValueError(f"unexpected op {n.op_type} in {path}")
        i += 1
    net = nn.Sequential(*layers)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class TorchBackbone(nn.Module):
    """(B, samples) waveforms in [-1, 1] -> (B, vectors, 96); vector j sees samples
    [1280 j, 1280 j + 12512), as in kws.model.backbone."""

    def __init__(self, files: BackboneFiles):
        super().__init__()
        c = np.load(files.constants)
        n = np.arange(MEL_WIN)
        k = np.arange(MEL_WIN // 2 + 1)[:, None]
        win = c["window"].astype(np.float64) * PCM_SCALE
        # the STFT as one matrix: [cos | sin] rows for each bin, window folded in
        basis = np.concatenate([win * np.cos(2 * np.pi * k * n / MEL_WIN),
                                win * np.sin(2 * np.pi * k * n / MEL_WIN)]).astype(np.float32)
        self.register_buffer("basis", torch.from_numpy(basis.T.copy()), persistent=False)   # (512, 514)
        self.register_buffer("melW", torch.from_numpy(c["melW"].astype(np.float32)), persistent=False)
        self.net = network_from_onnx(str(files.network))
        self.net.eval()

    def train(self, mode: bool = True):          # frozen: always in eval mode
        return super().train(False)

    def mel(self, wav: torch.Tensor) -> torch.Tensor:
        frames = wav.float().unfold(-1, MEL_WIN, MEL_HOP)                   # (B, T, 512)
        spec = frames @ self.basis                                          # (B, T, 514)
        half = spec.shape[-1] // 2
        power = spec[..., :half].square() + spec[..., half:].square()
        return torch.log10(torch.clamp(power @ self.melW, min=LOG_FLOOR)) + 2.0

    def vectors_from_mel(self, mel: torch.Tensor) -> torch.Tensor:
        y = self.net(mel.unsqueeze(1))                                      # (B, 96, T', 1)
        return y.squeeze(3).transpose(1, 2)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.vectors_from_mel(self.mel(wav))

    @staticmethod
    def vectors_for(n_samples: torch.Tensor) -> torch.Tensor:
        frames = torch.clamp((n_samples - MEL_WIN) // MEL_HOP + 1, min=0)
        return torch.clamp((frames - CONTEXT) // STRIDE + 1, min=0)


__all__ = ["TorchBackbone", "network_from_onnx", "VEC_HOP"]
