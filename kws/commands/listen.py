"""python -m kws listen: live detection on the microphone (the bundled sample when there is none).

Detections print as lines of text or JSON (``--json``) and can run a command (``--exec``). Devices,
events and latency: docs/live.md.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from kws.commands.detect import describe, detector_arguments, detector_from_args
from kws.enroll.demo import sample_recording

MAX_BAD_BLOCKS = 50        # listen gives up after this many failing audio blocks in a row


def add_parser(sub) -> None:
    p = sub.add_parser("listen", help="live microphone detection (the bundled sample when no microphone)",
                       description="Live detection on the microphone; with none, on the bundled sample "
                                   "recording. Ctrl-C stops it.")
    detector_arguments(p)
    p.add_argument("--device", help="input device: index or part of its name (see --list-devices)")
    p.add_argument("--list-devices", action="store_true", help="list the input devices and exit")
    p.add_argument("--json", action="store_true",
                   help="one JSON object per detection on stdout (keyword, score, threshold, start, end, "
                        "stream_time, time)")
    p.add_argument("--exec", metavar="CMD", help="run this shell command on each detection "
                   "(environment: KWS_KEYWORD, KWS_SCORE, KWS_TIME, ..., KWS_EVENT as JSON)")
    p.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=True,
                   help="with no microphone, play the sample at real-time speed")
    p.add_argument("--view", action=argparse.BooleanOptionalAction, default=True, help="live top scores")
    p.set_defaults(run=run)


def run(args) -> int:
    from kws.audio.mic import MicConfig, Microphone, NoMicrophone, describe_devices, list_input_devices

    if args.list_devices:
        devices = list_input_devices()      # NoMicrophone: "error: ...", status 2
        print(describe_devices(devices) if devices else "no input devices", flush=True)
        return 0
    mic = Microphone(MicConfig(device=args.device))
    try:
        mic.open()               # before the model loads: a wrong --device fails at once
    except NoMicrophone as exc:
        if args.device is not None:
            raise
        mic = None
        fallback = str(exc)
    try:
        from kws.model.model import Model

        det = detector_from_args(args, Model.load(args.model))
    except BaseException:
        if mic is not None:
            mic.close()
        raise
    sink = _EventSink(args)
    print(thresholds_line(det), file=sys.stderr, flush=True)
    if mic is None:
        print(f"{fallback}\nNo microphone here: running on the bundled sample recording instead "
              f"({sample_recording().name}){', in real time' if args.realtime else ''}.", file=sys.stderr)
        return _listen_file(det, sample_recording(), args, sink)
    info = mic.info
    rate = "" if mic.samplerate == 16000 else ", converted to 16 kHz"
    print(f"listening on {info['name']!r} ({mic.samplerate} Hz{rate}) for: "
          f"{', '.join(det.keywords.names)} - Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        _listen_loop(det, mic, args, sink)
    finally:
        mic.close()
        sink.close()
        _keep_room(det)
    print(f"stopped: {mic.summary()}, {_heard(sink.count)}", file=sys.stderr, flush=True)
    return 0


def thresholds_line(det) -> str:
    """The keywords and thresholds in use, and whether they learn the room."""
    line = describe(det, lead="keywords:")
    if det.room is None:
        return line + "; thresholds as enrolled (--no-adapt or --threshold)"
    moved = [n for n, t in det.thresholds.items() if abs(t - det.bank_thresholds[n]) > 5e-4]
    where = f", kept in {det.room_path}" if det.room_path is not None else ""
    learnt = f" ({len(moved)} moved from the enrolled one so far)" if moved else ""
    return line + f"; thresholds learn the room{where}{learnt}"


def _heard(count: int) -> str:
    return f"{count} detection(s)" if count else "no keyword heard"


def _keep_room(det) -> None:
    try:
        det.save_room()
    except OSError as exc:
        print(f"warning: learnt thresholds not saved: {exc}", file=sys.stderr)


def _listen_file(det, path: Path, args, sink: "_EventSink") -> int:
    from kws.audio.io import load_audio

    audio = load_audio(path)
    block = 800

    def blocks():
        for s in range(0, audio.size, block):
            if args.realtime:
                time.sleep(block / 16000)
            yield audio[s:s + block]
    try:
        if _listen_loop(det, blocks(), args, sink):
            for e in det.flush():
                sink.emit(e, audio.size / 16000)
            print(f"end of {path.name}: {_heard(sink.count)}", file=sys.stderr)
        else:
            print(f"stopped: {_heard(sink.count)}", file=sys.stderr)
    finally:
        sink.close()
        _keep_room(det)
    return 0


class _EventSink:
    """Where detections go: a line of text or JSON on stdout, and the --exec command."""

    def __init__(self, args):
        self.json = args.json
        self.exec = args.exec
        self.count = 0
        self._running: list = []

    def emit(self, e, stream_time: float) -> None:
        self.count += 1
        wall = time.time()
        event = {**e.to_dict(), "stream_time": round(stream_time, 3), "time": round(wall, 3)}
        if self.json:
            print(json.dumps(event), flush=True)
        else:
            clear = f"\r{' ' * 70}\r" if sys.stderr.isatty() else ""
            print(f"{clear}[{e.start:7.2f} s] DETECTED {e.keyword!r} score {e.score:.3f} "
                  f"(threshold {e.threshold:.3f})", flush=True)
        if self.exec:
            self._run(event)

    def _run(self, event: dict) -> None:
        import os
        import subprocess

        env = dict(os.environ, KWS_EVENT=json.dumps(event),
                   **{f"KWS_{k.upper()}": str(v) for k, v in event.items()})
        try:                      # the command's output must not mix into the JSON lines
            self._running.append((event["keyword"], subprocess.Popen(
                self.exec, shell=True, env=env, stdout=2 if self.json else None)))
        except OSError as exc:
            print(f"warning: --exec could not start: {exc}", file=sys.stderr)
        self.poll()

    def poll(self, wait: bool = False) -> None:
        """Reap finished --exec commands, reporting failures (``wait``: all of them)."""
        still = []
        for kw, p in self._running:
            rc = p.wait() if wait else p.poll()
            if rc is None:
                still.append((kw, p))
            elif rc != 0:
                print(f"warning: --exec command for {kw!r} exited with status {rc}", file=sys.stderr)
        self._running = still

    def close(self) -> None:
        self.poll(wait=True)


def _listen_loop(det, blocks, args, sink: _EventSink) -> bool:
    """Feed blocks to the detector, events to the sink; False when stopped by Ctrl-C (or SIGTERM).

    A block the detector cannot take (NaN samples from a glitching driver, any error in
    processing) is reported and skipped; the stream goes on. Only ``MAX_BAD_BLOCKS`` failures in a
    row end it (a ValueError, reported as an error).
    """
    import signal
    import threading

    def stop(signum, frame):
        raise KeyboardInterrupt
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, stop) if main else None   # a service manager stops it like Ctrl-C
    view = args.view and not args.json and sys.stderr.isatty()
    last_view = 0.0
    t = 0
    bad = 0
    try:
        for b in blocks:
            t += b.size
            try:
                events = det.process(b)
            except Exception as exc:
                bad += 1
                print(f"\nwarning: audio block at {t / 16000:.1f} s skipped: {exc}", file=sys.stderr)
                if bad >= MAX_BAD_BLOCKS:
                    raise ValueError(f"{bad} audio blocks in a row failed; stopping") from exc
                continue
            bad = 0
            for e in events:
                sink.emit(e, t / 16000)
            if sink.exec:
                sink.poll()
            if view and time.time() - last_view > 0.2:
                last_view = time.time()
                best = sorted(((v, n) for n, v in det.last_scores.items()), reverse=True)[:3]
                scores = "  ".join(f"{n}:{max(s, 0):.2f}" for s, n in best)
                print(f"\r{t / 16000:7.1f} s  {scores:60}", end="", file=sys.stderr, flush=True)
        return True
    except KeyboardInterrupt:
        return False
    finally:
        if view:
            print(file=sys.stderr)
        if main:
            signal.signal(signal.SIGTERM, previous)
