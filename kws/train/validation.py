"""A head measured during training on the validation file (kws.train.head_eval val-file): wake
words clean, in babble and reverberant, digits, against the validation speakers' background."""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from kws.model.backbone import DIM
from kws.spot.templates import TRIM
from kws.train.net import HeadNet, apply_head, right_aligned, score_series


@torch.no_grad()
def _pad_batch(seqs: List[np.ndarray], device) -> Tuple[torch.Tensor, torch.Tensor]:
    n = max(s.shape[0] for s in seqs)
    x = torch.zeros(len(seqs), n, DIM, device=device)
    for i, s in enumerate(seqs):
        x[i, : s.shape[0]] = torch.from_numpy(np.asarray(s, np.float32))
    return x, torch.tensor([s.shape[0] for s in seqs], device=device)


@torch.no_grad()
def keyword_scores(S: torch.Tensor, own: torch.Tensor, K: int, soft_max: float = 0.0) -> torch.Tensor:
    """[..., nt] template scores -> [..., K] each keyword's (kws.spot.templates.combine): the best of
    its templates' (``soft_max`` 0) or their soft maximum."""
    if not soft_max:
        W = torch.full(S.shape[:-1] + (K,), -2.0, device=S.device, dtype=S.dtype)
        return W.scatter_reduce(-1, own.expand(S.shape[:-1] + own.shape), S, "amax")
    out = []
    for k in range(K):
        s = S[..., own == k]
        m = s.amax(-1, keepdim=True)
        out.append(m[..., 0] + torch.log(torch.exp(soft_max * (s - m)).mean(-1)) / soft_max)
    return torch.stack(out, -1)


@torch.no_grad()
def validate(head: Optional[HeadNet], val: dict, device, lmax: int = 40, trim_end: int = TRIM,
             soft_max: float = 0.0) -> dict:
    """kws.train.head_eval's measures computed on the device (``head`` None: raw templates), a
    keyword's templates combined with ``soft_max`` (kws.spot.templates.combine)."""
    from kws.metrics import eer, miss_at_false_alarm_rate
    from kws.spot.events import peaks
    from kws.train.head_eval import DIGIT_WORDS, WAKE

    def run(x):
        return apply_head(head, x) if head is not None else F.normalize(x, dim=-1)

    def bank(words):
        seqs = [t for w in words for t in val["templates"][w]]
        own = np.repeat(np.arange(len(words)), [len(val["templates"][w]) for w in words])
        x, n = _pad_batch(seqs, device)
        T, L = right_aligned(run(x), n, lmax, trim_end)
        return T, L, torch.from_numpy(own).to(device)

    def clip_scores(T, L, own, seqs, K):
        out = []
        for s in range(0, len(seqs), 256):
            x, n = _pad_batch(seqs[s:s + 256], device)
            S = score_series(T, L, run(x), n)                  # [b, N, nt]
            out.append(keyword_scores(S, own, K, soft_max).amax(1).cpu().numpy())
        return np.concatenate(out)

    res = {}
    T, L, own = bank(WAKE)
    hours = sum(v.shape[0] for v in val["background"]) * 0.08 / 3600
    pk = {w: [] for w in WAKE}
    for v in val["background"]:
        x, n = _pad_batch([v], device)
        G = score_series(T, L, run(x), n)[0]                  # [N, nt]
        Wk = keyword_scores(G, own, len(WAKE), soft_max).cpu().numpy()
        for k, w in enumerate(WAKE):
            pk[w] += peaks(Wk[:, k]).tolist()
    lab = np.array(val["wake_label"])
    for cond, seqs in val["wake"].items():
        sc = clip_scores(T, L, own, seqs, len(WAKE))
        e = [eer(sc[:, k], lab == w)[0] for k, w in enumerate(WAKE)]
        m = [miss_at_false_alarm_rate(sc[lab == w, k], pk[w], hours, 1.0)[0] for k, w in enumerate(WAKE)]
        res[f"wake_{cond}"] = {"eer": float(np.mean(e)), "miss_1fah": float(np.mean(m))}
    T, L, own = bank(DIGIT_WORDS)
    dl = np.array(val["fsdd_label"])
    for cond, seqs in val["fsdd"].items():
        sc = clip_scores(T, L, own, seqs, len(DIGIT_WORDS))
        acc = float(np.mean(np.array(DIGIT_WORDS)[sc.argmax(1)] == dl))
        e = [eer(sc[:, k], dl == w)[0] for k, w in enumerate(DIGIT_WORDS)]
        res[f"digits_{cond}"] = {"accuracy": acc, "eer": float(np.mean(e))}
    wk = [v for k, v in res.items() if k.startswith("wake_")]
    # the checkpoint's score: the wake words' EER + missed at 1 FA/h (mean over conditions), plus
    # the clean digits' 10-way error and mean EER (a head that trades digits for rooms scores worse)
    dg = res.get("digits_clean", {"accuracy": 1.0, "eer": 0.0})
    res["score"] = float(np.mean([v["eer"] + v["miss_1fah"] for v in wk]) + (1 - dg["accuracy"]) + dg["eer"])
    return res


def load_val(path: str) -> dict:
    v = np.load(path, allow_pickle=True).item()
    return v


def compact_val(sets: dict, wake_conditions=("clean", "babble10", "reverb"), fsdd_conditions=("clean",),
                max_wake: int = 330, max_fsdd: int = 600, seed: int = 0) -> dict:
    """A small validation file from kws.train.head_eval's half 'a' (validation speakers' background)."""
    from kws.train.head_eval import validation_subset

    s = validation_subset(sets)
    rng = np.random.default_rng(seed)
    wi = np.sort(rng.permutation(len(s["wake_label"]))[:max_wake])
    fi = np.sort(rng.permutation(len(s["fsdd_label"]))[:max_fsdd])
    return {"templates": s["templates"], "background": s["background"],
            "wake_label": [s["wake_label"][i] for i in wi],
            "wake": {c: [s["wake"][c][i] for i in wi] for c in wake_conditions},
            "fsdd_label": [s["fsdd_label"][i] for i in fi],
            "fsdd": {c: [s["fsdd"][c][i] for i in fi] for c in fsdd_conditions}}
