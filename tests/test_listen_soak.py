"""listen's processing loop for an hour of audio, and the microphone stream under callback faults.

The hour runs through the real loop (kws.commands.listen._listen_loop) with a small stand-in detector that
keeps the real one's contract (any chunk size; refuses NaN before changing its state), so it
takes seconds; benchmarks/soak_listen.py runs the same hour with the real detector.
"""
import tracemalloc
from types import SimpleNamespace

import numpy as np
import pytest

from kws.commands.listen import MAX_BAD_BLOCKS, _EventSink, _listen_loop
from kws.spot.detector import Detection

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
        args = SimpleNamespace(view=True, json=False, exec=None)
        ended = _listen_loop(det, blocks(), args, _EventSink(args))
    finally:
        tracemalloc.stop()
    monkeypatch.undo()
    assert ended is True
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
    args = SimpleNamespace(view=False, json=False, exec=None)
    with pytest.raises(ValueError, match=f"{MAX_BAD_BLOCKS} audio blocks in a row failed"):
        _listen_loop(det, blocks, args, _EventSink(args))
    err = capsys.readouterr().err
    assert err.count("skipped: injected fault") == MAX_BAD_BLOCKS


class BadStatus:
    @property
    def input_overflow(self):
        raise RuntimeError("driver status unreadable")


def test_microphone_callback_never_raises():
    """An exception in PortAudio's callback would stop the stream: the callback counts the block
    as dropped instead, and good blocks still arrive in order."""
    from kws.audio.mic import Microphone

    m = Microphone()
    ok = SimpleNamespace(input_overflow=False)
    m._callback(np.full((800, 1), 1.0, np.float32), 800, None, ok)
    m._callback(np.zeros(800, np.float32), 800, None, ok)               # 1-D: indexing fails
    m._callback(np.zeros((800, 1), np.float32), 800, None, BadStatus())
    m._callback(np.full((800, 1), 2.0, np.float32), 800, None, ok)
    got = [m._q.get_nowait() for _ in range(m._q.qsize())]
    assert [float(b[0]) for b in got] == [1.0, 2.0]
    assert m.overflows == 2 and "RuntimeError" in m.callback_errors[-1]
