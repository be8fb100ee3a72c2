"""Room impulse responses simulated with pyroomacoustics, for reverberation in training.

    python -m kws.corpus.rooms --out .carry/rooms.npz [--n 300] [--seed 0]

Each response comes from a random shoebox room (3-10 m x 3-8 m x 2.4-3.5 m), absorption set by
Sabine's formula for a target RT60 of 0.15-0.9 s, one source and one microphone at random places
at least 0.5 m from the walls (image method, reflection order up to 12). Responses are cut at 0.8 s, start at the direct path, and are normalised to unit
energy. The file is small (float16) so it can travel to the GPU machine, where training reads it
(``rooms`` in the training config) instead of synthesising exponential-decay responses.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SR = 16000
MAX_S = 0.8


def simulate(n: int = 300, seed: int = 0, quiet: bool = False):
    import pyroomacoustics as pra

    from kws.progress import progress

    rng = np.random.default_rng(seed)
    out = np.zeros((n, int(MAX_S * SR)), np.float32)
    rt60s = np.zeros(n, np.float32)
    for i in progress(range(n), "rooms", quiet=quiet):
        while True:
            dims = np.array([rng.uniform(3, 10), rng.uniform(3, 8), rng.uniform(2.4, 3.5)])
            rt60 = rng.uniform(0.15, 0.9)
            try:
                absorption, max_order = pra.inverse_sabine(rt60, dims)
            except ValueError:        # this room cannot reach that RT60
                continue
            room = pra.ShoeBox(dims, fs=SR, materials=pra.Material(absorption),
                               max_order=min(max_order, 12))
            src = rng.uniform(0.5, dims - 0.5)
            mic = rng.uniform(0.5, dims - 0.5)
            if np.linalg.norm(src - mic) < 0.3:
                continue
            room.add_source(src)
            room.add_microphone(mic)
            room.compute_rir()
            h = np.asarray(room.rir[0][0], np.float32)
            h = h[int(np.argmax(np.abs(h))):][: out.shape[1]]
            out[i, : h.size] = h / (np.linalg.norm(h) + 1e-9)
            rt60s[i] = rt60
            break
    return out, rt60s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kws.corpus.rooms", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=".carry/rooms.npz")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        import pyroomacoustics  # noqa: F401
    except ImportError:
        print("pyroomacoustics is not installed: pip install -e '.[train]'", file=sys.stderr)
        return 2
    rirs, rt60 = simulate(args.n, args.seed)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, rir=rirs.astype(np.float16), rt60=rt60)
    print(json.dumps({"rooms": len(rirs), "rt60_s": [float(rt60.min()), float(rt60.max())],
                      "mb": round(Path(args.out).stat().st_size / 1e6, 2), "out": args.out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
