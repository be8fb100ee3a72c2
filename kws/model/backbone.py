"""Speech-embedding front end (numpy + onnxruntime, run time): audio -> one 96-d vector per 80 ms.

The model's front end is Google's ``speech_embedding`` network (Lin et al. 2020, arXiv
2002.01322; Apache-2.0), a convolutional network trained on a large amount of real speech,
frozen. Its two parts come from the ``openwakeword==0.5.1`` wheel (see ``export/backbone.py`` and
the model's NOTICE.backbone):

- a log-mel front end: 512-sample frames every 160 samples (10 ms), the wheel's analysis window
  and 32-band mel filterbank, ``log10(max(power, 1e-10)) + 2`` (openWakeWord's scaling of the same
  numbers), audio scaled to 16-bit integer range. Unlike the wheel's ONNX graph, no floor relative
  to the loudest frame of the call is applied, so frames never depend on how audio is chunked;
- the embedding network, rewritten to run over any number of frames at once: vector ``j`` is the
  network applied to mel frames ``[8j, 8j + 76)``, i.e. samples ``[1280 j, 1280 j + 12512)``.

Because the network's three time poolings have stride 2, running it over ``76 + 8(n-1)`` frames
gives exactly the ``n`` vectors that running it ``n`` times on 76-frame windows gives.

Streams (:class:`StreamingBackbone`) run the network's step graph where the model folder has one
(``backbone_step.onnx``, made by ``python -m export.backbone --step DIR`` or ``python -m
export.model --add-step``): the network has no padding along time, so each of its convolutions
with a time kernel of 3 needs only the last 2 rows of its input from the step before (kept as a
state) besides the rows of the 8 new mel frames, and a step of 8 frames keeps the poolings on the
rows they pair over the whole recording. Each 80 ms vector then costs the network's work on its 8
new frames instead of on its whole 76-frame window, and the vectors are the offline ones (equal in
the tests). ``python benchmarks/profile_detector.py`` on a 2-core x86-64 CPU, one thread: the
front end costs 0.31-0.38 ms of CPU a vector (log-mel included) against 1.06-1.07 ms running the
network on each vector's window, which folders without the step graph still do.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np

from kws.model.graph_bytes import exact_int8, signed_products_exact

SAMPLE_RATE = 16000
MEL_HOP = 160             # samples between mel frames (10 ms)
MEL_WIN = 512             # samples per mel frame (FFT size too)
N_MELS = 32
CONTEXT = 76              # mel frames seen by one vector
STRIDE = 8                # mel frames between vectors
VEC_HOP = MEL_HOP * STRIDE                          # 1280 samples = 80 ms
VEC_SPAN = MEL_HOP * (CONTEXT - 1) + MEL_WIN        # 12512 samples = 0.782 s
DIM = 96
PCM_SCALE = 32768.0
LOG_FLOOR = 1e-10
STEP_FILE = "backbone_step.onnx"   # the network's step graph for streaming, where a model folder has it


def num_mel_frames(n_samples: int) -> int:
    return 0 if n_samples < MEL_WIN else 1 + (n_samples - MEL_WIN) // MEL_HOP


def num_vectors(n_samples: int) -> int:
    """Vectors a recording of ``n_samples`` gives (0 below 0.782 s)."""
    f = num_mel_frames(n_samples)
    return 0 if f < CONTEXT else 1 + (f - CONTEXT) // STRIDE


def vector_span(first: int, count: int) -> tuple:
    """Samples [start, stop) seen by vectors ``first .. first+count-1``."""
    return first * VEC_HOP, (first + count - 1) * VEC_HOP + VEC_SPAN


@dataclass(frozen=True)
class BackboneFiles:
    """Where a model folder keeps the front end: the ONNX network, the mel constants and, where
    the folder has it, the network's step graph for streaming."""

    network: Path            # ONNX: mel [B, T, 32] -> vectors [B, 1 + (T-76)//8, 96]
    constants: Path          # npz: window (512,), melW (257, 32)
    step: Optional[Path] = None   # ONNX step graph (backbone_step.onnx); None: streams run ``network``


