// kws.js: the kws keyword detector in a web page (ES module, no dependencies but the
// onnxruntime-web files shipped beside it in ./ort/).
//
//   import { loadModel, KeywordSpotter } from './kws.js';
//   const model = await loadModel('model/');               // a kws model folder (manifest.json, ...)
//   const keywords = await (await fetch('keywords.json')).json();   // python -m kws enroll export FILE
//   const spotter = new KeywordSpotter(keywords, model);
//   for (const e of await spotter.process(float32Chunk))  // 16 kHz mono samples in [-1, 1], any size
//     console.log(e.keyword, e.score, e.start, e.end);    // seconds from the start of the stream
//   await spotter.flush();                                // at the end of a file
//
// It mirrors the Python detector (kws.model.backbone, kws.model.head, kws.spot.templates,
// kws.spot.events, kws.spot.detector, kws.spot.room):
// - the backbone's log-mel front end: 512-sample frames every 160 samples, the model's window and
//   32-band mel matrix (backbone_mel.npz), power spectrum, log10(max(mel power, 1e-10)) + 2, audio
//   scaled to 16-bit range;
// - the backbone network through onnxruntime-web, WebAssembly, one thread; one 96-d vector every
//   80 ms, computed exactly as the Python stream (kws.model.backbone.StreamingBackbone) computes
//   them, whatever the chunking: where the manifest names the network's step graph
//   (frontend.step_network, backbone_step.onnx) a stream runs it, 8 new mel frames a vector and the
//   rows it needs from the step before kept as states (zero states and `kws_lead_frames` frames of
//   zeros at the start, the first `kws_skip_vectors` vectors dropped: the graph's metadata);
//   without it, the network (backbone.onnx, mel [1, T, 32] -> vectors [1, 1 + (T - 76) / 8, 96])
//   over each vector's whole 76-frame window. Both give the same vectors;
// - the model's head (head.onnx, causal context C, edge-padded start) when it has one; the vectors
//   are unit-normalised;
// - each keyword's templates (from `enroll export`): the score of a template of L vectors at stream
//   vector e is the mean cosine of its rows with vectors e-L+1 .. e (-1 until it fits); a keyword's
//   score is its best template's, or, where the manifest sets templates.soft_max (t), the soft
//   maximum of its templates' m + log(mean exp(t (s - m))) / t, m the best (kws.spot.templates.combine);
// - a keyword fires as soon as its score reaches its threshold after being under it (option
//   `fire: 'crossing'`, the default; a stretch above the threshold that begins within the
//   refractory time, 1 s or 12 vectors, of an event fires where it first lies past it), or with
//   `fire: 'peak'` at a local peak of its score at or above its threshold (when the score falls
//   after rising; a peak within the refractory time after an event's peak stays quiet), as
//   kws.spot.events.Firing does;
// - thresholds that learn the room (kws.spot.room): the peaks that stay below a keyword's threshold
//   and the time listened move its threshold toward its false-alarm target as heard here (option
//   `adapt`; `roomState()` is what was learnt, for the server to keep).
// The Python detector can also gate scores by voice activity (webrtcvad); this one does not (the
// `--no-vad` detector): see docs/web.md.

import * as ort from './ort/ort.wasm.bundle.min.mjs';

export const SAMPLE_RATE = 16000;
export const MEL_HOP = 160;
export const MEL_WIN = 512;
export const N_MELS = 32;
export const CONTEXT = 76;
export const STRIDE = 8;
export const VEC_HOP = MEL_HOP * STRIDE;                        // 1280 samples, 80 ms
export const VEC_SPAN = MEL_HOP * (CONTEXT - 1) + MEL_WIN;      // 12512 samples
// A stream starts as if this many vectors of silence had been heard (kws.spot.detector.PRIMED_VECTORS):
// a word said at once gets the context it has later on. Times stay the stream's own.
export const PRIMED_VECTORS = 16;
const PRIMED_SAMPLES = PRIMED_VECTORS * VEC_HOP;
const PCM_SCALE = 32768;
const LOG_FLOOR = 1e-10;
const N_BINS = MEL_WIN / 2 + 1;

/** An error whose message is meant for the user (what is wrong and, where there is one, the way out). */
export class KwsError extends Error {
  constructor(message) { super(message); this.name = 'KwsError'; }
}

// ------------------------------------------------------------------ onnxruntime-web

let ortReady = null;

/** Set up onnxruntime-web once: WebAssembly, one thread, its binary from ./ort/ (gzip-compressed,
 * unpacked here, so that any static server can serve it). */
export function initOrt(wasmUrl = new URL('./ort/ort-wasm-simd-threaded.wasm.gz', import.meta.url)) {
  if (!ortReady) {
    ortReady = (async () => {
      let resp;
      try {
        resp = await fetch(wasmUrl);
      } catch (e) {
        throw new KwsError(`cannot load the ONNX runtime (${wasmUrl}): ${e.message}`);
      }
      if (!resp.ok) throw new KwsError(`cannot load the ONNX runtime: ${wasmUrl} answered ${resp.status} ${resp.statusText}`);
      let body = resp.body;
      if (String(wasmUrl).endsWith('.gz')) body = body.pipeThrough(new DecompressionStream('gzip'));
      ort.env.wasm.wasmBinary = new Uint8Array(await new Response(body).arrayBuffer());
      ort.env.wasm.numThreads = 1;
      ort.env.wasm.proxy = false;
      ort.env.logLevel = 'error';
      return ort;
    })();
    ortReady.catch(() => { ortReady = null; });
  }
  return ortReady;
}

async function fetchBytes(url, what, optional = false) {
  let resp;
  try {
    resp = await fetch(url);
  } catch (e) {
    throw new KwsError(`the model's ${what} could not be loaded from ${url}: ${e.message}`);
  }
  if (optional && resp.status === 404) return null;
  if (!resp.ok) {
    throw new KwsError(`the model's ${what} is missing: ${url} answered ${resp.status} ${resp.statusText}`.trim());
  }
  return new Uint8Array(await resp.arrayBuffer());
}

// ------------------------------------------------------------------ .npz (numpy archives)

