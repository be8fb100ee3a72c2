"""Enrollment: a keyword from its text, recordings of it, or both, with a threshold of its own.

    import kws
    kw = kws.enroll_keyword("hey computer")                                   # by text
    kw = kws.enroll_keyword("snowboy", examples=["a.wav", "b.wav", "c.wav"])  # by recordings
    det = kws.Detector(kws.KeywordSet(kws.Model.load().model_id, [kw]))

``python -m kws enroll add`` is this call plus the keyword store.

- **Text**: Kokoro-82M speaks the keyword in each of its 28 English voices (kws.kokoro); every
  rendering becomes a template (kws.templates). Any word or phrase: words the dictionary lacks
  are pronounced by the offline G2P.
- **Recordings**: each is checked (not silent, not clipped, 0.2-10 s long, at most 3 s of sound)
  and becomes a template too. Text and recordings together make the strongest keyword.
- **Threshold**: set for a false-alarm rate (default 1 an hour) on the model's background bank
  (kws.thresholds), and reported with the rate expected there. ``tune`` also measures how well
  the keyword's own utterances are found: each one scored against the others' templates (a
  voice or recording it has not heard), clean and with noise at 10 dB, gives the recall at the
  threshold and the EER against the background's peaks.
"""
from __future__ import annotations

import os
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np

from kws.audio import SAMPLE_RATE, load_audio, prepare, trim_silence
from kws.errors import KwsError
from kws.keywords import Keyword
from kws.model import Model
from kws.phonemes import Pronunciation, parse_phonemes, pronounce
from kws.templates import TemplateBank, TemplateError, check_length, cut, source_vectors

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
                   voices: Optional[Sequence[str]] = None) -> Keyword:
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
            fewer enroll faster and match less well).
    Returns:
        The :class:`~kws.keywords.Keyword`, not yet stored: add it to a
        :class:`~kws.keywords.KeywordSet` (``python -m kws enroll add`` adds it to the store).
    Raises:
        EnrollError: nothing to enroll from, or an example refused.
        kws.audio.AudioError: an example file that cannot be read.
        kws.phonemes.TextError: a text that cannot be pronounced.
        kws.kokoro.KokoroError: a text too long for the TTS, or its model missing or damaged.
    """
    if text is None and phonemes is None and not examples:
        text = name
    clips = load_examples(examples or [])
    return build_keyword(model or Model.load(), name, text, phonemes, clips, tune=tune, seed=seed,
                         progress=progress or (lambda line: None), fa_per_hour=fa_per_hour, quiet=quiet,
                         voices=voices)


def keyword_pronunciation(text: Optional[str], phonemes: Optional[str]) -> Optional[Pronunciation]:
    if phonemes:
        return parse_phonemes(phonemes)
    if text is not None:
        return pronounce(text)
    return None


def render_utterances(pron: Pronunciation, phonemes: Optional[str] = None, quiet: bool = True,
                      voices: Optional[Sequence[str]] = None) -> List[Tuple[str, np.ndarray]]:
    """The keyword spoken by every Kokoro voice (or those named): (origin, 16 kHz audio) each."""
    from kws import kokoro
    from kws.progress import progress as bar

    if phonemes:                                  # explicit ARPAbet keeps its stress digits
        words = [w.upper().split() for w in " ".join(phonemes.split()).split(" | ")]
        ph = kokoro.misaki([w if any(c.isdigit() for c in " ".join(w)) else kokoro.add_stress(w) for w in words])
    else:
        ph = kokoro.pronunciation_phonemes(pron)
    renderings = kokoro.default_renderings() if voices is None else [kokoro.Rendering(v) for v in voices]
    if not renderings:
        raise EnrollError("no Kokoro voice to render the keyword with")
    return [(f"kokoro:{r.voice}", kokoro.render(ph, r))
            for r in bar(renderings, "rendering with Kokoro", quiet=quiet, unit="voice")]


def build_keyword(model: Model, name: str, text: Optional[str], phonemes: Optional[str],
                  examples: Sequence[np.ndarray], tune: bool = True, seed: int = 0,
                  progress: Callable[[str], None] = print, fa_per_hour: Optional[float] = None,
                  quiet: bool = True, utterances: Optional[Sequence[Tuple[str, np.ndarray]]] = None,
                  voices: Optional[Sequence[str]] = None) -> Keyword:
    """:func:`enroll_keyword` on examples already checked (:func:`load_examples`); ``utterances``:
    the text's renderings when already made (:func:`render_utterances`)."""
    from kws import thresholds as th
    from kws.templates import keyword_templates

    if text is None and phonemes is None and not examples:
        raise EnrollError("give the keyword's text, examples, or both")
    pron = keyword_pronunciation(text, phonemes)
    frames = model.frontend.frames
    made: List[Tuple[str, np.ndarray, np.ndarray]] = []       # (origin, audio, vectors)

    def add(origin: str, audio: np.ndarray, label: str) -> None:
        v = source_vectors(frames, audio, pad_s=model.pad_s)
        a, b = cut(v.shape[0], model.trim)
        try:
            check_length(b - a, label)
        except TemplateError as exc:
            if origin == "recording":
                raise EnrollError(str(exc)) from None
            raise
        made.append((origin, audio, v))

    for i, e in enumerate(examples):           # recordings first: a refused one stops before rendering
        add("recording", e, f"recording {i + 1}")
    if pron is not None:
        if pron.guessed:
            progress(f"  not in the dictionary, pronounced by the fallback G2P: {', '.join(pron.guessed)} "
                     f"-> {pron}")
        rendered = list(utterances or []) or render_utterances(pron, phonemes, quiet=quiet, voices=voices)
        recordings, made = made, []
        for origin, audio in rendered:
            add(origin, audio, f"the rendering by {origin.split(':', 1)[1]}")
        made += recordings
    utterances = [(o, a) for o, a, _ in made]
    vecs = [v for _, _, v in made]
    segs = [v.shape[0] for v in vecs]
    origins = [o for o, _, _ in made]
    durs = [trim_silence(a, top_db=40.0, margin_s=0.0).size / SAMPLE_RATE for _, a, _ in made]
    source = "+".join(s for s, on in (("text", pron is not None), ("examples", bool(examples))) if on)
    kw = Keyword(name=name, vectors=np.concatenate(vecs), threshold=0.0, segments=segs, origins=origins,
                 text=text, phonemes=str(pron) if pron is not None else None, source=source,
                 duration=float(np.median(durs)))
    templates = keyword_templates(model, kw)
    cal = th.calibrate(model, templates, fa_per_hour)
    kw.threshold = cal.threshold
    kw.tuned_on = {"method": "false-alarm-rate", "target_per_hour": th.DEFAULT_FA_PER_HOUR
                   if fa_per_hour is None else float(fa_per_hour),
                   "expected_per_hour": round(cal.expected_per_hour, 3),
                   "background_hours": round(cal.tail.hours, 2), "templates": len(templates)}
    if tune and len(utterances) > 1:
        pos = own_scores(model, templates, [a for _, a in utterances], np.random.default_rng(seed))
        kw.eer = th.tune(pos, cal.tail.peaks)[0]
        kw.tuned_on["recall_at_threshold"] = round(float(np.mean(pos >= kw.threshold)), 3)
        kw.tuned_on["positives"] = int(pos.size)
    return kw


