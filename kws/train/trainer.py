"""Joint CLAP + DWD training of the audio and text encoders.

    python -m kws.train CONFIG.json [--resume] [key=value ...]

CONFIG is a JSON object of :class:`TrainConfig` fields; ``key=value`` overrides fields
(``steps=2000 alpha_clap=0``). Multi-GPU: ``torchrun --nproc_per_node N -m kws.train CONFIG``
(DistributedDataParallel; gloo on CPU, NCCL on GPU).

Writes to ``out``: ``last.pt`` (model, optimiser, scheduler, step; resumable), ``log.jsonl``
(loss parts, temperature, learning rate, validation metrics), ``best.pt`` (best validation score).
Training stops early, with a checkpoint, when ``max_minutes`` of wall time are spent, so a run can
be continued across several commands of limited length with ``--resume``.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
import torch.distributed as dist

from kws.features import MelConfig
from kws.metrics import cosine_matrix, cross_modal_ap, eer, same_different_ap
from kws import phonemes
from kws.phonemes import TOKEN_ID, pronounce
from kws.train.augment import AugmentConfig, augment_waveforms, spec_augment
from kws.train.encoders import EncoderConfig, JointModel
from kws.train.features import TorchLogMel
from kws.train.losses import joint_loss

RECIPE_VERSION = "clap-dwd-1"


@dataclass
class TrainConfig:
    corpus: str = "corpus"
    out: str = "runs/default"
    real: Optional[str] = None          # npz from kws.corpus.real (validation only)
    noise: Optional[str] = None         # npz of noise recordings for augmentation
    rooms: Optional[str] = None         # npz of room impulse responses (kws.corpus.rooms)
    steps: int = 6000                   # <= 0: fit the one-cycle schedule to max_minutes
    words_per_batch: int = 128
    clips_per_word: int = 4
    max_clip_s: float = 2.0
    lr: float = 2e-3
    weight_decay: float = 1e-2
    pct_start: float = 0.1
    alpha_clap: float = 0.1
    alpha_dwd: float = 1.0
    dwd_text_weight: float = 0.0        # > 0: DWD centroids anchored on the text (see losses.dwd_loss)
    eval_every: int = 500
    max_minutes: float = 1e9            # stop (with a checkpoint) after this much wall time
    schedule_minutes: float = 0.0       # steps <= 0: size the cycle to this (default max_minutes)
    seed: int = 0
    augment: bool = True
    amp: bool = True
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    aug: AugmentConfig = field(default_factory=AugmentConfig)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        enc = EncoderConfig(**d.pop("encoder", {}))
        aug = AugmentConfig.from_dict(d.pop("aug", {}))
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise SystemExit(f"unknown config keys: {', '.join(sorted(unknown))}")
        return cls(encoder=enc, aug=aug, **d)

    def to_dict(self) -> dict:
        return asdict(self)


class Corpus:
    """The corpus of kws.corpus.build, with audio on the training device."""

    def __init__(self, path: str, device: torch.device):
        p = Path(path)
        meta = np.load(p / "clips.npz")
        self.offset = meta["offset"]
        self.length = meta["length"]
        self.text = meta["text"]
        self.split = meta["split"]
        self.texts = json.loads((p / "texts.json").read_text())
        self.audio = torch.from_numpy(np.load(p / "audio.npy")).to(device)
        self.phone_ids = [np.array([TOKEN_ID[t] for t in x["phonemes"].split()], dtype=np.int64)
                          for x in self.texts]
        self.stats = json.loads((p / "stats.json").read_text()) if (p / "stats.json").exists() else {}
        train = np.nonzero(self.split == 0)[0]
        by_text: Dict[int, List[int]] = {}
        for i in train:
            by_text.setdefault(int(self.text[i]), []).append(int(i))
        self.train_by_text = {k: np.array(v) for k, v in by_text.items() if len(v) >= 2}
        self.train_texts = np.array(sorted(self.train_by_text))

    def clip(self, i: int) -> np.ndarray:
        """Clip ``i`` as float32 samples on the CPU."""
        x = self.audio[int(self.offset[i]): int(self.offset[i] + self.length[i])]
        return x.float().cpu().numpy() / 32768.0

    def waveforms(self, idx: np.ndarray, max_len: int, rng: np.random.Generator):
        """(N, L) float waveforms of clips ``idx`` (random crop of clips over max_len) + lengths."""
        lens = np.minimum(self.length[idx], max_len)
        starts = self.offset[idx] + (rng.random(len(idx)) * (self.length[idx] - lens + 1)).astype(np.int64)
        L = int(lens.max())
        dev = self.audio.device
        pos = torch.from_numpy(starts).to(dev)[:, None] + torch.arange(L, device=dev)[None, :]
        lens_t = torch.from_numpy(lens).to(dev)
        mask = torch.arange(L, device=dev)[None, :] < lens_t[:, None]
        pos = torch.minimum(pos, torch.tensor(self.audio.numel() - 1, device=dev))
        wav = self.audio[pos].float() / 32768.0 * mask
        return wav, lens_t


def pad_ids(seqs: List[np.ndarray], device) -> tuple:
    """kws.phonemes.pad_ids, as tensors on ``device``."""
    ids, lengths = phonemes.pad_ids(seqs)
    return torch.from_numpy(ids).to(device), torch.from_numpy(lengths).to(device)


@torch.no_grad()
def embed_audio(model: JointModel, logmel: TorchLogMel, wavs: List[np.ndarray], device,
                batch: int = 256) -> np.ndarray:
    """Embed a list of float waveforms (no augmentation), in length-sorted batches."""
    order = np.argsort([w.size for w in wavs])
    out = np.zeros((len(wavs), model.cfg.embed_dim), dtype=np.float32)
    for s in range(0, len(order), batch):
        ids = order[s:s + batch]
        L = max(max(wavs[i].size for i in ids), 400)
        x = torch.zeros(len(ids), L)
        for j, i in enumerate(ids):
            x[j, : wavs[i].size] = torch.from_numpy(wavs[i])
        n = torch.tensor([max(wavs[i].size, 400) for i in ids])
        mel = logmel(x.to(device))
        frames = TorchLogMel.frames_for(n).to(device)
        out[ids] = model.audio(mel, frames).float().cpu().numpy()
    return out


@torch.no_grad()
def embed_texts(model: JointModel, phone_ids: List[np.ndarray], device, batch: int = 512) -> np.ndarray:
    out = []
    for s in range(0, len(phone_ids), batch):
        ids, lens = pad_ids(phone_ids[s:s + batch], device)
        out.append(model.text(ids, lens).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.cfg.embed_dim), np.float32)


def load_real(path: str) -> Dict[str, object]:
    d = np.load(path)
    offs = np.concatenate([[0], np.cumsum(d["length"])[:-1]])
    wavs = [d["audio"][o:o + n].astype(np.float32) / 32768.0 for o, n in zip(offs, d["length"])]
    return {"wavs": wavs, "label": [str(x) for x in d["label"]], "source": [str(x) for x in d["source"]]}


def seconds_per_step(step: Callable[[], object], warmup: int, timed: int, device) -> float:
    """Wall seconds one call of ``step`` takes: ``warmup`` calls, then the mean of ``timed``
    (the trainers size their learning-rate cycle to a time budget with it)."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()
    for _ in range(warmup):
        step()
    sync()
    t0 = time.time()
    for _ in range(timed):
        step()
    sync()
    return (time.time() - t0) / timed


