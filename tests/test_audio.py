import numpy as np
import pytest
import soundfile as sf

from kws.audio.io import AudioError, load_audio, prepare


def test_reads_stereo_44k_and_resamples(tmp_path):
    t = np.arange(44100) / 44100
    x = np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1) * 0.5
    f = tmp_path / "a.flac"
    sf.write(f, x, 44100)
    y = load_audio(f)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(y.size - 16000) <= 1
    assert 0.2 < np.abs(y).max() < 0.3            # mono = mean of channels
    spec = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spec) * 16000 / y.size - 440) < 3


def test_int16_scaling():
    x = np.array([0, 16384, -32768], dtype=np.int16)
    np.testing.assert_allclose(prepare(x, 16000), [0.0, 0.5, -1.0])
    u = np.array([128, 255, 0], dtype=np.uint8)
    np.testing.assert_allclose(prepare(u, 16000), [0.0, 127 / 128, -1.0])


@pytest.mark.parametrize("make, msg", [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: p.write_bytes(b"not audio at all" * 10), "cannot be read as audio"),
    (lambda p: sf.write(p, np.zeros(0), 16000, format="WAV"), "no samples"),
])
def test_clear_errors_name_the_file(tmp_path, make, msg):
    p = tmp_path / "bad.wav"
    make(p)
    with pytest.raises(AudioError, match=msg) as e:
        load_audio(p)
    assert "bad.wav" in str(e.value)


def test_too_short(tmp_path):
    p = tmp_path / "short.wav"
    sf.write(p, np.zeros(100) + 0.1, 16000)
    with pytest.raises(AudioError, match="at least"):
        load_audio(p, min_seconds=0.5)


def test_nan_rejected():
    with pytest.raises(AudioError, match="NaN"):
        prepare(np.array([0.0, np.nan], dtype=np.float32), 16000)
