"""The model's background bank: hours of audio that hold no keyword, as the matcher sees them.

Thresholds are set on it (kws.enroll.thresholds): a keyword's templates are scored along every segment
of the bank exactly as the detector scores a stream, and the highest peaks of those scores say
how often the keyword would fire where nobody says it.

``background.npz`` in the model folder (built by ``python -m export.model``; kws/assets/model):

    codes     (N, D/2) uint8   the vectors in matching space (the model's head applied), unit
                               length, 4 bits a value: two values a byte, low nibble first
    scales    (N,)     float16 each vector's step: value = (code - 7.5) * scale
    segments  (S,)     int64   vectors in each segment (segments lie back to back)
    kinds     (S,)     str     what each segment is: speech, talk, music, tv, babble, noise, ...

4 bits a value keep a keyword's thresholds within about 0.01 of the float vectors' (checked by
tests/test_background.py on a bank of its own) at a quarter of int8's size. The bank holds the
head's vectors, so it belongs to one head: the manifest records the head's sha256 and
:func:`load` refuses a bank of another head. Older model folders (format 3) kept raw front-end
vectors, int8, and applied the head when loaded; those still load.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import numpy as np

from kws.errors import KwsError
from kws.model.head import unit

# kinds of bank segment that hold words someone could say (real read speech, rendered talk, talk
# over music as a television brings it, speech under babble): the false alarms an hour a threshold
# promises are counted per hour of these, since the bank's top peaks come from speech; music,
# noise and crowd babble without a voice in front add peaks, not hours
SPEECH_KINDS = ("speech", "talk", "tv", "speech+babble")

LEVELS = 16                  # 4 bits
_MID = (LEVELS - 1) / 2.0    # codes 0..15 stand for -7.5 .. +7.5 steps


class BackgroundError(KwsError, RuntimeError):
    """A background bank that cannot be used with this model."""


def encode(vectors: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(N, D) float vectors (D even) -> (codes (N, D/2) uint8, scales (N,) float16)."""
    v = np.asarray(vectors, np.float32)
    if v.ndim != 2 or v.shape[1] % 2:
        raise ValueError("encode needs (N, D) vectors with D even")
    scale = (np.abs(v).max(axis=1) / _MID).astype(np.float16)
    s = np.maximum(scale.astype(np.float32), 1e-8)[:, None]
    q = np.clip(np.round(v / s + _MID), 0, LEVELS - 1).astype(np.uint8)
    return (q[:, 0::2] | (q[:, 1::2] << 4)).astype(np.uint8), scale


# each byte's two values, (low nibble - 7.5, high nibble - 7.5): exact in float32
_PAIRS = np.stack([(np.arange(256) & 0x0F) - _MID, (np.arange(256) >> 4) - _MID], axis=1).astype(np.float32)


