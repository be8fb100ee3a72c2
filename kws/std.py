"""Spoken-term detection (STD) evaluation on real continuous speech with known word times.

The test audio is speechocean762 (read English sentences by 125 non-native speakers, never used
in training), with word times from forced alignment (kws.corpus.align, committed). Utterances of
one half of the speakers ('a') are for tuning, the other half ('b') for the reported numbers.

Protocol (the paper's sliding windows, 0.2-0.6 s every 0.15 s, through the search index):
- queries: words of at least 4 phonemes spoken in at least 2 of the chosen utterances, in two
  groups: IV (in kws's training vocabulary) and OOV (never trained on: the held-out list or no
  list at all); a sample of up to ``max_queries`` of each, fixed by the seed;
- per query, every utterance scores its best window; the utterances that contain the word are the
  positives: EER per query, averaged over the group;
- precision at 10: of the query's 10 best merged hits over the whole index, the fraction that
  overlap a spoken occurrence of the word by at least half of the shorter of the two.
"""
from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from kws.bundle import Bundle
from kws.corpus.real import speaker_half
from kws.metrics import eer
from kws.phonemes import pronounce
from kws.search import IndexConfig, SearchIndex

VOCAB = Path(__file__).resolve().parent / "corpus" / "vocab"


def choose_utterances(records: List[dict], half: str, n: int, seed: int = 0) -> List[dict]:
    pool = [r for r in records if speaker_half(r["speaker"]) == half]
    random.Random(seed).shuffle(pool)
    return sorted(pool[:n], key=lambda r: r["utt"])


def choose_queries(utts: List[dict], max_queries: int, seed: int = 0, min_phones: int = 4,
                   min_utts: int = 2) -> Dict[str, List[str]]:
    iv = set((VOCAB / "iv.txt").read_text().split())
    where: Dict[str, set] = {}
    for r in utts:
        for w, _, _ in r["words"]:
            where.setdefault(w, set()).add(r["utt"])
    out: Dict[str, List[str]] = {"iv": [], "oov": []}
    for w in sorted(where):
        if len(where[w]) < min_utts or not w.replace("'", "").isalpha():
            continue
        if len(pronounce(w).phonemes) < min_phones:
            continue
        out["iv" if w in iv else "oov"].append(w)
    rnd = random.Random(seed)
    return {k: sorted(rnd.sample(v, min(max_queries, len(v)))) for k, v in out.items()}


def _overlaps(a0, a1, b0, b1) -> bool:
    return min(a1, b1) - max(a0, b0) >= 0.5 * min(a1 - a0, b1 - b0)


def run_std(bundle: Bundle, data: Path, records: List[dict], n_utts: int = 300, max_queries: int = 40,
            half: str = "b", config: Optional[IndexConfig] = None, seed: int = 0,
            quiet: bool = False, index_dir: Optional[Path] = None, tts: bool = True) -> Dict:
    from kws.progress import progress

    cfg = config or IndexConfig(variant=bundle.variant)
    utts = choose_utterances(records, half, n_utts, seed)
    queries = choose_queries(utts, max_queries, seed)
    root = Path(data) / "speechocean762-train"
    tmp = None
    if index_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="kws-std-")
        index_dir = Path(tmp.name) / "index"
    try:
        idx = SearchIndex(index_dir, bundle, cfg)
        t0 = time.perf_counter()
        st = idx.add([root / r["path"] for r in utts], quiet=quiet, prune=False)
        build_s = time.perf_counter() - t0
        by_path = {str((root / r["path"]).resolve()): r for r in utts}
        keys = list(idx.files)
        res: Dict = {"utterances": len(utts), "audio_hours": idx.seconds / 3600, "half": half,
                     "window_s": list(cfg.window_s), "hop_s": cfg.hop_s, "min_speech": cfg.min_speech,
                     "index_build_s": build_s, "index_windows": st["windows"],
                     "index_mb": idx.size_bytes() / 1e6, "groups": {}}
        q_times = []
        for group, words in queries.items():
            per = {}
            for w in progress(words, f"STD {group} queries", quiet=quiet):
                tq = time.perf_counter()
                q = idx.embed_query(w, tts=tts)
                best, labels = [], []
                for k in keys:
                    s, _ = idx.file_scores(k, q)
                    best.append(float(s.max()) if s.size else -1.0)
                    labels.append(any(x == w for x, _, _ in by_path[k]["words"]))
                hits = idx.query(q, top=10)
                q_times.append(time.perf_counter() - tq)
                good = 0
                for h in hits:
                    occ = [(s0, e0) for x, s0, e0 in by_path[h.file]["words"] if x == w]
                    good += any(_overlaps(h.start, h.end, s0, e0) for s0, e0 in occ)
                per[w] = {"eer": eer(np.array(best), np.array(labels))[0], "p_at_10": good / max(1, len(hits)),
                          "utterances_with": int(np.sum(labels))}
            res["groups"][group] = {
                "queries": len(per),
                "mean_eer": float(np.mean([v["eer"] for v in per.values()])) if per else float("nan"),
                "mean_p_at_10": float(np.mean([v["p_at_10"] for v in per.values()])) if per else float("nan"),
                "per_query": per}
        res["query_s_mean"] = float(np.mean(q_times)) if q_times else float("nan")
        return res
    finally:
        if tmp is not None:
            tmp.cleanup()
