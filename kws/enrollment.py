"""Enrollment: a keyword from its text, recordings of it, or both, with a threshold of its own.

    import kws
    kw = kws.enroll_keyword("hey computer")                                   # by text
    kw = kws.enroll_keyword("snowboy", examples=["a.wav", "b.wav", "c.wav"])  # by examples
    det = kws.Detector(kws.KeywordSet(kws.Bundle.load().model_id, [kw]))

``python -m kws enroll add`` is this call plus the keyword store. Each example is checked (not
silent, not clipped, 0.2-10 s long, at most 3 s of sound) and trimmed to its sound before it is
embedded; the keyword's vectors are its text embedding and/or the mean of its example embeddings.

The threshold is tuned by :mod:`kws.thresholds` at the equal error rate between positives (the
examples, clean and at 10 dB SNR; renderings of the text by the installed TTS voices, clean and
noisy) and negatives (the bundle's bank of real background-speech windows, plus TTS renderings of
dictionary words 1-2 phonemes away). Without examples and without any TTS engine, or with
``tune=False``, the threshold is the bundle's background calibration instead.
"""
from __future__ import annotations

import os
from typing import Callable, List, Optional, Sequence, Union

import numpy as np

from kws.audio import SAMPLE_RATE, load_audio, prepare, trim_silence
from kws.bundle import Bundle
from kws.errors import KwsError
from kws.keywords import Keyword, KeywordSet
from kws.phonemes import parse_phonemes, pronounce

MIN_EXAMPLE_S = 0.2        # shortest example recording
MAX_EXAMPLE_S = 10.0       # longest example recording
MAX_SPEECH_S = 3.0         # most sound in one example (after trimming the silence around it)
TRIM_TOP_DB = 30.0         # trimming: drop the ends more than this under the loudest 10 ms
TRIM_MARGIN_S = 0.08       # ... keeping this much around the sound
TTS_POSITIVES = 9          # TTS renderings of the keyword used as positives
NEIGHBOURS = 12            # close-sounding dictionary words rendered as negatives

Example = Union[str, os.PathLike, np.ndarray]
Progress = Optional[Callable[[str], None]]


class EnrollError(KwsError, ValueError):
    """An example or a request that enrollment refuses; the message says why."""


def check_example(audio: np.ndarray, name: str) -> np.ndarray:
    """The speech part of one example recording (16 kHz mono float32).

    Args:
        audio: the recording.
        name: what to call it in messages (its file name).
    Returns:
        The recording trimmed of the silence before and after the keyword.
    Raises:
        EnrollError: silent, clipped, shorter than ``MIN_EXAMPLE_S``, longer than
            ``MAX_EXAMPLE_S``, or more than ``MAX_SPEECH_S`` of sound.
    """
    dur = audio.size / SAMPLE_RATE
    if dur < MIN_EXAMPLE_S:
        raise EnrollError(f"{name}: {dur:.2f} s is too short for an example (at least {MIN_EXAMPLE_S} s)")
    if dur > MAX_EXAMPLE_S:
        raise EnrollError(f"{name}: {dur:.1f} s is too long (at most {MAX_EXAMPLE_S} s: one keyword per file)")
    peak = float(np.max(np.abs(audio)))
    if peak < 1e-3 or float(np.sqrt(np.mean(audio ** 2))) < 3e-4:
        raise EnrollError(f"{name}: silent (peak level {20 * np.log10(max(peak, 1e-9)):.0f} dBFS)")
    clipped = float(np.mean(np.abs(audio) >= 0.999))
    if clipped > 0.01:
        raise EnrollError(f"{name}: clipped ({clipped:.1%} of samples at full scale); record it quieter")
    speech = trim_silence(audio, top_db=TRIM_TOP_DB, margin_s=TRIM_MARGIN_S)
    if speech.size / SAMPLE_RATE > MAX_SPEECH_S:
        raise EnrollError(f"{name}: {speech.size / SAMPLE_RATE:.1f} s of sound; an example should hold "
                          f"only the keyword (at most {MAX_SPEECH_S} s)")
    return speech


