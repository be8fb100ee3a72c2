"""The page's detector in the browser: speed, page load time, memory, and its agreement with Python.

    python benchmarks/web_speed.py [--store DIR] [--repeats 3] [--out docs/results/web-speed.json]

Runs ``python -m kws web``'s server in this process and the page in headless Debian Chromium
(Playwright; tests/webutil.py), then measures:

- JS vs Python: the largest absolute difference between the page's mel frames and backbone
  vectors of the sample and Python's (kws.model.backbone, onnxruntime on the CPU);
- the detector's real-time factor on the sample (22.3 s), pushed in 80 ms chunks as the page's
  audio capture posts them, with 3 keywords (the demo ones) and 10 (the demo ones and 7 typed
  keywords, each with its 28 Kokoro templates), for 1, 4 and 8 vectors per backbone run:
  wall-clock time in the page (performance.now) and CPU time of the renderer's main thread (the one
  thread that runs the page's JavaScript and onnxruntime-web), each over the audio's duration;
- page load time: from navigation to the page ready to listen (model fetched, WebAssembly compiled,
  session created, keywords loaded), fresh page each time, nothing cached;
- Python's own events on the sample when the stream starts at each 80-sample step of the
  vector grid (a live capture starts anywhere in it);
- memory: the renderer process's resident and proportional set size, the JS heap and
  onnxruntime-web's WebAssembly memory, each after a full garbage collection: for a plain page of
  the server (the browser's own share), after the page has loaded, after it analysed the sample
  three times with its 10 keywords ("Analyse at full speed"), and after the speed runs (each a new
  detector over the sample).

``--store`` keeps the 10-keyword store between runs (the 7 typed keywords take ~15 s each to
enroll on one core); the default is a temporary folder.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import webutil  # noqa: E402

EXTRA = ["hey kiosk", "lights on", "stop the music", "hello there", "okay robot", "next slide", "play video"]

RUN_JS = """async ([k, vpr]) => {
    const { KeywordSpotter } = await import('./kws.js');
    const audio = await kwsApp.decodeFile(await (await fetch('sample.wav')).arrayBuffer());
    const doc = await (await fetch('api/keywords')).json();
    doc.keywords = doc.keywords.slice(0, k);
    const s = new KeywordSpotter(doc, kwsApp.model, { vectorsPerRun: vpr });
    const t0 = performance.now();
    for (let i = 0; i < audio.length; i += 1280) await s.process(audio.subarray(i, i + 1280));
    await s.flush();
    const ms = performance.now() - t0;
    return { ms, seconds: audio.length / 16000, templates: s.matcher.length.length, rows: s.matcher.R,
             melMs: s.stats.melMs, networkMs: s.stats.networkMs, matchMs: s.stats.matchMs };
}"""

PARITY_JS = """async (b64) => {
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    const audio = new Float32Array(bytes.buffer);
    const mel = kwsApp.model.melFrontEnd.mel(audio);
    const vec = await kwsApp.model.vectors(audio);
    return { mel: Array.from(mel), vectors: Array.from(vec.data) };
}"""


def phases(model, sample) -> list:
    """Python's events on the sample when the stream starts 0, 80, ..., 1200 samples before it
    (as a live capture starts anywhere in the 80 ms vector grid): times in the sample's clock."""
    from kws.enroll.demo import demo_keywords
    from kws.spot.detector import Detector, DetectorConfig

    det = Detector(demo_keywords(model), model, DetectorConfig(vad=True))
    rows = []
    for shift in range(0, 1280, 80):
        x = np.concatenate([np.zeros(shift, np.float32), sample])
        rows.append({"shift_samples": shift, "events": [
            [e.keyword, round(e.start - shift / 16000, 2), round(e.score, 4)] for e in det.detect(x)]})
    return rows


# notes the WebAssembly memories the page makes (onnxruntime-web's heap), to read their size
WASM_MEMORY_HOOK = """(() => { const M = WebAssembly.Memory; window.__kwsWasmMemories = [];
  WebAssembly.Memory = function (d) { const m = new M(d); window.__kwsWasmMemories.push(m); return m; };
  WebAssembly.Memory.prototype = M.prototype; })();"""


