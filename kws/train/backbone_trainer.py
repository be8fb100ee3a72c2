"""Joint CLAP + DWD training of a head on the frozen speech-embedding backbone, and the text encoder.

    python -m kws.train configs/backbone.json [key=value ...] [--resume]

(``"frontend": "speech_embedding"`` in the config selects this trainer; without it,
``python -m kws.train`` trains the log-mel BiLSTM of kws.train.trainer, kept as the baseline.)

The audio encoder is ``backbone -> head``: the backbone (kws.train.backbone, frozen) turns
waveforms into 96-d vectors every 80 ms; the head (the BiLSTM encoder of kws.train.encoders over
those vectors: masked mean, linear, L2 norm) turns a window of vectors into a 512-d unit vector.
Batches come from kws.train.context: K words x M clips, TTS and real (speechocean762, tuning-half
speakers) words in context, augmented on the device, with prefix / suffix / background negatives
that join the loss as the null class (kws.train.losses). Loss 0.1 x CLAP + 1.0 x DWD, AdamW,
one-cycle schedule sized to ``schedule_minutes`` (or ``steps``).

Writes to ``out``: ``last.pt`` (resumable), ``best.pt`` (best validation score), ``log.jsonl``.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field, fields
from multiprocessing import Pool
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from kws.backbone import VEC_HOP, VEC_SPAN, as_files, num_vectors
from kws.phonemes import pronounce
from kws.train.backbone import TorchBackbone
from kws.train.context import MAX_VECTORS, Augmenter, Batcher, ContextConfig, Sources
from kws.train.encoders import EncoderConfig, JointModel
from kws.train.losses import joint_loss
from kws.train.trainer import Corpus, load_real, pad_ids, seconds_per_step, validation_metrics

RECIPE_VERSION = "backbone-clap-dwd-1"


def default_encoder() -> EncoderConfig:
    return EncoderConfig(frontend="speech_embedding", n_mels=96, audio_hidden=128, audio_layers=2)


@dataclass
class BackboneTrainConfig:
    frontend: str = "speech_embedding"
    corpus: str = "corpus"                 # TTS word clips (kws.corpus.build)
    speech: Optional[str] = None           # kws.corpus.stage speech folder
    backbone: str = "kws/assets/model"  # folder holding backbone.onnx + backbone_mel.npz
    out: str = "runs/backbone"
    real: Optional[str] = None             # validation clips (kws.corpus.real)
    noise: Optional[str] = None            # audio file of noise recordings
    music: Optional[str] = None            # audio file of music
    rooms: Optional[str] = None            # npz of room impulse responses
    init: Optional[str] = None             # start from this checkpoint's weights (new schedule)
    init_text: Optional[str] = None        # start the text encoder from a bundle's text.onnx
    text_lr_scale: float = 1.0             # text encoder learning rate / lr (0: frozen)
    steps: int = 0                         # <= 0: size the cycle to schedule_minutes / max_minutes
    words_per_batch: int = 256
    real_words_per_batch: int = 48
    clips_per_word: int = 4
    lr: float = 2e-3
    weight_decay: float = 1e-2
    pct_start: float = 0.1
    alpha_clap: float = 0.1
    alpha_dwd: float = 1.0
    eval_every: int = 500
    max_minutes: float = 1e9
    schedule_minutes: float = 0.0
    seed: int = 0
    amp: bool = True
    encoder: EncoderConfig = field(default_factory=default_encoder)
    context: ContextConfig = field(default_factory=ContextConfig)

    @classmethod
    def from_dict(cls, d: dict) -> "BackboneTrainConfig":
        d = dict(d)
        enc = asdict(default_encoder())
        enc.update(d.pop("encoder", {}))
        ctx = ContextConfig.from_dict(d.pop("context", {}))
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise SystemExit(f"unknown config keys: {', '.join(sorted(unknown))}")
        return cls(encoder=EncoderConfig(**enc), context=ctx, **d)

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------- data
def _decode(path: str) -> np.ndarray:
    from kws.audio import load_audio

    return np.round(np.clip(load_audio(path), -1, 1) * 32767).astype(np.int16)


def _excluded_words() -> set:
    """Words never trained on as real positives: the held-out list (OOV) and the test words."""
    from kws.corpus.vocab import HELD_OUT, read_list

    return set(read_list("oov")) | set(HELD_OUT)


def load_sources(cfg: BackboneTrainConfig, corpus: Corpus, device, workers: int = 0):
    """One int16 buffer (TTS clips, then real speech) and its index; extra texts for real words."""
    texts = [t["text"] for t in corpus.texts]
    phone_ids = list(corpus.phone_ids)
    text_id = {t: i for i, t in enumerate(texts)}
    parts = [corpus.audio_np]
    base = corpus.audio_np.size
    train = np.nonzero(corpus.split == 0)[0]
    occ = {"off": [], "len": [], "text": [], "lo": [], "hi": []}
    sp_off, sp_len = [], []
    if cfg.speech:
        idx = json.loads((Path(cfg.speech) / "index.json").read_text())
        files = [str(Path(cfg.speech) / f["file"]) for f in idx["files"]]
        with Pool(workers or os.cpu_count() or 1) as pool:
            audio = pool.map(_decode, files, chunksize=8)
        excluded = _excluded_words()
        pos = base
        for rec, a in zip(idx["files"], audio):
            parts.append(a)
            sp_off.append(pos)
            sp_len.append(a.size)
            for w, s, e in rec.get("words", []):
                s_i, e_i = int(s * 16000), int(e * 16000)
                if w in excluded or e_i - s_i < 0.15 * 16000 or e_i > a.size:
                    continue
                if w not in text_id:
                    try:
                        ids = np.array(pronounce(w).ids(), dtype=np.int64)
                    except Exception:           # a word no pronunciation can be made for
                        continue
                    text_id[w] = len(texts)
                    texts.append(w)
                    phone_ids.append(ids)
                occ["off"].append(pos + s_i)
                occ["len"].append(e_i - s_i)
                occ["text"].append(text_id[w])
                occ["lo"].append(pos)
                occ["hi"].append(pos + a.size)
            pos += a.size
    if not sp_off:      # no real speech: TTS clips serve as context and babble
        sp_off = list(corpus.offset[train])
        sp_len = list(corpus.length[train])
    buffer = torch.from_numpy(np.concatenate(parts)).to(device)

    def audio_file(path):
        if not path:
            return None
        from kws.audio import load_audio

        return torch.from_numpy(load_audio(path)).to(device)

    rooms = torch.from_numpy(np.load(cfg.rooms)["rir"].astype(np.float32)).to(device) if cfg.rooms else None
    a = lambda k: np.array(occ[k], dtype=np.int64)  # noqa: E731
    src = Sources(buffer=buffer, tts_off=corpus.offset[train].astype(np.int64),
                  tts_len=corpus.length[train].astype(np.int64), tts_text=corpus.text[train].astype(np.int64),
                  occ_off=a("off"), occ_len=a("len"), occ_text=a("text"), occ_sent_lo=a("lo"),
                  occ_sent_hi=a("hi"), speech_off=np.array(sp_off, dtype=np.int64),
                  speech_len=np.array(sp_len, dtype=np.int64), noise=audio_file(cfg.noise),
                  music=audio_file(cfg.music), rooms=rooms)
    stats = {"real_occurrences": len(occ["off"]), "real_word_types": len(set(occ["text"])),
             "real_types_not_in_tts": len(texts) - len(corpus.texts),
             "speech_files": len(sp_off), "speech_hours": float(sum(sp_len) / 16000 / 3600)}
    return src, phone_ids, texts, stats


# ---------------------------------------------------------------------- embedding
def clip_windows(wavs: List[np.ndarray]):
    """Clips padded with silence as the run time embeds a whole clip (kws.frontend.BackboneFrontend:
    the first vector's field ends just after the word starts), at least one vector's span long."""
    from kws.frontend import BackboneFrontend

    left, right = (int(p * 16000) for p in BackboneFrontend.clip_pad_s)
    out = []
    for w in wavs:
        x = np.concatenate([np.zeros(left, np.float32), w.astype(np.float32), np.zeros(right, np.float32)])
        if x.size < VEC_SPAN:
            x = np.concatenate([x, np.zeros(VEC_SPAN - x.size, np.float32)])
        out.append(x)
    return out


@torch.no_grad()
def embed_waveforms(model: JointModel, backbone: TorchBackbone, wavs: List[np.ndarray], device,
                    batch: int = 256) -> np.ndarray:
    """Whole-clip embeddings (clips padded by clip_windows), length-sorted batches."""
    wavs = clip_windows(wavs)
    order = np.argsort([w.size for w in wavs])
    out = np.zeros((len(wavs), model.cfg.embed_dim), dtype=np.float32)
    for s in range(0, len(order), batch):
        ids = order[s:s + batch]
        L = max(wavs[i].size for i in ids)
        x = torch.zeros(len(ids), L)
        for j, i in enumerate(ids):
            x[j, : wavs[i].size] = torch.from_numpy(wavs[i])
        vec = backbone(x.to(device))
        n = torch.tensor([num_vectors(wavs[i].size) for i in ids], device=device)
        out[ids] = model.audio(vec.float(), n).float().cpu().numpy()
    return out


@torch.no_grad()
def validate(model: JointModel, backbone: TorchBackbone, corpus: Corpus, real, device) -> Dict[str, float]:
    model.eval()
    bench = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False       # clips of every length: no per-shape tuning
    res = validation_metrics(model, lambda wavs: embed_waveforms(model, backbone, wavs, device), corpus, real,
                             device)
    torch.backends.cudnn.benchmark = bench
    model.train()
    return res


def _score(v: Dict[str, float]) -> float:
    keys = [k for k in ("ap_oov", "xap_oov", "real_ap_wakewords", "real_text_acc_fsdd") if k in v]
    s = [v[k] for k in keys]
    if "real_text_eer_wakewords" in v:
        s.append(1.0 - v["real_text_eer_wakewords"])
    return float(np.mean(s)) if s else 0.0


# ---------------------------------------------------------------------- training
def train(cfg: BackboneTrainConfig, resume: bool = False) -> Dict[str, float]:
    if torch.cuda.is_available():
        device = torch.device("cuda")
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cuda.cufft_plan_cache.max_size = 64
    else:
        device = torch.device("cpu")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    g = torch.Generator(device=device)
    g.manual_seed(cfg.seed)
    t_load = time.time()
    corpus = Corpus(cfg.corpus, torch.device("cpu"))
    corpus.audio_np = corpus.audio.numpy()
    src, phone_ids, texts, data_stats = load_sources(cfg, corpus, device)
    print(json.dumps({"data": data_stats, "corpus": corpus.stats.get("clips"),
                      "load_s": round(time.time() - t_load, 1)}), flush=True)
    real = load_real(cfg.real) if cfg.real else None
    backbone = TorchBackbone(as_files(cfg.backbone)).to(device)
    if device.type == "cuda":
        backbone = backbone.to(memory_format=torch.channels_last)
    model = JointModel(cfg.encoder)
    if cfg.init:
        init = torch.load(cfg.init, map_location="cpu", weights_only=False)
        missing, unexpected = model.load_state_dict(init["model"], strict=False)
        print(json.dumps({"init": cfg.init, "missing": missing, "unexpected": unexpected}), flush=True)
    if cfg.init_text:
        from kws.train.encoders import text_encoder_from_onnx

        text_encoder_from_onnx(model.text, cfg.init_text)
    model = model.to(device)
    if cfg.text_lr_scale == 0:
        for p in model.text.parameters():
            p.requires_grad_(False)
    batcher = Batcher(src, len(texts), cfg.context, cfg.words_per_batch, cfg.clips_per_word,
                      cfg.real_words_per_batch, rng, g)
    augment = Augmenter(src, cfg.context, g, rng)
    use_amp = cfg.amp and device.type == "cuda"

    fixed_len = VEC_SPAN + (MAX_VECTORS - 1) * VEC_HOP

    def features(x: torch.Tensor) -> torch.Tensor:
        """Backbone vectors of window audio. Batches are padded to one fixed shape (rows to a
        multiple of 256, samples to the longest window): cuDNN then picks its convolution
        algorithms once, instead of for every new shape (measured: 1.2 s a batch otherwise)."""
        W = x.shape[0]
        if device.type != "cuda":           # the padding only pays where cuDNN tunes per shape
            xp = x
        else:
            xp = x.new_zeros(-(-W // 256) * 256, fixed_len)
            xp[:W, : x.shape[1]] = x
        with torch.no_grad():
            mel = backbone.mel(xp)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                return backbone.vectors_from_mel(mel).float()[:W]

    # input normalisation of the head from a few batches of real windows (kept when continuing)
    with torch.no_grad():
        vs = []
        for _ in range(3):
            x, cnt, _, _ = batcher.batch(augment)
            v = features(x)
            m = torch.arange(v.shape[1], device=device)[None, :] < cnt[:, None]
            vs.append(v[m])
        v = torch.cat(vs)
        if not cfg.init:
            model.audio.feat_mean.copy_(v.mean(0))
            model.audio.feat_std.copy_(v.std(0).clamp(min=1e-3))
    text_params = [p for p in model.text.parameters() if p.requires_grad]
    other = [p for n, p in model.named_parameters() if not n.startswith("text.")]
    groups = [{"params": other, "lr": cfg.lr}]
    if text_params:
        groups.append({"params": text_params, "lr": cfg.lr * cfg.text_lr_scale})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    max_lrs = [g["lr"] for g in groups]
    from kws.train.context import Prefetcher

    prefetch = Prefetcher(batcher, cfg.seed + 7919)
    step, best = 0, -1.0
    ck = None
    if resume and (out / "last.pt").exists():
        ck = torch.load(out / "last.pt", map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])

    def train_step():
        x, cnt, labels, words = batcher.realise(prefetch.next(), augment)
        vec = features(x)
        ids, id_lens = pad_ids([phone_ids[int(w)] for w in words], device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            a = model.audio(vec, cnt)
            t = model.text(ids, id_lens)
        a, t = a.float(), t.float()
        pos = labels >= 0
        loss, parts = joint_loss(a[pos], t, labels[pos], model, cfg.alpha_clap, cfg.alpha_dwd,
                                 neg=a[~pos])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        parts["windows"] = int(x.shape[0])
        parts["negatives"] = int((~pos).sum())
        return loss, parts

    total_steps = cfg.steps
    if ck is not None:
        total_steps = ck["scheduler"]["total_steps"]
    elif total_steps <= 0:
        for grp in opt.param_groups:
            grp["lr"] = grp["lr"] / 25
        per_step = seconds_per_step(train_step, 3, 10, device)
        minutes = cfg.schedule_minutes or cfg.max_minutes
        total_steps = max(50, int(minutes * 60 * 0.9 / per_step))
        print(json.dumps({"calibration_s_per_step": per_step, "total_steps": total_steps}), flush=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lrs, total_steps=total_steps,
                                                pct_start=cfg.pct_start)
    if ck is not None:
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        step, best = ck["step"], ck.get("best", -1.0)
        rng.bit_generator.advance(step)
        g.manual_seed(cfg.seed + step)
        print(f"resumed at step {step}", flush=True)
    t0 = time.time()
    log = open(out / "log.jsonl", "a")

    def save(name: str, metrics: Optional[dict] = None):
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), "step": step, "best": best,
                 "config": cfg.to_dict(), "recipe": RECIPE_VERSION, "metrics": metrics or {},
                 "corpus_stats": {**corpus.stats, "real": data_stats}}
        tmp = out / (name + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, out / name)

    model.train()
    last: Dict[str, float] = {}
    while step < total_steps:
        loss, parts = train_step()
        sched.step()
        step += 1
        if step % 50 == 0 or step == 1:
            rec = {"step": step, "loss": float(loss.detach()), **parts, "lr": sched.get_last_lr()[0],
                   "min": round((time.time() - t0) / 60, 2)}
            print(json.dumps(rec), flush=True)
            log.write(json.dumps(rec) + "\n")
        out_of_time = (time.time() - t0) / 60 > cfg.max_minutes
        if step % cfg.eval_every == 0 or step == total_steps or out_of_time:
            last = validate(model, backbone, corpus, real, device)
            score = _score(last)
            rec = {"step": step, "eval": last, "score": score, "min": round((time.time() - t0) / 60, 2)}
            print(json.dumps(rec), flush=True)
            log.write(json.dumps(rec) + "\n")
            log.flush()
            if score > best:
                best = score
                save("best.pt", last)
            save("last.pt", last)
            if out_of_time:
                print(f"stopping at step {step}: max_minutes reached; continue with --resume", flush=True)
                break
    prefetch.close()
    return last


def make_init(checkpoint: str, text_onnx: str, out: str) -> dict:
    """A starting point for a continued training: the checkpoint's weights with the text encoder
    replaced by a shipped bundle's (text.onnx), in float16 so that it travels light."""
    from kws.train.encoders import text_encoder_from_onnx

    ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    model = JointModel(EncoderConfig(**ck["config"]["encoder"]))
    model.load_state_dict(ck["model"])
    text_encoder_from_onnx(model.text, text_onnx)
    sd = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    torch.save({"model": sd, "config": ck["config"], "init_from": [checkpoint, text_onnx]}, out)
    return {"out": out, "bytes": Path(out).stat().st_size}


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m kws.train.backbone_trainer",
                                 description="init-pt: checkpoint + a bundle's text encoder -> init.pt")
    ap.add_argument("command", choices=("init-pt",))
    ap.add_argument("checkpoint")
    ap.add_argument("--text", required=True, help="text.onnx of a bundle (e.g. v1.1's)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    print(json.dumps(make_init(args.checkpoint, args.text, args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
