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
from typing import TYPE_CHECKING

from kws.errors import KwsError

__version__ = "0.1.0"
__all__ = ["ArchiveIndex", "Detection", "Detector", "DetectorConfig", "Keyword", "KeywordSet", "KwsError",
           "Model", "enroll_keyword"]

# where each public name lives; imported when first used, so a command that needs only some of
# them (a search, say) does not load the detector and enrollment code (about 35 ms)
_WHERE = {"ArchiveIndex": "kws.search.archive", "Detection": "kws.spot.detector", "Detector": "kws.spot.detector",
          "DetectorConfig": "kws.spot.detector", "Keyword": "kws.enroll.store", "KeywordSet": "kws.enroll.store",
          "Model": "kws.model.model", "enroll_keyword": "kws.enroll.build"}

if TYPE_CHECKING:                                # for type checkers and editors
    from kws.enroll.build import enroll_keyword  # noqa: F401
    from kws.enroll.store import Keyword, KeywordSet  # noqa: F401
    from kws.model.model import Model  # noqa: F401
    from kws.search.archive import ArchiveIndex  # noqa: F401
    from kws.spot.detector import Detection, Detector, DetectorConfig  # noqa: F401


def __getattr__(name):
    """The public names are imported when first used (``import kws`` loads no search code)."""
    if name in _WHERE:
        import importlib

        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kws' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
