"""The page's detector in the browser: speed, page load time, memory, and its agreement with Python.

    python benchmarks/web_speed.py [--store DIR] [--repeats 3] [--out docs/results/web-speed.json]
    python benchmarks/web_speed.py --speed-only [--keywords 3,10] [--repeats 5]   # the speed runs only

Runs ``python -m kws web``'s server in this process and the page in headless Debian Chromium
(Playwright; tests/webutil.py), then measures:

- JS vs Python: the largest absolute difference between the page's mel frames and backbone
  vectors of the sample and Python's (kws.model.backbone, onnxruntime on the CPU);
- JS stream vs Python: the largest absolute difference between the backbone vectors the page's
  detector streams (80 ms chunks, after the silence a stream starts with), through the model's step
  graph and over whole windows, and Python's whole-window vectors of the same audio;
- the detector's real-time factor on the sample (22.3 s), pushed in 80 ms chunks as the page's
  audio capture posts them, with 3 keywords (the demo ones) and 10 (the demo ones and 7 typed
  keywords, each with its 28 Kokoro templates), for 1, 4 and 8 vectors per backbone run, its
  backbone streamed through the model's step graph (backbone_step.onnx, what the page runs) and
  over each vector's whole 76-frame window (what it ran before, and runs for a model without the
  step graph; KeywordSpotter's option stepGraph: false), the two alternating run by run:
  wall-clock time in the page (performance.now) and CPU time of the renderer's main thread (the one
  thread that runs the page's JavaScript and onnxruntime-web), each over the audio's duration, and
  the detector's own time in its parts (mel, backbone, head, matching);
- the backbone alone: the time of one run of 1, 2, 4, 8, 16 and 64 vectors through the step
  graph and over whole windows (76 + 8(n-1) frames), in the loaded page;
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
enroll on one core); the default is a temporary folder. ``--speed-only`` runs the speed runs, the
backbone alone and the streamed vectors' agreement only, prints them, and writes a JSON file only
where ``--out`` names one.
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

BACKBONES = ("step", "windows")   # the step graph (what the page runs), whole windows (what it ran before)

RUN_JS = """async ([k, vpr, backbone]) => {
    const { KeywordSpotter } = await import('./kws.js');
    const audio = await kwsApp.decodeFile(await (await fetch('sample.wav')).arrayBuffer());
    const doc = await (await fetch('api/keywords')).json();
    doc.keywords = doc.keywords.slice(0, k);
    const s = new KeywordSpotter(doc, kwsApp.model, { vectorsPerRun: vpr, stepGraph: backbone === 'step' });
    const stepped = s.backbone.stepped;
    const t0 = performance.now();
    for (let i = 0; i < audio.length; i += 1280) await s.process(audio.subarray(i, i + 1280));
    await s.flush();
    const ms = performance.now() - t0;
    return { ms, seconds: audio.length / 16000, templates: s.matcher.length.length, rows: s.matcher.R, stepped,
             melMs: s.stats.melMs, networkMs: s.stats.networkMs, backboneMs: s.stats.backboneMs,
             headMs: s.stats.headMs, matchMs: s.stats.matchMs };
}"""

# the raw vectors the detector streams (what it gives its head), 80 ms chunks, 4 vectors a run
STREAM_JS = """async ([b64, backbone]) => {
    const { KeywordSpotter } = await import('./kws.js');
    const audio = new Float32Array(Uint8Array.from(atob(b64), c => c.charCodeAt(0)).buffer);
    const doc = await (await fetch('api/keywords')).json();
    const s = new KeywordSpotter(doc, kwsApp.model, { stepGraph: backbone === 'step' });
    const got = [], push = s.head.push.bind(s.head);
    s.head.push = (d, n, dim) => { got.push(...d.subarray(0, n * dim)); return push(d, n, dim); };
    const stepped = s.backbone.stepped;
    for (let i = 0; i < audio.length; i += 1280) await s.process(audio.subarray(i, i + 1280));
    await s.flush();
    return { stepped, vectors: got };
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


def ensure_store(store: Path, model, extra=EXTRA) -> None:
    from kws.enroll.build import enroll_keyword
    from kws.enroll.demo import demo_keywords
    from kws.enroll.store import STORE_FILE, KeywordSet, edit_store

    have = KeywordSet.load(store, model.model_id).names if (store / STORE_FILE).exists() else []
    if not have:
        with edit_store(store, model.model_id) as ks:
            for kw in demo_keywords(model):
                ks.add(kw)
    for text in extra:
        if text not in have:
            t = time.time()
            kw = enroll_keyword(text, model=model, tune=False)
            with edit_store(store, model.model_id) as ks:
                ks.add(kw)
            print(f"enrolled {text!r} ({len(kw.segments)} templates, {time.time() - t:.0f} s)", flush=True)


# the backbone alone in the page: one run of n vectors through the step graph (its states carried
# from run to run) and over whole windows (76 + 8(n-1) frames), ms a run, median of 5 rounds of runs
PER_RUN_JS = """async () => {
    const m = kwsApp.model, out = [];
    if (!m.step) return out;                           // a model without the step graph
    const mel = new Float32Array(600 * 32);
    for (let i = 0; i < mel.length; i++) mel[i] = 3 + 5 * Math.abs(Math.sin(i * 0.37));   // log-mel-like values
    const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
    for (const n of [1, 2, 4, 8, 16, 64]) {
        const reps = Math.max(8, Math.round(200 / n)), step = [], windows = [];
        let st = m.step.zeroStates();
        for (let i = 0; i < 3; i++) st = (await m.step.run(mel, 8 * n, st)).states;     // warm-up
        for (let round = 0; round < 5; round++) {
            let t0 = performance.now();
            for (let i = 0; i < reps; i++) st = (await m.step.run(mel, 8 * n, st)).states;
            step.push((performance.now() - t0) / reps);
            t0 = performance.now();
            for (let i = 0; i < reps; i++) await m.vectorsFromMel(mel, 8 * (n - 1) + 76);
            windows.push((performance.now() - t0) / reps);
        }
        out.push({ vectors: n, step_ms: median(step), windows_ms: median(windows) });
    }
    return out;
}"""


def backbone_per_run(page) -> list:
    rows = []
    for r in page.evaluate(PER_RUN_JS):
        rows.append({"vectors_per_run": r["vectors"], "step_ms_a_run": round(r["step_ms"], 3),
                     "windows_ms_a_run": round(r["windows_ms"], 3),
                     "step_ms_a_vector": round(r["step_ms"] / r["vectors"], 3),
                     "windows_ms_a_vector": round(r["windows_ms"] / r["vectors"], 3)})
        print(rows[-1], flush=True)
    return rows


def speed_runs(page, pid: int, keywords, repeats: int) -> list:
    """The detector over the sample for each keyword count and vectors per run, its backbone
    through the step graph and over whole windows, alternating run by run; medians of ``repeats``."""
    runs = []
    for k in keywords:
        for vpr in (1, 4, 8):
            walls, cpus, parts = {b: [] for b in BACKBONES}, {b: [] for b in BACKBONES}, {}
            for _ in range(repeats):
                for backbone in BACKBONES:
                    c0 = webutil.main_thread_cpu_s(pid)
                    res = page.evaluate(RUN_JS, [k, vpr, backbone])
                    cpu = webutil.main_thread_cpu_s(pid) - c0
                    if res["stepped"] != (backbone == "step"):
                        raise SystemExit(f"the page's model has no step graph: {backbone} runs whole windows")
                    walls[backbone].append(res["ms"] / 1000 / res["seconds"])
                    cpus[backbone].append(cpu / res["seconds"])
                    parts.setdefault(backbone, []).append(res)
            for backbone in BACKBONES:
                ps = parts[backbone]
                med = {key: statistics.median(r[key] for r in ps)
                       for key in ("melMs", "networkMs", "backboneMs", "headMs", "matchMs")}
                row = {"keywords": k, "templates": ps[0]["templates"], "template_rows": ps[0]["rows"],
                       "vectors_per_run": vpr, "latency_added_ms": 80 * (vpr - 1), "backbone": backbone,
                       "rtf_wall": round(statistics.median(walls[backbone]), 4),
                       "rtf_cpu": round(statistics.median(cpus[backbone]), 4),
                       "ms_mel": round(med["melMs"]), "ms_network": round(med["networkMs"]),
                       "ms_backbone": round(med["backboneMs"]), "ms_head": round(med["headMs"]),
                       "ms_matching": round(med["matchMs"]), "audio_s": round(ps[0]["seconds"], 2),
                       "runs": repeats}
                runs.append(row)
                print(row, flush=True)
    return runs


def stream_parity(page, model, sample) -> dict:
    """The vectors the page's detector streams, through the step graph and over whole windows,
    against Python's whole-window vectors of the same audio (after the stream's silence)."""
    from kws.model.backbone import Backbone, as_files
    from kws.spot.detector import PRIMED_VECTORS

    want = Backbone(as_files(model.path))(np.concatenate([np.zeros(PRIMED_VECTORS * 1280, np.float32), sample]))
    b64 = base64.b64encode(sample.astype("<f4").tobytes()).decode()
    out = {}
    got = {}
    for backbone in BACKBONES:
        r = page.evaluate(STREAM_JS, [b64, backbone])
        got[backbone] = np.array(r["vectors"], np.float32).reshape(-1, 96)
        if got[backbone].shape != want.shape:
            raise SystemExit(f"{backbone}: {got[backbone].shape[0]} vectors streamed, {want.shape[0]} from Python")
        out[f"streamed_{backbone}_max_abs_diff"] = float(np.abs(got[backbone] - want).max())
    out["streamed_step_vs_windows_max_abs_diff"] = float(np.abs(got["step"] - got["windows"]).max())
    out["streamed_vector_values"] = int(want.size)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, help="10-keyword store to use or make (default: a temporary one)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--keywords", default="3,10", help="keyword counts of the speed runs (default 3,10)")
    ap.add_argument("--speed-only", action="store_true",
                    help="only the speed runs and the streamed vectors' agreement, printed (no page loads, "
                         "memory or grid phases; a JSON file only with --out)")
    ap.add_argument("--out", type=Path, help="JSON results (default docs/results/web-speed.json; "
                                             "with --speed-only, none)")
    args = ap.parse_args()
    if args.out is None and not args.speed_only:
        args.out = ROOT / "docs" / "results" / "web-speed.json"
    keywords = [int(k) for k in args.keywords.split(",")]
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
    ensure_store(store, model, extra=EXTRA if max(keywords) > 3 or not args.speed_only else [])
    srv = make_server(store, model, port=0)
    webutil.serve_in_thread(srv)
    sample = load_audio(webutil.SAMPLE)
    out = {"hardware": "2-core x86-64 CPU (shared; load average at start "
                       f"{os.getloadavg()[0]:.1f})", "python": platform.python_version(),
           "command": " ".join(["python", "benchmarks/web_speed.py", *sys.argv[1:]])}
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=webutil.chromium_path(), args=webutil.launch_args(fake_audio=None))
        out["browser"] = f"Chromium {b.version}, headless"
        print(f"{out['hardware']}, {out['browser']}", flush=True)
        if args.speed_only:
            page = b.new_page()
            page.goto(srv.url)
            page.wait_for_selector("body[data-ready='yes']", timeout=120_000)
            pid = max(webutil.renderer_pids(), key=webutil.main_thread_cpu_s)     # the page's renderer
            out["parity"] = stream_parity(page, model, sample)
            print(json.dumps(out["parity"]), flush=True)
            out["rtf"] = speed_runs(page, pid, keywords, args.repeats)
            out["backbone_per_run"] = backbone_per_run(page)
            page.close()
            b.close()
            srv.shutdown()
            out["load_average_at_end"] = round(os.getloadavg()[0], 1)
            print(f"load average at the end {out['load_average_at_end']}")
            print(summary(out["rtf"]))
            if args.out:
                args.out.write_text(json.dumps(out, indent=2) + "\n")
                print(f"wrote {args.out}")
            return 0

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
        out["rtf"] = speed_runs(page, pid, keywords, args.repeats)
        out["memory_after_runs"] = memory(page, pid)
        out["backbone_per_run"] = backbone_per_run(page)
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
            "vector_values": int(vec_py.size), **stream_parity(page, model, sample)}

        page.close()
        b.close()
    srv.shutdown()
    out["load_average_at_end"] = round(os.getloadavg()[0], 1)
    out["python_events_by_grid_phase"] = phases(model, sample)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "rtf"}, indent=2))
    print(summary(out["rtf"]))
    print(f"wrote {args.out}")
    return 0


def summary(rows) -> str:
    """The speed runs as a table: each keyword count and vectors per run, whole windows against the
    step graph."""
    lines = ["keywords (templates) | vectors per run | backbone | RTF CPU | RTF wall | mel / backbone / head / matching, ms"]
    for r in rows:
        lines.append(f"{r['keywords']} ({r['templates']}) | {r['vectors_per_run']} | {r['backbone']} | "
                     f"{r['rtf_cpu']:.4f} | {r['rtf_wall']:.4f} | "
                     f"{r['ms_mel']} / {r['ms_backbone']} / {r['ms_head']} / {r['ms_matching']}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
