"""The head training's audio: the Kokoro corpus (with other synthesisers' words), the real speech,
other synthesisers' talk, noise, music and rooms in one buffer on the device (:func:`load_data`),
the templates' raw vectors, and the staging of the real speech (:func:`stage_speech`)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import torch

from kws.model.backbone import DIM, VEC_HOP, VEC_SPAN, num_vectors
from kws.spot.templates import PAD_S
from kws.train.config import TrainConfig

SR = 16000


@dataclass
class Data:
    """All audio in one int16 buffer on the device, and where everything lies in it."""

    buffer: torch.Tensor
    words: List[str]
    phone_ids: List[np.ndarray]
    iso_off: np.ndarray
    iso_len: np.ndarray
    iso_word: np.ndarray
    sen_off: np.ndarray
    sen_len: np.ndarray
    occ_sentence: np.ndarray
    occ_word: np.ndarray
    occ_start: np.ndarray
    occ_end: np.ndarray
    real_off: np.ndarray          # speechocean762 sentences (known words)
    real_len: np.ndarray
    rocc_file: np.ndarray         # real word occurrences: file, word id (-1 not a vocabulary word), start, end
    rocc_word: np.ndarray
    rocc_start: np.ndarray
    rocc_end: np.ndarray
    talk_off: np.ndarray          # all real speech (babble and talkers)
    talk_len: np.ndarray
    noise: Optional[torch.Tensor] = None
    music: Optional[torch.Tensor] = None
    rooms: Optional[torch.Tensor] = None
    # per word rendering: made by another synthesiser (a query, never a template;
    # kws.corpus.other_voices); None: all are Kokoro's
    iso_alt: Optional[np.ndarray] = None
    # other synthesisers' talk (kws.corpus.other_voices --texts): each sentence's place and the
    # vocabulary words its text holds (context and speech negatives free of batch words)
    alt_sen_off: Optional[np.ndarray] = None
    alt_sen_len: Optional[np.ndarray] = None
    alt_sen_words: Optional[List[np.ndarray]] = None


def _decode(path: str) -> np.ndarray:
    from kws.audio.io import load_audio

    return np.round(np.clip(load_audio(path), -1, 1) * 32767).astype(np.int16)


def load_data(cfg: TrainConfig, device, workers: int = 0) -> Tuple[Data, dict]:
    from multiprocessing import Pool

    corpus = Path(cfg.corpus)
    z = np.load(corpus / "index.npz")
    tts = np.load(corpus / "audio.npy")
    words = [str(w) for w in z["words"]]
    wid = {w: i for i, w in enumerate(words)}
    parts = [tts]
    pos = tts.size
    real_off, real_len, talk_off, talk_len = [], [], [], []
    rocc = {"file": [], "word": [], "start": [], "end": []}
    if cfg.speech:
        idx = json.loads((Path(cfg.speech) / "index.json").read_text())
        files = [str(Path(cfg.speech) / f["file"]) for f in idx["files"]]
        with Pool(workers or os.cpu_count() or 1) as pool:
            audio = pool.map(_decode, files, chunksize=4)
        for rec, a in zip(idx["files"], audio):
            parts.append(a)
            talk_off.append(pos), talk_len.append(a.size)
            if rec["role"] == "sentence":
                f_id = len(real_off)
                real_off.append(pos), real_len.append(a.size)
                for w, s, e in rec["words"]:
                    s_i, e_i = int(s * SR), min(int(e * SR), a.size)
                    rocc["file"].append(f_id), rocc["word"].append(wid.get(w.lower(), -1))
                    rocc["start"].append(pos + s_i), rocc["end"].append(pos + e_i)
            pos += a.size
    alt_off, alt_len, alt_words = [], [], []
    if cfg.other_talk:
        pos = _other_talk(Path(cfg.other_talk), wid, parts, pos, alt_off, alt_len, alt_words, workers)
    if not talk_off:          # no real speech: the rendered sentences stand in for it
        talk_off, talk_len = list(z["sen_off"]), list(z["sen_len"])
    buffer = torch.from_numpy(np.concatenate(parts)).to(device)

    def audio_file(path):
        if not path:
            return None
        from kws.audio.io import load_audio

        paths = [path] if isinstance(path, str) else list(path)
        return torch.from_numpy(np.concatenate([load_audio(p) for p in paths])).to(device)

    rooms = None
    if cfg.rooms:
        rooms = torch.from_numpy(np.load(cfg.rooms)["rir"].astype(np.float32)).to(device)
    from kws.enroll.phonemes import pronounce

    phone_ids = [np.array(pronounce(w).ids(), np.int64) for w in words]
    a = lambda v: np.array(v, dtype=np.int64)  # noqa: E731
    d = Data(buffer=buffer, words=words, phone_ids=phone_ids,
             iso_off=z["iso_off"], iso_len=z["iso_len"], iso_word=z["iso_word"],
             sen_off=z["sen_off"], sen_len=z["sen_len"], occ_sentence=z["occ_sentence"],
             occ_word=z["occ_word"], occ_start=z["occ_start"], occ_end=z["occ_end"],
             real_off=a(real_off), real_len=a(real_len), rocc_file=a(rocc["file"]), rocc_word=a(rocc["word"]),
             rocc_start=a(rocc["start"]), rocc_end=a(rocc["end"]), talk_off=a(talk_off), talk_len=a(talk_len),
             noise=audio_file(cfg.noise), music=audio_file(cfg.music), rooms=rooms,
             iso_alt=alt_renderings(z["iso_voice"]) if "iso_voice" in z.files else None,
             alt_sen_off=a(alt_off), alt_sen_len=a(alt_len), alt_sen_words=alt_words)
    stats = {"words": len(words), "word_renderings": int(d.iso_off.size), "sentences": int(d.sen_off.size),
             "sentence_words": int(d.occ_word.size), "real_sentences": len(real_off),
             "real_words": int((d.rocc_word >= 0).sum()), "real_word_types": int(np.unique(d.rocc_word[d.rocc_word >= 0]).size),
             "speech_hours": float(sum(talk_len) / SR / 3600), "tts_hours": float(tts.size / SR / 3600),
             "other_voice_renderings": int(d.iso_alt.sum()) if d.iso_alt is not None else 0,
             "other_talk_sentences": len(alt_off), "other_talk_hours": float(sum(alt_len) / SR / 3600)}
    return d, stats


def _other_talk(folder: Path, wid: dict, parts: list, pos: int, off: list, ln: list, words: list,
                workers: int = 0) -> int:
    """Append the talk of ``folder`` (kws.corpus.other_voices --texts: Ogg chunks and index.json
    with each sentence's text, chunk and place) to ``parts`` from sample ``pos`` on; each sentence's
    offset, length and vocabulary word ids go to ``off``, ``ln`` and ``words``. Returns the new end."""
    from multiprocessing import Pool

    from kws.corpus.kokoro_talk import tokens_of
    from kws.corpus.kokoro_corpus import read_index
    from kws.corpus.other_voices import TALK_FORMAT

    try:
        ix = read_index(folder, TALK_FORMAT, "python -m kws.corpus.other_voices --texts")
    except ValueError as exc:
        raise SystemExit(f"other_talk: {exc}") from None
    with Pool(workers or os.cpu_count() or 1) as pool:
        audio = pool.map(_decode, [str(folder / c["file"]) for c in ix["chunks"]])
    starts = []
    for a in audio:
        starts.append(pos)
        parts.append(a)
        pos += a.size
    for s in ix["sentences"]:
        c = int(s["chunk"])
        n = min(int(s["len"]), audio[c].size - int(s["start"]))
        if n < 0.3 * SR:
            continue
        off.append(starts[c] + int(s["start"])), ln.append(n)
        words.append(np.array(sorted({wid[w] for w, _ in tokens_of(s["text"]) if w in wid}), np.int64))
    return pos


def alt_renderings(voices) -> np.ndarray:
    """Which renderings another synthesiser made: their voice names hold a ``:``
    (``espeak-ng:en-us+m3:s170:p50``; Kokoro's read ``af_heart``, ``am_adam*0.4+bf_emma@1.1``)."""
    return np.array([":" in str(v) for v in voices], dtype=bool)


@torch.no_grad()
def template_vectors(data: Data, backbone, device, batch: int = 512) -> Tuple[torch.Tensor, torch.Tensor]:
    """Raw vectors of every word rendering as a template source (kws.spot.templates.source_vectors:
    trimmed audio padded with PAD_S of silence): [n_iso, F, 96] and the vector count of each.
    Other synthesisers' renderings (``data.iso_alt``) are never templates: their rows stay zero and
    count no vectors, so neither the batches nor the head's input standardisation use them."""
    pad = int(PAD_S * SR)
    lens = data.iso_len + 2 * pad
    n = np.array([num_vectors(int(x)) for x in lens])
    alt = data.iso_alt if data.iso_alt is not None else np.zeros(len(lens), bool)
    n[alt] = 0
    F_ = int(n.max())
    out = torch.zeros(len(lens), F_, DIM, device=device)
    order = np.flatnonzero(~alt)[np.argsort(lens[~alt], kind="stable")]
    for s in range(0, len(order), batch):
        ids = order[s:s + batch]
        Lb = int(lens[ids].max())
        Lb = max(Lb, VEC_SPAN)
        pos = torch.arange(Lb, device=device)[None, :] - pad
        off = torch.from_numpy(data.iso_off[ids]).to(device)[:, None]
        ln = torch.from_numpy(data.iso_len[ids]).to(device)[:, None]
        valid = (pos >= 0) & (pos < ln)
        src = (off + pos.clamp(min=0)).clamp(max=data.buffer.numel() - 1)
        wav = torch.where(valid, data.buffer[src].float() / 32768.0, torch.zeros((), device=device))
        v = backbone(wav)
        out[torch.from_numpy(ids).to(device), : v.shape[1]] = v[:, :F_]
    return out, torch.from_numpy(n).to(device)


def stage_speech(data: Optional[Path], out: Path) -> dict:
    """kws.corpus.stage's speech folder without the validation speakers' sentences
    (kws.train.head_eval.validation_speaker): those are the validation run's background."""
    from kws.corpus.real import DEFAULT_DATA
    from kws.corpus.stage import stage_speech as stage
    from kws.train.head_eval import validation_speaker

    stage(data or DEFAULT_DATA, out, half="a")
    idx = json.loads((out / "index.json").read_text())
    keep = []
    for f in idx["files"]:
        if f["role"] == "sentence" and validation_speaker(f["speaker"]):
            (out / f["file"]).unlink()
        else:
            keep.append(f)
    idx["files"] = keep
    idx["validation_speakers_removed"] = True
    (out / "index.json").write_text(json.dumps(idx))
    size = sum((out / f["file"]).stat().st_size for f in keep)
    return {"files": len(keep), "sentences": sum(f["role"] == "sentence" for f in keep),
            "megabytes": round(size / 2 ** 20, 1)}
