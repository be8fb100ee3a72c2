// The page of `python -m kws web`: the store's keywords (through the server's JSON API) and the
// detector of kws.js running here, on the microphone or a file.
import { KeywordSpotter, KwsError, loadModel, SAMPLE_RATE } from './kws.js';

const $ = (id) => document.getElementById(id);
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22'];
const PLOT_S = 20;                       // seconds of scores on the plot
const HEARD_S = 60;                      // seconds of audio kept for "save what the detector heard"
const TAKE_S = 2.0;                      // seconds of one recorded take

const app = {
  model: null,
  info: null,
  doc: null,                // the keyword document the detector runs (the store's, or a loaded file)
  fromFile: null,           // name of a loaded keyword file, when the detector runs one
  spotter: null,
  run: null,                // the running capture: {ctx, node, stream, source, kind}
  offset: 0,                // seconds of stream before the current spotter (keywords changed while running)
  history: [],              // [{t, scores: Float64Array}] for the plot
  events: [],
  heard: new Float32Array(HEARD_S * SAMPLE_RATE),
  heardCount: 0,
  loadMs: null,
  learn: stored('kws.learn') !== 'off',    // the switch: thresholds learn the room
  adaptSettings: {},        // kws.js's adapt settings (ADAPT_DEFAULTS where not given)
  roomDirty: false,         // learnt from the microphone since the last save
  roomBefore: null,         // what was learnt before a file or an analysis (put back after it)
};
window.kwsApp = app;

/** localStorage, where the browser allows it (the page's settings: the switch). */
function stored(key, value) {
  try {
    if (value === undefined) return localStorage.getItem(key);
    localStorage.setItem(key, value);
  } catch (e) { /* storage refused: the setting lasts this visit */ }
  return null;
}

// ------------------------------------------------------------------ messages

function message(text, kind = 'error') {
  const div = document.createElement('div');
  div.className = `message ${kind}`;
  div.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  const span = document.createElement('span');
  span.textContent = text;
  const close = document.createElement('button');
  close.type = 'button';
  close.textContent = '\u00d7';
  close.title = 'dismiss';
  close.onclick = () => div.remove();
  div.append(span, close);
  $('messages').append(div);
  if (kind !== 'error') setTimeout(() => div.remove(), 8000);
  return div;
}

function readable(err) {
  if (err instanceof KwsError) return err.message;
  if (err && err.name === 'NotAllowedError') {
    return 'The microphone was refused. Allow it for this page (the microphone icon in the address bar), ' +
           'or play a file instead.';
  }
  if (err && err.name === 'NotFoundError') return 'No microphone was found. Connect one, or play a file instead.';
  if (err && err.name === 'NotReadableError') return 'The microphone is in use by another program, or failed to start.';
  if (err && err.name === 'EncodingError') return 'That file could not be decoded as audio.';
  return (err && err.message) ? err.message : String(err);
}

const fail = (err) => message(readable(err), 'error');

window.addEventListener('unhandledrejection', (e) => { e.preventDefault(); fail(e.reason); });
window.addEventListener('error', (e) => { e.preventDefault(); fail(e.error || e.message); });

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (e) {
    throw new KwsError(`the kws server does not answer (is python -m kws web still running?): ${e.message}`);
  }
  let doc = null;
  try { doc = await resp.json(); } catch (e) { /* not JSON */ }
  if (!resp.ok) throw new KwsError((doc && doc.error) || `the server answered ${resp.status} ${resp.statusText}`);
  return doc;
}

function setStatus(text) { $('status').textContent = text; }

// ------------------------------------------------------------------ keywords

async function refreshKeywords() {
  await saveRoom().catch(fail);         // what was learnt so far, so that the new detector takes it up
  const doc = await api('api/keywords');
  renderKeywords(doc);
  if (!app.fromFile) useKeywords(doc);
}

/** A table row for keyword ``name`` (the ``i``-th, whose colour its swatch shows): a name cell,
 * then ``cells`` as [class, text] pairs. */
