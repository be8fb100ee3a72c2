"""Kokoro "talk": minutes of natural English sentences spoken by Kokoro-82M, for backgrounds.

    python -m kws.corpus.kokoro_talk texts --fortunes DIR [DIR ...] --out texts.json.xz
    python -m kws.corpus.kokoro_talk render --texts texts.json.xz --split bank --hours 4.7 \\
        --seed 1 --out talk-bank --workers 16 [--max-minutes M]
    python -m kws.corpus.kokoro_talk index talk-bank [--add other/index.json]   # index.json again

**Texts** (``texts``): the quotes of the Debian packages ``fortunes`` and ``fortunes-min``
(``apt-get download fortunes fortunes-min``, ``dpkg -x`` each; the quote files are in
``usr/share/games/fortunes``, quotes separated by lines holding ``%``). Each quote loses its
attribution (from a line starting with ``--`` to its end) and overstruck letters; it is split
into sentences, and a sentence is kept when it is plain English: ASCII letters and ``.,;:!?'"()-``
only (no digits, no symbols, no abbreviations such as "Mr." or initials), 3-30 words, every word
pronounceable by kws (kws.enroll.phonemes: CMUdict, or the fallback G2P for at most one word of the
sentence), and no wake word of the evaluation sets (alexa, computer, jarvis, snowboy, porcupine:
a bank that speaks them would raise their thresholds). Duplicates (the same words) are kept once.
Each sentence goes to the split ``heldout`` or ``bank`` by a hash of its words
(:func:`split_of`, :data:`HELDOUT_SHARE`), so no sentence is in both, whatever else changes. The
fortunes alone give more than 40 hours of talk, so no second source is used.

**Rendering** (``render``): ``--hours`` x 60 files of about 60 s each. A file is one speaker: one
of the 28 voices or a blend of two (style = t x A + (1 - t) x B, t in [0.2, 0.8], half the files)
at a base speed in [0.85, 1.15], each sentence at that speed +- 5 % (kept in [0.85, 1.15]); the
sentences follow each other with pauses of 0.15-1.0 s, as someone talking or a presenter reads.
A sentence whose phonemes are longer than the shipped voices' rows (kws.enroll.kokoro: 125 phoneme
tokens) is rendered in pieces, split at a comma where one fits, joined by 0.12-0.3 s (after a
comma) or 0.04-0.1 s. Every piece is trimmed of Kokoro's silence before it is placed. Kokoro's
predicted phoneme durations (an inner tensor, read out with the audio: kws.corpus.kokoro_corpus),
stretched onto the piece's sound (:func:`word_times`), give each word's start and end: good to
about 0.1 s, enough to find the stretch a word is in, not its exact edges.

Which sentences, voices, speeds and pauses file ``i`` gets depends only on the texts, the split,
``--seed`` and ``i`` (not on ``--hours`` or the workers), so a longer run repeats the files of a
shorter one and a run continues where one stopped (existing files are kept). Each file is
rendered by one worker process (one onnxruntime thread), or, with ``--device cpu|cuda --batch N``,
by the PyTorch port in one process (the pieces of a group of files rendered ahead in batches of
similar length; the same files), and written as it is finished, Ogg/Opus
16 kHz mono (about 24 kbit/s), with its entry in ``index.jsonl``; ``index.json`` (rewritten after
every file) holds for each file its sentences (text, voice, speed, start and end in samples) and
their words (word, start, end in samples), the renderer (``onnxruntime`` or ``torch cuda``), and
the seed, split and texts it was made from.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import math
import os
import random
import re
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from kws.corpus.kokoro_corpus import read_opus, write_opus  # noqa: F401  (the talk's file format)
from kws.corpus.kokoro_render import add_torch_args, trim_bounds, word_times

SR = 16000
SPEED = (0.85, 1.15)
SPEED_JITTER = 0.05
PAUSE = (0.15, 1.0)             # seconds between sentences
EDGE = (0.1, 0.3)               # silence at the start and end of a file
GAP_COMMA = (0.12, 0.3)         # between pieces of a long sentence split at a comma
GAP_PLAIN = (0.04, 0.1)         # split elsewhere
BLEND = 0.5
FILE_S = 60.0
SECONDS_PER_TOKEN = 0.058       # speech per phoneme token at speed 1 (to plan files of ~60 s)
MIN_WORDS, MAX_WORDS = 3, 30
MAX_GUESSED = 1                 # words per sentence the fallback G2P may pronounce
HELDOUT_SHARE = 0.4
SKIP_FILES = {"ascii-art", "translate-me"}
WAKE = ("alexa", "computer", "jarvis", "snowboy", "porcupine")
ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "prof", "lt", "capt", "col",
                 "gen", "sgt", "rev", "no", "vol", "mt", "ft", "inc", "ltd", "co", "corp", "eg", "ie",
                 "al", "cf", "approx", "dept", "univ", "jan", "feb", "mar", "apr", "jun", "jul",
                 "aug", "sep", "sept", "oct", "nov", "dec", "gov", "sen", "rep", "pres"}

_ALLOWED = re.compile(r"^[A-Za-z .,;:!?'\"()\-]+$")
_TOKEN = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*|[.,;:!?]")
_SPLIT = re.compile(r"(?<=[.!?])[\"')]*\s+(?=[\"'(]*[A-Z])")


# ----------------------------------------------------------------------------- texts
def fortune_files(paths: Iterable[Path]) -> List[Path]:
    """The quote files under ``paths`` (folders or files): no index (.dat), no .u8 links."""
    out = []
    for p in map(Path, paths):
        cands = sorted(p.rglob("*")) if p.is_dir() else [p]
        for f in cands:
            if (f.is_file() and not f.is_symlink() and f.suffix not in (".dat", ".u8", ".gz")
                    and f.name not in SKIP_FILES):
                out.append(f)
    return out


def read_quotes(text: str) -> List[str]:
    """A fortune file's quotes: text between lines holding only ``%``."""
    quotes, cur = [], []
    for line in text.splitlines():
        if line.strip() == "%":
            quotes.append("\n".join(cur))
            cur = []
        else:
            cur.append(line)
    quotes.append("\n".join(cur))
    return [q for q in quotes if q.strip()]


