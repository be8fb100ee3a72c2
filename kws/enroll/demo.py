"""The demo: keywords detected when none is enrolled, and the bundled sample recording.

The demo keywords' store ships in ``kws/assets/demo/`` for the shipped model, so that ``listen``
starts at once (``python -m export.model`` makes it again whenever the model changes); with
another model they are enrolled from their text when first needed.
"""
from __future__ import annotations

from pathlib import Path

DEMO_KEYWORDS = ("computer", "jarvis", "alexa")


def sample_recording() -> Path:
    """``kws/assets/sample.wav``: TTS sentences over noise that hold the three demo keywords."""
    return Path(__file__).resolve().parents[1] / "assets" / "sample.wav"


def demo_store() -> Path:
    return Path(__file__).resolve().parents[1] / "assets" / "demo"


def demo_keywords(model):
    """The demo keywords for ``model`` (kws.enroll.store.KeywordSet): the shipped store when it was
    made for this model, else enrolled now from their text."""
    from kws.enroll.store import KeywordSet, OtherModelError, StoreError

    try:
        return KeywordSet.load(demo_store(), model.model_id)
    except (OtherModelError, StoreError):
        from kws.enroll.build import enroll_keyword

        return KeywordSet(model.model_id, [enroll_keyword(w, model=model, tune=False) for w in DEMO_KEYWORDS])


def write_demo_store(model, progress=print) -> Path:
    """Enroll the demo keywords for ``model`` into ``kws/assets/demo`` (replacing what is there)."""
    import shutil

    from kws.enroll.build import enroll_keyword
    from kws.enroll.store import KeywordSet

    d = demo_store()
    if d.exists():
        shutil.rmtree(d)
    ks = KeywordSet(model.model_id)
    for w in DEMO_KEYWORDS:
        kw = enroll_keyword(w, model=model, progress=progress)
        kw.created = 0.0                      # the same files for the same model
        ks.add(kw)
        progress(f"demo keyword {w!r}: threshold {kw.threshold:.3f}")
    ks.save(d)
    for extra in d.glob("*.lock"):
        extra.unlink()
    for extra in d.glob(".keywords.lock"):
        extra.unlink()
    return d
