"""The one exception base of kws: every error a user can meet is a :class:`KwsError`.

    import kws
    try:
        det = kws.Detector(kws.KeywordSet.load(store))
    except kws.KwsError as exc:          # bad audio, text, store, model, index, microphone, ...
        print(f"error: {exc}")

Each kind has its own class beside the code that raises it (the search's two, raised by
several of its modules, here), and also derives from the built-in class it has always been,
so ``except ValueError`` keeps working where it did:

========================================  ==============================  ========================
class                                     raised for                      also a
========================================  ==============================  ========================
``kws.audio.io.AudioError``               unreadable or unusable audio    ValueError
``kws.enroll.phonemes.TextError``         text that cannot be a keyword   ValueError
``kws.enroll.build.EnrollError``          examples or arguments refused   ValueError
``kws.spot.templates.TemplateError``      audio too short for a template  ValueError
``kws.enroll.kokoro.KokoroError``         TTS model missing or damaged,   RuntimeError
                                          a text too long to speak
``kws.model.model.ModelError``            a missing or damaged model      RuntimeError
``kws.enroll.store.StoreError``           keyword store problems          RuntimeError
``kws.enroll.store.CorruptStoreError``    damaged store files             RuntimeError
``kws.enroll.store.OtherModelError``      keywords made by another model  RuntimeError, ValueError
``kws.enroll.store.OldStoreError``        a store of an earlier kws       RuntimeError, ValueError
``kws.errors.SearchIndexError``           an index that cannot be used    RuntimeError
``kws.errors.ArchiveDamaged``             a damaged or unfinished index   RuntimeError
``kws.audio.mic.NoMicrophone``            no usable audio input           RuntimeError
``kws.errors.UsageError``                 a setting or argument refused   ValueError
``kws.errors.MissingExtra``               an optional package missing     ImportError
========================================  ==============================  ========================
"""
from __future__ import annotations


class KwsError(Exception):
    """Base class of the errors kws raises for bad input, settings or files; the message says what
    is wrong and, where there is one, the way out."""


class UsageError(KwsError, ValueError):
    """A setting or argument out of range (a configuration dataclass, a call missing what it
    needs)."""


class MissingExtra(KwsError, ImportError):
    """An optional package is not installed; the message names the pip command."""


class SearchIndexError(KwsError, RuntimeError):
    """A search index that cannot be used (another front end, other settings, damaged:
    kws.search)."""


class ArchiveDamaged(SearchIndexError):
    """An archive whose files do not match their checksums, or that was not finished."""
