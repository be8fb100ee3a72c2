"""The head's training corpus, rendered by Kokoro-82M (kws.enroll.kokoro): words alone and inside sentences.

    python -m kws.corpus.kokoro_corpus --out /tmp/kcorpus --workers 16 [--words 2500]
        [--made-up 0] [--per-word 4] [--sentences 3000] [--max-minutes 6] [--seed 0] [--shard I/N]
        [--device cuda --batch 32]
    python -m kws.corpus.kokoro_corpus pack /tmp/kcorpus --out shard-0-of-16      # Ogg/Opus chunks
    python -m kws.corpus.kokoro_corpus unpack shard-0-of-16 shard-1-of-16 ... --out /tmp/kcorpus

Vocabulary: every word type the tuning half of the speechocean762 speakers say (their forced
alignments, kws/corpus/data), then the most frequent words of the in-vocabulary list
(kws/corpus/vocab/iv.txt) until ``--words``, then ``--made-up`` made-up, brand-like words
(:func:`made_up_words`: random pronounceable syllables, the same for the same ``--seed``, spoken
as the fallback G2P of kws.enroll.phonemes says them); never a word of the held-out list (oov.txt, which
holds the digits and wake words) nor a made-up word that sounds like one, never a word of fewer
than three phonemes.

- **words alone**: ``--per-word`` renderings of each word, each by a random voice of the 28 or a
  blend of two (style = t x A + (1 - t) x B, t in [0.2, 0.8]) at a random speed in [0.8, 1.2],
  trimmed of silence as templates are (kws.spot.templates);
- **sentences**: ``--sentences`` random sequences of 3-6 vocabulary words, rendered the same way;
  Kokoro's predicted phoneme durations (an inner tensor of the model, read out with the audio)
  give where each word starts and ends, so words can be cut with their coarticulated context.

Jobs are interleaved (a round of words alone, a share of the sentences, the next round ...), so a
run cut short by ``--max-minutes`` still covers the vocabulary evenly. The renderings run in
``--workers`` processes of one onnxruntime thread each, or, with ``--device cpu|cuda`` (alias
``--torch``), in one process through the PyTorch port of the same model file
(kws.corpus.kokoro_render.TorchRenderer: windows of 8 x ``--batch`` jobs, each sorted by token
length and rendered ``--batch`` at a time; ``--workers`` is then torch's CPU threads). The plan,
the trimming, the word times and the files are the same either way; stats.json's ``renderer``
says which made them (``onnxruntime``, ``torch cuda``).

**Shards.** ``--shard I/N`` renders only shard ``I`` (0-based) of ``N`` of the same plan (the same
other arguments): the words alone of the words whose index is ``I`` modulo ``N`` (all their
renderings) and the sentences whose number is ``I`` modulo ``N``. Different machines or times can
render different shards; ``unpack`` joins any set of them (the vocabulary, and so every word id, is
the whole corpus's in every shard; words of shards not rendered have no renderings alone).

Writes ``audio.npy`` (all samples, int16, 16 kHz), ``index.npz`` (offsets, lengths, words,
renderings, word times; what kws.train.head reads) and ``stats.json`` into ``--out``. ``pack``
writes such a folder as 16 kHz mono Ogg/Opus chunk files (whole renderings back to back, about
``--chunk-seconds`` each, about 24 kbit/s) and ``index.json``: the words and their phonemes, each
rendering's chunk, start and length in samples, its word (words alone) or its words' start and
end in samples from the sentence's start (sentences), and its voice (``voice``, or
``voice*t+other`` for a blend, then ``@speed``). ``unpack`` reads one or more packed shards back
into ``audio.npy`` + ``index.npz``.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

import numpy as np

from kws.corpus.kokoro_render import (_init_worker, add_torch_args, render_with_durations, renderer_name,
                                      word_spans)
SPEED = (0.8, 1.2)
BLEND = 0.5                     # share of renderings by a blend of two voices
MIN_PHONES = 3


def vocabulary(n_words: int, made_up: int = 0, seed: int = 0) -> List[str]:
    """Real words of the tuning half first, then frequent in-vocabulary words (``n_words`` in
    all), then ``made_up`` made-up words (:func:`made_up_words`)."""
    from kws.corpus.align import load_alignments
    from kws.corpus.real import speaker_half
    from kws.corpus.vocab import HELD_OUT, read_list

    banned = set(read_list("oov")) | set(HELD_OUT)
    seen, out = set(), []

    def add(w):
        if len(out) < n_words and w not in seen and w not in banned and w.isalpha():
            seen.add(w)
            out.append(w)

    for r in load_alignments():
        if speaker_half(r["speaker"]) == "a":
            for w, _s, _e in r["words"]:
                add(w.lower())
    for w in read_list("iv"):
        add(w)
    if made_up:
        out += made_up_words(made_up, seed)
    return out


ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "fl",
          "gr", "kl", "pl", "pr", "sk", "st", "tr", "sh", "ch", "j", "")
VOWELS = ("a", "e", "i", "o", "u", "a", "e", "i", "o", "ee", "oo", "ai", "oa")
CODAS = ("", "", "", "", "n", "r", "s", "x", "l", "m", "k", "nd", "st", "nt")


def made_up_words(n: int, seed: int = 0) -> List[str]:
    """``n`` made-up, brand-like words ("geeflam", "zoaga", "kleno"): two or three random syllables
    (onset and vowel) and a coda, the same for the same seed. None is a CMUdict word, a word of the
    vocabulary lists or the held-out words, or sounds like a held-out word (the same phonemes),
    and each has at least MIN_PHONES phonemes by kws.enroll.phonemes.pronounce (the fallback G2P)."""
    from kws.corpus.vocab import HELD_OUT, read_list
    from kws.enroll.lexicon import cmu_lexicon
    from kws.enroll.phonemes import pronounce

    lex = cmu_lexicon()
    held = set(read_list("oov")) | set(HELD_OUT)
    known = held | set(read_list("iv"))
    held_sounds = set()
    for w in held:
        try:
            held_sounds.add(pronounce(w).phonemes)
        except Exception:
            pass
    rng = random.Random(f"made-up:{seed}")
    out: List[str] = []
    seen = set()
    while len(out) < n:
        k = rng.choice((2, 2, 3))
        w = "".join(rng.choice(ONSETS) + rng.choice(VOWELS) for _ in range(k)) + rng.choice(CODAS)
        if not 4 <= len(w) <= 10 or w in seen or w in lex or w in known:
            continue
        seen.add(w)
        try:
            pron = pronounce(w)
        except Exception:
            continue
        if pron.phonemes in held_sounds or sum(p != "|" for p in pron.phonemes) < MIN_PHONES:
            continue
        out.append(w)
    return out


def phonemes_of(words: List[str]) -> Tuple[List[str], List[str]]:
    """Misaki phonemes of each word that has a pronunciation of >= MIN_PHONES phonemes."""
    from kws.enroll import kokoro
    from kws.enroll.phonemes import pronounce

    kept, phs = [], []
    for w in words:
        try:
            pron = pronounce(w)
            if sum(p != "|" for p in pron.phonemes) < MIN_PHONES:
                continue
            ph = kokoro.pronunciation_phonemes(pron)
            kokoro.tokens(ph)
        except Exception:
            continue
        kept.append(w)
        phs.append(ph)
    return kept, phs


def _job(job):
    """One job rendered by the worker's onnxruntime session, then :func:`_finish`."""
    try:
        res = render_with_durations(job[3], job[2])
    except Exception as exc:                 # a text the voices cannot cover: skipped
        res = exc
    return _finish(job, res)


