"""Offline letter-to-phoneme fallback for words CMUdict does not know ("snowboy", brand names).

Model: each letter emits zero, one or two phonemes. Letters and phonemes of CMUdict are aligned by
hard (Viterbi) EM, then each letter's output is predicted from its neighbours with a back-off
table: the widest letter context seen in training wins. The table is pruned of entries that
agree with what the narrower context would say, and shipped as ``kws/assets/g2p.json.gz``.

Build and evaluate it (pure Python, about two minutes on one core)::

    python -m kws g2p build            # writes kws/assets/g2p.json.gz, prints held-out PER
"""
from __future__ import annotations

import gzip
import json
import math
import random
from collections import Counter, defaultdict
from functools import lru_cache
from importlib import resources
from typing import Dict, Iterable, List, Sequence, Tuple

from kws.enroll.lexicon import cmu_lexicon

# Contexts tried from widest to narrowest: (letters to the left, letters to the right).
BACKOFF: Tuple[Tuple[int, int], ...] = (
    (4, 4), (3, 4), (4, 3), (3, 3), (2, 3), (3, 2), (2, 2), (1, 2), (2, 1),
    (1, 1), (0, 2), (2, 0), (0, 1), (1, 0), (0, 0))
PAD = "#"
TABLE_RESOURCE = "g2p.json.gz"


def _key(word: str, i: int, left: int, right: int) -> str:
    padded = PAD * 4 + word + PAD * 4
    j = i + 4
    return f"{left}{right}:{padded[j - left:j + 1 + right]}"


class G2P:
    """Predict ARPAbet phonemes (stress removed) for a lower-case word of letters a-z and '."""

    def __init__(self, table: Dict[str, str]):
        self.table = table

    @classmethod
    @lru_cache(maxsize=1)
    def default(cls) -> "G2P":
        data = (resources.files("kws") / "assets" / TABLE_RESOURCE).read_bytes()
        return cls(json.loads(gzip.decompress(data).decode("utf-8"))["table"])

    def letter_output(self, word: str, i: int) -> str:
        for left, right in BACKOFF:
            out = self.table.get(_key(word, i, left, right))
            if out is not None:
                return out
        return ""

    def __call__(self, word: str) -> List[str]:
        phones: List[str] = []
        for i in range(len(word)):
            out = self.letter_output(word, i)
            if out:
                phones.extend(out.split("_"))
        return phones


# --------------------------------------------------------------------------- training

def _chunks(phones: Sequence[str]) -> Iterable[Tuple[int, str]]:
    yield 0, ""
    if len(phones) >= 1:
        yield 1, phones[0]
    if len(phones) >= 2:
        yield 2, phones[0] + "_" + phones[1]


def _viterbi(word: str, phones: Sequence[str], logp) -> List[str] | None:
    n, m = len(word), len(phones)
    neg = -1e18
    best = [[neg] * (m + 1) for _ in range(n + 1)]
    back: List[List[Tuple[int, str] | None]] = [[None] * (m + 1) for _ in range(n + 1)]
    best[0][0] = 0.0
    for i in range(1, n + 1):
        letter = word[i - 1]
        lp = logp[letter]
        for j in range(0, m + 1):
            b, arg = neg, None
            for k in (0, 1, 2):
                if j - k < 0 or best[i - 1][j - k] <= neg:
                    continue
                chunk = "_".join(phones[j - k:j])
                s = best[i - 1][j - k] + lp.get(chunk, lp["<unk>"][k])
                if s > b:
                    b, arg = s, (k, chunk)
            best[i][j], back[i][j] = b, arg
    if best[n][m] <= neg:
        return None
    out, j = [], m
    for i in range(n, 0, -1):
        k, chunk = back[i][j]
        out.append(chunk)
        j -= k
    return out[::-1]


def align(lexicon: List[Tuple[str, List[str]]], iterations: int = 4) -> List[Tuple[str, List[str]]]:
    """Hard-EM alignment of letters to 0/1/2-phoneme chunks."""
    counts: Dict[str, Counter] = defaultdict(Counter)
    for _ in range(iterations):
        logp = {}
        letters = {c for w, _ in lexicon for c in w}
        for c in letters:
            cnt = counts[c]
            total = sum(cnt.values())
            if total == 0:   # first pass: prefer one phoneme per letter, then none, then two
                logp[c] = {"<unk>": (math.log(0.3), math.log(1.0), math.log(0.05))}
                continue
            d = {ch: math.log((v + 0.1) / (total + 1.0)) for ch, v in cnt.items()}
            floor = math.log(0.1 / (total + 1.0))
            d["<unk>"] = (floor, floor, floor - 2.0)
            logp[c] = d
        counts = defaultdict(Counter)
        aligned = []
        for word, phones in lexicon:
            a = _viterbi(word, phones, logp)
            if a is None:
                continue
            aligned.append((word, a))
            for c, ch in zip(word, a):
                counts[c][ch] += 1
    return aligned


def fit_table(aligned: List[Tuple[str, List[str]]]) -> Dict[str, str]:
    stats: Dict[str, Counter] = defaultdict(Counter)
    for word, outs in aligned:
        for i, out in enumerate(outs):
            for left, right in BACKOFF:
                stats[_key(word, i, left, right)][out] += 1
    best = {k: c.most_common(1)[0][0] for k, c in stats.items()}
    # Prune from narrow to wide: drop a key whose answer equals what back-off would give anyway.
    kept: Dict[str, str] = {}
    for level in range(len(BACKOFF) - 1, -1, -1):
        left, right = BACKOFF[level]
        prefix = f"{left}{right}:"
        for k, out in best.items():
            if not k.startswith(prefix):
                continue
            ctx = k[len(prefix):]
            fallback = ""
            for l2, r2 in BACKOFF[level + 1:]:
                sub = f"{l2}{r2}:" + ctx[left - l2:left + 1 + r2]
                if sub in kept:
                    fallback = kept[sub]
                    break
            if out != fallback or (left, right) == (0, 0):
                kept[k] = out
    return kept


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, y in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y))
        prev = cur
    return prev[-1]


def build(out_path: str, holdout_fraction: float = 0.02, seed: int = 0) -> Dict[str, float]:
    """Fit on CMUdict minus a held-out set, report PER/WER on the held-out set, write the table."""
    lex = [(w, p) for w, p in cmu_lexicon().items() if w.isalpha() and w.isascii()]
    lex.sort()
    rng = random.Random(seed)
    rng.shuffle(lex)
    n_test = int(len(lex) * holdout_fraction)
    test, train = lex[:n_test], lex[n_test:]
    table = fit_table(align(train))
    model = G2P(table)
    errs = sum(edit_distance(model(w), p) for w, p in test)
    total = sum(len(p) for _, p in test)
    wrong = sum(model(w) != p for w, p in test)
    result = {"per": errs / total, "wer": wrong / len(test), "test_words": len(test),
              "train_words": len(train), "table_entries": len(table)}
    payload = {"version": 1, "backoff": BACKOFF, "heldout": result, "table": table}
    with gzip.open(out_path, "wt", encoding="utf-8") as fh:
        json.dump(payload, fh, separators=(",", ":"))
    return result


if __name__ == "__main__":
    from kws.commands import run_as

    raise SystemExit(run_as("g2p"))
