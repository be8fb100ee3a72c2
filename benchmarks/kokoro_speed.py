"""How fast Kokoro renders keywords, with the model's integer convolutions as they are in the file
("plain") and as integer matrix products (kws.enroll.kokoro_graph, "as matmuls", what kws runs),
and how far apart their audio is.

    taskset -c 1 python benchmarks/kokoro_speed.py                 # 4 keywords x 4 voices, 3 runs
    taskset -c 1 python benchmarks/kokoro_speed.py --runs 5
    taskset -c 1 python benchmarks/kokoro_speed.py --ops           # time per operator type too
    taskset -c 1 python benchmarks/kokoro_speed.py --one-token     # the cost of a one-phoneme text
    taskset -c 1 python benchmarks/kokoro_speed.py --one-conv      # one convolution alone, three forms

Both sessions are made as kws.enroll.kokoro.session makes them (one thread, the durations as a
second output). Printed: the time to make each session (and to rewrite the graph), then per path
the median over the runs of seconds per rendering and renderings per second (each run renders
every keyword in every voice once; the two paths take turns), the speedup, and the largest
absolute difference between the two paths' audio (24 kHz, before resampling) and whether the
per-token durations are equal. Pin it to one core (``taskset -c 1``): the times are of one core.

``--one-conv`` times one integer convolution alone (128 channels in and out over 7560 frames, the
decoder's last stage, random weights; kernel 3, 7 and 11) in three forms: ConvInteger as the export
has it, the rewrite kws runs (time-major im2col by Gather, int8 weights on the right, transposes
around), and the weights on the left (activations made int8 by BitwiseXor and Cast, im2col by
Slice and Concat along time, no transposes); it needs the onnx package (not a kws run-time one).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kws.enroll import kokoro  # noqa: E402
from kws.enroll.kokoro_graph import convs_as_matmuls  # noqa: E402
from kws.enroll.phonemes import pronounce  # noqa: E402

KEYWORDS = ("hey toaster", "computer", "ok lantern", "turn on the lights")
VOICES = ("af_heart", "am_adam", "bf_emma", "bm_george")


def make_session(data: bytes, profile: str = ""):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    if profile:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile
    return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])


def run(sess, ids, style):
    audio, dur = sess.run(["audio", kokoro.DURATIONS], {
        "tokens": ids[None], "style": style.reshape(1, kokoro.STYLE_DIM).astype(np.float32),
        "speed": np.array([1.0], np.float32)})
    return audio.reshape(-1), dur.reshape(-1)


def op_times(data: bytes, cases, tmp: str) -> collections.Counter:
    """Milliseconds per operator type for one rendering of each case (onnxruntime's profile)."""
    sess = make_session(data, os.path.join(tmp, "profile"))
    for _, _, ids, style in cases:
        run(sess, ids, style)
    events = json.loads(Path(sess.end_profiling()).read_text())
    out: collections.Counter = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            out[e["args"]["op_name"]] += e["dur"] / 1000 / len(cases)
    return out


def one_conv(kernel: int, dilation: int = 1, channels: int = 128, frames: int = 7560, runs: int = 9):
    """Median ms of one convolution in the three forms of ``--one-conv``, and whether they agree."""
    from onnx import TensorProto as TP
    from onnx import helper as h
    from onnx import numpy_helper as nh

    rng = np.random.default_rng(0)
    pad = dilation * (kernel - 1) // 2
    w = rng.integers(0, 256, (channels, channels, kernel), dtype=np.uint8)

    def model(nodes, inits):
        g = h.make_graph(nodes, "conv", [h.make_tensor_value_info("x", TP.FLOAT, [1, channels, None])],
                         [h.make_tensor_value_info("y", TP.INT32, [1, channels, None])], inits)
        m = h.make_model(g, opset_imports=[h.make_opsetid("", 20)])
        m.ir_version = 9
        return m.SerializeToString()

    dql = h.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"])
    plain = model([dql, h.make_node("ConvInteger", ["xq", "w", "xz", "wz"], ["y"], kernel_shape=[kernel],
                                    pads=[pad, pad], dilations=[dilation])],
                  [nh.from_array(w, "w"), nh.from_array(np.array(131, np.uint8), "wz")])
    left = [dql, h.make_node("BitwiseXor", ["xq", "c80"], ["xx"]), h.make_node("Cast", ["xx"], ["x8"], to=TP.INT8),
            h.make_node("BitwiseXor", ["xz", "c80"], ["zx"]), h.make_node("Cast", ["zx"], ["z8"], to=TP.INT8),
            h.make_node("Pad", ["x8", "pads", "z8"], ["xp"])]
    inits = [nh.from_array(np.ascontiguousarray(w.transpose(0, 2, 1).reshape(channels, -1)), "w2"),
             nh.from_array(np.array(131, np.uint8), "wz"), nh.from_array(np.array(0x80, np.uint8), "c80"),
             nh.from_array(np.array([0, 0, pad, 0, 0, pad], np.int64), "pads"), nh.from_array(np.array([2], np.int64), "ax")]
    for k in range(kernel):
        end = -(dilation * (kernel - 1 - k)) if k < kernel - 1 else 1 << 62
        left.append(h.make_node("Slice", ["xp", f"s{k}", f"e{k}", "ax"], [f"tap{k}"]))
        inits += [nh.from_array(np.array([k * dilation], np.int64), f"s{k}"), nh.from_array(np.array([end], np.int64), f"e{k}")]
    left += [h.make_node("Concat", [f"tap{k}" for k in range(kernel)], ["col"], axis=1),
             h.make_node("MatMulInteger", ["w2", "col", "wz", "z8"], ["y"])]
    forms = {"ConvInteger": plain, "rewrite (Gather)": convs_as_matmuls(plain)[0], "weights left (Slice)": model(left, inits)}
    x = {"x": rng.standard_normal((1, channels, frames)).astype(np.float32)}
    out, ref = {}, None
    for name, data in forms.items():
        sess = make_session(data)
        y = sess.run(None, x)[0]
        ref = y if ref is None else ref
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            sess.run(None, x)
            times.append(time.perf_counter() - t)
        out[name] = (1000 * statistics.median(times), bool(np.array_equal(y, ref)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keywords", nargs="+", default=list(KEYWORDS))
    ap.add_argument("--voices", nargs="+", default=list(VOICES))
    ap.add_argument("--ops", action="store_true", help="also time each operator type (one pass, profiled)")
    ap.add_argument("--one-token", action="store_true", help="also time a one-phoneme text ('ə')")
    ap.add_argument("--one-conv", action="store_true", help="only time one convolution alone, in three forms")
    a = ap.parse_args(argv)
    if a.one_conv:
        print(f"CPUs this process may use: {sorted(os.sched_getaffinity(0))}")
        print("one integer convolution, 128 -> 128 channels over 7560 frames: ms (median of 9)")
        for kernel in (3, 7, 11):
            res = one_conv(kernel)
            print(f"kernel {kernel:2}: " + ", ".join(f"{n} {ms:.2f}{'' if same else ' (DIFFERENT sums)'}"
                                                  for n, (ms, same) in res.items()))
        return 0

    path = kokoro.model_path()
    print(f"CPUs this process may use: {sorted(os.sched_getaffinity(0))}")
    t = time.perf_counter()
    raw = Path(path).read_bytes()
    t_read = time.perf_counter() - t
    t = time.perf_counter()
    rewritten, n = convs_as_matmuls(raw)
    t_rewrite = time.perf_counter() - t
    print(f"model read {t_read:.2f} s; graph rewritten in {t_rewrite:.2f} s ({n} ConvInteger as MatMulInteger)")
    datas = {"plain": kokoro.add_graph_output(raw, kokoro.DURATIONS),
             "as matmuls": kokoro.add_graph_output(rewritten, kokoro.DURATIONS)}
    del raw, rewritten
    sessions = {}
    for name, data in datas.items():
        t = time.perf_counter()
        sessions[name] = make_session(data)
        print(f"session ({name}) made in {time.perf_counter() - t:.2f} s")

    v = kokoro.voices()
    cases = []
    for text in a.keywords:
        ph = kokoro.pronunciation_phonemes(pronounce(text))
        ids = kokoro.tokens(ph)
        for voice in a.voices:
            cases.append((text, voice, ids, v.style(voice, ids.size - 2)))

    worst, durations_equal, seconds = 0.0, True, 0.0
    for text, voice, ids, style in cases:
        a0, d0 = run(sessions["plain"], ids, style)
        a1, d1 = run(sessions["as matmuls"], ids, style)
        diff = float(np.abs(a0 - a1).max()) if a0.shape == a1.shape else float("inf")
        worst = max(worst, diff)
        durations_equal &= bool(np.array_equal(d0, d1))
        seconds += a0.size / kokoro.SAMPLE_RATE
    print(f"{len(cases)} renderings ({len(a.keywords)} keywords x {len(a.voices)} voices, "
          f"{seconds / len(cases):.2f} s of audio each on average): max |audio difference| {worst:.3g}, "
          f"durations {'equal' if durations_equal else 'DIFFERENT'}")

    per = {name: [] for name in sessions}
    for _ in range(a.runs):
        for name, sess in sessions.items():
            t = time.perf_counter()
            for _, _, ids, style in cases:
                run(sess, ids, style)
            per[name].append((time.perf_counter() - t) / len(cases))
    for name, times in per.items():
        med = statistics.median(times)
        print(f"{name:>10}: {med:.3f} s per rendering, {1 / med:.2f} renderings/s "
              f"(median of {a.runs}: {' '.join(f'{x:.3f}' for x in times)})")
    print(f"speedup: {statistics.median(per['plain']) / statistics.median(per['as matmuls']):.2f}x")

    if a.one_token:
        ids = kokoro.tokens("ə")
        style = v.style(a.voices[0], 1)
        for name, sess in sessions.items():
            times = []
            for _ in range(max(3, a.runs)):
                t = time.perf_counter()
                audio, _ = run(sess, ids, style)
                times.append(time.perf_counter() - t)
            print(f"one phoneme ({audio.size / kokoro.SAMPLE_RATE:.2f} s of audio), {name}: "
                  f"{statistics.median(times):.3f} s")

    if a.ops:
        sessions.clear()
        with tempfile.TemporaryDirectory() as tmp:
            ops = {name: op_times(data, cases, tmp) for name, data in datas.items()}
        names = sorted(set(ops["plain"]) | set(ops["as matmuls"]), key=lambda o: -max(ops["plain"][o], ops["as matmuls"][o]))
        print(f"\nms per rendering by operator type (profiled, one pass)\n{'op':<24}{'plain':>9}{'as matmuls':>12}")
        for o in names[:20]:
            print(f"{o:<24}{ops['plain'][o]:9.1f}{ops['as matmuls'][o]:12.1f}")
        print(f"{'all':<24}{sum(ops['plain'].values()):9.1f}{sum(ops['as matmuls'].values()):12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
