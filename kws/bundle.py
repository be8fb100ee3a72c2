"""Model bundle: ONNX encoders + ``manifest.json``, verified on load, run with onnxruntime.

A bundle is a folder::

    manifest.json        format, feature parameters, phoneme inventory, sizes, sha256 of each file,
                         training summary, evaluation numbers, score calibration
    audio.onnx           fp32 audio encoder   (mel [B,T,128], lengths [B]) -> [B,512]
    text.onnx            fp32 text encoder    (ids [B,L], lengths [B])     -> [B,512]
    audio.int8.onnx      dynamically quantised twins
    text.int8.onnx

The bundle shipped in the package is found with importlib.resources; any other folder can be
given by path. Only numpy and onnxruntime are needed here.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from kws.features import LogMel, MelConfig, num_frames
from kws.phonemes import TOKENS, Pronunciation, pad_ids, pronounce

FORMAT = "kws-bundle"
FORMAT_VERSION = 1
VARIANTS = ("int8", "fp32")


class BundleError(RuntimeError):
    """A model bundle that is missing, corrupt, or made for other features or phonemes."""


def sha256_file(path: Union[str, os.PathLike]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_bundle_path() -> Path:
    return Path(str(resources.files("kws") / "assets" / "model"))


@dataclass
class Bundle:
    path: Path
    manifest: dict
    variant: str

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
        if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            raise BundleError(f"{p}: bundle format {manifest.get('format')!r} v{manifest.get('format_version')}"
                              f" is not {FORMAT!r} v{FORMAT_VERSION}")
        if MelConfig.from_dict(manifest["features"]) != MelConfig():
            raise BundleError(f"{p}: made for other feature parameters {manifest['features']}")
        if tuple(manifest["phonemes"]) != TOKENS:
            raise BundleError(f"{p}: made for another phoneme inventory")
        files = manifest["variants"][variant]
        for role in ("audio", "text"):
            f = p / files[role]
            if not f.exists():
                raise BundleError(f"{f}: missing from the bundle")
            if verify:
                want = manifest["files"][files[role]]["sha256"]
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

    # ---- audio
    def embed_mel(self, mel: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(B, T, n_mels) log-mel + (B,) frame counts -> (B, D) unit vectors."""
        mel = np.ascontiguousarray(mel, dtype=np.float32)
        lengths = np.asarray(lengths, dtype=np.int64)
        sess = self._session("audio")
        if self.variant == "fp32" or np.all(lengths == lengths[0]):
            return sess.run(None, {"mel": mel[:, : int(lengths.max())], "lengths": lengths})[0]
        # onnxruntime's DynamicQuantizeLSTM mishandles rows of different sequence_lens in one batch
        # (measured: cosine 0.08 to the unbatched result); run each length as its own batch.
        out = np.zeros((mel.shape[0], self.embedding_dim), dtype=np.float32)
        for L in np.unique(lengths):
            rows = np.nonzero(lengths == L)[0]
            out[rows] = sess.run(None, {"mel": np.ascontiguousarray(mel[rows, :L]),
                                        "lengths": lengths[rows]})[0]
        return out

    def embed_audio(self, audio: np.ndarray) -> np.ndarray:
        """One 16 kHz mono clip -> (D,) unit vector."""
        mel = LogMel()(audio)
        if mel.shape[0] == 0:
            raise ValueError(f"clip of {audio.size} samples is shorter than one 25 ms frame")
        return self.embed_mel(mel[None], np.array([mel.shape[0]]))[0]

    def embed_clips(self, clips: Sequence[np.ndarray], batch: int = 32) -> np.ndarray:
        """Several clips (batched by length) -> (N, D)."""
        logmel = LogMel()
        mels = [logmel(c) for c in clips]
        out = np.zeros((len(mels), self.embedding_dim), dtype=np.float32)
        order = np.argsort([m.shape[0] for m in mels])
        for s in range(0, len(order), batch):
            ids = order[s:s + batch]
            T = max(1, max(mels[i].shape[0] for i in ids))
            x = np.zeros((len(ids), T, MelConfig().n_mels), dtype=np.float32)
            for j, i in enumerate(ids):
                x[j, :mels[i].shape[0]] = mels[i]
            lens = np.array([max(1, mels[i].shape[0]) for i in ids])
            out[ids] = self.embed_mel(x, lens)
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


def frames_for_seconds(seconds: float) -> int:
    return num_frames(int(round(seconds * MelConfig().sample_rate)))
