"""Distil the audio encoder into a smaller, faster student that lives in the same embedding space.

    python -m kws.train.distill pack TEACHER.pt .carry/teacher.pt       # audio half, fp16 (travels)
    python -m kws.train.distill speech ../shared/data .carry/speech_a   # 12 MB of tuning-half speech
    python -m kws.train.distill train CONFIG.json [key=value ...]       # GPU: student.pt in OUT
    python -m kws.train.distill merge STUDENT.pt --teacher TEACHER.pt --out MODEL.pt

The student is an :class:`AudioEncoder` with fewer or narrower BiLSTM layers and frames stacked
into wider steps (``EncoderConfig.audio_hidden / audio_layers / stack``). It learns to give the
teacher's vector for the same input: loss = 1 - cos(student, teacher), on what the detector sees:

- windows of 0.15-1.2 s (the detector's lengths most often) cut at random places from continuous
  audio: the TTS corpus played back to back (word boundaries and partial words included) and real
  read speech (``speech``: a folder of recordings, e.g. the tuning half of speechocean762);
- whole corpus clips (keyword examples, enrolment);
- all of it augmented as in training (speed, rooms, noise, band limits, gain), teacher and student
  seeing the same audio.

The text encoder is not touched: ``merge`` puts the teacher's text encoder beside the student, so
text keywords, thresholds and search keep working, and ``python -m kws export`` builds a bundle.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from kws.features import MelConfig
from kws.train.augment import AugmentConfig, augment_waveforms
from kws.train.encoders import AudioEncoder, EncoderConfig, JointModel
from kws.train.features import TorchLogMel

RECIPE = "distill-1"
DETECTOR_WINDOWS_S = (0.3, 0.45, 0.6, 0.75, 0.9)
SEGMENT = int(1.4 * 16000)       # stretch of continuous audio augmented before a window is cut


@dataclass
class DistillConfig:
    teacher: str = ".carry/teacher.pt"     # from `pack` (or a full training checkpoint)
    corpus: str = "/tmp/corpus"            # kws.corpus.build output
    speech: Optional[str] = None           # folder of real speech recordings (any format)
    noise: Optional[str] = None            # npz of noise recordings for augmentation
    rooms: Optional[str] = None            # npz of room impulse responses
    out: str = "/tmp/distill"
    audio_hidden: int = 192
    audio_layers: int = 2
    stack: int = 2
    steps: int = 0                         # <= 0: one cycle over max_minutes of wall time
    init: Optional[str] = None             # student.pt to continue from (same sizes)
    max_minutes: float = 5.0
    batch: int = 512
    lr: float = 3e-3
    weight_decay: float = 1e-2
    pct_start: float = 0.1
    # shares of each batch: windows of the TTS stream, windows of real speech, whole clips
    share_tts: float = 0.45
    share_speech: float = 0.3
    p_detector_length: float = 0.6         # window length one of DETECTOR_WINDOWS_S, else uniform
    window_s: Tuple[float, float] = (0.15, 1.2)
    max_clip_s: float = 1.6
    augment: bool = True
    eval_every: int = 500
    seed: int = 0
    # windows' augmentation (the stretch a window is cut from gets up to pad_max_s of silence
    # either side, so some windows reach past speech, as at an utterance's ends)
    aug: AugmentConfig = field(default_factory=AugmentConfig)

    @classmethod
    def from_dict(cls, d: dict) -> "DistillConfig":
        d = dict(d)
        aug = AugmentConfig.from_dict(d.pop("aug", {}))
        if "window_s" in d:
            d["window_s"] = tuple(d["window_s"])
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise SystemExit(f"unknown config keys: {', '.join(sorted(unknown))}")
        return cls(aug=aug, **d)


# ---------------------------------------------------------------------------------------- teacher
def load_teacher(path: str, device) -> Tuple[AudioEncoder, dict]:
    """The teacher's audio encoder (fp32, eval mode) and its checkpoint's config."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    enc = EncoderConfig(**ck["config"]["encoder"])
    audio = AudioEncoder(enc)
    sd = {k[len("audio."):]: v.float() for k, v in ck["model"].items() if k.startswith("audio.")}
    audio.load_state_dict(sd)
    return audio.to(device).eval(), ck