function keywordRow(name, i, cells) {
  const tr = document.createElement('tr');
  tr.dataset.name = name;
  for (const [cls, text] of [['name', name], ...cells]) {
    const td = document.createElement('td');
    td.className = cls;
    td.textContent = text;
    tr.append(td);
  }
  const sw = document.createElement('span');
  sw.className = 'swatch';
  sw.style.background = COLORS[i % COLORS.length];
  tr.firstChild.prepend(sw);
  return tr;
}

function renderKeywords(doc) {
  const tbody = document.querySelector('#keywords tbody');
  tbody.replaceChildren();
  doc.keywords.forEach((k, i) => {
    const fa = k.tuned_on && typeof k.tuned_on.expected_per_hour === 'number' ? k.tuned_on.expected_per_hour : null;
    const tr = keywordRow(k.name, i, [
      ['source', k.source], ['num threshold', k.threshold.toFixed(3)],
      ['num fa', fa === null ? '-' : fa.toPrecision(2)],
    ]);
    const act = document.createElement('td');
    act.className = 'actions';
    const ren = button('rename', () => startRename(tr, k.name));
    const rem = button('remove', () => {
      if (rem.dataset.armed) return removeKeyword(k.name).catch(fail);
      rem.dataset.armed = '1';
      rem.textContent = 'really remove';
      setTimeout(() => { delete rem.dataset.armed; rem.textContent = 'remove'; }, 4000);
    });
    ren.className = 'rename';
    rem.className = 'remove';
    act.append(ren, ' ', rem);
    tr.append(act);
    tbody.append(tr);
  });
  $('empty').hidden = doc.keywords.length > 0;
  $('keywords').hidden = doc.keywords.length === 0;
}

function button(text, onclick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  b.onclick = onclick;
  return b;
}

function startRename(tr, old) {
  const td = tr.querySelector('td.name');
  const input = document.createElement('input');
  input.value = old;
  input.className = 'rename-input';
  input.maxLength = 64;
  const save = async () => {
    const name = input.value.trim();
    if (!name || name === old) return refreshKeywords();
    await api('api/rename', { old, new: name });
    message(`renamed \u201c${old}\u201d to \u201c${name}\u201d`, 'info');
    await refreshKeywords();
  };
  input.onkeydown = (e) => {
    if (e.key === 'Enter') save().catch(fail);
    if (e.key === 'Escape') refreshKeywords().catch(fail);
  };
  td.replaceChildren(input, ' ', button('save', () => save().catch(fail)));
  input.focus();
  input.select();
}

async function removeKeyword(name) {
  await api('api/remove', { name });
  message(`removed \u201c${name}\u201d`, 'info');
  await refreshKeywords();
}

/** Make the detector run the keywords of `doc` (keeping the stream's clock if it is running). */
function useKeywords(doc) {
  app.doc = doc;
  if (app.spotter) app.offset += app.spotter.stats.samples / SAMPLE_RATE;
  app.spotter = null;
  app.history = [];                     // the plot starts again with the new keywords
  app.roomBefore = null;
  if (!app.model || !doc.keywords.length) { drawLegend(); return; }
  app.spotter = new KeywordSpotter(doc, app.model, {
    onScores, adapt: { ...app.adaptSettings, enabled: app.learn },
    onThresholds: () => { drawLegend(); },
    onRoomSave: () => { saveRoom().catch(fail); },
  });
  if (app.run && app.run.kind !== 'microphone') app.roomBefore = app.spotter.snapshotRoom();
  drawLegend();
}
app.useKeywords = useKeywords;

// ------------------------------------------------------------------ thresholds that learn the room

/** Send what the thresholds learnt from the microphone to the server (the store's room.json).
 * `keepalive`: the page is being hidden or closed (the request outlives it). */
