"""Whether the recall@10 an index of both spaces loses at scale is lost to other copies of the same place.

    python benchmarks/search_copies.py --index /scratch/archive-both-fs64-c4d256s1-1000h \\
        --exact "/scratch/exact-...json" --queries q-both-text.npz --pool pool.npz [--model PREV]

The index, the exact hits and the queries of ``search_archive.py scale --vectors both`` (1,000 h:
the pool's real recordings and their synthetic replicas): ``--exact`` is the exact scan's cache
that ``scale`` writes (``exact-SPACE-SIZEh-QHASH.json``; the queries' hash in its name is checked),
``--queries`` the query cache, ``--pool`` the pool (``search_archive.py pool``). For each query:
the exact fused top 10; the approximate top 10 with the index's defaults (as ``search_archive.py``
``_query`` runs setting ``defaults``; ``--approx``: a cache of them, read if it exists, else
written); every hit mapped to its source, a pool utterance and its seconds there (a synthetic
recording's layout drawn again as ``synthetic_files`` draws it for the raw space, ``--minutes``
long, its row counts checked against the index's); recall@10 counted by hit (the benchmark's), by
source place and by recording; and the exact fused scores of the other copies of the exact top
10's source places, lower bounds of the exact ranks 11-20. Printed first, two checks: the
re-drawn layout's row counts against the index's files, and the mapping itself (hits in aligned
speechocean762 utterances whose query word lies at the mapped seconds; synthetic hits within
0.2 s of a hit of the same list in their source's real file). Then a row per query:

- ``ex`` / ``ap``: the exact / approximate hits;
- ``pl``: the distinct source places (pool utterance and overlapping seconds) of the exact top 10;
  ``rec``: its distinct recordings (any of the three variants, overlapping seconds as recorded);
- ``rc@10``: the benchmark's recall@10 (a hit of the approximate 10 in the same file overlaps);
  ``place`` / ``recd``: recall counted by source place / by recording, in any copy;
- ``miss``: the exact hits the benchmark counts missed; ``m_pl`` / ``m_rc``: of those, the ones
  whose source place / recording is among the approximate top 10 (another copy of it); ``msyn``:
  of those, the ones in synthetic recordings (the rest are real);
- ``s10``: the exact 10th score; then the exact fused scores of the other copies of the exact top
  10's source places (not themselves exact hits), best first: the exact ranks 11-20 score at least
  these.

Then every hit (E: exact, A: approximate): its file, seconds and score, its source (pool index,
variant, seconds there), whether it was found by hit / place / recording, and for the exact hits
the best fused score re-computed in a window around its end (``w``, which should equal its score).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KWS_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from search_archive import open_index, overlap_recall, templates  # noqa: E402
from kws.search.query import Hit  # noqa: E402
from kws.search.rows import HOP_S, PAD_S  # noqa: E402


def ov(a0, a1, b0, b1) -> bool:
    """The benchmark's overlap (``overlap_recall``)."""
    return a0 < b1 and a1 > b0


def distinct(spans) -> list:
    """``spans`` (key, start, end) joined where one key's spans overlap: [key, start, end] each,
    in the order their first span came."""
    out: list = []
    for k, a, b in spans:
        for p in out:
            if p[0] == k and ov(a, b, p[1], p[2]):
                p[1], p[2] = min(a, p[1]), max(b, p[2])
                break
        else:
            out.append([k, a, b])
    return out


