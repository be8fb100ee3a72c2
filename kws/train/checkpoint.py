"""Model checkpoints small enough to travel: weights only, split into parts of at most 15 MiB.

    python -m kws.train.checkpoint split RUN/best.pt DIR     # DIR/model.pt.part000, ...
    python -m kws.train.checkpoint join DIR model.pt
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

import torch

PART = 15 * 1024 * 1024


def weights_only(ckpt_path: str) -> bytes:
    ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    slim = {k: ck[k] for k in ("model", "config", "recipe", "metrics", "corpus_stats", "step") if k in ck}
    buf = io.BytesIO()
    torch.save(slim, buf)
    return buf.getvalue()


def split(ckpt_path: str, out_dir: str) -> list:
    data = weights_only(ckpt_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for i in range(0, len(data), PART):
        p = out / f"model.pt.part{i // PART:03d}"
        p.write_bytes(data[i:i + PART])
        parts.append(str(p))
    return parts


def join(in_dir: str, out_path: str) -> None:
    parts = sorted(Path(in_dir).glob("model.pt.part*"))
    if not parts:
        raise SystemExit(f"no model.pt.part* files in {in_dir}")
    Path(out_path).write_bytes(b"".join(p.read_bytes() for p in parts))


if __name__ == "__main__":
    cmd, a, b = sys.argv[1:4]
    print(split(a, b) if cmd == "split" else join(a, b))