def clean_quote(q: str) -> str:
    """One line of prose: overstrikes removed, the attribution (from a line starting with ``--``)
    dropped, whitespace collapsed."""
    while re.search("[^\b]\b", q):
        q = re.sub("[^\b]\b", "", q)
    q = q.replace("\b", "")
    lines = []
    for line in q.splitlines():
        if re.match(r"^\s*--", line):
            break
        lines.append(line.strip())
    q = re.sub(r"\s+", " ", " ".join(lines)).strip()
    return re.sub(r"(?<=[.!?\"'])\s+--\s.*$", "", q)      # an attribution on the quote's last line


def split_sentences(text: str) -> List[str]:
    """Sentences of a line of prose (after ``.``, ``!`` or ``?`` before a capital)."""
    return [s.strip() for s in _SPLIT.split(text) if s.strip()]


def tokens_of(sentence: str) -> List[Tuple[str, str]]:
    """(word, mark) pairs: lower-case words, each with the punctuation that follows it (``,``
    for ``,;:``, or ``.``, ``!``, ``?``; ``""`` for none). Hyphens part words."""
    out: List[Tuple[str, str]] = []
    for t in _TOKEN.findall(sentence.replace("-", " ")):
        if t[0].isalpha():
            out.append((t.lower(), ""))
        elif out and not out[-1][1]:
            out[-1] = (out[-1][0], "," if t in ",;:" else t)
    if out and out[-1][1] not in (".", "!", "?"):
        out[-1] = (out[-1][0], ".")
    return out


