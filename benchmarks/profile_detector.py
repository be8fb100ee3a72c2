"""Where the streaming detector's time goes, and what one 80 ms vector costs in each part.

    python benchmarks/profile_detector.py --data ../shared/data
    python benchmarks/profile_detector.py --seconds 10 --voices 3     # a quick run

1. cProfile over 60 s of held-out read speech streamed in 50 ms chunks (default DetectorConfig,
   10 typed keywords as ``enroll add`` makes them, one onnxruntime and BLAS thread): share of the
   time in onnxruntime (the speech-embedding network, and the head if the model has one), the
   front end's streaming push around it, the head's, the template matching (kws.spot.templates.Matcher),
   the VAD and everything else.
2. CPU time per vector of the front end (one backbone step: 1280 new samples), the head and the
   template matching of 1, 3 and 10 keywords (Matcher.push of one vector).
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
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kws import Detector, KeywordSet, Model  # noqa: E402
from kws.corpus.real import DEFAULT_DATA, WAKEWORDS, read_speech  # noqa: E402
from kws.corpus.vocab import read_list  # noqa: E402
from kws.enroll.build import enroll_keyword  # noqa: E402
from kws.spot.templates import Matcher, TemplateBank  # noqa: E402

# (label, part of the file name, function) whose cumulative time is counted
PARTS = [("onnxruntime (network and head)", "onnxruntime/capi/onnxruntime_inference_collection.py", "run"),
         ("front end, streaming (kws.model.backbone)", "kws/model/backbone.py", "push"),
         ("head, streaming (kws.model.head)", "kws/model/head.py", "push"),
         ("template matching (kws.spot.templates.Matcher)", "kws/spot/templates.py", "push"),
         ("VAD (kws.audio.vad)", "kws/audio/vad.py", "push")]


def per_call_ms(fn, n: int) -> float:
    for _ in range(min(20, n)):
        fn()
    t0 = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - t0) / n * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--voices", type=int, default=None,
                    help="Kokoro voices per typed keyword (default: all 28, as enroll add)")
    args = ap.parse_args()
    speech = np.concatenate(read_speech(args.data, args.seconds, random.Random(3), half="b"))
    speech = speech[: int(args.seconds * 16000)]
    model = Model.load(args.model)
    voices = None
    if args.voices:
        from kws.enroll import kokoro

        voices = list(kokoro.voices().names[: args.voices])
    ks = KeywordSet(model.model_id, [enroll_keyword(w, model=model, tune=False, voices=voices)
                                     for w in list(WAKEWORDS) + read_list("oov")[:7]])
    det = Detector(ks, model)
    prof = cProfile.Profile()
    prof.enable()
    for s in range(0, speech.size, 800):
        det.process(speech[s:s + 800])
    prof.disable()
    stats = pstats.Stats(prof).stats
    total = max(v[3] for (f, _, n), v in stats.items() if n == "process" and f.endswith("kws/spot/detector.py"))
    print(f"{model.model_id} ({'head' if model.manifest.get('head') else 'no head'}), {len(ks)} keywords, "
          f"{det.bank.length.size} templates of {det.bank.rows.shape[0]} vectors, {det.vectors} vectors of "
          f"{speech.size / 16000:.0f} s of speech: {total:.2f} s profiled\n")
    print("| part | share of the detector's time |")
    print("|---|---:|")
    counted = 0.0
    for label, file_part, name in PARTS:
        t = sum(v[3] for (f, _, n), v in stats.items() if n == name and f.endswith(file_part))
        if label.startswith("front end"):
            t -= sum(v[3] for (f, _, n), v in stats.items() if n == "run" and f.endswith(PARTS[0][1]))
            t = max(t, 0.0)                   # its own Python around the network
        counted += t
        print(f"| {label} | {t / total:.0%} |")
    print(f"| the rest (Python bookkeeping, peaks, events) | {max(0.0, total - counted) / total:.0%} |\n")

    print("| one 80 ms vector | CPU ms |")
    print("|---|---:|")
    stream = model.frontend.stream()
    stream.push(speech[:16000])
    hop = model.frontend.hop
    pos = [16000]

    def front():
        a = pos[0] % (speech.size - hop)
        stream.push(speech[a:a + hop])
        pos[0] += hop
    print(f"| front end (speech-embedding network, {hop} samples in) | {per_call_ms(front, 300):.3f} |")
    v = model.vectors(speech[: 16000 * 5])
    head = model.head.stream()
    raw = model.frontend.frames(speech[: 16000 * 5])
    print(f"| head ({'learned' if model.manifest.get('head') else 'none: unit length only'}) | "
          f"{per_call_ms(lambda: head.push(raw[:1]), 300):.3f} |")
    for n in (1, 3, 10):
        bank = TemplateBank.build(det.templates[:n], soft_max=det.bank.soft_max)
        m = Matcher(bank)
        m.push(v)
        print(f"| template matching, {n} keyword(s), {bank.length.size} templates | "
              f"{per_call_ms(lambda: m.push(v[:1]), 300):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
