"""The keywords in the browser: ``python -m kws web`` (kws.web.server) serves a local page that
enrolls, renames and removes the store's keywords and runs the detector inside the page.

The page's detector is ``kws/web/kws.js``, an ES module of its own: the backbone's mel front end in
JavaScript, the backbone network through onnxruntime-web (WebAssembly, one thread, shipped in
``kws/web/ort/``), the keyword templates of ``python -m kws enroll export``. docs/web.md tells how
to use it in another page.
"""
from __future__ import annotations

from pathlib import Path


def static_dir() -> Path:
    """The folder of the page's files (HTML, JavaScript, onnxruntime-web)."""
    return Path(__file__).resolve().parent
