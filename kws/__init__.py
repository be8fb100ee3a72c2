"""kws: open-vocabulary on-device keyword spotting with joint audio-text word embeddings.

Public API::

    from kws import Detector, KeywordSet, Model
    det = Detector.from_texts(["hey computer"])          # Kokoro renders it in 28 voices
    events = det.process(chunk)          # float32 16 kHz mono

    from kws import enroll_keyword
    kw = enroll_keyword("snowboy", examples=["a.wav", "b.wav", "c.wav"])   # threshold set
    det = Detector(KeywordSet(Model.load().model_id, [kw]))

    from kws import SearchIndex
    ix = SearchIndex("my.index"); ix.add(["recordings/"])
    hits = ix.query(ix.embed_query("elephant"), top=10)

Every error kws raises for bad input, settings or files is a :class:`KwsError`.

Importing kws never imports torch (the run-time path is numpy + onnxruntime).
"""
from kws.bundle import Bundle, BundleError
from kws.detector import Detection, Detector, DetectorConfig
from kws.enrollment import enroll_keyword
from kws.errors import KwsError
from kws.keywords import Keyword, KeywordSet, StoreError
from kws.model import Model
from kws.search import Hit, IndexConfig, SearchIndex, SearchIndexError

__version__ = "0.1.0"
__all__ = ["Bundle", "BundleError", "Detection", "Detector", "DetectorConfig", "Hit", "IndexConfig",
           "Keyword", "KeywordSet", "KwsError", "Model", "SearchIndex", "SearchIndexError", "StoreError",
           "enroll_keyword", "__version__"]