def replica_layout(files, n_rows, secs, d: int, minutes: float) -> dict:
    """Synthetic key -> (pool indices, first row of each in the file), every replica that the index
    holds drawn again as ``synthetic_files`` draws the raw space's (``twin_dim`` 0): the rotation's
    draw, then the order, then files of ``minutes``."""
    N = len(secs)
    layout = {}
    r = 0
    while f"synthetic/r{r:03d}/0000" in files:
        rng = np.random.default_rng(1000 + r)
        rng.standard_normal((d, d))
        order = rng.permutation(N)
        f, i = 0, 0
        while i < N:
            js, sec = [], 0.0
            while i < N and sec < minutes * 60:
                js.append(order[i])
                sec += secs[order[i]]
                i += 1
            js = np.array(js)
            layout[f"synthetic/r{r:03d}/{f:04d}"] = (js, np.r_[0, np.cumsum(n_rows[js])[:-1]])
            f += 1
        r += 1
    return layout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index", type=Path, required=True, help="the index folder (an index of both spaces)")
    ap.add_argument("--exact", type=Path, required=True,
                    help="the exact hits' cache (JSON) that search_archive.py scale writes")
    ap.add_argument("--queries", type=Path, required=True, help="the query cache (npz)")
    ap.add_argument("--pool", type=Path, required=True, help="pool.npz (search_archive.py pool)")
    ap.add_argument("--approx", type=Path, default=None,
                    help="cache of the approximate hits (JSON): read if it exists, else computed and written")
    ap.add_argument("--model", default=None,
                    help="the model folder the index was made with (default: the shipped model)")
    ap.add_argument("--minutes", type=float, default=10.0,
                    help="length of a synthetic recording, as synthetic_files (default 10)")
    ap.add_argument("--source", default=None, choices=("joint", "spaces"),
                    help="what proposes the candidates (PairedIndex.query): the joint lists or each space's own "
                         "(default: the index's default, the joint lists where it has them)")
    ap.add_argument("--setting", default="",
                    help="with --source joint: nprobe,k,rescore,places,pairs as search_archive.py's 'joint:' "
                         "setting (empty fields: the defaults)")
    args = ap.parse_args()

    import faiss

    faiss.omp_set_num_threads(1)
    qs = np.load(args.queries, allow_pickle=True)["queries"].tolist()
    qhash = hashlib.sha256(b"".join(np.ascontiguousarray(v, np.float32).tobytes() for q in qs for v, _, _ in q[2]))
    assert qhash.hexdigest()[:12] in args.exact.name, (qhash.hexdigest()[:12], args.exact.name)
    exact = [[Hit(**h) for h in q] for q in json.loads(args.exact.read_text())["hits"]]
    words = [str(q[1]) for q in qs]

    ix = open_index(args.index, model=args.model)
    # ---- approximate top-10, the index's defaults (search_archive.query_process, setting 'defaults')
    if args.approx is not None and args.approx.exists():
        approx = [[Hit(**h) for h in q] for q in json.loads(args.approx.read_text())]
    else:
        t0 = time.perf_counter()
        vals = (args.setting.split(",") if args.setting else []) + [""] * 5
        nprobe, k, rescore, cands = [int(v) if v else None for v in vals[:4]]
        approx = [ix.query(templates(q), top=10, candidates=cands or 0, nprobe=nprobe, k=k, rescore=rescore,
                           places=True, source=args.source, pairs=vals[4] or None)
                  for q in qs]
        if args.approx is not None:
            args.approx.write_text(json.dumps([[h.to_dict() for h in q] for q in approx]))
        approx = [[Hit(**h.to_dict()) for h in q] for q in approx]
        print(f"approximate queries: {time.perf_counter() - t0:.1f} s", flush=True)

    # ---- the pool and the synthetic replicas' layout (raw space: twin_dim=0)
    z = np.load(args.pool)
    d = z["raw"].shape[1]
    off, names, secs, var = z["offsets"], z["names"], z["seconds"], z["variant"]
    n_rows = np.diff(off)
    N = len(names)
    pool_of_real = {f"real/{var[i]}/{names[i]}": i for i in range(N)}
    files = ix.raw.files
    layout = replica_layout(files, n_rows, secs, d, args.minutes)
    n_rep = len({k.split("/")[1] for k in layout})
    syn = [k for k in files if k.startswith("synthetic/")]
    bad = [k for k in syn if k not in layout or int(n_rows[layout[k][0]].sum()) != int(files[k]["rows"])]
    print(f"layout: {n_rep} replicas, {len(syn)} synthetic files in the index, {len(bad)} whose rows differ "
          f"from the re-drawn layout; real files {sum(k.startswith('real/') for k in files)} "
          f"(pool {N})", flush=True)
    assert not bad, bad[:5]
    # where each pool utterance lies in each replica: (key, first row)
    where = {}
    for k, (js, R) in layout.items():
        if k in files:
            for j, a in zip(js, R):
                where.setdefault(int(j), []).append((k, int(a)))

    def source(h):
        """(pool index, local start, local end) of a hit."""
        if h.file.startswith("real/"):
            return pool_of_real[h.file], h.start, h.end
        js, R = layout[h.file]
        tm = (h.start + h.end) / 2
        u = int(np.searchsorted(HOP_S * R - PAD_S, tm, side="right") - 1)
        return int(js[u]), h.start - HOP_S * R[u], h.end - HOP_S * R[u]

    def rec_time(j, t):
        """Seconds of the recording as recorded (variants: 40 ms cut, or slowed to 0.9)."""
        return {"as_recorded": t, "shift_noise": t + 0.04, "slow_quiet": t * 0.9}[str(var[j])]

    # ---- check the mapping against the word alignment (speechocean762 utterances)
    from kws.corpus.align import load_alignments

    align = {"speechocean762-train/" + a["path"]: a["words"] for a in load_alignments()}
    checked = good = has_word = 0
    for w, hs in list(zip(words, exact)) + list(zip(words, approx)):
        for h in hs:
            j, a, b = source(h)
            al = align.get(str(names[j]))
            if al is None:
                continue
            checked += 1
            occ = [(s, e) for x, s, e in al if w in x]          # 'elephants' holds 'elephant'
            has_word += bool(occ)
            good += any(ov(rec_time(j, a), rec_time(j, b), s, e) for s, e in occ)
    # a synthetic hit's mapped source seconds against a hit in its source's real file
    same = n_syn = 0
    for hs in exact + approx:
        src = {(j, round(a, 2)) for h in hs if h.file.startswith("real/") for j, a, _ in [source(h)]}
        for h in hs:
            if h.file.startswith("synthetic/"):
                j, a, _ = source(h)
                if any(jj == j for jj, _ in src):
                    n_syn += 1
                    same += any(jj == j and abs(aa - a) < 0.2 for jj, aa in src)
    print(f"mapping check: {checked} hits (exact+approx) in aligned speechocean762 utterances; the query word "
          f"(or a word holding it) is in the source utterance for {has_word}, and its aligned time overlaps the "
          f"hit's mapped offset for {good} (the rest: the term matched other speech there). "
          f"Synthetic hits whose source's real file is also a hit of the same list: {n_syn}, of which {same} "
          f"map to within 0.2 s of that real hit's seconds", flush=True)

    # ---- the fused score of every copy of a place (window of ends around the term's end)
    def copies_of(j, a, b):
        rk = f"real/{var[j]}/{names[j]}"
        out = ([(rk, 0)] if rk in files else []) + where.get(j, [])
        return [(k, a + HOP_S * R, b + HOP_S * R) for k, R in out]

    def scores_at(T, places):
        """The best fused score at ends whose term ends within 0.2 s of each place's end (an end e
        holds a term ending near HOP_S e + 0.2 s)."""
        wins = []
        for k, s0, e0 in places:
            e = int(round((e0 - 0.2) / HOP_S))
            wins.append((k, max(0, e - 10), e + 11))
        res = ix._fused(T, wins)
        out = []
        for (f, t), (_, s0, e0) in zip(res, places):
            ok = np.abs(t[:, 1] - e0) <= 0.2 if len(f) else np.zeros(0, bool)
            out.append(float(f[ok].max(initial=-1)))
        return out

    # ---- per query
    print(f"\n{'query':>10} {'ex':>3} {'ap':>3} {'pl':>3} {'rec':>3} {'rc@10':>6} {'place':>6} {'recd':>6} "
          f"{'miss':>4} {'m_pl':>4} {'m_rc':>4} {'msyn':>4} {'s10':>6} "
          f"{'copy scores below s10 (11..20, lower bounds)':s}")
    tot = {"hit": [], "place": [], "rec": [], "miss": 0, "m_pl": 0, "m_rc": 0, "msyn": 0}
    detail = []
    for qi, (w, ex, ap_) in enumerate(zip(words, exact, approx)):
        T = templates(qs[qi])
        es = [source(h) for h in ex]
        as_ = [source(h) for h in ap_]
        # distinct source places of the exact top-10 (same pool utterance, overlapping offsets)
        places = distinct(es)
        # distinct recordings, any variant, overlapping as-recorded seconds
        recs = distinct([(str(names[j]), rec_time(j, a), rec_time(j, b)) for j, a, b in es])
        hit_rec = overlap_recall(ex, ap_)
        f_hit = [any(x.file == e.file and ov(x.start, x.end, e.start, e.end) for x in ap_) for e in ex]
        f_pl = [any(ja == j and ov(a2, b2, a, b) for ja, a2, b2 in as_) for j, a, b in es]
        f_rc = [any(names[ja] == names[j] and ov(rec_time(ja, a2), rec_time(ja, b2), rec_time(j, a), rec_time(j, b))
                    for ja, a2, b2 in as_) for j, a, b in es]
        miss = [i for i in range(len(ex)) if not f_hit[i]]
        s10 = ex[-1].score
        # other copies of the exact top-10's source places, their fused scores
        cps = [c for p in places for c in copies_of(*p)]
        cps = [c for c in cps if not any(c[0] == e.file and ov(c[1], c[2], e.start, e.end) for e in ex)]
        cs = sorted(scores_at(T, cps), reverse=True)
        own = scores_at(T, [(e.file, e.start, e.end) for e in ex])
        m_pl = sum(f_pl[i] for i in miss)
        m_rc = sum(f_rc[i] for i in miss)
        msyn = sum(ex[i].file.startswith("synthetic/") for i in miss)
        tot["hit"].append(hit_rec)
        tot["place"].append(float(np.mean(f_pl)))
        tot["rec"].append(float(np.mean(f_rc)))
        tot["miss"] += len(miss)
        tot["m_pl"] += m_pl
        tot["m_rc"] += m_rc
        tot["msyn"] += msyn
        print(f"{w:>10} {len(ex):3d} {len(ap_):3d} {len(places):3d} {len(recs):3d} {hit_rec:6.2f} "
              f"{np.mean(f_pl):6.2f} {np.mean(f_rc):6.2f} {len(miss):4d} {m_pl:4d} {m_rc:4d} {msyn:4d} "
              f"{s10:6.4f} {' '.join(f'{s:.4f}' for s in cs[:10])}", flush=True)
        detail.append((w, ex, ap_, es, as_, f_hit, f_pl, f_rc, own, places, cs, len(cps)))
    print(f"{'mean':>10} {'':3} {'':3} {'':3} {'':3} {np.mean(tot['hit']):6.3f} {np.mean(tot['place']):6.3f} "
          f"{np.mean(tot['rec']):6.3f} {tot['miss']:4d} {tot['m_pl']:4d} {tot['m_rc']:4d} {tot['msyn']:4d}")
    print("""
ex/ap: exact/approximate hits; pl: distinct source places (pool utterance + overlapping offset) in the
exact top-10; rec: distinct recordings (any of the 3 variants, overlapping as-recorded seconds);
rc@10: the benchmark's recall (same file, overlapping); place/recd: recall counted by source place /
by recording in any copy; miss: exact hits the benchmark counts missed; m_pl/m_rc: of those, whose
source place / recording IS among the approximate top-10 (another copy); msyn: of those, in synthetic
files (the rest are real recordings); s10: exact 10th score; then
the exact fused scores of the other copies of the exact top-10's source places (not themselves
exact hits), best first: the exact ranks 11-20 score at least these.""")

    print("\nper hit (E: exact, A: approximate; file, seconds, score, -> pool index:variant, source seconds; "
          "f: benchmark-found / place-found / recording-found; w: window max check)")
    for w, ex, ap_, es, as_, f_hit, f_pl, f_rc, own, places, cs, ncp in detail:
        print(f"--- {w}: {len(places)} places over {ncp} other copies scored; copies within 0.01 of s10: "
              f"{sum(s >= ex[-1].score - 0.01 for s in cs)}, above it: {sum(s > ex[-1].score for s in cs)}")
        for tag, hs, ss, fl in (("E", ex, es, list(zip(f_hit, f_pl, f_rc))), ("A", ap_, as_, None)):
            for i, (h, (j, a, b)) in enumerate(zip(hs, ss)):
                flag = "" if fl is None else " f=" + "".join("y" if x else "-" for x in fl[i])
                chk = f" w={own[i]:.4f}" if tag == "E" else ""
                print(f"  {tag}{i:<2d} {h.file[-40:]:>40} {h.start:8.2f}-{h.end:8.2f} {h.score:.4f} -> "
                      f"{j:5d}:{str(var[j])[:5]} {a:6.2f}-{b:6.2f}{flag}{chk}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
