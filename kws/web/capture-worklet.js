// The page's audio capture: an AudioWorklet in a 16 kHz AudioContext that posts the samples it
// hears (channel 0 of its input, which the node mixes down to mono) to the page in blocks of
// 1280 samples (80 ms, one detector vector). Frames before `startFrame` and from `stopFrame` on are
// not posted, so that a file played from `startFrame` reaches the detector from its first sample;
// at `stopFrame` the last partial block is posted, then {end: true}.
class KwsCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.size = 1280;
    this.buf = new Float32Array(this.size);
    this.n = 0;
    this.startFrame = 0;
    this.stopFrame = Infinity;
    this.ended = false;
    this.port.onmessage = (e) => {
      if (e.data.startFrame !== undefined) this.startFrame = e.data.startFrame;
      if (e.data.stopFrame !== undefined) this.stopFrame = e.data.stopFrame;
    };
  }

  process(inputs) {
    if (this.ended) return false;
    const input = inputs[0];
    const ch = input && input.length ? input[0] : null;
    const frames = ch ? ch.length : 128;
    for (let i = 0; i < frames; i++) {
      const f = currentFrame + i;
      if (f < this.startFrame || f >= this.stopFrame) continue;
      this.buf[this.n++] = ch ? ch[i] : 0;
      if (this.n === this.size) {
        this.port.postMessage(this.buf, [this.buf.buffer]);
        this.buf = new Float32Array(this.size);
        this.n = 0;
      }
    }
    if (currentFrame + frames >= this.stopFrame) {
      if (this.n) this.port.postMessage(this.buf.slice(0, this.n));
      this.port.postMessage({ end: true });
      this.ended = true;
      return false;
    }
    return true;
  }
}

registerProcessor('kws-capture', KwsCapture);
