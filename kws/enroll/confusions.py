"""What a keyword could be confused with, checked when it is enrolled, and how good a wake word it is.

A keyword's threshold is set on hours of background (kws.enroll.thresholds), which hold few of the words
that sound most like it. Three kinds of such words are checked here, at enrollment:

- **parts of a phrase**: each of its words said alone ("toaster"), its prefixes of whole words
  ("hey", "ok google"), and, reported only, the first words with the start of the last one
  ("hey toa", kind ``partial``) and, from three words on, its suffixes ("google home"). They are
  cut from the keyword's own Kokoro renderings: Kokoro's predicted duration of each phoneme
  (kws.enroll.kokoro.render_timed) says where each word and phoneme lies in each rendering, so this
  costs no rendering at all.
  **A phrase must not fire on one of its words alone, nor on a prefix of whole words**: where
  one scores at or above the threshold the false-alarm rate gives, the threshold is raised to its
  score plus :data:`MARGIN` (the *floor*). Words given with ``enroll add --not WORD`` are
  rendered and must not fire either.
- **dictionary neighbours**: a few common words (CMUdict words of kws's vocabulary lists,
  kws/corpus/vocab) that share the start or the end of the keyword's longest word ("toast" and
  "coaster" for "hey toaster"), rendered in :data:`LEXICAL_VOICES` only (``enroll add`` and
  ``enroll check``). They are reported, and weigh in the rating; they do not move the threshold
  (say ``--not coaster`` for that).

Measured on eight phrases with all 28 voices (recall on the phrase's own renderings, each against
the other voices' templates, clean and with noise at 10 dB; ``python -m kws enroll check``): the
last word alone fires a two-word phrase at the false-alarm rate's threshold in most voices
("computer" in 28 of 28 for "hey computer", "kitchen" 25, "jarvis" 25 for "hey jarvis",
"morning" 21, "snowboy" 16, "toaster" 13, "jarvis" 15 for "ok jarvis"), which is what the floor
is for. It costs recall: 95-100 % -> 59-98 % (clean renderings alone: 100 % -> 89-100 %); "ok
jarvis" and "hey snowboy" lose 0-9 points, "hey computer", "hey toaster", "hey kitchen" and "hey
jarvis" 20-27, "good morning" 34. A floor above the partial prefixes and suffixes too took it to
27-61 % ("hey snowboy": 100 % -> 27 %, "turn on the lights" 95 % -> 59 % for "on the lights"):
a phrase's own start, cut inside its last word, scores nearly as high as the phrase. They are
listed, not floored; ``--not "hey toast"`` makes one such confusion a floor where it matters.

**Scores** are the detector's: each clip (a part cut from a rendering, a neighbour rendered, as
it is: not trimmed of silence, see :func:`clip_scores`) is padded with the model's ``pad_s`` of
silence on both sides (a short one with more silence before it, so that the longest template
fits: the detector hears a word said alone after silence), and matched against the keyword's
templates (kws.spot.templates.Matcher over its vectors), best score anywhere. A clip is never matched against
the template of its own voice (the same voice saying the same word would match itself: the
detector will hear voices it has no template of), as kws.enroll.build.own_scores measures recall.
A part's or neighbour's score is its highest over the voices.

The floor costs recall where it raises the threshold; ``enroll add`` prints it, and
``tuned_on`` keeps what was done: ``bank_threshold`` (the false-alarm rate's threshold),
``floor`` (the lowest threshold the parts and ``--not`` words allow; None where there are
none), ``neighbours`` (every part and neighbour with its kind and score, highest first), and,
with the recall measured, ``recall_at_bank_threshold`` beside ``recall_at_threshold``.

Rating
------
``enroll add`` and ``enroll check`` rate a keyword as a wake word, with the reason (:func:`rate`):

**risky** when any of these holds:

- one syllable (``one short syllable`` for three phonemes or fewer): short words match much of
  ordinary speech, and the threshold that keeps false alarms down then misses the word itself;
- recall under 70 % on its own renderings at the threshold (voices it has no template of, clean
  and with noise at 10 dB);
- a dictionary neighbour scores at or above the threshold (it would fire).

**fair** when none of those holds but any of these does:

- two syllables;
- recall under 90 %;
- a dictionary neighbour, a word of the phrase or a prefix of whole words comes within
  :data:`CLOSE` (0.05) under the threshold;
- the floor raised the threshold (a word of the phrase alone scores near the phrase; the
  reason gives the recall it cost).

**good** otherwise: three syllables or more, recall of 90 % or more (where measured), nothing
within 0.05. Partial prefixes and suffixes are listed but not rated: nearly every phrase has one
above its threshold (see above).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

MARGIN = 0.02                     # the floor: this much above the highest part that must not fire
CLOSE = 0.05                      # a neighbour this close under the threshold is "close"
LEXICAL_VOICES = ("bf_emma", "am_adam")       # dictionary neighbours and --not words: these voices
N_START = 1                       # dictionary neighbours sharing the start of the keyword's longest word
N_END = 1                         # ... and sharing its end
MAX_PARTS = 12                    # phrase parts checked at most (a long phrase: the first ones)
MUST_NOT_FIRE = ("word", "prefix", "not")       # the kinds of part that set the floor
_VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
_MISAKI_VOWELS = set("AIOWYæɑɔəɛɜɪʊʌiuᵊ")
_STRESS = set("ˈˌ")


@dataclass(frozen=True)
class Part:
    """A piece of the keyword, or another word, that must not fire it (or is only reported).

    ``ranges``: where it lies in the keyword's misaki phoneme string ([first, stop) symbols, one
    per occurrence), for parts cut from the renderings; ``phonemes``: its own misaki string, for
    words that are rendered."""

    text: str
    kind: str                                   # word, prefix, partial, suffix, not, start, end
    ranges: Tuple[Tuple[int, int], ...] = ()
    phonemes: Optional[str] = None

    @property
    def must_not_fire(self) -> bool:
        return self.kind in MUST_NOT_FIRE


@dataclass
class Confusions:
    """What :func:`check` found."""

    scores: Dict[str, float] = field(default_factory=dict)      # text -> best score over voices
    kinds: Dict[str, str] = field(default_factory=dict)
    floor: Optional[float] = None

    def neighbours(self) -> List[dict]:
        """Every part and neighbour, highest score first: ``{"text", "kind", "score"}``."""
        return [{"text": t, "kind": self.kinds[t], "score": round(s, 4)}
                for t, s in sorted(self.scores.items(), key=lambda kv: -kv[1])]


# ------------------------------------------------------------------ parts of a phrase
def _syllable_cuts(word: str) -> List[int]:
    """Where a misaki word can be cut after each of its syllables' vowels (an r after a vowel
    stays with it unless a vowel follows): symbol positions, the last syllable's excluded."""
    cuts = []
    i = 0
    while i < len(word):
        if word[i] in _MISAKI_VOWELS:
            j = i + 1
            if j < len(word) and word[j] == "ɹ" and not (j + 1 < len(word) and word[j + 1] in _MISAKI_VOWELS):
                j += 1
            cuts.append(j)
            i = j
        else:
            i += 1
    return cuts[:-1]


