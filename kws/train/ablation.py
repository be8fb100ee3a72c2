"""Loss ablations: the same recipe and step budget with different loss weights, then one table.

    python -m kws.train.ablation run CONFIG --out DIR [--parallel 4] [--budget-s 540] [--only a,b]
    python -m kws.train.ablation table DIR [--markdown FILE]

``run`` trains every run of :data:`RUNS` (``kws.train`` with the run's overrides, ``out=DIR/NAME``)
with up to ``--parallel`` processes sharing one GPU. Each process stops, with a checkpoint, before
``--budget-s`` seconds have passed, so the set can be finished over several commands of limited
length: a later ``run`` resumes unfinished runs and skips finished ones.

``table`` reads each run's ``log.jsonl`` and prints the validation metrics at its final step.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

# name -> (overrides, description). Same corpus, seed, batch (K x M) and steps for all.
RUNS: Dict[str, tuple] = {
    "clap+dwd": ({"alpha_clap": 0.1, "alpha_dwd": 1.0}, "the paper's weights (shipped recipe)"),
    "clap-only": ({"alpha_clap": 1.0, "alpha_dwd": 0.0}, "audio-text InfoNCE alone"),
    "dwd-only": ({"alpha_clap": 0.0, "alpha_dwd": 1.0}, "audio-audio alone (text encoder untrained)"),
    "clap0.03+dwd": ({"alpha_clap": 0.03, "alpha_dwd": 1.0}, "weight sweep"),
    "clap0.3+dwd": ({"alpha_clap": 0.3, "alpha_dwd": 1.0}, "weight sweep"),
    "clap1+dwd": ({"alpha_clap": 1.0, "alpha_dwd": 1.0}, "weight sweep"),
    "clap+dwd-text1": ({"alpha_clap": 0.1, "alpha_dwd": 1.0, "dwd_text_weight": 1.0},
                       "open question 1: DWD centroids anchored on the text (weight 1)"),
    "clap+dwd-text4": ({"alpha_clap": 0.1, "alpha_dwd": 1.0, "dwd_text_weight": 4.0},
                       "open question 1: DWD centroids anchored on the text (weight 4)"),
}

COLUMNS = [("ap_iv", "AP IV"), ("ap_oov", "AP OOV"), ("xap_iv", "text→audio AP IV"),
           ("xap_oov", "text→audio AP OOV"), ("real_ap_wakewords", "real AP wake words"),
           ("real_ap_fsdd", "real AP FSDD"), ("real_text_eer_wakewords", "text EER wake words"),
           ("real_text_acc_fsdd", "text 10-way FSDD")]


def _log(run_dir: Path) -> List[dict]:
    p = run_dir / "log.jsonl"
    if not p.exists():
        return []
    out = []
    for line in p.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def final_eval(run_dir: Path, steps: int) -> Optional[dict]:
    """The eval record at step ``steps`` (None while the run is unfinished)."""
    for rec in reversed(_log(run_dir)):
        if "eval" in rec and rec["step"] >= steps:
            return rec
    return None


def run_all(config: str, out: Path, parallel: int, budget_s: float, only: Optional[List[str]],
            extra: List[str]) -> int:
    t0 = time.time()
    with open(config) as fh:
        steps = int(json.load(fh).get("steps", 0))
    for kv in extra:
        if kv.startswith("steps="):
            steps = int(kv.split("=", 1)[1])
    if steps <= 0:
        raise SystemExit("ablation runs need a fixed step count (steps > 0) so that they compare")
    names = [n for n in RUNS if not only or n in only]
    unknown = set(only or []) - set(RUNS)
    if unknown:
        raise SystemExit(f"unknown runs: {', '.join(sorted(unknown))}; known: {', '.join(RUNS)}")
    todo = [n for n in names if final_eval(out / n, steps) is None]
    print(f"{len(names) - len(todo)} of {len(names)} runs finished; to do: {', '.join(todo) or '-'}",
          flush=True)
    procs: Dict[str, subprocess.Popen] = {}
    while todo or procs:
        while todo and len(procs) < parallel:
            left = budget_s - (time.time() - t0)
            if left < 120:
                todo = []
                break
            name = todo.pop(0)
            d = out / name
            d.mkdir(parents=True, exist_ok=True)
            overrides = [f"{k}={json.dumps(v)}" for k, v in RUNS[name][0].items()]
            cmd = [sys.executable, "-m", "kws.train", config, f"out={d}",
                   f"max_minutes={(left - 75) / 60:.2f}", *extra, *overrides]
            if (d / "last.pt").exists():
                cmd.append("--resume")
            print("start", name, " ".join(cmd[3:]), flush=True)
            procs[name] = subprocess.Popen(cmd, stdout=open(d / "stdout.log", "a"),
                                           stderr=subprocess.STDOUT)
        time.sleep(2)
        for name, p in list(procs.items()):
            if p.poll() is not None:
                done = final_eval(out / name, steps) is not None
                print(f"{name}: exit {p.returncode}, {'finished' if done else 'unfinished'}, "
                      f"{(time.time() - t0) / 60:.1f} min", flush=True)
                del procs[name]
    unfinished = [n for n in names if final_eval(out / n, steps) is None]
    print(f"unfinished: {', '.join(unfinished) or 'none'}", flush=True)
    return 0


def table(out: Path, steps: Optional[int] = None) -> str:
    rows = []
    head = "| run | α CLAP | α DWD | text anchor | steps | " + " | ".join(c for _, c in COLUMNS) + " |"
    rows.append(head)
    rows.append("|" + "---|" * (5 + len(COLUMNS)))
    for name, (ov, _) in RUNS.items():
        log = _log(out / name)
        evals = [r for r in log if "eval" in r]
        if not evals:
            continue
        rec = evals[-1]
        if steps is not None and rec["step"] < steps:
            continue
        cells = []
        for key, _ in COLUMNS:
            v = rec["eval"].get(key)
            cells.append("—" if v is None else f"{100 * v:.1f}")
        rows.append(f"| {name} | {ov.get('alpha_clap', 0.1)} | {ov.get('alpha_dwd', 1.0)} | "
                    f"{ov.get('dwd_text_weight', 0.0)} | {rec['step']} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kws.train.ablation", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train the ablation runs (resumable)")
    r.add_argument("config")
    r.add_argument("--out", required=True)
    r.add_argument("--parallel", type=int, default=4)
    r.add_argument("--budget-s", type=float, default=540)
    r.add_argument("--only", default="", help="comma-separated run names")
    r.add_argument("overrides", nargs="*", help="key=value for every run (e.g. steps=1200)")
    t = sub.add_parser("table", help="markdown table of finished runs")
    t.add_argument("out")
    t.add_argument("--steps", type=int, default=None, help="only runs that reached this step")
    t.add_argument("--markdown", default=None, help="also write the table to this file")
    args, rest = ap.parse_known_args(argv)   # key=value may also follow the options
    bad = [r for r in rest if "=" not in r or r.startswith("-") or args.cmd != "run"]
    if bad:
        ap.error(f"unrecognized arguments: {' '.join(bad)}")
    if args.cmd == "run":
        only = [s for s in args.only.split(",") if s] or None
        return run_all(args.config, Path(args.out), args.parallel, args.budget_s, only,
                       args.overrides + rest)
    text = table(Path(args.out), args.steps)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
