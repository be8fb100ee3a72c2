"""How long ``enroll add`` of a new phrase takes, phase by phase, on one core.

    taskset -c 1 python benchmarks/enroll_speed.py "hey lantern"
    taskset -c 1 python benchmarks/enroll_speed.py "hey lantern" --runs 3     # the median of 3
    taskset -c 1 python benchmarks/enroll_speed.py "hey lantern" --quick      # the ten voices of --quick
    taskset -c 1 python benchmarks/enroll_speed.py --tree ../other-checkout    # another kws to compare

Each run is a fresh process (``python -m kws enroll add TEXT --store <tmp>``, run in a child
that times the phases; the child inherits the CPU affinity, so ``taskset -c 1`` holds it to one
core). Cases:

- ``cold``: a new phrase: an empty render cache (``$KWS_RENDER_CACHE`` a new folder), the
  Kokoro model already joined and the dictionary cache (kws.enroll.lexicon) made;
- ``first use``: the same, with the dictionary cache made in this run too (the first
  enrollment after installing kws);
- ``warm``: the same phrase again into another store: the typed keyword comes from the cache;
- ``detect -k``: ``python -m kws detect kws/assets/sample.wav -k TEXT`` of the phrase just
  enrolled (from the cache);
- ``Kokoro join``: joining the model's four installed parts into a new cache folder and
  checking it, the one-time step before the first rendering (``--join``).

Printed per case: CPU seconds (user + system, the child's ``getrusage``) and wall seconds in
all, then CPU seconds per phase (a phase inside another counts only in the inner one): start
(imports, the model), pronouncing (the dictionary), the Kokoro session, rendering the phrase,
rendering the words it is checked against, the background bank (loading; scoring it against the
templates), the confusions (cutting and scoring the phrase's parts and the rendered words), the
recall measured on its own renderings, the rest.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run in the child: wrap the phases, then run the command as ``python -m kws`` would.
CHILD = r'''
import json, sys, time
T0 = (time.process_time(), time.perf_counter())
phases, stack = {}, []

def timed(name_of, fn):
    def run(*a, **k):
        name = name_of(stack) if callable(name_of) else name_of
        stack.append([name, 0.0])
        c0 = time.process_time()
        try:
            return fn(*a, **k)
        finally:
            spent = time.process_time() - c0
            _, inner = stack.pop()
            phases[name] = phases.get(name, 0.0) + spent - inner
            if stack:
                stack[-1][1] += spent
    return run

from kws.commands import main
from kws.enroll import build, confusions, kokoro, lexicon, render_cache
from kws.enroll import thresholds as th
from kws.model import model as model_mod
T1 = time.process_time()
model_mod.Model.load = staticmethod(timed("start: the model", model_mod.Model.load))
if hasattr(lexicon, "_entries"):
    lexicon._entries = timed("pronouncing: the dictionary", lexicon._entries)
else:                                  # a kws that parses CMUdict at every start
    lexicon._parse = timed("pronouncing: the dictionary", lexicon._parse)
kokoro.session = timed("Kokoro session", kokoro.session)
render_cache.render = timed(lambda s: "rendering: the words checked against" if any(n == "confusions" for n, _ in s)
                            else "rendering: the phrase", render_cache.render)
th.background = timed("bank: loading", th.background)
th.keyword_peaks = timed("bank: scoring", th.keyword_peaks)
confusions.check = timed("confusions", confusions.check)
build.own_scores = timed("recall on its renderings", build.own_scores)
rc = main(sys.argv[1:])
total = time.process_time() - T0[0]
phases["start: imports"] = T1 - T0[0]
phases["rest"] = total - sum(phases.values())
print("PHASES " + json.dumps(phases), flush=True)
sys.exit(rc)
'''


def child(args, env, root: Path, timed: bool = True):
    """(CPU seconds, wall seconds, phases or None, output) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    cmd = [sys.executable, "-c", CHILD, *args] if timed else [sys.executable, "-m", "kws", *args]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=root)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    phases = None
    for line in p.stdout.splitlines():
        if line.startswith("PHASES "):
            phases = json.loads(line[7:])
    return cpu, wall, phases, p.stdout + p.stderr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("text", nargs="?", default="hey lantern")
    ap.add_argument("--runs", type=int, default=1, help="runs of each case (the median is printed)")
    ap.add_argument("--join", action="store_true", help="also time the Kokoro model's first join")
    ap.add_argument("--show", action="store_true", help="print what enroll add printed")
    ap.add_argument("--quick", action="store_true",
                    help="enroll add --quick (the ten voices of kws.enroll.kokoro.QUICK_VOICES; default: all 28)")
    ap.add_argument("--tree", type=Path, default=ROOT,
                    help="the kws checkout to time (default: this one), e.g. another version to compare")
    args = ap.parse_args()
    root = args.tree.resolve()
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:
        cores = []
    print(f"{root}: enroll add {args.text!r}; CPU cores this process may use: {cores or '?'}; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    env0 = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    from kws.enroll.kokoro import cache_dir

    user_cache = cache_dir()
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="kws-enroll-speed-") as tmp:
        tmp = Path(tmp)
        for r in range(args.runs):
            renders = tmp / f"renders-{r}"
            # first use: a cache folder of its own, holding the user's joined Kokoro model only
            fresh = tmp / f"cache-{r}"
            fresh.mkdir()
            if (user_cache / "kokoro").is_dir():
                os.symlink(user_cache / "kokoro", fresh / "kokoro")
            env = dict(env0, KWS_RENDER_CACHE=str(renders), KWS_CACHE=str(fresh))
            extra = ["--quick"] if args.quick else []
            out = child(["enroll", "add", args.text, *extra, "--store", str(tmp / f"first-{r}")], env, root)
            results.setdefault("first use", []).append(out)
            shutil.rmtree(renders)
            out = child(["enroll", "add", args.text, *extra, "--store", str(tmp / f"cold-{r}")], env, root)
            results.setdefault("cold", []).append(out)
            if args.show and r == 0:
                print(out[3])
            out = child(["enroll", "add", args.text, *extra, "--store", str(tmp / f"warm-{r}")], env, root)
            results.setdefault("warm", []).append(out)
            out = child(["--store", str(tmp / f"cold-{r}"), "detect", "kws/assets/sample.wav", "-k", args.text],
                        env, root, timed=False)
            results.setdefault("detect -k", []).append(out)
            if args.join:
                env_j = dict(env0, KWS_CACHE=str(tmp / f"join-{r}"))
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.perf_counter()
                subprocess.run([sys.executable, "-c", "from kws.enroll import kokoro; kokoro.model_path()"],
                               env=env_j, check=True, cwd=root)
                wall = time.perf_counter() - t
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                results.setdefault("Kokoro join", []).append((cpu, wall, None, ""))
                shutil.rmtree(tmp / f"join-{r}")
    print("\n| case | CPU s | wall s |")
    print("|---|---|---|")
    for case, runs in results.items():
        print(f"| {case} | {statistics.median(x[0] for x in runs):.1f} | {statistics.median(x[1] for x in runs):.1f} |")
    names: list = []
    for case in ("first use", "cold", "warm"):
        for x in results.get(case, []):
            names += [n for n in (x[2] or {}) if n not in names]
    order = ["start: imports", "start: the model", "pronouncing: the dictionary", "Kokoro session",
             "rendering: the phrase", "rendering: the words checked against", "bank: loading", "bank: scoring",
             "confusions", "recall on its renderings", "rest"]
    names = [n for n in order if n in names] + [n for n in names if n not in order]
    print("\nCPU seconds per phase (median):\n")
    print("| phase | first use | cold | warm |")
    print("|---|---|---|---|")
    for n in names:
        cells = []
        for case in ("first use", "cold", "warm"):
            v = [(x[2] or {}).get(n, 0.0) for x in results.get(case, [])]
            cells.append(f"{statistics.median(v):.2f}" if v else "-")
        print(f"| {n} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
