"""What a query is: a term's **templates**, each a sequence of L vectors as an archive stores them
(kws.search.rows), of a recording of the term or of TTS renderings of its text. A template
ending at position e of a recording scores

    s(e) = (1/L) sum_j cos(T[j], x[e - L + 1 + j])

(the diagonal of the cosine matrix), and a hit scores the best of its templates.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np

from kws.errors import UsageError
from kws.search.rows import DIM, ROW_SCALE, SPAN_S, backbone_vectors, to_rows


@dataclass
class Template:
    """L vectors (unit rows, float32) and where the term lies in them: seconds from the start of
    the first vector's span to the term's start and end."""
    vectors: np.ndarray
    start_s: float
    end_s: float
    label: str = ""

    def __post_init__(self):
        v = np.asarray(self.vectors, np.float32)
        if v.ndim != 2 or v.shape[1] != DIM or v.shape[0] < 1:
            raise UsageError(f"a template is (L, {DIM}) vectors with L >= 1, not {v.shape}")
        self.vectors = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


TEMPLATE_PAD_S = 0.25        # silence around a recorded example (held-out read speech: 0.25 > 0.1, 0.4)


def template_from_audio(audio: np.ndarray, label: str = "", backbone=None, trim: bool = True,
                        pad_s: float = TEMPLATE_PAD_S) -> Template:
    """A recorded word or phrase as a template: leading and trailing silence trimmed, then
    ``pad_s`` of silence added either side (at least enough for one vector). This is search's
    own geometry, measured on its whitened vectors (docs/search.md); keywords' templates are cut
    with the model's (kws.spot.templates)."""
    from kws.audio.io import AudioError, trim_silence

    x = trim_silence(np.asarray(audio, np.float32)) if trim else np.asarray(audio, np.float32)
    if x.size < 1600:
        raise AudioError("an example must hold at least 0.1 s of sound")
    pad = round(max(pad_s, (SPAN_S - x.size / 16000) / 2 + 0.001) * 16000) / 16000
    rows = to_rows(backbone_vectors(x, backbone, pad))
    return Template(rows.astype(np.float32) / ROW_SCALE, pad, pad + x.size / 16000, label)


def templates_from_text(text: str, voices: int = 8, backbone=None) -> List[Template]:
    """Templates of a typed term: Kokoro renderings (kws.enroll.kokoro, as keywords are rendered) in
    ``voices`` of its 28 voices, spread over the list."""
    from kws.enroll import kokoro
    from kws.enroll.phonemes import pronounce

    phonemes = kokoro.pronunciation_phonemes(pronounce(text))
    all_r = kokoro.default_renderings()
    pick = np.unique(np.linspace(0, len(all_r) - 1, max(1, min(voices, len(all_r)))).round().astype(int))
    out = []
    for i in pick:
        audio = kokoro.render(phonemes, all_r[i])
        if audio is not None and audio.size >= 1600:
            out.append(template_from_audio(audio, text, backbone))
    if not out:
        raise UsageError(f"no rendering of {text!r} could be made")
    return out
