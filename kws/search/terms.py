"""What a query is: a term's **templates** (kws.search.rows.Template), each the vectors of one
utterance of the term in the index's space (kws.search.rows.Space): a recording of it, or Kokoro
renderings of its text. A template of L vectors scored at the end e of a recording is the
detector's score (kws.spot.templates): s(e) = (1/L) sum_j cos(T[j], x[e - L + 1 + j]); a term's
score is the best of its templates'.

A typed term starts fast the second time: its phonemes (pronouncing a text reads CMUdict, 1-3 s),
its renderings and the templates made of them are kept in the render cache
(kws.enroll.render_cache), so a term searched before reads its templates from the cache and runs
neither Kokoro nor the model (no onnxruntime session is made; :func:`template_key` says what a
cached template depends on).
"""
from __future__ import annotations

import hashlib
import json
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from kws.checksum import sha256_file
from kws.errors import UsageError
from kws.search.rows import Space, Template

__all__ = ["Template", "template_from_audio", "templates_from_text", "text_phonemes", "template_key", "VOICES",
           "RAW_VOICES", "DEFAULT_VOICES", "voice_order"]

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


def voice_order(kind: str, n: Optional[int] = None) -> List[str]:
    """The voices a typed term of an index of vectors ``kind`` (kws.search.rows.Space) is rendered
    in, best first: the space's measured order (raw: :data:`RAW_VOICES`, else :data:`VOICES`),
    then any other Kokoro voice; the first ``n`` of them (all: None)."""
    first = RAW_VOICES if kind == "raw" else VOICES
    if n is not None and n <= len(first):
        return list(first[:n])                # (Kokoro's voice table is not read)
    from kws.enroll import kokoro

    order = list(first) + [v for v in kokoro.voices().names if v not in first]
    return order if n is None else order[:n]


# what a search template made of a rendering depends on besides its inputs (template_key)
_TEMPLATE_SOURCES = ("kws/search/rows.py", "kws/search/terms.py", "kws/spot/templates.py", "kws/audio/io.py",
                     "kws/model/model.py", "kws/model/frontend.py", "kws/model/backbone.py", "kws/model/head.py",
                     "kws/model/graph_bytes.py", "kws/assets/search/whitening.npz")
_stamps: Dict[str, str] = {}


def _file_sha(path) -> str:
    p = str(path)
    if p not in _stamps:
        try:
            _stamps[p] = sha256_file(p)
        except OSError:
            _stamps[p] = "?"
    return _stamps[p]


def _model_stamp(model) -> str:
    """The sha256 of the model's manifest (its id, settings and every file's sha256)."""
    return hashlib.sha256(json.dumps(model.manifest, sort_keys=True).encode()).hexdigest()


def template_key(space: Space, phonemes: str, rendering, trim: bool = True) -> str:
    """What the template of one rendering (kws.enroll.kokoro.Rendering) of ``phonemes`` in ``space``
    depends on: the rendering's inputs (the Kokoro model's sha256, the sha256 of the voices'
    style tables, the phonemes, the voice, blend and speed), the space's name (model id and
    whitening) with the sha256 of the model's manifest, the sha256 of the code and data that
    make a template from audio, and the numpy and onnxruntime versions. A new model, voice
    table, code or runtime is another key, so an entry made by another never answers."""
    from dataclasses import asdict

    from kws.enroll import kokoro, render_cache

    if "runtime" not in _stamps:
        _stamps["runtime"] = f"numpy {np.__version__}, onnxruntime {render_cache.dist_version('onnxruntime')}"
    if "code" not in _stamps:
        _stamps["code"] = render_cache.code_stamp(_TEMPLATE_SOURCES)
    return json.dumps({"v": render_cache.TEMPLATE_VERSION, "space": space.name, "kind": space.kind,
                       "model": _model_stamp(space.model), "code": _stamps["code"], "runtime": _stamps["runtime"],
                       "kokoro": kokoro.MODEL_SHA256, "voices": _file_sha(kokoro.voices_path()),
                       "phonemes": phonemes, "rendering": asdict(rendering), "trim": bool(trim)},
                      sort_keys=True, separators=(",", ":"))


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
    from kws.enroll import kokoro, render_cache

    space = space or Space()
    if names is None:
        n = DEFAULT_VOICES if voices is None else int(voices)
        if n < 1:
            raise UsageError("a text term needs at least one voice")
        names = voice_order(space.kind, n)
    renderings = [kokoro.Rendering(v) for v in names]
    phonemes = text_phonemes(text)
    keys = [template_key(space, phonemes, r) for r in renderings]
    made = [render_cache.load_template(k) for k in keys]
    todo = [i for i, m in enumerate(made) if m is None]
    if todo:                                 # rendered (or read from the cache) and through the model
        from kws.audio.io import AudioError

        got = render_cache.render(phonemes, [renderings[i] for i in todo], label=text, say=say)
        for i, t in zip(todo, got):
            try:
                tp = space.template(t.audio, text)
                made[i] = (tp.vectors, tp.start_s, tp.end_s)
            except AudioError:               # a rendering too short or too long for a template
                made[i] = (None, 0.0, 0.0)
            render_cache.store_template(keys[i], *made[i])
    out = []
    for v, a, b in made:
        if v is not None:
            t = Template(v, a, b, text, space.name)
            t.vectors = v                    # as made: unit rows already, not divided again
            out.append(t)
    if not out:
        raise UsageError(f"no rendering of {text!r} could be made a template")
    return out
