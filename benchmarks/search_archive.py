"""Archive index (kws.search.archive) at 1, 10, 100 and 1,000 indexed hours, and its quality on
held-out read speech.

    python benchmarks/search_archive.py pool  --data ../shared/data --cache /tmp/kws-pool.npz
    python benchmarks/search_archive.py std   --data ../shared/data --out std.json
    python benchmarks/search_archive.py scale --data ../shared/data --cache /tmp/kws-pool.npz \\
        --hours 1,10,100,1000 --tmp /tmp/kws-scale --out scale.json
    python benchmarks/search_archive.py real  --data ../shared/data --vectors raw,both --tmp /tmp/kws-real

**real**: the real recordings of ../shared/data (librispeech-bits and speechocean762, about 4 h)
indexed by ``kws search index`` in each space asked (``both``: kws.search.fusion), then 10 typed
terms each searched once to warm up and once timed (top 10, the lists): median and 90th
percentile wall time, the process's CPU time, the index's size and build time (one worker).

**pool**: every recording of librispeech-bits (65 min, 261 native speakers) and speechocean762
(2.9 h, 125 non-native speakers) through the speech-embedding front end (``audio_rows``, as
indexing does), three times: as recorded; 40 ms later (half a vector hop) with a random stretch of
one of the five real noise recordings at 20 dB SNR; slowed to 0.9 speed at -6 dB. About 12 h of
distinct real vectors.

**scale**: the index at each size, in the space of ``--vectors`` (raw by default, as a new index
is; head for the model's head; both for an index of both spaces, kws.search.fusion, whose head
rows are the pool's head vectors of the same recordings, the synthetic ones drawn in the same
order and moved by draws of their own; ``--raw-index`` links in the raw space's index of that
size that ``--vectors raw --keep`` left), built on one core (``--workers 1``), in ``--shards`` shards:
1 h is a random hour of the recordings as recorded; 10 h the recordings as recorded and then their
variants; larger sizes add *synthetic* recordings of 10 minutes made from the pool: utterances in
random order (time-shuffled), every vector turned by a random rotation close to the identity (one
per replica), moved by Gaussian noise with the pool's own covariance (``--jitter``), renormalised
and quantised. The mean cosine of a synthetic vector to its source is printed. Queries (real
speech only): text queries (templates: TTS renderings in ``--voices`` voices) and recorded
examples (word clips cut from speechocean762 speakers of half 'a' with the committed alignment,
and wake-word recordings). Latency, recall and memory are measured in a separate process that
opens the index from disk (``_query``), after the index's files were read once (page cache) and,
with ``--warm``, every query run once untimed: median and p90 query ms after the first query (search,
exact re-scoring and merging; making the templates is timed apart), recall@10 = share of the
exact scan's 10 best hits that a hit of the approximate 10 best overlaps in the same file,
resident memory (VmRSS, its file-backed part, and the peak VmHWM) after the queries. Build time is
wall time of ``add_rows``/``add`` (shards, training, lists, checksums).

**std**: the spoken-term protocol (300 utterances of the held-out speaker half 'b' with the
committed word alignment, kws.corpus.align; queries: words of at least 4 phonemes spoken in at
least 2 of them, IV (in kws/corpus/vocab/iv.txt) and OOV, up to ``--max-queries`` of each): every
utterance scores its best position (EER per query, averaged over the group), and precision at 10
counts the 10 best hits that overlap a spoken occurrence by at least half of the shorter of the
two. By text (Kokoro renderings) and by example (the word cut from an utterance of a half-'a'
speaker), with the exact scan. ``--vectors both`` measures an index of both spaces
(kws.search.fusion: the two scores of each place added); with ``--vectors raw,head`` it also
prints the two spaces' evidence added per utterance (each utterance's best score in the raw space
plus its best in the head's, wherever they lie), the bound the index of both approaches.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KWS_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kws.corpus.real import DEFAULT_DATA  # noqa: E402
from kws.search.archive import ArchiveConfig, ArchiveIndex  # noqa: E402
from kws.search.rows import DEFAULT_SPACE, fit_whitening, quantize_rows  # noqa: E402
from kws.search.terms import DEFAULT_VOICES, Template, template_from_audio, templates_from_text, voice_order  # noqa: E402

TEXT_WORDS = ["elephant", "computer", "beautiful", "yesterday", "chocolate", "restaurant", "basketball",
              "sister", "museum", "morning", "window", "teacher", "airport", "birthday", "hospital",
              "kitchen", "library", "because", "people", "water", "family", "school", "friend",
              "english", "country", "mother", "question", "remember", "important", "different"]


# ---------------------------------------------------------------------------- pool
def _variant(x, how, rng, noises):
    import soxr

    if how == "shift_noise":
        x = x[640:].copy()
        n = noises[rng.integers(len(noises))]
        s = rng.integers(0, max(1, n.size - x.size))
        seg = np.resize(n[s:s + x.size], x.size)
        return x + np.sqrt(np.mean(x ** 2) / max(np.mean(seg ** 2), 1e-12) / 100) * seg
    if how == "slow_quiet":
        return 0.5 * soxr.resample(x, 16000, int(16000 / 0.9)).astype(np.float32)
    return x


def make_pool(data: Path, cache: Path, vectors: str = "head", model=None):
    """(vectors of the space ``vectors``, offsets, names, seconds, variant) of the pool; the cache
    keeps both spaces' vectors (the front end's, unwhitened, and the head's) of one model."""
    from kws.search.rows import Space, search_model, whiten

    model = model or search_model()
    if cache.exists():
        z = np.load(cache)
        if str(z["model_id"]) == model.model_id:
            v = z["head"] if vectors == "head" else None
            if v is None:
                v = np.concatenate([whiten(z["raw"][a:a + 200_000].astype(np.float32)).astype(np.float16)
                                    for a in range(0, z["raw"].shape[0], 200_000)])
            return v, z["offsets"], z["names"], z["seconds"], z["variant"]
        print(f"{cache} holds vectors of model {z['model_id']}, not {model.model_id}: made again", flush=True)
    from kws.audio.io import load_audio
    from kws.progress import progress
    from kws.search.rows import PAD_S
    from kws.spot.templates import source_vectors

    Space(vectors, model)
    files = sorted((data / "librispeech-bits").rglob("*.opus")) + \
        sorted((data / "speechocean762-train" / "audio").rglob("*.ogg"))
    noises = [load_audio(p) for p in sorted((data / "noise").glob("*.flac"))]
    raw, head, names, secs, var = [], [], [], [], []
    t0 = time.perf_counter()
    for i, how in enumerate(("as_recorded", "shift_noise", "slow_quiet")):
        rng = np.random.default_rng(i)
        for f in progress(files, how):
            x = _variant(load_audio(f), how, rng, noises).astype(np.float32)
            fr = source_vectors(model.frontend.frames, x, trim=False, pad_s=PAD_S)    # as indexing pads
            raw.append(fr.astype(np.float16))
            head.append(model.head(fr).astype(np.float16))
            names.append(str(f.relative_to(data)))
            secs.append(x.size / 16000)
            var.append(how)
    off = np.cumsum([0] + [o.shape[0] for o in raw])
    np.savez(cache, raw=np.concatenate(raw), head=np.concatenate(head), offsets=off, names=np.array(names),
             seconds=np.array(secs), variant=np.array(var), model_id=np.array(model.model_id))
    print(f"pool: {len(raw)} recordings, {sum(secs) / 3600:.2f} h, {off[-1]} vectors, "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    return make_pool(data, cache, vectors, model)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def pool_rows(v: np.ndarray) -> np.ndarray:
    return quantize_rows(v.astype(np.float32))


def whitening(args) -> int:
    """The whitening of the raw space: mean and covariance of the front-end vectors of
    librispeech-bits and of the speechocean762 speakers of half 'a' (never half 'b', which
    measures), as recorded."""
    from kws.corpus.real import speaker_half

    make_pool(args.data, args.cache)
    z = np.load(args.cache)
    V, off, names, secs, var = z["raw"], z["offsets"], z["names"], z["seconds"], z["variant"]
    sel = [i for i in range(len(names)) if var[i] == "as_recorded" and (
        names[i].startswith("librispeech") or speaker_half(names[i].split("/")[2].replace("SPEAKER", "")) == "a")]
    x = np.concatenate([V[off[i]:off[i + 1]] for i in sel]).astype(np.float32)
    w = fit_whitening(x)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **w)
    print(f"whitening from {len(sel)} recordings ({sum(secs[i] for i in sel) / 3600:.2f} h, {x.shape[0]} vectors): "
          f"{args.out}")
    return 0


