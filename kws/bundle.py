"""Model bundle: ONNX encoders + ``manifest.json``, verified on load, run with onnxruntime.

A bundle is a folder::

    manifest.json        format, front end, phoneme inventory, sizes, sha256 of each file,
                         training summary, evaluation numbers, score calibration
    audio.onnx           fp32 audio encoder   (frames [B,T,D], lengths [B]) -> [B,512]
    text.onnx            fp32 text encoder    (ids [B,L], lengths [B])      -> [B,512]
    audio.int8.onnx      dynamically quantised twins
    text.int8.onnx
    background.npy       embeddings of background windows (threshold calibration)

Format 2 bundles add the speech-embedding front end (``backbone.onnx``, ``backbone_mel.npz``,
``NOTICE.backbone``; kws.backbone) and their audio encoder reads its 96-d vectors (D = 96, one
frame per 80 ms); format 1 bundles read 128-bin log-mel frames (D = 128, 10 ms). kws.frontend
says how frames map to samples for either.

The bundle shipped in the package is found with importlib.resources; any other folder can be
given by path. Only numpy and onnxruntime are needed here.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from kws.errors import KwsError
from kws.features import MelConfig
from kws.phonemes import TOKENS, Pronunciation, pad_ids, pronounce

FORMAT = "kws-bundle"
FORMAT_VERSION = 2
FORMAT_VERSIONS = (1, 2)         # 1: log-mel front end; 2: a named front end (speech embedding)
VARIANTS = ("int8", "fp32")


class BundleError(KwsError, RuntimeError):
    """A model bundle that is missing, corrupt, or made for other features or phonemes."""


def sha256_file(path: Union[str, os.PathLike]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_bundle_path() -> Path:
    """The encoder bundle shipped for spoken-term search (kws/assets/encoders)."""
    return Path(str(resources.files("kws") / "assets" / "encoders"))


@dataclass
class Bundle:
    path: Path
    manifest: dict
    variant: str
    _frontend: object = field(default=None, repr=False, compare=False)

    @classmethod
    def load(cls, path: Optional[Union[str, os.PathLike]] = None, variant: str = "int8",
             verify: bool = True) -> "Bundle":
        """Open and check a bundle (default: the one shipped in the package)."""
        if variant not in VARIANTS:
            raise BundleError(f"variant must be one of {VARIANTS}, got {variant!r}")
        p = Path(path) if path is not None else default_bundle_path()
        mf = p / "manifest.json"
        if not mf.exists():
            raise BundleError(f"{p}: not a model bundle (no manifest.json)")
        try:
            manifest = json.loads(mf.read_text())
        except json.JSONDecodeError as exc:
            raise BundleError(f"{mf}: not valid JSON ({exc})") from exc
        if manifest.get("format") != FORMAT or manifest.get("format_version") not in FORMAT_VERSIONS:
            raise BundleError(f"{p}: bundle format {manifest.get('format')!r} v{manifest.get('format_version')}"
                              f" is not {FORMAT!r} v{'/'.join(map(str, FORMAT_VERSIONS))}")
        kind = manifest.get("frontend", {}).get("kind", "logmel")
        if kind == "logmel" and MelConfig.from_dict(manifest["features"]) != MelConfig():
            raise BundleError(f"{p}: made for other feature parameters {manifest['features']}")
        if kind not in ("logmel", "speech_embedding"):
            raise BundleError(f"{p}: unknown front end {kind!r} (a newer kws made it?)")
        if tuple(manifest["phonemes"]) != TOKENS:
            raise BundleError(f"{p}: made for another phoneme inventory")
        files = manifest["variants"][variant]
        needed = [files["audio"], files["text"]]
        if kind != "logmel":
            needed += [manifest["frontend"]["network"], manifest["frontend"]["constants"]]
        for name in needed:
            f = p / name
            if not f.exists():
                raise BundleError(f"{f}: missing from the bundle")
            if verify:
                want = manifest["files"][name]["sha256"]
                got = sha256_file(f)
                if got != want:
                    raise BundleError(f"{f}: checksum mismatch (file is corrupt or was replaced): "
                                      f"sha256 {got[:12]}..., manifest says {want[:12]}...")
        return cls(p, manifest, variant)

    @property
    def model_id(self) -> str:
        """Identifies the embedding space: keyword stores made by another model are refused."""
        return self.manifest["model_id"]

    @property
    def embedding_dim(self) -> int:
        return int(self.manifest["embedding_dim"])

    def _session(self, role: str):
        return _session(str(self.path / self.manifest["variants"][self.variant][role]))

    @property
    def frontend(self):
        """The bundle's front end (kws.frontend): audio -> frames, and their geometry."""
        if self._frontend is None:
            from kws.frontend import BackboneFrontend, LogMelFrontend

            fe = self.manifest.get("frontend", {"kind": "logmel"})
            self._frontend = (LogMelFrontend() if fe["kind"] == "logmel" else
                              BackboneFrontend(self.path / fe["network"], self.path / fe["constants"]))
        return self._frontend

    # ---- audio
    def embed_frames(self, frames: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(B, T, D) front-end frames + (B,) frame counts -> (B, 512) unit vectors."""
        frames = np.ascontiguousarray(frames, dtype=np.float32)
        lengths = np.asarray(lengths, dtype=np.int64)
        sess = self._session("audio")
        name = sess.get_inputs()[0].name
        if self.variant == "fp32" or np.all(lengths == lengths[0]):
            return sess.run(None, {name: frames[:, : int(lengths.max())], "lengths": lengths})[0]
        # onnxruntime's DynamicQuantizeLSTM mishandles rows of different sequence_lens in one batch
        # (measured: cosine 0.08 to the unbatched result); run each length as its own batch.
        out = np.zeros((frames.shape[0], self.embedding_dim), dtype=np.float32)
        for L in np.unique(lengths):
            rows = np.nonzero(lengths == L)[0]
            out[rows] = sess.run(None, {name: np.ascontiguousarray(frames[rows, :L]),
                                        "lengths": lengths[rows]})[0]
        return out

    embed_mel = embed_frames          # the name format-1 code used

    def embed_audio(self, audio: np.ndarray) -> np.ndarray:
        """One 16 kHz mono clip holding one word -> (512,) unit vector."""
        f = self.frontend.clip_frames(audio)
        if f.shape[0] == 0:
            raise ValueError(f"clip of {np.asarray(audio).size} samples is too short for one frame")
        return self.embed_frames(f[None], np.array([f.shape[0]]))[0]

    def embed_clips(self, clips: Sequence[np.ndarray], batch: int = 32) -> np.ndarray:
        """Several clips, each holding one word (batched by length) -> (N, 512)."""
        feats = [self.frontend.clip_frames(c) for c in clips]
        out = np.zeros((len(feats), self.embedding_dim), dtype=np.float32)
        order = np.argsort([m.shape[0] for m in feats])
        for s in range(0, len(order), batch):
            ids = order[s:s + batch]
            T = max(1, max(feats[i].shape[0] for i in ids))
            x = np.zeros((len(ids), T, self.frontend.dim), dtype=np.float32)
            for j, i in enumerate(ids):
                x[j, :feats[i].shape[0]] = feats[i]
            lens = np.array([max(1, feats[i].shape[0]) for i in ids])
            out[ids] = self.embed_frames(x, lens)
        return out

    # ---- text
    def embed_pronunciations(self, prons: Sequence[Pronunciation]) -> np.ndarray:
        sess = self._session("text")
        if self.variant == "fp32":
            ids, lens = pad_ids([p.ids() for p in prons])
            return sess.run(None, {"ids": ids, "lengths": lens})[0]
        return np.concatenate([sess.run(None, {"ids": p.ids()[None], "lengths": np.array([len(p.ids())])})[0]
                               for p in prons])

    def embed_text(self, text: str) -> np.ndarray:
        return self.embed_pronunciations([pronounce(text)])[0]


@lru_cache(maxsize=8)
def _session(path: str):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(os.environ.get("KWS_THREADS", "1"))
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])

