"""sha256 of a file, read in blocks: the one checksum kws computes for model files, the Kokoro
model and search indexes."""
from __future__ import annotations

import hashlib
import os
from typing import Union


def sha256_file(path: Union[str, os.PathLike]) -> str:
    """Hex sha256 of the file at ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()