def _finish(job, res):
    """(kind, payload, rendering, int16 audio or None, word spans or why it was skipped) of a
    job from its rendering (16 kHz audio and token durations) or the exception it raised: a word
    alone trimmed of silence, a sentence's words placed by the durations."""
    from kws.audio.io import trim_silence
    from kws.spot.templates import TRIM_TOP_DB

    kind, payload, r, phonemes = job
    if isinstance(res, Exception):
        return kind, payload, r, None, repr(res)
    audio, dur = res
    if kind == "word":
        audio = trim_silence(audio, top_db=TRIM_TOP_DB, margin_s=0.0)
        return kind, payload, r, _pcm(audio), None
    spans = word_spans(phonemes, dur)
    spans = [(min(s, audio.size), min(e, audio.size)) for s, e in spans]
    return kind, payload, r, _pcm(audio), spans


def _pcm(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1, 1) * 32767).astype(np.int16)


# ----------------------------------------------------------------------------- plan
def random_rendering(rng: random.Random, names):
    from kws.enroll.kokoro import Rendering

    speed = round(rng.uniform(*SPEED), 3)
    a = rng.choice(names)
    if rng.random() < BLEND:
        b = rng.choice([n for n in names if n != a])
        return Rendering(a, speed, b, round(rng.uniform(0.2, 0.8), 3))
    return Rendering(a, speed)