def load_examples(examples: Sequence[Example]) -> List[np.ndarray]:
    """Read and check example recordings: file paths (any format kws reads) or arrays of 16 kHz
    mono samples. Returns each one's speech part (:func:`check_example`)."""
    out = []
    for i, e in enumerate(examples):
        if isinstance(e, (str, os.PathLike)):
            name, audio = str(e), load_audio(e)
        else:
            name = f"example {i + 1}"
            audio = prepare(e, SAMPLE_RATE, name=name)
        out.append(check_example(audio, name))
    return out


def enroll_keyword(name: str, text: Optional[str] = None, examples: Optional[Sequence[Example]] = None,
                   tune: bool = True, progress: Progress = None, *, phonemes: Optional[str] = None,
                   bundle: Optional[Bundle] = None, seed: int = 0,
                   fa_per_hour: Optional[float] = None) -> Keyword:
    """Make a keyword from its text, example recordings, or both, with its threshold.

    Args:
        name: what the keyword is called (in events, the store, ``Detection.keyword``).
        text: the keyword as text (any word or phrase; words the dictionary lacks are pronounced
            by the offline G2P). Default: ``name``, when no examples are given.
        examples: recordings of the keyword, one utterance each: file paths or float32 arrays of
            16 kHz mono samples. Each is checked and trimmed (:func:`check_example`).
        tune: also measure the keyword's EER and its recall at the threshold (takes seconds: it
            renders the keyword and close-sounding words with the installed TTS voices). The
            threshold itself is set for ``fa_per_hour`` expected false alarms either way.
        progress: called with a line of text at each step worth telling (e.g. ``print``); None:
            silent.
        phonemes: an explicit ARPAbet pronunciation ("S N OW B OY") instead of the text's.
        bundle: the model (default: the shipped one, int8).
        seed: for the TTS voices and noise drawn while tuning.
        fa_per_hour: the false alarms an hour the threshold is set for (default 0.5; 5 for a
            typed keyword without a TTS engine: kws.calibration).
    Returns:
        The :class:`~kws.keywords.Keyword`, not yet stored: add it to a
        :class:`~kws.keywords.KeywordSet` (``python -m kws enroll add`` adds it to the store).
    Raises:
        EnrollError: nothing to enroll from, or an example refused.
        kws.audio.AudioError: an example file that cannot be read.
        kws.phonemes.TextError: a text that cannot be pronounced.
    """
    say = progress or (lambda line: None)
    if text is None and phonemes is None and not examples:
        text = name
    clips = load_examples(examples or [])
    return build_keyword(bundle or Bundle.load(), name, text, phonemes, clips, tune=tune, seed=seed,
                         progress=say, fa_per_hour=fa_per_hour)


