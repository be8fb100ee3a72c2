"""Room impulse responses simulated with pyroomacoustics, for reverberation in training.

    python -m kws.corpus.rooms --out .carry/rooms.npz [--n 300] [--seed 0]

Each response comes from a random shoebox room (3-10 m x 3-8 m x 2.4-3.5 m), absorption set by
Sabine's formula for a target RT60 of 0.2-1.5 s; pyroomacoustics' hybrid simulator (image sources
to order 3, ray tracing for the late tail: the image method alone, cut at order 12, decays several
times too fast in the larger, livelier rooms). The
microphone stands where devices stand: a third of the rooms anywhere at least 0.5 m from the walls,
a third 0.05-0.5 m from one wall, a third 0.05-0.5 m from two walls (a corner), at 0.3-2 m height;
the talker's mouth is 0.5-5 m from it, 1.0-1.9 m high, at least 0.3 m from the walls. Responses are
cut at 1 s, start at the direct path, and are normalised to unit energy. The file is small (float16) so it can travel to the GPU machine, where training reads it
(``rooms`` in the training config) instead of synthesising exponential-decay responses.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SR = 16000
MAX_S = 1.0


def place_microphone(dims: np.ndarray, walls: int, rng: np.random.Generator) -> np.ndarray:
    """A device's place: ``walls`` = 0 free-standing, 1 near one wall, 2 in a corner."""
    mic = rng.uniform(0.5, dims - 0.5)
    mic[2] = rng.uniform(0.3, min(2.0, dims[2] - 0.3))
    for axis in rng.permutation(2)[:walls]:
        near = rng.uniform(0.05, 0.5)
        mic[axis] = near if rng.random() < 0.5 else dims[axis] - near
    return mic


def place_talker(dims: np.ndarray, mic: np.ndarray, rng: np.random.Generator, tries: int = 50):
    """A mouth 0.5-5 m from the microphone (None if the room has no such place)."""
    for _ in range(tries):
        d = rng.uniform(0.5, 5.0)
        az = rng.uniform(0, 2 * np.pi)
        src = mic + np.array([d * np.cos(az), d * np.sin(az), 0.0])
        src[2] = rng.uniform(1.0, min(1.9, dims[2] - 0.3))
        if np.all(src[:2] >= 0.3) and np.all(src[:2] <= dims[:2] - 0.3):
            return src
    return None


def simulate(n: int = 300, seed: int = 0, quiet: bool = False):
    import pyroomacoustics as pra

    from kws.progress import progress

    rng = np.random.default_rng(seed)
    out = np.zeros((n, int(MAX_S * SR)), np.float32)
    rt60s = np.zeros(n, np.float32)
    for i in progress(range(n), "rooms", quiet=quiet):
        while True:
            dims = np.array([rng.uniform(3, 10), rng.uniform(3, 8), rng.uniform(2.4, 3.5)])
            rt60 = rng.uniform(0.2, 1.5)
            try:
                absorption, _ = pra.inverse_sabine(rt60, dims)
            except ValueError:        # this room cannot reach that RT60
                continue
            room = pra.ShoeBox(dims, fs=SR, materials=pra.Material(absorption), max_order=3,
                               ray_tracing=True, air_absorption=True)
            room.set_ray_tracing(receiver_radius=0.5, n_rays=3000, energy_thres=1e-5)
            mic = place_microphone(dims, i % 3, rng)
            src = place_talker(dims, mic, rng)
            if src is None:
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
