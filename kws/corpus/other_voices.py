"""The corpus's words spoken by other synthesisers (espeak-ng, flite, festival): queries for the
head's training, never templates (a typed keyword's templates are Kokoro's).

    python -m kws.corpus.other_voices --like /work/corpus/kcorpus-shards/shard-0-of-16 \\
        --out /work/corpus/other-voices [--per-word 3] [--workers 2] [--seed 0] [--engines festival]

Kokoro's 28 voices are what the templates are made of; people are not Kokoro. Renderings of the
same words by two synthesisers built another way (espeak-ng: formant synthesis, seven English
accents x 30 voice variants; flite: four diphone/cluster voices; festival: two diphone voices
and an HMM voice), at random speeds and pitches,
teach the head to match a word across very different voices. ``--like`` names any packed Kokoro
shard (kws.corpus.kokoro_corpus pack): the vocabulary is read from it, so the shard written here
joins the Kokoro shards in ``kws.corpus.kokoro_corpus unpack`` with the same word ids. Its
renderings' voices read ``espeak-ng:VOICE+VARIANT:sSPEED:pPITCH``, ``flite:VOICE:dSTRETCH`` or
``festival:VOICE:dSTRETCH``;
a voice with a ``:`` marks a rendering the training uses as a query only
(``kws.train.data.Data.iso_alt``).

The same synthesisers also speak talk: ``--texts`` (kws.corpus.kokoro_talk's texts) renders
sentences of one split one after another, with pauses, until ``--hours`` of audio, e.g. held-out
background for the thresholds' measurements (benchmarks/threshold_targets.py ``--talk``):

    python -m kws.corpus.other_voices --texts talk-texts.json.xz --split heldout --hours 6 \
        --out talk-heldout-other [--workers 2] [--seed 3]

The synthesisers are GPL-licensed or older free programs; they are called as programs (never
imported) and only here, when a training corpus is made: the package never runs them.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np

from kws.corpus.kokoro_corpus import PACK_FORMAT, SR, read_index, write_chunks

ESPEAK_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029")
ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
                   "klatt", "klatt2", "klatt3", "klatt4", "klatt6", "Andy", "Annie", "Alex", "Andrea",
                   "Belinda", "David", "Ed", "Gene", "Lee", "Linda", "Mike", "Paul", "Steph")
FLITE_VOICES = ("awb", "kal16", "rms", "slt")
FESTIVAL_VOICES = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")   # Debian's festvox-* packages
SPEED_WPM = (125, 210)          # espeak-ng words a minute (its default 175)
PITCH = (25, 75)                # espeak-ng pitch (0-99, default 50)
STRETCH = (0.8, 1.25)           # flite duration_stretch, festival Duration_Stretch (1 = its default speed)
PROGRAMS = {"espeak-ng": "espeak-ng", "flite": "flite", "festival": "text2wave"}
CHUNK_S = 600.0
PAUSE_S = (0.2, 0.8)          # silence after each sentence of talk
TALK_FORMAT = "kws-other-talk"  # index.json of talk (--texts); kws.train.data reads it


def engines() -> List[str]:
    """The synthesisers found on PATH, of espeak-ng, flite and festival (its text2wave)."""
    return [e for e, prog in PROGRAMS.items() if shutil.which(prog)]


def command(engine: str, text: str, rng: random.Random) -> Tuple[List[str], str]:
    """The program's command line for ``text`` in a random voice (``{wav}``: the file it writes,
    where it writes one), and the voice's name."""
    if engine == "espeak-ng":
        v, var = rng.choice(ESPEAK_VOICES), rng.choice(ESPEAK_VARIANTS)
        s, p = rng.randint(*SPEED_WPM), rng.randint(*PITCH)
        return (["espeak-ng", "-v", f"{v}+{var}", "-s", str(s), "-p", str(p), "--stdout", text],
                f"espeak-ng:{v}+{var}:s{s}:p{p}")
    if engine == "flite":
        v, d = rng.choice(FLITE_VOICES), round(rng.uniform(*STRETCH), 3)
        return (["flite", "-voice", v, "--setf", f"duration_stretch={d}", "-t", text, "-o", "{wav}"],
                f"flite:{v}:d{d}")
    if engine == "festival":            # the text on standard input
        v, d = rng.choice(FESTIVAL_VOICES), round(rng.uniform(*STRETCH), 3)
        return (["text2wave", "-eval", f"(voice_{v})", "-eval", f"(Parameter.set 'Duration_Stretch {d})",
                 "-o", "{wav}"], f"festival:{v}:d{d}")
    raise ValueError(f"unknown synthesiser {engine!r}: espeak-ng, flite or festival")