def _spelled(word: str, ph: str, cut: int) -> str:
    """The letters of ``word`` that its misaki ``ph`` cut at ``cut`` roughly stands for."""
    sounds = [c for c in ph if c not in _STRESS]
    said = [c for c in ph[:cut] if c not in _STRESS]
    n = max(1, min(len(word) - 1, math.ceil(len(word) * len(said) / max(len(sounds), 1))))
    return word[:n]


def phrase_parts(words: Sequence[str], phonemes: str) -> List[Part]:
    """The parts of a phrase: each word alone, the prefixes of whole words, the whole words
    before the last one with each syllable-start of it (``partial``) and, from three words on,
    the suffixes of whole words. ``phonemes``: the phrase's misaki string (one word per space).
    A single word has none."""
    ws = phonemes.split(" ")
    if len(ws) < 2 or len(ws) != len(words):
        return []
    starts = []
    pos = 0
    for w in ws:
        starts.append(pos)
        pos += len(w) + 1
    end = len(phonemes)
    found: Dict[str, List[Tuple[int, int]]] = {}
    kinds: Dict[str, str] = {}

    def add(text: str, kind: str, a: int, b: int) -> None:
        kinds.setdefault(text, kind)
        found.setdefault(text, [])
        if (a, b) not in found[text]:
            found[text].append((a, b))

    for i, w in enumerate(words):
        add(w, "word", starts[i], starts[i] + len(ws[i]))
    for j in range(2, len(ws)):
        add(" ".join(words[:j]), "prefix", 0, starts[j - 1] + len(ws[j - 1]))
    head = " ".join(words[:-1])
    for cut in _syllable_cuts(ws[-1]):
        add(f"{head} {_spelled(words[-1], ws[-1], cut)}", "partial", 0, starts[-1] + cut)
    for j in range(1, len(ws) - 1):
        add(" ".join(words[j:]), "suffix", starts[j], end)
    parts = [Part(t, kinds[t], tuple(r)) for t, r in found.items() if t != " ".join(words)]
    return parts[:MAX_PARTS]