def build_keyword(bundle: Bundle, name: str, text: Optional[str], phonemes: Optional[str],
                  examples: Sequence[np.ndarray], tune: bool = True, seed: int = 0,
                  progress: Callable[[str], None] = print,
                  fa_per_hour: Optional[float] = None) -> Keyword:
    """:func:`enroll_keyword` on examples already checked (:func:`load_examples`).

    The keyword's vectors: its text embedding joined by TTS renderings where an engine is
    installed (kws.anchors), and the mean of its examples. Its windows are sized to its expected
    duration (the examples' median length, else its phoneme count). Its threshold is set for
    ``fa_per_hour`` expected false alarms an hour (default kws.calibration.DEFAULT_FA_PER_HOUR;
    for a typed keyword with no TTS engine and no examples, TEXT_ONLY_FA_PER_HOUR), from the
    bundle's background hop bank (kws.thresholds). ``tune`` also measures, as a report, the EER
    and the recall at that threshold against fresh TTS renderings and the examples (clean and at
    10 dB SNR)."""
    from kws import calibration
    from kws import thresholds as th
    from kws.anchors import keyword_vector
    from kws.detector import Detector
    from kws.windows import spoken_duration

    if text is None and phonemes is None and not examples:
        raise EnrollError("give the keyword's text, examples, or both")
    vectors: List[np.ndarray] = []
    pron = None
    if phonemes:
        pron = parse_phonemes(phonemes)
    elif text is not None:
        pron = pronounce(text)
    # the TTS voices read the normalised words ("café" -> "cafe", "7" -> "seven"), as embedded
    spoken = " ".join(pron.words) if pron is not None and pron.words else text
    n_tts = 0
    if pron is not None:
        if pron.guessed:
            progress(f"  not in the dictionary, pronounced by the fallback G2P: {', '.join(pron.guessed)} "
                     f"-> {pron}")
        v, n_tts = keyword_vector(bundle, pron, spoken, seed=seed)
        vectors.append(v)
    if examples:
        ex = bundle.embed_clips(list(examples))
        m = ex.mean(axis=0)
        vectors.append(m / np.linalg.norm(m))
        duration = float(np.median([e.size for e in examples])) / 16000
    else:
        duration = spoken_duration(pron.phonemes)
    vec = np.stack(vectors)
    source = "+".join(s for s, on in (("text", pron is not None), ("examples", bool(examples))) if on)
    kw = Keyword(name=name, vectors=vec, threshold=0.0, text=text,
                 phonemes=str(pron) if pron is not None else None, source=source, duration=duration)
    if fa_per_hour is None:
        fa_per_hour = (calibration.DEFAULT_FA_PER_HOUR if examples or n_tts or pron is None
                       else calibration.TEXT_ONLY_FA_PER_HOUR)
        if not examples and not n_tts:
            progress(f"  no TTS engine installed: matched by its text alone, less accurately; threshold "
                     f"set for {fa_per_hour:g} false alarms an hour (install espeak-ng for better keywords)")
    cal = th.calibrate(bundle, vec, duration, fa_per_hour)
    kw.threshold, expected = cal.threshold, cal.expected_per_hour
    tuned = {"method": "false-alarm-rate" if expected is not None else "background-quantile",
             "target_per_hour": fa_per_hour, "tts_renderings": n_tts}
    if expected is not None:
        tuned["expected_per_hour"] = round(expected, 3)
    kw.tuned_on = tuned
    if not tune:
        return kw
    det = Detector(KeywordSet(bundle.model_id, [kw]), bundle)
    rng = np.random.default_rng(seed)
    pos: List[float] = []

    def clean_and_noisy(clip: np.ndarray) -> List[float]:
        return [float(det.best_scores(clip)[0]), float(det.best_scores(th.add_noise(clip, 10.0, rng))[0])]
    for e in examples:
        pos += clean_and_noisy(e)
    neg = list(cal.scores)
    tuned["examples"] = len(examples)
    tuned["background_hops"] = len(neg)
    if spoken is not None:
        progress("  rendering the keyword and close-sounding words with the offline TTS voices ...")
        neighbours = th.phonetic_neighbours(pron.phonemes, NEIGHBOURS, seed) if pron is not None else []
        # voices drawn afresh (another seed than the anchors'), so that they test the vector
        clips = th.tts_clips([spoken] + neighbours, per_text=TTS_POSITIVES, seed=seed + 1)
        own = clips.pop(spoken)
        for c in own:
            pos += clean_and_noisy(c)
        neg_tts = [float(det.best_scores(c)[0]) for cl in clips.values() for c in cl[:3]]
        neg += neg_tts
        tuned["tts_positives"] = len(own)
        tuned["tts_negatives"] = len(neg_tts)
        tuned["neighbours"] = neighbours
    if pos:
        kw.eer = th.tune(pos, neg)[0]
        tuned["recall_at_threshold"] = round(float(np.mean(np.array(pos) >= kw.threshold)), 3)
        tuned["positives"] = len(pos)
        tuned["negatives"] = len(neg)
    return kw
