"""Streaming detector speed: real-time factor on one core, latency, memory over a long stream.

    python benchmarks/rtf.py                      # table for 1/3/10 typed keywords, VAD on/off
    python benchmarks/rtf.py --long-minutes 60    # memory over an hour of streamed audio
    python benchmarks/rtf.py --seconds 10 --voices 3     # a quick run (fewer templates: faster)

Audio: real read speech (speechocean762 sentences from ../shared/data, with pauses as recorded)
fed in 50 ms chunks. Keywords: typed, as ``enroll add`` makes them (Kokoro renders each in its 28
voices, one template each; threshold for 1 false alarm an hour), rendered before timing starts.
RTF = processing time / audio duration (CPU time of this process: the front end, the head, the
template matching and the VAD), onnxruntime and numpy's BLAS limited to one thread. Latency =
stream position when an event is emitted minus the event's end time (the keyword's end), on the
bundled sample with the demo keywords.
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
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kws import Detector, DetectorConfig, KeywordSet, Model  # noqa: E402
from kws.audio.io import load_audio  # noqa: E402
from kws.corpus.real import DEFAULT_DATA, read_speech  # noqa: E402
from kws.enroll.build import enroll_keyword  # noqa: E402
from kws.enroll.demo import demo_keywords, sample_recording  # noqa: E402

COUNTS = (1, 3, 10)


def speech(data: Path, seconds: float) -> np.ndarray:
    return np.concatenate(read_speech(data, seconds, max_files=400))[: int(seconds * 16000)]


def words(n: int):
    from kws.corpus.vocab import read_list

    base = ["computer", "jarvis", "alexa"]
    return (base + read_list("oov")[: max(0, n - 3)])[:n]


def typed_keywords(model: Model, n: int, voices=None) -> KeywordSet:
    """``n`` typed keywords as ``enroll add`` makes them (no recall report)."""
    ks = KeywordSet(model.model_id)
    for w in words(n):
        ks.add(enroll_keyword(w, model=model, tune=False, voices=voices, quiet=False))
    return ks


def run(det: Detector, audio: np.ndarray, chunk: int = 800):
    det.reset()
    det.vectors = det.vectors_skipped = 0
    t0 = time.process_time()
    lat = []
    for s in range(0, audio.size, chunk):
        for e in det.process(audio[s:s + chunk]):
            lat.append((s + chunk) / 16000 - e.end)
    det.flush()
    dt = time.process_time() - t0
    return dt / (audio.size / 16000), det.vectors_skipped / max(1, det.vectors), lat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--voices", type=int, default=None,
                    help="Kokoro voices per typed keyword (default: all 28, as enroll add)")
    ap.add_argument("--long-minutes", type=float, default=0.0)
    args = ap.parse_args()
    model = Model.load(args.model)
    audio = speech(args.data, args.seconds)
    voices = None
    if args.voices:
        from kws.enroll import kokoro

        voices = list(kokoro.voices().names[: args.voices])
    ks = typed_keywords(model, max(COUNTS), voices)
    print(f"model {model.model_id}; audio: {audio.size / 16000:.0f} s of read speech; one thread; 50 ms chunks\n")
    print("| keywords | templates | VAD | RTF (CPU time / audio time) | vectors skipped by VAD |")
    print("|---:|---:|---|---:|---:|")
    for n in COUNTS:
        sub = KeywordSet(model.model_id, list(ks)[:n])
        for vad in (True, False):
            det = Detector(sub, model, DetectorConfig(vad=vad))
            rtf, skipped, _ = run(det, audio)
            print(f"| {n} | {det.bank.length.size} | {'on' if vad else 'off'} | {rtf:.4f} | {skipped:.0%} |",
                  flush=True)
    # latency on the sample, whose keywords are detected
    sample = load_audio(sample_recording())
    det = Detector(demo_keywords(model), model)
    _, _, lat = run(det, sample)
    print(f"\nlatency after the keyword's end (bundled sample, demo keywords, {len(lat)} events): "
          + ", ".join(f"{x * 1000:.0f} ms" for x in lat))
    if args.long_minutes:
        det = Detector(ks, model)
        rss = []
        n = int(args.long_minutes * 60 / (audio.size / 16000)) + 1
        for i in range(n):
            run(det, audio) if i == 0 else [det.process(audio[s:s + 800]) for s in range(0, audio.size, 800)]
            rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(f"\npeak RSS over {n * audio.size / 16000 / 60:.0f} min streamed ({len(ks)} keywords): first pass "
              f"{rss[0]:.0f} MB, last pass {rss[-1]:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