async function saveRoom({ keepalive = false } = {}) {
  const spotter = app.spotter;
  if (!spotter || app.fromFile || !app.roomDirty) return null;
  app.roomDirty = false;
  if (!keepalive) await spotter.idle();             // the chunks given so far learnt from too
  const state = spotter.roomState();
  if (!Object.keys(state).length) return null;
  const body = { keywords: state };
  if (keepalive) {
    const text = JSON.stringify(body);
    fetch('api/room', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: text,
                        keepalive: text.length < 60000 }).catch(() => {});
    return null;
  }
  try {
    return await api('api/room', body);
  } catch (err) {
    throw new KwsError(`what the thresholds learnt could not be saved: ${readable(err)}`);
  }
}
app.saveRoom = saveRoom;

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') saveRoom({ keepalive: true });
});
window.addEventListener('pagehide', () => { saveRoom({ keepalive: true }); });

$('learn').checked = app.learn;
$('learn').addEventListener('change', async () => {
  const on = $('learn').checked;
  app.learn = on;
  stored('kws.learn', on ? 'on' : 'off');
  if (!on) await saveRoom().catch(fail);
  if (app.spotter) app.spotter.learning = on;
  drawLegend();
});

// ------------------------------------------------------------------ enrollment

async function enrollJob(body, label) {
  const bar = $('progress-bar'), text = $('progress-text');
  $('progress').hidden = false;
  bar.removeAttribute('value');
  text.textContent = `${label}: starting`;
  setEnrollBusy(true);
  try {
    let job = await api('api/enroll', body);
    while (job.state === 'queued' || job.state === 'running') {
      if (job.total) { bar.max = job.total; bar.value = job.done; } else { bar.removeAttribute('value'); }
      text.textContent = `${label}: ${job.step}${job.total ? ` ${job.done}/${job.total}` : ''}`;
      await new Promise(r => setTimeout(r, 250));
      job = await api(`api/jobs/${job.id}`);
    }
    if (job.state === 'error') throw new KwsError(`${label}: ${job.error}`);
    message(`added \u201c${job.name}\u201d in ${job.seconds} s: ${job.lines[job.lines.length - 1] || ''}`, 'info');
    await refreshKeywords();
  } finally {
    $('progress').hidden = true;
    setEnrollBusy(false);
  }
}

function setEnrollBusy(busy) {
  $('add-text-button').disabled = busy;
  $('record-button').disabled = busy;
}

$('add-text').addEventListener('submit', (e) => {
  e.preventDefault();
  const text = $('text').value.trim();
  if (!text) return fail(new KwsError('type the keyword first'));
  enrollJob({ text }, `\u201c${text}\u201d`).then(() => { $('text').value = ''; }).catch(fail);
});

$('add-record').addEventListener('submit', (e) => {
  e.preventDefault();
  recordTakes().catch(fail);
});

async function recordTakes() {
  const name = $('record-name').value.trim();
  if (!name) throw new KwsError('give the recorded keyword a name first');
  if (app.doc && app.doc.keywords.some(k => k.name === name) && !app.fromFile) {
    throw new KwsError(`a keyword named \u201c${name}\u201d exists already (remove or rename it first)`);
  }
  if (app.run) stop();
  setEnrollBusy(true);
  const list = $('takes');
  list.replaceChildren();
  const takes = [];
  try {
    for (let i = 1; takes.length < 3; i++) {
      if (i > 6) throw new KwsError('three takes were refused in a row or more; check the microphone and try again');
      const li = document.createElement('li');
      li.textContent = `take ${takes.length + 1}: say \u201c${name}\u201d now\u2026`;
      list.append(li);
      const audio = await capture(TAKE_S);
      const b64 = toBase64(audio);
      try {
        const r = await api('api/check-take', { audio: b64, label: `take ${takes.length + 1}` });
        li.className = 'ok';
        li.textContent = `take ${takes.length + 1}: ${r.sound_s} s of sound \u2713`;
        takes.push(b64);
      } catch (err) {
        li.className = 'bad';
        li.textContent = `${readable(err)} \u2014 again:`;
      }
    }
  } finally {
    setEnrollBusy(false);
  }
  await enrollJob({ name, takes }, `\u201c${name}\u201d`);
  $('record-name').value = '';
}

