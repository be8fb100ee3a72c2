"""Detector cost of several bundles side by side, on the same audio and keywords.

    python benchmarks/rtf_bundles.py BUNDLE [BUNDLE ...] [--data ../shared/data] [--seconds 60]

10 typed keywords (text vectors only, so that no TTS time is counted), held-out read speech
(speechocean762, half 'b'), 0.1 s chunks, one onnxruntime thread; CPU time over audio time, with
the VAD gate on and off. Prints one line per bundle and setting.
"""
import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kws.bundle import Bundle  # noqa: E402
from kws.corpus.real import DEFAULT_DATA, read_speech  # noqa: E402
from kws.detector import Detector, DetectorConfig  # noqa: E402

WORDS = ["computer", "jarvis", "alexa", "hey snowboy", "turn on the light", "stop", "music",
         "weather", "kitchen", "elephant"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundles", nargs="+", type=Path)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    x = np.concatenate(read_speech(args.data, args.seconds, random.Random(0), half="b"))
    for path in args.bundles:
        b = Bundle.load(path, "int8")
        for vad in (True, False):
            d = Detector.from_texts(WORDS, bundle=b, config=DetectorConfig(vad=vad), tts=False)
            d.reset()
            t = time.process_time()
            for s in range(0, x.size, 1600):
                d.process(x[s:s + 1600])
            dt = time.process_time() - t
            print(f"{b.model_id}  vad={'on ' if vad else 'off'}  RTF {dt / (x.size / 16000):.4f}  "
                  f"window lengths {d.plan.lengths}  hops {d.hops} (skipped {d.hops_skipped})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
