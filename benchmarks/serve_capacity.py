"""How many Wyoming clients `python -m kws serve` serves at once in real time, and the CPU each costs.

    python benchmarks/serve_capacity.py                          # 8, 16, 32, ... clients, 20 s each
    python benchmarks/serve_capacity.py --clients 40,48 --seconds 60 --chunk 160

The server runs as `python -m kws serve` in a subprocess (demo keywords, default settings,
onnxruntime on one thread per call) on loopback. N clients, all in this process (the wyoming
package's AsyncTcpClient), each stream the audio (default: the bundled sample, looped, each from
another offset) in chunks of --chunk samples, paced to real time. Every second of audio a client
sends a `ping`: the server answers it only after every chunk before it has gone through the
detector, so the ping's round trip is how far the server is behind that client (its lag).

A load is kept up when the 95th percentile and the last of all lags are under --max-lag seconds.
Server CPU is its user + system time over the run (/proc); CPU per connection is that divided by
the run's length and N, in % of one core. The clients' own CPU is printed too: on a 2-core machine
they share the cores with the server, so the capacity measured here is a lower bound for a server
whose clients live elsewhere (Home Assistant, satellites).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kws.audio.io import load_audio  # noqa: E402
from kws.enroll.demo import sample_recording  # noqa: E402

try:
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient
    from wyoming.ping import Ping, Pong
    from wyoming.wake import Detection
except ImportError:
    raise SystemExit("this benchmark needs the wyoming package: pip install -e '.[serve]'")


class Server:
    def __init__(self, args):
        self.tmp = tempfile.TemporaryDirectory()
        cmd = [sys.executable, "-m", "kws", "serve", "--uri", "tcp://127.0.0.1:0", "--max-clients", "100000",
               "--store", args.store or str(Path(self.tmp.name) / "store")]
        if args.no_vad:
            cmd.append("--no-vad")
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT)
        self.port = None
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                if "WARNING" in line or "ERROR" in line:
                    print("  server:", line.rstrip(), file=sys.stderr)
                m = re.search(r"listening on tcp://[^ ]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()
        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(120) or self.port is None:
            raise SystemExit("the server did not start")

    def cpu_s(self) -> float:
        f = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        self.tmp.cleanup()


async def client(port: int, pcm: bytes, start: int, seconds: float, chunk: int, t0: float, out: dict):
    c = AsyncTcpClient("127.0.0.1", port)
    await c.connect()
    pings = {}
    lags, slips = [], []
    found = [0]

    async def reader():
        while True:
            ev = await c.read_event()
            if ev is None:
                return
            if Pong.is_type(ev.type):
                sent = pings.pop(Pong.from_event(ev).text, None)
                if sent is not None:
                    lags.append(time.perf_counter() - sent)
                    if ev.data.get("text") == "end":
                        return
            elif Detection.is_type(ev.type):
                found[0] += 1
    rt = asyncio.ensure_future(reader())
    await c.write_event(AudioStart(16000, 2, 1, timestamp=0).event())
    step = 2 * chunk
    n_chunks = int(seconds * 16000 / chunk)
    per_ping = max(1, int(16000 / chunk))
    pos = start
    for k in range(n_chunks):
        due = t0 + k * chunk / 16000
        now = time.perf_counter()
        if due > now:
            await asyncio.sleep(due - now)
        else:
            slips.append(now - due)
        if pos + step > len(pcm):
            pos = 0
        await c.write_event(AudioChunk(16000, 2, 1, pcm[pos:pos + step], timestamp=int(k * chunk / 16)).event())
        pos += step
        if k % per_ping == per_ping - 1:
            pings[str(k)] = time.perf_counter()
            await c.write_event(Ping(text=str(k)).event())
    await c.write_event(AudioStop().event())
    pings["end"] = time.perf_counter()
    await c.write_event(Ping(text="end").event())
    await asyncio.wait_for(rt, 120)
    await c.disconnect()
    out.setdefault("lags", []).extend(lags)
    out.setdefault("final", []).append(lags[-1])
    out.setdefault("slip", []).append(max(slips, default=0.0))
    out.setdefault("detections", []).append(found[0])


def measure(server: Server, pcm: bytes, n: int, args) -> dict:
    rng = np.random.default_rng(n)
    starts = [int(s) * 2 for s in rng.integers(0, len(pcm) // 2 - 16000, size=n)]
    out: dict = {}
    cpu0, wall0, own0 = server.cpu_s(), time.perf_counter(), time.process_time()

    async def go():
        t0 = time.perf_counter() + 0.5 + n * 0.005       # connect first, then all start together
        await asyncio.gather(*(client(server.port, pcm, s, args.seconds, args.chunk, t0, out) for s in starts))
    asyncio.run(go())
    wall = time.perf_counter() - wall0
    cpu = server.cpu_s() - cpu0
    lags = np.array(out["lags"])
    return {"n": n, "server_cpu": cpu / args.seconds, "per_conn": cpu / args.seconds / n,
            "clients_cpu": (time.process_time() - own0) / wall, "p50": float(np.percentile(lags, 50)),
            "p95": float(np.percentile(lags, 95)), "max": float(lags.max()), "final": max(out["final"]),
            "slip": max(out["slip"]), "det_per_min": 60 * float(np.mean(out["detections"])) / args.seconds,
            "rss": server.rss_mb(), "load": os.getloadavg()[0]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", default="8,16,32,48,64,96,128", help="loads to try, ascending (stops at the first kept-up failure)")
    ap.add_argument("--seconds", type=float, default=20.0, help="audio streamed by each client per load")
    ap.add_argument("--chunk", type=int, default=1024, help="samples per audio-chunk (1024: 64 ms)")
    ap.add_argument("--max-lag", type=float, default=0.5, help="seconds behind that still count as real time")
    ap.add_argument("--audio", type=Path, help="audio file to stream (default: the bundled sample)")
    ap.add_argument("--store", help="keyword store to serve (default: an empty one, i.e. the demo keywords)")
    ap.add_argument("--no-vad", action="store_true", help="serve with the VAD gate off")
    ap.add_argument("--workers", type=int, help="server detector threads (default: one per core)")
    args = ap.parse_args()
    x = load_audio(args.audio or sample_recording())
    pcm = (np.clip(x, -1, 1 - 1 / 32768) * 32768).astype("<i2").tobytes()
    print(f"{os.cpu_count()} CPU cores; audio {args.audio or sample_recording().name} "
          f"({x.size / 16000:.1f} s, looped), chunks of {args.chunk} samples, {args.seconds:g} s per load, "
          f"VAD {'off' if args.no_vad else 'on'}; load average before {os.getloadavg()[0]:.1f}", flush=True)
    server = Server(args)
    rows = []
    try:
        print(f"{'clients':>7} {'server CPU':>10} {'CPU/conn':>9} {'clients CPU':>11} {'lag p50':>8} {'p95':>6} "
              f"{'max':>6} {'last':>6} {'send slip':>9} {'det/min':>7} {'RSS MB':>7} {'load':>5}  real time", flush=True)
        for n in [int(v) for v in args.clients.split(",")]:
            r = measure(server, pcm, n, args)
            r["ok"] = r["p95"] <= args.max_lag and r["final"] <= args.max_lag
            rows.append(r)
            print(f"{n:>7} {100 * r['server_cpu']:>9.0f}% {100 * r['per_conn']:>8.2f}% {100 * r['clients_cpu']:>10.0f}% "
                  f"{r['p50']:>7.3f}s {r['p95']:>5.2f}s {r['max']:>5.2f}s {r['final']:>5.2f}s {r['slip']:>8.2f}s "
                  f"{r['det_per_min']:>7.1f} {r['rss']:>7.0f} {r['load']:>5.1f}  {'yes' if r['ok'] else 'NO'}", flush=True)
            if not r["ok"]:
                break
    finally:
        server.stop()
    kept = [r for r in rows if r["ok"]]
    if kept:
        best = kept[-1]
        print(f"\nserved at once in real time: {best['n']} connections (lag p95 {best['p95']:.2f} s, last "
              f"{best['final']:.2f} s); CPU per connection {100 * best['per_conn']:.2f} % of one core "
              f"(server {100 * best['server_cpu']:.0f} % of one core in all, clients {100 * best['clients_cpu']:.0f} %)")
        if len(kept) < len(rows):
            print(f"at {rows[len(kept)]['n']} connections the server fell behind "
                  f"(lag p95 {rows[len(kept)]['p95']:.2f} s, last {rows[len(kept)]['final']:.2f} s)")
    else:
        print("\nnot even the first load was served in real time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
