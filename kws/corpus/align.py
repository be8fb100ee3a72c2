"""Word timings for speechocean762 by forced alignment (pocketsphinx and its bundled US model).

speechocean762 has transcripts but no word times. This aligns every sentence with pocketsphinx
(``pip install pocketsphinx``; words its dictionary lacks take the pronunciation from the set's
own ``lexicon.txt``, else from kws's G2P) and writes one JSON line per utterance:

    {"utt": "000480010", "path": "audio/SPEAKER0048/000480010.ogg", "speaker": "0048",
     "seconds": 2.18, "words": [["it's", 0.58, 0.85], ["not", 0.85, 1.10], ["fish", 1.10, 1.50]]}

(start and end in seconds). The result for the whole train set is committed as
``kws/corpus/data/speechocean762_align.jsonl.gz`` so that evaluation and search measurements need
no aligner; rebuild it with

    python -m kws.corpus.align --data ../shared/data --out kws/corpus/data/speechocean762_align.jsonl.gz

``--clips DIR`` also cuts every aligned word into a WAV clip (real word clips for training or
checks); ``--spot-check N`` prints N random words with their times for listening.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from kws.audio.io import AudioError, load_audio

ALIGNMENTS = Path(__file__).resolve().parent / "data" / "speechocean762_align.jsonl.gz"
SUBDIR = "speechocean762-train"
FRAME_S = 0.01


def read_set(data: Path) -> List[Tuple[str, str, str]]:
    """(utt, speaker, lower-case transcript) for every utterance of the train set."""
    root = Path(data) / SUBDIR
    if not (root / "text").exists():
        raise FileNotFoundError(f"{root}/text not found: is --data the folder holding {SUBDIR}?")
    spk = dict(line.split() for line in (root / "utt2spk").read_text().splitlines() if line.strip())
    out = []
    for line in (root / "text").read_text().splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            out.append((parts[0], spk.get(parts[0], ""), parts[1].lower()))
    return out


def audio_path(utt: str, speaker: str) -> str:
    return f"audio/SPEAKER{speaker}/{utt}.ogg"


def _lexicon(root: Path) -> Dict[str, str]:
    lex: Dict[str, str] = {}
    p = root / "lexicon.txt"
    if p.exists():
        for line in p.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0].lower() not in lex:
                lex[parts[0].lower()] = " ".join(re.sub(r"\d", "", x) for x in parts[1:])
    return lex


_DECODER = None
_LEX: Dict[str, str] = {}


def _init(root: str) -> None:
    global _DECODER, _LEX
    import pocketsphinx

    _DECODER = pocketsphinx.Decoder(loglevel="FATAL")
    _LEX = _lexicon(Path(root))


def _pronunciation(word: str) -> str:
    if word in _LEX:
        return _LEX[word]
    from kws.enroll.phonemes import pronounce

    return " ".join(pronounce(word).phonemes)


def _align_one(job: Tuple[str, str, str, str]) -> Optional[dict]:
    root, utt, speaker, text = job
    d = _DECODER
    rel = audio_path(utt, speaker)
    try:
        x = load_audio(os.path.join(root, rel))
    except AudioError:
        return None
    words = text.split()
    for w in set(words):
        if d.lookup_word(w) is None:
            d.add_word(w, _pronunciation(w), True)
    pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16).tobytes()
    try:
        d.set_align_text(" ".join(words))
        d.start_utt()
        d.process_raw(pcm, full_utt=True)
        d.end_utt()
    except RuntimeError:
        return None
    segs = []
    for s in d.seg() or ():   # None when the alignment search found no path
        w = re.sub(r"\(\d+\)$", "", s.word)
        if w.startswith("<") or w.startswith("["):
            continue
        segs.append([w, round(s.start_frame * FRAME_S, 2), round((s.end_frame + 1) * FRAME_S, 2)])
    if [s[0] for s in segs] != words:
        return None
    return {"utt": utt, "path": rel, "speaker": speaker, "seconds": round(x.size / 16000, 3),
            "words": segs}


def align(data: Path, limit: Optional[int] = None, workers: int = 0) -> Iterator[dict]:
    """Align the set (the first ``limit`` utterances); yields records, skipping failures."""
    root = str(Path(data) / SUBDIR)
    items = read_set(Path(data))[:limit]
    jobs = [(root, u, s, t) for u, s, t in items]
    workers = workers or min(8, os.cpu_count() or 1)
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(root,)) as ex:
        yield from ex.map(_align_one, jobs, chunksize=8)


def load_alignments(path: Path = ALIGNMENTS) -> List[dict]:
    """The committed (or given) alignment file, as a list of records."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def cut_clips(data: Path, records: List[dict], out: Path, margin_s: float = 0.03) -> int:
    import soundfile as sf

    out.mkdir(parents=True, exist_ok=True)
    n = 0
    for r in records:
        x = load_audio(Path(data) / SUBDIR / r["path"])
        for i, (w, s, e) in enumerate(r["words"]):
            a, b = int(max(0, s - margin_s) * 16000), int(min(r["seconds"], e + margin_s) * 16000)
            sf.write(out / f"{r['utt']}_{i:02d}_{re.sub(r'[^a-z0-9]', '', w)}.wav", x[a:b], 16000)
            n += 1
    return n


def main(argv=None) -> int:
    from kws.progress import progress

    ap = argparse.ArgumentParser(prog="python -m kws.corpus.align", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2].parent / "shared" / "data"))
    ap.add_argument("--out", default=str(ALIGNMENTS))
    ap.add_argument("--limit", type=int, default=None, help="first N utterances only")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--clips", default=None, help="also cut word clips into this folder")
    ap.add_argument("--spot-check", type=int, default=0, metavar="N")
    args = ap.parse_args(argv)
    try:
        import pocketsphinx  # noqa: F401
    except ImportError:
        print("pocketsphinx is not installed: pip install pocketsphinx", file=sys.stderr)
        return 2
    try:
        total = len(read_set(Path(args.data))[:args.limit])
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    records = []
    failed = 0
    for r in progress(align(Path(args.data), args.limit, args.workers), total=total, desc="aligning"):
        if r is None:
            failed += 1
        else:
            records.append(r)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    opener = gzip.open if out.name.endswith(".gz") else open
    with opener(tmp, "wt") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")
    os.replace(tmp, out)
    words = sum(len(r["words"]) for r in records)
    print(json.dumps({"utterances": len(records), "failed": failed, "words": words,
                      "types": len({w for r in records for w, _, _ in r["words"]}),
                      "hours": round(sum(r["seconds"] for r in records) / 3600, 3), "out": str(out)}))
    if args.clips:
        print(f"{cut_clips(Path(args.data), records, Path(args.clips))} word clips in {args.clips}")
    if args.spot_check:
        rnd = random.Random(0)
        for r in rnd.sample(records, min(args.spot_check, len(records))):
            w = rnd.choice(r["words"])
            print(f"{r['path']}  {w[0]!r}  {w[1]:.2f}-{w[2]:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
