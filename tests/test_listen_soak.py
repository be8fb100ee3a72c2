"""listen's processing loop for an hour of audio, and the microphone stream under callback faults.

The hour runs through the real loop (kws.cli._listen_loop) with a small stand-in detector that
keeps the real one's contract (any chunk size; refuses NaN before changing its state), so it
takes seconds; benchmarks/soak_listen.py runs the same hour with the real detector.
"""
import threading
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

from kws.cli import MAX_BAD_BLOCKS, _listen_loop
from kws.detector import Detection

SR = 16000


class CountingDetector:
    """Fires one event every ``period_s`` of audio taken; raises on NaN blocks (as Detector does)
    and, before touching its state, on every ``fail_every``-th call (an injected fault)."""

    def __init__(self, period_s: float = 7.3, fail_every: int = 0):
        self.period = int(period_s * SR)
        self.fail_every = fail_every
        self.calls = self.samples = self.emitted = self.refused = 0
        self.keywords = SimpleNamespace(names=["kw"])

    @property
    def last_scores(self):
        return {"kw": 0.5}

    def process(self, chunk):
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            self.refused += chunk.size
            raise RuntimeError("injected fault")
        if not np.all(np.isfinite(chunk)):
            raise ValueError("audio chunk contains NaN or infinite samples")
        first = self.samples // self.period + 1
        self.samples += chunk.size
        out = [Detection("kw", 0.9, 0.5, k * self.period / SR, k * self.period / SR + 0.5)
               for k in range(first, self.samples // self.period + 1)]
        self.emitted += len(out)
        return out

    def flush(self):
        return []


class Sink:
    """stdout/stderr stand-in that counts lines and keeps none (captured output would grow)."""

    def __init__(self):
        self.detected = self.warnings = 0
        self.last_start = -1.0
        self.ordered = True

    def write(self, s):
        if "DETECTED" in s:
            self.detected += 1
            start = float(s.split("]")[0].strip("[ s\n\r"))
            self.ordered &= start > self.last_start
            self.last_start = start
        self.warnings += s.count("warning: audio block")
        return len(s)

    def flush(self):
        pass

    def isatty(self):
        return False


def test_one_hour_of_listen_loop_memory_flat_no_event_lost(monkeypatch):
    rng = np.random.default_rng(0)
    noise = (rng.normal(size=SR * 10) * 0.01).astype(np.float32)
    bad = np.full(800, np.nan, np.float32)
    total = 3600 * SR
    state = {"good": 0, "nan": 0, "mem": []}

    def blocks():
        pos = 0
        next_mark = 0
        while pos < total:
            if pos >= next_mark:
                state["mem"].append(tracemalloc.get_traced_memory()[0])
                next_mark += 300 * SR                       # every 5 minutes of audio
            if rng.random() < 0.01:                         # a glitching driver's block
                state["nan"] += 1
                yield bad
                continue
            n = int(min(rng.integers(1, 4000), total - pos))
            s = int(rng.integers(0, noise.size - n))
            pos += n
            state["good"] += n
            yield noise[s:s + n]

    det = CountingDetector(fail_every=997)
    out, err = Sink(), Sink()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    tracemalloc.start()
    try:
        rc = _listen_loop(det, blocks(), SimpleNamespace(view=True))
    finally:
        tracemalloc.stop()
    monkeypatch.undo()
    assert rc == 0
    # every good block was processed, but those the injected faults refused
    assert state["good"] == total and det.samples + det.refused == total and det.refused < total / 500
    assert det.emitted == det.samples // det.period == out.detected   # every event printed, in order
    assert out.ordered
    injected = det.calls // det.fail_every
    assert state["nan"] > 100 and injected > 20
    assert err.warnings == state["nan"] + injected                    # every skipped block reported
    mem = np.array(state["mem"])
    assert len(mem) == 12
    assert mem[2:].max() - mem[2] < 64 * 1024, mem                    # flat after 10 minutes


def test_listen_loop_gives_up_after_many_failing_blocks_in_a_row(capsys):
    det = CountingDetector(fail_every=1)
    blocks = (np.zeros(800, np.float32) for _ in range(10 * MAX_BAD_BLOCKS))
    assert _listen_loop(det, blocks, SimpleNamespace(view=False)) == 1
    err = capsys.readouterr().err
    assert err.count("skipped: injected fault") == MAX_BAD_BLOCKS
    assert f"error: {MAX_BAD_BLOCKS} audio blocks in a row failed" in err


class FakeSoundDevice:
    """sounddevice as far as kws.mic uses it. Like the real one, an exception escaping the
    callback aborts the stream (PortAudio's paAbort): nothing more is delivered."""

    def __init__(self, plan):
        self.plan = plan                  # list of (indata, status) handed to the callback
        self.delivered = 0

    def query_devices(self, device=None, kind=None):
        return {"name": "fake", "max_input_channels": 1, "default_samplerate": SR}

    def InputStream(self, callback, **kw):
        fake = self

        class Stream:
            active = False

            def __enter__(self):
                self.active = True
                self.thread = threading.Thread(target=self.run, daemon=True)
                self.thread.start()
                return self

            def run(self):
                try:
                    for indata, status in fake.plan:
                        callback(indata, len(indata), None, status)
                        fake.delivered += 1
                        threading.Event().wait(0.0005)
                except Exception:
                    pass                  # aborted, as PortAudio does
                self.active = False

            def __exit__(self, *a):
                self.active = False

        return Stream()


class BadStatus:
    @property
    def input_overflow(self):
        raise RuntimeError("driver status unreadable")


def test_microphone_stream_survives_callback_exceptions(monkeypatch):
    import kws.mic as mic

    ok = SimpleNamespace(input_overflow=False)
    plan, good, faults = [], 0, 0
    for i in range(400):
        if i % 37 == 5:
            plan.append((np.zeros(800, np.float32), ok))        # 1-D: indata[:, 0] raises
            faults += 1
        elif i % 53 == 7:
            plan.append((np.zeros((800, 1), np.float32), BadStatus()))
            faults += 1
        else:
            plan.append((np.full((800, 1), i, np.float32), ok))
            good += 1
    sd = FakeSoundDevice(plan)
    monkeypatch.setattr(mic, "_sd", lambda: sd)
    monkeypatch.setattr(mic, "STALL_S", 0.5)
    warns, got, ended = [], [], []

    def consume():
        try:
            for b in mic.stream(overflow_warn=warns.append):
                got.append(b)
        except mic.NoMicrophone as exc:
            ended.append(str(exc))

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), f"the stream hung after {sd.delivered} of {len(plan)} blocks"
    assert sd.delivered == len(plan)
    assert sum(b.size for b in got) == good * 800
    values = [int(b[0]) for b in got]
    assert values == sorted(values) and len(set(values)) == good           # in order, none lost
    dropped = sum(int(w.split()[1]) for w in warns if "dropped:" in w)
    assert dropped == faults and any("IndexError" in w for w in warns)
    assert ended and "no audio from the input device" in ended[0]
