"""One hour of audio through `python -m kws listen`'s processing loop with the real detector.

    python benchmarks/soak_listen.py                 # 60 minutes, prints RSS every 5 minutes
    python benchmarks/soak_listen.py --minutes 10

The audio: real read speech (speechocean762 sentences from ../shared/data) with the bundled
sample (which says "computer", "jarvis" and "alexa") between every few sentences, looped to the
length asked, fed in chunks of random size (1 to 4000 samples). About 1 % of the blocks are
NaN-filled, as from a glitching driver: the loop must report and skip them. The detector takes
the demo keywords. Printed: resident memory (now and peak) every 5 minutes of audio, the events,
and a check that no event was lost: the same audio fed again in one-second chunks without the bad
blocks must give the very same events (the detector's result does not depend on chunking).
tests/test_listen_soak.py runs the loop's mechanics for an hour in seconds with a stand-in
detector; this script is the real thing.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("KWS_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kws import Detector, Model  # noqa: E402
from kws.audio.io import load_audio  # noqa: E402
from kws.commands.listen import _EventSink, _listen_loop  # noqa: E402
from kws.corpus.real import DEFAULT_DATA, read_speech  # noqa: E402
from kws.enroll.demo import DEMO_KEYWORDS, demo_keywords, sample_recording  # noqa: E402

SR = 16000


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def base_audio(data: Path, speech_s: float) -> np.ndarray:
    sample = load_audio(sample_recording())
    parts = []
    for i, s in enumerate(read_speech(data, speech_s, max_files=400)):
        parts.append(s)
        if i % 8 == 7:
            parts.append(sample)
    return np.concatenate(parts)


class Collect:
    """stdout for the loop: keeps the event lines, counts the rest."""

    def __init__(self):
        self.lines = []
        self.skipped = 0

    def write(self, s):
        if "DETECTED" in s:
            self.lines.append(s.strip())
        self.skipped += s.count("warning: audio block")
        return len(s)

    def flush(self):
        pass

    def isatty(self):
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--speech-s", type=float, default=600.0, help="seconds of read speech in the loop")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    base = base_audio(args.data, args.speech_s)
    total = int(args.minutes * 60 * SR)
    print(f"audio: {base.size / SR / 60:.1f} min of read speech and the bundled sample, looped to "
          f"{args.minutes:.0f} min; demo keywords {', '.join(DEMO_KEYWORDS)}; one onnxruntime thread")
    model = Model.load()
    det = Detector(demo_keywords(model), model)
    rng = np.random.default_rng(args.seed)
    bad = np.full(800, np.nan, np.float32)
    state = {"nan": 0, "mark": 0}
    print("\n| audio min | wall s | RSS MB | peak RSS MB | events so far |\n|---:|---:|---:|---:|---:|")
    out = Collect()
    t0 = time.time()

    def blocks():
        pos = 0
        while pos < total:
            if pos >= state["mark"]:
                print(f"| {pos / SR / 60:.0f} | {time.time() - t0:.0f} | {rss_mb():.0f} | {peak_mb():.0f} | "
                      f"{len(out.lines)} |", file=sys.__stdout__, flush=True)
                state["mark"] += 300 * SR
            if rng.random() < 0.01:
                state["nan"] += 1
                yield bad
                continue
            n = int(min(rng.integers(1, 4000), total - pos))
            s = pos % base.size
            yield base[s:s + n] if s + n <= base.size else np.concatenate([base[s:], base[:s + n - base.size]])
            pos += n

    err = Collect()
    sys.stdout, sys.stderr = out, err
    try:
        args = SimpleNamespace(view=False, json=False, exec=None)
        ended = _listen_loop(det, blocks(), args, _EventSink(args))      # False: stopped by Ctrl-C
        for e in det.flush():
            out.lines.append(f"flush {e.keyword} {e.start:.2f}")
    finally:
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    wall = time.time() - t0
    print(f"| {total / SR / 60:.0f} | {wall:.0f} | {rss_mb():.0f} | {peak_mb():.0f} | {len(out.lines)} |")
    print(f"\nloop ran to the end: {ended}; {state['nan']} NaN blocks injected, {err.skipped} reported and skipped; wall {wall:.0f} s "
          f"(RTF {wall / (total / SR):.3f} on this machine, VAD on)")
    # the same audio again, one-second chunks, no bad blocks: the same events?
    det.reset()
    ref = []
    for s in range(0, total, SR):
        n = min(SR, total - s)
        a = s % base.size
        chunk = base[a:a + n] if a + n <= base.size else np.concatenate([base[a:], base[:a + n - base.size]])
        ref += [f"[{e.start:7.2f} s] DETECTED {e.keyword!r} score {e.score:.3f}" for e in det.process(chunk)]
    ref += [f"flush {e.keyword} {e.start:.2f}" for e in det.flush()]
    got = [ln.split(" (threshold")[0] for ln in out.lines]
    print(f"events: {len(got)} through the loop, {len(ref)} in the reference pass; identical: {got == ref}")
    counts = {k: sum(f"'{k}'" in ln for ln in got) for k in DEMO_KEYWORDS}
    print("events per keyword: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0 if got == ref and ended else 1


if __name__ == "__main__":
    raise SystemExit(main())