/** `seconds` of 16 kHz microphone audio. */
async function capture(seconds) {
  const chunks = [];
  let got = 0;
  const need = Math.round(seconds * SAMPLE_RATE);
  await new Promise((resolve, reject) => {
    startMic((chunk) => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= need) { stop(); resolve(); }
    }, 'recording').catch(reject);
  });
  const out = new Float32Array(need);
  let o = 0;
  for (const c of chunks) { out.set(c.subarray(0, Math.min(c.length, need - o)), o); o += c.length; if (o >= need) break; }
  return out;
}

function toBase64(f32) {
  const bytes = new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

$('demo').addEventListener('click', () => {
  api('api/demo', {}).then((r) => {
    message(r.added.length ? `added the demo keywords ${r.added.join(', ')}` : 'the demo keywords are there already', 'info');
    return refreshKeywords();
  }).catch(fail);
});

// ------------------------------------------------------------------ keyword files (enroll export)

$('keyword-file').addEventListener('change', async (e) => {
  const f = e.target.files[0];
  if (!f) return;
  try {
    let doc;
    try {
      doc = JSON.parse(await f.text());
    } catch (err) {
      throw new KwsError(`${f.name} is not JSON: ${err.message}`);
    }
    new KeywordSpotter(doc, app.model);          // check it before switching to it
    await saveRoom().catch(fail);                // what the store's keywords learnt so far
    app.fromFile = f.name;
    useKeywords(doc);
    message(`the detector now runs the ${doc.keywords.length} keyword(s) of ${f.name}`, 'info');
  } catch (err) {
    fail(new KwsError(`${f.name}: ${readable(err)}`));
  } finally {
    e.target.value = '';
  }
});

// ------------------------------------------------------------------ detection

function requireSpotter() {
  if (!app.model) throw new KwsError('the model is not loaded, so the detector cannot run (see the message above)');
  if (!app.spotter) {
    throw new KwsError('no keywords to listen for: add one (type or record it), or add the demo keywords');
  }
}

/** Start a run labelled `kind`; `room`: it is the room (the microphone), so what the thresholds learn
 * is kept; otherwise (a file) they learn while it runs and what was learnt before is put back after. */
function resetRun(kind, room = false) {
  if (app.roomBefore) app.spotter.restoreRoom(app.roomBefore);
  app.roomBefore = room ? null : app.spotter.snapshotRoom();
  app.spotter.reset();
  app.offset = 0;
  app.history = [];
  app.events = [];
  app.heardCount = 0;
  $('detections').replaceChildren();
  $('source').textContent = kind;
  $('stop').disabled = false;
  $('save-heard').disabled = false;
}

async function audioContext() {
  let ctx;
  try {
    ctx = new AudioContext({ sampleRate: SAMPLE_RATE, latencyHint: 'interactive' });
  } catch (e) {
    throw new KwsError(`this browser cannot run audio at 16 kHz (${e.message}); use a recent Chromium, Chrome or Edge`);
  }
  await ctx.audioWorklet.addModule('capture-worklet.js');
  if (ctx.state === 'suspended') {      // made outside a click (a file chosen): the browser may hold it
    ctx.resume().catch(() => {});
    setTimeout(() => {
      if (ctx.state === 'suspended') message('The browser holds the audio until you click on the page: click Play the sample, or choose the file again.');
    }, 1500);
  }
  return ctx;
}

function captureNode(ctx, onChunk, onEnd) {
  const node = new AudioWorkletNode(ctx, 'kws-capture', {
    numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
    channelCount: 1, channelCountMode: 'explicit', channelInterpretation: 'speakers' });
  node.port.onmessage = (e) => {
    if (e.data instanceof Float32Array) onChunk(e.data);
    else if (e.data && e.data.end && onEnd) onEnd();
  };
  node.connect(ctx.destination);        // keeps it running; it outputs silence
  return node;
}

async function startMic(onChunk, kind) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new KwsError('this page cannot reach a microphone here (the browser allows it only on http://127.0.0.1, localhost or https)');
  }
  const ctx = await audioContext();            // ready before the microphone opens, so little is lost
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  } catch (e) {
    ctx.close();
    throw e;
  }
  let source;
  try {
    source = ctx.createMediaStreamSource(stream);
  } catch (e) {
    stream.getTracks().forEach(t => t.stop());
    ctx.close();
    throw new KwsError(`this browser cannot take the microphone at 16 kHz (${e.message}); use a recent Chromium, Chrome or Edge`);
  }
  const node = captureNode(ctx, onChunk);
  source.connect(node);
  app.run = { ctx, node, stream, source, kind };
  setRunning(true);
}