def clean_sentence(s: str) -> Optional[str]:
    """The sentence as it is kept, or None when it is not plain English prose of 3-30 words."""
    from kws.enroll.phonemes import transliterate

    s = transliterate(s).replace("``", '"').replace("''", '"')
    s = re.sub(r"\s+", " ", s).strip()
    if not s or not _ALLOWED.match(s):
        return None
    for w in re.findall(r"([A-Za-z]+)\.", s):
        if w.lower() in ABBREVIATIONS or len(w) == 1:
            return None
    s = re.sub(r"\s*--+\s*", ", ", s)
    s = re.sub(r"[\"()]", "", s).strip(" ,;:'-")
    s = re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s+", " ", s))
    s = re.sub(r"([,;:])(?:[,;:])+", r"\1", s)
    s = re.sub(r"([.!?])[,;:]+", r"\1", s)
    words = [w for w, _ in tokens_of(s)]
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return None
    if any(w in WAKE or w.startswith("computer") for w in words):
        return None
    if s[-1] not in ".!?":
        s += "."
    return s[0].upper() + s[1:]


def key_of(sentence: str) -> str:
    """What makes two sentences the same: their words, lower case."""
    return " ".join(w for w, _ in tokens_of(sentence))


def split_of(sentence: str) -> str:
    """``heldout`` or ``bank``, from a hash of the sentence's words alone."""
    h = int.from_bytes(hashlib.sha256(key_of(sentence).encode()).digest()[:8], "big")
    return "heldout" if h % 1000 < HELDOUT_SHARE * 1000 else "bank"


@lru_cache(maxsize=None)
def word_phonemes(word: str) -> Optional[Tuple[str, bool]]:
    """(misaki phonemes, guessed by the fallback G2P) of one lower-case word, or None."""
    from kws.enroll import kokoro
    from kws.enroll.phonemes import pronounce

    try:
        pron = pronounce(word)
        if len(pron.words) != 1:
            return None
        ph = kokoro.pronunciation_phonemes(pron)
        kokoro.tokens(ph)
    except Exception:
        return None
    if not ph:
        return None
    return ph, bool(pron.guessed)


def pronounceable(sentence: str) -> bool:
    guessed = 0
    for w, _ in tokens_of(sentence):
        p = word_phonemes(w)
        if p is None:
            return False
        guessed += p[1]
    return guessed <= MAX_GUESSED


def build_texts(paths: Sequence[Path]) -> dict:
    """The cleaned, deduplicated sentences of the fortune files, split into bank and heldout."""
    files = fortune_files(paths)
    seen: Dict[str, str] = {}
    n_quotes = n_sent = 0
    for f in files:
        for q in read_quotes(f.read_text(encoding="utf-8", errors="replace")):
            n_quotes += 1
            for s in split_sentences(clean_quote(q)):
                n_sent += 1
                c = clean_sentence(s)
                if c is None:
                    continue
                k = key_of(c)
                if k not in seen and pronounceable(c):
                    seen[k] = c
    out = {"bank": [], "heldout": []}
    for k in sorted(seen, key=lambda k: hashlib.sha256(k.encode()).hexdigest()):
        out[split_of(seen[k])].append(seen[k])
    words = {s: sum(len(tokens_of(t)) for t in out[s]) for s in out}
    return {"version": 1, "source": "Debian fortunes, fortunes-min (" + ", ".join(f.name for f in files) + ")",
            "quotes": n_quotes, "sentences_seen": n_sent, "heldout_share": HELDOUT_SHARE,
            "counts": {s: len(out[s]) for s in out}, "words": words, **out}


def load_texts(path: Path) -> dict:
    raw = Path(path).read_bytes()
    if raw[:6] == b"\xfd7zXZ\x00":
        raw = lzma.decompress(raw)
    return json.loads(raw.decode("utf-8"))


