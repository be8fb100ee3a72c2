"""The VAD gate in noise: webrtcvad alone against webrtcvad + the noise-floor check (kws.audio.vad).

    python benchmarks/noise_gate.py                  # 40 clips, about 10 minutes on 2 cores
    python benchmarks/noise_gate.py --clips 20 --noise-only-s 60

1. Stationary noise alone (white, pink, brown Gaussian noise at several levels): events, and
   80 ms vectors the gate let through to be scored.
2. Real wake-word clips ("computer", "jarvis" from ../shared/data/wakewords) spoken one after the
   other with 2.5 s gaps, under synthetic noise and the recorded noises of ../shared/data/noise:
   hits (an event of the clip's keyword overlapping it) and false events (any other event).

Detector: "computer" and "jarvis" typed, as ``enroll add`` makes them (Kokoro's 28 voices,
thresholds for 1 false alarm an hour; --voices N for a quicker run with fewer), the default
DetectorConfig except for the gate.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kws import Detector, DetectorConfig, KeywordSet, Model  # noqa: E402
from kws.audio.io import load_audio  # noqa: E402
from kws.corpus.real import DEFAULT_DATA, wakeword_clips  # noqa: E402
from kws.enroll.build import enroll_keyword  # noqa: E402

SR = 16000
GATES = {"webrtcvad only": None, "webrtcvad + noise floor": DetectorConfig().vad_noise_margin_db}


def coloured(kind: str, n: int, dbfs: float, rng) -> np.ndarray:
    w = rng.normal(size=n)
    if kind != "white":
        f = np.fft.rfftfreq(n, 1 / SR)
        f[0] = f[1]
        w = np.fft.irfft(np.fft.rfft(w) / (np.sqrt(f) if kind == "pink" else f), n)
    return (w / np.sqrt(np.mean(w ** 2)) * 10 ** (dbfs / 20)).astype(np.float32)


def at_level(x: np.ndarray, dbfs: float) -> np.ndarray:
    return (x / np.sqrt(np.mean(x ** 2)) * 10 ** (dbfs / 20)).astype(np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--noise-only-s", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--voices", type=int, default=None,
                    help="Kokoro voices per typed keyword (default: all 28, as enroll add)")
    args = ap.parse_args()
    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    model = Model.load()
    voices = None
    if args.voices:
        from kws.enroll import kokoro

        voices = list(kokoro.voices().names[: args.voices])
    ks = KeywordSet(model.model_id, [enroll_keyword(w, model=model, tune=False, voices=voices)
                                     for w in ("computer", "jarvis")])
    dets = {g: Detector(ks, model, DetectorConfig(vad_noise_margin_db=m)) for g, m in GATES.items()}

    print(f"## 1. Stationary noise alone, {args.noise_only_s:.0f} s each: events (80 ms vectors scored)\n")
    print("| noise | dBFS | " + " | ".join(GATES) + " |\n|---|---:|" + "---:|" * len(GATES))
    for kind in ("white", "pink", "brown"):
        for db in (-60, -40, -30, -20):
            x = coloured(kind, int(args.noise_only_s * SR), db, rng)
            cells = []
            for det in dets.values():
                n0, s0 = det.vectors, det.vectors_skipped
                ev = det.detect(x)
                cells.append(f"{len(ev)} ({(det.vectors - n0) - (det.vectors_skipped - s0)} of {det.vectors - n0})")
            print(f"| {kind} | {db} | " + " | ".join(cells) + " |", flush=True)

    clips = [c for c in wakeword_clips(args.data) if c.label in ("computer", "jarvis")]
    rng.shuffle(clips)
    clips = clips[:args.clips]
    audio = [load_audio(c.path) for c in clips]
    parts, spans, t = [], [], 0
    gap = int(2.5 * SR)
    for x, c in zip(audio, clips):
        parts += [np.zeros(gap, np.float32), x]
        spans.append((c.label, (t + gap) / SR, (t + gap + x.size) / SR))
        t += gap + x.size
    speech = np.concatenate(parts)
    level = 10 * np.log10(np.mean(np.concatenate(audio) ** 2))
    recorded = {p.stem: load_audio(p) for p in sorted((args.data / "noise").glob("*.flac"))}
    print(f"\n## 2. {len(clips)} real wake-word clips (mean level {level:.0f} dBFS) in noise: "
          f"hits / false events\n")
    print("| noise | dBFS | " + " | ".join(GATES) + " |\n|---|---:|" + "---:|" * len(GATES))
    conditions = [("none", None), ("white", -40), ("white", -30), ("white", -25), ("pink", -30), ("pink", -20),
                  ("brown", -20)] + [(k, -30) for k in recorded if "noise" not in k] + \
                 [(k, -20) for k in recorded if "noise" not in k]
    for kind, db in conditions:
        if kind == "none":
            x = speech
        elif kind in recorded:
            x = speech + at_level(np.resize(recorded[kind], speech.size), db)
        else:
            x = speech + coloured(kind, speech.size, db, rng)
        cells = []
        for det in dets.values():
            ev = det.detect(x)
            # an event is on a clip when it has the clip's keyword and overlaps it (+-0.2 s)
            on = [[e.keyword == k and e.start < b + 0.2 and e.end > a - 0.2 for k, a, b in spans] for e in ev]
            hit = sum(any(row[i] for row in on) for i in range(len(spans)))
            cells.append(f"{hit} / {sum(not any(row) for row in on)}")
        print(f"| {kind} | {'' if db is None else db} | " + " | ".join(cells) + " |", flush=True)
    print(f"\n({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
