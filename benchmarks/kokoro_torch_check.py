"""How close kws.corpus.kokoro_torch (Kokoro-82M in PyTorch, float32, weights from the int8 ONNX file)
renders to onnxruntime (kws.enroll.kokoro, the file itself), on the CPU.

    OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/kokoro_torch_check.py [--voices 4] [--device cpu]

For each phrase x voice: the per-token durations (how many tokens differ, by how much), the log-mel
spectrograms (mean absolute difference in dB over frames within 60 dB of the loudest, 80 mels of
1024-point frames), the kws front end's matching vectors of both renderings (resampled to 16 kHz as
kws.enroll does; mean cosine of frame pairs), and the same numbers for a reference pair: onnxruntime
against onnxruntime with the style moved 2 % towards another voice. Then the time of one rendering
on one thread both ways, and a batched forward against the same rows alone.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

PHRASES = [
    [["K", "AE1", "T"]],
    [["HH", "EH0", "L", "OW1"]],
    [["W", "AO1", "T", "ER0"]],
    [["K", "AH0", "M", "P", "Y", "UW1", "T", "ER0"]],
    [["S", "EH1", "V", "AH0", "N"]],
    [["B", "AE1", "N", "AH0", "N", "AH0"]],
    [["HH", "EY1"], ["JH", "AA1", "R", "V", "IH0", "S"]],
    [["OW1", "K", "EY1"], ["G", "UW1", "G", "AH0", "L"]],
    [["T", "ER1", "N"], ["AA1", "N"], ["DH", "AH0"], ["L", "AY1", "T", "S"]],
]
SENTENCE = ("the quick brown fox jumps over the lazy dog while seven small children watch from the garden")
VOICES = ["af_heart", "am_adam", "bf_emma", "bm_george", "af_nova", "am_michael"]


def sentence_phonemes() -> str:
    from kws.enroll.kokoro import misaki
    from kws.enroll.lexicon import cmu_lexicon_stressed

    lex = cmu_lexicon_stressed()
    return misaki([list(lex[w]) for w in SENTENCE.split()])


def mel_db(audio: np.ndarray, sr: int = 24000, n_fft: int = 1024, hop: int = 240, n_mels: int = 80) -> np.ndarray:
    """[frames, n_mels] log-mel power in dB (numpy only)."""
    win = np.hanning(n_fft + 1)[:-1].astype(np.float64)
    x = np.pad(audio.astype(np.float64), (n_fft // 2, n_fft // 2))
    n = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * win, axis=1)) ** 2
    # triangular mel filters (HTK mel scale)
    def hz2mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel2hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    pts = mel2hz(np.linspace(hz2mel(40.0), hz2mel(sr / 2), n_mels + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / sr)
    fb = np.zeros((n_mels, len(bins)))
    for i in range(n_mels):
        lo, c, hi = pts[i], pts[i + 1], pts[i + 2]
        fb[i] = np.clip(np.minimum((bins - lo) / (c - lo), (hi - bins) / (hi - c)), 0, None)
    return 10.0 * np.log10(spec @ fb.T + 1e-10)


def mel_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |dB difference| of two renderings' log-mels, over the bins within 60 dB of the louder
    one's maximum (the shorter length when they differ)."""
    A, B = mel_db(a), mel_db(b)
    n = min(len(A), len(B))
    A, B = A[:n], B[:n]
    top = max(A.max(), B.max())
    keep = (np.maximum(A, B) > top - 60.0)
    return float(np.abs(np.maximum(A, top - 60) - np.maximum(B, top - 60))[keep].mean())


def to16k(audio: np.ndarray) -> np.ndarray:
    from kws.audio.io import resample

    return resample(audio, 24000, 16000).astype(np.float32)


