"""Embedded deployment example: the whole detector in one file, numpy + onnxruntime only (no kws).

This is what a port to a device needs. For a 16 kHz mono 16-bit WAV it computes what kws does:

  audio, after 1.28 s of silence (a stream starts as if the detector had been listening)
        -> log-mel (10 ms frames; constants from backbone_mel.npz)
        -> backbone.onnx: one raw 96-d vector every 80 ms (vector j hears samples [1280 j, 1280 j + 12512))
        -> head.onnx: context C vectors in, one unit vector out (the first vector repeated C-1 times before)
  keyword utterances (raw vectors) -> head.onnx -> `trim` vectors cut at the start, `trim_end` (default `trim`) at the end = the templates
  score of a template of L vectors at stream vector e: mean cosine along the diagonal ending at e;
  a keyword's score: its best template's, or, where the manifest sets templates.soft_max (t), the
  soft maximum of its templates' m + log(mean exp(t (s - m))) / t, m the best. A detection: the first vector of each stretch of the
  score at or above the keyword's threshold, more than 1 s after the previous detection (a
  stretch that begins sooner: its first vector past that), as kws.Detector with vad=False fires.

Keywords come from the JSON file `kws enroll export` writes: one plain-JSON file (any language reads
it; the store folder needs an .npz reader too) holding, per keyword, its name, threshold, `segments`
(vectors per utterance) and `vectors` (the utterances' raw vectors, back to back, as lists of
numbers; its `templates` field, rounded to 5 decimals for the browser, is not used: the templates
are made here from the vectors, so the numbers equal kws's). No VAD: kws's `vad` gate is left out.
Make one with

    python -m kws enroll add jarvis && python -m kws enroll export keywords.json
    python -m kws enroll --store kws/assets/demo export keywords.json      # the shipped demo keywords

then run

    python demos/embedded_match.py kws/assets/model keywords.json kws/assets/sample.wav
"""
import json
import os
import sys
import wave

import numpy as np
import onnxruntime as ort

SR, MEL_WIN, MEL_HOP, CONTEXT, STRIDE = 16000, 512, 160, 76, 8   # mel frames; 76 per vector, every 8th
HOP, SPAN = MEL_HOP * STRIDE, MEL_HOP * (CONTEXT - 1) + MEL_WIN    # a vector: 1280 samples apart, hears 12512
REFRACTORY = 12      # 1 s in vectors, rounded half to even as kws does: detections are >= 13 vectors apart
PRIMED = 16 * HOP    # silence heard before the recording, as kws's detector starts a stream (1.28 s)


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = 1, 1, 3
    with open(path, "rb") as f:
        data = f.read()
    if not vnni():
        data = exact_int8(data)
    return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])


# onnxruntime multiplies uint8 activations by int8 weights exactly where the x86-64 CPU has VNNI; with
# AVX2 alone its kernels saturate 16-bit pair sums. There the int8 graph's weights are made uint8, 128
# higher with their zero points (the same values dequantised; exact uint8 x uint8 kernels), as kws
# does (kws.model.graph_bytes). Protocol buffers read with numpy: ModelProto.graph 7; GraphProto node 1,
# initializer 5, input 11, output 12; NodeProto input 1, op_type 4; TensorProto data_type 2,
# int32_data 5, name 8, raw_data 9, data_location 14.
def vnni(cpuinfo="/proc/cpuinfo"):
    try:
        with open(cpuinfo) as f:
            flags = next((ln.split(":", 1)[-1].split() for ln in f if ln.startswith("flags")), [])
    except OSError:
        return False
    return bool({"avx512_vnni", "avx_vnni"} & set(flags))


def _varint(buf, i):
    n = shift = 0
    while True:
        b = buf[i]
        n, i, shift = n | (b & 0x7F) << shift, i + 1, shift + 7
        if not b & 0x80:
            return n, i


def _fields(buf):
    i = 0
    while i < len(buf):
        start, (key, i) = i, _varint(buf, i)
        wire = key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        else:                                   # fixed 64 or 32 bits
            value, i = buf[i:i + (8 if wire == 1 else 4)], i + (8 if wire == 1 else 4)
        yield key >> 3, wire, value, start, i


