"""Kokoro renderings for the training corpus (kws.corpus.kokoro_corpus, kws.corpus.kokoro_talk):
16 kHz audio and each token's duration in 16 kHz samples, by one of two renderers.

- **onnxruntime** (the default): the int8 ONNX file, one session of one thread in each worker
  process (:func:`_init_worker`, then :func:`render_with_durations`); the model's per-token
  durations are read out of the graph (kws.enroll.kokoro.session_bytes).
- **torch** (``--device cpu|cuda``): the PyTorch port of the same file (kws.corpus.kokoro_torch)
  in one process, :class:`TorchRenderer`: a window of renderings is sorted by token length (over
  the speed) and rendered ``batch`` rows at a time, a batch closed early rather than pad a row
  beyond :data:`MAX_STRETCH`, so rows of a batch pad little.

Both give the 24 kHz audio and frame durations to :func:`to_16k`; the corpus and the talk do the
rest (trimming; word times from the durations: :func:`word_spans`, :func:`word_times`; Ogg/Opus)
with the same code whatever rendered them. :func:`render_ahead` feeds a TorchRenderer.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from kws.enroll.kokoro import FRAME_16K

ONNXRUNTIME = "onnxruntime"
SR = 16000
TRIM_DB = 40.0                  # the talk's pieces: trimmed of what is this far under their loudest 10 ms
TRIM_MARGIN_S = 0.02

MAX_STRETCH = 1.3               # a torch batch's longest row at most this times its shortest (tokens / speed)

Rendered = Tuple[np.ndarray, np.ndarray]


def to_16k(audio: np.ndarray, dur_frames: np.ndarray) -> Rendered:
    """Kokoro's 24 kHz audio and token durations (frames of 600 samples) as 16 kHz float32 audio
    and durations in 16 kHz samples (the first and last token are the model's boundary tokens:
    leading and trailing silence)."""
    from kws.audio.io import resample

    audio = resample(np.asarray(audio, np.float32).reshape(-1), 24000, 16000)
    return audio.astype(np.float32), np.asarray(dur_frames, np.float64).reshape(-1) * FRAME_16K


# ----------------------------------------------------------------------------- word times
def word_spans(phonemes: str, dur: np.ndarray) -> List[Tuple[int, int]]:
    """[start, end) samples of each space-separated word of ``phonemes`` from token durations."""
    ends = np.cumsum(dur)
    spans, pos = [], 1                       # token 0 is the start token
    for w in phonemes.split(" "):
        first, last = pos, pos + len(w) - 1
        spans.append((int(round(ends[first - 1])), int(round(ends[last]))))
        pos = last + 2                       # skip the space token
    return spans


def piece_word_tokens(phonemes: str) -> List[Tuple[int, int]]:
    """First and last token index (ids: token 0 is the start token) of each word of a piece's
    phoneme string, punctuation left out."""
    out, pos = [], 1
    for w in phonemes.split(" "):
        core = w.rstrip(".,!?")
        out.append((pos, pos + len(core) - 1))
        pos += len(w) + 1
    return out


def trim_bounds(x: np.ndarray, top_db: float = TRIM_DB, margin_s: float = TRIM_MARGIN_S) -> Tuple[int, int]:
    """[start, end) of ``x`` without leading and trailing parts ``top_db`` under its loudest 10 ms."""
    hop = SR // 100
    n = x.size // hop
    if n == 0:
        return 0, x.size
    e = (x[: n * hop].reshape(n, hop).astype(np.float64) ** 2).mean(axis=1) + 1e-12
    db = 10 * np.log10(e)
    on = np.nonzero(db > db.max() - top_db)[0]
    m = int(margin_s * SR)
    return max(0, int(on[0]) * hop - m), min(x.size, (int(on[-1]) + 1) * hop + m)


def word_times(phonemes: str, dur: np.ndarray, a: int, b: int) -> List[Tuple[int, int]]:
    """Each word's [start, end) in the piece's audio cut to [a, b) (:func:`trim_bounds`).

    Kokoro's predicted durations place the words 0.1-0.2 s later than they sound (measured on
    rendered sentences: the first phoneme starts about 5 frames of 25 ms before its predicted
    start, the last one ends as much before its predicted end), so the predicted span from the
    first word's start to the last word's end is stretched onto the sound's span, [a, b) less the
    trimming margin, and each word is placed within it by its predicted times."""
    ends = np.cumsum(dur)
    toks = piece_word_tokens(phonemes)
    p0, p1 = float(ends[toks[0][0] - 1]), float(ends[toks[-1][1]])
    m = int(TRIM_MARGIN_S * SR)
    s0, s1 = a + m, max(a + m + 1, b - m)
    scale = (s1 - s0) / max(p1 - p0, 1.0)
    out = []
    for first, last in toks:
        ws = s0 + (ends[first - 1] - p0) * scale - a
        we = s0 + (ends[last] - p0) * scale - a
        out.append((int(max(0, min(round(ws), b - a))), int(max(0, min(round(we), b - a)))))
    return out


def renderer_name(device: Optional[str]) -> str:
    """What stats and indexes record: ``onnxruntime``, or ``torch DEVICE``."""
    return f"torch {device}" if device else ONNXRUNTIME


def add_torch_args(ap) -> None:
    """``--device`` (alias ``--torch``) and ``--batch`` of the corpus's and the talk's commands."""
    ap.add_argument("--device", "--torch", dest="device", default=None, metavar="DEVICE",
                    help="render with the PyTorch port (kws.corpus.kokoro_torch) on DEVICE (cpu, cuda, "
                         "cuda:1) in batches, instead of onnxruntime in --workers processes")
    ap.add_argument("--batch", type=int, default=32,
                    help="with --device: renderings a forward (of similar token lengths)")


# ----------------------------------------------------------------------------- onnxruntime
_SESSION = None


def _init_worker(model_path: str) -> None:
    """The worker's session: the model file as kws.enroll.kokoro.session_bytes gives it (the
    durations as a second output, the integer convolutions as matrix products: the same audio
    to the bit)."""
    global _SESSION
    import onnxruntime as ort

    from kws.enroll.kokoro import session_bytes

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    _SESSION = ort.InferenceSession(session_bytes(model_path), opts, providers=["CPUExecutionProvider"])


def render_with_durations(phonemes: str, rendering) -> Rendered:
    """One rendering by the worker's onnxruntime session: 16 kHz audio and each token's duration
    in 16 kHz samples (:func:`to_16k`)."""
    from kws.enroll import kokoro

    ids = kokoro.tokens(phonemes)
    style = rendering.style(kokoro.voices(), ids.size - 2)
    audio, dur = _SESSION.run(None, {"tokens": ids[None], "style": style.reshape(1, -1).astype(np.float32),
                                     "speed": np.array([rendering.speed], np.float32)})
    return to_16k(audio, dur)


# ----------------------------------------------------------------------------- torch, batched
@lru_cache(maxsize=2)
def _torch_model(path: str, device: str):
    """kws.corpus.kokoro_torch's model of ``path`` on ``device``, loaded once a process."""
    from kws.corpus import kokoro_torch

    return kokoro_torch.load(path, device=device)


