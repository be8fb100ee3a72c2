"""The reference vector of a typed keyword: its text embedding, joined by its TTS renderings.

The text encoder places a keyword from its phonemes alone. Where an offline TTS engine is
installed (espeak-ng, flite, festival), a few renderings of the keyword in different voices are
embedded by the audio encoder too, and the keyword's vector becomes the normalised sum of the
text vector and the renderings' mean: a second anchor, on the audio side of the space, that real
speakers' windows land near. Measured on the held-out wake-word clips (docs/evaluation.md): it
lowers the text-enrolled EER for every keyword, most where the text vector alone is weakest.
Without a TTS engine the text vector is used alone.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

TTS_RENDERINGS = 8


def keyword_vector(bundle, pron, spoken: Optional[str], tts: bool = True, renderings: int = TTS_RENDERINGS,
                   seed: int = 0) -> Tuple[np.ndarray, int]:
    """(D,) unit vector for a typed keyword and how many TTS renderings joined it.

    Args:
        bundle: the model bundle.
        pron: the keyword's pronunciation (kws.phonemes.Pronunciation).
        spoken: the words a TTS voice should read (None: no renderings).
        tts: False to use the text vector alone.
    """
    v = bundle.embed_pronunciations([pron])[0]
    if not tts or not spoken:
        return v, 0
    from kws.tts import tts_clips

    clips = [c for c in tts_clips([spoken], per_text=renderings, seed=seed).get(spoken, []) if c.size > 1600]
    if not clips:
        return v, 0
    m = bundle.embed_clips(clips).mean(axis=0)
    m = m / max(float(np.linalg.norm(m)), 1e-12)
    s = v + m
    return s / max(float(np.linalg.norm(s)), 1e-12), len(clips)
