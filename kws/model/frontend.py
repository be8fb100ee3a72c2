"""The model's front end: 16 kHz audio -> speech-embedding vectors, offline and streaming, and
where each vector lies in the audio.

The front end is the frozen speech-embedding backbone (kws.model.backbone): one 96-d vector every 1280
samples (80 ms) over 12512 samples (0.782 s). Vector ``f`` sees samples ``[f * hop, f * hop +
span)``; vectors ``[a, b)`` see samples ``[a * hop, (b - 1) * hop + span)``.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

SAMPLE_RATE = 16000


class BackboneFrontend:
    kind = "speech_embedding"

    def __init__(self, network, constants, step=None):
        from kws.model.backbone import DIM, VEC_HOP, VEC_SPAN, Backbone, BackboneFiles

        # step: the network's step graph (backbone_step.onnx) streams use, or None: whole windows
        self._bb = Backbone(BackboneFiles(network, constants, step))
        self.dim = DIM              # values in a vector
        self.hop = VEC_HOP          # samples from one vector to the next
        self.span = VEC_SPAN        # samples one vector sees

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """(T, 96) vectors of a whole recording."""
        return self._bb(audio)

    def stream(self):
        """A kws.model.backbone.StreamingBackbone: ``push(chunk)`` gives the vectors a chunk completes."""
        from kws.model.backbone import StreamingBackbone

        return StreamingBackbone(self._bb)

    def samples(self, first: int, stop: int) -> Tuple[int, int]:
        """Samples [start, end) seen by vectors [first, stop)."""
        return first * self.hop, (stop - 1) * self.hop + self.span