def decode(codes: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode`: (N, D) float32. One table look-up per byte (both its values at
    once), then the scale: the same numbers as unpacking the nibbles and computing
    ``(code - 7.5) * scale``, faster (the bank's half a million vectors are decoded at every
    enrollment)."""
    c = np.asarray(codes, np.uint8)
    v = _PAIRS[c].reshape(c.shape[0], c.shape[1] * 2)
    v *= np.asarray(scales, np.float32)[:, None]
    return v


def unit_rows(v: np.ndarray) -> np.ndarray:
    """kws.model.head.unit in place (float32 ``v``), the lengths by one pass of dot products:
    equal to it up to float rounding (a few 1e-7), without the bank's temporary copies."""
    n = np.sqrt(np.einsum("ij,ij->i", v, v))
    v /= np.maximum(n, 1e-12)[:, None]
    return v


@dataclass(frozen=True)
class Background:
    """The bank in matching space: ``vectors`` (N, D) unit rows, ``segments`` back to back.

    Made from the vectors (``Background(vectors, segments, kinds, hours)``) or, as :func:`load`
    makes it, from the 4-bit codes (:meth:`coded`): then the vectors are decoded only where they
    are read, a run at a time (:meth:`rows`; a threshold scores the bank run by run, kws.enroll.thresholds),
    or all at once the first time ``vectors`` is read. Either way the same numbers."""

    _vectors: Optional[np.ndarray]
    segments: np.ndarray
    kinds: Tuple[str, ...]
    hours: float
    _codes: Optional[np.ndarray] = None
    _scales: Optional[np.ndarray] = None
    _decoded: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def coded(cls, codes: np.ndarray, scales: np.ndarray, segments: np.ndarray, kinds: Tuple[str, ...],
              hours: float) -> "Background":
        """A bank held as :func:`encode` made it (decoded where read)."""
        return cls(None, segments, kinds, hours, np.asarray(codes, np.uint8), np.asarray(scales))

    @property
    def size(self) -> int:
        """Vectors in the bank."""
        return int(self._vectors.shape[0] if self._vectors is not None else self._codes.shape[0])

    @property
    def vectors(self) -> np.ndarray:
        if self._vectors is not None:
            return self._vectors
        if "all" not in self._decoded:
            self._decoded["all"] = self.rows(0, self.size)
        return self._decoded["all"]

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Vectors ``[start, stop)`` (unit rows, float32), decoded now where the bank is coded."""
        if self._vectors is not None:
            return self._vectors[start:stop]
        if "all" in self._decoded:
            return self._decoded["all"][start:stop]
        return unit_rows(decode(self._codes[start:stop], self._scales[start:stop]))

    def split(self) -> List[np.ndarray]:
        return np.split(self.vectors, np.cumsum(self.segments)[:-1])

    def segment_kinds(self) -> Iterator[Tuple[str, np.ndarray]]:
        return zip(self.kinds, self.split())

    def speech_hours(self) -> float:
        """Hours of the segments that hold speech (:data:`SPEECH_KINDS`): what a false-alarm rate
        is counted against (kws.enroll.thresholds). All the hours when no segment says it holds
        speech (a bank of other kinds only)."""
        h = sum(v for k, v in self.hours_by_kind().items() if k in SPEECH_KINDS)
        return float(h) if h > 0 else float(self.hours)

    def hours_by_kind(self) -> dict:
        out: dict = {}
        for k, n in zip(self.kinds, self.segments):
            out[k] = out.get(k, 0.0) + float(n) * 0.08 / 3600
        return out


def load(model) -> Background:
    """The bank of ``model`` (kws.model.model.Model) in its matching space."""
    path = Path(model.background_file)
    try:
        z = np.load(path)
        segments = z["segments"].astype(np.int64)
        kinds = tuple(str(k) for k in z["kinds"])
        if "codes" in z.files:
            meta = model.manifest.get("background", {})
            want = meta.get("head_sha256")
            have = model.manifest.get("files", {}).get("head.onnx", {}).get("sha256")
            if want is not None and have is not None and want != have:
                raise BackgroundError(f"{path}: the background bank was made for another head; rebuild it "
                                      f"(python -m export.model --out {path.parent})")
            codes, scales = z["codes"], z["scales"]
            if codes.ndim != 2 or scales.shape != (codes.shape[0],):
                raise ValueError(f"codes {codes.shape} and scales {scales.shape} do not fit")
            n = codes.shape[0]
            if int(segments.sum()) != n:
                raise BackgroundError(f"{path}: segments hold {int(segments.sum())} vectors, the bank {n}")
            return Background.coded(codes, scales, segments, kinds, float(segments.sum()) * 0.08 / 3600)
        else:                                    # format 3: raw front-end vectors, int8
            raw = z["vectors"].astype(np.float32) * z["scales"].astype(np.float32)[:, None]
            head = model.head
            if head.context == 1:
                vec = head(raw)
            else:                                # a head with context runs on each segment from its start
                vec = np.concatenate([head(s) for s in np.split(raw, np.cumsum(segments)[:-1])])
            vec = unit(vec)
    except (OSError, KeyError, ValueError) as exc:
        raise BackgroundError(f"{path}: the model's background bank cannot be read ({exc})") from None
    if int(segments.sum()) != vec.shape[0]:
        raise BackgroundError(f"{path}: segments hold {int(segments.sum())} vectors, the bank {vec.shape[0]}")
    return Background(vec, segments, kinds, float(segments.sum()) * 0.08 / 3600)


def save(path: Path, vectors: np.ndarray, segments, kinds) -> None:
    """Write a bank of matching-space vectors (unit rows) as :func:`load` reads it."""
    codes, scales = encode(vectors)
    np.savez_compressed(path, codes=codes, scales=scales, segments=np.asarray(segments, np.int64),
             kinds=np.array(list(kinds)))
