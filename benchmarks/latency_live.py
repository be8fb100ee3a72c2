"""End-to-end latency of `python -m kws listen` on a virtual audio device.

    python benchmarks/latency_live.py                 # 40 planted keywords, about 3 minutes
    python benchmarks/latency_live.py --count 80 --out latency.json

Needs a PulseAudio or PipeWire server (`.ci/run` starts one) with paplay and parec, PortAudio,
and espeak-ng and/or flite. It builds a stream of keyword clips (computer / jarvis / alexa, spoken by random
espeak-ng / flite voices: not the Kokoro voices kws renders typed keywords with) with 1.5-2.5 s of
quiet noise between them, enrolls the keywords typed into a keyword store (as `enroll add` does),
loads a null sink, starts the real `python -m kws listen --json` on that store, recording the
sink's monitor as its microphone, and plays the stream into the sink. A reference recorder (parec, 10 ms latency) on the same monitor gives the wall-clock
moment each keyword's end reaches the device; latency = the event's printed wall-clock time
minus that moment. The same stream is also run offline through the detector in 20 ms blocks:
its delay (stream position at the event minus the keyword's end) is the part that no audio path
can remove.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kws.audio.io import SAMPLE_RATE, write_wav  # noqa: E402
from kws.audio.mic import NoMicrophone, null_sink  # noqa: E402

SR = SAMPLE_RATE


def build_stream(keywords, count: int, seed: int):
    """Keyword clips by random TTS voices between 1.5-2.5 s gaps of -50 dBFS noise.

    Returns the audio and, per clip, (keyword, start_s, end_s, clip); end_s is the last 10 ms
    within 40 dB of the clip's loudest (the TTS trimming margin of 30 ms is taken off).
    """
    from classic_tts import available_engines, random_render, synthesize

    engines = available_engines()
    if not engines:
        raise SystemExit("needs espeak-ng or flite (apt-get install espeak-ng flite)")
    rng = random.Random(seed)
    texts = [keywords[i % len(keywords)] for i in range(count)]
    rng.shuffle(texts)
    renders = [random_render(t, engines[i % len(engines)], rng) for i, t in enumerate(texts)]
    clips = synthesize(renders)
    nrng = np.random.default_rng(seed)
    parts, planted, pos = [], [], 0
    for text, clip in zip(texts, clips):
        if clip is None:
            continue
        gap = int(rng.uniform(1.5, 2.5) * SR)
        x = clip.astype(np.float32) / 32768.0 * 0.5
        parts += [np.zeros(gap, np.float32), x]
        planted.append((text, (pos + gap) / SR, (pos + gap + x.size) / SR - 0.03, x))
        pos += gap + x.size
    parts.append(np.zeros(3 * SR, np.float32))
    audio = np.concatenate(parts)
    audio += (0.003 * nrng.standard_normal(audio.size)).astype(np.float32)
    return audio, planted


def enroll(keywords, store: Path, voices=None):
    """The keywords typed, as `python -m kws enroll add` makes them, saved in ``store``."""
    from kws import KeywordSet, Model
    from kws.enroll.build import enroll_keyword

    model = Model.load()
    ks = KeywordSet(model.model_id, [enroll_keyword(k, model=model, tune=False, voices=voices) for k in keywords])
    ks.save(store)
    return ks


def offline(audio, planted, ks):
    """Stream the audio through the detector in 20 ms blocks: per planted clip, the delay from its
    end to the block whose processing emitted its event (None: not detected)."""
    from kws import Detector

    det = Detector(ks)                    # the keywords and settings listen uses
    block = SR // 50
    events = []
    for s in range(0, audio.size, block):
        for e in det.process(audio[s:s + block]):
            events.append((e.keyword, (s + block) / SR))
    return [_match(kw, end, events) for kw, _, end, _ in planted]


def _match(kw, end, events, before=0.3, after=1.5):
    """Delay of the first event of ``kw`` from ``end - before`` to ``end + after``."""
    for k, t in events:
        if k == kw and end - before <= t <= end + after:
            return t - end
    return None


class Reference:
    """Records the monitor with parec (10 ms latency), noting when each piece arrived (wall clock)."""

    def __init__(self, source):
        self.proc = subprocess.Popen(["parec", "-d", source, "--rate", str(SR), "--channels", "1",
                                      "--format", "float32le", "--latency-msec", "10", "--raw"],
                                     stdout=subprocess.PIPE)
        self.blocks, self.arrivals = [], []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        fd, rest = self.proc.stdout.fileno(), b""
        while True:
            data = os.read(fd, SR // 100 * 4)
            if not data:
                return
            now = time.time()
            data, rest = rest + data, b""
            cut = len(data) // 4 * 4
            data, rest = data[:cut], data[cut:]
            if data:
                self.arrivals.append(now)
                self.blocks.append(np.frombuffer(data, dtype="<f4").copy())

    def samples(self):
        return sum(b.size for b in self.blocks)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.thread.join(timeout=10)

    def wall_clock(self):
        """(audio, wall): wall[k] is when sample k reached the recorder. A block cannot arrive
        before its last sample was made, so the earliest arrival offset (arrival minus the block
        end's position) over the next second of blocks bounds each sample; taking it over later
        blocks only keeps audio the sound server dropped under load from shifting the clock."""
        audio = np.concatenate(self.blocks)
        sizes = np.array([b.size for b in self.blocks])
        ends = np.cumsum(sizes)
        off = np.array(self.arrivals) - ends / SR
        ahead = max(1, int(np.searchsorted(ends, SR)))          # blocks in the first second
        best = np.array([off[i:i + ahead].min() for i in range(off.size)])
        wall = np.repeat(best, sizes) + np.arange(audio.size) / SR
        return audio, wall


def locate(capture, clip, guess, search_s=0.6):
    """Sample index in ``capture`` where ``clip`` starts, searched around ``guess``;
    None when the match is poor (normalised correlation under 0.5)."""
    lo = max(0, guess - int(search_s * SR))
    hi = min(capture.size, guess + clip.size + int(search_s * SR))
    seg = capture[lo:hi]
    if seg.size < clip.size:
        return None
    n = 1 << int(np.ceil(np.log2(seg.size + clip.size)))
    xc = np.fft.irfft(np.fft.rfft(seg, n) * np.conj(np.fft.rfft(clip, n)), n)[: seg.size - clip.size + 1]
    k = int(np.argmax(xc))
    energy = np.sqrt(np.sum(seg[k:k + clip.size] ** 2) * np.sum(clip ** 2)) + 1e-9
    return lo + k if xc[k] / energy > 0.5 else None


def live(audio, store: Path, env, timeout):
    """Play into the null sink while `kws listen --json` (the keywords of ``store``) records its
    monitor; returns the reference capture, each of its samples' wall-clock time, the printed
    events and stderr."""
    with tempfile.TemporaryDirectory(prefix="kws-latency-") as tmp:
        wav = Path(tmp) / "stream.wav"
        write_wav(wav, audio)
        cmd = [sys.executable, "-m", "kws", "listen", "--json", "--no-view"]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, **env, "KWS_STORE": str(store)})
        err = []
        ready = threading.Event()

        def read_err():
            for line in proc.stderr:
                err.append(line)
                if line.startswith("listening on"):
                    ready.set()
        reader = threading.Thread(target=read_err, daemon=True)
        reader.start()
        if not ready.wait(timeout):
            proc.kill()
            raise SystemExit("kws listen did not start:\n" + "".join(err))
        ref = Reference(env["PULSE_SOURCE"])
        time.sleep(0.5)
        subprocess.run(["paplay", "-d", env["PULSE_SINK"], str(wav)], check=True)
        # a loaded sound server plays slower than real time: record until the whole stream is in
        need, t0 = int(2.5 * SR) + audio.size, time.monotonic()
        while ref.samples() < need and time.monotonic() - t0 < 30:
            time.sleep(0.2)
        time.sleep(1.0)
        ref.stop()
        proc.terminate()
        out = proc.stdout.read()
        proc.wait(timeout=30)
        reader.join(timeout=30)
    events = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    capture, wall = ref.wall_clock()
    return capture, wall, events, "".join(err)


def stats(xs):
    xs = np.array([x for x in xs if x is not None]) * 1000
    if xs.size == 0:
        return "-", "-", "-"
    return f"{np.median(xs):.0f}", f"{np.percentile(xs, 95):.0f}", f"{xs.max():.0f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=40, help="keyword clips to plant")
    ap.add_argument("--keywords", default="computer,jarvis,alexa")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--voices", type=int, default=None,
                    help="Kokoro voices per typed keyword (default: all 28, as enroll add)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds to wait for kws listen to start")
    ap.add_argument("--out", type=Path, help="write the per-keyword results as JSON here")
    args = ap.parse_args()
    keywords = [k.strip() for k in args.keywords.split(",") if k.strip()]
    voices = None
    if args.voices:
        from kws.enroll import kokoro

        voices = list(kokoro.voices().names[: args.voices])

    audio, planted = build_stream(keywords, args.count, args.seed)
    print(f"stream: {audio.size / SR:.1f} s, {len(planted)} keyword clips", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="kws-latency-store-") as store:
        ks = enroll(keywords, Path(store), voices)
        algo = offline(audio, planted, ks)
        try:
            with null_sink(f"kws_latency_{os.getpid()}") as env:
                capture, wall, events, err = live(audio, Path(store), env, args.timeout)
        except NoMicrophone as exc:
            raise SystemExit(f"no virtual device: {exc}")

    rows, lat, used = [], [], set()
    last = None                          # (capture index, stream time) of the last clip found
    for (kw, start, end, clip), a in zip(planted, algo):
        if last is None:                 # the first clip: anywhere in the first 20 s
            at = locate(capture, clip, 0, search_s=20.0)
        else:                            # later ones: where the stream says, give or take 3 s (15 s)
            guess = last[0] + int((start - last[1]) * SR)
            at = locate(capture, clip, guess, search_s=3.0)
            if at is None:
                at = locate(capture, clip, guess, search_s=15.0)
        if at is not None:
            last = (at, start)
        end_wall = None if at is None else wall[min(wall.size - 1, at + clip.size - int(0.03 * SR))]
        ev = None
        if end_wall is not None:
            for i, e in enumerate(events):
                if i not in used and e["keyword"] == kw and end_wall - 0.3 <= e["time"] <= end_wall + 1.5:
                    ev = i
                    used.add(i)
                    break
        d = None if ev is None else events[ev]["time"] - end_wall
        lat.append(d)
        rows.append({"keyword": kw, "capture_s": None if at is None else round(at / SR, 3), "end_s": round(end, 3), "offline_delay_s": None if a is None else round(a, 3),
                     "live_latency_s": None if d is None else round(d, 3),
                     "found_in_capture": at is not None})
    n_live = sum(d is not None for d in lat)
    n_off = sum(a is not None for a in algo)
    found = sum(r["found_in_capture"] for r in rows)
    print(f"\nkeywords planted: {len(planted)}, found in the monitor's recording {found}; detected "
          f"offline {n_off}, live {n_live}; other live events: {len(events) - len(used)}; "
          f"{len(ks)} keywords, {sum(len(k.segments) for k in ks)} templates; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print("| measure (ms) | median | 95th pct | max |\n|---|---:|---:|---:|")
    print("| live: keyword end at the device -> printed event | %s | %s | %s |" % stats(lat))
    print("| offline: the detector alone (stream position at the event) | %s | %s | %s |" % stats(algo))
    if args.out:
        args.out.write_text(json.dumps({"planted": len(planted), "events": events, "rows": rows}, indent=1))
    return 0 if n_live else 1


if __name__ == "__main__":
    sys.exit(main())
