"""Streaming detector speed: real-time factor on one core, latency, memory over a long stream.

    python benchmarks/rtf.py                      # table for 1/10/100 keywords, VAD on/off, int8/fp32
    python benchmarks/rtf.py --long-minutes 60    # memory over an hour of streamed audio

Audio: real read speech (speechocean762 sentences from ../shared/data, with pauses as recorded)
fed in 50 ms chunks. RTF = processing time / audio duration, onnxruntime limited to one thread.
Latency = stream position when an event is emitted minus the event's end time (the keyword's end).
The windows column is what the detector embeds (Detector.plan, kws.windows; on speech-embedding
bundles each keyword gets lengths for its expected duration).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("KWS_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kws import Detector, DetectorConfig  # noqa: E402
from kws.audio import load_audio  # noqa: E402
from kws.bundle import Bundle  # noqa: E402
from kws.demo import sample_recording  # noqa: E402
from kws.corpus.real import DEFAULT_DATA, read_speech  # noqa: E402


def speech(data: Path, seconds: float) -> np.ndarray:
    return np.concatenate(read_speech(data, seconds, max_files=400))[: int(seconds * 16000)]


def words(n: int):
    from kws.corpus.vocab import read_list

    base = ["computer", "jarvis", "alexa"]
    return (base + read_list("oov")[: max(0, n - 3)])[:n]


def run(det: Detector, audio: np.ndarray, chunk: int = 800):
    det.reset()
    det.hops = det.hops_skipped = 0
    t0 = time.process_time()
    lat = []
    for s in range(0, audio.size, chunk):
        for e in det.process(audio[s:s + chunk]):
            lat.append((s + chunk) / 16000 - e.end)
    det.flush()
    dt = time.process_time() - t0
    return dt / (audio.size / 16000), det.hops_skipped / max(1, det.hops), lat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--long-minutes", type=float, default=0.0)
    args = ap.parse_args()
    audio = speech(args.data, args.seconds)
    print(f"audio: {audio.size / 16000:.0f} s of read speech; one onnxruntime thread; 50 ms chunks\n")
    print("| keywords | model | VAD | windows (s, Detector.plan) | RTF (CPU time / audio time) | hops skipped by VAD |")
    print("|---:|---|---|---|---:|---:|")
    for variant in ("int8", "fp32"):
        bundle = Bundle.load(variant=variant)
        for n in (1, 10, 100):
            for vad in (True, False):
                det = Detector.from_texts(words(n), threshold=0.99, bundle=bundle,
                                          config=DetectorConfig(vad=vad, variant=variant))
                rtf, skipped, _ = run(det, audio)
                windows = "/".join(f"{w:.2f}" for w in det.plan.seconds(det.frontend))
                print(f"| {n} | {variant} | {'on' if vad else 'off'} | {windows} | {rtf:.3f} | {skipped:.0%} |",
                      flush=True)
    # latency on the sample, whose keywords are detected
    sample = load_audio(sample_recording())
    det = Detector.from_texts(["computer", "jarvis", "alexa"])
    _, _, lat = run(det, sample)
    print(f"\nlatency after the keyword's end (bundled sample, {len(lat)} events): "
          + ", ".join(f"{x * 1000:.0f} ms" for x in lat))
    if args.long_minutes:
        det = Detector.from_texts(words(10))
        rss = []
        n = int(args.long_minutes * 60 / (audio.size / 16000)) + 1
        for i in range(n):
            run(det, audio) if i == 0 else [det.process(audio[s:s + 800]) for s in range(0, audio.size, 800)]
            rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(f"\npeak RSS over {n * audio.size / 16000 / 60:.0f} min streamed: first pass {rss[0]:.0f} MB, "
              f"last pass {rss[-1]:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
