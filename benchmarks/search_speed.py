"""Spoken-term search: index build speed, index size, query latency at 1 h and more.

    python benchmarks/search_speed.py --data ../shared/data [--minutes 20] [--scale-hours 1,5]
    python benchmarks/search_speed.py --data ../shared/data --minutes 60 --workers 1,2 --scale-hours ""

1. Indexes ``--minutes`` of real read speech (speechocean762 files) with one onnxruntime thread:
   audio hours per CPU minute, windows and MB per audio hour.
2. Query latency: the index is grown to each of ``--scale-hours`` by replicating its shards
   (same rows, new file names; disk reads and the scan are what a query costs) and packed, then
   20 text queries are timed (embedding + scan + merge, warm page cache). 1,000 h is projected
   linearly from the largest measured size, since the scan is linear in the number of rows.
3. ``--workers 1,2``: the same files indexed again into a fresh folder with each number of
   embedding processes (1: in this process; more: a local Dask cluster, its start included),
   wall time and speed-up over one. Approximate-index numbers: benchmarks/search_scale.py.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KWS_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kws.bundle import Bundle  # noqa: E402
from kws.corpus.real import DEFAULT_DATA, speech_files  # noqa: E402
from kws.search import SearchIndex  # noqa: E402

QUERIES = ["elephant", "computer", "beautiful", "yesterday", "chocolate", "restaurant", "basketball",
           "sister", "museum", "morning", "window", "teacher", "airport", "birthday", "hospital",
           "jarvis", "alexa", "kitchen", "umbrella", "library"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--scale-hours", default="1,5")
    ap.add_argument("--workers", default="", help="e.g. 1,2: index build wall time per worker count")
    args = ap.parse_args()
    files = speech_files(args.data)
    random.Random(5).shuffle(files)
    import soundfile as sf

    chosen, total = [], 0.0
    for f in files:
        chosen.append(f)
        total += sf.info(str(f)).duration
        if total >= args.minutes * 60:
            break
    bundle = Bundle.load(variant="int8")
    with tempfile.TemporaryDirectory(prefix="kws-search-bench-") as tmp:
        idx = SearchIndex(Path(tmp) / "ix", bundle)
        c0, w0 = time.process_time(), time.perf_counter()
        st = idx.add(chosen, quiet=True)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        hours = idx.seconds / 3600
        size = idx.size_bytes()
        print(f"indexed {len(idx)} files, {hours * 60:.1f} min of speech, {st['windows']} windows "
              f"(windows {idx.config.window_s} s, hop {idx.config.hop_s} s, VAD min speech {idx.config.min_speech})")
        print(f"build: {cpu:.1f} CPU s ({wall:.1f} s wall) -> {hours / (cpu / 60):.3f} audio hours per CPU minute "
              f"(real-time factor {cpu / (hours * 3600):.3f})")
        print(f"index size: {size / hours / 1e6:.1f} MB per audio hour, {st['windows'] / hours:.0f} windows per hour\n")
        shards = idx.root / "shards"
        base = dict(idx.files)
        walls = {}
        for w in [int(x) for x in args.workers.split(",") if x.strip()]:
            fresh = SearchIndex(Path(tmp) / f"ix-w{w}", bundle)
            t0 = time.perf_counter()
            fresh.add(chosen, quiet=True, workers=w)
            walls[w] = time.perf_counter() - t0
            print(f"build with {w} worker(s): {walls[w]:.1f} s wall, {hours / (walls[w] / 60):.2f} audio hours "
                  f"per wall minute, speed-up {walls[min(walls)] / walls[w]:.2f}x over {min(walls)}", flush=True)
        rows = []
        for target in [float(h) for h in args.scale_hours.split(",") if h.strip()]:
            copies = int(np.ceil(target / hours))
            files_meta = {}
            for c in range(copies):
                for key, info in base.items():
                    name = f"{info['shard']}c{c}"
                    for suffix in (".emb.npy", ".times.npy"):
                        dst = shards / (name + suffix)
                        if not dst.exists():
                            shutil.copyfile(shards / (info["shard"] + suffix), dst)
                    files_meta[f"{key}#copy{c}"] = {**info, "shard": name}
            idx.files = files_meta
            idx.pack()
            for q in QUERIES[:3]:          # warm the page cache and the sessions
                idx.query(idx.embed_query(q), top=10)
            times = []
            for q in QUERIES:
                t0 = time.perf_counter()
                idx.query(idx.embed_query(q), top=10)
                times.append(time.perf_counter() - t0)
            h = idx.seconds / 3600
            rows.append((h, float(np.median(times)), idx.size_bytes() / 1e6))
            print(f"{h:.2f} h indexed ({rows[-1][2]:.0f} MB): median query {rows[-1][1] * 1000:.0f} ms "
                  f"over {len(QUERIES)} text queries", flush=True)
        out = {"audio_hours_per_cpu_minute": hours / (cpu / 60), "mb_per_hour": size / hours / 1e6,
               "build_wall_s_by_workers": walls}
        if rows:
            h, t, _ = rows[-1]
            print(f"\nprojected to 1,000 h (linear scan): {t / h * 1000:.0f} s per query, "
                  f"{size / hours * 1000 / 1e9:.0f} GB of index")
            out.update(query_s={f"{h:.2f}h": t for h, t, _ in rows}, projected_1000h_query_s=t / h * 1000)
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
