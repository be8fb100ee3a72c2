"""Enrollment: a keyword from its text, recordings of it, or both, with a threshold of its own.

    import kws
    kw = kws.enroll_keyword("hey computer")                                   # by text
    kw = kws.enroll_keyword("snowboy", examples=["a.wav", "b.wav", "c.wav"])  # by recordings
    det = kws.Detector(kws.KeywordSet(kws.Model.load().model_id, [kw]))

``python -m kws enroll add`` is this call plus the keyword store.

- **Text**: Kokoro-82M speaks the keyword in each of its 28 English voices (kws.enroll.kokoro;
  ``voices`` names fewer, e.g. the ten of ``QUICK_VOICES`` that ``enroll add --quick`` uses); every
  rendering becomes a template (kws.spot.templates). Any word or phrase: words the dictionary lacks
  are pronounced by the offline G2P.
- **Recordings**: each is checked (not silent, not clipped, 0.2-10 s long, at most 3 s of sound)
  and becomes a template too. Text and recordings together make the strongest keyword.
- **Threshold**: set for a false-alarm rate (default 1 an hour) on the model's background bank
  (kws.enroll.thresholds), and reported with the rate expected there. A phrase must not fire on one of
  its words or prefixes, nor any keyword on a word given in ``not_words``: where one of them
  scores higher, the threshold is raised above it (kws.enroll.confusions; ``tuned_on`` keeps
  ``bank_threshold``, ``floor`` and the ``neighbours`` with their scores). ``tune`` also
  measures how well the keyword's own utterances are found: each one scored against the others'
  templates (a voice or recording it has not heard), clean and with noise at 10 dB, gives the
  recall at the threshold (and at the bank's) and the EER against the background's peaks, and
  rates the keyword as a wake word (``tuned_on["rating"]``, ``["rating_reason"]``).
- **Checked first**: the text or phonemes, the false-alarm rate, the voices, the ``not_words``
  and every example are checked before anything is rendered (:func:`plan_keyword`).
- **Cached**: renderings, and whole typed keywords, are kept on disk (kws.enroll.render_cache): the same
  text again, for the same model and settings, takes no rendering.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from kws.audio.io import SAMPLE_RATE, load_audio, prepare, trim_silence
from kws.enroll.phonemes import Pronunciation, parse_phonemes, pronounce
from kws.enroll.store import Keyword
from kws.errors import KwsError
from kws.model.model import Model
from kws.spot.templates import (TemplateBank, TemplateError, check_length, cut, room_copy, room_origin,
                                source_vectors, utterance_of)

MIN_EXAMPLE_S = 0.2        # shortest example recording
MAX_EXAMPLE_S = 10.0       # longest example recording
MAX_SPEECH_S = 3.0         # most sound in one example (after trimming the silence around it)
TRIM_TOP_DB = 30.0         # trimming: drop the ends more than this under the loudest 10 ms
TRIM_MARGIN_S = 0.08       # ... keeping this much around the sound
CHECK_SNR_DB = 10.0        # noise level of the recall check

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
            ``MAX_EXAMPLE_S``, more than ``MAX_SPEECH_S`` of sound, or too little sound for a
            template.
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
                   model: Optional[Model] = None, seed: int = 0,
                   fa_per_hour: Optional[float] = None, quiet: bool = True,
                   voices: Optional[Sequence[str]] = None, not_words: Sequence[str] = (),
                   lexical: bool = False, say: Progress = None) -> Keyword:
    """Make a keyword from its text, example recordings, or both, with its threshold.

    Args:
        name: what the keyword is called (in events, the store, ``Detection.keyword``).
        text: the keyword as text (any word or phrase). Default: ``name``, when no examples
            are given.
        examples: recordings of the keyword, one utterance each: file paths or float32 arrays of
            16 kHz mono samples. Each is checked and trimmed (:func:`check_example`).
        tune: also measure the recall at the threshold and the EER (about a second).
        progress: called with a line of text at each step worth telling (e.g. ``print``).
        phonemes: an explicit ARPAbet pronunciation ("S N OW B OY", stress digits allowed)
            instead of the text's.
        model: the model (default: the shipped one).
        seed: for the noise drawn while measuring.
        fa_per_hour: the false alarms an hour the threshold is set for (default 1).
        quiet: no progress bar while rendering.
        voices: the Kokoro voices that speak a typed keyword (default: all 28 English ones;
            ``kws.enroll.kokoro.QUICK_VOICES``, ten chosen by measurement, enroll in about 40 %
            of the time, with more false alarms).
        not_words: words or phrases that must not fire the keyword (its threshold is raised
            above their scores where needed; kws.enroll.confusions).
        lexical: also score a few dictionary words sharing the keyword's start or end (rendered
            in two voices; reported in ``tuned_on["neighbours"]``, never moving the threshold).
        say: told about steps that take longer than a second (the Kokoro model's first join,
            rendering), e.g. a function printing to stderr.
    Returns:
        The :class:`~kws.enroll.store.Keyword`, not yet stored: add it to a
        :class:`~kws.enroll.store.KeywordSet` (``python -m kws enroll add`` adds it to the store).
    Raises:
        EnrollError: nothing to enroll from, an example refused, a false-alarm rate that is not
            a positive number, a voice that does not exist.
        kws.audio.io.AudioError: an example file that cannot be read.
        kws.enroll.phonemes.TextError: a text that cannot be pronounced.
        kws.enroll.kokoro.KokoroError: a text too long for the TTS, or its model missing or damaged.
    """
    if text is None and phonemes is None and not examples:
        text = name
    model = model or Model.load()
    if not examples:                   # typed before: from the cache, without pronouncing it again
        kw = cached_keyword(model, name, text, phonemes, fa_per_hour=fa_per_hour, voices=voices,
                            not_words=not_words, tune=tune, lexical=lexical, seed=seed, pronounce_text=False,
                            progress=progress)
        if kw is not None:
            return kw
    plan_keyword(text, phonemes, fa_per_hour, voices, not_words)      # everything checked first
    clips = load_examples(examples or [])
    return build_keyword(model, name, text, phonemes, clips, tune=tune, seed=seed,
                         progress=progress or (lambda line: None), fa_per_hour=fa_per_hour, quiet=quiet,
                         voices=voices, not_words=not_words, lexical=lexical, say=say)


def keyword_pronunciation(text: Optional[str], phonemes: Optional[str]) -> Optional[Pronunciation]:
    if phonemes:
        return parse_phonemes(phonemes)
    if text is not None:
        return pronounce(text)
    return None


def keyword_phonemes(pron: Pronunciation, phonemes: Optional[str] = None) -> str:
    """The misaki phoneme string Kokoro reads for a keyword (explicit ARPAbet keeps its stress
    digits)."""
    from kws.enroll import kokoro

    if phonemes:
        words = [w.upper().split() for w in " ".join(phonemes.split()).split(" | ")]
        return kokoro.misaki([w if any(c.isdigit() for c in " ".join(w)) else kokoro.add_stress(w)
                              for w in words])
    return kokoro.pronunciation_phonemes(pron)


def check_rate(fa_per_hour) -> Optional[float]:
    """A false-alarm rate as given (None: the default), refused unless a positive finite number."""
    if fa_per_hour is None:
        return None
    try:
        rate = float(fa_per_hour)
    except (TypeError, ValueError):
        raise EnrollError(f"the false-alarm rate must be > 0 false alarms an hour, got {fa_per_hour!r}") from None
    if not (rate > 0 and math.isfinite(rate)):
        raise EnrollError(f"the false-alarm rate must be > 0 false alarms an hour and finite, got {fa_per_hour}")
    return rate


@dataclass(frozen=True)
class Plan:
    """A keyword request, checked: what will be rendered and how its threshold will be set."""

    pron: Optional[Pronunciation]
    misaki: Optional[str]              # Kokoro's phoneme string (None: examples only)
    renderings: Tuple                  # kws.enroll.kokoro.Rendering of each voice
    fa_per_hour: Optional[float]
    not_parts: Tuple                   # kws.enroll.confusions.Part of each word that must not fire


def plan_keyword(text: Optional[str], phonemes: Optional[str], fa_per_hour=None,
                 voices: Optional[Sequence[str]] = None, not_words: Sequence[str] = ()) -> Plan:
    """Check everything about a keyword request that can be checked before rendering: the text
    (or ARPAbet), its length for the Kokoro voices, the voices, the false-alarm rate, the words
    that must not fire. Raises the error a user should see (KwsError)."""
    from kws.enroll import confusions, kokoro

    rate = check_rate(fa_per_hour)
    pron = keyword_pronunciation(text, phonemes)
    ph = None
    renderings: Tuple = ()
    if pron is not None:
        ph = keyword_phonemes(pron, phonemes)
        n = kokoro.tokens(ph).size - 2
        table = kokoro.voices()
        if n > table.max_tokens:
            raise kokoro.KokoroError(f"a text of {n} phoneme tokens is too long for the shipped Kokoro "
                                     f"voices (at most {table.max_tokens}): use a shorter keyword")
        renderings = tuple(kokoro.default_renderings() if voices is None else [kokoro.Rendering(v) for v in voices])
        if not renderings:
            raise EnrollError("no Kokoro voice to render the keyword with")
        for r in renderings:
            r.style(table, n)          # an unknown voice: KokoroError naming the voices there are
    nots = tuple(confusions.not_word(w) for w in not_words)
    return Plan(pron, ph, renderings, rate, nots)


def render_utterances(pron: Pronunciation, phonemes: Optional[str] = None, quiet: bool = True,
                      voices: Optional[Sequence[str]] = None, say: Progress = None,
                      label: Optional[str] = None) -> List[Tuple[str, np.ndarray]]:
    """The keyword spoken by every Kokoro voice (or those named): (origin, 16 kHz audio) each,
    from the render cache where it has them (kws.enroll.render_cache). ``say`` (with ``quiet`` off, a
    line on stderr) is told when rendering takes longer than a second."""
    from kws.enroll import kokoro, render_cache

    ph = keyword_phonemes(pron, phonemes)
    renderings = kokoro.default_renderings() if voices is None else [kokoro.Rendering(v) for v in voices]
    if not renderings:
        raise EnrollError("no Kokoro voice to render the keyword with")
    if say is None and not quiet:
        say = kokoro.stderr_line
    got = render_cache.render(ph, renderings, label=label or " ".join(pron.words) or None, say=say, quiet=quiet)
    return [(f"kokoro:{r.voice}", t.audio) for r, t in zip(renderings, got)]


def _arpabet_words(pron: Pronunciation) -> List[Tuple[str, List[str]]]:
    split = [w.split() for w in " ".join(pron.phonemes).split(" | ")]
    names = list(pron.words) if len(pron.words) == len(split) else [f"#{i}" for i in range(len(split))]
    return list(zip(names, split))


def _timing(ph: str, origin: str, audio: np.ndarray):
    """The timing of a rendering given as audio (kws.enroll.render_cache has it when it was made there)."""
    from kws.enroll import kokoro, render_cache

    if not origin.startswith("kokoro:"):
        return None
    try:
        t = render_cache.cached_rendering(ph, kokoro.Rendering(origin.split(":", 1)[1]))
    except kokoro.KokoroError:
        return None
    if t is None or t.audio.size != np.asarray(audio).size:
        return None
    return t


def _warm_background(model: Model, n_renderings: int):
    """On a machine of several cores, load the model's background bank (reading and unpacking its
    codes; they are decoded where scored) on a thread while Kokoro renders; None where there is
    one core."""
    import threading

    from kws.enroll import render_cache
    from kws.enroll import thresholds as th

    if render_cache.workers(max(n_renderings, 2)) < 2:
        return None

    def run() -> None:
        try:
            th.background(model)
        except Exception:
            pass                       # calibrate() loads it again and says what is wrong

    t = threading.Thread(target=run, name="kws-background", daemon=True)
    t.start()
    return t


def _tail(cal) -> Optional[dict]:
    """The exponential tail of the keyword's background peaks (kws.enroll.thresholds.Tail: ``u``,
    ``beta``, ``m``, ``hours``), as numbers; None where the calibration has none."""
    t = getattr(cal, "tail", None)
    try:
        return {"u": round(float(t.u), 6), "beta": round(float(t.beta), 6), "m": int(t.m),
                "hours": round(float(t.hours), 6)}
    except (AttributeError, TypeError, ValueError):
        return None


def _rate_at(cal, threshold: float) -> float:
    """False alarms an hour expected at ``threshold`` (at or above the calibrated one)."""
    if threshold <= cal.threshold + 1e-12:
        return float(cal.expected_per_hour)
    try:
        return float(cal.tail.rate(threshold))
    except Exception:                 # a calibration without its tail: at most the target's rate
        return float(cal.expected_per_hour)


def _keyword_key(model: Model, plan: Plan, seed: int) -> str:
    from kws.enroll import render_cache
    from kws.enroll import thresholds as th

    return render_cache.keyword_key(
        model, plan.misaki, plan.renderings, seed=seed, not_words=sorted(p.text for p in plan.not_parts),
        target=th.DEFAULT_FA_PER_HOUR if plan.fa_per_hour is None else plan.fa_per_hour)


def _alias_key(model: Model, text: Optional[str], phonemes: Optional[str], fa_per_hour,
               voices: Optional[Sequence[str]], not_words: Sequence[str], seed: int) -> str:
    """A typed keyword's request as it was given (normalised words, settings), for
    kws.enroll.render_cache's aliases: found again without pronouncing the text (CMUdict takes a second
    or two to read)."""
    import json

    from kws.enroll import kokoro, render_cache
    from kws.enroll import thresholds as th
    from kws.enroll.phonemes import normalize

    rate = check_rate(fa_per_hour)
    names = [r.voice for r in kokoro.default_renderings()] if voices is None else list(voices)
    return json.dumps({"v": 1, "model": model.model_id, "words": normalize(text) if not phonemes else None,
                       "phonemes": " ".join(phonemes.split()) if phonemes else None, "voices": names,
                       "target": th.DEFAULT_FA_PER_HOUR if rate is None else rate,
                       "not": sorted(" ".join(normalize(w)) for w in not_words), "seed": seed,
                       "pronunciation": render_cache.pronunciation_stamp(),
                       "code": render_cache.code_stamp()}, sort_keys=True)


def cached_keyword(model: Model, name: str, text: Optional[str], phonemes: Optional[str] = None, *,
                   fa_per_hour: Optional[float] = None, voices: Optional[Sequence[str]] = None,
                   not_words: Sequence[str] = (), tune: bool = False, lexical: bool = False,
                   seed: int = 0, pronounce_text: bool = True, progress: Progress = None) -> Optional[Keyword]:
    """The typed keyword :func:`build_keyword` would make, if kws.enroll.render_cache has it (no
    rendering, no threshold setting; found by the text as given in a few milliseconds, else,
    with ``pronounce_text``, by its phonemes); None otherwise. ``progress`` is told what
    :func:`build_keyword` tells (a word pronounced by the fallback G2P). Raises for a request
    that :func:`plan_keyword` refuses."""
    from kws.enroll import render_cache

    need = ["tune"] * bool(tune) + ["lexical"] * bool(lexical)
    kw, note = None, {}
    if text is not None or phonemes:
        hit = render_cache.load_alias(_alias_key(model, text, phonemes, fa_per_hour, voices, not_words, seed))
        if hit is not None:
            kw, note = render_cache.load_keyword(hit[0], need), hit[1]
    if kw is None and pronounce_text:
        plan = plan_keyword(text, phonemes, fa_per_hour, voices, not_words)
        if plan.pron is not None:
            kw, note = render_cache.load_keyword(_keyword_key(model, plan, seed), need), _note(plan.pron)
    if kw is None:
        return None
    if progress is not None and note.get("guessed"):
        progress(f"  not in the dictionary, pronounced by the fallback G2P: {', '.join(note['guessed'])} "
                 f"-> {kw.phonemes}")
    kw.name, kw.text = name, text
    return _only(kw, tune, lexical)


def _note(pron: Pronunciation) -> dict:
    return {"guessed": list(pron.guessed)}


_TUNED = ("recall_at_threshold", "recall_at_bank_threshold", "positives", "rating", "rating_reason")


def _only(kw: Keyword, tune: bool, lexical: bool) -> Keyword:
    """A cached keyword as a request that did less would have made it: without the recall, EER
    and rating (``tune`` off) or the dictionary neighbours (``lexical`` off). The threshold and
    vectors are the same either way."""
    if not tune:
        kw.eer = None
        for k in _TUNED:
            kw.tuned_on.pop(k, None)
    if not lexical and isinstance(kw.tuned_on.get("neighbours"), list):
        kw.tuned_on["neighbours"] = [n for n in kw.tuned_on["neighbours"]
                                     if not (isinstance(n, dict) and n.get("kind") in ("start", "end"))]
    return kw


def build_keyword(model: Model, name: str, text: Optional[str], phonemes: Optional[str],
                  examples: Sequence[np.ndarray], tune: bool = True, seed: int = 0,
                  progress: Callable[[str], None] = print, fa_per_hour: Optional[float] = None,
                  quiet: bool = True, utterances: Optional[Sequence[Tuple[str, np.ndarray]]] = None,
                  voices: Optional[Sequence[str]] = None, *, not_words: Sequence[str] = (),
                  lexical: bool = False, say: Progress = None, use_cache: bool = True) -> Keyword:
    """:func:`enroll_keyword` on examples already checked (:func:`load_examples`); ``utterances``:
    the text's renderings when already made (:func:`render_utterances`). ``use_cache``: read and
    keep a typed keyword (text only, no examples) in kws.enroll.render_cache."""
    from kws.enroll import confusions, render_cache
    from kws.enroll import thresholds as th
    from kws.spot.templates import keyword_templates

    if text is None and phonemes is None and not examples:
        raise EnrollError("give the keyword's text, examples, or both")
    plan = plan_keyword(text, phonemes, fa_per_hour, voices, not_words)
    pron = plan.pron
    if pron is not None and pron.guessed:
        progress(f"  not in the dictionary, pronounced by the fallback G2P: {', '.join(pron.guessed)} "
                 f"-> {pron}")
    key, done = None, ["tune"] * bool(tune) + ["lexical"] * bool(lexical)
    if use_cache and pron is not None and not examples and not utterances:
        key = _keyword_key(model, plan, seed)
        kw = render_cache.load_keyword(key, done)
        if kw is not None:
            kw.name, kw.text, kw.phonemes = name, text, str(pron)
            return _only(kw, tune, lexical)
    frames = model.frontend.frames
    made: List[Tuple[str, np.ndarray, np.ndarray]] = []       # (origin, audio, vectors)

    def add(origin: str, audio: np.ndarray, label: str) -> None:
        v = source_vectors(frames, audio, pad_s=model.pad_s)
        a, b = cut(v.shape[0], model.trim, model.trim_end)
        try:
            check_length(b - a, label)
        except TemplateError as exc:
            if origin == "recording":
                raise EnrollError(str(exc)) from None
            raise
        made.append((origin, audio, v))

    for i, e in enumerate(examples):           # recordings first: a refused one stops before rendering
        add("recording", e, f"recording {i + 1}")
    timed: List[Tuple[str, object]] = []
    warm = _warm_background(model, len(plan.renderings)) if pron is not None and not utterances else None
    if pron is not None:
        if utterances:
            rendered = list(utterances)
            timed = [(o, t) for o, a in rendered for t in [_timing(plan.misaki, o, a)] if t is not None]
        else:
            got = render_cache.render(plan.misaki, plan.renderings, label=text or phonemes, say=say, quiet=quiet)
            rendered = [(f"kokoro:{r.voice}", t.audio) for r, t in zip(plan.renderings, got)]
            timed = [(o, t) for (o, _), t in zip(rendered, got)]
        recordings, made = made, []
        for origin, audio in rendered:
            add(origin, audio, f"the rendering by {origin.split(':', 1)[1]}")
        rooms = model.rooms
        if rooms is not None and len(rooms):     # each rendering once more, as a room gives it back
            for i, (origin, audio) in enumerate(rendered):
                add(room_origin(origin), room_copy(audio, rooms[i % len(rooms)]),
                    f"the rendering by {origin.split(':', 1)[1]} in a room")
        made += recordings
    owner: List[int] = []              # each template's utterance (a room copy's is its rendering's)
    utterances: List[Tuple[str, np.ndarray]] = []
    rendering: dict = {}               # a rendering's origin -> its utterance (recordings share one origin)
    for o, a, _ in made:
        if utterance_of(o) != o:
            owner.append(rendering[utterance_of(o)])
        else:
            rendering.setdefault(o, len(utterances))
            owner.append(len(utterances))
            utterances.append((o, a))
    vecs = [v for _, _, v in made]
    segs = [v.shape[0] for v in vecs]
    origins = [o for o, _, _ in made]
    durs = [trim_silence(a, top_db=40.0, margin_s=0.0).size / SAMPLE_RATE for _, a in utterances]
    source = "+".join(s for s, on in (("text", pron is not None), ("examples", bool(examples))) if on)
    kw = Keyword(name=name, vectors=np.concatenate(vecs), threshold=0.0, segments=segs, origins=origins,
                 text=text, phonemes=str(pron) if pron is not None else None, source=source,
                 duration=float(np.median(durs)))
    templates = keyword_templates(model, kw)
    if warm is not None:
        warm.join()
    cal = th.calibrate(model, templates, plan.fa_per_hour)
    conf = confusions.check(model, templates, [utterance_of(o) for o in origins], words=pron.words if pron is not None else (),
                            phonemes=plan.misaki, timed=timed,
                            arpabet=_arpabet_words(pron) if pron is not None else (),
                            not_parts=plan.not_parts, lexical=lexical and pron is not None,
                            voices=[r.voice for r in plan.renderings] or None, say=say)
    kw.threshold = max(cal.threshold, conf.floor) if conf.floor is not None else cal.threshold
    kw.tuned_on = {"method": "false-alarm-rate", "target_per_hour": th.DEFAULT_FA_PER_HOUR
                   if plan.fa_per_hour is None else float(plan.fa_per_hour),
                   "expected_per_hour": round(_rate_at(cal, kw.threshold), 3),
                   "background_hours": round(cal.tail.hours, 2), "templates": len(templates),
                   "bank_threshold": round(float(cal.threshold), 4),
                   "floor": None if conf.floor is None else round(conf.floor, 4),
                   "neighbours": conf.neighbours()}
    tail = _tail(cal)
    if tail is not None:               # the bank's tail: a detector need not score the bank again
        kw.tuned_on["tail"] = tail
    recall = recall_bank = None
    if tune and len(utterances) > 1:
        pos = own_scores(model, templates, [a for _, a in utterances], np.random.default_rng(seed),
                         owners=owner)
        kw.eer = th.tune(pos, cal.tail.peaks)[0]
        recall = float(np.mean(pos >= kw.threshold))
        recall_bank = float(np.mean(pos >= cal.threshold))
        kw.tuned_on["recall_at_threshold"] = round(recall, 3)
        kw.tuned_on["recall_at_bank_threshold"] = round(recall_bank, 3)
        kw.tuned_on["positives"] = int(pos.size)
    if tune and pron is not None:
        rating, why = confusions.rate(pron.phonemes, kw.threshold, kw.tuned_on["neighbours"], recall,
                                      recall_bank, cal.threshold)
        kw.tuned_on["rating"], kw.tuned_on["rating_reason"] = rating, why
    if key is not None:
        render_cache.store_keyword(key, kw, done)
        try:
            render_cache.store_alias(_alias_key(model, text, phonemes, fa_per_hour, voices, not_words, seed), key,
                                     _note(pron))
        except KwsError:
            pass
    return kw


def own_scores(model: Model, templates: Sequence[np.ndarray], audio: Sequence[np.ndarray],
               rng: np.random.Generator, owners: Optional[Sequence[int]] = None) -> np.ndarray:
    """Each utterance's best score against the templates of all the others (leave one out), clean
    and with white noise at ``CHECK_SNR_DB``: how a voice or recording the keyword has not heard
    scores. ``owners``: each template's utterance (a room copy's is its rendering's, left out
    with it); default: template ``i`` is utterance ``i``."""
    from kws.enroll.thresholds import add_noise
    from kws.spot.templates import TRIM_TOP_DB, Matcher

    out = []
    for i, x in enumerate(audio):
        own = range(len(templates)) if owners is None else owners
        others = [t for t, o in zip(templates, own) if o != i]
        m = Matcher(TemplateBank.build([others], soft_max=model.soft_max))
        x = trim_silence(np.asarray(x, np.float32), top_db=TRIM_TOP_DB, margin_s=0.0)
        for clip in (x, add_noise(x, CHECK_SNR_DB, rng)):
            v = source_vectors(model.vectors, clip, trim=False, pad_s=model.pad_s)
            out.append(float(m.scores(v).max()) if v.shape[0] else -1.0)
    return np.array(out)