def write_texts(texts: dict, path: Path) -> None:
    data = json.dumps(texts, ensure_ascii=True, indent=0).encode()
    Path(path).write_bytes(lzma.compress(data, preset=9) if str(path).endswith(".xz") else data)


# ----------------------------------------------------------------------------- phonemes and pieces
def sentence_phonemes(sentence: str, max_chars: int) -> Tuple[List[str], List[List[int]], List[str], List[str]]:
    """Kokoro's phoneme strings of a sentence's pieces (each at most ``max_chars``), the word
    indices of each piece, the mark each piece ends with, and the words."""
    toks = tokens_of(sentence)
    words = [w for w, _ in toks]
    phs = [word_phonemes(w)[0] + m for w, m in toks]
    cost = [len(p) for p in phs]

    def length(a, b):
        return sum(cost[a:b]) + (b - a - 1)

    def cut(a, b) -> List[Tuple[int, int]]:
        if length(a, b) <= max_chars or b - a == 1:
            if length(a, b) > max_chars:
                raise ValueError(f"a word longer than {max_chars} phonemes: {words[a]!r}")
            return [(a, b)]
        best = min(range(a + 1, b), key=lambda i: (toks[i - 1][1] == "",
                                                   max(length(a, i), length(i, b)) > max_chars,
                                                   abs(length(a, i) - length(i, b))))
        return cut(a, best) + cut(best, b)

    pieces = cut(0, len(toks))
    return ([" ".join(phs[a:b]) for a, b in pieces], [list(range(a, b)) for a, b in pieces],
            [toks[b - 1][1] for a, b in pieces], words)


# ----------------------------------------------------------------------------- plan
def voice_name(r) -> str:
    return r.voice if r.other is None else f"{r.voice}*{r.t}+{r.other}"


def plan_files(sentences: List[str], n_files: int, seed: int, split: str, names: Sequence[str],
               max_chars: int, first: int = 0, file_s: float = FILE_S) -> List[dict]:
    """Files ``first`` .. ``n_files - 1``: each one speaker and the sentences, speeds and pauses
    it gets. Sentences are taken in a seeded order, each once (again from the start when all were
    taken)."""
    order = list(range(len(sentences)))
    random.Random(f"{seed}:{split}:order").shuffle(order)
    pos = 0
    files = []
    for i in range(n_files):
        rng = random.Random(f"{seed}:{split}:file:{i}")
        a = rng.choice(list(names))
        if rng.random() < BLEND:
            b = rng.choice([n for n in names if n != a])
            voice = (a, b, round(rng.uniform(0.2, 0.8), 3))
        else:
            voice = (a, None, 1.0)
        base = rng.uniform(*SPEED)
        lead, tail = rng.uniform(*EDGE), rng.uniform(*EDGE)
        est = lead + tail
        sents = []
        while True:
            s = sentences[order[pos % len(order)]]
            speed = round(min(max(base * rng.uniform(1 - SPEED_JITTER, 1 + SPEED_JITTER), SPEED[0]), SPEED[1]), 3)
            pieces, piece_words, marks, words = sentence_phonemes(s, max_chars)
            gaps = [round(rng.uniform(*(GAP_COMMA if m == "," else GAP_PLAIN)), 3) for m in marks[:-1]]
            pause = round(rng.uniform(*PAUSE), 3)
            dur = (sum(len(p) for p in pieces) * SECONDS_PER_TOKEN / speed + sum(gaps))
            if sents and est + dur / 2 > file_s:
                break
            pos += 1
            est += dur + (pause if sents else 0.0)
            sents.append({"text": s, "speed": speed, "pieces": pieces, "piece_words": piece_words,
                          "gaps": gaps, "pause": pause if len(sents) else 0.0, "words": words})
        if i >= first:
            files.append({"index": i, "file": f"{split}-{i:05d}.ogg", "seed": seed, "split": split,
                          "voice": voice, "lead": round(lead, 3), "tail": round(tail, 3),
                          "sentences": sents})
    return files