def speak(engine: str, text: str, rng: random.Random) -> Tuple[np.ndarray, str]:
    """``text`` spoken by ``engine`` in a random voice: 16 kHz float32 trimmed as Kokoro's words
    are (kws.spot.templates' silence trim), and the voice's name."""
    import soundfile as sf

    from kws.audio.io import resample, trim_silence
    from kws.spot.templates import TRIM_TOP_DB

    cmd, voice = command(engine, text, rng)
    with tempfile.TemporaryDirectory() as tmp:      # flite writes a file only
        wav = os.path.join(tmp, "out.wav")
        cmd = [wav if c == "{wav}" else c for c in cmd]
        stdin = text.encode() if engine == "festival" else None
        out = subprocess.run(cmd, capture_output=True, timeout=60, input=stdin)
        raw = Path(wav).read_bytes() if os.path.exists(wav) else out.stdout
    if out.returncode != 0 or len(raw) < 100:
        raise RuntimeError(f"{' '.join(cmd)}: exit {out.returncode}: {out.stderr.decode(errors='replace')[:200]}")
    x, sr = sf.read(io.BytesIO(raw), dtype="float32", always_2d=False)
    if x.ndim > 1:
        x = x.mean(axis=1)
    if sr != SR:
        x = resample(x, sr, SR)
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > 0:
        x = x * (0.5 / peak)           # the level Kokoro's renderings come at; training draws its own
    return trim_silence(x, top_db=TRIM_TOP_DB, margin_s=0.0), voice


def _job(job):
    """One text spoken (``pause``: followed by 0.2-0.8 s of silence, as talk) -> (i, int16 audio,
    voice, None), or (i, None, None, the error) for a text the program cannot say."""
    i, text, engine, seed, pause = job
    rng = random.Random(seed)
    try:
        x, voice = speak(engine, text, rng)
    except Exception as exc:          # skipped, counted
        return i, None, None, repr(exc)
    if pause:
        x = np.concatenate([x, np.zeros(int(rng.uniform(*PAUSE_S) * SR), np.float32)])
    return i, np.round(np.clip(x, -1, 1) * 32767).astype(np.int16), voice, None


def _usable(only: Optional[List[str]]) -> List[str]:
    """The synthesisers asked for (all found, without ``only``), or exit saying which are missing."""
    have = engines()
    use = list(only or have)
    missing = [e for e in use if e not in have]
    if missing or not use:
        raise SystemExit(f"not found on PATH: {', '.join(missing or list(PROGRAMS))} "
                         "(apt-get install espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k "
                         "festvox-us-slt-hts)")
    return use


def talk(texts: Path, split: str, hours: float, out: Path, workers: int = 0, seed: int = 0,
         only: Optional[List[str]] = None, quiet: bool = False) -> dict:
    """Sentences of one split of kws.corpus.kokoro_talk's texts (``heldout``: never in the model's
    bank) spoken one after another by the synthesisers in random voices, with pauses, until
    ``hours`` of audio: Ogg/Opus files of 10 minutes (``chunk-NNNN.ogg``) and index.json. Background
    for measuring thresholds on speech no Kokoro voice and no bank ever said."""
    from multiprocessing import Pool

    from kws.corpus.kokoro_talk import load_texts
    from kws.progress import progress

    use = _usable(only)
    if hours <= 0:
        raise SystemExit(f"--hours must be above 0, not {hours}")
    t = load_texts(texts)
    if split not in ("bank", "heldout") or split not in t:
        raise SystemExit(f"--split {split!r}: bank or heldout")
    sentences = list(t[split])
    rng = random.Random(seed)
    rng.shuffle(sentences)
    jobs = [(i, s, rng.choice(use), rng.getrandbits(32), True) for i, s in enumerate(sentences)]
    goal = int(hours * 3600 * SR)
    t0 = time.time()
    pieces: List[np.ndarray] = []
    voices: List[str] = []
    said: List[int] = []
    failed: List[str] = []
    total = 0
    with Pool(workers or os.cpu_count() or 1) as pool:
        for i, pcm, voice, err in progress(pool.imap(_job, jobs, chunksize=8), total=len(jobs),
                                           desc="other voices, talk", quiet=quiet):
            if pcm is None:
                failed.append(f"{sentences[i][:40]}: {err}")
                continue
            pieces.append(pcm)
            voices.append(voice)
            said.append(i)
            total += pcm.size
            if total >= goal:
                pool.terminate()
                break
    seconds = time.time() - t0
    out.mkdir(parents=True, exist_ok=True)
    chunks, where = write_chunks(out, pieces, CHUNK_S)
    stats = {"split": split, "engines": use, "seed": seed, "sentences": len(pieces), "failed": len(failed),
             "failed_examples": failed[:10], "hours": round(total / SR / 3600, 3), "seconds": round(seconds, 1),
             "sentences_per_s": round(len(pieces) / max(seconds, 1e-9), 1), "complete": total >= goal}
    index = {"format": TALK_FORMAT, "version": 1, "sample_rate": SR, "stats": stats, "chunks": chunks,
             "sentences": [{"text": sentences[i], "voice": v, "chunk": c, "start": st, "len": int(p.size)}
                           for i, v, (c, st), p in zip(said, voices, where, pieces)]}
    (out / "index.json").write_text(json.dumps(index, ensure_ascii=False, separators=(",", ":")))
    (out / "DONE").write_text("")
    return {k: v for k, v in stats.items() if k != "failed_examples"} | \
        {"bytes": sum((out / c["file"]).stat().st_size for c in chunks)}


