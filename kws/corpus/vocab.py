"""The fixed, versioned vocabulary split: in-vocabulary (trained on) and out-of-vocabulary words.

Built once from CMUdict words ranked by ``wordfreq`` and committed as ``kws/corpus/vocab/*.txt``;
the corpus reads those files, so a rebuild of the corpus never changes the split.
Words of the real evaluation sets (digits, the wake words) are always out-of-vocabulary, so every
number on real speech is zero-shot.

    python -m kws.corpus.vocab      # rewrites the lists (needs the `wordfreq` package)
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import List

VOCAB_DIR = Path(__file__).parent / "vocab"
VERSION = 1
N_WORDS = 24000
OOV_FRACTION = 0.08
N_PHRASES = 1500
# Words of the real test sets in ../shared/data: never trained on.
HELD_OUT = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "oh",
            "alexa", "computer", "jarvis", "snowboy", "porcupine", "hey", "okay", "ok")


def read_list(name: str) -> List[str]:
    path = VOCAB_DIR / f"{name}.txt"
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def build(seed: int = 0) -> dict:
    from wordfreq import top_n_list

    from kws.enroll.phonemes import cmu_lexicon

    lex = cmu_lexicon()
    words = []
    for w in top_n_list("en", 200000):
        if w.isalpha() and w.isascii() and len(w) >= 2 and w in lex and w not in HELD_OUT:
            words.append(w)
        if len(words) >= N_WORDS:
            break
    rng = random.Random(seed)
    oov = set(rng.sample(words, int(len(words) * OOV_FRACTION)))
    iv = [w for w in words if w not in oov]
    oov_list = sorted(oov) + list(HELD_OUT)
    phrases = set()
    common = iv[:5000]
    while len(phrases) < N_PHRASES:
        k = rng.choice((2, 2, 3))
        phrases.add(" ".join(rng.choice(common) for _ in range(k)))
    VOCAB_DIR.mkdir(exist_ok=True)
    head = f"# kws vocabulary v{VERSION}, seed {seed}; see kws/corpus/vocab.py\n"
    (VOCAB_DIR / "iv.txt").write_text(head + "\n".join(iv) + "\n")
    (VOCAB_DIR / "oov.txt").write_text(head + "\n".join(oov_list) + "\n")
    (VOCAB_DIR / "phrases.txt").write_text(head + "\n".join(sorted(phrases)) + "\n")
    return {"iv": len(iv), "oov": len(oov_list), "phrases": len(phrases)}


if __name__ == "__main__":
    print(build())
