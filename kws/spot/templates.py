"""Keyword templates and how the stream is matched against them.

A **template** is one utterance of a keyword as the front end hears it: the sequence of vectors
(one every 80 ms, kws.model.backbone, through the model's head if it has one) of a Kokoro rendering
of the typed keyword (kws.enroll.kokoro) or of a user's recording. A keyword holds several: one per
voice, one per recording.

A template is cut from its utterance (:func:`source_vectors`, :func:`cut`): the sound, trimmed of
silence, is padded with ``pad_s`` of silence on both sides, run through the front end, and
``trim`` vectors are dropped at each end; what is left are the vectors that hear the word and the
silence just around it. Both are the model's (its manifest's ``templates``; kws.model.model), defaults
``PAD_S`` and ``TRIM``.

**Score.** Template ``T`` (``L`` unit vectors) scored at stream vector ``e``: the mean cosine
along the diagonal, ``s = (1/L) * sum_j cos(T[j], x[e - L + 1 + j])`` (-1 until it fits in the
stream). A keyword's score at ``e`` combines its templates' (:func:`combine`): the best of them, or,
in a model whose manifest sets ``templates.soft_max`` (``t``), their soft maximum
``m + log(mean_i exp(t * (s_i - m))) / t`` (``m`` the best): a stretch that several voices'
templates match scores higher than one that a single template matches (docs/evaluation.md
measures it). :class:`Matcher` keeps
the dot products of the last ``Lmax`` stream vectors with every template row, so each new
vector costs one matrix-vector product over all templates of all keywords and a gather: the same
numbers for the stream, whatever its chunking, and for a whole recording (:meth:`Matcher.scores`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

from kws.audio.io import SAMPLE_RATE, trim_silence
from kws.errors import KwsError
from kws.model.head import unit

PAD_S = 0.6           # silence around an utterance before the front end
TRIM = 2              # vectors dropped at each end of the padded utterance
MIN_LENGTH = 3        # shortest template (vectors)
MAX_LENGTH = 40       # longest template (3.2 s of vectors)
TRIM_TOP_DB = 40.0    # silence trimming of renderings and recordings


class TemplateError(KwsError, ValueError):
    """An utterance that cannot give a template (too short, too long, silent)."""


def source_vectors(frames, audio: np.ndarray, trim: bool = True, pad_s: float = PAD_S) -> np.ndarray:
    """Front-end vectors of one utterance: trimmed of silence (``trim``), padded with ``pad_s``
    of silence on both sides. ``frames`` maps 16 kHz audio to (n, D) vectors (a front end's
    ``frames``, or the model's ``vectors``). Every utterance or clip kws pads before the front end
    goes through here: templates, clips scored whole (kws.spot.detector.Detector.best_scores,
    kws.enroll.build.own_scores) and search's rows and templates (kws.search.rows)."""
    x = np.asarray(audio, np.float32).reshape(-1)
    if trim:
        x = trim_silence(x, top_db=TRIM_TOP_DB, margin_s=0.0)
    pad = np.zeros(int(round(pad_s * SAMPLE_RATE)), np.float32)
    return frames(np.concatenate([pad, x, pad]))


def cut(n_vectors: int, trim: int = TRIM, trim_end: Optional[int] = None) -> Tuple[int, int]:
    """The template's [start, stop) within the ``n_vectors`` of a padded utterance: ``trim``
    vectors dropped at its start, ``trim_end`` (default ``trim``) at its end. Fewer vectors of
    silence at the end make the template's score peak sooner after the word (an event's delay)."""
    return trim, n_vectors - (trim if trim_end is None else trim_end)


ROOM_TAIL_S = 0.25    # of a room copy's reverberation kept after the word


def room_copy(audio: np.ndarray, rir: np.ndarray, tail_s: float = ROOM_TAIL_S) -> np.ndarray:
    """An utterance as a room gives it back: trimmed of silence, convolved with the room's
    impulse response ``rir`` (16 kHz, starting at the direct path), kept to ``tail_s``
    after the word and scaled to the utterance's peak. Typed keywords add one per rendering when
    the model ships rooms (its manifest's ``templates.rooms``; kws.enroll.build): templates that
    already hear a room match reverberant speech better."""
    x = trim_silence(np.asarray(audio, np.float32).reshape(-1), top_db=TRIM_TOP_DB, margin_s=0.0)
    h = np.asarray(rir, np.float32).reshape(-1)
    if x.size == 0 or h.size == 0:
        return x
    n = x.size + h.size - 1
    size = 1 << (n - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[: x.size + int(tail_s * SAMPLE_RATE)]
    peak = float(np.abs(y).max())
    return (y * (float(np.abs(x).max()) / peak if peak > 0 else 0.0)).astype(np.float32)


def room_origin(origin: str) -> str:
    """The origin of a room copy of the utterance ``origin``: ``kokoro:af_sarah+room``."""
    return f"{origin}+room"


def utterance_of(origin: str) -> str:
    """The utterance a template's origin comes from: a room copy's (:func:`room_origin`)
    is its rendering's (``kokoro:af_sarah``); leaving a voice out leaves out its copies too."""
    return origin.split("+", 1)[0]


def check_length(length: int, name: str = "the utterance") -> None:
    if length < MIN_LENGTH:
        raise TemplateError(f"{name} holds too little sound to make a template ({length} vector(s) of "
                            f"80 ms once padded and cut, at least {MIN_LENGTH}): record the whole keyword")
    if length > MAX_LENGTH:
        raise TemplateError(f"{name} is too long for a template: {length * 0.08:.1f} s of speech, at "
                            f"most {MAX_LENGTH * 0.08:.1f} s")


def keyword_templates(model, kw) -> List[np.ndarray]:
    """A keyword's templates in the model's matching space: each of its utterances
    (kws.enroll.store.Keyword.utterances) through the model's head, then :func:`cut`."""
    out = []
    for u in kw.utterances():
        v = model.head(u)
        a, b = cut(v.shape[0], model.trim, model.trim_end)
        out.append(v[a:b] if b > a else v)
    return out


def check_soft_max(soft_max: float) -> float:
    """A soft maximum's sharpness (a model's ``templates.soft_max``), checked: a finite number
    >= 0 (0: a keyword scores its best template's score)."""
    if not (np.isfinite(soft_max) and soft_max >= 0):
        raise ValueError(f"soft_max must be a finite number >= 0, not {soft_max!r}")
    return float(soft_max)


def combine(scores: np.ndarray, soft_max: float = 0.0) -> np.ndarray:
    """(..., T) scores of one keyword's T templates -> (...) the keyword's score: the best of them
    (``soft_max`` 0), or their soft maximum ``m + log(mean(exp(soft_max * (s - m)))) / soft_max``
    (``m`` the best), which lies between the mean and the best. ``-inf`` entries are no template
    (left out of the mean)."""
    s = np.asarray(scores, np.float32)
    m = s.max(axis=-1)
    if not soft_max:
        return m
    t = float(soft_max)
    have = np.isfinite(s)
    e = np.where(have, np.exp(t * (np.where(have, s, 0.0) - m[..., None])), 0.0)
    return (m + np.log(e.sum(axis=-1) / np.maximum(have.sum(axis=-1), 1)) / t).astype(np.float32)


@dataclass(frozen=True)
class TemplateBank:
    """Every template of K keywords, stacked for matching.

    ``rows`` (R, D): all template vectors, unit length; template ``t`` is
    ``rows[start[t]:start[t] + length[t]]`` and belongs to keyword ``owner[t]``; ``soft_max``: how
    a keyword's score combines its templates' (:func:`combine`; the model's ``soft_max``)."""

    rows: np.ndarray
    start: np.ndarray
    length: np.ndarray
    owner: np.ndarray
    keywords: int
    soft_max: float = 0.0

    @classmethod
    def build(cls, templates: Sequence[Sequence[np.ndarray]], soft_max: float = 0.0) -> "TemplateBank":
        """``templates[k]``: keyword k's templates, each (L, D); ``soft_max``: the model's
        (kws.model.model.Model.soft_max; 0: a keyword scores its best template's score)."""
        soft_max = check_soft_max(soft_max)
        rows, start, length, owner = [], [], [], []
        pos = 0
        for k, ts in enumerate(templates):
            if not len(ts):
                raise TemplateError(f"keyword {k} has no template")
            for t in ts:
                t = unit(t)
                if t.ndim != 2 or t.shape[0] < 1:
                    raise TemplateError("a template must be an (L, D) array with L >= 1")
                rows.append(t)
                start.append(pos)
                length.append(t.shape[0])
                owner.append(k)
                pos += t.shape[0]
        return cls(np.ascontiguousarray(np.concatenate(rows)), np.array(start, np.int64),
                   np.array(length, np.int64), np.array(owner, np.int64), len(templates), soft_max)

    @property
    def longest(self) -> int:
        return int(self.length.max())

    # per row: its template's length and its place in it
    def _row_geometry(self) -> Tuple[np.ndarray, np.ndarray]:
        tpl = np.repeat(np.arange(self.length.size), self.length)
        return self.length[tpl], np.arange(self.rows.shape[0]) - self.start[tpl]

    def keyword_scores(self, tpl_scores: np.ndarray) -> np.ndarray:
        """(n, T) template scores -> (n, K) each keyword's score (:func:`combine` of its templates')."""
        out = np.full((tpl_scores.shape[0], self.keywords), -1.0, np.float32)
        for k in range(self.keywords):
            out[:, k] = combine(tpl_scores[:, self.owner == k], self.soft_max)
        return out


class Matcher:
    """Streaming template scores: :meth:`push` the stream's vectors (any number at a time), get
    each keyword's score at each of them."""

    def __init__(self, bank: TemplateBank):
        self.bank = bank
        self.cap = bank.longest
        self._row_len, self._row_pos = bank._row_geometry()
        self._cols = np.arange(bank.rows.shape[0])
        self._seg = bank.start
        # (K, Tmax) each keyword's template indices, padded with an index to a -inf slot
        per = [np.nonzero(bank.owner == k)[0] for k in range(bank.keywords)]
        width = max(len(p) for p in per)
        self._by_kw = np.full((bank.keywords, width), bank.length.size, np.int64)
        for k, p in enumerate(per):
            self._by_kw[k, :len(p)] = p
        self.best_template = np.zeros((0, bank.keywords), np.int64)
        self.reset()

    def reset(self) -> None:
        self._dots = np.zeros((self.cap, self.bank.rows.shape[0]), np.float32)
        self.count = 0             # stream vectors seen

    def push(self, vectors: np.ndarray) -> np.ndarray:
        """(n, D) new stream vectors (unit length) -> (n, K) keyword scores at each."""
        v = np.asarray(vectors, np.float32).reshape(-1, self.bank.rows.shape[1])
        out = np.empty((v.shape[0], self.bank.keywords), np.float32)
        best = np.empty((v.shape[0], self.bank.keywords), np.int64)
        for i in range(v.shape[0]):
            e = self.count
            self._dots[e % self.cap] = self.bank.rows @ v[i]
            self.count += 1
            out[i], best[i] = self._score(e)
        self.best_template = best          # the best template of each keyword at each vector pushed
        return out

    def _score(self, e: int) -> Tuple[np.ndarray, np.ndarray]:
        first = e - self._row_len + 1                      # stream index of each row's template start
        vals = self._dots[(first + self._row_pos) % self.cap, self._cols]
        sums = np.add.reduceat(vals, self._seg)
        tpl = np.append((sums / self.bank.length).astype(np.float32), -np.inf)
        tpl[:-1][self.bank.length > e + 1] = -1.0          # not yet in the stream
        cand = tpl[self._by_kw]                            # (K, Tmax)
        arg = cand.argmax(axis=1)
        return combine(cand, self.bank.soft_max), self._by_kw[np.arange(cand.shape[0]), arg]

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        """(n, K) scores of a whole recording's vectors, as streaming them from the start gives."""
        self.reset()
        out = self.push(vectors)
        self.reset()
        return out


def template_scores(bank: TemplateBank, vectors: np.ndarray, block: int = 4096) -> np.ndarray:
    """(n, T) every template's score at every vector of a long recording, fast (batched matrix
    products; equal to :class:`Matcher`'s up to float rounding): for thresholds and evaluation.
    -1 where a template does not fit yet."""
    x = unit(vectors)
    n, t = x.shape[0], bank.length.size
    out = np.full((n, t), -1.0, np.float32)
    L = bank.longest
    for s in range(0, n, block):
        lo = max(0, s - L + 1)
        g = x[lo:s + block] @ bank.rows.T                      # (m, R)
        m = g.shape[0]
        for ti in range(t):
            a, l = int(bank.start[ti]), int(bank.length[ti])
            acc = np.zeros(m - l + 1, np.float32) if m >= l else None
            if acc is None:
                continue
            for j in range(l):
                acc += g[j:m - l + 1 + j, a + j]
            ends = lo + l - 1 + np.arange(m - l + 1)           # stream index of each score
            keep = ends >= s
            out[ends[keep], ti] = acc[keep] / l
    return out