def cut_part(timed, part: Part) -> List[np.ndarray]:
    """The audio of ``part`` in one rendering (kws.enroll.kokoro.Timed), once per occurrence."""
    from kws.enroll.kokoro import char_span

    out = []
    for a, b in part.ranges:
        s, e = char_span(timed.durations, a, b, timed.audio.size)
        if e > s:
            out.append(timed.audio[s:e])
    return out


# ------------------------------------------------------------------ dictionary neighbours
@lru_cache(maxsize=1)
def _pool() -> Tuple[Tuple[str, Tuple[str, ...]], ...]:
    """Common words with their CMUdict phonemes, most frequent first (the word lists shipped in
    kws/corpus/vocab, read as files: the training package itself is not imported at run time)."""
    from pathlib import Path

    from kws.enroll.lexicon import cmu_lexicon

    lex = cmu_lexicon()
    folder = Path(__file__).resolve().parents[1] / "corpus" / "vocab"
    seen, out = set(), []
    for name in ("iv", "oov"):
        try:
            lines = (folder / f"{name}.txt").read_text().splitlines()
        except OSError:
            continue
        words = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]
        for w in words:
            if w not in seen and w in lex and w.isalpha():
                seen.add(w)
                out.append((w, tuple(lex[w])))
    return tuple(out)