def validation_metrics(model: JointModel, embed: Callable[[List[np.ndarray]], np.ndarray], corpus: Corpus,
                       real, device) -> Dict[str, float]:
    """The validation numbers of both trainers: same-different AP and text->audio AP on the
    corpus's IV / OOV validation clips, and on the real clips (``real``: load_real) AP, 10-way
    text accuracy and text EER per source. ``embed`` turns waveforms into audio embeddings."""
    res: Dict[str, float] = {}
    for name, code in (("iv", 1), ("oov", 2)):
        idx = np.nonzero(corpus.split == code)[0]
        if len(idx) < 4:
            continue
        emb = embed([corpus.clip(int(i)) for i in idx])
        labels = corpus.text[idx]
        res[f"ap_{name}"] = same_different_ap(emb, labels)
        uniq = np.unique(labels)
        temb = embed_texts(model, [corpus.phone_ids[t] for t in uniq], device)
        res[f"xap_{name}"] = cross_modal_ap(emb, labels, temb, uniq)
    if real is not None:
        emb = embed(real["wavs"])
        labels = np.array(real["label"])
        src = np.array(real["source"])
        words = sorted(set(real["label"]))
        temb = embed_texts(model, [pronounce(w).ids() for w in words], device)
        for s in ("fsdd", "wakewords"):
            m = src == s
            if not m.any():
                continue
            res[f"real_ap_{s}"] = same_different_ap(emb[m], labels[m])
            ws = sorted(set(labels[m]))
            sim = cosine_matrix(emb[m], temb[[words.index(w) for w in ws]])
            res[f"real_text_acc_{s}"] = float(np.mean(np.array(ws)[sim.argmax(1)] == labels[m]))
            pos = np.array(ws)[None, :] == labels[m][:, None]
            res[f"real_text_eer_{s}"] = eer(sim.ravel(), pos.ravel())[0]
    return res


