"""The head's training corpus, rendered by Kokoro-82M (kws.kokoro): words alone and inside sentences.

    python -m kws.corpus.kokoro_corpus --out /tmp/kcorpus --workers 16 [--words 2500]
        [--per-word 4] [--sentences 3000] [--max-minutes 6] [--seed 0]

Vocabulary: every word type the tuning half of the speechocean762 speakers say (their forced
alignments, kws/corpus/data), then the most frequent words of the in-vocabulary list
(kws/corpus/vocab/iv.txt) until ``--words``; never a word of the held-out list (oov.txt, which holds
the digits and wake words), never a word of fewer than three phonemes.

- **words alone**: ``--per-word`` renderings of each word, each by a random voice of the 28 or a
  blend of two (style = t x A + (1 - t) x B, t in [0.2, 0.8]) at a random speed in [0.8, 1.2],
  trimmed of silence as templates are (kws.templates);
- **sentences**: ``--sentences`` random sequences of 3-6 vocabulary words, rendered the same way;
  Kokoro's predicted phoneme durations (an inner tensor of the model, read out with the audio)
  give where each word starts and ends, so words can be cut with their coarticulated context.

Jobs are interleaved (a round of words alone, a share of the sentences, the next round ...), so a
run cut short by ``--max-minutes`` still covers the vocabulary evenly. The renderings run in
``--workers`` processes of one onnxruntime thread each (about 16 renderings a second on 16 cores).

Writes ``audio.npy`` (all samples, int16, 16 kHz) and ``index.npz`` (offsets, lengths, words,
renderings, word times) into ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import List, Tuple

import numpy as np

FRAME_24K = 600                 # output samples of Kokoro per duration frame (24 kHz)
FRAME_16K = FRAME_24K * 16000 // 24000
DURATIONS = "/encoder/Clip_output_0"    # the model's per-token durations (frames), after rounding
SPEED = (0.8, 1.2)
BLEND = 0.5                     # share of renderings by a blend of two voices
MIN_PHONES = 3


def vocabulary(n_words: int) -> List[str]:
    """Real words of the tuning half first, then frequent in-vocabulary words."""
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
    return out


def phonemes_of(words: List[str]) -> Tuple[List[str], List[str]]:
    """Misaki phonemes of each word that has a pronunciation of >= MIN_PHONES phonemes."""
    from kws import kokoro
    from kws.phonemes import pronounce

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


# ----------------------------------------------------------------------------- workers
_SESSION = None


def _init_worker(model_path: str) -> None:
    global _SESSION
    import onnx
    import onnxruntime as ort

    m = onnx.load(model_path)
    m.graph.output.append(onnx.helper.make_tensor_value_info(DURATIONS, onnx.TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    _SESSION = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def render_with_durations(phonemes: str, rendering) -> Tuple[np.ndarray, np.ndarray]:
    """16 kHz audio and each token's duration in 16 kHz samples (the first and last are the
    model's boundary tokens: leading and trailing silence)."""
    from kws import kokoro
    from kws.audio import resample

    ids = kokoro.tokens(phonemes)
    style = rendering.style(kokoro.voices(), ids.size - 2)
    audio, dur = _SESSION.run(None, {"tokens": ids[None], "style": style.reshape(1, -1).astype(np.float32),
                                     "speed": np.array([rendering.speed], np.float32)})
    audio = resample(np.asarray(audio, np.float32).reshape(-1), 24000, 16000)
    return audio.astype(np.float32), np.asarray(dur, np.float64).reshape(-1) * FRAME_16K


def word_spans(phonemes: str, dur: np.ndarray) -> List[Tuple[int, int]]:
    """[start, end) samples of each space-separated word of ``phonemes`` from token durations."""
    ends = np.cumsum(dur)
    spans, pos = [], 1                       # token 0 is the start token
    for w in phonemes.split(" "):
        first, last = pos, pos + len(w) - 1
        spans.append((int(round(ends[first - 1])), int(round(ends[last]))))
        pos = last + 2                       # skip the space token
    return spans


def _job(job):
    from kws.audio import trim_silence
    from kws.templates import TRIM_TOP_DB

    kind, payload, r, phonemes = job
    try:
        audio, dur = render_with_durations(phonemes, r)
    except Exception as exc:                 # a text the voices cannot cover: skip it
        return kind, payload, r, None, repr(exc)
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
    from kws.kokoro import Rendering

    speed = round(rng.uniform(*SPEED), 3)
    a = rng.choice(names)
    if rng.random() < BLEND:
        b = rng.choice([n for n in names if n != a])
        return Rendering(a, speed, b, round(rng.uniform(0.2, 0.8), 3))
    return Rendering(a, speed)


def plan(words: List[str], phs: List[str], per_word: int, sentences: int, seed: int,
         max_tokens: int) -> list:
    from kws import kokoro

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


def build(out: Path, n_words: int = 2500, per_word: int = 4, sentences: int = 3000,
          workers: int = 0, seed: int = 0, max_minutes: float = 1e9, quiet: bool = False) -> dict:
    from multiprocessing import get_context

    from kws import kokoro

    t0 = time.time()
    words, phs = phonemes_of(vocabulary(n_words))
    jobs = plan(words, phs, per_word, sentences, seed, kokoro.voices().max_tokens)
    model = str(kokoro.model_path())
    workers = workers or os.cpu_count() or 1
    out.mkdir(parents=True, exist_ok=True)
    pcm: List[np.ndarray] = []
    pos = 0
    iso = {"off": [], "len": [], "word": [], "voice": []}
    sen = {"off": [], "len": [], "voice": []}
    occ = {"sentence": [], "word": [], "start": [], "end": []}
    skipped, done = 0, 0
    deadline = t0 + max_minutes * 60
    with get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(model,)) as pool:
        for kind, payload, r, audio, extra in pool.imap(_job, jobs, chunksize=4):
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
             "complete": done == len(jobs)}
    (out / "stats.json").write_text(json.dumps(stats))
    return stats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kws.corpus.kokoro_corpus", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--words", type=int, default=2500)
    ap.add_argument("--per-word", type=int, default=4)
    ap.add_argument("--sentences", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-minutes", type=float, default=1e9)
    args = ap.parse_args(argv)
    print(json.dumps(build(args.out, args.words, args.per_word, args.sentences, args.workers,
                           args.seed, args.max_minutes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
