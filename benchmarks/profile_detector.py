"""Where the streaming detector's time goes, and what one audio-encoder call costs.

    python benchmarks/profile_detector.py --data ../shared/data

1. cProfile over 60 s of held-out read speech streamed in 50 ms chunks (default DetectorConfig,
   10 text keywords, one onnxruntime thread): share of the time in onnxruntime, the bundle's
   front end (log-mel or speech embedding), the VAD and everything else.
2. CPU time of one int8 audio-encoder call (Bundle.embed_frames) at 2 frames (nearly all fixed
   cost) and at the window lengths of the detector's plan (Detector.plan).
"""
from __future__ import annotations

import argparse
import cProfile
import inspect
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

from kws import Detector  # noqa: E402
from kws.bundle import Bundle  # noqa: E402
from kws.corpus.real import DEFAULT_DATA, WAKEWORDS, read_speech  # noqa: E402
from kws.corpus.vocab import read_list  # noqa: E402


def parts(det: Detector):
    """(label, file, function) whose cumulative time is counted: onnxruntime's run, the front
    end's streaming push (whichever front end the bundle names) and the VAD's push."""
    stream = type(det.frontend.stream())
    front = str(Path(inspect.getsourcefile(stream)).relative_to(Path(__file__).resolve().parents[1]))
    return [("onnxruntime", "onnxruntime/capi/onnxruntime_inference_collection.py", "run"),
            (f"front end ({det.frontend.kind}, {stream.__name__})", front, "push"),
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
    windows = ", ".join(f"{w:.2f}" for w in det.plan.seconds(det.frontend))
    print(f"{bundle.model_id}, {len(det.keywords)} keywords, windows {windows} s every "
          f"{det.plan.hop * det.frontend.hop / 16000:.2f} s, {speech.size / 16000:.0f} s of speech: "
          f"{total:.2f} s profiled\n")
    print("| part | share of the detector's time |")
    print("|---|---:|")
    counted = 0.0
    for label, file_part, name in parts(det):
        t = sum(v[3] for (f, _, n), v in stats.items() if n == name and file_part in f)
        counted += t
        print(f"| {label} | {t / total:.0%} |")
    print(f"| the rest (numpy, Python bookkeeping, matching) | {(total - counted) / total:.0%} |\n")

    # real frames of that speech, so the encoder sees what it sees while listening
    frames = det.frontend.frames(speech)
    print("| frames in the call | audio seen (s) | CPU ms per int8 encoder call |")
    print("|---:|---:|---:|")
    for L in [2] + list(det.plan.lengths):
        x = np.ascontiguousarray(frames[None, frames.shape[0] // 2: frames.shape[0] // 2 + L])
        lengths = np.array([L])
        for _ in range(20):
            bundle.embed_frames(x, lengths)
        t0, n = time.process_time(), 400
        for _ in range(n):
            bundle.embed_frames(x, lengths)
        print(f"| {L} | {det.frontend.samples(0, L)[1] / 16000:.2f} | {(time.process_time() - t0) / n * 1000:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
