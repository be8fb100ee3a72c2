"""Where one training step of kws.train.backbone_trainer spends its time (run on the GPU machine).

    python3 scripts/profile_backbone_step.py configs/backbone.json
"""
import json
import sys
import time

import numpy as np
import torch

from kws.backbone import as_files
from kws.train.backbone import TorchBackbone
from kws.train.backbone_trainer import BackboneTrainConfig, Corpus, load_sources
from kws.train.context import Augmenter, Batcher

cfg = BackboneTrainConfig.from_dict(json.load(open(sys.argv[1])))
dev = torch.device("cuda")
torch.backends.cudnn.benchmark = True
corpus = Corpus(cfg.corpus, torch.device("cpu"))
corpus.audio_np = corpus.audio.numpy()
src, phone_ids, texts, _ = load_sources(cfg, corpus, dev)
rng = np.random.default_rng(0)
g = torch.Generator(device=dev)
g.manual_seed(0)
b = Batcher(src, len(texts), cfg.context, cfg.words_per_batch, cfg.clips_per_word, cfg.real_words_per_batch, rng, g)
aug = Augmenter(src, cfg.context, g, rng)
bb = TorchBackbone(as_files(cfg.backbone)).to(dev)
variants = {"fp32": (bb, False), "bf16": (bb, True)}
bb_cl = TorchBackbone(as_files(cfg.backbone)).to(dev).to(memory_format=torch.channels_last)
variants["bf16-cl"] = (bb_cl, True)
T = {}


def tick(name, t0):
    torch.cuda.synchronize()
    T.setdefault(name, []).append(time.time() - t0)
    return time.time()


for it in range(6):
    t = time.time()
    d = b.draw()
    n_pos = len(d["rows"])
    n_bg = int(round(cfg.context.background_items * n_pos))
    lay = b._layout(d["rows"], n_bg)
    t = tick("host draw+layout", t)
    wav, target = b.assemble(*lay)
    t = tick("assemble", t)
    wav2 = aug(wav, target)
    t = tick("augment", t)
    items, starts, counts, kinds = b.windows(target.cpu().numpy(), n_pos + n_bg, n_pos)
    t = tick("host windows", t)
    x, cnt = b.crop(wav2, items, starts, counts)
    t = tick("crop", t)
    with torch.no_grad():
        mel = bb.mel(x)
        t = tick("mel", t)
        for name, (m, amp) in variants.items():
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                v = m.vectors_from_mel(mel)
            t = tick(f"net {name}", t)
    print(it, x.shape, {k: round(v[-1], 4) for k, v in T.items()}, flush=True)
print({k: round(float(np.median(v[2:])), 4) for k, v in T.items()})
