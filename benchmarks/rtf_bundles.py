"""Detector cost of several models side by side, on the same audio and keywords.

    python benchmarks/rtf_bundles.py [MODEL ...] [--data ../shared/data] [--seconds 60] [--voices N]

MODEL: model folders (kws.model.model; default: the shipped one). 10 typed keywords, as ``enroll add``
makes them for each model (Kokoro's renderings made once, before timing; thresholds for 1 false
alarm an hour), held-out read speech (speechocean762, half 'b'), 0.1 s chunks, one onnxruntime
and BLAS thread; CPU time over audio time, with the VAD gate on and off. Prints one line per
model and setting.
"""
import argparse
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("KWS_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kws.corpus.real import DEFAULT_DATA, read_speech  # noqa: E402
from kws.evaluate import Renders, keywords  # noqa: E402
from kws.model.model import Model  # noqa: E402
from kws.spot.detector import Detector, DetectorConfig  # noqa: E402

WORDS = ["computer", "jarvis", "alexa", "hey snowboy", "turn on the light", "stop", "music",
         "weather", "kitchen", "elephant"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--voices", type=int, default=None,
                    help="Kokoro voices per keyword (default: all 28, as enroll add)")
    args = ap.parse_args()
    x = np.concatenate(read_speech(args.data, args.seconds, random.Random(0), half="b"))
    if args.voices:
        from kws.enroll import kokoro

        names = kokoro.voices().names[: args.voices]
        kokoro.default_renderings = lambda: [kokoro.Rendering(v) for v in names]
    renders = Renders(quiet=False)
    for path in args.models or [None]:
        m = Model.load(path)
        ks = keywords(m, renders, WORDS)
        for vad in (True, False):
            d = Detector(ks, m, DetectorConfig(vad=vad))
            d.reset()
            t = time.process_time()
            for s in range(0, x.size, 1600):
                d.process(x[s:s + 1600])
            dt = time.process_time() - t
            print(f"{m.model_id}  vad={'on ' if vad else 'off'}  RTF {dt / (x.size / 16000):.4f}  "
                  f"{d.bank.length.size} templates ({d.bank.rows.shape[0]} vectors)  vectors {d.vectors} "
                  f"(skipped {d.vectors_skipped})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