def plan(words: List[str], phs: List[str], per_word: int, sentences: int, seed: int,
         max_tokens: int) -> list:
    from kws.enroll import kokoro

    names = kokoro.voices().names
    rng = random.Random(seed)
    rounds = []
    for _ in range(per_word):
        rounds.append([("word", i, random_rendering(rng, names), phs[i]) for i in range(len(words))])
    sent = []
    for _ in range(sentences):
        while True:
            k = rng.randint(3, 6)
            idx = [rng.randrange(len(words)) for _ in range(k)]
            text = " ".join(phs[i] for i in idx)
            if len(text) + 2 <= max_tokens:
                break
        sent.append(("sentence", idx, random_rendering(rng, names), text))
    jobs = []
    share = -(-len(sent) // max(per_word, 1))
    for j, r in enumerate(rounds):
        jobs += r
        jobs += sent[j * share:(j + 1) * share]
    return jobs


def shard_jobs(jobs: list, shard: int, n_shards: int) -> list:
    """The jobs of shard ``shard`` of ``n_shards``: words alone of the words whose index is
    ``shard`` modulo ``n_shards``, sentences whose number (in plan order) is too."""
    out, k = [], 0
    for j in jobs:
        if j[0] == "word":
            if j[1] % n_shards == shard:
                out.append(j)
        else:
            if k % n_shards == shard:
                out.append(j)
            k += 1
    return out


def parse_shard(text: str) -> Tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes I/N (e.g. 0/16), not {text!r}") from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"--shard {text}: I must be in 0 .. N - 1")
    return i, n


def build(out: Path, n_words: int = 2500, per_word: int = 4, sentences: int = 3000,
          workers: int = 0, seed: int = 0, max_minutes: float = 1e9, quiet: bool = False,
          made_up: int = 0, shard: Tuple[int, int] = (0, 1), device: Optional[str] = None,
          batch: int = 32) -> dict:
    """Render the plan (its shard) into ``out``: with ``workers`` onnxruntime processes, or, with
    ``device`` (``cpu``, ``cuda``), through kws.corpus.kokoro_render.TorchRenderer in batches of
    ``batch`` (``workers`` then sets torch's CPU threads; 0: torch's default). The same jobs,
    files and index either way; stats.json's ``renderer`` says which rendered it."""
    from contextlib import ExitStack
    from multiprocessing import get_context

    from kws.enroll import kokoro

    t0 = time.time()
    words, phs = phonemes_of(vocabulary(n_words, made_up, seed))
    jobs = plan(words, phs, per_word, sentences, seed, kokoro.voices().max_tokens)
    all_jobs = len(jobs)
    if shard[1] > 1:
        jobs = shard_jobs(jobs, *shard)
    model = str(kokoro.model_path())
    if not device:
        workers = workers or os.cpu_count() or 1
    out.mkdir(parents=True, exist_ok=True)
    pcm: List[np.ndarray] = []
    pos = 0
    iso = {"off": [], "len": [], "word": [], "voice": []}
    sen = {"off": [], "len": [], "voice": []}
    occ = {"sentence": [], "word": [], "start": [], "end": []}
    skipped, done = 0, 0
    deadline = t0 + max_minutes * 60
    torch_r = pool = None
    with ExitStack() as stack:
        if device:
            from kws.corpus.kokoro_render import TorchRenderer, render_ahead

            torch_r = TorchRenderer(device, batch, threads=workers, model_path=model)
            results = render_ahead(jobs, torch_r, lambda j: [(j[3], j[2])], lambda j, res: _finish(j, res[0]))
        else:
            pool = stack.enter_context(get_context("spawn").Pool(workers, initializer=_init_worker,
                                                                 initargs=(model,)))
            results = pool.imap(_job, jobs, chunksize=4)
        for kind, payload, r, audio, extra in results:
            done += 1
            if audio is None or audio.size < 1600:
                skipped += 1
            else:
                voice = r.voice if r.other is None else f"{r.voice}*{r.t}+{r.other}"
                voice += f"@{r.speed}"
                pcm.append(audio)
                if kind == "word":
                    iso["off"].append(pos), iso["len"].append(audio.size)
                    iso["word"].append(payload), iso["voice"].append(voice)
                else:
                    s_id = len(sen["off"])
                    sen["off"].append(pos), sen["len"].append(audio.size), sen["voice"].append(voice)
                    for w, (s, e) in zip(payload, extra):
                        if e - s >= 800:
                            occ["sentence"].append(s_id), occ["word"].append(w)
                            occ["start"].append(pos + s), occ["end"].append(pos + e)
                pos += audio.size
            if not quiet and (done % 500 == 0 or done in (16, 100)):
                print(f"rendered {done}/{len(jobs)} in {time.time() - t0:.0f} s", flush=True)
            if time.time() > deadline:
                if pool is not None:
                    pool.terminate()
                break
    audio = np.concatenate(pcm) if pcm else np.zeros(0, np.int16)
    np.save(out / "audio.npy", audio)
    a = lambda d, k, t=np.int64: np.array(d[k], dtype=t)  # noqa: E731
    np.savez(out / "index.npz", words=np.array(words), phonemes=np.array(phs),
             iso_off=a(iso, "off"), iso_len=a(iso, "len"), iso_word=a(iso, "word"),
             iso_voice=np.array(iso["voice"]), sen_off=a(sen, "off"), sen_len=a(sen, "len"),
             sen_voice=np.array(sen["voice"]), occ_sentence=a(occ, "sentence"), occ_word=a(occ, "word"),
             occ_start=a(occ, "start"), occ_end=a(occ, "end"))
    stats = {"words": len(words), "jobs": len(jobs), "rendered": done - skipped, "skipped": skipped,
             "word_renderings": len(iso["off"]), "sentences": len(sen["off"]),
             "sentence_words": len(occ["word"]), "hours": round(audio.size / 16000 / 3600, 3),
             "seconds": round(time.time() - t0, 1), "workers": workers, "seed": seed,
             "renderer": renderer_name(device), **({"torch": torch_r.stats()} if torch_r else {}),
             "complete": done == len(jobs), "shard": f"{shard[0]}/{shard[1]}", "plan_jobs": all_jobs,
             "args": {"words": n_words, "made_up": made_up, "per_word": per_word, "sentences": sentences,
                      "seed": seed},
             "renderings_per_s": round(done / max(time.time() - t0, 1e-9), 2),
             "audio_s_per_s": round(audio.size / 16000 / max(time.time() - t0, 1e-9), 2)}
    (out / "stats.json").write_text(json.dumps(stats))
    return stats


# ----------------------------------------------------------------------------- Ogg/Opus shards
SR = 16000
PACK_FORMAT = "kws-kokoro-corpus-opus"


def read_index(folder: Path, fmt: str = PACK_FORMAT, made_by: str = "python -m kws.corpus.kokoro_corpus pack") -> dict:
    """The index.json of a folder of Ogg/Opus chunks (a packed shard, or another synthesiser's
    talk: ``fmt`` its format's name), checked to be of format ``fmt``; ValueError saying what the
    folder lacks otherwise (``made_by``: the command that makes such a folder)."""
    path = Path(folder) / "index.json"
    if not path.is_file():
        raise ValueError(f"{folder}: no index.json (made by {made_by})")
    ix = json.loads(path.read_text())
    if not isinstance(ix, dict) or ix.get("format") != fmt:
        got = ix.get("format") if isinstance(ix, dict) else None
        raise ValueError(f"{folder}: index.json of format {got!r}, not {fmt!r} (made by {made_by})")
    return ix


def write_opus(path: Path, audio: np.ndarray) -> None:
    """16 kHz mono Ogg/Opus (libsndfile's default bit rate: about 24 kbit/s), written whole to a
    temporary name first."""
    import soundfile as sf

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1, 1).astype(np.float32), SR, format="OGG", subtype="OPUS")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def read_opus(path: Path) -> np.ndarray:
    import soundfile as sf

    x, sr = sf.read(str(path), dtype="float32", always_2d=False)
    if sr != SR:
        raise ValueError(f"{path}: {sr} Hz, not {SR}")
    return x


