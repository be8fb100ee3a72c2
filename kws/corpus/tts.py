"""The TTS engines the corpus builder renders words with: they live in kws.tts (enrollment uses
them too) and are named here for kws.corpus.build."""
from kws.audio import trim_silence
from kws.tts import (ESPEAK_ACCENTS, ESPEAK_VARIANTS, FESTIVAL_VOICES, FLITE_VOICES, Render,
                     available_engines, random_render, synthesize)

__all__ = ["ESPEAK_ACCENTS", "ESPEAK_VARIANTS", "FESTIVAL_VOICES", "FLITE_VOICES", "Render",
           "available_engines", "random_render", "synthesize", "trim_silence"]