# ----------------------------------------------------------------------------- rendering
def render_sentence(s: dict, rendering, synth=None) -> Tuple[np.ndarray, List[Tuple[str, int, int]], int]:
    """One sentence: its 16 kHz audio (pieces trimmed and joined) and its words' [start, end).
    ``synth(phonemes, rendering)`` renders a piece (16 kHz audio, token durations in samples;
    default: the worker's onnxruntime session)."""
    from kws.corpus.kokoro_render import render_with_durations

    synth = synth or render_with_durations
    parts, words, pos, n = [], [], 0, 0
    for k, (ph, idx) in enumerate(zip(s["pieces"], s["piece_words"])):
        audio, dur = synth(ph, rendering)
        n += 1
        a, b = trim_bounds(audio)
        for w, (ws, we) in zip([s["words"][wi] for wi in idx], word_times(ph, dur, a, b)):
            words.append((w, pos + ws, pos + we))
        parts.append(audio[a:b])
        pos += b - a
        if k < len(s["gaps"]):
            g = int(round(s["gaps"][k] * SR))
            parts.append(np.zeros(g, np.float32))
            pos += g
    return np.concatenate(parts).astype(np.float32), words, n


def sentence_rendering(f: dict, s: dict):
    """The kws.enroll.kokoro.Rendering of sentence ``s`` of planned file ``f``."""
    from kws.enroll.kokoro import Rendering

    a, b, t = f["voice"]
    return Rendering(a, s["speed"], b, t) if b else Rendering(a, s["speed"])


def file_pieces(f: dict) -> List[Tuple[str, object]]:
    """(phonemes, rendering) of every piece of a planned file, in the order :func:`render_file`
    renders them (what a batched renderer renders ahead for it)."""
    return [(ph, sentence_rendering(f, s)) for s in f["sentences"] for ph in s["pieces"]]


def render_file(job: Tuple[dict, str], synth=None) -> dict:
    """Render one planned file into the folder ``job[1]``; its index entry. ``synth``: as
    :func:`render_sentence`'s."""
    from kws.enroll.kokoro import Rendering

    f, out = job
    t0 = time.time()
    a, b, t = f["voice"]
    parts = [np.zeros(int(round(f["lead"] * SR)), np.float32)]
    pos = parts[0].size
    sents, renders = [], 0
    for s in f["sentences"]:
        r = sentence_rendering(f, s)
        if s["pause"]:
            g = int(round(s["pause"] * SR))
            parts.append(np.zeros(g, np.float32))
            pos += g
        audio, words, n = render_sentence(s, r, synth)
        renders += n
        sents.append({"text": s["text"], "voice": voice_name(r), "speed": s["speed"],
                      "start": pos, "end": pos + audio.size,
                      "words": [[w, pos + ws, pos + we] for w, ws, we in words]})
        parts.append(audio)
        pos += audio.size
    parts.append(np.zeros(int(round(f["tail"] * SR)), np.float32))
    audio = np.concatenate(parts)
    write_opus(Path(out) / f["file"], audio)
    return {"file": f["file"], "index": f["index"], "split": f["split"], "seed": f["seed"],
            "samples": int(audio.size), "seconds": round(audio.size / SR, 3),
            "voice": voice_name(Rendering(a, 1.0, b, t) if b else Rendering(a)),
            "speeds": [s["speed"] for s in f["sentences"]], "renderings": renders,
            "render_s": round(time.time() - t0, 2), "sentences": sents}