def write_chunks(out: Path, pieces: Iterable[np.ndarray],
                 chunk_s: float = 600.0) -> Tuple[List[dict], List[Tuple[int, int]]]:
    """int16 pieces (renderings) back to back in Ogg/Opus chunk files of ``chunk_s`` seconds at
    most (a piece is never split; one longer than that has a chunk of its own): index.json's
    ``chunks`` and each piece's (chunk, start in samples)."""
    chunks: List[dict] = []
    where: List[Tuple[int, int]] = []
    parts: List[np.ndarray] = []
    pos, limit = 0, int(chunk_s * SR)

    def flush():
        if parts:
            name = f"chunk-{len(chunks):04d}.ogg"
            write_opus(out / name, np.concatenate(parts).astype(np.float32) / 32767.0)
            chunks.append({"file": name, "samples": pos})

    for x in pieces:
        if pos and pos + x.size > limit:
            flush()
            parts, pos = [], 0
        where.append((len(chunks), pos))
        parts.append(np.asarray(x))
        pos += x.size
    flush()
    return chunks, where


def pack(src: Path, out: Path, chunk_s: float = 600.0) -> dict:
    """A rendered folder (audio.npy, index.npz, stats.json) as Ogg/Opus chunks + index.json."""
    z = np.load(src / "index.npz")
    audio = np.load(src / "audio.npy", mmap_mode="r")
    stats = json.loads((src / "stats.json").read_text()) if (src / "stats.json").exists() else {}
    rend = sorted([(int(o), int(n), "iso", i) for i, (o, n) in enumerate(zip(z["iso_off"], z["iso_len"]))] +
                  [(int(o), int(n), "sen", i) for i, (o, n) in enumerate(zip(z["sen_off"], z["sen_len"]))])
    out.mkdir(parents=True, exist_ok=True)
    iso = {"chunk": [0] * z["iso_off"].size, "start": [0] * z["iso_off"].size,
           "len": z["iso_len"].tolist(), "word": z["iso_word"].tolist(), "voice": [str(v) for v in z["iso_voice"]]}
    sen = {"chunk": [0] * z["sen_off"].size, "start": [0] * z["sen_off"].size,
           "len": z["sen_len"].tolist(), "voice": [str(v) for v in z["sen_voice"]]}
    chunks, where = write_chunks(out, (audio[off:off + ln] for off, ln, _, _ in rend), chunk_s)
    for (_, _, kind, r), (k, pos) in zip(rend, where):
        d = iso if kind == "iso" else sen
        d["chunk"][r], d["start"][r] = k, pos
    sen_off = z["sen_off"]
    occ = {"sentence": z["occ_sentence"].tolist(), "word": z["occ_word"].tolist(),
           "start": (z["occ_start"] - sen_off[z["occ_sentence"]]).tolist() if z["occ_start"].size else [],
           "end": (z["occ_end"] - sen_off[z["occ_sentence"]]).tolist() if z["occ_end"].size else []}
    index = {"format": PACK_FORMAT, "version": 1, "sample_rate": SR, "stats": stats,
             "words": [str(w) for w in z["words"]], "phonemes": [str(p) for p in z["phonemes"]],
             "chunks": chunks, "iso": iso, "sen": sen, "occ": occ}
    (out / "index.json").write_text(json.dumps(index, ensure_ascii=False, separators=(",", ":")))
    return {"chunks": len(chunks), "word_renderings": len(iso["len"]), "sentences": len(sen["len"]),
            "hours": round(sum(c["samples"] for c in chunks) / SR / 3600, 3),
            "bytes": sum((out / c["file"]).stat().st_size for c in chunks)}


