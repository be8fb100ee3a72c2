"""Detector speed, step by step, with what each step costs in accuracy.

    git archive af1e88b kws/assets/model | tar -x -C /tmp     # the v1 teacher bundle
    python benchmarks/speed_steps.py --data ../shared/data --teacher /tmp/kws/assets/model

Rows go from the teacher (v1, BiLSTM 3 x 256) to the shipped distilled student and its settings,
one change a row (10 text keywords: computer, jarvis, alexa + 7 held-out words; each model's
thresholds calibrated as shipped). Measured on one core (one onnxruntime thread,
CPU time of this process):
- RTF speech: real read speech (speechocean762, held-out half of the speakers) streamed in 50 ms chunks;
- RTF 30 % speech: the same speech with pauses of room noise (../shared/data/noise at -35 dBFS)
  so that speech fills 30 % of the stream, as a listening device hears it;
- recall: held-out wake-word clips (half 'b'), each streamed with 0.5 s of silence either side,
  counted when the detector fires the right keyword;
- FA/h: events on the read speech (none of the keywords is said) per hour.
The windows column is what each row's detector embeds (Detector.plan, kws.windows): window_s are
window lengths on log-mel bundles and word durations to size windows for on speech-embedding ones.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("KWS_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kws import Detector, DetectorConfig  # noqa: E402
from kws.audio import AudioError, load_audio  # noqa: E402
from kws.bundle import Bundle  # noqa: E402
from kws.corpus.real import DEFAULT_DATA, WAKEWORDS, load_clip, read_speech, split_of, wakeword_clips  # noqa: E402
from kws.detector import detect_audio  # noqa: E402


def with_pauses(speech: np.ndarray, data: Path, duty: float = 0.3) -> np.ndarray:
    noise = load_audio(sorted((data / "noise").glob("*.flac"))[0])
    noise = noise / (np.sqrt(np.mean(noise ** 2)) + 1e-9) * 10 ** (-35 / 20)
    out, pos, seg = [], 0, 16000 * 3
    while pos < speech.size:
        s = speech[pos:pos + seg]
        pos += seg
        gap = int(s.size * (1 - duty) / duty)
        start = random.Random(pos).randrange(0, max(1, noise.size - gap))
        out += [s, np.resize(noise[start:], gap)]
    return np.concatenate(out).astype(np.float32)


def stream(det: Detector, audio: np.ndarray):
    det.reset()
    det.hops = det.hops_skipped = 0
    t0 = time.process_time()
    n = 0
    for s in range(0, audio.size, 800):
        n += len(det.process(audio[s:s + 800]))
    n += len(det.flush())
    return (time.process_time() - t0) / (audio.size / 16000), n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--speech-s", type=float, default=300.0)
    ap.add_argument("--clips", type=int, default=40, help="wake-word clips per keyword")
    ap.add_argument("--bundle", default=None, help="model bundle (default: the shipped one)")
    ap.add_argument("--teacher", default=None,
                    help="bundle of the model it was distilled from, for the steps before it")
    args = ap.parse_args()
    from kws.corpus.vocab import read_list

    words = list(WAKEWORDS) + read_list("oov")[:7]
    speech = np.concatenate(read_speech(args.data, args.speech_s, random.Random(3), half="b"))[: int(args.speech_s * 16000)]
    sparse = with_pauses(speech[: 16000 * 60], args.data)
    pick = random.Random(0)
    clips = []
    for w in WAKEWORDS:
        for c in pick.sample([c for c in wakeword_clips(args.data) if c.label == w and split_of(c) == "b"],
                             args.clips + 5):
            try:
                clips.append((w, load_clip(c)))
            except AudioError:
                continue
            if sum(1 for l, _ in clips if l == w) == args.clips:
                break
    pad = np.zeros(8000, np.float32)
    five, three = (0.3, 0.45, 0.6, 0.75, 0.9), (0.3, 0.6, 0.9)
    models = {"shipped": args.bundle}
    if args.teacher:
        models["teacher"] = args.teacher
    steps = []
    if args.teacher:
        steps += [
            ("teacher, fp32, 5 windows, no VAD", "teacher", "fp32", DetectorConfig(vad=False, variant="fp32", window_s=five)),
            ("teacher, int8", "teacher", "int8", DetectorConfig(vad=False, window_s=five)),
            ("teacher, int8, 3 windows (0.3/0.6/0.9 s)", "teacher", "int8", DetectorConfig(vad=False, window_s=three)),
        ]
    steps += [
        ("shipped, int8, 3 windows, no VAD", "shipped", "int8", DetectorConfig(vad=False)),
        ("shipped, + VAD gate (the default)", "shipped", "int8", DetectorConfig()),
        ("shipped, int8, 5 windows, VAD", "shipped", "int8", DetectorConfig(window_s=five)),
        ("shipped, fp32, 3 windows, VAD", "shipped", "fp32", DetectorConfig(variant="fp32")),
    ]
    bundles = {(m, v): Bundle.load(p, variant=v) for m, p in models.items() for v in ("int8", "fp32")}
    base = {k: Detector.from_texts(words, bundle=b).keywords for k, b in bundles.items()}
    for m in models:
        b = bundles[(m, "int8")]
        enc = b.manifest["encoder"]
        print(f"{m}: {b.model_id}, audio encoder BiLSTM {enc.get('audio_layers') or enc['layers']} x "
              f"{enc.get('audio_hidden') or enc['hidden']}, {enc.get('stack', 1)} frame(s) a step")
    print(f"{len(words)} keywords; {speech.size / 16000:.0f} s read speech; {sparse.size / 16000:.0f} s at 30 % "
          f"speech; {len(clips)} wake-word clips; one core\n")
    print("| step | windows (s, Detector.plan) | RTF speech | RTF 30 % speech | hops skipped by VAD (30 % speech) "
          "| wake-word recall | FA/h read speech |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, model, variant, cfg in steps:
        det = Detector(base[(model, variant)], bundles[(model, variant)], cfg)
        windows = "/".join(f"{w:.2f}" for w in det.plan.seconds(det.frontend))
        rtf, fa = stream(det, speech)
        rtf_sparse, _ = stream(det, sparse)
        skipped = det.hops_skipped / max(1, det.hops)
        hit = 0
        for w, x in clips:
            ev = detect_audio(det, np.concatenate([pad, x, pad]))
            hit += any(e.keyword == w for e in ev)
        print(f"| {name} | {windows} | {rtf:.3f} | {rtf_sparse:.3f} | {skipped:.0%} | {hit / len(clips):.1%} | "
              f"{fa / (speech.size / 16000 / 3600):.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