# ---------------------------------------------------------------------------- volume
def real_files(pool, hours: float, seed: int = 0):
    """(key, rows, seconds) of real recordings up to ``hours``: as recorded (shuffled), then the
    variants."""
    V, off, names, secs, var = pool
    rng = np.random.default_rng(seed)
    order = [i for i in rng.permutation(len(names)) if var[i] == "as_recorded"] + \
            [i for i in rng.permutation(len(names)) if var[i] != "as_recorded"]
    total = 0.0
    for i in order:
        if total >= hours * 3600:
            return
        yield f"real/{var[i]}/{names[i]}", pool_rows(V[off[i]:off[i + 1]]), float(secs[i])
        total += secs[i]


def synthetic_files(pool, hours: float, jitter: float, replica0: int, stats: dict, minutes: float = 10.0,
                    twin_dim: int = 0):
    """Synthetic 10-minute recordings from the pool, up to ``hours`` (see the module docstring).
    ``twin_dim``: the dimension of the space whose synthetic recordings these must follow (the raw
    space's 96, for the head's rows of an index of both spaces): the same utterances in the same
    order as there, turned and moved by random draws of their own."""
    V, off, names, secs, _ = pool
    d = V.shape[1]
    sample = _unit(V[::max(1, V.shape[0] // 200_000)].astype(np.float32))
    w, v = np.linalg.eigh(np.cov(sample.T))
    basis = (np.sqrt(np.clip(w[::-1][:d // 2], 0, None))[:, None] * v[:, ::-1][:, :d // 2].T).astype(np.float32)
    total, r = 0.0, replica0
    cos = []
    while total < hours * 3600:
        rng = np.random.default_rng(1000 + r)
        if twin_dim:                                  # the twin's draws, so that its order is drawn here too
            rng.standard_normal((twin_dim, twin_dim))
            order = rng.permutation(len(names))
            rng = np.random.default_rng(5000 + r)
            g = rng.standard_normal((d, d)).astype(np.float32)
        else:
            g = rng.standard_normal((d, d)).astype(np.float32)
            order = rng.permutation(len(names))
        R = np.linalg.qr(np.eye(d, dtype=np.float32) + 0.05 * g)[0].astype(np.float32)
        R *= np.sign(np.diag(R))[None, :]
        f, i = 0, 0
        while i < len(order) and total < hours * 3600:
            parts, sec = [], 0.0
            while i < len(order) and sec < minutes * 60:
                j = order[i]
                parts.append(V[off[j]:off[j + 1]])
                sec += secs[j]
                i += 1
            x = _unit(np.concatenate(parts).astype(np.float32))
            y = x @ R + jitter * (rng.standard_normal((x.shape[0], basis.shape[0]), dtype=np.float32) @ basis)
            y /= np.linalg.norm(y, axis=1, keepdims=True)
            if len(cos) < 50:
                cos.append(float(np.mean(np.sum(x * y, 1))))
            yield f"synthetic/r{r:03d}/{f:04d}", quantize_rows(y), sec
            total += sec
            f += 1
        r += 1
    stats["synthetic_cos_to_source"] = float(np.mean(cos)) if cos else None


def volume(pool, hours: float, jitter: float, twin_dim: int = 0):
    """All files of one size: real first, then synthetic (``twin_dim``: synthetic_files)."""
    real_h = float(np.sum(pool[3])) / 3600
    stats = {}
    yield from real_files(pool, min(hours, real_h))
    if hours > real_h:
        yield from synthetic_files(pool, hours - real_h, jitter, 0, stats, twin_dim=twin_dim)
        print(f"  synthetic vectors: mean cosine {stats['synthetic_cos_to_source']:.3f} to their source",
              flush=True)


def split_shards(files_iter, shards: int, hours: float):
    """Deal a stream of files into ``shards`` consecutive shards by hours (generators)."""
    it = iter(files_iter)
    state = {"carry": None}

    def one(limit):
        total = 0.0
        if state["carry"] is not None:
            f = state["carry"]
            state["carry"] = None
            total += f[2]
            yield f
        for f in it:
            if total >= limit:
                state["carry"] = f
                return
            total += f[2]
            yield f
    per = hours * 3600 / shards
    return [one(per if s < shards - 1 else float("inf")) for s in range(shards)]


# ---------------------------------------------------------------------------- queries
def word_examples(data: Path, n: int, seed: int = 0):
    """Recorded words (label, audio): words of >= 4 phonemes cut from speechocean762 utterances of
    half-'a' speakers (committed alignment), one clip a word, plus wake-word recordings."""
    import random

    from kws.audio.io import load_audio
    from kws.corpus.align import load_alignments
    from kws.corpus.real import speaker_half
    from kws.enroll.phonemes import pronounce

    recs = [r for r in load_alignments() if speaker_half(r["speaker"]) == "a"]
    random.Random(seed).shuffle(recs)
    seen, out = set(), []
    for r in recs:
        for w, s, e in r["words"]:
            if w in seen or not w.isalpha() or len(pronounce(w).phonemes) < 5 or e - s < 0.3:
                continue
            x = load_audio(data / "speechocean762-train" / r["path"])
            out.append((w, x[int(s * 16000):int(e * 16000)]))
            seen.add(w)
            break
        if len(out) >= n:
            break
    for kw in ("alexa", "computer", "jarvis"):
        for p in sorted((data / "wakewords" / kw).glob("*.*"))[:3]:
            out.append((kw, load_audio(p)))
    return out


def make_queries(data: Path, n_text: int, n_example: int, voices: int, cache: Path, space):
    """[(kind, label, [Template] of each space)] in ``space`` (a Space, or the pair (raw, head) of an
    index of both), and seconds spent making each query's templates."""
    spaces = tuple(space) if isinstance(space, (tuple, list)) else (space,)
    name = " + ".join(sp.name for sp in spaces)
    if cache is not None and cache.exists():
        z = np.load(cache, allow_pickle=True)
        if str(z["space"]) == name:
            return z["queries"].tolist(), z["make_s"].tolist()
        print(f"{cache} holds templates of {z['space']}, not {name}: made again", flush=True)
    out, took = [], []
    for w in TEXT_WORDS[:n_text]:
        t0 = time.perf_counter()
        each = [templates_from_text(w, voices=voices, space=sp) for sp in spaces]
        took.append(("text", time.perf_counter() - t0))
        out.append(("text", w) + tuple([(T.vectors, T.start_s, T.end_s) for T in ts] for ts in each))
    for w, x in word_examples(data, n_example):
        t0 = time.perf_counter()
        each = [template_from_audio(x, w, space=sp) for sp in spaces]
        took.append(("example", time.perf_counter() - t0))
        out.append(("example", w) + tuple([(T.vectors, T.start_s, T.end_s)] for T in each))
    if cache is not None:
        np.savez(cache, queries=np.array(out, dtype=object), make_s=np.array(took, dtype=object),
                 space=np.array(name))
    return out, took


def templates(q):
    """A query's templates: a list, or (raw, head) lists for an index of both spaces."""
    each = tuple([Template(v, s, e, q[1]) for v, s, e in ts] for ts in q[2:])
    return each[0] if len(each) == 1 else each


def open_index(path, model=None):
    """An index of one space or of both, opened with ``model`` (a model folder; default: the
    shipped one), which must be the model its rows were made with."""
    from kws.search.fusion import PairedIndex, is_pair

    return PairedIndex(path, model=model) if is_pair(path) else ArchiveIndex(path, model=model)


def overlap_recall(exact, approx) -> float:
    if not exact:
        return 1.0
    return sum(any(a.file == e.file and a.start < e.end and a.end > e.start for a in approx)
               for e in exact) / len(exact)


def rss() -> dict:
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[k] = int(v.split()[0]) / 1024          # MiB
    return out


def query_process(args) -> int:
    """Run in a fresh process: open the index, run every query at each setting, report."""
    import faiss

    faiss.omp_set_num_threads(1)
    qs = np.load(args.queries, allow_pickle=True)["queries"].tolist()
    t0 = time.perf_counter()
    ix = open_index(args.index)
    pair = not isinstance(ix, ArchiveIndex)
    for one in ((ix.raw, ix.head) if pair else (ix,)):
        one.segments()
    open_s = time.perf_counter() - t0
    before = rss()
    res = {"open_s": open_s, "rss_open": before, "settings": []}
    if args.warm:          # one untimed pass, so that the first setting finds the rows mapped as the others do
        for q in qs:
            ix.query(templates(q), top=10)
    for setting in args.settings.split(";"):
        candidates, places, source, pairs = None, True, None, None
        setting = setting.strip()
        if pair and setting.split(":")[0] in ("joint", "spaces"):    # an index of both: what proposes
            source, _, rest = setting.partition(":")
            vals = rest.split(",") if rest else []
            vals += [""] * (5 - len(vals))
            nprobe, k, rescore, candidates = [int(v) if v else None for v in vals[:4]]
            pairs = vals[4] or None
            step = spread = None
        elif setting in ("defaults", "judged"):   # what `kws search query` does: the index's defaults
            nprobe = k = step = rescore = spread = None
            places = setting == "defaults"   # judged: a pair's candidates as each space's events
            source = None if places else "spaces"
        elif pair and "," not in setting:       # an index of both spaces: the candidates it takes
            nprobe = k = step = rescore = spread = None
            candidates = int(setting)
            source = "spaces"
        else:
            vals = [int(v) for v in setting.split(",")]
            nprobe, k, step = vals[:3]
            conf = (ix.raw if pair else ix).config
            rescore = vals[3] if len(vals) > 3 else conf.rescore
            spread = vals[4] if len(vals) > 4 else conf.spread
            source = "spaces" if pair else None
        if pair and source is None:
            source = "joint" if ix.joint is not None else "spaces"
        times, cpu, hits = [], [], []
        for q in qs:
            T = templates(q)
            c0, t0 = time.process_time(), time.perf_counter()
            if pair:
                h = ix.query(T, top=10, candidates=candidates or 0, nprobe=nprobe, k=k, rescore=rescore,
                             places=places, source=source, pairs=pairs)
            else:
                h = ix.query(T, top=10, nprobe=nprobe, k=k, query_step=step, rescore=rescore, spread=spread)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            hits.append([x.to_dict() for x in h])
        res["settings"].append({"nprobe": nprobe, "k": k, "step": step, "rescore": rescore, "spread": spread,
                                "candidates": candidates, "places": places, "source": source, "pairs": pairs,
                                "times": times, "cpu": cpu,
                                "hits": hits})
    res["rss_after"] = rss()
    Path(args.out).write_text(json.dumps(res))
    return 0


def measure(ix_dir: Path, qs, args, label_hours: float, build: dict, results: list, tmp: Path):
    from kws.search.query import Hit

    ix = open_index(ix_dir)
    pair = not isinstance(ix, ArchiveIndex)
    hours = ix.seconds / 3600
    qfile = tmp / "queries.npz"
    np.savez(qfile, queries=np.array(qs, dtype=object))
    import hashlib

    qhash = hashlib.sha256(b"".join(np.ascontiguousarray(v, np.float32).tobytes() for q in qs for v, _, _ in q[2]))
    # the exact hits depend on the rows (the same for every codec) and the queries only
    cache = Path(args.tmp) / f"exact-{ix.space_name.replace(':', '_')}-{label_hours:g}h-{qhash.hexdigest()[:12]}.json"
    if cache.exists():
        c = json.loads(cache.read_text())
        exact, exact_s = [[Hit(**h) for h in q] for q in c["hits"]], c["seconds"]
        print(f"  exact hits from {cache}", flush=True)
    else:
        t0 = time.perf_counter()
        if pair:
            exact = [ix.query(templates(q), top=10, exact=True) for q in qs]
        else:
            exact = ix.query_many([templates(q) for q in qs], top=10, exact=True)
        exact_s = time.perf_counter() - t0
        cache.write_text(json.dumps({"seconds": exact_s, "hits": [[h.to_dict() for h in q] for q in exact]}))
    print(f"  exact scan of {len(qs)} queries in one pass: {exact_s:.1f} s "
          f"({exact_s / len(qs) * 1000:.0f} ms a query)", flush=True)
    # the index's files read once, so that the queries find them in the page cache, as a machine
    # that searches its index often keeps them (what is timed is the query, not the disk)
    t0 = time.perf_counter()
    for p in sorted(q for q in Path(ix_dir).rglob("*") if q.is_file()):
        with open(p, "rb") as fh:
            while fh.read(64 << 20):
                pass
    print(f"  index files read into the page cache in {time.perf_counter() - t0:.1f} s", flush=True)
    out = tmp / "q.json"
    cmd = [sys.executable, __file__, "_query", str(ix_dir), str(qfile), str(out), "--settings", args.settings]
    if args.warm:
        cmd.append("--warm")
    subprocess.run(cmd, check=True)
    r = json.loads(out.read_text())
    mb = ix.size_bytes() / 1e6
    parts = ix.size_parts() if pair else None
    for st in r["settings"]:
        for kind in ("text", "example"):
            sel = [i for i, q in enumerate(qs) if q[0] == kind]
            if not sel:
                continue
            ts = np.array([st["times"][i] for i in sel[1:] or sel]) * 1000    # after the first query
            cs = np.array([st["cpu"][i] for i in sel[1:] or sel]) * 1000
            rec = np.mean([overlap_recall(exact[i], [Hit(**h) for h in st["hits"][i]]) for i in sel])
            row = {"hours": round(hours, 2), "rows": ix.raw.rows if pair else ix.rows, "queries": kind, "n": len(sel),
                   "nprobe": st["nprobe"], "k": st["k"], "step": st["step"], "rescore": st["rescore"],
                   "spread": st["spread"], "candidates": st.get("candidates"), "places": st.get("places", True),
                   "codec": (ix.raw if pair else ix).config.codec, "median_ms": float(np.median(ts)),
                   "p90_ms": float(np.percentile(ts, 90)), "recall10": float(rec),
                   "median_cpu_ms": float(np.median(cs)), "p90_cpu_ms": float(np.percentile(cs, 90)),
                   "first_ms": st["times"][sel[0]] * 1000,
                   "mb_per_hour": mb / hours, "index_gb": mb / 1e3, "build_s": build.get("build_s"),
                   "source": st.get("source"), "pairs": st.get("pairs"),
                   "joint": ({"dim": ix.joint.config.listed_dim, "codec": ix.joint.config.codec}
                             if pair and ix.joint is not None else None),
                   # an index of both: the folder as the setting's lists need it (rows and those lists)
                   "mb_per_hour_lists": (parts["rows"] + parts["joint_lists" if st.get("source") == "joint" else
                                                         "space_lists"]) / 1e6 / hours if pair else mb / hours,
                   "size_parts_mb": {k: v / 1e6 for k, v in parts.items()} if pair else None,
                   "exact_ms_per_query": exact_s / len(qs) * 1000, "open_s": r["open_s"],
                   "rss_mib": r["rss_after"]["VmRSS"], "rss_file_mib": r["rss_after"].get("RssFile"),
                   "rss_anon_mib": r["rss_after"].get("RssAnon"), "rss_peak_mib": r["rss_after"]["VmHWM"],
                   "build": build}
            results.append(row)
            how = (f"{st.get('source')} lists nprobe {st['nprobe'] or 'dflt'} k {st['k'] or 'dflt'} rescore "
                   f"{st['rescore'] or 'dflt'} places {st.get('candidates') or 'dflt'} pairs {st.get('pairs') or 'dflt'}"
                   if st.get("source") == "joint" else "each space's own lists, their defaults"
                   if st.get("source") == "spaces" and st["nprobe"] is None and not st.get("candidates") else
                   "the index's defaults" + ("" if st.get("places", True) else ", candidates judged as events")
                   if st["nprobe"] is None and not st.get("candidates") else
                   f"{st['candidates']} candidates" if st.get("candidates") else
                   f"nprobe {st['nprobe']:3d} k {st['k']:4d} step {st['step']} rescore {st['rescore']} spread {st['spread']}")
            print(f"  {kind:7s} {how}: median {row['median_ms']:.1f} ms, "
                  f"p90 {row['p90_ms']:.1f} ms (CPU {row['median_cpu_ms']:.1f}, {row['p90_cpu_ms']:.1f}), recall@10 {rec:.3f}; "
                  f"{row['mb_per_hour_lists']:.2f} MB/h; RSS {row['rss_mib']:.0f} MiB "
                  f"(file {row['rss_file_mib']:.0f}, peak {row['rss_peak_mib']:.0f})", flush=True)


def _build_pair(ix_dir: Path, pool, head_pool, hours: float, args):
    """An index of both spaces (kws.search.fusion) of ``hours`` from the pool, its candidates
    proposed by ``--pair-lists`` (joint lists, each space's own, or both to compare): the raw
    space's index (``--raw-index``: one that ``scale --vectors raw --keep`` left of the same volume,
    linked in, not built again), then the head's index of the same recordings, row for row, then
    the joint lists."""
    import shutil

    from kws.search.fusion import PairedIndex, mark_pair

    from kws.search.fusion import NO_LISTS

    resume = (ix_dir / "manifest.json").exists()      # a build that stopped: what it finished is kept
    for part in ("head", "joint"):
        if resume and (ix_dir / part).exists() and not (ix_dir / part / "manifest.json").exists():
            shutil.rmtree(ix_dir / part)               # half-written
    mark_pair(ix_dir, args.pair_lists)
    build = {}
    if args.raw_index and not resume:
        shutil.copytree(args.raw_index, ix_dir / "raw", copy_function=os.link)
        build["raw"] = json.loads((args.raw_index.parent / f"build-{args.raw_index.name[len('archive-'):]}.json")
                                  .read_text()) if args.raw_index.name.startswith("archive-") else {}
        print(f"  raw space: {args.raw_index} linked in", flush=True)
    ix = PairedIndex(ix_dir, joint_config=_joint_config(args))
    if not len(ix.raw.files):
        build["raw"] = ix.raw.add_rows(split_shards(volume(pool, hours, args.jitter), args.shards, hours), quiet=False)
    elif resume:
        print(f"  raw space: {ix.raw.rows} rows kept", flush=True)
        build["raw"] = {}
    if args.pair_lists == "joint" and not len(ix.head.files) and ix.head.config.min_list_rows != NO_LISTS:
        # the head's rows without lists of their own (the raw space's may have them: a build resumed)
        ix.head = ArchiveIndex(ix_dir / "head", ArchiveConfig(vectors="head", min_list_rows=NO_LISTS))
        if ix.joint is not None:
            ix.joint.head = ix.head
    t1 = time.perf_counter()
    build["head"] = ix.head.add_rows(split_shards(volume(head_pool, hours, args.jitter, twin_dim=pool[0].shape[1]),
                                                  args.shards, hours), quiet=False)
    build["head"]["build_s"] = time.perf_counter() - t1
    for k in ("raw", "head"):
        build[k].pop("shard_meta", None)
    build["build_s"] = build["raw"].get("build_s", 0.0) + build["head"]["build_s"]
    if args.pair_lists != "spaces":
        _add_joint(ix, build, args)
    ix = PairedIndex(ix_dir)
    if set(ix.raw.files) != set(ix.head.files):
        raise SystemExit(f"{ix_dir}: the two spaces hold other recordings")
    ix.build = build
    return ix


def _add_space_lists(ix, build: dict) -> None:
    """Each space's own lists (as ArchiveIndex builds them) for its segments that have none: an
    index of both built with joint lists only gets the lists of format 1 beside them, to compare
    the two on the same rows."""
    from kws.search.shards import import_faiss, write_atomic

    for key, sp in (("raw", ix.raw), ("head", ix.head)):
        m = json.loads(json.dumps(sp.manifest))
        todo = [seg for seg in m["segments"] if not seg.get("ivf")]
        if not todo:
            continue
        t0 = time.perf_counter()
        faiss = import_faiss()
        name = f"trained-{int(todo[0]['name'][4:]):04d}.faiss"
        sp._train(m["segments"], name, faiss)
        for seg in todo:
            seg["trained"] = name
            seg["ivf"] = sp._build_lists(seg, name, f"ivf-{int(seg['name'][4:]):04d}", faiss, 1, None, False)
        m["trained"], m["trained_rows"] = name, sum(seg["rows"] for seg in m["segments"])
        m["checksums"] = sp._checksums(m)
        write_atomic(sp.root / "manifest.json", json.dumps(m, indent=1).encode())
        build[f"{key}_lists_s"] = time.perf_counter() - t0
        print(f"  {key} space: its own lists in {build[f'{key}_lists_s']:.0f} s", flush=True)


def _joint_config(args):
    from kws.search.joint import JointConfig

    return JointConfig(listed_dim=args.joint_dim, codec=args.joint_codec)


def _add_joint(ix, build: dict, args) -> None:
    """The joint lists of every segment of an index of both spaces (added to one that has none)."""
    t0 = time.perf_counter()
    rep = ix.add_joint(_joint_config(args), quiet=False) if ix.joint is None else ix.joint.update(quiet=False)
    rep["build_s"] = time.perf_counter() - t0
    build["joint"] = rep
    build["build_s"] = build.get("build_s", 0.0) + rep["build_s"]
    print(f"  joint lists: {rep['build_s']:.0f} s ({rep})", flush=True)


def scale(args) -> int:
    from kws.search.rows import Space, search_model

    both = args.vectors == "both"
    if args.raw_index and (not both or len(args.hours.split(",")) != 1):
        raise SystemExit("--raw-index goes with --vectors both and one size (--hours)")
    space = Space("raw" if both else args.vectors, search_model())
    print(f"{space.name}: rows of model {space.model.model_id}", flush=True)
    pool = make_pool(args.data, args.cache, space.kind, space.model)
    head_pool = make_pool(args.data, args.cache, "head", space.model) if both else None
    qs, took = make_queries(args.data, args.text_queries, args.example_queries, args.voices, args.query_cache,
                            (space, Space("head", space.model)) if both else space)
    for kind in ("text", "example"):
        t = [s for k, s in took if k == kind]
        if t:
            print(f"making {kind} templates: median {np.median(t) * 1000:.0f} ms a query", flush=True)
    print(f"queries: {sum(q[0] == 'text' for q in qs)} text, {sum(q[0] == 'example' for q in qs)} by example; "
          f"templates of {np.mean([v.shape[0] for q in qs for v, _, _ in q[2]]):.1f} vectors on average",
          flush=True)
    results = []
    tmp_root = Path(args.tmp)
    tmp_root.mkdir(parents=True, exist_ok=True)
    for h in [float(x) for x in args.hours.split(",")]:
        name = f"{args.vectors}-{args.codec}" + (f"-c{args.context}d{args.listed_dim}s{args.stride}"
                                                 if (args.context, args.stride) != (1, 2) else "")
        ix_dir = tmp_root / f"archive-{name}-{h:g}h"
        built = tmp_root / f"build-{name}-{h:g}h.json"
        print(f"\n== {h:g} h", flush=True)
        if both and args.reuse and (ix_dir / "manifest.json").exists() and not built.exists() and \
                (ix_dir / "raw" / "manifest.json").exists() and not (ix_dir / "head" / "manifest.json").exists():
            ix = _build_pair(ix_dir, pool, head_pool, h, args)       # the raw space finished: the rest
            build = ix.build
            built.write_text(json.dumps(build))
        elif args.reuse and (ix_dir / "manifest.json").exists() and built.exists():
            ix = open_index(ix_dir)
            build = json.loads(built.read_text())
            print(f"  reusing {ix_dir}", flush=True)
            if both and args.pair_lists != "spaces" and (ix.joint is None or
                                                         len(ix.joint.segments()) < len(ix.raw.segments())):
                _add_joint(ix, build, args)          # an index of both made without (all) joint lists
                built.write_text(json.dumps(build))
                ix = open_index(ix_dir)
            if both and args.pair_lists == "both" and any(not seg.get("ivf") for sp in (ix.raw, ix.head)
                                                          for seg in sp.manifest["segments"]):
                _add_space_lists(ix, build)          # one made with joint lists only: format 1's lists beside
                built.write_text(json.dumps(build))
                ix = open_index(ix_dir)
        else:
            if ix_dir.exists():
                import shutil

                shutil.rmtree(ix_dir)
            if both:
                ix = _build_pair(ix_dir, pool, head_pool, h, args)
                build = ix.build
            else:
                ix = ArchiveIndex(ix_dir, ArchiveConfig(vectors=space.kind, stride=args.stride, context=args.context,
                                                        listed_dim=args.listed_dim, codec=args.codec),
                                  model=space.model)
                shards = split_shards(volume(pool, h, args.jitter), args.shards, h)
                t0 = time.perf_counter()
                build = ix.add_rows(shards, quiet=False)
                build["build_s"] = time.perf_counter() - t0
            built.write_text(json.dumps(build))
        print(f"  built: {(ix.raw if both else ix).rows} rows, {ix.seconds / 3600:.1f} h, {ix.size_bytes() / 1e9:.2f} GB, "
              f"{build['build_s']:.0f} s ({ {k: round(v, 1) for k, v in build.items() if k.endswith('_s')} })",
              flush=True)
        if args.build_only:
            continue
        with tempfile.TemporaryDirectory(dir=tmp_root) as tmp:
            measure(ix_dir, qs, args, h, build, results, Path(tmp))
        if args.out:
            args.out.write_text(json.dumps(results, indent=1))
        if not args.keep:
            import shutil

            shutil.rmtree(ix_dir)
    print(f"\n{'hours':>7} {'queries':>8} {'nprobe':>6} {'k':>5} {'step':>4} {'resc':>5} {'median ms':>9} {'p90 ms':>7} {'cpu med':>7} {'cpu p90':>7} "
          f"{'rec@10':>7} {'MB/h':>6} {'RSS MiB':>8} {'build s':>8}")
    for r in results:
        d = lambda v, w: f"{'dflt' if v is None else v:>{w}}"      # noqa: E731  (None: the index's defaults)
        probe = (("j" if r.get("source") == "joint" else "") + (f"{r['nprobe']}" if r["nprobe"] else "") +
                 (f"c{r['candidates']}" if r.get("candidates") else "") + ("i" if r.get("pairs") == "index" else "")
                 or ("joint" if r.get("source") == "joint" else None)
                 if r.get("source") == "joint" or r.get("candidates") else       # an index of both: its candidates
                 "judged" if not r.get("places", True) else r["nprobe"])
        print(f"{r['hours']:7.1f} {r['queries']:>8} {d(probe, 6)} {d(r['k'], 5)} {d(r['step'], 4)} {d(r['rescore'], 5)} {r['median_ms']:9.1f} "
              f"{r['p90_ms']:7.1f} {r['median_cpu_ms']:7.1f} {r['p90_cpu_ms']:7.1f} {r['recall10']:7.3f} {r['mb_per_hour_lists']:6.2f} {r['rss_mib']:8.0f} "
              f"{r['build_s']:8.0f}")
    return 0


# ---------------------------------------------------------------------------- quality
def choose_utterances(records, half: str, n: int, seed: int = 0):
    import random

    from kws.corpus.real import speaker_half

    pool = [r for r in records if speaker_half(r["speaker"]) == half]
    random.Random(seed).shuffle(pool)
    return sorted(pool[:n], key=lambda r: r["utt"])


def choose_queries(utts, max_queries: int, seed: int = 0, min_phones: int = 4, min_utts: int = 2):
    """Words of at least ``min_phones`` phonemes spoken in at least ``min_utts`` utterances: up to
    ``max_queries`` in vocabulary ('iv', kws/corpus/vocab/iv.txt) and as many out of it ('oov')."""
    import random

    from kws.enroll.phonemes import pronounce

    vocab = Path(__file__).resolve().parents[1] / "kws" / "corpus" / "vocab"
    iv = set((vocab / "iv.txt").read_text().split())
    where = {}
    for r in utts:
        for w, _, _ in r["words"]:
            where.setdefault(w, set()).add(r["utt"])
    out = {"iv": [], "oov": []}
    for w in sorted(where):
        if len(where[w]) < min_utts or not w.replace("'", "").isalpha():
            continue
        if len(pronounce(w).phonemes) < min_phones:
            continue
        out["iv" if w in iv else "oov"].append(w)
    rnd = random.Random(seed)
    return {k: sorted(rnd.sample(v, min(max_queries, len(v)))) for k, v in out.items()}


def _overlaps(a0, a1, b0, b1) -> bool:
    return min(a1, b1) - max(a0, b0) >= 0.5 * min(a1 - a0, b1 - b0)


def voice_names(arg: str):
    """``--voices``: a number (the first of each space's kws.search.terms.voice_order: None here),
    ``all``, or voice names joined by commas."""
    from kws.enroll import kokoro

    if arg == "all":
        return list(kokoro.voices().names)
    if arg.isdigit():
        return None
    return [v.strip() for v in arg.split(",") if v.strip()]


def std_queries(half: str, utterances: int, max_queries: int, validation_only: bool = False):
    """(utterances, {'iv': words, 'oov': words}) of the spoken-term protocol on one speaker half;
    ``validation_only``: only the tuning half's speakers kept out of the head's training."""
    from kws.corpus.align import load_alignments

    recs = load_alignments()
    if validation_only:
        from kws.train.head_eval import validation_speaker

        recs = [r for r in recs if validation_speaker(r["speaker"])]
    utts = choose_utterances(recs, half, utterances, 0)
    return utts, choose_queries(utts, max_queries, 0)


def std(args) -> int:
    """The spoken-term protocol in each vector space asked (``--vectors``), side by side."""
    from kws.audio.io import load_audio
    from kws.corpus.align import load_alignments
    from kws.corpus.real import speaker_half
    from kws.metrics import eer
    from kws.progress import progress
    from kws.search.fusion import PairedIndex, query_templates
    from kws.search.rows import search_model

    model = search_model(args.model)
    utts, queries = std_queries("b", args.utterances, args.max_queries)
    root = args.data / "speechocean762-train"
    files = [root / r["path"] for r in utts]
    by_path = {str(f.resolve()): r for f, r in zip(files, utts)}
    example_of = {}
    for r in load_alignments():
        if speaker_half(r["speaker"]) == "a":
            for w, s, e in r["words"]:
                example_of.setdefault(w, (r, s, e))
    voices = voice_names(args.voices)
    n_voices = int(args.voices) if voices is None else None
    out = {"model_id": model.model_id, "utterances": len(utts),
           "voices": voices or {s: voice_order(s)[:n_voices] for s in ("raw", "head")},
           "queries": queries, "spaces": {}}
    said = (f"the first {n_voices} of each space's order (kws.search.terms.voice_order)" if voices is None
            else f"{len(voices)} voices ({', '.join(voices)})")
    print(f"model {model.model_id}; {len(utts)} utterances of held-out speakers (half 'b'); queries: "
          f"{ {g: len(v) for g, v in queries.items()} }; text: {said}", flush=True)
    for vec in args.vectors.split(","):
        res = {"text": {g: {} for g in queries}, "example": {g: {} for g in queries}}
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            if vec == "both":
                arc = PairedIndex(Path(tmp) / "arc", model=model)
            else:
                arc = ArchiveIndex(Path(tmp) / "arc", ArchiveConfig(vectors=vec), model=model)
            arc.add(files, quiet=True, prune=False)
            build_s = time.perf_counter() - t0
            hours = arc.seconds / 3600
            keys = list(arc.files)
            labels_of = {w: np.array([any(x == w for x, _, _ in by_path[k]["words"]) for k in keys])
                         for g in queries.values() for w in g}

            def judge(w, ts):
                best = np.array([float(arc.file_scores(k, ts)[0].max(initial=-1)) for k in keys])
                hits = arc.query(ts, top=10, exact=True)
                good = sum(any(_overlaps(h.start, h.end, s0, e0) for x, s0, e0 in by_path[h.file]["words"] if x == w)
                           for h in hits)
                return {"eer": eer(best, labels_of[w])[0], "p_at_10": good / max(1, len(hits)), "hits": len(hits),
                        "best": [round(float(v), 5) for v in best], "labels": labels_of[w].tolist()}

            for g, words in queries.items():
                for w in progress(words, f"{vec}: {g} queries"):
                    res["text"][g][w] = judge(w, query_templates(
                        arc, lambda s: templates_from_text(w, voices=n_voices, names=voices, space=s)))
                    if w in example_of:
                        r, s, e = example_of[w]
                        x = load_audio(root / r["path"])[int(s * 16000):int(e * 16000)]
                        res["example"][g][w] = judge(w, query_templates(
                            arc, lambda s: [template_from_audio(x, w, space=s)]))
            size = arc.size_bytes() / 1e6 / hours
        out["spaces"][vec] = {"space": arc.space_name, "mb_per_hour": size, "build_s": build_s, "hours": hours,
                              "results": res}
    print(f"\n{'vectors':>8} {'query':>8} {'group':>5} {'n':>3} {'mean EER':>9} {'P@10':>6}")
    for vec, sp in out["spaces"].items():
        for kind, groups in sp["results"].items():
            sp.setdefault("summary", {})[kind] = {}
            for g, per in groups.items():
                if not per:
                    continue
                e = float(np.mean([v["eer"] for v in per.values()]))
                p = float(np.mean([v["p_at_10"] for v in per.values()]))
                sp["summary"][kind][g] = {"n": len(per), "mean_eer": e, "mean_p_at_10": p}
                print(f"{vec:>8} {kind:>8} {g:>5} {len(per):3d} {e * 100:8.2f}% {p:6.3f}")
    if {"raw", "head"} <= set(out["spaces"]):
        # both spaces asked: each utterance's best score in the raw space plus its best in the
        # head's (the two spaces' evidence added; the spaces' hits are not merged, only judged)
        fused = out["fused raw+head"] = {}
        for kind in ("text", "example"):
            fused[kind] = {}
            for g in queries:
                per = {w: eer(np.add(r["best"], out["spaces"]["head"]["results"][kind][g][w]["best"]),
                              np.array(r["labels"]))[0]
                       for w, r in out["spaces"]["raw"]["results"][kind][g].items()
                       if w in out["spaces"]["head"]["results"][kind][g]}
                if per:
                    fused[kind][g] = {"n": len(per), "mean_eer": float(np.mean(list(per.values()))), "per_query": per}
                    print(f"{'raw+head':>8} {kind:>8} {g:>5} {len(per):3d} {fused[kind][g]['mean_eer'] * 100:8.2f}%"
                          f" {'':>6}  (each utterance: best raw score + best head score)")
    for vec, sp in out["spaces"].items():
        print(f"{vec}: {sp['space']}, {sp['mb_per_hour']:.1f} MB per hour on disk, {sp['hours']:.2f} h built in "
              f"{sp['build_s']:.0f} s")
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))
    return 0


REAL_TERMS = ("people", "morning", "computer", "weather", "family", "question", "government", "thousand",
              "beautiful", "remember")


def real(args) -> int:
    """Speed of text queries on an index of the real recordings, in each space asked."""
    import statistics

    from kws.search.fusion import PairedIndex, query_templates

    paths = [args.data / "librispeech-bits", args.data / "speechocean762-train"]
    out = {}
    for vec in args.vectors.split(","):
        d = Path(args.tmp) / f"real-{vec}"
        t0 = time.perf_counter()
        if vec == "both":
            ix = PairedIndex(d)
        else:
            ix = ArchiveIndex(d, None if (d / "manifest.json").exists() else ArchiveConfig(vectors=vec))
        ix.add(paths, workers=1, quiet=True)                    # nothing new: nothing done
        build = time.perf_counter() - t0
        terms = {t: query_templates(ix, lambda s, t=t: templates_from_text(t, space=s)) for t in REAL_TERMS}
        for ts in terms.values():
            ix.query(ts, top=10)
        wall, cpu = [], []
        for ts in terms.values():
            a, c = time.perf_counter(), time.process_time()
            ix.query(ts, top=10)
            wall.append((time.perf_counter() - a) * 1000)
            cpu.append((time.process_time() - c) * 1000)
        out[vec] = {"hours": ix.seconds / 3600, "files": len(ix), "index_mb": ix.size_bytes() / 1e6,
                    "build_s": build, "median_ms": statistics.median(wall),
                    "p90_ms": float(np.percentile(wall, 90)), "cpu_median_ms": statistics.median(cpu)}
        r = out[vec]
        print(f"{vec:>5}: {r['hours']:.2f} h, {r['files']} files, {r['index_mb'] / r['hours']:.1f} MB an hour, "
              f"built in {r['build_s']:.0f} s; text queries median {r['median_ms']:.1f} ms, p90 "
              f"{r['p90_ms']:.1f} ms (CPU median {r['cpu_median_ms']:.1f} ms)", flush=True)
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pool")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--cache", type=Path, required=True)
    w = sub.add_parser("whitening")
    w.add_argument("--data", type=Path, default=DEFAULT_DATA)
    w.add_argument("--cache", type=Path, required=True)
    w.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "kws" / "assets" /
                   "search" / "whitening.npz")
    s = sub.add_parser("scale")
    s.add_argument("--data", type=Path, default=DEFAULT_DATA)
    s.add_argument("--cache", type=Path, required=True, help="npz of the pool (made if missing)")
    s.add_argument("--query-cache", type=Path, default=None, help="npz of the query templates (made if missing)")
    s.add_argument("--hours", default="1,10,100")
    s.add_argument("--shards", type=int, default=8)
    s.add_argument("--stride", type=int, default=ArchiveConfig.stride)
    s.add_argument("--context", type=int, default=ArchiveConfig.context, help="rows a listed entry holds")
    s.add_argument("--jitter", type=float, default=0.35)
    s.add_argument("--text-queries", type=int, default=20)
    s.add_argument("--example-queries", type=int, default=21)
    s.add_argument("--voices", type=int, default=DEFAULT_VOICES)
    s.add_argument("--vectors", default=DEFAULT_SPACE, help="the space of the rows (kws.search.rows.Space): "
                                                             "raw (default), head, or both (kws.search.fusion)")
    s.add_argument("--raw-index", type=Path, default=None,
                   help="with --vectors both and one size: the raw space's index of that volume that "
                        "--vectors raw --keep left (linked in, not built again)")
    s.add_argument("--pair-lists", default="both", choices=("joint", "spaces", "both"),
                   help="with --vectors both: what proposes the candidates, the joint lists (kws.search.joint; "
                        "what kws search index makes), each space's own lists, or both (to compare; the default)")
    s.add_argument("--joint-dim", type=int, default=384, help="dimensions of a joint list entry")
    s.add_argument("--joint-codec", default="fs128", help="codes of a joint list entry (fsM)")
    s.add_argument("--listed-dim", type=int, default=ArchiveConfig.listed_dim,
                   help="dimensions of a listed entry (0: all)")
    s.add_argument("--codec", default=ArchiveConfig.codec, help="listed entries: fsM, sq8 or pqM (ArchiveConfig.codec)")
    s.add_argument("--settings", default=f"{ArchiveConfig.nprobe},{ArchiveConfig.k},1",
                   help="nprobe,k,query_step[,rescore[,spread]];... ('defaults': each query the index's own, "
                        "as kws search query; for --vectors both also 'joint[:nprobe,k,rescore,places,pairs]': the joint "
                        "lists (kws.search.joint; empty fields: JointConfig's defaults; pairs: all or index), 'spaces': each space's own "
                        "lists with their defaults, N: those with N candidates a space, and "
                        "'judged': each space's candidates judged as events)")
    s.add_argument("--warm", action="store_true", help="every query once, untimed, before the first setting "
                                                        "(else the first setting also maps the index's rows)")
    s.add_argument("--tmp", default=tempfile.gettempdir())
    s.add_argument("--keep", action="store_true", help="keep the indexes")
    s.add_argument("--reuse", action="store_true", help="use the indexes that --keep left in --tmp (made from the "
                                                         "same pool); exact hits are kept by rows and queries")
    s.add_argument("--build-only", action="store_true", help="build (or finish building) the indexes, measure nothing")
    s.add_argument("--out", type=Path, default=None)
    t = sub.add_parser("std")
    t.add_argument("--data", type=Path, default=DEFAULT_DATA)
    t.add_argument("--utterances", type=int, default=300)
    t.add_argument("--max-queries", type=int, default=40)
    t.add_argument("--voices", default=str(DEFAULT_VOICES),
                   help="Kokoro voices of text queries: a number (the first of each space's "
                        "kws.search.terms.voice_order), "
                        "'all', or names joined by commas")
    t.add_argument("--vectors", default="head,raw", help="the spaces compared (kws.search.rows.Space): raw, "
                                                          "head, both (an index of both, kws.search.fusion)")
    t.add_argument("--model", default=None, help="a kws model folder (default: the shipped model)")
    t.add_argument("--out", type=Path, default=None)
    r = sub.add_parser("real")
    r.add_argument("--data", type=Path, default=DEFAULT_DATA)
    r.add_argument("--vectors", default="raw,both", help="the spaces: raw, head, both")
    r.add_argument("--tmp", default=tempfile.gettempdir(), help="where the indexes are kept (reused when there)")
    r.add_argument("--out", type=Path, default=None)
    q = sub.add_parser("_query")
    q.add_argument("index")
    q.add_argument("queries")
    q.add_argument("out")
    q.add_argument("--settings", default="16,1024,1")
    q.add_argument("--warm", action="store_true")
    args = ap.parse_args()
    if args.cmd == "pool":
        make_pool(args.data, args.cache)
        return 0
    return {"scale": scale, "std": std, "whitening": whitening, "real": real, "_query": query_process}[args.cmd](args)


if __name__ == "__main__":
    raise SystemExit(main())