def unpack(srcs: List[Path], out: Path) -> dict:
    """Packed shards (:func:`pack`) back into one audio.npy + index.npz (kws.train.head's input)."""
    words = phs = None
    pcm: List[np.ndarray] = []
    pos = 0
    keys = ("iso_off", "iso_len", "iso_word", "iso_voice", "sen_off", "sen_len", "sen_voice",
            "occ_sentence", "occ_word", "occ_start", "occ_end")
    acc = {k: [] for k in keys}
    shards, n_sen = [], 0
    for src in srcs:
        ix = read_index(src)
        if words is None:
            words, phs = ix["words"], ix["phonemes"]
        elif ix["words"] != words:
            raise ValueError(f"{src}: another vocabulary than {srcs[0]} (other --words, --made-up or --seed)")
        shard = ix.get("stats", {}).get("shard")
        if shard in shards:
            raise ValueError(f"{src}: shard {shard} given twice")
        shards.append(shard)
        base = []
        for c in ix["chunks"]:
            x = read_opus(src / c["file"])
            if x.size != c["samples"]:
                raise ValueError(f"{src / c['file']}: {x.size} samples, index.json says {c['samples']}")
            base.append(pos)
            pcm.append(np.round(np.clip(x, -1, 1) * 32767).astype(np.int16))
            pos += x.size
        iso, sen, occ = ix["iso"], ix["sen"], ix["occ"]
        acc["iso_off"] += [base[c] + s for c, s in zip(iso["chunk"], iso["start"])]
        acc["iso_len"] += iso["len"]
        acc["iso_word"] += iso["word"]
        acc["iso_voice"] += iso["voice"]
        soff = [base[c] + s for c, s in zip(sen["chunk"], sen["start"])]
        acc["sen_off"] += soff
        acc["sen_len"] += sen["len"]
        acc["sen_voice"] += sen["voice"]
        acc["occ_sentence"] += [n_sen + k for k in occ["sentence"]]
        acc["occ_word"] += occ["word"]
        acc["occ_start"] += [soff[k] + s for k, s in zip(occ["sentence"], occ["start"])]
        acc["occ_end"] += [soff[k] + e for k, e in zip(occ["sentence"], occ["end"])]
        n_sen += len(sen["len"])
    out.mkdir(parents=True, exist_ok=True)
    audio = np.concatenate(pcm) if pcm else np.zeros(0, np.int16)
    np.save(out / "audio.npy", audio)
    a = lambda k: np.array(acc[k], dtype=np.int64)  # noqa: E731
    np.savez(out / "index.npz", words=np.array(words), phonemes=np.array(phs),
             iso_off=a("iso_off"), iso_len=a("iso_len"), iso_word=a("iso_word"), iso_voice=np.array(acc["iso_voice"]),
             sen_off=a("sen_off"), sen_len=a("sen_len"), sen_voice=np.array(acc["sen_voice"]),
             occ_sentence=a("occ_sentence"), occ_word=a("occ_word"), occ_start=a("occ_start"), occ_end=a("occ_end"))
    stats = {"words": len(words or []), "shards": shards, "word_renderings": len(acc["iso_off"]),
             "words_rendered": len(set(acc["iso_word"])), "sentences": n_sen,
             "sentence_words": len(acc["occ_word"]), "hours": round(audio.size / SR / 3600, 3)}
    (out / "stats.json").write_text(json.dumps(stats))
    return stats


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("pack", "unpack"):
        ap = argparse.ArgumentParser(prog=f"python -m kws.corpus.kokoro_corpus {argv[0]}")
        if argv[0] == "pack":
            ap.add_argument("src", type=Path)
            ap.add_argument("--chunk-seconds", type=float, default=600.0)
        else:
            ap.add_argument("src", type=Path, nargs="+")
        ap.add_argument("--out", type=Path, required=True)
        args = ap.parse_args(argv[1:])
        if argv[0] == "pack":
            print(json.dumps(pack(args.src, args.out, args.chunk_seconds)))
        else:
            print(json.dumps(unpack(args.src, args.out)))
        return 0
    ap = argparse.ArgumentParser(prog="python -m kws.corpus.kokoro_corpus", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--words", type=int, default=2500)
    ap.add_argument("--made-up", type=int, default=0, help="made-up words after the real ones")
    ap.add_argument("--per-word", type=int, default=4)
    ap.add_argument("--sentences", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-minutes", type=float, default=1e9)
    ap.add_argument("--shard", type=parse_shard, default=(0, 1), help="I/N: render shard I of N")
    add_torch_args(ap)
    args = ap.parse_args(argv)
    print(json.dumps(build(args.out, args.words, args.per_word, args.sentences, args.workers,
                           args.seed, args.max_minutes, made_up=args.made_up, shard=args.shard,
                           device=args.device, batch=args.batch)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