function feed(chunk) {
  if (!app.run) return;                 // stopped: a block posted before the stop
  keepHeard(chunk);
  const spotter = app.spotter;
  if (!spotter) return;
  if (app.run.kind === 'microphone' && spotter.learning) app.roomDirty = true;
  spotter.process(chunk).then((events) => showEvents(events, spotter)).catch(onDetectorError);
}

function onDetectorError(err) {
  stop();
  fail(err);
}

function finish() {
  const spotter = app.spotter;
  if (!spotter) return;
  spotter.flush().then((events) => { showEvents(events, spotter); stop(); }).catch(onDetectorError);
}

$('listen').addEventListener('click', async () => {
  try {
    requireSpotter();
    if (app.run) stop();
    resetRun('microphone', true);
    await startMic(feed, 'microphone');
  } catch (err) {
    stop();
    fail(err);
  }
});

/** 16-bit PCM WAV at 16 kHz, read as Python reads it (soundfile: sample / 32768, channels
 * averaged); null for anything else, which the browser decodes. */
function readWav16k(bytes) {
  const dv = new DataView(bytes);
  const tag = (o) => String.fromCharCode(dv.getUint8(o), dv.getUint8(o + 1), dv.getUint8(o + 2), dv.getUint8(o + 3));
  if (bytes.byteLength < 44 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') return null;
  let fmt = null;
  for (let o = 12; o + 8 <= bytes.byteLength;) {
    const id = tag(o), size = dv.getUint32(o + 4, true), body = o + 8;
    if (id === 'fmt ') {
      fmt = { format: dv.getUint16(body, true), channels: dv.getUint16(body + 2, true),
              rate: dv.getUint32(body + 4, true), bits: dv.getUint16(body + 14, true) };
    } else if (id === 'data' && fmt) {
      if (fmt.format !== 1 || fmt.bits !== 16 || fmt.rate !== SAMPLE_RATE || !fmt.channels) return null;
      const n = Math.floor(Math.min(size, bytes.byteLength - body) / (2 * fmt.channels));
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let c = 0; c < fmt.channels; c++) s += dv.getInt16(body + 2 * (i * fmt.channels + c), true) / 32768;
        out[i] = s / fmt.channels;
      }
      return out;
    }
    o = body + size + (size & 1);
  }
  return null;
}

async function decodeFile(bytes) {
  const wav = readWav16k(bytes);
  if (wav) return wav;
  const off = new OfflineAudioContext(1, 1, SAMPLE_RATE);
  let buf;
  try {
    buf = await off.decodeAudioData(bytes);
  } catch (e) {
    throw new KwsError(`the file could not be decoded as audio (${e.message || e.name})`);
  }
  const mono = new Float32Array(buf.length);
  for (let c = 0; c < buf.numberOfChannels; c++) {
    const d = buf.getChannelData(c);
    for (let i = 0; i < mono.length; i++) mono[i] += d[i] / buf.numberOfChannels;
  }
  return mono;
}

app.decodeFile = decodeFile;

async function chosenAudio() {
  const f = $('file').files[0];
  if (f) return { name: f.name, audio: await decodeFile(await f.arrayBuffer()) };
  const resp = await fetch('sample.wav');
  if (!resp.ok) throw new KwsError(`the sample recording could not be loaded (${resp.status})`);
  return { name: 'the sample', audio: await decodeFile(await resp.arrayBuffer()) };
}

