"""Audio front ends: 16 kHz audio -> feature frames, offline and streaming, with their geometry.

A model bundle names its front end; everything that cuts windows (the detector, offline scoring,
search) asks it how frames map to samples instead of assuming 10 ms log-mel frames:

- ``logmel``: 128-bin log-mel, one frame every 160 samples (10 ms) over 400 samples (kws.features);
  bundles of format 1 (models up to v1.1);
- ``speech_embedding``: the frozen speech-embedding backbone (kws.backbone), one 96-d vector every
  1280 samples (80 ms) over 12512 samples (0.782 s); bundles of format 2.

Frame ``f`` sees samples ``[f * hop, f * hop + span)``; a window of frames ``[a, b)`` sees samples
``[a * hop, (b - 1) * hop + span)``.
"""
from __future__ import annotations

from typing import Protocol, Tuple

import numpy as np

SAMPLE_RATE = 16000


class FrameStream(Protocol):
    def push(self, chunk: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None: ...


class Frontend:
    """Interface and shared geometry; see LogMelFrontend and BackboneFrontend."""

    kind: str = ""
    dim: int = 0
    hop: int = 1              # samples between frames
    span: int = 1             # samples seen by one frame
    clip_pad_s: Tuple[float, float] = (0.0, 0.0)    # silence around a clip embedded whole

    def frames(self, audio: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def stream(self) -> FrameStream:
        raise NotImplementedError

    def count(self, n_samples: int) -> int:
        """Frames of a recording of ``n_samples``."""
        return 0 if n_samples < self.span else 1 + (n_samples - self.span) // self.hop

    def samples(self, first: int, stop: int) -> Tuple[int, int]:
        """Samples [start, end) seen by frames [first, stop)."""
        return first * self.hop, (stop - 1) * self.hop + self.span

    def word_times(self, first: int, stop: int) -> Tuple[float, float]:
        """Where, in seconds, the word a window of frames [first, stop) matched lies."""
        a, b = self.samples(first, stop)
        return a / SAMPLE_RATE, b / SAMPLE_RATE

    def clip_frames(self, audio: np.ndarray) -> np.ndarray:
        """Frames of a clip holding one word, padded with silence as the encoder expects; at least
        one frame."""
        left, right = (int(s * SAMPLE_RATE) for s in self.clip_pad_s)
        x = np.concatenate([np.zeros(left, np.float32), np.asarray(audio, np.float32).reshape(-1),
                            np.zeros(right, np.float32)])
        if x.size < self.span:
            x = np.concatenate([x, np.zeros(self.span - x.size, np.float32)])
        return self.frames(x)


class LogMelFrontend(Frontend):
    kind = "logmel"

    def __init__(self):
        from kws.features import LogMel, MelConfig

        self._cfg = MelConfig()
        self._logmel = LogMel(self._cfg)
        self.dim = self._cfg.n_mels
        self.hop = self._cfg.hop_length
        self.span = self._cfg.win_length

    def frames(self, audio: np.ndarray) -> np.ndarray:
        return self._logmel(np.asarray(audio, np.float32).reshape(-1))

    def stream(self) -> FrameStream:
        from kws.features import StreamingLogMel

        return StreamingLogMel(self._cfg)


class BackboneFrontend(Frontend):
    kind = "speech_embedding"
    # a window's first vector's field ends just after the word starts, its last one just after
    # it ends (kws.train.context): clips are padded to that shape, and word times read from it
    clip_pad_s = (0.6, 0.25)
    LAG_S = 0.1

    def __init__(self, network, constants):
        from kws.backbone import DIM, VEC_HOP, VEC_SPAN, Backbone, BackboneFiles

        self._bb = Backbone(BackboneFiles(network, constants))
        self.dim, self.hop, self.span = DIM, VEC_HOP, VEC_SPAN

    def frames(self, audio: np.ndarray) -> np.ndarray:
        return self._bb(audio)

    def stream(self) -> FrameStream:
        from kws.backbone import StreamingBackbone

        return StreamingBackbone(self._bb)

    def word_times(self, first: int, stop: int) -> Tuple[float, float]:
        ends = [(f * self.hop + self.span) / SAMPLE_RATE - self.LAG_S for f in (first, stop - 1)]
        return max(0.0, ends[0] - 0.1), max(ends[0], ends[1])