def memory(page, pid: int) -> dict:
    """The renderer's memory after a full garbage collection (so that garbage is not counted)."""
    page.context.new_cdp_session(page).send("HeapProfiler.collectGarbage")
    time.sleep(0.5)
    return {**webutil.memory_kb(pid), "js_heap_kb": page.evaluate("performance.memory.usedJSHeapSize") // 1024,
            "wasm_kb": page.evaluate("(window.__kwsWasmMemories || []).reduce((a, m) => a + m.buffer.byteLength, 0)") // 1024}


def ensure_store(store: Path, model) -> None:
    from kws.enroll.build import enroll_keyword
    from kws.enroll.demo import demo_keywords
    from kws.enroll.store import STORE_FILE, KeywordSet, edit_store

    have = KeywordSet.load(store, model.model_id).names if (store / STORE_FILE).exists() else []
    if not have:
        with edit_store(store, model.model_id) as ks:
            for kw in demo_keywords(model):
                ks.add(kw)
    for text in EXTRA:
        if text not in have:
            t = time.time()
            kw = enroll_keyword(text, model=model, tune=False)
            with edit_store(store, model.model_id) as ks:
                ks.add(kw)
            print(f"enrolled {text!r} ({len(kw.segments)} templates, {time.time() - t:.0f} s)", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, help="10-keyword store to use or make (default: a temporary one)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "web-speed.json")
    args = ap.parse_args()
    why = webutil.missing()
    if why:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2

    from playwright.sync_api import sync_playwright

    from kws.audio.io import load_audio
    from kws.model.backbone import Backbone, as_files
    from kws.model.model import Model
    from kws.web.server import make_server

    model = Model.load()
    store = args.store or Path(tempfile.mkdtemp(prefix="kws-web-speed-")) / "store"
    ensure_store(store, model)
    srv = make_server(store, model, port=0)
    webutil.serve_in_thread(srv)
    sample = load_audio(webutil.SAMPLE)
    out = {"hardware": "2-core x86-64 CPU (shared; load average at start "
                       f"{os.getloadavg()[0]:.1f})", "python": platform.python_version()}
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=webutil.chromium_path(), args=webutil.launch_args(fake_audio=None))
        out["browser"] = f"Chromium {b.version}, headless"
        loads = []
        for _ in range(args.loads):
            page = b.new_page()
            page.goto(srv.url)
            page.wait_for_selector("body[data-ready='yes']", timeout=120_000)
            loads.append(page.evaluate("kwsApp.loadMs"))
            page.close()
        out["page_load_ms"] = {"median": round(statistics.median(loads)), "min": round(min(loads)),
                               "max": round(max(loads)), "runs": len(loads)}

        page = b.new_page()
        page.goto(srv.url + "api/info")                  # a page of this server without the app
        pid = max(webutil.renderer_pids(), key=webutil.main_thread_cpu_s)
        out["memory_plain_page"] = memory(page, pid)
        page.close()

        page = b.new_page()
        page.add_init_script(WASM_MEMORY_HOOK)
        page.goto(srv.url)
        page.wait_for_selector("body[data-ready='yes']", timeout=120_000)
        pid = max(webutil.renderer_pids(), key=webutil.main_thread_cpu_s)     # the page's renderer
        out["memory_after_load"] = memory(page, pid)
        page.evaluate("""async () => {                 // what "Analyse at full speed" runs, 3 times
            const audio = await kwsApp.decodeFile(await (await fetch('sample.wav')).arrayBuffer());
            for (let i = 0; i < 3; i++) await kwsApp.analyse('the sample', audio);
        }""")
        out["memory_after_3_analyses"] = memory(page, pid)

        runs = []
        for k in (3, 10):
            for vpr in (1, 4, 8):
                walls, cpus, parts = [], [], None
                for _ in range(args.repeats):
                    c0 = webutil.main_thread_cpu_s(pid)
                    res = page.evaluate(RUN_JS, [k, vpr])
                    cpu = webutil.main_thread_cpu_s(pid) - c0
                    walls.append(res["ms"] / 1000 / res["seconds"])
                    cpus.append(cpu / res["seconds"])
                    parts = res
                row = {"keywords": k, "templates": parts["templates"], "template_rows": parts["rows"],
                       "vectors_per_run": vpr, "latency_added_ms": 80 * (vpr - 1),
                       "rtf_wall": round(statistics.median(walls), 4), "rtf_cpu": round(statistics.median(cpus), 4),
                       "ms_mel": round(parts["melMs"]), "ms_network": round(parts["networkMs"]),
                       "ms_matching": round(parts["matchMs"]), "audio_s": round(parts["seconds"], 2)}
                runs.append(row)
                print(row, flush=True)
        out["rtf"] = runs
        out["memory_after_runs"] = memory(page, pid)
        page.close()

        # the whole sample's mel and vectors at once, in a page of its own (its memory is not the
        # detector's: onnxruntime's arena keeps what 256-vector blocks needed)
        page = b.new_page()
        page.goto(srv.url)
        page.wait_for_selector("body[data-ready='yes']", timeout=120_000)
        bb = Backbone(as_files(model.path))
        r = page.evaluate(PARITY_JS, base64.b64encode(sample.astype("<f4").tobytes()).decode())
        mel_py, vec_py = bb.mel(sample), bb(sample)
        out["parity"] = {
            "mel_max_abs_diff": float(np.abs(np.array(r["mel"], np.float32).reshape(-1, 32) - mel_py).max()),
            "mel_values": int(mel_py.size),
            "vectors_max_abs_diff": float(np.abs(np.array(r["vectors"], np.float32).reshape(-1, 96) - vec_py).max()),
            "vector_values": int(vec_py.size)}

        page.close()
        b.close()
    srv.shutdown()
    out["load_average_at_end"] = round(os.getloadavg()[0], 1)
    out["python_events_by_grid_phase"] = phases(model, sample)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "rtf"}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
