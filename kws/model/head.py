"""The model's head: raw front-end vectors -> the vectors templates are matched in.

A model may carry a small learned network on top of the frozen speech-embedding front end
(trained for noise, rooms and running speech; docs/model.md). Its ONNX graph reads a batch of
raw 96-d vector sequences, ``vectors`` [B, T, 96], and writes ``out`` [B, T - C + 1, D]: output
``j`` is computed from inputs ``j .. j + C - 1`` (``C`` = the head's context, causal, so a
vector's output is ready as soon as the vector is). Before the first input, the sequence is taken
to repeat its first vector, so every input vector has an output, offline and streaming alike.

A model without a head matches the raw vectors (:class:`Identity`). Both give unit vectors.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import numpy as np


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32)."""
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class Identity:
    context = 1

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        return unit(vectors)

    def stream(self) -> "HeadStream":
        return HeadStream(self)

    def batch(self, padded: np.ndarray) -> np.ndarray:
        return padded


class Head:
    """An ONNX head with ``context`` input vectors per output."""

    def __init__(self, path: Union[str, os.PathLike], context: int, threads: Optional[int] = None):
        if context < 1:
            raise ValueError("a head's context is at least 1 vector")
        self.path = Path(path)
        self.context = int(context)
        self._threads = threads

    def _session(self):
        from kws.model.backbone import _session

        return _session(str(self.path), self._threads)

    def batch(self, padded: np.ndarray) -> np.ndarray:
        """(T + C - 1, 96) already padded -> (T, D) raw outputs."""
        return self._session().run(None, {"vectors": np.ascontiguousarray(padded[None], np.float32)})[0][0]

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        """(T, 96) raw vectors of a whole recording -> (T, D) unit vectors."""
        v = np.asarray(vectors, np.float32)
        if v.shape[0] == 0:
            return np.zeros((0, v.shape[1] if v.ndim == 2 else 0), np.float32)
        pad = np.repeat(v[:1], self.context - 1, axis=0)
        return unit(self.batch(np.concatenate([pad, v])))

    def stream(self) -> "HeadStream":
        return HeadStream(self)


class HeadStream:
    """Push raw vectors as they come, get their head outputs (the offline call's)."""

    def __init__(self, head):
        self.head = head
        self._hist: Optional[np.ndarray] = None

    def reset(self) -> None:
        self._hist = None

    def push(self, vectors: np.ndarray) -> np.ndarray:
        v = np.asarray(vectors, np.float32)
        c = self.head.context
        if v.shape[0] == 0 or c == 1:
            return self.head(v) if v.shape[0] else unit(v)
        if self._hist is None:
            self._hist = np.repeat(v[:1], c - 1, axis=0)
        x = np.concatenate([self._hist, v])
        self._hist = x[-(c - 1):]
        return unit(self.head.batch(x))