def _fp16(state: dict) -> dict:
    return {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}


def pack(teacher: str, out: str) -> dict:
    """A training checkpoint's audio encoder alone, in fp16: what the GPU machine needs."""
    ck = torch.load(teacher, map_location="cpu", weights_only=False)
    slim = {"model": _fp16({k: v for k, v in ck["model"].items() if k.startswith("audio.")}),
            "config": {"encoder": ck["config"]["encoder"]}, "step": ck.get("step")}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(slim, out)
    return {"out": out, "bytes": Path(out).stat().st_size}


def speech_subset(data: Path, out: Path, half: str = "a", megabytes: float = 12.0) -> dict:
    """Copy speechocean762 recordings of one half of the speakers (kws.corpus.real.speaker_half), in file
    name order, until ``megabytes`` of Ogg: real speech small enough to travel to the GPU machine."""
    import shutil

    from kws.corpus.real import speech_files

    files = speech_files(data, half)
    if not files:
        raise SystemExit(f"no speechocean762 recordings under {data}")
    shutil.rmtree(out, ignore_errors=True)
    total, n = 0, 0
    for f in files:
        if total + f.stat().st_size > megabytes * 1e6:
            break
        (out / f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, out / f.parent.name / f.name)
        total, n = total + f.stat().st_size, n + 1
    return {"out": str(out), "files": n, "bytes": total}


def shrink(student: str, out: str) -> dict:
    """A student checkpoint with fp16 weights (half the bytes to carry; ``init`` reads it back)."""
    ck = torch.load(student, map_location="cpu", weights_only=False)
    ck["model"] = _fp16(ck["model"])
    torch.save(ck, out)
    return {"out": out, "bytes": Path(out).stat().st_size}


def merge(student: str, teacher: str, out: str) -> dict:
    """Student audio encoder + teacher text encoder and loss parameters -> one exportable checkpoint."""
    s = torch.load(student, map_location="cpu", weights_only=False)
    t = torch.load(teacher, map_location="cpu", weights_only=False)
    if not any(k.startswith("text.") for k in t["model"]):
        raise SystemExit(f"{teacher}: has no text encoder (use the full training checkpoint, not a pack)")
    enc = dict(t["config"]["encoder"])
    enc.update(s["student"])
    model = JointModel(EncoderConfig(**enc))
    state = {k: v for k, v in t["model"].items() if not k.startswith("audio.")}
    state.update({f"audio.{k}": v for k, v in s["model"].items()})
    model.load_state_dict(state)
    config = dict(t["config"])
    config["encoder"] = enc
    ck = {"model": model.state_dict(), "config": config,
          "recipe": f"{t.get('recipe')}+{RECIPE}", "step": t.get("step"),
          "metrics": t.get("metrics", {}), "corpus_stats": t.get("corpus_stats", {}),
          "distill": {"teacher_step": t.get("step"), "student": s["student"], "steps": s["step"],
                      "metrics": s.get("metrics", {}), "config": s.get("config", {})}}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    torch.save(ck, out)
    return {"out": out, "encoder": enc}


# ------------------------------------------------------------------------------------------- data
def load_speech(folder: str) -> np.ndarray:
    """Every recording under ``folder`` (any soundfile format), 16 kHz mono, back to back."""
    from kws.audio import load_audio

    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in (".ogg", ".wav", ".flac"))
    if not files:
        raise SystemExit(f"no recordings under {folder}")
    return np.concatenate([load_audio(f) for f in files]).astype(np.float32)