/** The arrays of a numpy .npz file (a zip of .npy files): {name: {shape, data: Float64Array}}. */
export async function readNpz(bytes) {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // end of central directory
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 65557); i--) {
    if (dv.getUint32(i, true) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new KwsError('not a numpy .npz archive (no zip directory)');
  const count = dv.getUint16(eocd + 10, true);
  let p = dv.getUint32(eocd + 16, true);
  const out = {};
  for (let n = 0; n < count; n++) {
    if (dv.getUint32(p, true) !== 0x02014b50) throw new KwsError('damaged .npz archive');
    const method = dv.getUint16(p + 10, true);
    const csize = dv.getUint32(p + 20, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    const local = dv.getUint32(p + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLen));
    p += 46 + nameLen + extraLen + commentLen;
    const start = local + 30 + dv.getUint16(local + 26, true) + dv.getUint16(local + 28, true);
    let data = bytes.subarray(start, start + csize);
    if (method === 8) {
      data = new Uint8Array(await new Response(new Blob([data]).stream()
        .pipeThrough(new DecompressionStream('deflate-raw'))).arrayBuffer());
    } else if (method !== 0) {
      throw new KwsError(`.npz member ${name}: zip method ${method} not supported`);
    }
    out[name.replace(/\.npy$/, '')] = readNpy(data);
  }
  return out;
}

function readNpy(b) {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const major = b[6];
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const hstart = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(b.subarray(hstart, hstart + hlen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  if (/'fortran_order':\s*True/.test(header)) throw new KwsError('Fortran-ordered .npy arrays are not supported');
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(',').map(s => s.trim()).filter(Boolean).map(Number);
  const n = shape.reduce((a, c) => a * c, 1);
  const off = hstart + hlen;
  const raw = b.slice(off, off + n * Number(descr.slice(2)));
  let typed;
  if (descr === '<f4') typed = new Float32Array(raw.buffer);
  else if (descr === '<f8') typed = new Float64Array(raw.buffer);
  else throw new KwsError(`.npy type ${descr} not supported`);
  return { shape, data: typed };
}

// ------------------------------------------------------------------ mel front end

/** Log-mel frames as the backbone reads them (kws.model.backbone.Backbone.mel_frames). */
export class MelFrontEnd {
  constructor(window, melW) {
    if (window.length !== MEL_WIN || melW.length !== N_BINS * N_MELS) {
      throw new KwsError('the model\'s backbone_mel.npz does not hold speech-embedding front-end constants');
    }
    // the window times the 16-bit scale, rounded to float32 as numpy computes it
    this.win = new Float32Array(MEL_WIN);
    for (let i = 0; i < MEL_WIN; i++) this.win[i] = Math.fround(window[i] * PCM_SCALE);
    this.melW = Float64Array.from(melW);                   // (257, 32), row-major
    const bits = Math.log2(MEL_WIN);
    this.rev = new Uint32Array(MEL_WIN);
    for (let i = 0; i < MEL_WIN; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.rev[i] = r;
    }
    this.cos = new Float64Array(MEL_WIN / 2);
    this.sin = new Float64Array(MEL_WIN / 2);
    for (let i = 0; i < MEL_WIN / 2; i++) {
      this.cos[i] = Math.cos(-2 * Math.PI * i / MEL_WIN);
      this.sin[i] = Math.sin(-2 * Math.PI * i / MEL_WIN);
    }
    this.re = new Float64Array(MEL_WIN);
    this.im = new Float64Array(MEL_WIN);
    this.power = new Float64Array(N_BINS);
  }

  /** `count` frames of `audio` (Float32Array), the first at sample `start`, into `out` at row `row`. */
  frames(audio, start, count, out, row) {
    const { re, im, rev, win, power, melW } = this;
    for (let f = 0; f < count; f++) {
      const s = start + f * MEL_HOP;
      for (let i = 0; i < MEL_WIN; i++) {
        re[rev[i]] = Math.fround(audio[s + i] * win[i]);
        im[rev[i]] = 0;
      }
      for (let size = 2; size <= MEL_WIN; size <<= 1) {        // radix-2 FFT
        const half = size >> 1, step = MEL_WIN / size;
        for (let i = 0; i < MEL_WIN; i += size) {
          for (let j = 0; j < half; j++) {
            const wr = this.cos[j * step], wi = this.sin[j * step];
            const a = i + j, b = a + half;
            const tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr;
            re[b] = re[a] - tr; im[b] = im[a] - ti;
            re[a] += tr; im[a] += ti;
          }
        }
      }
      for (let k = 0; k < N_BINS; k++) power[k] = re[k] * re[k] + im[k] * im[k];
      const o = (row + f) * N_MELS;
      for (let m = 0; m < N_MELS; m++) {
        let e = 0;
        for (let k = 0; k < N_BINS; k++) e += power[k] * melW[k * N_MELS + m];
        out[o + m] = Math.log10(Math.max(e, LOG_FLOOR)) + 2;
      }
    }
  }

  /** Every mel frame of a whole recording: Float32Array (frames * 32). */
  mel(audio) {
    const n = numMelFrames(audio.length);
    const out = new Float32Array(n * N_MELS);
    this.frames(audio, 0, n, out, 0);
    return out;
  }
}

export function numMelFrames(nSamples) {
  return nSamples < MEL_WIN ? 0 : 1 + Math.floor((nSamples - MEL_WIN) / MEL_HOP);
}

export function numVectors(nSamples) {
  const f = numMelFrames(nSamples);
  return f < CONTEXT ? 0 : 1 + Math.floor((f - CONTEXT) / STRIDE);
}

// ------------------------------------------------------------------ the model

/**
 * Load a kws model folder (manifest.json, the backbone network and mel constants, its step graph
 * and head where the model has them) from `baseUrl`. Returns a Model; KwsError with a readable
 * message otherwise. Option stepGraph: false leaves the step graph out (streams run whole windows).
 */
export async function loadModel(baseUrl, { wasmUrl, stepGraph = true } = {}) {
  const base = new URL(baseUrl, globalThis.document ? document.baseURI : globalThis.location.href);
  const manifestBytes = await fetchBytes(new URL('manifest.json', base), 'manifest (manifest.json)');
  let manifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
  } catch (e) {
    throw new KwsError(`the model's manifest.json is not valid JSON: ${e.message}`);
  }
  if (manifest.format !== 'kws-model' || manifest.format_version !== 3) {
    throw new KwsError(`${base}: not a kws model of format 3 (format ${JSON.stringify(manifest.format)}, version ${JSON.stringify(manifest.format_version)})`);
  }
  const fe = manifest.frontend || {};
  if (fe.kind !== 'speech_embedding') throw new KwsError(`unknown front end ${JSON.stringify(fe.kind)} in the model's manifest`);
  const ortLib = await initOrt(wasmUrl);
  const [net, consts] = await Promise.all([
    fetchBytes(new URL(fe.network, base), `backbone network (${fe.network})`),
    fetchBytes(new URL(fe.constants, base), `mel constants (${fe.constants})`),
  ]);
  const c = await readNpz(consts);
  if (!c.window || !c.melW) throw new KwsError(`${fe.constants}: no window and melW arrays`);
  const opts = { executionProviders: ['wasm'], graphOptimizationLevel: 'all',
                 intraOpNumThreads: 1, interOpNumThreads: 1 };
  let backbone, head = null, step = null;
  try {
    backbone = await ortLib.InferenceSession.create(net, opts);
  } catch (e) {
    throw new KwsError(`the backbone network ${fe.network} could not be loaded: ${e.message}`);
  }
  // the step graph, where the model has one: streams run it (a model folder without it, or a
  // server that answers 404 for it: whole windows, as kws.model.backbone.as_files falls back)
  if (fe.step_network && stepGraph !== false) {
    const bytes = await fetchBytes(new URL(fe.step_network, base), `backbone step graph (${fe.step_network})`, true);
    if (bytes) step = await StepNetwork.create(ortLib, bytes, opts, fe.step_network);
  }
  if (manifest.head) {
    const h = manifest.head;
    const bytes = await fetchBytes(new URL(h.file, base), `head (${h.file})`);
    try {
      head = { session: await ortLib.InferenceSession.create(bytes, opts), context: Number(h.context) };
    } catch (e) {
      throw new KwsError(`the model's head ${h.file} could not be loaded: ${e.message}`);
    }
    if (!(head.context >= 1)) throw new KwsError(`the model's head has context ${h.context}; at least 1`);
  }
  const tpl = manifest.templates || {};
  return new Model(manifest, new MelFrontEnd(c.window.data, c.melW.data), backbone, head,
                   tpl.pad_s ?? 0.6, tpl.trim ?? 2, tpl.trim_end ?? tpl.trim ?? 2, step, softMaxOf(tpl));
}

/** The custom metadata of an ONNX model (ModelProto.metadata_props, field 14): {key: value}. */
export function onnxMetadata(bytes) {
  const out = {};
  let p = 0;
  const varint = (end) => {
    let v = 0, m = 1, b;
    do {
      if (p >= end) throw new KwsError('not an ONNX model (truncated)');
      b = bytes[p++];
      v += (b & 0x7f) * m;
      m *= 128;
    } while (b & 0x80);
    return v;
  };
  const fields = (end, each) => {               // each(field, start, stop) for length-delimited ones
    while (p < end) {
      const key = varint(end), field = Math.floor(key / 8), wire = key % 8;
      if (wire === 0) varint(end);
      else if (wire === 1) p += 8;
      else if (wire === 5) p += 4;
      else if (wire === 2) {
        const len = varint(end), start = p;
        p += len;
        if (p > end) throw new KwsError('not an ONNX model (truncated)');
        each(field, start, p);
      } else {
        throw new KwsError(`not an ONNX model (wire type ${wire})`);
      }
    }
  };
  const text = (a, b) => new TextDecoder().decode(bytes.subarray(a, b));
  fields(bytes.length, (field, a, b) => {
    if (field !== 14) return;
    const after = p;
    let k = '', v = '';
    p = a;
    fields(b, (f, x, y) => { if (f === 1) k = text(x, y); else if (f === 2) v = text(x, y); });
    p = after;
    out[k] = v;
  });
  return out;
}

/**
 * The backbone's step graph (kws.model.backbone._Step; export/backbone.py, step_network): the next
 * 8n mel frames and the states of the step before -> the n new vectors and the next states. A
 * stream starts with zero states and `lead` frames of zeros before its first frame, and drops the
 * first `skip` vectors it gives.
 */
export class StepNetwork {
  static async create(ortLib, bytes, opts, name = 'backbone_step.onnx') {
    const meta = onnxMetadata(bytes);
    const lead = Number(meta.kws_lead_frames), skip = Number(meta.kws_skip_vectors);
    if (!Number.isInteger(lead) || !Number.isInteger(skip) || meta.kws_lead_frames === undefined ||
        meta.kws_skip_vectors === undefined) {
      throw new KwsError(`${name}: not a backbone step graph (no kws_lead_frames / kws_skip_vectors)`);
    }
    let session;
    try {
      session = await ortLib.InferenceSession.create(bytes, opts);
    } catch (e) {
      throw new KwsError(`the backbone step graph ${name} could not be loaded: ${e.message}`);
    }
    if (session.inputNames[0] !== 'mel') {
      throw new KwsError(`${name}: not a backbone step graph (first input ${JSON.stringify(session.inputNames[0])})`);
    }
    const states = [];
    for (const m of (session.inputMetadata || []).slice(1)) {
      const dims = (m.shape || []).slice(1);
      if (!dims.length || !dims.every(d => Number.isInteger(d) && d > 0)) {
        throw new KwsError(`${name}: state ${m.name} has no fixed shape (${JSON.stringify(m.shape)})`);
      }
      states.push({ name: m.name, dims: [1, ...dims] });
    }
    if (states.length !== session.inputNames.length - 1) throw new KwsError(`${name}: the runtime gave no input shapes`);
    return new StepNetwork(session, lead, skip, states);
  }

  constructor(session, lead, skip, states) {
    this.session = session;
    this.lead = lead;
    this.skip = skip;
    this.states = states;        // [{name, dims}]
  }

  zeroStates() {
    const out = {};
    for (const { name, dims } of this.states) {
      out[name] = new ort.Tensor('float32', new Float32Array(dims.reduce((a, c) => a * c, 1)), dims);
    }
    return out;
  }

  /** (8n * 32) mel frames (the first `frames` rows of `mel`) and the states -> {data, count, dim, states}. */
  async run(mel, frames, states) {
    const n = Math.floor(frames / STRIDE);
    const input = new ort.Tensor('float32', mel.slice(0, STRIDE * n * N_MELS), [1, STRIDE * n, N_MELS]);
    const out = await this.session.run({ mel: input, ...states });
    const next = {};
    for (const { name } of this.states) next[name] = out[`${name}_next`];
    const t = out.vectors;
    return { data: t.data, count: t.dims[1], dim: t.dims[2], states: next };
  }
}

/**
 * kws.model.backbone.StreamingBackbone for the page: mel frames in (addFrames), the vectors they
 * complete out (run), as the offline network gives them. With the model's step graph, each vector
 * costs the network's work on its 8 new frames; without it, on its whole 76-frame window. Keeps
 * under one vector's frames.
 */
export class BackboneStream {
  /** Option stepGraph: false runs whole windows even where the model has the step graph. */
  constructor(model, { stepGraph = true } = {}) {
    this.model = model;
    this.step = stepGraph ? model.step || null : null;
    this.reset();
  }

  /** Whether vectors come from the step graph (else from the network over whole windows). */
  get stepped() { return this.step !== null; }

  reset() {
    this.mel = new Float32Array(4096 * N_MELS);
    this.frames = this.step ? this.step.lead : 0;   // the step graph's lead: frames of zeros
    this.states = this.step ? this.step.zeroStates() : null;
    this.skip = this.step ? this.step.skip : 0;
    this.emitted = 0;
  }

  /** Append `count` mel frames of `audio` (Float32Array), the first at sample 0. */
  addFrames(melFrontEnd, audio, count) {
    const need = (this.frames + count) * N_MELS;
    if (need > this.mel.length) {
      const m = new Float32Array(Math.max(need, 2 * this.mel.length));
      m.set(this.mel.subarray(0, this.frames * N_MELS));
      this.mel = m;
    }
    melFrontEnd.frames(audio, 0, count, this.mel, this.frames);
    this.frames += count;
  }

  /** Vectors the frames so far complete (not yet given). */
  get ready() {
    if (this.step) return Math.max(0, Math.floor(this.frames / STRIDE) - this.skip);
    return this.frames < CONTEXT ? 0 : 1 + Math.floor((this.frames - CONTEXT) / STRIDE);
  }

  /** Compute up to `maxVectors` of the ready vectors: {data: Float32Array, count, dim}. */
  async run(maxVectors = 64) {
    const k = Math.min(this.ready, maxVectors);
    if (k <= 0) return { data: new Float32Array(0), count: 0, dim: 96 };
    if (!this.step) {
      const r = await this.model.vectorsFromMel(this.mel, STRIDE * (k - 1) + CONTEXT);
      this._consume(STRIDE * k);
      this.emitted += r.count;
      return r;
    }
    const steps = this.skip + k;
    const r = await this.step.run(this.mel, STRIDE * steps, this.states);
    this.states = r.states;
    this._consume(STRIDE * steps);
    const drop = Math.min(this.skip, r.count);
    this.skip -= drop;
    this.emitted += r.count - drop;
    return { data: r.data.subarray(drop * r.dim), count: r.count - drop, dim: r.dim };
  }

  _consume(frames) {
    this.mel.copyWithin(0, frames * N_MELS, this.frames * N_MELS);
    this.frames -= frames;
  }
}

export class Model {
  constructor(manifest, mel, backbone, head, padS, trim, trimEnd = trim, step = null, softMax = 0) {
    this.manifest = manifest;
    this.modelId = manifest.model_id;
    this.melFrontEnd = mel;
    this.backbone = backbone;
    this.step = step;             // null (streams run whole windows) or a StepNetwork
    this.head = head;             // null (identity) or {session, context}
    this.padS = padS;
    this.trim = trim;
    this.trimEnd = trimEnd;       // vectors cut at a template's end (kws.spot.templates.cut)
    this.softMax = softMax;       // how a keyword combines its templates' scores (0: the best)
  }

  /** (T * 32) mel frames -> Float32Array (n * 96) raw vectors, n = 1 + (T - 76) / 8. */
  async vectorsFromMel(mel, frames) {
    const n = frames < CONTEXT ? 0 : 1 + Math.floor((frames - CONTEXT) / STRIDE);
    if (n === 0) return { data: new Float32Array(0), count: 0, dim: 96 };
    const used = STRIDE * (n - 1) + CONTEXT;
    const input = new ort.Tensor('float32', mel.slice(0, used * N_MELS), [1, used, N_MELS]);
    const out = await this.backbone.run({ mel: input });
    const t = out.vectors || out[this.backbone.outputNames[0]];
    return { data: t.data, count: t.dims[1], dim: t.dims[2] };
  }

  /** Raw vectors of a whole recording (Float32Array samples): {data, count, dim}; blocks of at most 256 vectors. */
  async vectors(audio, block = 256) {
    const mel = this.melFrontEnd.mel(audio);
    const frames = mel.length / N_MELS;
    const n = frames < CONTEXT ? 0 : 1 + Math.floor((frames - CONTEXT) / STRIDE);
    const parts = [];
    let dim = 96;
    for (let s = 0; s < n; s += block) {
      const k = Math.min(block, n - s);
      const seg = mel.subarray(STRIDE * s * N_MELS, (STRIDE * (s + k - 1) + CONTEXT) * N_MELS);
      const r = await this.vectorsFromMel(seg, STRIDE * (k - 1) + CONTEXT);
      parts.push(r.data);
      dim = r.dim;
    }
    const data = new Float32Array(n * dim);
    let o = 0;
    for (const p of parts) { data.set(p, o); o += p.length; }
    return { data, count: n, dim };
  }

  /** A new stream of the backbone: mel frames in, raw vectors out (the step graph where the model has it). */
  backboneStream(options = {}) { return new BackboneStream(this, options); }

  /** A new stream through the head: push raw vectors, get unit matching vectors. */
  headStream() { return new HeadStream(this.head); }
}

function unitRows(data, count, dim) {
  const out = new Float64Array(count * dim);
  for (let i = 0; i < count; i++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += data[i * dim + j] * data[i * dim + j];
    const norm = Math.max(Math.sqrt(s), 1e-12);
    for (let j = 0; j < dim; j++) out[i * dim + j] = data[i * dim + j] / norm;
  }
  return out;
}

/** kws.model.head.HeadStream: the head's outputs of a stream of raw vectors (identity without a head). */
class HeadStream {
  constructor(head) { this.head = head; this.hist = null; }

  reset() { this.hist = null; }

  async push(data, count, dim) {
    if (count === 0) return { data: new Float64Array(0), count: 0, dim };
    if (!this.head) return { data: unitRows(data, count, dim), count, dim };
    const c = this.head.context;
    let x = data, rows = count;
    if (c > 1) {
      if (!this.hist) {
        this.hist = new Float32Array((c - 1) * dim);
        for (let i = 0; i < c - 1; i++) this.hist.set(data.subarray(0, dim), i * dim);
      }
      x = new Float32Array((c - 1 + count) * dim);
      x.set(this.hist, 0);
      x.set(data, (c - 1) * dim);
      rows = c - 1 + count;
      this.hist = x.slice((rows - (c - 1)) * dim);
    }
    const out = await this.head.session.run({ vectors: new ort.Tensor('float32', x, [1, rows, dim]) });
    const t = out.out || out[this.head.session.outputNames[0]];
    return { data: unitRows(t.data, t.dims[1], t.dims[2]), count: t.dims[1], dim: t.dims[2] };
  }
}

// ------------------------------------------------------------------ keywords

/**
 * Check a keyword document (`python -m kws enroll export FILE`, or the page server's
 * /api/keywords) against the model: [{name, threshold, templates: [Float64Array (L * D)], lengths}].
 */
export function parseKeywords(doc, model) {
  if (!doc || typeof doc !== 'object' || !Array.isArray(doc.keywords)) {
    throw new KwsError('not a kws keyword file: write one with python -m kws enroll export FILE');
  }
  if (model && doc.model_id !== model.modelId) {
    throw new KwsError(`these keywords were made for model ${JSON.stringify(doc.model_id)}, but the detector runs model ` +
      `${JSON.stringify(model.modelId)}: their templates do not fit. Enroll them again with this model ` +
      `(python -m kws enroll migrate), then export them again.`);
  }
  if (doc.keywords.length === 0) {
    throw new KwsError('no keywords to detect: enroll one first (python -m kws enroll add "hey computer", or on the kws web page)');
  }
  const out = [];
  let dim = null;
  for (const k of doc.keywords) {
    const name = k && k.name;
    if (typeof name !== 'string') throw new KwsError('a keyword without a name in the keyword file');
    if (!Array.isArray(k.templates) || k.templates.length === 0) {
      throw new KwsError(`keyword ${JSON.stringify(name)} has no templates: export the keywords with python -m kws enroll export FILE, which writes them`);
    }
    if (typeof k.threshold !== 'number' || !isFinite(k.threshold)) throw new KwsError(`keyword ${JSON.stringify(name)}: no threshold`);
    const templates = [];
    for (const t of k.templates) {
      if (!Array.isArray(t) || t.length === 0 || !Array.isArray(t[0])) throw new KwsError(`keyword ${JSON.stringify(name)}: a template is not a list of vectors`);
      const d = t[0].length;
      if (dim === null) dim = d;
      if (d !== dim || t.some(r => !Array.isArray(r) || r.length !== d)) {
        throw new KwsError(`keyword ${JSON.stringify(name)}: its template vectors are not all ${dim}-dimensional`);
      }
      const flat = new Float64Array(t.length * d);
      t.forEach((r, i) => flat.set(r, i * d));
      templates.push({ rows: unitRows(flat, t.length, d), length: t.length });
    }
    const room = k.room === undefined || k.room === null ? null : roomEntryFromJSON(k.room, `keyword ${JSON.stringify(name)}`);
    out.push({ name, threshold: k.threshold, templates, tunedOn: k.tuned_on || null, room,
               expectedPerHour: k.tuned_on ? k.tuned_on.expected_per_hour : undefined });
  }
  return { keywords: out, dim };
}

/** The manifest's templates.soft_max: a finite number >= 0 (absent: 0, the best template). */
function softMaxOf(tpl) {
  const t = tpl.soft_max ?? 0;
  if (typeof t !== 'number' || !(t >= 0) || !Number.isFinite(t)) {
    throw new KwsError(`the model's templates.soft_max is ${JSON.stringify(t)}: a number >= 0 was expected`);
  }
  return t;
}

/** kws.spot.templates.Matcher: every keyword's score at each new stream vector (softMax: the
 * model's, kws.spot.templates.combine). keywords: [{templates: [{rows: Float32Array (L * dim), length: L}]}]. */
export class Matcher {
  constructor(keywords, dim, softMax = 0) {
    this.dim = dim;
    this.softMax = softMax;
    const starts = [], lengths = [], owners = [];
    let rows = 0;
    keywords.forEach((k, ki) => k.templates.forEach(t => {
      starts.push(rows); lengths.push(t.length); owners.push(ki); rows += t.length;
    }));
    this.R = rows;
    this.rows = new Float32Array(rows * dim);         // float32, as numpy keeps them
    let o = 0;
    for (const k of keywords) for (const t of k.templates) { this.rows.set(t.rows, o); o += t.rows.length; }
    this.start = Int32Array.from(starts);
    this.length = Int32Array.from(lengths);
    this.owner = Int32Array.from(owners);
    this.K = keywords.length;
    this.cap = Math.max(...lengths);
    this.tplScore = new Float64Array(starts.length);
    this.sum = new Float64Array(this.K);
    this.count0 = Int32Array.from(keywords.map(k => k.templates.length));
    this.reset();
  }

  reset() {
    this.dots = new Float64Array(this.cap * this.R);
    this.count = 0;
  }

  /** One unit vector (Float64Array view) -> scores (Float64Array K) and best template per keyword. */
  push(v, scores, best) {
    const { R, dim, rows, cap, dots } = this;
    const e = this.count++;
    const base = (e % cap) * R;
    for (let r = 0; r < R; r++) {
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0, j = 0;
      const o = r * dim;
      for (; j + 3 < dim; j += 4) {
        s0 += rows[o + j] * v[j]; s1 += rows[o + j + 1] * v[j + 1];
        s2 += rows[o + j + 2] * v[j + 2]; s3 += rows[o + j + 3] * v[j + 3];
      }
      for (; j < dim; j++) s0 += rows[o + j] * v[j];
      dots[base + r] = (s0 + s1) + (s2 + s3);
    }
    scores.fill(-Infinity);
    for (let t = 0; t < this.length.length; t++) {
      const L = this.length[t], st = this.start[t];
      let s;
      if (L > e + 1) {
        s = -1;
      } else {
        s = 0;
        for (let j = 0; j < L; j++) s += dots[((e - L + 1 + j) % cap) * R + st + j];
        s /= L;
      }
      this.tplScore[t] = s;
      const k = this.owner[t];
      if (s > scores[k]) { scores[k] = s; best[k] = t; }
    }
    const tm = this.softMax;
    if (tm > 0) {               // m + log(mean exp(t (s - m))) / t, in float32 as numpy computes it
      const sum = this.sum;
      sum.fill(0);
      for (let t = 0; t < this.length.length; t++) {
        const k = this.owner[t];
        sum[k] += Math.exp(tm * (Math.fround(this.tplScore[t]) - Math.fround(scores[k])));
      }
      for (let k = 0; k < this.K; k++) {
        scores[k] = Math.fround(Math.fround(scores[k]) + Math.log(sum[k] / this.count0[k]) / tm);
      }
    }
  }
}

// ------------------------------------------------------------ thresholds that learn the room (kws.spot.room)
//
// Each keyword's threshold was set on the model's background bank for a false-alarm target (one
// an hour by default). The detector also listens to the room: it keeps a histogram of the
// keyword's score peaks that stay below its threshold and the hours listened, and every `updateS`
// of audio moves the threshold (at most `maxStep`) toward the bank tail's threshold for
// `target / rho`, `rho` the room's peaks just below the lowest threshold so far over those the
// bank's tail expects there. The whole design is in kws/spot/room.py; this is the same computation,
// in the same order, with the same float32 thresholds.

export const HOP_S = VEC_HOP / SAMPLE_RATE;                     // 0.08 s of audio per vector

/** kws.spot.room.AdaptConfig's defaults (the shipped ones), camelCase. */
export const ADAPT_DEFAULTS = Object.freeze({
  enabled: true,
  bound: 0.10,          // the threshold stays within the bank's threshold +- bound
  window: 0.05,         // peaks counted in [c - window, c), c the lowest threshold so far
  priorPeaks: 3.0,      // peaks of prior belief in the bank's level
  maxStep: 0.01,        // most a threshold moves at one update
  updateS: 60.0,        // audio between updates
  minMinutes: 5.0,      // no move before this much listening
  halfLifeH: 4.0,       // evidence older than this counts half
  binWidth: 0.0025,     // histogram resolution of the kept peaks
});

/** How thresholds learn: true (the defaults), false (off: the bank's thresholds), or some of
 * ADAPT_DEFAULTS' settings. KwsError for settings out of range (as kws.spot.room.AdaptConfig). */
export function adaptConfig(adapt = true) {
  if (adapt === true || adapt === undefined || adapt === null) return { ...ADAPT_DEFAULTS };
  if (adapt === false) return { ...ADAPT_DEFAULTS, enabled: false };
  if (typeof adapt !== 'object') throw new KwsError(`adapt: true, false or an object of settings, not ${JSON.stringify(adapt)}`);
  const unknown = Object.keys(adapt).filter(k => !(k in ADAPT_DEFAULTS));
  if (unknown.length) throw new KwsError(`adapt: unknown setting ${unknown.join(', ')} (known: ${Object.keys(ADAPT_DEFAULTS).join(', ')})`);
  const c = { ...ADAPT_DEFAULTS, ...adapt };
  for (const k of Object.keys(ADAPT_DEFAULTS)) {
    if (k === 'enabled' ? typeof c[k] !== 'boolean' : (typeof c[k] !== 'number' || Number.isNaN(c[k]))) {
      throw new KwsError(`adapt: ${k} is ${JSON.stringify(c[k])}`);
    }
  }
  if (!(c.bound >= 0 && c.window > 0 && c.priorPeaks > 0 && c.maxStep > 0 && c.updateS > 0 &&
        c.minMinutes >= 0 && c.halfLifeH > 0 && c.binWidth > 0)) {
    throw new KwsError('AdaptConfig: bound, min_minutes >= 0 and the other settings > 0');
  }
  return c;
}

const isNum = (x) => typeof x === 'number' && Number.isFinite(x);

/** A keyword's fresh room entry (kws.spot.room.new_entry) from its bank threshold and `tuned_on` (its
 * `tail`, `target_per_hour`, `floor`); null when it holds no bank tail (the keyword cannot learn).
 * It has no key: it is not the store's, so it is not sent back to one. */
export function newRoomEntry(threshold, tunedOn, config = ADAPT_DEFAULTS, tail = null) {
  const tuned = tunedOn && typeof tunedOn === 'object' ? tunedOn : {};
  tail = tail || tuned.tail;
  if (!(tail && typeof tail === 'object' && ['u', 'beta', 'm', 'hours'].every(k => isNum(tail[k])))) return null;
  let target = tuned.target_per_hour;
  target = isNum(target) && target > 0 ? target : 1.0;
  const bank = threshold;
  return {
    key: null, bank, target, tail: { u: tail.u, beta: tail.beta, m: tail.m, hours: tail.hours },
    lo: bank - config.bound - config.window - 0.05, counts: new Float64Array(0), hours: 0.0,
    listened_h: 0.0, lowest: bank, threshold: null, floor: isNum(tuned.floor) ? tuned.floor : null,
  };
}

/** A room entry from its JSON (kws.spot.room.KeywordRoom.to_json, the server's `room` of a keyword). */
export function roomEntryFromJSON(d, label = 'a keyword') {
  const bad = (what) => new KwsError(`${label}: its room entry (what its threshold learnt) is damaged: ${what}`);
  if (!d || typeof d !== 'object') throw bad('not an object');
  for (const k of ['bank', 'target', 'lo', 'hours']) if (!isNum(d[k])) throw bad(`${k} is ${JSON.stringify(d[k])}`);
  if (!d.tail || !['u', 'beta', 'm', 'hours'].every(k => isNum(d.tail[k]))) throw bad('no bank tail (u, beta, m, hours)');
  if (!Array.isArray(d.counts) || !d.counts.every(isNum)) throw bad('counts is not a list of numbers');
  for (const k of ['lowest', 'threshold', 'floor', 'listened_h']) {
    if (d[k] !== undefined && d[k] !== null && !isNum(d[k])) throw bad(`${k} is ${JSON.stringify(d[k])}`);
  }
  return {
    key: d.key === undefined || d.key === null ? null : String(d.key), bank: d.bank, target: d.target,
    tail: { u: d.tail.u, beta: d.tail.beta, m: d.tail.m, hours: d.tail.hours }, lo: d.lo,
    counts: Float64Array.from(d.counts), hours: d.hours,
    listened_h: isNum(d.listened_h) ? d.listened_h : d.hours,
    lowest: isNum(d.lowest) ? d.lowest : Infinity,
    threshold: isNum(d.threshold) ? d.threshold : null, floor: isNum(d.floor) ? d.floor : null,
  };
}

// Python's round(x, 4): the nearest multiple of 1e-4 as a decimal, halves to even
function round4(x) {
  const exact = x.toFixed(30);                  // the binary value's decimal digits (enough for a tie)
  if (/^-?\d+\.\d{4}50*$/.test(exact)) {
    const down = Number(exact.slice(0, exact.indexOf('.') + 5));
    const last = Number(exact[exact.indexOf('.') + 4]);
    return last % 2 === 0 ? down : Number((down + Math.sign(x) * 1e-4).toFixed(4));
  }
  return Number(x.toFixed(4));
}

/** A room entry as kws.spot.room.KeywordRoom.to_json writes it (counts to 4 decimals). */
export function roomEntryToJSON(e) {
  return {
    key: e.key, bank: e.bank, target: e.target, tail: { ...e.tail }, lo: e.lo,
    counts: Array.from(e.counts, round4), hours: e.hours, listened_h: e.listened_h,
    lowest: Number.isFinite(e.lowest) ? e.lowest : null, threshold: e.threshold, floor: e.floor,
  };
}

function bankRate(tail, t) {           // false alarms an hour the bank's tail gives at t (extended below u)
  return tail.m / tail.hours * Math.exp(-(t - tail.u) / tail.beta);
}

function bankThreshold(tail, rate) {
  return tail.u + tail.beta * Math.log(tail.m / (rate * tail.hours));
}

/** kws.spot.room.Room: the learning state of a detector's keywords (one entry each, or null for a
 * keyword that does not learn). */
export class Room {
  constructor(entries, config = ADAPT_DEFAULTS) {
    this.config = config;
    this.entries = entries.map(e => (e ? { ...e, tail: { ...e.tail }, counts: Float64Array.from(e.counts) } : null));
    for (const e of this.entries) if (e) this._fitHist(e);
    this.sinceUpdate = 0.0;
  }

  _fitHist(e) {
    const top = e.bank + this.config.bound;
    const n = Math.ceil((top - e.lo) / this.config.binWidth) + 1;
    if (e.counts.length !== n) {
      const c = new Float64Array(n);
      c.set(e.counts.subarray(0, n));
      e.counts = c;
    }
  }

  /** Each keyword's threshold now: Float32Array (the bank's where it does not learn or has not moved). */
  current(bank) {
    return Float32Array.from(this.entries, (e, k) => (e ? (e.threshold === null ? e.bank : e.threshold) : bank[k]));
  }

  /** A peak of keyword `k`'s score that stayed below its threshold. */
  observe(k, peak) {
    const e = this.entries[k];
    if (!e || peak < e.lo) return;
    const i = Math.trunc((peak - e.lo) / this.config.binWidth);
    if (i < e.counts.length) e.counts[i] += 1.0;
  }

  /** `vectors` more vectors heard; true when the thresholds were updated (every updateS of audio). */
  listened(vectors) {
    this.sinceUpdate += vectors * HOP_S;
    if (this.sinceUpdate < this.config.updateS) return false;
    const h = this.sinceUpdate / 3600.0;
    this.sinceUpdate = 0.0;
    const fade = 0.5 ** (h / this.config.halfLifeH);
    for (const e of this.entries) {
      if (!e) continue;
      e.hours = e.hours * fade + h;
      e.listened_h += h;
      for (let i = 0; i < e.counts.length; i++) e.counts[i] = e.counts[i] * fade;
      this._update(e);
    }
    return true;
  }

  _bounds(e) {
    let lo = e.bank - this.config.bound;
    if (e.floor !== null) lo = Math.max(lo, e.floor);
    return [lo, e.bank + this.config.bound];
  }

  /** The threshold the room's peaks call for (bounded), or null before enough listening. */
  estimate(e) {
    const cfg = this.config;
    if (e.listened_h * 60.0 < cfg.minMinutes) return null;
    const tNow = e.threshold === null ? e.bank : e.threshold;
    const c = Math.min(e.lowest, tNow);
    const a = c - cfg.window;
    const i0 = Math.max(0, Math.floor((a - e.lo) / cfg.binWidth));
    const i1 = Math.max(0, Math.floor((c - e.lo) / cfg.binWidth));          // bins wholly below c
    let n = 0;
    for (let i = i0; i < Math.min(i1, e.counts.length); i++) n += e.counts[i];
    const aEdge = e.lo + i0 * cfg.binWidth, cEdge = e.lo + i1 * cfg.binWidth;
    const expected = e.hours * (bankRate(e.tail, aEdge) - bankRate(e.tail, cEdge));
    const rho = (n + cfg.priorPeaks) / (Math.max(expected, 0.0) + cfg.priorPeaks);
    let want = bankThreshold(e.tail, e.target / rho);
    want = e.bank + (want - bankThreshold(e.tail, e.target));
    const [lo, hi] = this._bounds(e);
    return Math.min(Math.max(want, lo), hi);
  }

  _update(e) {
    const want = this.estimate(e);
    if (want === null) return;
    const tNow = e.threshold === null ? e.bank : e.threshold;
    const step = Math.max(-this.config.maxStep, Math.min(this.config.maxStep, want - tNow));
    e.threshold = tNow + step;
    e.lowest = Math.min(e.lowest, e.threshold, e.bank);
  }

  /** A copy of what was learnt, for restore(). */
  snapshot() {
    return { sinceUpdate: this.sinceUpdate,
             entries: this.entries.map(e => (e ? { ...e, tail: { ...e.tail }, counts: e.counts.slice() } : null)) };
  }

  restore(snap) {
    this.sinceUpdate = snap.sinceUpdate;
    this.entries = snap.entries.map(e => (e ? { ...e, tail: { ...e.tail }, counts: e.counts.slice() } : null));
  }
}

/** kws.spot.events.PeakTracker: each keyword's peaks as the one event rule counts them (a local maximum
 * reached by a rise, the highest within `refractory` vectors on either side, ties: the first),
 * confirmed `refractory` vectors later. Scores are kept as float32, as Python keeps them. */
export class PeakTracker {
  constructor(keywords, refractory) {
    this.K = keywords;
    this.r = Math.trunc(refractory);
    this.w = 2 * this.r + 2;   // the window and the value before it
    this.ring = new Float32Array(this.w * keywords).fill(-Infinity);
    this.n = 0;
    this.lastI = new Float64Array(keywords).fill(-(2 ** 40));          // each keyword's last peak
    this.lastS = new Float32Array(keywords).fill(NaN);
  }

  /** One vector's scores (K) -> [[keyword, peak score], ...] for the vector `refractory` back, or null. */
  push(scores) {
    const { K, r, w, ring } = this;
    ring.set(scores.length === K ? scores : scores.subarray(0, K), (this.n % w) * K);
    this.n++;
    const i = this.n - 1 - r;                         // the candidate
    if (i < 0) return null;
    let found = null;
    const ci = (i % w) * K, bi = (((i - 1) % w) + w) % w * K;
    for (let k = 0; k < K; k++) {
      const cand = ring[ci + k];
      const before = i > 0 ? ring[bi + k] : -Infinity;
      let left = -Infinity, right = -Infinity;
      for (let j = Math.max(0, i - r); j < i; j++) left = Math.max(left, ring[(j % w) * K + k]);
      for (let j = i + 1; j < i + r + 1; j++) right = Math.max(right, ring[(j % w) * K + k]);
      let ok = cand > before && cand >= left && cand >= right && cand > -1.0;
      if (ok && this.lastI[k] >= i - r && this.lastS[k] === cand) ok = false;     // equal maxima: the first
      if (!ok) continue;
      this.lastI[k] = i;
      this.lastS[k] = cand;
      (found || (found = [])).push([k, cand]);
    }
    return found;
  }
}

// Python's round(): halves to even (the refractory time of 1 s is 12.5 vectors -> 12)
function roundHalfEven(x) {
  const r = Math.round(x);
  return (Math.abs(x % 1) === 0.5 && r % 2 !== 0) ? r - 1 : r;
}

/**
 * The detector. `keywords`: a keyword document (`python -m kws enroll export FILE`, or the page
 * server's /api/keywords, whose keywords carry their `room` entries); `model`: from loadModel().
 * Options: refractoryS (1 s), vectorsPerRun (how many 80 ms vectors the backbone computes per call
 * when streaming: more is cheaper, and later by that much; default 4), stepGraph (true: the model's
 * step graph where it has one; false: the network over each vector's whole window, the same
 * vectors at more cost), onScores(vectorIndex, time,
 * scores) called with every keyword's score at each vector; and for the thresholds that learn the
 * room: adapt (true: ADAPT_DEFAULTS; false: the bank's thresholds; or some of ADAPT_DEFAULTS'
 * settings), onThresholds(thresholds) called after each update of them, roomSaveS (300) and
 * onRoomSave(state) called every roomSaveS of audio with roomState().
 *
 * A keyword learns from its `room` entry (what it learnt so far, from the server), else from the
 * bank tail in its `tuned_on.tail`; a keyword with neither keeps its threshold.
 */
export class KeywordSpotter {
  constructor(keywords, model, options = {}) {
    if (!model || !model.backbone) throw new KwsError('KeywordSpotter needs a model: await loadModel(url) first');
    const parsed = parseKeywords(keywords, model);
    this.model = model;
    this.keywords = parsed.keywords;
    this.names = this.keywords.map(k => k.name);
    // thresholds are float32, as the Python detector keeps them
    this.bankThresholds = Float32Array.from(this.keywords.map(k => k.threshold));
    this.adapt = adaptConfig(options.adapt);
    // kws.spot.room.Room.for_keywords: an entry whose bank threshold is no longer the keyword's starts afresh
    this.room = new Room(this.keywords.map((k) => {
      if (k.room && Math.abs(k.room.bank - k.threshold) < 1e-6) return k.room;
      return newRoomEntry(k.threshold, k.tunedOn, this.adapt, k.room ? k.room.tail : null);
    }), this.adapt);
    this.learns = this.room.entries.map(e => e !== null);
    this._learning = this.adapt.enabled && this.learns.some(Boolean);
    this.thresholds = this._learning ? this.room.current(this.bankThresholds) : this.bankThresholds.slice();
    this.matcher = new Matcher(this.keywords, parsed.dim, model.softMax);
    this.refractory = roundHalfEven((options.refractoryS ?? 1.0) * SAMPLE_RATE / VEC_HOP);
    this.fire = options.fire ?? 'crossing';
    if (this.fire !== 'crossing' && this.fire !== 'peak') {
      throw new KwsError(`fire must be 'crossing' or 'peak', not ${JSON.stringify(this.fire)}`);
    }
    this.vectorsPerRun = Math.max(1, options.vectorsPerRun ?? 4);
    this.stepGraph = options.stepGraph ?? true;
    this.maxPerRun = 64;
    this.onScores = options.onScores || null;
    this.onThresholds = options.onThresholds || null;
    this.onRoomSave = options.onRoomSave || null;
    this.roomSaveS = options.roomSaveS ?? 300;
    this._sinceSave = 0;
    // networkMs: the backbone's and the head's time together (backboneMs + headMs)
    this.stats = { vectors: 0, samples: 0, busyMs: 0, melMs: 0, networkMs: 0, backboneMs: 0, headMs: 0, matchMs: 0 };
    this._queue = Promise.resolve();
    this.reset();
  }

  /** Whether the thresholds learn the room now. Set false: the bank's thresholds, nothing learnt
   * (what was learnt is kept); set true: the learnt thresholds again, learning on. */
  get learning() { return this._learning; }

  set learning(on) {
    on = Boolean(on) && this.learns.some(Boolean);
    if (on === this._learning) return;
    this._learning = on;
    this.thresholds.set(on ? this.room.current(this.bankThresholds) : this.bankThresholds);
    this.peaks = on ? new PeakTracker(this.names.length, this.refractory) : null;
    if (this.onThresholds) this.onThresholds(this.thresholds);
  }

  /** What the store's keywords learnt, to send back to the server: {name: entry (the JSON of
   * kws.spot.room.KeywordRoom)}; keywords not from a store (no key) are left out. */
  roomState() {
    const out = {};
    this.room.entries.forEach((e, k) => { if (e && e.key !== null) out[this.names[k]] = roomEntryToJSON(e); });
    return out;
  }

  /** A promise of what was learnt after the chunks given so far (for restoreRoom). */
  snapshotRoom() {
    const run = this._queue.then(() => this.room.snapshot());
    this._queue = run.catch(() => {});
    return run;
  }

  /** Put back what was learnt at snapshotRoom() (a snapshot or its promise), after the chunks given so far. */
  restoreRoom(snapshot) {
    const run = this._queue.then(async () => {
      this.room.restore(await snapshot);
      if (this._learning) {
        this.thresholds.set(this.room.current(this.bankThresholds));
        if (this.onThresholds) this.onThresholds(this.thresholds);
      }
    });
    this._queue = run.catch(() => {});
    return run;
  }

  /** Forget the stream: the next chunk starts at time 0. */
  reset() {
    this.pending = new Float32Array(0);
    this.backbone = this.model.backboneStream({ stepGraph: this.stepGraph });   // the step graph where the model has one
    this.head = this.model.headStream();
    this.matcher.reset();
    this.tracks = this.names.map(() => ({ prev: -2, prevSpan: [0, 0], rising: false, above: false, quietUntil: -1 }));
    this.scores = new Float64Array(this.names.length);
    this.best = new Int32Array(this.names.length);
    this.lastScores = new Float64Array(this.names.length).fill(-1);
    this.primed = false;                                    // the silence before the stream: not yet heard
    this.silentVectors = numVectors(PRIMED_SAMPLES);        // vectors it completes on its own: unscored
    this.peaks = this._learning ? new PeakTracker(this.names.length, this.refractory) : null;
  }

  /** Resolves when the chunks given so far have been processed. */
  idle() { return this._queue; }

  /** Feed 16 kHz mono samples (Float32Array); resolves to the detections this chunk completed. */
  process(chunk) {
    const run = this._queue.then(() => this._process(chunk, false));
    this._queue = run.catch(() => {});
    return run;
  }

  /** End of stream: compute the vectors still pending, and (fire: 'peak') report a keyword whose
   * score was still rising at the last one. The stream is reset after. */
  flush() {
    const run = this._queue.then(async () => {
      const events = await this._process(new Float32Array(0), true);
      this.tracks.forEach((tr, k) => {
        if (this.fire === 'peak' && tr.rising && tr.prev >= this.thresholds[k] && tr.prevSpan[1] >= tr.quietUntil) {
          events.push(this._event(k, tr.prev, tr.prevSpan));
        }
      });
      this.reset();
      return events;
    });
    this._queue = run.catch(() => {});
    return run;
  }

  /** Every detection in a whole recording, pushed in chunks of `chunk` samples (then reset). */
  async detect(audio, chunk = 16000) {
    this.reset();
    const events = [];
    for (let s = 0; s < audio.length; s += chunk) events.push(...await this.process(audio.subarray(s, s + chunk)));
    events.push(...await this.flush());
    return events;
  }

  async _process(chunk, final) {
    const t0 = performance.now();
    for (let i = 0; i < chunk.length; i++) {
      if (!Number.isFinite(chunk[i])) throw new KwsError('audio chunk contains NaN or infinite samples');
    }
    this.stats.samples += chunk.length;
    let buf = chunk;
    if (!this.primed) {                                     // the stream begins after PRIMED_SAMPLES of silence
      buf = new Float32Array(PRIMED_SAMPLES + chunk.length);
      buf.set(chunk, PRIMED_SAMPLES);
      this.primed = true;
    } else if (this.pending.length) {
      buf = new Float32Array(this.pending.length + chunk.length);
      buf.set(this.pending); buf.set(chunk, this.pending.length);
    }
    const n = numMelFrames(buf.length);
    if (n) this.backbone.addFrames(this.model.melFrontEnd, buf, n);
    const t1 = performance.now();
    this.stats.melMs += t1 - t0;
    this.pending = buf.slice(n * MEL_HOP);
    const events = [];
    for (;;) {
      const avail = this.backbone.ready;
      if (avail === 0 || (avail < this.vectorsPerRun && !final)) break;
      const t2 = performance.now();
      const raw = await this.backbone.run(this.maxPerRun);
      const tb = performance.now();
      const v = await this.head.push(raw.data, raw.count, raw.dim);
      const t3 = performance.now();
      this.stats.backboneMs += tb - t2;
      this.stats.headMs += t3 - tb;
      this.stats.networkMs += t3 - t2;
      for (let i = 0; i < v.count; i++) events.push(...this._vector(v.data.subarray(i * v.dim, (i + 1) * v.dim)));
      this.stats.matchMs += performance.now() - t3;
    }
    this.stats.busyMs += performance.now() - t0;
    return events;
  }

  _vector(v) {
    const e = this.matcher.count;
    this.matcher.push(v, this.scores, this.best);
    if (e < this.silentVectors) return [];                  // heard before the stream began
    this.stats.vectors++;
    const events = [];
    for (let k = 0; k < this.tracks.length; k++) {
      const tr = this.tracks[k], s = this.scores[k];
      const span = [e - this.matcher.length[this.best[k]] + 1, e + 1];
      if (this.fire === 'crossing') {
        // a stretch at or above the threshold fires where it begins, once
        if (s >= this.thresholds[k]) {
          if (!tr.above && span[1] >= tr.quietUntil) {
            events.push(this._event(k, s, span));
            tr.quietUntil = span[1] + this.refractory + 1;
            tr.above = true;
          }
        } else {
          tr.above = false;
        }
        continue;
      }
      // the peak is the previous vector; after an event, peaks up to `refractory` vectors later
      // stay quiet
      if (tr.rising && s < tr.prev && tr.prev >= this.thresholds[k] && tr.prevSpan[1] >= tr.quietUntil) {
        events.push(this._event(k, tr.prev, tr.prevSpan));
        tr.quietUntil = tr.prevSpan[1] + this.refractory + 1;
      }
      tr.rising = s > tr.prev || (tr.rising && s === tr.prev);
      tr.prev = s;
      tr.prevSpan = span;
    }
    if (this._learning) this._learn();
    this.lastScores.set(this.scores);
    if (this.onScores) {
      this.onScores(e - this.silentVectors, (e * VEC_HOP + VEC_SPAN - PRIMED_SAMPLES) / SAMPLE_RATE, this.lastScores);
    }
    return events;
  }

  /** The room's part of one vector (kws.spot.detector.Detector._learn): peaks below threshold kept,
   * time counted, thresholds moved at each update, handed to onRoomSave now and then. */
  _learn() {
    const found = this.peaks.push(this.scores);
    if (found !== null) {
      for (const [k, p] of found) if (p < this.thresholds[k]) this.room.observe(k, p);
    }
    if (this.room.listened(1)) {
      this.thresholds.set(this.room.current(this.bankThresholds));
      if (this.onThresholds) this.onThresholds(this.thresholds);
    }
    if (this.onRoomSave) {
      this._sinceSave += 1;
      if (this._sinceSave * VEC_HOP >= this.roomSaveS * SAMPLE_RATE) {
        this._sinceSave = 0;
        this.onRoomSave(this.roomState());
      }
    }
  }

  /** Where the word lies (kws.spot.detector.Detector._event). */
  _event(k, score, span) {
    const a = span[0] * VEC_HOP - PRIMED_SAMPLES, b = (span[1] - 1) * VEC_HOP + VEC_SPAN - PRIMED_SAMPLES;
    const start = Math.max(0, a / SAMPLE_RATE + this.model.padS - this.model.trim * VEC_HOP / SAMPLE_RATE);
    const end = Math.max(start, b / SAMPLE_RATE - (this.model.padS - this.model.trimEnd * VEC_HOP / SAMPLE_RATE));
    return { keyword: this.names[k], score, threshold: this.thresholds[k], start, end };
  }

  /** Real-time factor so far: processing time / audio time. */
  get rtf() {
    return this.stats.samples ? (this.stats.busyMs / 1000) / (this.stats.samples / SAMPLE_RATE) : 0;
  }
}
