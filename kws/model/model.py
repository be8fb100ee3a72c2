"""The keyword-spotting model: front end, head and background bank, checked on load.

A model is a folder::

    manifest.json        format, model id, front end, head, template geometry, background bank,
                         sha256 and size of every file
    backbone.onnx        the speech-embedding network (kws.model.backbone; Google, Apache-2.0,
    backbone_mel.npz     NOTICE.backbone) and its mel constants
    backbone_step.onnx   optional (manifest: frontend.step_network): the same network as a step
                         graph, which streams use (the same vectors, a quarter of the work)
    head.onnx            optional: a learned head on the vectors (kws.model.head)
    rooms.npz            optional: room impulse responses typed keywords are also rendered through
    background.npz       hours of front-end vectors of speech, babble, music and noise that hold
                         no keyword: what thresholds are set on (kws.enroll.thresholds)

The shipped model is ``kws/assets/model``; ``Model.load(path)`` opens any other. The model id
names the vector space keywords are matched in (front end and head): a keyword store is made for
one model id (kws.enroll.store). Run time: numpy and onnxruntime only.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Optional, Union

import numpy as np

from kws.checksum import sha256_file
from kws.errors import KwsError

FORMAT = "kws-model"
FORMAT_VERSION = 3


class ModelError(KwsError, RuntimeError):
    """A model folder that is missing, damaged, or not one this kws reads."""


def default_model_path() -> Path:
    return Path(str(resources.files("kws") / "assets" / "model"))


def read_manifest(path: Union[str, os.PathLike]) -> dict:
    """The manifest of the model folder ``path``, its format checked (not its files: Model.load).

    Raises:
        ModelError: no manifest, not JSON, another format or format version, another front end.
    """
    p = Path(path)
    mf = p / "manifest.json"
    if not mf.exists():
        raise ModelError(f"{p}: not a kws model (no manifest.json)")
    try:
        manifest = json.loads(mf.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{mf}: not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        fmt = manifest.get("format") if isinstance(manifest, dict) else None
        hint = " (an encoder bundle of kws 0.1, no longer read)" if fmt == "kws-bundle" else ""
        raise ModelError(f"{p}: format {fmt!r} is not a kws model{hint}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{p}: model format version {manifest.get('format_version')!r}; this kws "
                         f"reads {FORMAT_VERSION} (a newer kws made it?)")
    if manifest.get("frontend", {}).get("kind") != "speech_embedding":
        raise ModelError(f"{p}: unknown front end {manifest.get('frontend')!r}")
    return manifest


@dataclass
class Model:
    path: Path
    manifest: dict
    _frontend: object = field(default=None, repr=False, compare=False)
    _head: object = field(default=None, repr=False, compare=False)

    @classmethod
    def load(cls, path: Optional[Union[str, os.PathLike]] = None, verify: bool = True) -> "Model":
        """Open and check a model (default: the one shipped in the package).

        Raises:
            ModelError: not a model folder, another format (:func:`read_manifest`), a file
                missing, or a file whose sha256 differs from the manifest's (corrupt or replaced).
        """
        p = Path(path) if path is not None else default_model_path()
        manifest = read_manifest(p)
        for name in cls._files(manifest):
            f = p / name
            if not f.exists():
                raise ModelError(f"{f}: missing from the model")
            if verify:
                want = manifest["files"][name]["sha256"]
                got = _sha256_cached(str(f), f.stat().st_size, f.stat().st_mtime_ns)
                if got != want:
                    raise ModelError(f"{f}: checksum mismatch (file is corrupt or was replaced): "
                                     f"sha256 {got[:12]}..., manifest says {want[:12]}...")
        return cls(p, manifest)

    @staticmethod
    def _files(manifest: dict) -> list:
        fe = manifest["frontend"]
        names = [fe["network"], fe["constants"], manifest["background"]["file"]]
        if fe.get("step_network"):
            names.append(fe["step_network"])
        if manifest.get("head"):
            names.append(manifest["head"]["file"])
        rooms = manifest.get("templates", {}).get("rooms")
        if rooms:
            names.append(rooms["file"])
        return names

    @property
    def model_id(self) -> str:
        return self.manifest["model_id"]

    @property
    def frontend(self):
        """The speech-embedding front end (kws.model.frontend.BackboneFrontend): audio -> raw vectors."""
        if self._frontend is None:
            from kws.model.frontend import BackboneFrontend

            fe = self.manifest["frontend"]
            step = self.path / fe["step_network"] if fe.get("step_network") else None
            self._frontend = BackboneFrontend(self.path / fe["network"], self.path / fe["constants"], step)
        return self._frontend

    @property
    def head(self):
        """Raw vectors -> matching vectors (kws.model.head.Head, or Identity for a model without one)."""
        if self._head is None:
            from kws.model.head import Head, Identity

            h = self.manifest.get("head")
            self._head = Identity() if not h else Head(self.path / h["file"], int(h["context"]))
        return self._head

    @property
    def pad_s(self) -> float:
        """Silence an utterance is padded with before its template is cut (kws.spot.templates)."""
        from kws.spot.templates import PAD_S

        return float(self.manifest.get("templates", {}).get("pad_s", PAD_S))

    @property
    def trim(self) -> int:
        """Vectors dropped at each end of a padded utterance (kws.spot.templates.cut)."""
        from kws.spot.templates import TRIM

        return int(self.manifest.get("templates", {}).get("trim", TRIM))

    @property
    def trim_end(self) -> int:
        """Vectors dropped at the end of a padded utterance (``trim`` unless the manifest says)."""
        return int(self.manifest.get("templates", {}).get("trim_end", self.trim))

    @property
    def soft_max(self) -> float:
        """How a keyword's score combines its templates' (kws.spot.templates.combine): 0 (absent
        from the manifest), the best template's; else the soft maximum's sharpness."""
        return float(self.manifest.get("templates", {}).get("soft_max", 0.0))

    @property
    def rooms(self) -> Optional[np.ndarray]:
        """Room impulse responses (n, samples; 16 kHz) a typed keyword's renderings are also heard
        through, one room copy each (kws.spot.templates.room_copy); None for a model without."""
        entry = self.manifest.get("templates", {}).get("rooms")
        if not entry:
            return None
        return _rooms(str(self.path / entry["file"]))

    def vectors(self, audio: np.ndarray) -> np.ndarray:
        """Matching vectors (unit length, one per 80 ms) of a whole recording."""
        return self.head(self.frontend.frames(audio))

    @property
    def background_file(self) -> Path:
        return self.path / self.manifest["background"]["file"]


@lru_cache(maxsize=4)
def _rooms(path: str) -> np.ndarray:
    with np.load(path) as z:
        return np.asarray(z["rir"], np.float32)


@lru_cache(maxsize=16)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)