def render(like: Path, out: Path, per_word: int = 3, workers: int = 0, seed: int = 0,
           only: Optional[List[str]] = None, limit: int = 0, quiet: bool = False) -> dict:
    """Every word of ``like``'s vocabulary ``per_word`` times, the synthesisers taking turns, packed
    as a shard (Ogg/Opus chunks + index.json) into ``out``."""
    from multiprocessing import Pool

    from kws.progress import progress

    try:
        ix = read_index(like)
    except ValueError as exc:
        raise SystemExit(f"--like: {exc}") from None
    use = _usable(only)
    if per_word < 1:
        raise SystemExit(f"--per-word must be at least 1, not {per_word}")
    words = ix["words"]
    rng = random.Random(seed)
    jobs = []
    for w, word in enumerate(words[:limit] if limit else words):
        first = rng.randrange(len(use))
        for k in range(per_word):
            jobs.append((w, word, use[(first + k) % len(use)], rng.getrandbits(32), False))
    t0 = time.time()
    results: List[Tuple[int, np.ndarray, str]] = []
    failed: List[str] = []
    with Pool(workers or os.cpu_count() or 1) as pool:
        for w, pcm, voice, err in progress(pool.imap(_job, jobs, chunksize=16), total=len(jobs),
                                           desc="other voices", quiet=quiet):
            if pcm is None or pcm.size < 0.1 * SR:
                failed.append(f"{words[w]}: {err or 'too short'}")
                continue
            results.append((w, pcm, voice))
    seconds = time.time() - t0
    out.mkdir(parents=True, exist_ok=True)
    chunks, where = write_chunks(out, (pcm for _, pcm, _ in results), CHUNK_S)
    iso = {"chunk": [k for k, _ in where], "start": [s for _, s in where],
           "len": [int(pcm.size) for _, pcm, _ in results], "word": [int(w) for w, _, _ in results],
           "voice": [voice for _, _, voice in results]}
    hours = sum(c["samples"] for c in chunks) / SR / 3600
    stats = {"shard": f"other-voices-{seed}", "engines": use, "per_word": per_word, "seed": seed,
             "jobs": len(jobs), "word_renderings": len(results), "failed": len(failed),
             "failed_examples": failed[:10], "hours": round(hours, 3), "seconds": round(seconds, 1),
             "renderings_per_s": round(len(jobs) / max(seconds, 1e-9), 1), "workers": workers or os.cpu_count(),
             "complete": True}
    index = {"format": PACK_FORMAT, "version": 1, "sample_rate": SR, "stats": stats,
             "words": words, "phonemes": ix["phonemes"], "chunks": chunks, "iso": iso,
             "sen": {"chunk": [], "start": [], "len": [], "voice": []},
             "occ": {"sentence": [], "word": [], "start": [], "end": []}}
    (out / "index.json").write_text(json.dumps(index, ensure_ascii=False, separators=(",", ":")))
    (out / "DONE").write_text("")
    return {k: v for k, v in stats.items() if k != "failed_examples"} | \
        {"bytes": sum((out / c["file"]).stat().st_size for c in chunks)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kws.corpus.other_voices", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--like", type=Path, help="a packed Kokoro shard: its vocabulary, each word alone")
    what.add_argument("--texts", type=Path, help="kws.corpus.kokoro_talk's texts: talk, sentence after sentence")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--per-word", type=int, default=3)
    ap.add_argument("--split", default="heldout", help="with --texts: heldout (default) or bank")
    ap.add_argument("--hours", type=float, default=6.0, help="with --texts: hours of talk (default 6)")
    ap.add_argument("--engines", default="espeak-ng,flite",
                    help="comma-separated, of espeak-ng, flite and festival (default: espeak-ng,flite)")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="only the first N words (a trial)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"--out {args.out}: exists and is not empty")
    only = [e for e in args.engines.split(",") if e] or None
    if args.texts:
        if not args.texts.is_file():
            raise SystemExit(f"--texts {args.texts}: no such file")
        print(json.dumps(talk(args.texts, args.split, args.hours, args.out, args.workers, args.seed, only,
                              args.quiet)))
        return 0
    print(json.dumps(render(args.like, args.out, args.per_word, args.workers, args.seed, only,
                            args.limit, args.quiet)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