def own_scores(model: Model, templates: Sequence[np.ndarray], audio: Sequence[np.ndarray],
               rng: np.random.Generator) -> np.ndarray:
    """Each utterance's best score against the templates of all the others (leave one out), clean
    and with white noise at ``CHECK_SNR_DB``: how a voice or recording the keyword has not heard
    scores."""
    from kws.templates import Matcher
    from kws.thresholds import add_noise

    out = []
    pad = np.zeros(int(model.pad_s * SAMPLE_RATE), np.float32)
    for i, x in enumerate(audio):
        others = [t for j, t in enumerate(templates) if j != i]
        m = Matcher(TemplateBank.build([others]))
        x = trim_silence(np.asarray(x, np.float32), top_db=40.0, margin_s=0.0)
        for clip in (x, add_noise(x, CHECK_SNR_DB, rng)):
            v = model.vectors(np.concatenate([pad, clip, pad]))
            out.append(float(m.scores(v).max()) if v.shape[0] else -1.0)
    return np.array(out)


def migrate_store(directory, model: Model, progress: Callable[[str], None] = print) -> dict:
    """Make a store written by an earlier kws (or for another model) work with ``model``.

    Typed keywords (their text or phonemes are kept) are enrolled again from their text, with the
    same name and false-alarm target; keywords enrolled from recordings alone cannot be (their
    audio was not kept) and are reported. The store's files are copied to ``old-<time>/`` first.
    Returns {"migrated": [names], "skipped": {name: why}, "aside": folder}.
    """
    import json
    from pathlib import Path

    from kws.keywords import (STORE_FILE, KeywordSet, StoreError, _set_aside, store_lock)

    with store_lock(directory) as d:
        f = Path(d) / STORE_FILE
        if not f.is_file():
            raise StoreError(f"{d}: no keyword store here to migrate")
        try:
            doc = json.loads(f.read_bytes().decode("utf-8"))
            metas = list(doc["keywords"])
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{f}: cannot be read as a keyword store ({exc})") from None
        migrated, skipped = [], {}
        ks = KeywordSet(model.model_id)
        if doc.get("version") == 2:       # same front end, another head: same utterances, new thresholds
            from kws import thresholds as th
            from kws.templates import keyword_templates

            for kw in KeywordSet.load(d):
                target = kw.tuned_on.get("target_per_hour")
                cal = th.calibrate(model, keyword_templates(model, kw),
                                   target if isinstance(target, (int, float)) and target > 0 else None)
                kw.threshold = cal.threshold
                kw.tuned_on.update(expected_per_hour=round(cal.expected_per_hour, 3))
                kw.tuned_on.pop("recall_at_threshold", None)
                kw.eer = None
                ks.add(kw)
                migrated.append(kw.name)
            metas = []
        for m in metas:
            name = m.get("name")
            if not isinstance(name, str):
                continue
            text, phon = m.get("text"), m.get("phonemes")
            if "text" not in str(m.get("source", "text")) or not (text or phon):
                skipped[name] = "enrolled from recordings only: enroll it again with --examples or --record"
                continue
            target = (m.get("tuned_on") or {}).get("target_per_hour")
            progress(f"enrolling {name!r} again from its text ...")
            try:
                kw = build_keyword(model, name, text, None if text else phon, [], tune=True,
                                   fa_per_hour=target if isinstance(target, (int, float)) and target > 0 else None,
                                   progress=progress)
            except KwsError as exc:
                skipped[name] = str(exc)
                continue
            ks.add(kw)
            migrated.append(name)
        aside = _set_aside(Path(d))
        for p in [Path(d) / "keywords.backup.json", *Path(d).glob("vectors-*.npz")]:
            p.unlink(missing_ok=True)
        f.unlink()
        ks.save(d)
    return {"migrated": migrated, "skipped": skipped, "aside": str(aside)}