def _common(a: Sequence[str], b: Sequence[str]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def lexical_neighbours(words: Sequence[Tuple[str, Sequence[str]]], n_start: int = N_START,
                       n_end: int = N_END) -> List[Part]:
    """Common words that share the start or the end of the keyword's longest word.

    ``words``: the keyword's words with their phonemes (ARPAbet, no stress). A neighbour shares
    at least half of that word's phonemes (3 or more) at its start or its end, is not the word,
    not one of the keyword's words, and does not hold the whole word ("toasters"): nearest in
    length first, then most frequent."""
    cands = [(w, list(p)) for w, p in words if len(p) >= 3]
    if not cands:
        return []
    target_word, target = max(cands, key=lambda wp: len(wp[1]))
    own = {w for w, _ in words}
    need = max(3, math.ceil(len(target) / 2))
    starts, ends = [], []
    for rank, (w, p) in enumerate(_pool()):
        if w in own or w == target_word or list(p) == target:
            continue
        cp = _common(p, target)
        cs = _common(p[::-1], target[::-1])
        if cp >= len(target) or cs >= len(target):          # holds the whole word
            continue
        if cp >= need:
            starts.append((-cp, abs(len(p) - len(target)), rank, w, p))
        elif cs >= need:
            ends.append((-cs, abs(len(p) - len(target)), rank, w, p))
    out = [Part(w, "start", phonemes=_misaki(w)) for *_, w, p in sorted(starts)[:n_start]]
    out += [Part(w, "end", phonemes=_misaki(w)) for *_, w, p in sorted(ends)[:n_end]]
    return [p for p in out if p.phonemes]


def _misaki(text: str) -> Optional[str]:
    from kws.enroll import kokoro
    from kws.enroll.phonemes import pronounce

    try:
        ph = kokoro.pronunciation_phonemes(pronounce(text))
        kokoro.tokens(ph)
        return ph
    except Exception:
        return None


def not_word(text: str) -> Part:
    """A word or phrase given to ``--not``: checked (pronounceable, short enough for Kokoro)
    before anything is rendered; KwsError otherwise."""
    from kws.enroll import kokoro
    from kws.enroll.phonemes import pronounce

    ph = kokoro.pronunciation_phonemes(pronounce(text))
    n = kokoro.tokens(ph).size - 2
    if n > kokoro.voices().max_tokens:
        raise kokoro.KokoroError(f"--not {text!r} is too long for the Kokoro voices ({n} phoneme tokens, "
                                 f"at most {kokoro.voices().max_tokens})")
    return Part(" ".join(pronounce(text).words), "not", phonemes=ph)


# ------------------------------------------------------------------ scoring
def clip_scores(model, templates: Sequence[np.ndarray], owners: Sequence[str],
                clips: Sequence[Tuple[str, np.ndarray]]) -> np.ndarray:
    """Each clip's best score against the templates, as the detector scores: the clip as it is
    (not trimmed: a word's faint start and end, and the near-silence Kokoro renders around a word,
    are what a microphone hears too; trimmed at 40 dB, a word alone scored up to 0.12 lower than
    in a stream), padded with the model's ``pad_s`` of silence, its vectors through
    kws.spot.templates.Matcher; the templates whose owner is the clip's (its voice) left out, the
    others combined as the model combines a keyword's (kws.spot.templates.combine).
    ``clips``: (owner, audio)."""
    from kws.audio.io import SAMPLE_RATE
    from kws.spot.templates import Matcher, TemplateBank, combine

    owners = np.asarray(list(owners))
    bank = TemplateBank.build([[t] for t in templates])                 # one column per template
    matcher = Matcher(bank)
    pad = np.zeros(int(model.pad_s * SAMPLE_RATE), np.float32)
    fe = model.frontend
    # before a short clip, more silence, so that the longest template fits (and two vectors more):
    # the detector hears a word said alone after silence (a stream starts primed with silence,
    # kws.spot.detector), so every template can lie over it and the silence before it
    need = fe.span + (bank.longest + 1) * fe.hop
    out = []
    for owner, x in clips:
        x = np.asarray(x, np.float32).reshape(-1)
        if x.size == 0 or not np.any(np.abs(x) > 1e-4):
            out.append(-1.0)
            continue
        lead = np.zeros(pad.size + max(0, need - (2 * pad.size + x.size)), np.float32)
        v = model.vectors(np.concatenate([lead, x, pad]))
        if v.shape[0] == 0:
            out.append(-1.0)
            continue
        s = matcher.scores(v)
        keep = owners != owner
        out.append(float(combine(s[:, keep if keep.any() else slice(None)], model.soft_max).max()))
    return np.array(out, np.float64)


def check(model, templates: Sequence[np.ndarray], owners: Sequence[str], *,
          words: Sequence[str] = (), phonemes: Optional[str] = None,
          timed: Sequence[Tuple[str, object]] = (), arpabet: Sequence[Tuple[str, Sequence[str]]] = (),
          not_parts: Sequence[Part] = (), lexical: bool = False, voices: Optional[Sequence[str]] = None,
          say: Optional[Callable[[str], None]] = None) -> Confusions:
    """Score a keyword's confusions (module docstring).

    Args:
        model: the model.
        templates: the keyword's templates (matching space), one per utterance.
        owners: each template's origin (``kokoro:<voice>``, ``recording``).
        words: the keyword's words (for the parts of a phrase).
        phonemes: its misaki phoneme string.
        timed: (origin, kws.enroll.kokoro.Timed) of its renderings whose timing is known.
        arpabet: (word, phonemes) of its words, for the dictionary neighbours.
        not_parts: words that must not fire (:func:`not_word`), rendered here.
        lexical: also find and render dictionary neighbours.
        voices: the voices neighbours may be rendered in (default: :data:`LEXICAL_VOICES`).
        say: told about renderings that take longer than a second.
    """
    from kws.enroll import kokoro, render_cache

    out = Confusions()
    clips: List[Tuple[str, np.ndarray]] = []
    which: List[Part] = []
    parts = phrase_parts(words, phonemes) if phonemes and words else []
    for origin, t in timed:
        for p in parts:
            for c in cut_part(t, p):
                clips.append((origin, c))
                which.append(p)
    rendered = list(not_parts) + (lexical_neighbours(arpabet) if lexical else [])
    if rendered:
        names = kokoro.voices().names
        allowed = [v for v in (voices or names) if v in names]
        use = [v for v in LEXICAL_VOICES if v in allowed] or allowed[:len(LEXICAL_VOICES)]
        rs = [kokoro.Rendering(v) for v in use]
        kokoro.ready(say)
        n = len(rendered)
        with kokoro.after_a_second(say, f"rendering {n} word{'s' * (n != 1)} to check against "
                                        f"({', '.join(p.text for p in rendered)}) in {len(rs)} voices ..."):
            for p in rendered:
                try:
                    got = render_cache.render(p.phonemes, rs)
                except kokoro.KokoroError:
                    continue
                for r, t in zip(rs, got):
                    clips.append((f"kokoro:{r.voice}", t.audio))
                    which.append(p)
    if not clips:
        return out
    scores = clip_scores(model, templates, owners, clips)
    for p, s in zip(which, scores):
        if s > out.scores.get(p.text, -2.0):
            out.scores[p.text] = float(s)
            out.kinds[p.text] = p.kind
    must = [s for p, s in zip(which, scores) if p.must_not_fire]
    if must:
        out.floor = float(max(must)) + MARGIN
    return out


# ------------------------------------------------------------------ rating
_NUMBERS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def syllables(phonemes: Sequence[str]) -> int:
    """Vowels of an ARPAbet sequence (stress digits and ``|`` allowed)."""
    return sum(1 for p in phonemes if p.rstrip("012") in _VOWELS)


def rate(phonemes: Sequence[str], threshold: float, neighbours: Sequence[dict],
         recall: Optional[float] = None, recall_bank: Optional[float] = None,
         bank_threshold: Optional[float] = None) -> Tuple[str, str]:
    """(rating, reason): ``good``, ``fair`` or ``risky``, decided as the module docstring says.

    Args:
        phonemes: the keyword's ARPAbet (``|`` between words).
        threshold: its threshold.
        neighbours: :meth:`Confusions.neighbours` (text, kind, score).
        recall: recall on its own renderings at ``threshold`` (None: not measured).
        recall_bank: the same at ``bank_threshold``.
        bank_threshold: the threshold the false-alarm rate gave.
    """
    n_syl = syllables(phonemes)
    n_ph = sum(1 for p in phonemes if p != "|")
    risky, fair = [], []
    if n_syl <= 1:
        risky.append("one short syllable" if n_ph <= 3 else "one syllable")
    elif n_syl == 2:
        fair.append("two syllables")
    if recall is not None:
        if recall < 0.70:
            risky.append(f"found in only {recall:.0%} of its renderings" if recall > 0 else
                         "found in none of its renderings")
        elif recall < 0.90:
            fair.append(f"found in {recall:.0%} of its renderings")
    firing = [n for n in neighbours if n["kind"] in ("start", "end") and n["score"] >= threshold]
    if firing:
        n = firing[0]
        risky.append(f"{n['text']!r} would fire it ({n['score']:.2f} >= {threshold:.2f})")
    raised = bank_threshold is not None and threshold > bank_threshold + 1e-9
    top = next((n for n in neighbours if n["kind"] in MUST_NOT_FIRE), None)
    if raised:
        what = f"{top['text']!r}" if top else "its parts"
        if recall is not None and recall_bank is not None and recall_bank - recall > 0.005:
            fair.append(f"{what} alone scores close to it: not firing on it costs recall "
                        f"({recall_bank:.0%} -> {recall:.0%})")
        else:
            fair.append(f"threshold raised so that {what} does not fire")
    close = [n for n in neighbours if threshold - CLOSE < n["score"] < threshold
             and n["kind"] in ("word", "prefix", "not", "start", "end")
             and not (raised and top is not None and n["text"] == top["text"])]
    if close:
        n = max(close, key=lambda n: n["score"])
        fair.append(f"{n['text']!r} comes within {threshold - n['score']:.2f} of the threshold")
    if risky:
        return "risky", "; ".join(risky)
    if fair:
        return "fair", "; ".join(fair)
    words = _NUMBERS[n_syl] if n_syl < len(_NUMBERS) else str(n_syl)
    near = "no close neighbour"
    return "good", f"{words} syllables, " + (f"recall {recall:.0%}, " if recall is not None else "") + near
