"""Approximate (FAISS IVF, HNSW) against exact search at 1, 10, 100 indexed hours: recall, latency, size.

    python benchmarks/search_scale.py --data ../shared/data --hours 1,10,100 --hnsw-hours 1,10 \\
        --cache /tmp/kws-scale-base.npz --out scale.json

How the large indexes are made (window vectors of real speech, never random vectors):
1. Base pool: every recording of librispeech-bits (65 min, 251+10 native speakers) and
   speechocean762 (2.9 h, 125 non-native speakers) is embedded three times, as the index does it
   (``window_embeddings``: the shipped bundle's windows, VAD gate, int8 rows): as recorded; shifted
   by 75 ms (half a hop, so every window lands elsewhere) with a random stretch of one of the five
   real noise recordings added at 20 dB SNR; and slowed to 0.9 speed (resampled) at -6 dB. About
   12 h of distinct real window vectors (``--cache`` keeps them for the next run).
2. Larger sizes replicate the pool: replica r > 0 of a file has each row moved by Gaussian noise
   with the pool's own (centred) covariance, scaled by ``--jitter`` (0.35), renormalised and
   quantised to int8. The mean cosine between a row and its replica is printed.
Queries: 40 text queries (the words below) and 10 example recordings (wake-word clips, embedded
with ``embed_audio``), one thread (FAISS and BLAS), warm memory.
Per size: the exact scan (the packed-copy code, ``scan_candidates`` + ``merge_candidates``) is
the reference. recall@10 (windows): share of the exact 10 best windows among the approximate 10
best. recall@10 (hits): share of the exact top-10 merged hits that an approximate top-10 hit of
the same file overlaps. Latency: search and merge, not the query embedding (about the same for
both). Bytes: the approximate structure on disk (FAISS file, projection, times, metadata); the
per-file int8 shards (kept in both kinds) are counted apart.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KWS_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kws.corpus.real import DEFAULT_DATA  # noqa: E402
from kws.search import (IndexConfig, merge_candidates, quantize, scan_candidates,  # noqa: E402
                        window_embeddings)
from kws.search_ann import AnnConfig, AnnIndex, import_faiss  # noqa: E402

WORDS = ["elephant", "computer", "beautiful", "yesterday", "chocolate", "restaurant", "basketball",
         "sister", "museum", "morning", "window", "teacher", "airport", "birthday", "hospital",
         "jarvis", "alexa", "kitchen", "umbrella", "library", "because", "people", "water", "family",
         "school", "friend", "english", "country", "mother", "question", "remember", "important",
         "different", "evening", "garden", "travel", "picture", "summer", "business", "money"]


# ---------------------------------------------------------------------------- the base pool
def _variant(audio, how, rng, noises):
    import soxr

    if how == "shift_noise":
        x = audio[1200:].copy()
        n = noises[rng.integers(len(noises))]
        s = rng.integers(0, max(1, n.size - x.size))
        seg = np.resize(n[s:s + x.size], x.size)
        gain = np.sqrt(np.mean(x ** 2) / max(np.mean(seg ** 2), 1e-12) / 10 ** (20 / 10))
        return x + gain * seg
    if how == "slow_quiet":
        return 0.5 * soxr.resample(audio, 16000, int(16000 / 0.9)).astype(np.float32)
    return audio


def _embed_job(args):
    path, how, seed, noise_paths = args
    from kws.audio import load_audio
    from kws.bundle import Bundle

    global _B, _N
    if "_B" not in globals():
        _B = Bundle.load(variant="int8")
        _N = [load_audio(p) for p in noise_paths]
    audio = _variant(load_audio(path), how, np.random.default_rng(seed), _N)
    emb, times = window_embeddings(_B, audio, IndexConfig())
    return quantize(emb), times.astype(np.float32), audio.size / 16000


def base_pool(data: Path, cache: Path, procs: int):
    if cache and cache.exists():
        z = np.load(cache)
        print(f"base pool from {cache}", flush=True)
        return z["rows"], z["times"], z["offsets"], z["seconds"]
    from multiprocessing import Pool

    from kws.progress import progress

    files = sorted((data / "librispeech-bits").rglob("*.opus")) + \
        sorted((data / "speechocean762-train" / "audio").rglob("*.ogg"))
    noises = sorted(str(p) for p in (data / "noise").glob("*.flac"))
    jobs = [(str(f), how, i, noises) for how in ("as_recorded", "shift_noise", "slow_quiet")
            for i, f in enumerate(files)]
    t0 = time.perf_counter()
    with Pool(procs) as pool:
        out = list(progress(pool.imap(_embed_job, jobs, chunksize=8), "embedding base pool", total=len(jobs)))
    rows = np.concatenate([o[0] for o in out])
    times = np.concatenate([o[1] for o in out])
    offsets = np.cumsum([0] + [o[0].shape[0] for o in out])
    seconds = np.array([o[2] for o in out])
    print(f"base pool: {len(out)} files, {seconds.sum() / 3600:.2f} h, {rows.shape[0]} windows "
          f"({time.perf_counter() - t0:.0f} s wall, {procs} processes)", flush=True)
    if cache:
        np.savez(cache, rows=rows, times=times, offsets=offsets, seconds=seconds)
    return rows, times, offsets, seconds


def grow(rows, times, offsets, seconds, hours: float, jitter: float, seed: int = 0):
    """Files (int8 rows, times, seconds, key) up to ``hours``: the pool, then perturbed replicas."""
    x = rows[::max(1, rows.shape[0] // 100_000)].astype(np.float32) / 127
    c = np.cov(x.T)
    w, v = np.linalg.eigh(c)
    basis = (np.sqrt(np.clip(w[::-1][:128], 0, None))[:, None] * v[:, ::-1][:, :128].T).astype(np.float32)
    rng = np.random.default_rng(seed)
    total, r, cos = 0.0, 0, []
    while True:
        for f in range(len(seconds)):
            a, b = offsets[f], offsets[f + 1]
            src = rows[a:b]
            if r == 0 or b == a:
                out = src
            else:
                y = src.astype(np.float32) / 127 + jitter * (rng.standard_normal((b - a, 128), np.float32) @ basis)
                y /= np.linalg.norm(y, axis=1, keepdims=True)
                out = quantize(y)
                if len(cos) < 2000:
                    cos.append(float(np.mean(np.sum(y * src.astype(np.float32) / 127, 1))))
            yield out, times[a:b], float(seconds[f]), f"r{r}/f{f}"
            total += seconds[f]
            if total >= hours * 3600:
                if cos:
                    print(f"  replica rows: mean cosine {np.mean(cos):.3f} to their source", flush=True)
                return
        r += 1


# ---------------------------------------------------------------------------- measures
def queries(data: Path):
    from kws.audio import load_audio
    from kws.bundle import Bundle
    from kws.audio import trim_silence

    b = Bundle.load(variant="int8")
    q = [b.embed_text(w) for w in WORDS]
    clips = sorted((data / "wakewords" / "computer").glob("*.wav"))[:5] + \
        sorted((data / "wakewords" / "jarvis").glob("*.wav"))[:5]
    q += [b.embed_audio(trim_silence(load_audio(c))) for c in clips]
    return np.stack(q).astype(np.float32)


def hit_recall(exact, approx) -> float:
    if not exact:
        return 1.0
    found = sum(any(a.file == e.file and a.start < e.end and a.end > e.start for a in approx) for e in exact)
    return found / len(exact)


def timed(fn, Q):
    out, ts = [], []
    for q in Q:
        t0 = time.perf_counter()
        out.append(fn(q))
        ts.append(time.perf_counter() - t0)
    return out, float(np.median(ts)), float(np.percentile(ts, 90))


def measure(size_h, files, Q, args, faiss, results):
    rows = np.concatenate([f[0] for f in files])
    times = np.concatenate([f[1] for f in files])
    keys = [f[3] for f in files]
    owner = np.repeat(np.arange(len(files)), [f[0].shape[0] for f in files])
    hours = sum(f[2] for f in files) / 3600
    N = rows.shape[0]
    top, keep = 10, 400
    print(f"\n== {hours:.1f} h indexed: {N} windows ({N / hours:.0f} per hour)", flush=True)

    def exact(q):
        idx, sc = scan_candidates(rows, q, keep)
        return idx, sc, merge_candidates(keys, owner[idx], sc, times[idx], top)

    ex, t50, t90 = timed(exact, Q)
    gt_win = [set(i[np.argsort(-s)[:top]].tolist()) for i, s, _ in ex]
    gt_hits = [h for _, _, h in ex]
    row = {"hours": hours, "windows": N, "method": "exact scan", "param": "-", "query_ms_median": t50 * 1e3,
           "query_ms_p90": t90 * 1e3, "recall10_windows": 1.0, "recall10_hits": 1.0,
           "mb_per_hour": N * rows.shape[1] / hours / 1e6, "build_s": 0.0}
    results.append(row)
    print(f"exact scan: median {t50 * 1e3:.1f} ms, p90 {t90 * 1e3:.1f} ms; packed rows "
          f"{row['mb_per_hour']:.1f} MB/h (+ shards as much)", flush=True)

    with tempfile.TemporaryDirectory(prefix="kws-scale-", dir=args.tmp) as tmp:
        meta = {k: {"size": 0, "mtime_ns": 0, "windows": int(f[0].shape[0])} for k, f in zip(keys, files)}
        by_key = {f[3]: f for f in files}
        ann = AnnIndex(Path(tmp), AnnConfig())
        faiss.omp_set_num_threads(args.build_threads)
        t0 = time.perf_counter()
        rep = ann.sync(meta, lambda k: (by_key[k][0], by_key[k][1]), "bench", quiet=True)
        build = time.perf_counter() - t0
        faiss.omp_set_num_threads(1)
        first = [ann.meta["files"][k]["first"] for k in keys]
        assert first == list(np.cumsum([0] + [f[0].shape[0] for f in files])[:-1]), "slots != rows"
        size = ann.size_bytes()
        print(f"IVF: {ann.meta['cells']} lists, projection {ann.meta['dim_in']} -> {ann.meta['dim']} dims, "
              f"built in {build:.0f} s ({args.build_threads} threads, retrained={rep['retrained']}), "
              f"{size / hours / 1e6:.2f} MB/h", flush=True)
        for nprobe in (16, 32, 64, 128):
            def approx(q):
                sc, slots = ann.search(q, keep, nprobe)
                k2, own, tt = ann.locate(slots)
                return slots, sc, merge_candidates(k2, own, sc, tt, top)
            ap, a50, a90 = timed(approx, Q)
            rw = np.mean([len(set(s[np.argsort(-c)[:top]].tolist()) & g) / top for (s, c, _), g in zip(ap, gt_win)])
            rh = np.mean([hit_recall(e, a) for e, (_, _, a) in zip(gt_hits, ap)])
            results.append({"hours": hours, "windows": N, "method": "IVF-SQ8 (FAISS)", "param": f"nprobe {nprobe}",
                            "query_ms_median": a50 * 1e3, "query_ms_p90": a90 * 1e3, "recall10_windows": rw,
                            "recall10_hits": rh, "mb_per_hour": size / hours / 1e6, "build_s": build,
                            "cells": ann.meta["cells"], "dim": ann.meta["dim"]})
            print(f"  nprobe {nprobe:4d}: median {a50 * 1e3:.2f} ms, p90 {a90 * 1e3:.2f} ms, recall@10 windows "
                  f"{rw:.3f}, hits {rh:.3f}", flush=True)

        if size_h in args.hnsw:
            P = np.load(Path(tmp) / "ann" / "projection.npy")
            d = P.shape[1]
            h = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, 32, faiss.METRIC_INNER_PRODUCT)
            faiss.omp_set_num_threads(args.build_threads)
            t0 = time.perf_counter()
            h.train(np.ascontiguousarray((rows[::max(1, N // 100_000)].astype(np.float32) / 127) @ P))
            for s in range(0, N, 200_000):
                h.add(np.ascontiguousarray((rows[s:s + 200_000].astype(np.float32) / 127) @ P))
            hb = time.perf_counter() - t0
            faiss.omp_set_num_threads(1)
            hp = Path(tmp) / "hnsw.faiss"
            faiss.write_index(h, str(hp))
            hsize = hp.stat().st_size + P.nbytes + N * 8        # + projection and times, as IVF
            print(f"HNSW32,SQ8: built in {hb:.0f} s ({args.build_threads} threads), {hsize / hours / 1e6:.2f} MB/h",
                  flush=True)
            for ef in (64, 128, 256):
                h.hnsw.efSearch = ef

                def approx_h(q):
                    sc, ids = h.search(np.ascontiguousarray((q @ P)[None]), keep)
                    ok = ids[0] >= 0
                    sc, ids = sc[0][ok], ids[0][ok]
                    return ids, sc, merge_candidates(keys, owner[ids], sc, times[ids], top)
                ap, a50, a90 = timed(approx_h, Q)
                rw = np.mean([len(set(s[np.argsort(-c)[:top]].tolist()) & g) / top for (s, c, _), g in zip(ap, gt_win)])
                rh = np.mean([hit_recall(e, a) for e, (_, _, a) in zip(gt_hits, ap)])
                results.append({"hours": hours, "windows": N, "method": "HNSW32-SQ8 (FAISS)", "param": f"efSearch {ef}",
                                "query_ms_median": a50 * 1e3, "query_ms_p90": a90 * 1e3, "recall10_windows": rw,
                                "recall10_hits": rh, "mb_per_hour": hsize / hours / 1e6, "build_s": hb})
                print(f"  efSearch {ef:4d}: median {a50 * 1e3:.2f} ms, p90 {a90 * 1e3:.2f} ms, recall@10 windows "
                      f"{rw:.3f}, hits {rh:.3f}", flush=True)
            del h


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--hours", default="1,10,100")
    ap.add_argument("--hnsw-hours", default="1,10", help="sizes at which HNSW is also built")
    ap.add_argument("--cache", type=Path, default=None, help="npz of the base pool (made if missing)")
    ap.add_argument("--jitter", type=float, default=0.35)
    ap.add_argument("--procs", type=int, default=os.cpu_count() or 1, help="processes embedding the pool")
    ap.add_argument("--build-threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--tmp", default=None, help="folder for the temporary indexes")
    ap.add_argument("--out", type=Path, default=None, help="JSON of every row")
    args = ap.parse_args()
    args.hnsw = {float(h) for h in args.hnsw_hours.split(",") if h.strip()}
    if args.tmp:
        Path(args.tmp).mkdir(parents=True, exist_ok=True)
    faiss = import_faiss()
    rows, times, offsets, seconds = base_pool(args.data, args.cache, args.procs)
    Q = queries(args.data)
    results = []
    for h in [float(x) for x in args.hours.split(",")]:
        files = list(grow(rows, times, offsets, seconds, h, args.jitter))
        measure(h, files, Q, args, faiss, results)
        del files
    big = max(r["hours"] for r in results)
    print(f"\n{'hours':>7} {'method':>20} {'param':>12} {'median ms':>10} {'p90 ms':>8} {'rec@10 win':>10} "
          f"{'rec@10 hits':>11} {'MB/h':>7} {'build s':>8}")
    for r in results:
        print(f"{r['hours']:7.1f} {r['method']:>20} {r['param']:>12} {r['query_ms_median']:10.2f} "
              f"{r['query_ms_p90']:8.2f} {r['recall10_windows']:10.3f} {r['recall10_hits']:11.3f} "
              f"{r['mb_per_hour']:7.2f} {r['build_s']:8.0f}")
    for m in ("exact scan", "IVF-SQ8 (FAISS)"):
        rr = [r for r in results if r["method"] == m and r["hours"] == big and r["param"] in ("-", "nprobe 64")]
        if rr:
            r = rr[0]
            f = (1000 / big) if m == "exact scan" else np.sqrt(1000 / big)
            print(f"projected to 1,000 h ({m}, {'linear' if m == 'exact scan' else 'sqrt(N): lists and list length both grow as sqrt(N)'} "
                  f"from {big:.0f} h): median {r['query_ms_median'] * f:.0f} ms, {r['mb_per_hour'] * 1000 / 1e3:.1f} GB")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