/** Play audio through the same capture path as the microphone (and the speakers). */
async function playAudio(name, audio) {
  requireSpotter();
  if (app.run) stop();
  resetRun(`playing ${name}`);
  const ctx = await audioContext();
  const buffer = ctx.createBuffer(1, audio.length, SAMPLE_RATE);
  buffer.copyToChannel(audio, 0);
  const source = ctx.createBufferSource();
  source.buffer = buffer;
  const node = captureNode(ctx, feed, finish);
  source.connect(node);
  source.connect(ctx.destination);
  const t0 = ctx.currentTime + 0.15;
  const startFrame = Math.round(t0 * SAMPLE_RATE);
  node.port.postMessage({ startFrame, stopFrame: startFrame + audio.length });
  source.start(startFrame / SAMPLE_RATE);
  app.run = { ctx, node, source, kind: 'file' };
  setRunning(true);
}

$('play-sample').addEventListener('click', async () => {
  try {
    const resp = await fetch('sample.wav');
    if (!resp.ok) throw new KwsError(`the sample recording could not be loaded (${resp.status})`);
    await playAudio('the sample', await decodeFile(await resp.arrayBuffer()));
  } catch (err) { stop(); fail(err); }
});

$('file').addEventListener('change', async (e) => {
  const f = e.target.files[0];
  if (!f) return;
  try {
    await playAudio(f.name, await decodeFile(await f.arrayBuffer()));
  } catch (err) { stop(); fail(err); }
});

/** The detector over a whole file as fast as it goes (80 ms chunks, as the capture sends them). */
async function analyse(name, audio, chunk = 1280) {
  requireSpotter();
  if (app.run) stop();
  resetRun(`analysing ${name}`);
  const spotter = app.spotter;
  app.run = { kind: 'analyse' };
  setRunning(true);
  const t0 = performance.now();
  for (let s = 0; s < audio.length && app.run && app.run.kind === 'analyse'; s += chunk) {
    const part = audio.subarray(s, s + chunk);
    keepHeard(part);
    showEvents(await spotter.process(part), spotter);
  }
  showEvents(await spotter.flush(), spotter);
  const ms = performance.now() - t0;
  const result = { seconds: audio.length / SAMPLE_RATE, ms, rtf: ms / 1000 / (audio.length / SAMPLE_RATE),
                   vectors: Math.floor(audio.length / 1280), keywords: spotter.names.length,
                   templates: spotter.matcher.length.length };
  $('rtf').textContent = result.rtf.toFixed(4);
  stop();
  return result;
}
app.analyse = analyse;

$('analyse').addEventListener('click', async () => {
  try {
    const { name, audio } = await chosenAudio();
    await analyse(name, audio);
  } catch (err) { stop(); fail(err); }
});

function stop() {
  const run = app.run;
  app.run = null;
  if (app.roomBefore && app.spotter) {            // a file taught the thresholds while it ran: forget it
    app.spotter.restoreRoom(app.roomBefore).then(drawLegend);
    app.roomBefore = null;
  }
  if (run && run.kind === 'microphone') saveRoom().catch(fail);
  if (run) {
    if (run.source && run.source.stop && run.kind === 'file') { try { run.source.stop(); } catch (e) { /* not started */ } }
    if (run.stream) run.stream.getTracks().forEach(t => t.stop());
    if (run.ctx) run.ctx.close().catch(() => {});
  }
  setRunning(false);
}
$('stop').addEventListener('click', () => { if (app.run && app.run.kind === 'file') finish(); else stop(); });

function setRunning(on) {
  $('stop').disabled = !on;
  $('listen').disabled = on;
  if (!on) $('source').textContent = app.events.length ? `stopped (${app.events.length} detections)` : 'idle';
}

function keepHeard(chunk) {
  const cap = app.heard.length;
  for (let i = 0; i < chunk.length; i++) app.heard[(app.heardCount + i) % cap] = chunk[i];
  app.heardCount += chunk.length;
}

/** The audio the detector heard since the last start (the last minute of it): Float32Array. */
app.heardAudio = () => {
  const cap = app.heard.length, n = Math.min(app.heardCount, cap);
  const out = new Float32Array(n);
  const first = app.heardCount - n;
  for (let i = 0; i < n; i++) out[i] = app.heard[(first + i) % cap];
  return out;
};