class TorchRenderer:
    """kws.corpus.kokoro_torch on ``device``, ``batch`` renderings a forward.

    :meth:`render` takes (phonemes, kws.enroll.kokoro.Rendering) pairs and gives, in their order,
    what :func:`render_with_durations` gives, or the exception a rendering raised (a text the
    voices cannot cover). ``threads`` sets torch's CPU threads (0: torch's default)."""

    def __init__(self, device: str = "cpu", batch: int = 32, threads: int = 0, model_path=None):
        import torch

        from kws.enroll import kokoro

        if threads:
            torch.set_num_threads(threads)
        self.device, self.batch = device, max(1, int(batch))
        self.name = renderer_name(device)
        self.model = _torch_model(str(model_path or kokoro.model_path()), str(device))
        self.forwards = 0
        self.padded_tokens = self.tokens = 0

    def render(self, items: Sequence[Tuple[str, object]]) -> List[Union[Rendered, Exception]]:
        from kws.enroll import kokoro

        v = kokoro.voices()
        out: List[Union[Rendered, Exception, None]] = [None] * len(items)
        ready = []
        for k, (phonemes, r) in enumerate(items):
            try:
                ids = kokoro.tokens(phonemes)
                ready.append((k, ids, r.style(v, ids.size - 2), float(r.speed)))
            except Exception as exc:
                out[k] = exc
        for rows in self.batches(ready):
            for k, res in zip([x[0] for x in rows], self._forward(rows)):
                out[k] = res if isinstance(res, Exception) else to_16k(*res)
        return out

    def batches(self, ready: list) -> list:
        """(k, ids, style, speed) rows in batches of at most ``batch`` of similar length: sorted
        by tokens / speed (about the frames they get), a batch closed early where a row would be
        more than :data:`MAX_STRETCH` times its first row's (the shorter rows would be padded)."""
        key = lambda x: x[1].size / x[3]                 # noqa: E731
        out: list = []
        for x in sorted(ready, key=key):
            if not out or len(out[-1]) >= self.batch or key(x) > MAX_STRETCH * key(out[-1][0]):
                out.append([])
            out[-1].append(x)
        return out

    def _forward(self, rows) -> list:
        """One padded forward of the rows; rows alone where the batch fails (each failure kept)."""
        self.forwards += 1
        self.tokens += sum(x[1].size for x in rows)
        self.padded_tokens += len(rows) * max(x[1].size for x in rows)
        try:
            return self.model.synthesize_batch([x[1] for x in rows], [x[2] for x in rows],
                                               [x[3] for x in rows])
        except Exception as exc:
            if len(rows) == 1:
                return [exc]
            self._free()
            return [r for x in rows for r in self._forward([x])]

    def _free(self) -> None:
        if str(self.device).startswith("cuda"):
            import torch

            torch.cuda.empty_cache()

    def stats(self) -> dict:
        return {"batch": self.batch, "forwards": self.forwards,
                "padding": round(self.padded_tokens / max(self.tokens, 1) - 1, 3)}


def render_ahead(items: Sequence, renderer: TorchRenderer, pieces_of: Callable, make: Callable,
                 batches: int = 8):
    """``make(item, results)`` of each item, in order (a generator), ``results`` being what
    ``renderer.render`` gives for ``pieces_of(item)`` (a list of (phonemes, rendering)). Items
    are taken in groups whose pieces fill ``batches`` batches; a group's pieces are rendered
    together (sorted by token length there, so a batch pads little)."""
    i = 0
    while i < len(items):
        group, pieces = [], []
        while i < len(items) and (not group or len(pieces) < batches * renderer.batch):
            p = list(pieces_of(items[i]))
            group.append((items[i], len(pieces), len(p)))
            pieces += p
            i += 1
        done = renderer.render(pieces)
        for item, k, n in group:
            yield make(item, done[k:k + n])


def replay(results: Sequence[Union[Rendered, Exception]]) -> Callable:
    """A ``synth(phonemes, rendering)`` that gives ``results`` one after the other (raising the
    exception of a rendering that failed): pieces rendered ahead, given to the code that asks
    for them one at a time (kws.corpus.kokoro_talk.render_file)."""
    it = iter(results)

    def synth(_phonemes, _rendering):
        res = next(it)
        if isinstance(res, Exception):
            raise res
        return res

    return synth
