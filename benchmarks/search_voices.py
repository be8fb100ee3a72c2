"""Which Kokoro voices a typed search term is rendered in, and how fast a text query starts.

    python benchmarks/search_voices.py tune  --data ../shared/data --out voices.json
    python benchmarks/search_voices.py start --index DIR --term people --runs 5

**tune**: the spoken-term protocol of benchmarks/search_archive.py (``std``) on the tuning speakers
only: the utterances of the speechocean762 speakers of half 'a' that the head never trained on
(kws.train.head_eval.validation_speaker), never the held-out half 'b'. Every query word is
rendered in all 28 voices; each voice's template gives every utterance its best score (the
detector's score in the index's space, ``--vectors``), and a set of voices scores an utterance
with its best template. Voices are added greedily, each time the one that lowers the mean EER
over the queries most; printed: the mean EER of the first k voices for every k, the eight evenly
spread voices kws searched with before, all 28, and what one more template costs (front end and
head of a rendering, median ms).

**start**: how long a text query of a term rendered before takes to start searching, in fresh
processes (the render cache warm, nothing else): the term's templates (from the render cache)
after the index is open, and the whole ``python -m kws search query`` command until its search
starts (interpreter, imports, model and index included), with that command's CPU time (user and
system, its search included: what other jobs on the core do not lengthen). Median of
``--runs``. The first process (not counted) fills the render cache with the term's phonemes,
renderings and templates. ``--bytecode DIR``: the processes keep and
read Python's compiled bytecode in DIR (``PYTHONPYCACHEPREFIX``, ``PYTHONDONTWRITEBYTECODE``
unset), as an installed kws has it; without it they run as the environment says (with
``PYTHONDONTWRITEBYTECODE`` set, every module of a checkout is compiled again at each start).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from kws.corpus.real import DEFAULT_DATA  # noqa: E402


def tune(args) -> int:
    from kws.audio.io import load_audio
    from kws.enroll import kokoro, render_cache
    from kws.metrics import eer
    from kws.progress import progress
    from kws.search.query import stretch_scores
    from kws.search.rows import Space, quantize_rows, search_model
    from kws.search.terms import DEFAULT_VOICES, VOICES, text_phonemes
    from kws.spot.templates import TemplateBank
    from search_archive import std_queries

    model = search_model(args.model)
    space = Space(args.vectors, model)
    utts, queries = std_queries("a", args.utterances, args.max_queries, validation_only=True)
    words = [(g, w) for g in ("iv", "oov") for w in queries[g]]
    names = list(kokoro.voices().names)
    print(f"model {model.model_id}, {space.name}: {len(utts)} utterances of tuning speakers kept out of the "
          f"head's training; queries {({g: len(v) for g, v in queries.items()})}; {len(names)} voices", flush=True)
    rows = [quantize_rows(space.vectors(load_audio(args.data / "speechocean762-train" / r["path"])))
            for r in utts]
    starts = np.cumsum([0] + [x.shape[0] for x in rows[:-1]])
    allrows = np.concatenate(rows)
    best = np.full((len(names), len(words), len(utts)), -1.0, np.float32)
    labels = np.array([[any(x == w for x, _, _ in r["words"]) for r in utts] for _, w in words])
    cost = []
    for qi, (g, w) in enumerate(progress(words, "queries")):
        got = render_cache.render(text_phonemes(w), [kokoro.Rendering(v) for v in names], label=w)
        for vi, t in enumerate(got):
            t0 = time.perf_counter()
            try:
                T = space.template(t.audio, w)
            except Exception:              # a rendering too short or long for a template: no score
                continue
            cost.append(time.perf_counter() - t0)
            s, _ = stretch_scores(TemplateBank.build([[T.vectors]]), allrows, starts)
            best[vi, qi] = np.maximum.reduceat(s[:, 0], starts)

    def mean_eer(voices):
        sc = best[voices].max(axis=0)                 # (queries, utterances)
        return float(np.mean([eer(sc[q], labels[q])[0] for q in range(len(words))]))

    def group_eer(voices):
        sc = best[voices].max(axis=0)
        return {g: float(np.mean([eer(sc[q], labels[q])[0] for q, (gg, _) in enumerate(words) if gg == g]))
                for g in ("iv", "oov") if queries[g]}

    chosen, curve = [], []
    left = list(range(len(names)))
    while left:
        e, v = min((mean_eer(chosen + [v]), v) for v in left)
        chosen.append(v)
        left.remove(v)
        curve.append({"k": len(chosen), "voice": names[v], "mean_eer": e, **group_eer(chosen)})
        print(f"  {len(chosen):2d} + {names[v]:12s} mean EER {e * 100:6.2f} %  "
              f"({', '.join(f'{g} {x * 100:.2f}' for g, x in group_eer(chosen).items())})", flush=True)
    even = np.unique(np.linspace(0, len(names) - 1, 8).round().astype(int)).tolist()
    first = [names.index(v) for v in VOICES[:DEFAULT_VOICES]]
    ref = {"eight evenly spread (searched with before)": (even, mean_eer(even), group_eer(even)),
           f"the first {DEFAULT_VOICES} of VOICES (default)": (first, mean_eer(first), group_eer(first)),
           "all 28": (list(range(len(names))), mean_eer(list(range(len(names)))), group_eer(list(range(len(names)))))}
    for label, (_, e, ge) in ref.items():
        print(f"{label}: mean EER {e * 100:.2f} % ({', '.join(f'{g} {x * 100:.2f}' for g, x in ge.items())})")
    per_template = float(np.median(cost)) * 1000
    print(f"one more template: {per_template:.1f} ms (front end and head of a rendering, median)")
    out = {"model_id": model.model_id, "space": space.name, "utterances": len(utts), "queries": queries,
           "voices": names, "greedy": curve, "template_ms": per_template,
           "reference": {k: {"voices": [names[i] for i in v[0]], "mean_eer": v[1], **v[2]} for k, v in ref.items()}}
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))
    return 0


_TIMED = r"""
import sys, time, json
t0 = time.perf_counter()
from kws.search.archive import ArchiveIndex
from kws.search.fusion import PairedIndex, is_pair, query_templates
from kws.search.terms import templates_from_text
ix = PairedIndex(sys.argv[1]) if is_pair(sys.argv[1]) else ArchiveIndex(sys.argv[1])
t1 = time.perf_counter()
ts = query_templates(ix, lambda s: templates_from_text(sys.argv[2], space=s))
t2 = time.perf_counter()
ix.query(ts, top=10)
t3 = time.perf_counter()
n = sum(map(len, ts)) if isinstance(ix, PairedIndex) else len(ts)
print(json.dumps({"open_s": t1 - t0, "templates_s": t2 - t1, "search_s": t3 - t2, "templates": n}))
"""


def start(args) -> int:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    if args.bytecode is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(args.bytecode.resolve())
    # once, so that the term's phonemes and renderings are in the render cache
    subprocess.run([sys.executable, "-c", _TIMED, str(args.index), args.term], check=True, env=env,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "kws", "search", "query", str(args.index), args.term, "--top", "1"],
                   check=True, env=env, capture_output=True)      # (and the command's bytecode, if kept)
    runs, cli, cpu = [], [], []
    for _ in range(args.runs):
        r = subprocess.run([sys.executable, "-c", _TIMED, str(args.index), args.term], check=True, env=env,
                           capture_output=True, text=True)
        runs.append(json.loads(r.stdout.splitlines()[-1]))
        t0, u0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        r = subprocess.run([sys.executable, "-m", "kws", "search", "query", str(args.index), args.term, "--top", "1"],
                           check=True, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        u1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(u1.ru_utime - u0.ru_utime + u1.ru_stime - u0.ru_stime)
        line = next(x for x in r.stdout.splitlines() if "search" in x and "templates" in x)
        search_ms = float(line.split("search ")[1].split(" ms")[0])
        cli.append(wall - search_ms / 1000)
    med = {k: float(np.median([r[k] for r in runs])) for k in ("open_s", "templates_s", "search_s")}
    print(f"'{args.term}' rendered before, {runs[0]['templates']} templates, median of {args.runs} fresh processes: "
          f"templates {med['templates_s'] * 1000:.0f} ms after the index is open (open {med['open_s'] * 1000:.0f} ms, "
          f"imports included); the command until its search starts {np.median(cli) * 1000:.0f} ms "
          f"(the whole command's CPU time {np.median(cpu) * 1000:.0f} ms, its search included); "
          f"search {med['search_s'] * 1000:.0f} ms"
          f"{'' if args.bytecode is None else ' (bytecode kept in ' + str(args.bytecode) + ')'}")
    if args.out:
        args.out.write_text(json.dumps({"term": args.term, "runs": runs, "cli_until_search_s": cli, "median": med,
                                        "cli_median_s": float(np.median(cli)), "cli_cpu_s": cpu,
                                        "cli_cpu_median_s": float(np.median(cpu))}, indent=1))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tune")
    t.add_argument("--data", type=Path, default=DEFAULT_DATA)
    t.add_argument("--utterances", type=int, default=300)
    t.add_argument("--max-queries", type=int, default=1000)
    t.add_argument("--vectors", default="head")
    t.add_argument("--model", default=None)
    t.add_argument("--out", type=Path, default=None)
    s = sub.add_parser("start")
    s.add_argument("--index", type=Path, required=True)
    s.add_argument("--term", default="people")
    s.add_argument("--runs", type=int, default=5)
    s.add_argument("--out", type=Path, default=None)
    s.add_argument("--bytecode", type=Path, default=None,
                   help="keep and read compiled bytecode in this folder, as an installed kws does")
    args = ap.parse_args()
    return {"tune": tune, "start": start}[args.cmd](args)


if __name__ == "__main__":
    raise SystemExit(main())