$('save-heard').addEventListener('click', () => {
  const audio = app.heardAudio();
  if (!audio.length) return fail(new KwsError('the detector has heard nothing yet'));
  const pcm = new Int16Array(audio.length);
  for (let i = 0; i < audio.length; i++) pcm[i] = Math.max(-32768, Math.min(32767, Math.round(audio[i] * 32768)));
  const header = new DataView(new ArrayBuffer(44));
  const str = (o, s) => [...s].forEach((c, i) => header.setUint8(o + i, c.charCodeAt(0)));
  str(0, 'RIFF'); header.setUint32(4, 36 + pcm.byteLength, true); str(8, 'WAVE'); str(12, 'fmt ');
  header.setUint32(16, 16, true); header.setUint16(20, 1, true); header.setUint16(22, 1, true);
  header.setUint32(24, SAMPLE_RATE, true); header.setUint32(28, SAMPLE_RATE * 2, true);
  header.setUint16(32, 2, true); header.setUint16(34, 16, true); str(36, 'data'); header.setUint32(40, pcm.byteLength, true);
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([header, pcm], { type: 'audio/wav' }));
  a.download = 'heard.wav';
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
});

function showEvents(events, spotter) {
  if (spotter !== app.spotter) return;
  for (const e of events) {
    const ev = { ...e, start: e.start + app.offset, end: e.end + app.offset };
    app.events.push(ev);
    const li = document.createElement('li');
    li.className = 'detection';
    li.dataset.keyword = ev.keyword;
    li.dataset.start = ev.start.toFixed(3);
    li.dataset.end = ev.end.toFixed(3);
    li.dataset.score = ev.score.toFixed(4);
    const b = document.createElement('b');
    b.textContent = ev.keyword;
    li.append(`${ev.start.toFixed(2)}\u2013${ev.end.toFixed(2)} s  `, b,
              `  score ${ev.score.toFixed(3)} \u2265 ${ev.threshold.toFixed(3)}`);
    $('detections').prepend(li);
  }
  $('rtf').textContent = spotter.rtf.toFixed(4);
}

// ------------------------------------------------------------------ plot

function onScores(e, t, scores) {
  app.history.push({ t: t + app.offset, scores: Float64Array.from(scores) });
  const keep = Math.ceil(PLOT_S * SAMPLE_RATE / 1280) + 2;
  if (app.history.length > 2 * keep) app.history.splice(0, app.history.length - keep);
  $('clock').textContent = `${(t + app.offset).toFixed(1)} s`;
  schedulePlot();
}

let plotPending = false;
function schedulePlot() {
  if (plotPending) return;
  plotPending = true;
  requestAnimationFrame(() => { plotPending = false; drawPlot(); });
}

/** The table under the plot: each keyword's threshold now and the bank's; and whether they learn. */
function drawLegend() {
  const tbody = document.querySelector('#thresholds tbody');
  tbody.replaceChildren();
  const spotter = app.spotter;
  $('thresholds').hidden = !spotter;
  const state = $('learning-state');
  const learns = spotter ? spotter.learns.filter(Boolean).length : 0;
  $('learn').disabled = !learns;
  if (!spotter) {
    state.textContent = '';
  } else if (!learns) {
    state.textContent = app.doc && app.doc.room_error ? `unavailable: ${app.doc.room_error}`
      : 'unavailable: these keywords carry no bank tail (tuned_on.tail); their thresholds stay the bank\'s';
  } else if (!spotter.learning) {
    state.textContent = 'off: the bank\'s thresholds';
  } else {
    const part = learns < spotter.names.length ? ` (${learns} of ${spotter.names.length} keywords)` : '';
    state.textContent = `on${part}: each threshold moves toward ` +
      (app.fromFile ? 'its false-alarm target as heard here; not saved (the keywords of a file)'
                    : 'its false-alarm target as heard by the microphone here, and is kept in the store');
  }
  $('learning').dataset.on = spotter && spotter.learning ? 'yes' : 'no';
  if (spotter) {
    spotter.names.forEach((n, k) => {
      const e = spotter.room.entries[k];
      tbody.append(keywordRow(n, k, [
        ['num now', spotter.thresholds[k].toFixed(3)], ['num bank', spotter.bankThresholds[k].toFixed(3)],
        ['num listened', e ? `${(e.listened_h * 60).toFixed(1)} min` : '-'],
      ]));
    });
  }
  drawPlot();
}