class Backbone:
    """Offline front end: ``Backbone(files)(audio)`` -> (vectors, 96) float32."""

    def __init__(self, files: BackboneFiles, threads: Optional[int] = None):
        c = np.load(files.constants)
        self.window = c["window"].astype(np.float32)
        self.melW = c["melW"].astype(np.float32)
        if self.window.shape != (MEL_WIN,) or self.melW.shape != (MEL_WIN // 2 + 1, N_MELS):
            raise ValueError(f"{files.constants}: not speech-embedding front-end constants")
        self._path = str(files.network)
        self._step_path = str(files.step) if files.step is not None else None
        self._threads = threads

    # ---- mel
    def mel_frames(self, audio: np.ndarray, start: int, count: int) -> np.ndarray:
        """Log-mel of ``count`` frames, the first starting at sample ``start`` -> (count, 32)."""
        if count <= 0:
            return np.zeros((0, N_MELS), dtype=np.float32)
        idx = start + np.arange(count)[:, None] * MEL_HOP + np.arange(MEL_WIN)[None, :]
        frames = audio[idx] * (self.window * PCM_SCALE)
        spec = np.fft.rfft(frames, n=MEL_WIN, axis=1)
        power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
        return (np.log10(np.maximum(power @ self.melW, LOG_FLOOR)) + 2.0).astype(np.float32)

    def mel(self, audio: np.ndarray) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)
        return self.mel_frames(audio, 0, num_mel_frames(audio.size))

    # ---- network
    def vectors_from_mel(self, mel: np.ndarray, max_vectors: int = 256) -> np.ndarray:
        """(T, 32) mel -> (1 + (T-76)//8, 96) vectors, in blocks of at most ``max_vectors``."""
        n = 0 if mel.shape[0] < CONTEXT else 1 + (mel.shape[0] - CONTEXT) // STRIDE
        out = np.zeros((n, DIM), dtype=np.float32)
        sess = _session(self._path, self._threads)
        for s in range(0, n, max_vectors):
            k = min(max_vectors, n - s)
            block = np.ascontiguousarray(mel[STRIDE * s: STRIDE * (s + k - 1) + CONTEXT][None])
            out[s:s + k] = sess.run(None, {"mel": block})[0][0]
        return out

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        return self.vectors_from_mel(self.mel(audio))


class _Step:
    """The step graph (export/backbone.py, ``step_network``): new mel frames and the states of the
    step before -> the new vectors and states. A stream starts with zero states and ``lead`` frames
    of zeros before its first frame, and drops the first ``skip`` vectors it gives."""

    def __init__(self, path: str, threads: Optional[int]):
        self.sess = _session(path, threads)
        meta = self.sess.get_modelmeta().custom_metadata_map
        try:
            self.lead, self.skip = int(meta["kws_lead_frames"]), int(meta["kws_skip_vectors"])
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{path}: not a backbone step graph (no kws_lead_frames / kws_skip_vectors)") from exc
        ins = self.sess.get_inputs()
        if ins[0].name != "mel":
            raise ValueError(f"{path}: not a backbone step graph (first input {ins[0].name!r})")
        self.shapes = {i.name: [1] + [int(d) for d in i.shape[1:]] for i in ins[1:]}
        self.outputs = ["vectors"] + [f"{n}_next" for n in self.shapes]

    def zero_states(self) -> dict:
        return {n: np.zeros(shape, np.float32) for n, shape in self.shapes.items()}

    def run(self, mel: np.ndarray, states: dict, max_vectors: int = 256):
        """(8n, 32) mel -> (n, 96) vectors and the new states, in blocks of at most ``max_vectors``."""
        n = mel.shape[0] // STRIDE
        out = []
        for s in range(0, n, max_vectors):
            k = min(max_vectors, n - s)
            res = self.sess.run(self.outputs, {"mel": mel[None, STRIDE * s: STRIDE * (s + k)], **states})
            out.append(res[0][0])
            states = dict(zip(self.shapes, res[1:]))
        return (out[0] if len(out) == 1 else np.concatenate(out)), states