def write_index(out: Path, meta: dict) -> dict:
    """index.json from index.jsonl (the entries of the files that exist), sorted by file."""
    entries = {}
    jl = out / "index.jsonl"
    if jl.exists():
        for line in jl.read_text().splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue                      # a line cut short
            if (out / e["file"]).exists():
                entries[e["file"]] = e
    files = [entries[k] for k in sorted(entries)]
    seconds = sum(e["seconds"] for e in files)
    index = {**meta, "sample_rate": SR, "files_n": len(files), "hours": round(seconds / 3600, 4),
             "sentences_n": sum(len(e["sentences"]) for e in files), "files": files}
    tmp = out / ".index.json.tmp"
    tmp.write_text(json.dumps(index, separators=(",", ":")))
    os.replace(tmp, out / "index.json")
    return index


def render(texts_path: Path, split: str, hours: float, seed: int, out: Path, workers: int = 0,
           max_minutes: float = 1e9, n_files: int = 0, quiet: bool = False,
           file_s: float = FILE_S, skip: Sequence[Path] = (), device: Optional[str] = None,
           batch: int = 32) -> dict:
    """Render the files of the plan not yet in ``out``: in ``workers`` onnxruntime processes, or,
    with ``device``, through kws.corpus.kokoro_render.TorchRenderer (pieces of several files
    rendered ahead in batches: kws.corpus.kokoro_render.render_ahead; then
    ``workers`` sets torch's CPU threads). Each file's entry and stats.json name the renderer."""
    from contextlib import ExitStack
    from multiprocessing import get_context

    from kws.corpus.kokoro_render import _init_worker, renderer_name
    from kws.enroll import kokoro

    t0 = time.time()
    texts = load_texts(texts_path)
    sentences = texts[split]
    n_files = n_files or int(math.ceil(hours * 3600 / file_s))
    v = kokoro.voices()
    out.mkdir(parents=True, exist_ok=True)
    meta = {"split": split, "seed": seed, "file_seconds": file_s, "texts": Path(texts_path).name,
            "texts_sha256": hashlib.sha256(Path(texts_path).read_bytes()).hexdigest(),
            "source": texts.get("source", ""), "made_by": "python -m kws.corpus.kokoro_talk render"}
    jl, ix = out / "index.jsonl", out / "index.json"
    if not jl.exists() and ix.exists():         # files brought from elsewhere with index.json alone
        old = json.loads(ix.read_text())
        if old.get("split") != split or old.get("seed") != seed:
            raise ValueError(f"{out}: holds split {old.get('split')!r} seed {old.get('seed')}, "
                             f"not {split!r} seed {seed}")
        jl.write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in old["files"]))
    done = {e["file"] for e in write_index(out, meta)["files"]}
    for k in skip:                              # files rendered elsewhere (their index.json)
        done |= {e["file"] for e in load_texts(k)["files"]}
    plan = [f for f in plan_files(sentences, n_files, seed, split, v.names, v.max_tokens - 2, file_s=file_s)
            if f["file"] not in done]
    if not device:
        workers = max(1, min(workers or os.cpu_count() or 1, len(plan) or 1))
    name = renderer_name(device)
    if not quiet:
        print(f"{split}: {len(plan)} files to render ({len(done)} there), {len(sentences)} sentences, "
              f"{name}, {workers} {'threads' if device else 'workers'}", flush=True)
    deadline = t0 + max_minutes * 60
    audio_s = renders = 0.0
    n = 0
    torch_r = pool = None
    if plan:
        with ExitStack() as stack:
            if device:
                from kws.corpus.kokoro_render import TorchRenderer, render_ahead, replay

                torch_r = TorchRenderer(device, batch, threads=workers, model_path=kokoro.model_path())
                entries = render_ahead(plan, torch_r, file_pieces,
                                       lambda f, res: render_file((f, str(out)), replay(res)))
            else:
                pool = stack.enter_context(get_context("spawn").Pool(
                    workers, initializer=_init_worker, initargs=(str(kokoro.model_path()),)))
                entries = pool.imap_unordered(render_file, [(f, str(out)) for f in plan])
            t1 = time.time()
            with open(out / "index.jsonl", "a") as jl:
                for e in entries:
                    e["renderer"] = name
                    jl.write(json.dumps(e, separators=(",", ":")) + "\n")
                    jl.flush()
                    n += 1
                    audio_s += e["seconds"]
                    renders += e["renderings"]
                    write_index(out, meta)
                    el = time.time() - t1
                    if not quiet:
                        print(f"{split}: {n}/{len(plan)} files, {audio_s / 3600:.3f} h in {el:.0f} s: "
                              f"{audio_s / el:.1f} audio-s/s, {renders / el:.2f} renderings/s", flush=True)
                    if time.time() > deadline:
                        if pool is not None:
                            pool.terminate()
                        break
    index = write_index(out, meta)
    el = time.time() - t0
    stats = {"split": split, "files": index["files_n"], "hours": index["hours"], "new_files": n,
             "new_hours": round(audio_s / 3600, 4), "seconds": round(el, 1), "workers": workers,
             "renderer": name, **({"torch": torch_r.stats()} if torch_r else {}),
             "audio_s_per_s": round(audio_s / el, 2) if el else 0.0,
             "renderings_per_s": round(renders / el, 2) if el else 0.0, "complete": n == len(plan)}
    (out / "stats.json").write_text(json.dumps(stats))
    return stats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kws.corpus.kokoro_talk", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("texts", help="clean and split the fortunes")
    t.add_argument("--fortunes", type=Path, nargs="+", required=True)
    t.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("render", help="render a split as ~60-s Ogg/Opus files")
    r.add_argument("--texts", type=Path, required=True)
    r.add_argument("--split", choices=("bank", "heldout"), required=True)
    r.add_argument("--hours", type=float, default=4.5)
    r.add_argument("--files", type=int, default=0, help="number of files (instead of --hours)")
    r.add_argument("--seed", type=int, default=1)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--workers", type=int, default=0)
    r.add_argument("--max-minutes", type=float, default=1e9)
    r.add_argument("--file-seconds", type=float, default=FILE_S)
    r.add_argument("--skip", type=Path, action="append", default=[],
                   help="index.json (or .json.xz) of files of this split rendered elsewhere: not rendered again")
    add_torch_args(r)
    i = sub.add_parser("index", help="write index.json from index.jsonl (and other index files' entries)")
    i.add_argument("folder", type=Path)
    i.add_argument("--add", type=Path, action="append", default=[],
                   help="an index.json whose entries (of files in the folder) join the folder's index")
    args = ap.parse_args(argv)
    if args.cmd == "texts":
        texts = build_texts(args.fortunes)
        write_texts(texts, args.out)
        print(json.dumps({k: texts[k] for k in ("quotes", "sentences_seen", "counts", "words")}))
    elif args.cmd == "render":
        print(json.dumps(render(args.texts, args.split, args.hours, args.seed, args.out, args.workers,
                                args.max_minutes, args.files, file_s=args.file_seconds, skip=args.skip,
                                device=args.device, batch=args.batch)))
    else:
        old = json.loads((args.folder / "index.json").read_text()) if (args.folder / "index.json").exists() else {}
        jl = args.folder / "index.jsonl"
        entries = {}
        for src in ([args.folder / "index.json"] if old and not jl.exists() else []) + list(args.add):
            ix = load_texts(src)
            if old and (ix.get("split"), ix.get("seed")) != (old.get("split"), old.get("seed")):
                raise SystemExit(f"{src}: split {ix.get('split')!r} seed {ix.get('seed')}, not those of {args.folder}")
            old = old or ix
            entries.update({e["file"]: e for e in ix["files"]})
        if entries:
            with open(jl, "a") as fh:
                fh.write("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries.values()))
        meta = {k: v for k, v in old.items() if k not in ("sample_rate", "files_n", "hours", "sentences_n", "files")}
        idx = write_index(args.folder, meta)
        print(json.dumps({"files": idx["files_n"], "hours": idx["hours"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