function drawPlot() {
  const c = $('plot'), g = c.getContext('2d');
  const W = c.width, H = c.height, L = 44, R = 8, T = 10, B = 24;
  g.clearRect(0, 0, W, H);
  const lo = 0.4, hi = 1;          // scores below 0.4 sit on the bottom line
  const y = (v) => T + (H - T - B) * (1 - (Math.min(hi, Math.max(lo, v)) - lo) / (hi - lo));
  const tEnd = Math.max(PLOT_S, app.history.length ? app.history[app.history.length - 1].t : 0);
  const tStart = tEnd - PLOT_S;
  const x = (t) => L + (W - L - R) * (t - tStart) / PLOT_S;
  g.font = '12px system-ui, sans-serif';
  g.fillStyle = '#667';
  g.strokeStyle = '#e3e6ea';
  g.lineWidth = 1;
  for (let v = lo; v <= hi + 1e-9; v += 0.1) {
    g.beginPath(); g.moveTo(L, y(v)); g.lineTo(W - R, y(v)); g.stroke();
    g.fillText(v.toFixed(1), 12, y(v) + 4);
  }
  for (let s = Math.ceil(tStart / 5) * 5; s <= tEnd; s += 5) {
    g.fillText(`${s} s`, x(s) - 8, H - 6);
  }
  if (!app.spotter) {
    g.fillText('no keywords: add one to see its score here', L + 10, T + 20);
    return;
  }
  const names = app.spotter.names;
  names.forEach((n, k) => {
    const col = COLORS[k % COLORS.length];
    g.strokeStyle = col;
    g.setLineDash([6, 4]);
    g.beginPath(); g.moveTo(L, y(app.spotter.thresholds[k])); g.lineTo(W - R, y(app.spotter.thresholds[k])); g.stroke();
    g.setLineDash([]);
    g.lineWidth = 1.6;
    g.beginPath();
    let started = false;
    for (const h of app.history) {
      if (h.t < tStart) continue;
      const px = x(h.t), py = y(h.scores[k]);
      if (!started) { g.moveTo(px, py); started = true; } else g.lineTo(px, py);
    }
    g.stroke();
    g.lineWidth = 1;
  });
  for (const ev of app.events) {
    const k = names.indexOf(ev.keyword);
    if (k < 0 || ev.end < tStart) continue;
    const col = COLORS[k % COLORS.length];
    g.fillStyle = col;
    g.globalAlpha = 0.12;
    g.fillRect(x(ev.start), T, x(ev.end) - x(ev.start), H - T - B);
    g.globalAlpha = 1;
    g.fillText(ev.keyword, x(ev.start) + 2, T + 12);
  }
}

// ------------------------------------------------------------------ start

async function main() {
  try {
    app.info = await api('api/info');
    $('store').textContent = app.info.store;
    $('model-id').textContent = app.info.model_id;
    $('voices').textContent = app.info.voices;
  } catch (err) {
    setStatus('no server');
    fail(err);
    return;
  }
  try {
    app.model = await loadModel('model/');
  } catch (err) {
    setStatus('model not loaded');
    fail(new KwsError(`The detector cannot run: ${readable(err)}`));
  }
  try {
    await refreshKeywords();
  } catch (err) {
    fail(err);
  }
  app.loadMs = performance.now();
  if (app.model) setStatus(`ready in ${(app.loadMs / 1000).toFixed(2)} s`);
  drawPlot();
  document.body.dataset.ready = app.model ? 'yes' : 'no-model';
}

main();
