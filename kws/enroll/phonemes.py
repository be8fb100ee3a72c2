"""Text to phonemes: normalise text, look words up in CMUdict, fall back to the offline G2P.

Phonemes are the 39 ARPAbet symbols without stress. A phrase becomes one sequence with the word
boundary token ``|`` between words. Token ids: 0 = padding, 1 = ``|``, 2.. = phonemes.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from kws.enroll.lexicon import cmu_lexicon
from kws.errors import KwsError

PHONEMES: Tuple[str, ...] = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH",
    "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH",
    "UW", "V", "W", "Y", "Z", "ZH")
PAD_ID = 0
BOUNDARY = "|"
BOUNDARY_ID = 1
TOKENS: Tuple[str, ...] = ("<pad>", BOUNDARY) + PHONEMES
TOKEN_ID: Dict[str, int] = {t: i for i, t in enumerate(TOKENS)}
MAX_WORDS = 8
MAX_CHARS = 100

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


class TextError(KwsError, ValueError):
    """Text that cannot be turned into a keyword."""


# Latin letters that do not decompose into a base letter and accents
_LATIN_EXTRA = str.maketrans({"ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE",
                              "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ł": "l", "Ł": "L", "þ": "th",
                              "Þ": "TH", "ð": "dh", "Ð": "DH", "ı": "i", "ŋ": "ng", "ħ": "h"})
_APOSTROPHES = str.maketrans({c: "'" for c in "\u2019\u2018\u02bc\u02b9\u0060\u00b4\u2032\uff07"})
_DASHES = str.maketrans({c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2212\ufe63\uff0d"})


def transliterate(text: str) -> str:
    """Latin letters with accents to plain ones ("café" -> "cafe", "Zürich" -> "Zurich",
    "straße" -> "strasse"); typographic apostrophes and dashes to ASCII; compatibility forms
    (full-width letters, ligatures) to plain letters. Other scripts are left as they are."""
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES).translate(_DASHES))
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFC", text).translate(_LATIN_EXTRA)


def number_to_words(n: int) -> List[str]:
    """English words for 0 <= n < 10**9 ("7" -> seven, "42" -> forty two)."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + (number_to_words(n % 10) if n % 10 else [])
    if n < 1000:
        return [_ONES[n // 100], "hundred"] + (number_to_words(n % 100) if n % 100 else [])
    for size, name in ((10 ** 6, "million"), (1000, "thousand")):
        if n >= size:
            rest = n % size
            return number_to_words(n // size) + [name] + (number_to_words(rest) if rest else [])
    raise ValueError(n)


def normalize(text: str) -> List[str]:
    """Lower-case words of letters and apostrophes; digits spelled out; punctuation dropped.

    Accented Latin letters are transliterated (:func:`transliterate`); words in other scripts
    are refused with a :class:`TextError` (the model pronounces English only), never dropped.
    """
    if not isinstance(text, str):
        raise TextError(f"keyword text must be a string, got {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise TextError(f"keyword text is {len(text)} characters long; at most {MAX_CHARS}")
    plain = transliterate(text)
    foreign = [w for w in plain.split() if any(not c.isascii() and unicodedata.category(c)[0] in "LM"
                                               for c in w)]
    if foreign:
        raise TextError("only English words can be pronounced: " + ", ".join(repr(w) for w in foreign))
    words: List[str] = []
    for tok in re.findall(r"[A-Za-z']+|\d+", plain.replace("-", " ")):
        if tok.isdigit():
            words.extend(number_to_words(int(tok)) if len(tok) <= 9
                         else [_ONES[int(d)] for d in tok])
        else:
            tok = tok.strip("'").lower()
            if tok:
                words.append(tok)
    if not words:
        raise TextError(f"keyword text {text!r} has no letters or digits to pronounce")
    if len(words) > MAX_WORDS:
        raise TextError(f"keyword text {text!r} has {len(words)} words; at most {MAX_WORDS}")
    return words


@dataclass(frozen=True)
class Pronunciation:
    words: Tuple[str, ...]
    phonemes: Tuple[str, ...]          # with "|" between words
    guessed: Tuple[str, ...]           # words the fallback G2P pronounced

    def ids(self) -> np.ndarray:
        return np.array([TOKEN_ID[p] for p in self.phonemes], dtype=np.int64)

    def __str__(self) -> str:
        return " ".join(self.phonemes)


def word_phonemes(word: str) -> Tuple[List[str], bool]:
    """(phonemes, guessed) for one normalised word."""
    lex = cmu_lexicon()
    if word in lex:
        return list(lex[word]), False
    from kws.enroll.g2p import G2P          # loaded when first needed (python -m kws.enroll.g2p runs it)

    phones = G2P.default()(word.replace("'", ""))
    if not phones:
        raise TextError(f"cannot pronounce {word!r}")
    return phones, True


def pronounce(text: str) -> Pronunciation:
    """Normalise ``text`` and give its phoneme sequence with word boundaries."""
    words = normalize(text)
    seq: List[str] = []
    guessed: List[str] = []
    for i, w in enumerate(words):
        phones, g = word_phonemes(w)
        if g:
            guessed.append(w)
        if i:
            seq.append(BOUNDARY)
        seq.extend(phones)
    return Pronunciation(tuple(words), tuple(seq), tuple(guessed))


def parse_phonemes(spec: str) -> Pronunciation:
    """Accept an explicit ARPAbet string ("S N OW B OY", stress digits allowed, "|" between words)."""
    toks = [re.sub(r"\d", "", t).upper() for t in spec.split()]
    bad = [t for t in toks if t not in TOKEN_ID or t == "<PAD>"]
    if not toks or bad:
        raise TextError(f"not ARPAbet phonemes: {', '.join(bad) if bad else repr(spec)}")
    return Pronunciation(tuple(), tuple(toks), tuple())


def pad_ids(seqs: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """Batch token-id sequences: (B, T) int64 padded with 0, and (B,) int64 lengths."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    out = np.zeros((len(seqs), max(1, int(lengths.max(initial=1)))), dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out, lengths
