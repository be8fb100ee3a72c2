"""Command line: python -m kws {listen,detect,serve,search,enroll,evaluate,train,export}.

``--store DIR`` goes right after ``python -m kws`` or anywhere after listen, detect or enroll.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import List, Optional

DEMO_KEYWORDS = ("computer", "jarvis", "alexa")
TRAIN_INSTALL = "pip install 'kws[train]' torch==2.13.0  (from a checkout: pip install torch==2.13.0 -e '.[train]')"
STORE_COMMANDS = ("listen", "detect", "enroll")
MAX_BAD_BLOCKS = 50        # listen gives up after this many failing audio blocks in a row


def sample_recording() -> Path:
    return Path(__file__).resolve().parent / "assets" / "sample.wav"


def check_package() -> None:
    """Refuse, with the reason, to run where a folder named ``kws`` in the current directory hides
    the installed package (e.g. the parent folder of a checkout named ``kws`` with an editable
    install: Python imports that folder as an empty namespace package, whose assets are missing)."""
    pkg = sys.modules.get("kws")
    if pkg is not None and getattr(pkg, "__file__", None) is None:
        where = ", ".join(str(p) for p in getattr(pkg, "__path__", []))
        print(f"error: the folder {where} is imported as the kws package in place of the installed "
              f"one (it has no __init__.py: a checkout's root, seen from its parent folder). Run kws "
              f"from another folder, e.g. cd {where}", file=sys.stderr)
        raise SystemExit(2)


def _keywords(args, bundle):
    """Keywords from --keyword texts, else the store, else the demo set."""
    from kws.detector import Detector, DetectorConfig
    from kws.keywords import KeywordSet, resolve_store

    cfg = DetectorConfig(variant=args.variant, vad=not args.no_vad, hop_s=args.hop)
    if args.keyword:
        return Detector.from_texts(args.keyword, threshold=args.threshold, bundle=bundle, config=cfg)
    store = resolve_store(args.store)
    if (store / "keywords.json").exists():
        ks = KeywordSet.load(store, bundle.model_id)
        if len(ks):
            return Detector(ks, bundle, cfg)
    print(f"(no keywords enrolled in {store}; using the demo keywords {', '.join(DEMO_KEYWORDS)}: "
          f"add your own with python -m kws.enroll add \"...\" or --keyword)", file=sys.stderr)
    return Detector.from_texts(DEMO_KEYWORDS, threshold=args.threshold, bundle=bundle, config=cfg)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keyword", "-k", action="append", help="keyword text (repeatable); default: the store")
    p.add_argument("--threshold", type=float, help="one threshold for all --keyword texts")
    p.add_argument("--store", help="keyword store folder (default: $KWS_STORE, else the user data folder)")
    p.add_argument("--bundle", help="model bundle folder (default: shipped)")
    p.add_argument("--variant", choices=("int8", "fp32"), default="int8")
    p.add_argument("--hop", type=float, default=0.15, help="seconds between window batches")
    p.add_argument("--no-vad", action="store_true", help="run the encoder on silence too")


def cmd_detect(args) -> int:
    from kws.audio import load_audio
    from kws.bundle import Bundle
    from kws.detector import detect_audio

    bundle = Bundle.load(args.bundle, variant=args.variant)
    det = _keywords(args, bundle)
    files = args.files or [str(sample_recording())]
    for f in files:
        audio = load_audio(f)
        for e in detect_audio(det, audio):
            print(json.dumps({"file": f, **e.to_dict()}), flush=True)
    return 0


def cmd_listen(args) -> int:
    from kws.bundle import Bundle
    from kws.mic import MicConfig, Microphone, NoMicrophone, describe_devices, list_input_devices

    if args.list_devices:
        try:
            devices = list_input_devices()
        except NoMicrophone as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(describe_devices(devices) if devices else "no input devices", flush=True)
        return 0
    mic = Microphone(MicConfig(device=args.device))
    try:
        mic.open()               # before the model loads: a wrong --device fails at once
    except NoMicrophone as exc:
        if args.device is not None:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        mic = None
        fallback = str(exc)
    try:
        bundle = Bundle.load(args.bundle, variant=args.variant)
        det = _keywords(args, bundle)
    except BaseException:
        if mic is not None:
            mic.close()
        raise
    sink = _EventSink(args)
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
    print(f"stopped: {mic.summary()}, {sink.count} detection(s)", file=sys.stderr, flush=True)
    return 0


def _listen_file(det, path: Path, args, sink: "_EventSink") -> int:
    from kws.audio import load_audio

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
        else:
            print("stopped", file=sys.stderr)
    finally:
        sink.close()
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


def cmd_serve(args) -> int:
    try:
        from kws.serve import run_from_args
        return run_from_args(args)
    except ImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _repo_module(name: str):
    """export/ and benchmarks/ live beside the package in the repository checkout."""
    root = Path(__file__).resolve().parents[1]
    if not (root / name.split(".")[0]).is_dir():
        raise SystemExit(f"'{name}' needs the kws repository checkout (it is not part of the installed package)")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import importlib

    return importlib.import_module(name)


def _leading_store(argv: List[str]) -> List[str]:
    """``--store DIR`` (or ``--store=DIR``) given before the command: moved after it."""
    if argv and argv[0] == "--store" and len(argv) > 1:
        store, rest = argv[1], argv[2:]
    elif argv and argv[0].startswith("--store="):
        store, rest = argv[0].split("=", 1)[1], argv[1:]
    else:
        return argv
    if not rest or rest[0] not in STORE_COMMANDS:
        print(f"error: --store goes with {', '.join(STORE_COMMANDS)} "
              f"(python -m kws --store DIR detect ... or python -m kws detect --store DIR ...)", file=sys.stderr)
        raise SystemExit(2)
    return [rest[0], "--store", store] + rest[1:]


def _train_tools(cmd: str, rest: List[str]) -> int:
    """train and export need torch and the other 'train' extras: say so instead of a traceback."""
    if importlib.util.find_spec("torch") is None:
        print(f"error: '{cmd}' needs torch and the train extra, not installed here:\n  {TRAIN_INSTALL}",
              file=sys.stderr)
        return 2
    try:
        if cmd == "train":
            from kws.train.__main__ import main as m
        else:
            m = _repo_module("export.build_bundle").main
    except ModuleNotFoundError as exc:
        print(f"error: '{cmd}' needs {exc.name!r} (part of the train extra):\n  {TRAIN_INSTALL}",
              file=sys.stderr)
        return 2
    return m(rest)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    check_package()
    argv = _leading_store(argv)
    ap = argparse.ArgumentParser(prog="python -m kws", description=(
        "Open-vocabulary keyword spotting: type a word, the device listens for it. "
        "--store DIR may come right after 'python -m kws' or after listen, detect or enroll."))
    sub = ap.add_subparsers(dest="cmd", metavar="COMMAND")
    p = sub.add_parser("listen", help="live microphone detection (the bundled sample when no microphone)")
    _common(p)
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
    d = sub.add_parser("detect", help="offline detection in files, JSON lines")
    _common(d)
    d.add_argument("files", nargs="*", help="audio files (default: the bundled sample)")
    s = sub.add_parser("serve", help="Wyoming wake-word server for Home Assistant (needs the 'serve' extra)")
    _common(s)
    s.add_argument("--uri", default="tcp://127.0.0.1:10400", help="tcp://HOST:PORT or unix://PATH (default: this machine only)")
    s.add_argument("--max-clients", type=int, help="connections served at once (default 128)")
    s.add_argument("--idle-timeout", type=float, help="drop a client silent this many seconds (default 60)")
    s.add_argument("--workers", type=int, help="detector threads (default: one per CPU core)")
    s.add_argument("--debug", action="store_true", help="log every connection's events")
    sub.add_parser("enroll", help="manage keywords (python -m kws enroll --help)", add_help=False)
    sub.add_parser("search", help="spoken-term search over indexed recordings", add_help=False)
    sub.add_parser("evaluate", help="evaluation report for a model bundle", add_help=False)
    sub.add_parser("train", help="train the encoders (needs the 'train' extra)", add_help=False)
    sub.add_parser("export", help="checkpoint -> model bundle (needs the 'train' extra)", add_help=False)
    if argv and argv[0] in ("enroll", "search", "evaluate", "train", "export"):
        cmd, rest = argv[0], argv[1:]
        if cmd == "enroll":
            from kws.enroll import main as m
            return m(rest, prog="python -m kws enroll")
        if cmd == "search":
            from kws.search import main as m
            return m(rest)
        if cmd == "evaluate":
            from kws.evaluate import main as m
            return m(rest)
        return _train_tools(cmd, rest)
    args = ap.parse_args(argv)
    if args.cmd is None:
        ap.print_help()
        return 0
    from kws.audio import AudioError, plain_warnings
    from kws.bundle import BundleError
    from kws.keywords import StoreError
    from kws.mic import NoMicrophone
    from kws.phonemes import TextError

    try:
        with plain_warnings():
            return {"listen": cmd_listen, "detect": cmd_detect, "serve": cmd_serve}[args.cmd](args)
    except (AudioError, BundleError, StoreError, TextError, ValueError, NoMicrophone) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