@torch.no_grad()
def validate(model: JointModel, logmel: TorchLogMel, corpus: Corpus, real, device) -> Dict[str, float]:
    model.eval()
    res = validation_metrics(model, lambda wavs: embed_audio(model, logmel, wavs, device), corpus, real, device)
    model.train()
    return res


def _score(v: Dict[str, float]) -> float:
    keys = [k for k in ("ap_oov", "xap_oov", "real_ap_wakewords", "real_text_acc_fsdd") if k in v]
    return float(np.mean([v[k] for k in keys])) if keys else 0.0


def feature_stats(corpus: Corpus, logmel: TorchLogMel, rng, n: int = 2000):
    idx = rng.choice(np.nonzero(corpus.split == 0)[0], size=min(n, int((corpus.split == 0).sum())),
                     replace=False)
    wav, lens = corpus.waveforms(idx, 16000 * 2, rng)
    mel = logmel(wav)
    frames = TorchLogMel.frames_for(lens)
    mask = (torch.arange(mel.shape[1], device=mel.device)[None, :] < frames[:, None]).float()[..., None]
    cnt = mask.sum()
    mean = (mel * mask).sum((0, 1)) / cnt
    std = torch.sqrt(((mel - mean).square() * mask).sum((0, 1)) / cnt).clamp(min=1e-3)
    return mean, std