def _encode(n):
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n >> 7 else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _ld(number, payload):
    return _encode(number << 3 | 2) + _encode(len(payload)) + payload


def exact_int8(data):
    """The model's bytes with every int8 initializer that only DequantizeLinear reads made uint8."""
    for number, _, graph, gs, ge in _fields(data):
        if number != 7:
            continue
        readers, inits = {}, {}
        for n2, _, value, s, e in _fields(graph):
            f = [(n3, w3, v3) for n3, w3, v3, _, _ in _fields(value)] if n2 in (1, 5, 11, 12) else []
            if n2 == 1:
                op = next((bytes(v).decode() for n3, _, v in f if n3 == 4), "")
                for k, name in enumerate(bytes(v).decode() for n3, _, v in f if n3 == 1):
                    readers.setdefault(name, set()).add(op == "DequantizeLinear" and k in (0, 2))
            elif n2 == 5 and (2, 0, 3) in f and not any(n3 == 14 for n3, _, _ in f):
                inits[next(bytes(v).decode() for n3, _, v in f if n3 == 8)] = (s, e, f)
            elif n2 in (11, 12):
                readers.setdefault(next(bytes(v).decode() for n3, _, v in f if n3 == 1), set()).add(False)
        out, at = [], 0
        for name, (s, e, f) in sorted(inits.items(), key=lambda kv: kv[1][0]):
            if readers.get(name) != {True}:
                continue
            vals, keep = [], b""
            for n3, w3, v in f:
                if n3 == 9:
                    vals += list(np.frombuffer(bytes(v), np.int8))
                elif n3 == 5:
                    vals += [_varint(v, j)[0] for j in range(len(v)) if j == 0 or not v[j - 1] & 0x80] \
                        if w3 == 2 else [v]
                elif n3 != 2:
                    keep += (_encode(n3 << 3) + _encode(v)) if w3 == 0 else _ld(n3, bytes(v))
            q = (np.array([int(x) & 0xFF for x in vals], np.uint8) ^ np.uint8(0x80)).tobytes()   # v + 128
            out += [bytes(graph[at:s]), _ld(5, keep + _encode(2 << 3) + _encode(2) + _ld(9, q))]
            at = e
        body = b"".join(out) + bytes(graph[at:])
        return bytes(data[:gs]) + _ld(7, body) + bytes(data[ge:])
    raise ValueError("not an ONNX model")


