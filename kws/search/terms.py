"""What a query is: a term's **templates** (kws.search.rows.Template), each the vectors of one
utterance of the term in the index's space (kws.search.rows.Space): a recording of it, or Kokoro
renderings of its text. A template of L vectors scored at the end e of a recording is the
detector's score (kws.spot.templates): s(e) = (1/L) sum_j cos(T[j], x[e - L + 1 + j]); a term's
score is the best of its templates'.

A typed term starts fast the second time: its phonemes (pronouncing a text reads CMUdict, 1-3 s)
and its renderings are kept in the render cache (kws.enroll.render_cache), so a term rendered
before makes its templates from the cache and the front end alone.
"""
from __future__ import annotations

import json
from typing import Callable, List, Optional, Sequence

import numpy as np

from kws.errors import UsageError
from kws.search.rows import Space, Template

__all__ = ["Template", "template_from_audio", "templates_from_text", "text_phonemes", "VOICES", "RAW_VOICES",
           "DEFAULT_VOICES", "voice_order"]

# Kokoro's 28 voices in the order they were added, greedily, each time the one that lowered the
# mean spoken-term EER most, on the read speech of the tuning speakers the head never trained on
# (benchmarks/search_voices.py tune; never the held-out speakers); a typed term is rendered in the
# first DEFAULT_VOICES of its space's order (docs/search.md, *Which voices*).
# The head's space (--vectors tune's default), measured with the model tpl-1652d7b068c2 (shipped then): its
# first 4 gave 13.8 % on the tuning speakers against 14.8 % for the order measured with the head
# before (tpl-45d876c736cf), 16.1 % for eight voices evenly spread over Kokoro's list and 15.6 % for all 28.
VOICES = ("af_sky", "bm_daniel", "bm_fable", "bm_george", "af_sarah", "am_michael", "bf_isabella",
          "bf_alice", "am_eric", "af_river", "am_liam", "am_adam", "af_alloy", "am_santa", "am_onyx",
          "am_echo", "bf_lily", "af_jessica", "bm_lewis", "af_nicole", "af_nova", "af_heart", "af_aoede",
          "af_kore", "am_fenrir", "af_bella", "am_puck", "bf_emma")
# The raw space, measured with the model tpl-1652d7b068c2 (shipped then; `tune --vectors
# raw`): its first 4 gave 18.91 % on the tuning speakers against 20.52 % for the head's first 4.
RAW_VOICES = ("bm_daniel", "bm_lewis", "am_adam", "bf_alice", "am_liam", "bf_emma", "af_sky", "af_nova",
              "bf_lily", "am_eric", "bm_fable", "bm_george", "af_river", "am_michael", "af_alloy", "am_echo",
              "af_nicole", "am_santa", "bf_isabella", "af_jessica", "af_sarah", "am_onyx", "af_heart",
              "af_bella", "af_kore", "af_aoede", "am_fenrir", "am_puck")
DEFAULT_VOICES = 4


def voice_order(kind: str) -> List[str]:
    """The voices a typed term of an index of vectors ``kind`` (kws.search.rows.Space) is rendered
    in, best first: the space's measured order (raw: :data:`RAW_VOICES`, else :data:`VOICES`),
    then any other Kokoro voice."""
    from kws.enroll import kokoro

    first = RAW_VOICES if kind == "raw" else VOICES
    return list(first) + [v for v in kokoro.voices().names if v not in first]


def template_from_audio(audio: np.ndarray, label: str = "", space: Optional[Space] = None,
                        trim: bool = True) -> Template:
    """A recorded word or phrase as a template of ``space`` (default: the raw space of the
    shipped model, kws.search.rows.DEFAULT_SPACE), cut as the space cuts an utterance
    (kws.search.rows.Space.template)."""
    return (space or Space()).template(audio, label, trim)


def text_phonemes(text: str) -> str:
    """The misaki phoneme string Kokoro renders ``text`` from, kept in the render cache (an alias
    of the text and what pronouncing depends on) so that a text pronounced before is not
    pronounced again."""
    from kws.enroll import render_cache

    words = " ".join(str(text).lower().split())
    if not words:
        raise UsageError("an empty term")
    alias = json.dumps({"search-text": words, "pronunciation": render_cache.pronunciation_stamp()},
                       sort_keys=True)
    hit = render_cache.load_alias(alias)
    if hit is not None and hit[0]:
        return hit[0]
    from kws.enroll import kokoro
    from kws.enroll.phonemes import pronounce

    pron = pronounce(text)
    phonemes = kokoro.pronunciation_phonemes(pron)
    render_cache.store_alias(alias, phonemes, {"pronunciation": str(pron), "guessed": list(pron.guessed)})
    return phonemes


def templates_from_text(text: str, voices: Optional[int] = None, space: Optional[Space] = None,
                        names: Optional[Sequence[str]] = None,
                        say: Optional[Callable[[str], None]] = None) -> List[Template]:
    """Templates of a typed term in ``space`` (default: the raw space of the shipped model):
    Kokoro renderings (kws.enroll.kokoro, from the render cache where it has them) in the first
    ``voices`` (default :data:`DEFAULT_VOICES`) of the space's :func:`voice_order`, or in the
    voices ``names``."""
    from kws.audio.io import AudioError
    from kws.enroll import kokoro, render_cache

    space = space or Space()
    if names is None:
        n = DEFAULT_VOICES if voices is None else int(voices)
        if n < 1:
            raise UsageError("a text term needs at least one voice")
        names = voice_order(space.kind)[:n]
    renderings = [kokoro.Rendering(v) for v in names]
    got = render_cache.render(text_phonemes(text), renderings, label=text, say=say)
    out = []
    for t in got:
        try:
            out.append(space.template(t.audio, text))
        except AudioError:                   # a rendering too short or too long for a template
            pass
    if not out:
        raise UsageError(f"no rendering of {text!r} could be made a template")
    return out
