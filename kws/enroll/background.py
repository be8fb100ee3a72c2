"""The model's background bank: hours of audio that hold no keyword, as the matcher sees them.

Thresholds are set on it (kws.enroll.thresholds): a keyword's templates are scored along every segment
of the bank exactly as the detector scores a stream, and the highest peaks of those scores say
how often the keyword would fire where nobody says it.

``background.npz`` in the model folder (built by ``python -m export.model``; kws/assets/model),
manifest ``background.encoding`` "pca-uniform":

    codes     (K, N) int8     each vector's first K principal-component coordinates, in steps:
                              coordinate = code * step. One row a component: a component's codes lie
                              together, which is what deflate (np.savez_compressed) packs best
    mean      (D,)   float32  the bank's mean vector
    basis     (D, K) float32  the principal directions (orthonormal columns), fitted on the bank
    step      ()     float32  the quantiser's step, the same for every component (:data:`STEP`)
    segments  (S,)   int64    vectors in each segment (segments lie back to back)
    kinds     (S,)   str      what each segment is: speech, talk, music, tv, babble, noise, ...

A vector is ``mean + basis @ (codes * step)``, **not** made unit length again. The vectors are
the head's unit vectors (matching space); rounding adds noise of at most half a step to each
coordinate, independent of the vector, so a template's dot product with a decoded vector is the
true one plus zero-mean noise (less what the components rounded to 0 held), and the decoded
vectors come out a little longer than 1 (1.012 on average for the 10.73 h bank of the model
tpl-1652d7b068c2). Dividing by that length would lower every score near a peak by about the
score times half the noise's energy, and the thresholds with it: for the 43 typed keywords of
``python benchmarks/bank_coding.py`` the same codes made unit length put the thresholds 0.0071
below the float32 bank's on average; left as decoded, 0.0008 below (0.0023 at most; the int4
format: 0.0032 below, 0.0049 at most). One step for every component is the allocation that
costs fewest bits for the noise once the codes are entropy-coded (reverse water filling: a
component of less spread gets fewer distinct codes, so deflate gives it fewer bits, and one under
half a step gets none: its codes are all 0, and after the last component with a code other than 0
none is kept). At step 0.06 that bank takes 13.9 MB compressed (28.8 bytes a vector), against
26.2 MB in the int4 format, and decodes faster (one int8 to float32 conversion and one matrix
product a run).

The format before it (manifest ``encoding`` "int4") still loads: ``codes`` (N, D/2) uint8, 4
bits a value, two values a byte, low nibble first, and ``scales`` (N,) float16, each vector's
step: value = (code - 7.5) * scale, made unit length again (:func:`encode`, :func:`decode`; as
those banks always were, so their thresholds stay where they were). The bank holds the head's
vectors, so it belongs to one head: the manifest records the head's sha256 and :func:`load`
refuses a bank of another head. Older model folders (format 3) kept raw front-end vectors, int8,
and applied the head when loaded; those still load.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, NamedTuple, Optional, Tuple, Union

import numpy as np

from kws.errors import KwsError
from kws.model.head import unit

# kinds of bank segment that hold words someone could say (real read speech, rendered talk, talk
# over music as a television brings it, speech under babble): the false alarms an hour a threshold
# promises are counted per hour of these, since the bank's top peaks come from speech; music,
# noise and crowd babble without a voice in front add peaks, not hours
SPEECH_KINDS = ("speech", "talk", "tv", "speech+babble")

ENCODING = "pca-uniform"     # the manifest's background.encoding of what :func:`save` writes
STEP = 0.06                  # the step of every principal-component coordinate (unit vectors)

LEVELS = 16                  # the int4 format: 4 bits
_MID = (LEVELS - 1) / 2.0    # codes 0..15 stand for -7.5 .. +7.5 steps


class BackgroundError(KwsError, RuntimeError):
    """A background bank that cannot be used with this model."""


def principal_components(vectors: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(mean (D,) float32, basis (D, D) float32) of (N, D) vectors: the columns of ``basis`` are
    their covariance's eigenvectors, the largest variance first, each with its largest entry
    positive (the same vectors give the same basis)."""
    v = np.asarray(vectors, np.float32)
    if v.ndim != 2 or v.shape[0] == 0:
        raise ValueError("principal components need (N, D) vectors, N > 0")
    mean = v.mean(axis=0, dtype=np.float64)
    c = (v - mean.astype(np.float32)).astype(np.float64)
    _, vecs = np.linalg.eigh(c.T @ c / v.shape[0])
    basis = vecs[:, ::-1]
    basis = basis * np.where(basis[np.abs(basis).argmax(axis=0), np.arange(basis.shape[1])] < 0, -1.0, 1.0)
    return mean.astype(np.float32), np.ascontiguousarray(basis, np.float32)


