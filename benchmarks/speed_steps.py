"""Detector speed, step by step, with what each step costs in accuracy.

    python benchmarks/speed_steps.py --data ../shared/data
    python benchmarks/speed_steps.py --data ../shared/data --compare OTHER_MODEL
    python benchmarks/speed_steps.py --speech-s 10 --clips 3 --max-voices 4     # a quick run

Rows go from the detector without its VAD gate to the shipped setting and then to fewer templates
a keyword, one change a row (10 typed keywords: computer, jarvis, alexa + 7 held-out words, as
``enroll add`` makes them: one template per Kokoro voice, each row's thresholds set for 1 false
alarm an hour on the model's background); with --compare, the same for another model. Measured
on one core (one onnxruntime and BLAS thread, CPU time of this process):
- RTF speech: real read speech (speechocean762, held-out half of the speakers) streamed in 50 ms chunks;
- RTF 30 % speech: the same speech with pauses of room noise (../shared/data/noise at -35 dBFS)
  so that speech fills 30 % of the stream, as a listening device hears it;
- recall: held-out wake-word clips (half 'b'), each streamed with 0.5 s of silence either side,
  counted when the detector fires the right keyword;
- FA/h: events on the read speech (none of the keywords is said) per hour.
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
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kws import Detector, DetectorConfig, KeywordSet, Model  # noqa: E402
from kws.audio.io import AudioError, load_audio  # noqa: E402
from kws.corpus.real import DEFAULT_DATA, WAKEWORDS, load_clip, read_speech, split_of, wakeword_clips  # noqa: E402
from kws.enroll.build import build_keyword  # noqa: E402
from kws.evaluate import Renders  # noqa: E402


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
    det.vectors = det.vectors_skipped = 0
    t0 = time.process_time()
    n = 0
    for s in range(0, audio.size, 800):
        n += len(det.process(audio[s:s + 800]))
    n += len(det.flush())
    return (time.process_time() - t0) / (audio.size / 16000), n


def typed(model: Model, renders: Renders, words, voices: int) -> KeywordSet:
    """The keywords as ``enroll add`` makes them with the first ``voices`` Kokoro voices."""
    return KeywordSet(model.model_id, [build_keyword(model, w, w, None, [], tune=False, progress=lambda s: None,
                                                     utterances=renders(w)[:voices]) for w in words])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--speech-s", type=float, default=300.0)
    ap.add_argument("--clips", type=int, default=40, help="wake-word clips per keyword")
    ap.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    ap.add_argument("--compare", default=None, help="another model folder: its rows follow")
    ap.add_argument("--max-voices", type=int, default=28,
                    help="at most this many Kokoro voices a keyword (28: all, as enroll add)")
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
    models = [Model.load(args.model)] + ([Model.load(args.compare)] if args.compare else [])
    full = min(28, args.max_voices)
    if full < 28:                          # render only the voices used
        from kws.enroll import kokoro

        names = kokoro.voices().names[:full]
        kokoro.default_renderings = lambda: [kokoro.Rendering(v) for v in names]
    renders = Renders(quiet=False)
    steps = []
    for m in models:
        who = "shipped model" if m is models[0] and args.model is None else m.model_id
        steps += [(f"{who}, {full} voices, no VAD", m, full, DetectorConfig(vad=False)),
                  (f"{who}, {full} voices, + VAD gate (the default)", m, full, DetectorConfig())]
        if m is models[0]:
            steps += [(f"{who}, {v} voices, VAD", m, v, DetectorConfig()) for v in (14, 7) if v < full]
    print(f"{len(words)} keywords; {speech.size / 16000:.0f} s read speech; {sparse.size / 16000:.0f} s at 30 % "
          f"speech; {len(clips)} wake-word clips; one core\n")
    print("| step | templates | RTF speech | RTF 30 % speech | vectors skipped by VAD (30 % speech) "
          "| wake-word recall | FA/h read speech |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    made = {}
    for name, model, voices, cfg in steps:
        key = (model.model_id, voices)
        if key not in made:
            made[key] = typed(model, renders, words, voices)
        det = Detector(made[key], model, cfg)
        rtf, fa = stream(det, speech)
        rtf_sparse, _ = stream(det, sparse)
        skipped = det.vectors_skipped / max(1, det.vectors)
        hit = 0
        for w, x in clips:
            ev = det.detect(np.concatenate([pad, x, pad]))
            hit += any(e.keyword == w for e in ev)
        print(f"| {name} | {det.bank.length.size} | {rtf:.4f} | {rtf_sparse:.4f} | {skipped:.0%} | "
              f"{hit / len(clips):.1%} | {fa / (speech.size / 16000 / 3600):.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
