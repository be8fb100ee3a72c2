"""Where the streaming detector's time goes, and what one audio-encoder call costs.

    python benchmarks/profile_detector.py --data ../shared/data

1. cProfile over 60 s of held-out read speech streamed in 50 ms chunks (default DetectorConfig,
   10 text keywords, one onnxruntime thread): share of the time in onnxruntime, the log-mel, the
   VAD and everything else.
2. CPU time of one int8 audio-encoder call at 2 frames (nearly all fixed cost) and at the
   detector's window lengths.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("KWS_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kws import Detector, DetectorConfig  # noqa: E402
from kws.bundle import Bundle, frames_for_seconds  # noqa: E402
from kws.corpus.real import DEFAULT_DATA, WAKEWORDS, read_speech  # noqa: E402
from kws.corpus.vocab import read_list  # noqa: E402

# (label, where the time is counted: a function's cumulative time, by file and name)
PARTS = [("onnxruntime", "onnxruntime/capi/onnxruntime_inference_collection.py", "run"),
         ("log-mel", "kws/features.py", "push"),
         ("VAD", "kws/vad.py", "push")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    speech = np.concatenate(read_speech(args.data, args.seconds, random.Random(3), half="b"))
    speech = speech[: int(args.seconds * 16000)]
    bundle = Bundle.load()
    det = Detector.from_texts(list(WAKEWORDS) + read_list("oov")[:7], bundle=bundle)
    prof = cProfile.Profile()
    prof.enable()
    for s in range(0, speech.size, 800):
        det.process(speech[s:s + 800])
    prof.disable()
    stats = pstats.Stats(prof).stats
    total = max(v[3] for (f, _, n), v in stats.items() if n == "process" and f.endswith("kws/detector.py"))
    print(f"{bundle.model_id}, {len(det.keywords)} keywords, windows {det.config.window_s} s, "
          f"{speech.size / 16000:.0f} s of speech: {total:.2f} s profiled\n")
    print("| part | share of the detector's time |")
    print("|---|---:|")
    counted = 0.0
    for label, file_part, name in PARTS:
        t = sum(v[3] for (f, _, n), v in stats.items() if n == name and file_part in f)
        counted += t
        print(f"| {label} | {t / total:.0%} |")
    print(f"| the rest (numpy, Python bookkeeping, matching) | {(total - counted) / total:.0%} |\n")

    sess = bundle._session("audio")
    rng = np.random.default_rng(0)
    lengths = [2] + [frames_for_seconds(w) for w in DetectorConfig().window_s]
    print("| frames in the call | CPU ms per int8 encoder call |")
    print("|---:|---:|")
    for L in lengths:
        x = rng.normal(-5, 3, size=(1, L, 128)).astype(np.float32)
        feed = {"mel": x, "lengths": np.array([L])}
        for _ in range(20):
            sess.run(None, feed)
        t0, n = time.process_time(), 400
        for _ in range(n):
            sess.run(None, feed)
        print(f"| {L} | {(time.process_time() - t0) / n * 1000:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