@dataclass
class StreamingBackbone:
    """Push PCM chunks of any size, get the vectors the offline computation gives, as soon as
    their last sample has arrived. Keeps under one vector's span of samples and frames.

    With the model's step graph (``BackboneFiles.step``), each 80 ms vector costs the network's
    work on its 8 new mel frames only: the rows the step graph keeps from the step before
    (its states) stand for the rest of the vector's 76 frames. Without it, each vector runs the
    network over its whole 76-frame window."""

    backbone: Backbone
    _pending: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32), repr=False)
    _mel: np.ndarray = field(default_factory=lambda: np.zeros((0, N_MELS), dtype=np.float32), repr=False)
    vectors_emitted: int = 0

    def __post_init__(self):
        path = self.backbone._step_path
        self._step = _Step(path, self.backbone._threads) if path is not None else None
        self.reset()

    @property
    def stepped(self) -> bool:
        """Whether vectors come from the step graph (else from the network over whole windows)."""
        return self._step is not None

    def push(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        buf = np.concatenate([self._pending, chunk]) if self._pending.size else chunk
        n = num_mel_frames(buf.size)
        if n:
            frames = self.backbone.mel_frames(buf, 0, n)
            self._mel = np.concatenate([self._mel, frames]) if self._mel.size else frames
        self._pending = buf[n * MEL_HOP:].copy()
        if self._step is not None:
            return self._push_steps()
        if self._mel.shape[0] < CONTEXT:
            return np.zeros((0, DIM), dtype=np.float32)
        k = 1 + (self._mel.shape[0] - CONTEXT) // STRIDE
        out = self.backbone.vectors_from_mel(self._mel[: STRIDE * (k - 1) + CONTEXT])
        self._mel = self._mel[STRIDE * k:].copy()
        self.vectors_emitted += k
        return out

    def _push_steps(self) -> np.ndarray:
        k = self._mel.shape[0] // STRIDE
        if k == 0:
            return np.zeros((0, DIM), dtype=np.float32)
        out, self._states = self._step.run(self._mel[: STRIDE * k], self._states)
        self._mel = self._mel[STRIDE * k:].copy()
        if self._skip:
            drop = min(self._skip, out.shape[0])
            out, self._skip = out[drop:], self._skip - drop
        self.vectors_emitted += out.shape[0]
        return out

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)
        self.vectors_emitted = 0
        if self._step is None:
            self._mel = np.zeros((0, N_MELS), dtype=np.float32)
            return
        self._mel = np.zeros((self._step.lead, N_MELS), dtype=np.float32)
        self._states = self._step.zero_states()
        self._skip = self._step.skip


_SESSIONS: dict = {}


def _session(path: str, threads: Optional[int] = None):
    key = (path, threads)
    if key not in _SESSIONS:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or int(os.environ.get("KWS_THREADS", "1"))
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        model = Path(path).read_bytes()
        if not signed_products_exact():       # int8 weights as uint8: the same numbers on every CPU
            model, _ = exact_int8(model)
        _SESSIONS[key] = ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
    return _SESSIONS[key]


def as_files(folder: Union[str, os.PathLike], network: str = "backbone.onnx",
             constants: str = "backbone_mel.npz", step: Optional[str] = STEP_FILE) -> BackboneFiles:
    """A folder's front-end files; its step graph where the folder has one (``step=None``: never)."""
    folder = Path(folder)
    has_step = step is not None and (folder / step).is_file()
    return BackboneFiles(folder / network, folder / constants, folder / step if has_step else None)