class _LossStep(torch.nn.Module):
    """Encoders + joint loss in one forward: (mel, frames, ids, id_lens, labels) -> (loss, parts)."""

    def __init__(self, model: JointModel, cfg: TrainConfig, use_amp: bool):
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.use_amp = use_amp

    def forward(self, mel, frames, ids, id_lens, labels):
        with torch.autocast(mel.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
            a, t = self.model(mel, frames, ids, id_lens)
        return joint_loss(a.float(), t.float(), labels, self.model, self.cfg.alpha_clap,
                          self.cfg.alpha_dwd, self.cfg.dwd_text_weight)


def train(cfg: TrainConfig, resume: bool = False) -> Dict[str, float]:
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank = dist.get_rank()
    else:
        rank = 0
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        # batches differ in length, so FFT sizes keep changing: cap cuFFT's plan cache (its
        # work areas ran a distillation run out of GPU memory; see kws.train.distill)
        torch.backends.cuda.cufft_plan_cache.max_size = 64
    else:
        device = torch.device("cpu")
    is_main = rank == 0
    out = Path(cfg.out)
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed + rank)
    rng = np.random.default_rng(cfg.seed + 1000 * rank)
    g = torch.Generator(device=device)
    g.manual_seed(cfg.seed + rank)

    corpus = Corpus(cfg.corpus, device)
    real = load_real(cfg.real) if (cfg.real and is_main) else None
    noise_bank = None
    if cfg.noise:
        nz = np.load(cfg.noise)
        noise_bank = torch.from_numpy(np.concatenate([nz[k] for k in nz.files]).astype(np.float32) / 32768.0).to(device)
    rooms = None
    if cfg.rooms:
        rooms = torch.from_numpy(np.load(cfg.rooms)["rir"].astype(np.float32)).to(device)
    logmel = TorchLogMel(MelConfig()).to(device)
    model = JointModel(cfg.encoder).to(device)
    mean, std = feature_stats(corpus, logmel, np.random.default_rng(cfg.seed))
    model.audio.feat_mean.copy_(mean)
    model.audio.feat_std.copy_(std)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, best = 0, -1.0
    ckpt_path = out / "last.pt"
    ck = None
    if resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
    use_amp = cfg.amp and device.type == "cuda"
    step_module = _LossStep(model, cfg, use_amp)
    # The loss runs inside the wrapped forward: its learnable temperature, scale and bias are
    # model parameters, and DistributedDataParallel must see every use of them in one forward.
    ddp = (torch.nn.parallel.DistributedDataParallel(step_module, find_unused_parameters=True)
           if distributed else step_module)
    M, K = cfg.clips_per_word, cfg.words_per_batch
    max_len = int(cfg.max_clip_s * 16000)

    def train_step():
        words = rng.choice(corpus.train_texts, size=min(K, len(corpus.train_texts)), replace=False)
        clip_idx = np.concatenate([rng.choice(corpus.train_by_text[int(w)], size=M,
                                              replace=len(corpus.train_by_text[int(w)]) < M)
                                   for w in words])
        labels = torch.arange(len(words), device=device).repeat_interleave(M)
        with torch.no_grad():
            wav, lens = corpus.waveforms(clip_idx, max_len, rng)
            if cfg.augment:
                wav, lens = augment_waveforms(wav, lens, cfg.aug, g, noise_bank, rooms)
            mel = logmel(wav)
            frames = TorchLogMel.frames_for(lens).clamp(min=1)
            if cfg.augment:
                mel = spec_augment(mel, model.audio.feat_mean, cfg.aug, g)
        ids, id_lens = pad_ids([corpus.phone_ids[int(w)] for w in words], device)
        loss, parts = ddp(mel, frames, ids, id_lens, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        return loss, parts

    total_steps = cfg.steps
    if ck is None and total_steps <= 0:
        # Calibrate: time 30 steps at the schedule's starting learning rate, then size the cycle
        # so that it ends inside max_minutes (10 % kept for validation and checkpoints).
        for grp in opt.param_groups:
            grp["lr"] = cfg.lr / 25
        per_step = seconds_per_step(train_step, 5, 30, device)
        # where the time goes: batch preparation and augmentation alone
        td = time.time()
        for _ in range(10):
            with torch.no_grad():
                idx = rng.choice(np.nonzero(corpus.split == 0)[0], size=K * M)
                w_, l_ = corpus.waveforms(idx, max_len, rng)
                if cfg.augment:
                    w_, l_ = augment_waveforms(w_, l_, cfg.aug, g, noise_bank, rooms)
                spec_augment(logmel(w_), model.audio.feat_mean, cfg.aug, g)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if is_main:
            print(json.dumps({"data_s_per_step": (time.time() - td) / 10}), flush=True)
        minutes = cfg.schedule_minutes or cfg.max_minutes
        total_steps = max(100, int(minutes * 60 * 0.88 / per_step))
        if distributed:
            ts = torch.tensor(float(total_steps), device=device)
            dist.all_reduce(ts, op=dist.ReduceOp.MIN)
            total_steps = int(ts.item())
        if is_main:
            print(json.dumps({"calibration_s_per_step": per_step, "total_steps": total_steps}), flush=True)
    elif ck is not None:
        total_steps = ck["scheduler"]["total_steps"]
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total_steps,
                                                pct_start=cfg.pct_start)
    if ck is not None:
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        step, best = ck["step"], ck.get("best", -1.0)
        rng = np.random.default_rng(cfg.seed + 1000 * rank + step)
        g.manual_seed(cfg.seed + rank + step)
        if is_main:
            print(f"resumed at step {step}", flush=True)
    t0 = time.time()
    log = open(out / "log.jsonl", "a") if is_main else None

    def save(name: str, metrics: Optional[dict] = None):
        if not is_main:
            return
        ck = {"model": model.state_dict(), "optimizer": opt.state_dict(),
              "scheduler": sched.state_dict(), "step": step, "best": best,
              "config": cfg.to_dict(), "recipe": RECIPE_VERSION, "metrics": metrics or {},
              "corpus_stats": corpus.stats}
        tmp = out / (name + ".tmp")
        torch.save(ck, tmp)
        os.replace(tmp, out / name)

    model.train()
    last_metrics: Dict[str, float] = {}
    while step < total_steps:
        loss, parts = train_step()
        sched.step()
        step += 1
        if is_main and (step % 50 == 0 or step == 1):
            rec = {"step": step, "loss": float(loss.detach()), **parts, "lr": sched.get_last_lr()[0],
                   "min": round((time.time() - t0) / 60, 2)}
            print(json.dumps(rec), flush=True)
            log.write(json.dumps(rec) + "\n")
        out_of_time = (time.time() - t0) / 60 > cfg.max_minutes
        if distributed:   # every rank stops at the same step
            flag = torch.tensor(float(out_of_time), device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            out_of_time = bool(flag.item())
        if step % cfg.eval_every == 0 or step == total_steps or out_of_time:
            if is_main:
                last_metrics = validate(model, logmel, corpus, real, device)
                score = _score(last_metrics)
                rec = {"step": step, "eval": last_metrics, "score": score}
                print(json.dumps(rec), flush=True)
                log.write(json.dumps(rec) + "\n")
                log.flush()
                if score > best:
                    best = score
                    save("best.pt", last_metrics)
                save("last.pt", last_metrics)
            if out_of_time:
                if is_main:
                    print(f"stopping at step {step}: max_minutes reached; continue with --resume",
                          flush=True)
                break
    if distributed:
        # DistributedDataParallel keeps replicas identical; check it rather than trust it.
        flat = torch.cat([p.detach().float().reshape(-1) for p in model.parameters()])
        sums = torch.stack([flat.sum(), flat.abs().sum(), (flat * torch.arange(flat.numel(), device=flat.device) % 7).sum()])
        gathered = [torch.zeros_like(sums) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, sums)
        if is_main:
            in_sync = all(torch.allclose(g_, gathered[0], rtol=1e-6, atol=1e-6) for g_ in gathered)
            print(json.dumps({"ranks": len(gathered), "replicas_in_sync": bool(in_sync)}), flush=True)
        dist.destroy_process_group()
    return last_metrics
