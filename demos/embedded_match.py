"""Minimal embedded example: ONNX audio encoder + a saved keyword vector, numpy + onnxruntime only.

This single file is what a port to a device needs (no kws import): read 16-bit PCM WAV (16 kHz,
mono), compute the same log-mel frames as kws.features, embed sliding windows with the audio
encoder, and compare each with a keyword vector saved beforehand, e.g. with:

    python -c "import numpy as np; from kws import Bundle; np.save('computer.npy', Bundle.load().embed_text('computer'))"
    python demos/embedded_match.py kws/assets/model/audio.int8.onnx computer.npy kws/assets/sample.wav

Prints the best score and when it happened. A score above the keyword's threshold (kws.enroll
list shows it; about 0.3-0.35 for text keywords) is a detection.
"""
import sys
import wave

import numpy as np
import onnxruntime as ort

SR, WIN, HOP, NFFT, NMELS = 16000, 400, 160, 512, 128


def mel_filterbank():
    mel = lambda hz: 2595.0 * np.log10(1.0 + hz / 700.0)
    hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    freqs = np.linspace(0.0, SR / 2.0, NFFT // 2 + 1)
    pts = hz(np.linspace(mel(20.0), mel(8000.0), NMELS + 2))
    fb = np.zeros((NMELS, freqs.size))
    for m in range(NMELS):
        up = (freqs - pts[m]) / max(pts[m + 1] - pts[m], 1e-9)
        down = (pts[m + 2] - freqs) / max(pts[m + 2] - pts[m + 1], 1e-9)
        fb[m] = np.maximum(0.0, np.minimum(up, down))
    return fb.astype(np.float32)


def log_mel(x):
    n = 1 + (x.size - WIN) // HOP
    idx = np.arange(n)[:, None] * HOP + np.arange(WIN)[None, :]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)).astype(np.float32)
    spec = np.fft.rfft(x[idx] * window, n=NFFT, axis=1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    return np.log(np.maximum(power @ mel_filterbank().T, 1e-6)).astype(np.float32)


def main(model, keyword_npy, wav_path, windows=(30, 45, 60, 75, 90), hop=15):
    with wave.open(wav_path, "rb") as w:
        assert w.getframerate() == SR and w.getnchannels() == 1 and w.getsampwidth() == 2, "need 16 kHz mono 16-bit WAV"
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    mel = log_mel(x)
    key = np.load(keyword_npy).astype(np.float32)
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    best = (-1.0, 0.0)
    for end in range(hop, mel.shape[0] + 1, hop):
        for L in windows:                       # one window per call: exact for int8 models too
            if end - L < 0:
                continue
            emb = sess.run(None, {"mel": mel[None, end - L:end], "lengths": np.array([L], dtype=np.int64)})[0][0]
            score = float(emb @ key)
            if score > best[0]:
                best = (score, (end - L) * HOP / SR)
    print(f"best score {best[0]:.3f} at {best[1]:.2f} s")
    return best


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