def vec_cos(model, a: np.ndarray, b: np.ndarray) -> float:
    """Mean cosine of the front end's matching vectors of two renderings (each with 0.25 s of
    silence before and after, so that a short word gives a few vectors)."""
    pad = np.zeros(4000, np.float32)
    va = model.vectors(np.concatenate([pad, to16k(a), pad]))
    vb = model.vectors(np.concatenate([pad, to16k(b), pad]))
    n = min(len(va), len(vb))
    return float(np.mean(np.sum(va[:n] * vb[:n], axis=1)))


def generator_alone(tm, ids: np.ndarray, style: np.ndarray) -> tuple:
    """The decoder's generator of ``tm`` run on onnxruntime's own inputs to it (the output of
    decode.3 and the F0 curve), with its own STFT of the source and with onnxruntime's: mel |dB diff|
    of each against onnxruntime's audio."""
    import onnx
    import onnxruntime as ort
    import torch
    from kws.enroll import kokoro

    names = ["/encoder/F0_proj/Conv_output_0", "/decoder/decoder/decode.3/Div_4_output_0",
             "/decoder/decoder/generator/Concat_3_output_0"]
    mo = onnx.load(str(kokoro.model_path()))
    for n in names:
        mo.graph.output.append(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(mo.SerializeToString(), so, providers=["CPUExecutionProvider"])
    out = sess.run(None, {"tokens": ids[None], "style": style[None].astype(np.float32),
                          "speed": np.array([1.0], np.float32)})
    audio, f0, x, spec = out[0].ravel(), torch.from_numpy(out[1]).reshape(1, -1), torch.from_numpy(out[2]), \
        torch.from_numpy(out[3])
    g = tm.decoder.generator
    s = torch.from_numpy(style[None, :128].astype(np.float32))
    res = []
    with torch.no_grad():
        for use_ort_stft in (False, True):
            if use_ort_stft:
                g.stft = lambda h, n: (spec[:, :11], spec[:, 11:])
            try:
                a = g(x, s, f0, torch.tensor([f0.shape[1]]))[0, :audio.size].numpy()
            finally:
                if "stft" in g.__dict__:
                    del g.stft
            res.append(mel_diff(audio, a))
    return tuple(res)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--voices", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from kws.corpus import kokoro_torch
    from kws.enroll import kokoro
    from kws.model.model import Model

    t = time.perf_counter()
    tm = kokoro_torch.load(device=args.device)
    print(f"load: {time.perf_counter() - t:.1f} s, {sum(p.numel() for p in tm.parameters()):,} parameters, "
          f"{len(tm.weight_sources)} tensors from the file, {len(tm.unused_initializers)} graph constants unused")
    kokoro.ready()
    fe = Model.load()
    v = kokoro.voices()
    phon = [kokoro.misaki(p) for p in PHRASES] + [sentence_phonemes()]
    voices = VOICES[: args.voices]
    rows = []
    print(f"{'phrase':34s} {'voice':10s} {'tok':>4s} {'durdiff':>8s} {'mel dB':>7s} {'cos':>6s} | "
          f"{'ref dB':>7s} {'ref cos':>7s}")
    for ph in phon:
        ids = kokoro.tokens(ph)
        for vi, voice in enumerate(voices):
            style = v.style(voice, ids.size - 2)
            other = v.style(voices[(vi + 1) % len(voices)], ids.size - 2)
            a_ort, d_ort = kokoro.synthesize_timed(ids, style)
            a_pt, d_pt = tm.synthesize_timed(ids, style)
            a_ref, _ = kokoro.synthesize_timed(ids, 0.98 * style + 0.02 * other)
            nd = int(np.sum(d_ort != d_pt))
            md = int(np.max(np.abs(d_ort - d_pt))) if nd else 0
            r = dict(n=ids.size, nd=nd, md=md, db=mel_diff(a_ort, a_pt), cos=vec_cos(fe, a_ort, a_pt),
                     rdb=mel_diff(a_ort, a_ref), rcos=vec_cos(fe, a_ort, a_ref), len_eq=a_ort.size == a_pt.size)
            rows.append(r)
            print(f"{ph[:34]:34s} {voice:10s} {r['n']:4d} {f'{nd} ({md})':>8s} {r['db']:7.2f} {r['cos']:6.3f} | "
                  f"{r['rdb']:7.2f} {r['rcos']:7.3f}", flush=True)
    tot = sum(r["n"] for r in rows)
    print(f"\n{len(rows)} renderings, {tot} tokens: durations differ on {sum(r['nd'] for r in rows)} tokens "
          f"(at most {max(r['md'] for r in rows)} frame), in {sum(r['nd'] > 0 for r in rows)} renderings; "
          f"lengths equal in {sum(r['len_eq'] for r in rows)}")
    print(f"log-mel |dB diff|: torch vs onnxruntime mean {np.mean([r['db'] for r in rows]):.2f} "
          f"(max {np.max([r['db'] for r in rows]):.2f}); reference (style 2 % to another voice) mean "
          f"{np.mean([r['rdb'] for r in rows]):.2f}")
    same = [r for r in rows if r["nd"] == 0]
    print(f"  renderings with the same durations ({len(same)}): torch vs onnxruntime mean "
          f"{np.mean([r['db'] for r in same]):.2f}, reference {np.mean([r['rdb'] for r in same]):.2f}")
    print(f"front-end vector cosine: torch vs onnxruntime mean {np.mean([r['cos'] for r in rows]):.4f} "
          f"(min {np.min([r['cos'] for r in rows]):.4f}); reference mean {np.mean([r['rcos'] for r in rows]):.4f}")

    # where the difference comes from: the generator alone on onnxruntime's inputs to it
    iso = []
    for ph in phon[:4]:
        ids = kokoro.tokens(ph)
        iso.append(generator_alone(tm, ids, v.style(voices[0], ids.size - 2)))
    print(f"generator alone on onnxruntime's decoder output and F0 ({len(iso)} words, {voices[0]}): mel |dB diff| "
          f"{np.mean([i[0] for i in iso]):.2f} with its own STFT of the source, "
          f"{np.mean([i[1] for i in iso]):.2f} with onnxruntime's STFT output")

    # time: one rendering of a 2-word phrase and of the sentence, one thread each way
    for ph in (phon[6], phon[-1]):
        ids = kokoro.tokens(ph)
        style = v.style(voices[0], ids.size - 2)
        kokoro.synthesize_timed(ids, style)
        tm.synthesize_timed(ids, style)
        t0 = time.perf_counter()
        for _ in range(3):
            a, _ = kokoro.synthesize_timed(ids, style)
        t1 = time.perf_counter()
        for _ in range(3):
            tm.synthesize_timed(ids, style)
        t2 = time.perf_counter()
        print(f"time, {ids.size} tokens ({a.size / 24000:.2f} s of audio): onnxruntime {(t1 - t0) / 3:.2f} s, "
              f"torch ({args.device}, {torch.get_num_threads()} thread) {(t2 - t1) / 3:.2f} s")

    # batched against alone
    ids_l = [kokoro.tokens(p) for p in phon]
    styles = [v.style(voices[i % len(voices)], x.size - 2) for i, x in enumerate(ids_l)]
    speeds = [0.8 + 0.05 * i for i in range(len(ids_l))]
    batch = tm.synthesize_batch(ids_l, styles, speeds)
    worst, dd, mels = 0.0, 0, []
    for x, s, sp, (ab, db) in zip(ids_l, styles, speeds, batch):
        a1, d1 = tm.synthesize_timed(x, s, sp)
        dd += int(np.sum(d1 != db))
        worst = max(worst, float(np.max(np.abs(a1 - ab))) if a1.size == ab.size else float("inf"))
        mels.append(mel_diff(a1, ab))
    print(f"batch of {len(ids_l)} (speeds 0.8-1.2) against each row alone: durations differ on {dd} tokens, "
          f"max |audio difference| {worst:.2e}, log-mel |dB diff| mean {np.mean(mels):.2f} (max {np.max(mels):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