class WindowSource:
    """Random windows of continuous audio held on the training device, augmented."""

    def __init__(self, cfg: DistillConfig, device, g: torch.Generator, rng: np.random.Generator):
        from kws.train.trainer import Corpus

        self.cfg, self.device, self.g, self.rng = cfg, device, g, rng
        self.corpus = Corpus(cfg.corpus, device)
        train = self.corpus.split == 0
        # the TTS stream: the corpus audio from the first to the last training clip
        self.tts_lo = int(self.corpus.offset[train].min())
        self.tts_hi = int((self.corpus.offset + self.corpus.length)[train].max())
        self.train_clips = np.nonzero(train)[0]
        self.speech = None
        if cfg.speech:
            s = load_speech(cfg.speech)
            # the last 5 % (at least three 1.4 s stretches) is kept for validation
            hold = max(int(s.size * 0.05), 3 * SEGMENT)
            if s.size < hold + 2 * SEGMENT:
                raise SystemExit(f"{cfg.speech}: {s.size / 16000:.1f} s of speech is too little")
            self.speech = torch.from_numpy(s).to(device)
            self.speech_train_hi = s.size - hold
        self.noise = None
        if cfg.noise:
            nz = np.load(cfg.noise)
            self.noise = torch.from_numpy(np.concatenate([nz[k] for k in nz.files]).astype(np.float32) / 32768.0).to(device)
        self.rooms = torch.from_numpy(np.load(cfg.rooms)["rir"].astype(np.float32)).to(device) if cfg.rooms else None
        self.logmel = TorchLogMel(MelConfig()).to(device)

    def window_lengths(self, n: int) -> np.ndarray:
        cfg = self.cfg
        det = self.rng.choice(DETECTOR_WINDOWS_S, size=n)
        uni = self.rng.uniform(cfg.window_s[0], cfg.window_s[1], size=n)
        return (np.where(self.rng.random(n) < cfg.p_detector_length, det, uni) * 16000).astype(np.int64)

    def _cut(self, bank: torch.Tensor, lo: int, hi: int, n: int, seg: int) -> torch.Tensor:
        if hi - seg <= lo:
            raise SystemExit(f"too little audio to cut {seg / 16000:.1f} s stretches from ({(hi - lo) / 16000:.1f} s)")
        starts = torch.from_numpy(self.rng.integers(lo, hi - seg, size=n)).to(self.device)
        return bank[starts[:, None] + torch.arange(seg, device=self.device)[None, :]].float()

    def windows(self, bank: torch.Tensor, lo: int, hi: int, n: int, scale: float = 1.0,
                augment: Optional[bool] = None):
        """n windows: a 1.4 s stretch is augmented whole (``augment``, default cfg.augment),
        then a window is cut from it."""
        seg = SEGMENT
        wav = self._cut(bank, lo, hi, n, seg) * scale
        lens = torch.full((n,), seg, device=self.device, dtype=torch.long)
        if self.cfg.augment if augment is None else augment:
            wav, lens = augment_waveforms(wav, lens, self.cfg.aug, self.g, self.noise, self.rooms)
        want = torch.from_numpy(self.window_lengths(n)).to(self.device)
        want = torch.minimum(want, lens)
        start = (torch.rand(n, generator=self.g, device=self.device) * (lens - want + 1).float()).long()
        L = int(want.max())
        pos = (start[:, None] + torch.arange(L, device=self.device)[None, :]).clamp(max=wav.shape[1] - 1)
        out = torch.gather(wav, 1, pos) * (torch.arange(L, device=self.device)[None, :] < want[:, None])
        return out, want

    def clips(self, n: int):
        idx = self.rng.choice(self.train_clips, size=n)
        wav, lens = self.corpus.waveforms(idx, int(self.cfg.max_clip_s * 16000), self.rng)
        if self.cfg.augment:
            wav, lens = augment_waveforms(wav, lens, AugmentConfig(pad_max_s=0.25), self.g, self.noise, self.rooms)
        return wav, lens

    def batch(self):
        """(mel [B, T, 128], frames [B]) of one mixed batch."""
        cfg = self.cfg
        n_tts = int(cfg.batch * cfg.share_tts)
        n_sp = int(cfg.batch * cfg.share_speech) if self.speech is not None else 0
        n_clip = cfg.batch - n_tts - n_sp
        parts = [self.windows(self.corpus.audio, self.tts_lo, self.tts_hi, n_tts, 1 / 32768.0)]
        if n_sp:
            parts.append(self.windows(self.speech, 0, self.speech_train_hi, n_sp))
        parts.append(self.clips(n_clip))
        return self.features(parts)

    def features(self, parts):
        L = max(int(w.shape[1]) for w, _ in parts)
        wav = torch.cat([F.pad(w, (0, L - w.shape[1])) for w, _ in parts])
        lens = torch.cat([n for _, n in parts])
        mel = self.logmel(wav)
        return mel, TorchLogMel.frames_for(lens).clamp(min=1)

    def validation(self, n: int = 1024):
        """A fixed set: held-out corpus clips whole, windows of them, and held-out real speech."""
        # drawn from fixed seeds; the training streams continue as if this never ran
        train_rng, g_state = self.rng, self.g.get_state()
        self.rng = np.random.default_rng(12345)
        self.g.manual_seed(12345)
        try:
            val = np.nonzero(self.corpus.split > 0)[0]
            idx = self.rng.choice(val, size=min(n // 2, len(val)), replace=False)
            parts = {"clips": [self.corpus.waveforms(idx, int(self.cfg.max_clip_s * 16000), self.rng)]}
            lo = int(self.corpus.offset[val].min())
            hi = int((self.corpus.offset + self.corpus.length)[val].max())
            parts["tts_windows"] = [self.windows(self.corpus.audio, lo, hi, n // 2, 1 / 32768.0, augment=False)]
            if self.speech is not None:
                parts["speech_windows"] = [self.windows(self.speech, self.speech_train_hi, self.speech.numel(),
                                                        n // 2, augment=False)]
        finally:
            self.rng = train_rng
            self.g.set_state(g_state)
        return {k: self.features(v) for k, v in parts.items()}


# ------------------------------------------------------------------------------------------ train
def cosine_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    return (1.0 - (F.normalize(student.float(), dim=-1) * teacher).sum(-1)).mean()


@torch.no_grad()
def evaluate(student: AudioEncoder, teacher: AudioEncoder, val: Dict[str, tuple]) -> Dict[str, float]:
    student.eval()
    res = {}
    for name, (mel, frames) in val.items():
        c = (student(mel, frames) * teacher(mel, frames)).sum(-1)
        res[f"cos_{name}"] = float(c.mean())
        res[f"cos_p05_{name}"] = float(torch.quantile(c, 0.05))
    student.train()
    return res


def train(cfg: DistillConfig) -> Dict[str, float]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        # every batch has other FFT sizes (speed changes, window lengths): cuFFT's plan cache
        # would keep thousands of plans, and their work areas ran the GPU out of memory
        torch.backends.cuda.cufft_plan_cache.max_size = 64
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    g = torch.Generator(device=device)
    g.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    teacher, tck = load_teacher(cfg.teacher, device)
    scfg = EncoderConfig(**{**tck["config"]["encoder"], "audio_hidden": cfg.audio_hidden,
                            "audio_layers": cfg.audio_layers, "stack": cfg.stack})
    student = AudioEncoder(scfg).to(device)
    student.feat_mean.copy_(teacher.feat_mean)
    student.feat_std.copy_(teacher.feat_std)
    src = WindowSource(cfg, device, g, rng)
    val = src.validation()
    opt = torch.optim.AdamW(student.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    use_amp = device.type == "cuda"

    def step_once():
        with torch.no_grad():
            mel, frames = src.batch()
            target = teacher(mel, frames)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            emb = student(mel, frames)
        loss = cosine_loss(emb, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 5.0)
        opt.step()
        return loss

    if cfg.init:
        ick = torch.load(cfg.init, map_location=device, weights_only=False)
        if ick["student"] != {"audio_hidden": cfg.audio_hidden, "audio_layers": cfg.audio_layers, "stack": cfg.stack}:
            raise SystemExit(f"{cfg.init}: a student of other sizes {ick['student']}")
        student.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ick["model"].items()})
        print(f"continuing from {cfg.init} (step {ick['step']})", flush=True)
    t0 = time.time()
    budget_s = cfg.max_minutes * 60

    def one_cycle(frac: float) -> float:
        """OneCycleLR's shape (cosine up from lr/25, cosine down to lr/1e4) over a fraction."""
        lo, end = cfg.lr / 25, cfg.lr / 25 / 1e4
        if frac < cfg.pct_start:
            return lo + (cfg.lr - lo) * (1 - np.cos(np.pi * frac / cfg.pct_start)) / 2
        f = min(1.0, (frac - cfg.pct_start) / (1 - cfg.pct_start))
        return end + (cfg.lr - end) * (1 + np.cos(np.pi * f)) / 2

    # steps <= 0: the schedule follows wall time, not a step count, so that several students
    # sharing one GPU (and slowing each other down unevenly) all end their cycle on time.
    total = cfg.steps if cfg.steps > 0 else None
    log = open(out / "log.jsonl", "a")
    metrics: Dict[str, float] = {}

    def save():
        ck = {"model": {k: v.detach().cpu() for k, v in student.state_dict().items()}, "student": {"audio_hidden": cfg.audio_hidden,
              "audio_layers": cfg.audio_layers, "stack": cfg.stack},
              "step": step, "metrics": metrics, "config": asdict(cfg), "recipe": RECIPE}
        torch.save(ck, out / "student.pt.tmp")
        os.replace(out / "student.pt.tmp", out / "student.pt")

    step = 0
    student.train()
    while total is None or step < total:
        frac = step / total if total else (time.time() - t0) / budget_s
        lr = one_cycle(frac)
        for grp in opt.param_groups:
            grp["lr"] = lr
        loss = step_once()
        step += 1
        late = time.time() - t0 > budget_s
        if step % 50 == 0 or step == 1:
            rec = {"step": step, "loss": round(float(loss.detach()), 5), "lr": lr,
                   "min": round((time.time() - t0) / 60, 2)}
            log.write(json.dumps(rec) + "\n")
            print(json.dumps(rec), flush=True)
        if step % cfg.eval_every == 0 or step == total or late:
            metrics = evaluate(student, teacher, val)
            rec = {"step": step, "eval": metrics}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            print(json.dumps(rec), flush=True)
            save()
        if late:
            print(f"stopping at step {step}: max_minutes reached", flush=True)
            break
    log.close()
    return metrics


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kws.train.distill", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="teacher checkpoint -> its audio encoder in fp16")
    p.add_argument("teacher")
    p.add_argument("out")
    t = sub.add_parser("train", help="distil a student (GPU)")
    t.add_argument("config", help="JSON file of DistillConfig fields")
    t.add_argument("overrides", nargs="*", help="key=value (JSON values)")
    sp = sub.add_parser("speech", help="real speech of one half of the speakers, to carry")
    sp.add_argument("data", type=Path, help="../shared/data")
    sp.add_argument("out", type=Path)
    sp.add_argument("--half", choices=("a", "b"), default="a")
    sp.add_argument("--mb", type=float, default=12.0)
    sh = sub.add_parser("shrink", help="student checkpoint -> fp16 copy (to carry back for init)")
    sh.add_argument("student")
    sh.add_argument("out")
    m = sub.add_parser("merge", help="student + teacher text encoder -> exportable checkpoint")
    m.add_argument("student")
    m.add_argument("--teacher", required=True)
    m.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.cmd == "pack":
        print(json.dumps(pack(args.teacher, args.out)))
    elif args.cmd == "speech":
        print(json.dumps(speech_subset(args.data, args.out, args.half, args.mb)))
    elif args.cmd == "shrink":
        print(json.dumps(shrink(args.student, args.out)))
    elif args.cmd == "merge":
        print(json.dumps(merge(args.student, args.teacher, args.out)))
    else:
        from kws.train.__main__ import parse_overrides

        d = json.loads(Path(args.config).read_text())
        d.update(parse_overrides(args.overrides))
        print(json.dumps({"final": train(DistillConfig.from_dict(d))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
