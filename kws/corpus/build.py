"""Build the word-clip corpus from offline TTS voices, reproducibly, by one command.

    python -m kws.corpus.build --size small --out corpus-small     # CPU, about a minute
    python -m kws.corpus.build --size full  --out /tmp/corpus      # GPU machine, 16 cores

Output folder:
  audio.npy     all clips, int16 16 kHz, concatenated
  clips.npz     offset, length, text (index into texts.json), split (0 train, 1 val-iv, 2 val-oov)
  texts.json    [{text, phonemes, kind: word|phrase, oov: bool}]
  renders.jsonl engine, voice and parameters of every clip (same order as clips.npz)
  stats.json    counts and hours
"""
from __future__ import annotations

import argparse
import json
import os
import random
import time
from dataclasses import asdict, dataclass
from multiprocessing import Pool
from pathlib import Path
from typing import List, Tuple

import numpy as np

from kws.corpus import tts
from kws.corpus.vocab import read_list
from kws.phonemes import pronounce

SPLITS = {"train": 0, "val_iv": 1, "val_oov": 2}


@dataclass(frozen=True)
class CorpusSize:
    iv_words: int          # how many in-vocabulary words (most frequent first)
    renders_per_word: int
    phrases: int
    renders_per_phrase: int
    val_iv_words: int
    val_oov_words: int
    val_renders: int


SIZES = {
    "small": CorpusSize(300, 3, 30, 2, 40, 40, 3),
    "medium": CorpusSize(5000, 3, 600, 2, 300, 300, 2),     # enough for distillation (kws.train.distill)
    "full": CorpusSize(16000, 5, 1500, 3, 600, 1000, 4),
}
ENGINE_WEIGHTS = {"espeak-ng": 0.6, "flite": 0.25, "festival": 0.15}


def plan(size: CorpusSize, seed: int, engines: List[str]) -> Tuple[List[dict], List[Tuple[int, int, tts.Render]]]:
    rng = random.Random(seed)
    iv = read_list("iv")
    oov = read_list("oov")
    phrases = read_list("phrases")
    texts: List[dict] = []

    def add_text(t: str, kind: str, is_oov: bool) -> int:
        texts.append({"text": t, "phonemes": " ".join(pronounce(t).phonemes), "kind": kind,
                      "oov": is_oov})
        return len(texts) - 1

    weights = [ENGINE_WEIGHTS.get(e, 0.1) for e in engines]

    def engine_cycle(n: int) -> List[str]:
        # spread each word's renders over the engines, so no word is heard from one engine only
        picks = rng.choices(engines, weights=weights, k=n)
        if n >= len(engines):
            picks[: len(engines)] = rng.sample(engines, len(engines))
        return picks

    jobs: List[Tuple[int, int, tts.Render]] = []
    train_words = iv[: size.iv_words]
    for w in train_words:
        ti = add_text(w, "word", False)
        for e in engine_cycle(size.renders_per_word):
            jobs.append((ti, SPLITS["train"], tts.random_render(w, e, rng)))
    for p in phrases[: size.phrases]:
        ti = add_text(p, "phrase", False)
        for e in engine_cycle(size.renders_per_phrase):
            jobs.append((ti, SPLITS["train"], tts.random_render(p, e, rng)))
    val_rng = random.Random(seed + 1)
    for w in val_rng.sample(train_words, min(size.val_iv_words, len(train_words))):
        ti = [i for i, t in enumerate(texts) if t["text"] == w][0]
        for e in engine_cycle(size.val_renders):
            jobs.append((ti, SPLITS["val_iv"], tts.random_render(w, e, val_rng)))
    oov_pick = val_rng.sample(oov, min(size.val_oov_words, len(oov)))
    for w in oov_pick:
        ti = add_text(w, "word", True)
        for e in engine_cycle(size.val_renders):
            jobs.append((ti, SPLITS["val_oov"], tts.random_render(w, e, val_rng)))
    return texts, jobs


def _work(batch):
    return tts.synthesize([r for _, _, r in batch])


def build(out: Path, size: CorpusSize, seed: int = 0, workers: int | None = None,
          progress: bool = True) -> dict:
    engines = tts.available_engines()
    if not engines:
        raise SystemExit("no TTS engine found: install espeak-ng, flite or festival "
                         "(see docs/model.md, 'Corpus')")
    t0 = time.time()
    texts, jobs = plan(size, seed, engines)
    chunk = 40
    batches = [jobs[i:i + chunk] for i in range(0, len(jobs), chunk)]
    workers = workers or os.cpu_count() or 1
    clips, meta = [], []
    from tqdm import tqdm

    with Pool(workers) as pool, tqdm(total=len(jobs), unit="clip", disable=not progress,
                                     desc="synthesising") as bar:
        for batch, res in zip(batches, pool.imap(_work, batches)):
            for (ti, split, r), audio in zip(batch, res):
                if audio is not None:
                    clips.append((ti, split, audio))
                    meta.append(asdict(r))
            bar.update(len(batch))
    out.mkdir(parents=True, exist_ok=True)
    lengths = np.array([a.size for _, _, a in clips], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    np.save(out / "audio.npy", np.concatenate([a for _, _, a in clips]))
    np.savez(out / "clips.npz", offset=offsets, length=lengths,
             text=np.array([t for t, _, _ in clips], dtype=np.int32),
             split=np.array([s for _, s, _ in clips], dtype=np.int8))
    (out / "texts.json").write_text(json.dumps(texts))
    with open(out / "renders.jsonl", "w") as fh:
        for m in meta:
            fh.write(json.dumps(m) + "\n")
    split_arr = np.array([s for _, s, _ in clips])
    stats = {
        "engines": engines, "seed": seed, "size": asdict(size),
        "clips": int(len(clips)), "failed": int(len(jobs) - len(clips)),
        "hours": float(lengths.sum() / 16000 / 3600),
        "voices": len({(m["engine"], m["voice"]) for m in meta}),
        "clips_per_split": {k: int((split_arr == v).sum()) for k, v in SPLITS.items()},
        "types_iv": len({t["text"] for t in texts if not t["oov"] and t["kind"] == "word"}),
        "types_phrase": len({t["text"] for t in texts if t["kind"] == "phrase"}),
        "types_oov": len({t["text"] for t in texts if t["oov"]}),
        "clips_per_engine": {e: sum(m["engine"] == e for m in meta) for e in engines},
        "seconds": round(time.time() - t0, 1),
    }
    (out / "stats.json").write_text(json.dumps(stats, indent=2))
    return stats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kws.corpus.build", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args(argv)
    stats = build(args.out, SIZES[args.size], args.seed, args.workers)
    print(json.dumps(stats, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
