"""Headless Chromium for the page of ``python -m kws web``: tests/test_web.py and
benchmarks/web_speed.py. Debian's chromium, driven by Playwright for Python (its driver only: no
browser download), the microphone replaced by a WAV file."""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import List, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "kws" / "assets" / "sample.wav"


def chromium_path() -> Optional[str]:
    for p in (os.environ.get("KWS_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
              "/usr/bin/chromium"):
        if p and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def missing() -> Optional[str]:
    """Why the browser tests cannot run here (None: they can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright; its browsers are not needed)"
    if chromium_path() is None:
        return "Chromium is not installed (apt-get install chromium; or set KWS_CHROMIUM to its path)"
    return None


def launch_args(fake_audio: Optional[Path] = SAMPLE, fake_ui: bool = True) -> List[str]:
    """Flags for a headless Chromium on a machine without network or sound card; its microphone
    plays ``fake_audio`` once (``%noloop``), then silence."""
    args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
            "--disable-default-apps", "--autoplay-policy=no-user-gesture-required",
            "--use-fake-device-for-media-stream"]
    if fake_ui:
        args.append("--use-fake-ui-for-media-stream")
    if fake_audio is not None:
        args.append(f"--use-file-for-fake-audio-capture={fake_audio}%noloop")
    return args


def serve_in_thread(server) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    return t


def align(heard: np.ndarray, reference: np.ndarray, sr: int = 16000) -> float:
    """Where ``reference`` starts in ``heard``, in seconds (negative: ``heard`` began after the
    reference's start): the peak of their cross-correlation."""
    a, b = np.asarray(heard, np.float64), np.asarray(reference, np.float64)
    n = 1 << int(np.ceil(np.log2(a.size + b.size)))
    xc = np.fft.irfft(np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n)), n)
    lag = int(np.argmax(xc))
    if lag > n // 2:
        lag -= n
    return lag / sr


def _children(pid: int) -> List[int]:
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            out.append(int(d.name))
    return out


def renderer_pids(root: int = None) -> List[int]:
    """The Chromium renderer processes under this process (Linux /proc)."""
    todo, found = [root or os.getpid()], []
    while todo:
        p = todo.pop()
        for c in _children(p):
            todo.append(c)
            try:
                cmd = (Path("/proc") / str(c) / "cmdline").read_bytes()
            except OSError:
                continue
            if b"--type=renderer" in cmd and b"--extension-process" not in cmd and b"--top-chrome-webui" not in cmd:
                found.append(c)
    return found


def main_thread_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a renderer's main thread (thread id = process id), the one
    that runs the page's JavaScript and its WebAssembly."""
    f = (Path("/proc") / str(pid) / "task" / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def memory_kb(pid: int) -> dict:
    """Resident and proportional set size of a process (kB)."""
    out = {}
    for line in (Path("/proc") / str(pid) / "smaps_rollup").read_text().splitlines():
        k = line.split(":")[0]
        if k in ("Rss", "Pss"):
            out[k.lower() + "_kb"] = int(line.split()[1])
    return out