def encode_components(vectors: np.ndarray, step: float = STEP) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, D) unit vectors -> (codes (K, N) int8, mean (D,) float32, basis (D, K) float32): the
    coordinates along the vectors' own principal directions (:func:`principal_components`),
    rounded to multiples of ``step``. Components after the last one with a code other than 0 are
    not kept. Deterministic: the same vectors give the same arrays."""
    v = np.asarray(vectors, np.float32)
    mean, basis = principal_components(v)
    y = np.round(((v - mean) @ basis) / np.float32(step))
    codes = np.clip(y, -127, 127).astype(np.int8).T
    used = np.nonzero(np.any(codes != 0, axis=1))[0]
    k = int(used[-1]) + 1 if used.size else 1
    return np.ascontiguousarray(codes[:k]), mean, np.ascontiguousarray(basis[:, :k])


def decode_components(codes: np.ndarray, mean: np.ndarray, basis: np.ndarray, step: float) -> np.ndarray:
    """Inverse of :func:`encode_components` for ``codes`` (K, n): (n, D) float32, ``mean + basis @
    (codes * step)`` a vector, not made unit length again (see the module's docstring)."""
    m = (np.asarray(basis, np.float32) * np.float32(step)).T
    v = np.asarray(codes).astype(np.float32).T @ m
    v += np.asarray(mean, np.float32)
    return v


def encode(vectors: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The int4 format: (N, D) float vectors (D even) -> (codes (N, D/2) uint8, scales (N,) float16)."""
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


class Int4Codes(NamedTuple):
    """A bank in the int4 format (:func:`encode`): decoded to unit rows."""

    codes: np.ndarray            # (N, D/2) uint8
    scales: np.ndarray           # (N,) float16

    @property
    def size(self) -> int:
        return int(self.codes.shape[0])

    def rows(self, start: int, stop: int) -> np.ndarray:
        return unit_rows(decode(self.codes[start:stop], self.scales[start:stop]))


class ComponentCodes(NamedTuple):
    """A bank as :func:`encode_components` codes it (the format :func:`save` writes)."""

    codes: np.ndarray            # (K, N) int8
    mean: np.ndarray             # (D,) float32
    basis: np.ndarray            # (D, K) float32
    step: float

    @property
    def size(self) -> int:
        return int(self.codes.shape[1])

    def rows(self, start: int, stop: int) -> np.ndarray:
        return decode_components(self.codes[:, start:stop], self.mean, self.basis, self.step)


@dataclass(frozen=True)
class Background:
    """The bank in matching space: ``vectors`` (N, D) rows, ``segments`` back to back.

    Made from the vectors (``Background(vectors, segments, kinds, hours)``; unit rows) or, as
    :func:`load` makes it, from the codes (:meth:`coded`; rows of about unit length, see the
    module's docstring): then the vectors are decoded only where they are read, a run at a time
    (:meth:`rows`; a threshold scores the bank run by run, kws.enroll.thresholds), or all at once
    the first time ``vectors`` is read. Either way the same numbers."""

    _vectors: Optional[np.ndarray]
    segments: np.ndarray
    kinds: Tuple[str, ...]
    hours: float
    _codes: Optional[Union[ComponentCodes, Int4Codes]] = None
    _decoded: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def coded(cls, codes: Union[ComponentCodes, Int4Codes], segments: np.ndarray, kinds: Tuple[str, ...],
              hours: float) -> "Background":
        """A bank held as its codes (decoded where read)."""
        return cls(None, segments, kinds, hours, codes)

    @property
    def size(self) -> int:
        """Vectors in the bank."""
        return int(self._vectors.shape[0] if self._vectors is not None else self._codes.size)

    @property
    def vectors(self) -> np.ndarray:
        if self._vectors is not None:
            return self._vectors
        if "all" not in self._decoded:
            self._decoded["all"] = self.rows(0, self.size)
        return self._decoded["all"]

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Vectors ``[start, stop)`` (float32), decoded now where the bank is coded."""
        if self._vectors is not None:
            return self._vectors[start:stop]
        if "all" in self._decoded:
            return self._decoded["all"][start:stop]
        return self._codes.rows(start, stop)

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
            codes: Union[ComponentCodes, Int4Codes]
            if "basis" in z.files:               # pca-uniform
                c, mean, basis = z["codes"], z["mean"].astype(np.float32), z["basis"].astype(np.float32)
                if c.ndim != 2 or basis.shape != (mean.shape[0], c.shape[0]):
                    raise ValueError(f"codes {c.shape}, mean {mean.shape} and basis {basis.shape} do not fit")
                codes = ComponentCodes(c.astype(np.int8, copy=False), mean, basis, float(z["step"]))
            else:                                # int4
                c, scales = z["codes"], z["scales"]
                if c.ndim != 2 or scales.shape != (c.shape[0],):
                    raise ValueError(f"codes {c.shape} and scales {scales.shape} do not fit")
                codes = Int4Codes(np.asarray(c, np.uint8), np.asarray(scales))
            n = codes.size
            if int(segments.sum()) != n:
                raise BackgroundError(f"{path}: segments hold {int(segments.sum())} vectors, the bank {n}")
            return Background.coded(codes, segments, kinds, float(segments.sum()) * 0.08 / 3600)
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


def save(path: Path, vectors: np.ndarray, segments, kinds, step: float = STEP) -> None:
    """Write a bank of matching-space vectors (unit rows) as :func:`load` reads it, coded as
    :func:`encode_components` codes it (manifest ``encoding`` :data:`ENCODING`)."""
    codes, mean, basis = encode_components(vectors, step)
    savez_deflate(path, codes=codes, mean=mean, basis=basis, step=np.float32(step),
                  segments=np.asarray(segments, np.int64), kinds=np.array(list(kinds)))


def savez_deflate(path: Path, level: int = 9, **arrays) -> None:
    """``np.savez_compressed`` at deflate's highest level (numpy's is zlib's default, 6): the
    shipped bank packs 5 % smaller (13.92 -> 13.27 MB), read by ``np.load`` as before."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for name, a in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(a), allow_pickle=False)
