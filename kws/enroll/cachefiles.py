"""The user cache folder kws keeps what it can make again in, and the one way it writes there.

``$KWS_CACHE``, else platformdirs' user cache folder (``~/.cache/kws`` on Linux). It holds the
joined Kokoro model (``kokoro/``, kws.enroll.kokoro), renderings and typed keywords
(``renders/``, kws.enroll.render_cache) and the parsed pronunciation dictionary (``lexicon/``,
kws.enroll.lexicon). Every file is written through :func:`write_atomic`.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("KWS_CACHE") or user_cache_dir("kws", appauthor=False))


def write_atomic(path: Path, data: bytes) -> bool:
    """``data`` into ``path`` through a temporary file in the same folder and ``os.replace`` (a
    reader sees the whole file or none); False, and nothing left behind, where the folder cannot
    be written."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.stem, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        return True
    except OSError:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return False
