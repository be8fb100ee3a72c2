"""kws: open-vocabulary keyword spotting on the device. A typed keyword is spoken by Kokoro in 28
voices (or given as recordings); what a frozen speech-embedding network and a small head hear in
those utterances become its templates, and a streaming detector matches them against the
microphone. Run time: numpy and onnxruntime.

Public API::

    from kws import Detector, KeywordSet, Model
    det = Detector.from_texts(["hey computer"])          # Kokoro renders it in 28 voices
    events = det.process(chunk)          # float32 16 kHz mono

    from kws import enroll_keyword
    kw = enroll_keyword("snowboy", examples=["a.wav", "b.wav", "c.wav"])   # threshold set
    det = Detector(KeywordSet(Model.load().model_id, [kw]))

    from kws import ArchiveIndex                          # spoken-term search (kws.search.archive)
    from kws.search.terms import templates_from_text
    ix = ArchiveIndex("my.index"); ix.add(["recordings/"])
    hits = ix.query(templates_from_text("elephant"), top=10)

Every error kws raises for bad input, settings or files is a :class:`KwsError`.

Importing kws imports neither torch nor any search or training code (tests/test_layout.py).
"""
from kws.enroll.build import enroll_keyword
from kws.enroll.store import Keyword, KeywordSet
from kws.errors import KwsError
from kws.model.model import Model
from kws.spot.detector import Detection, Detector, DetectorConfig

__version__ = "0.1.0"
__all__ = ["ArchiveIndex", "Detection", "Detector", "DetectorConfig", "Keyword", "KeywordSet", "KwsError",
           "Model", "enroll_keyword"]


def __getattr__(name):
    """``kws.ArchiveIndex`` is imported when first used: ``import kws`` loads no search code."""
    if name == "ArchiveIndex":
        from kws.search.archive import ArchiveIndex

        return ArchiveIndex
    raise AttributeError(f"module 'kws' has no attribute {name!r}")