def unit(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def raw_vectors(model, x):
    """float32 audio -> (n, 96) backbone vectors."""
    c = np.load(os.path.join(model, "backbone_mel.npz"))
    n = 0 if x.size < MEL_WIN else 1 + (x.size - MEL_WIN) // MEL_HOP
    idx = np.arange(n)[:, None] * MEL_HOP + np.arange(MEL_WIN)[None, :]
    spec = np.fft.rfft(x[idx] * (c["window"].astype(np.float32) * 32768.0), n=MEL_WIN, axis=1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    mel = (np.log10(np.maximum(power @ c["melW"].astype(np.float32), 1e-10)) + 2.0).astype(np.float32)
    return session(os.path.join(model, "backbone.onnx")).run(None, {"mel": mel[None]})[0][0]


def head(sess, context, v):
    """(n, 96) raw vectors -> (n, D) unit vectors; before the first vector, it is repeated."""
    padded = np.concatenate([np.repeat(v[:1], context - 1, axis=0), v]).astype(np.float32)
    return unit(sess.run(None, {"vectors": padded[None]})[0][0])


def stream_vectors(model, hsess, context, x):
    """The matching vectors of a recording heard after PRIMED samples of silence, and how many of
    them hear that silence alone (they are not scored)."""
    v = head(hsess, context, raw_vectors(model, np.concatenate([np.zeros(PRIMED, np.float32), x])))
    return v, (PRIMED - SPAN) // HOP + 1


def keyword_templates(hsess, context, trim, kw, trim_end=None):
    """A keyword's templates: each utterance's raw vectors through the head, `trim` cut at its start
    and `trim_end` (default `trim`) at its end."""
    trim_end = trim if trim_end is None else trim_end
    vec = np.array(kw["vectors"], np.float32)
    tpls = []
    for u in np.split(vec, np.cumsum(kw.get("segments") or [len(vec)])[:-1]):
        t = head(hsess, context, u)
        tpls.append(t[trim:len(t) - trim_end] if len(t) > trim + trim_end else t)
    return tpls


def template_scores(tpl, x):
    """Mean cosine along the diagonal of template tpl (L, D) ending at each stream vector of x
    (n, D); -1 before the template fits."""
    L, g = tpl.shape[0], x @ tpl.T
    out = np.full(x.shape[0], -1.0, np.float32)
    if x.shape[0] >= L:
        out[L - 1:] = sum(g[j:x.shape[0] - L + 1 + j, j] for j in range(L)) / L
    return out


def keyword_scores(tpls, stream, soft_max=0.0):
    """A keyword's score at each stream vector (its best template's, or with ``soft_max`` the soft
    maximum of its templates') and the best template's length."""
    per_tpl = np.stack([template_scores(t, stream) for t in tpls], axis=1)   # (n, templates)
    best = per_tpl.max(axis=1)
    if soft_max:
        e = np.exp(soft_max * (per_tpl - best[:, None]))
        best = (best + np.log(e.mean(axis=1)) / soft_max).astype(np.float32)
    return best, np.array([len(t) for t in tpls])[per_tpl.argmax(axis=1)]


def detections(s, threshold):
    """The detector's events: a vector where the score reaches the threshold after being under it,
    more than REFRACTORY vectors after the last event (kws.spot.events.Firing, at="crossing")."""
    out, above, quiet = [], False, 0
    for e, v in enumerate(s):
        if v >= threshold:
            if not above and e >= quiet:
                out.append(e)
                quiet, above = e + REFRACTORY + 1, True
        else:
            above = False
    return out


def word_times(e, length, inset, inset_end=None):
    """Where (s) the word heard by a template of ``length`` vectors ending at vector e lies: the
    template's vectors hear it from ``inset`` after the first one's start to ``inset_end`` (default
    ``inset``) before the last one's end (inset = pad_s - trim * 80 ms, inset_end = pad_s -
    trim_end * 80 ms)."""
    inset_end = inset if inset_end is None else inset_end
    start = max(0.0, ((e - length + 1) * HOP - PRIMED) / SR + inset)
    return start, max(start, (e * HOP + SPAN - PRIMED) / SR - inset_end)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def main(model, keywords_json, wav_path):
    manifest = read_json(os.path.join(model, "manifest.json"))
    pad_s, trim = manifest["templates"]["pad_s"], manifest["templates"]["trim"]
    trim_end = manifest["templates"].get("trim_end", trim)
    soft_max = float(manifest["templates"].get("soft_max", 0.0))
    inset, inset_end = pad_s - trim * HOP / SR, pad_s - trim_end * HOP / SR
    with wave.open(wav_path, "rb") as w:
        ok = w.getframerate() == SR and w.getnchannels() == 1 and w.getsampwidth() == 2
        assert ok, "need a 16 kHz mono 16-bit WAV"
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    assert x.size >= SPAN, "the recording is shorter than one vector (0.782 s)"
    hsess, context = session(os.path.join(model, manifest["head"]["file"])), int(manifest["head"]["context"])
    stream, n0 = stream_vectors(model, hsess, context, x)
    doc = read_json(keywords_json)
    assert doc["model_id"] == manifest["model_id"], "keywords made for another model: export them again"
    results = {}
    for kw in doc["keywords"]:
        score, lengths = keyword_scores(keyword_templates(hsess, context, trim, kw, trim_end), stream, soft_max)
        score[:n0] = -np.inf                                                    # heard before the recording
        e = int(score.argmax())
        r = {"threshold": kw["threshold"], "best": float(score[e]),
             "best_at": word_times(e, lengths[e], inset, inset_end)[0],
             "detections": [(*word_times(p, lengths[p], inset, inset_end), float(score[p]))
                            for p in n0 + np.array(detections(score[n0:], kw["threshold"]), int)]}
        results[kw["name"]] = r
        print(f"{kw['name']}: best {r['best']:.4f} at {r['best_at']:.2f} s, threshold {r['threshold']:.4f}")
        for start, end, s in r["detections"]:
            print(f"  detected at {start:.2f}-{end:.2f} s, score {s:.4f}")
    return results


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
