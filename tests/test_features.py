import numpy as np
import pytest

from kws.features import LogMel, MelConfig, StreamingLogMel, mel_filterbank, num_frames


def test_frame_count_and_shape(rng):
    x = rng.normal(size=16000).astype(np.float32)
    m = LogMel()(x)
    assert m.shape == (num_frames(16000), 128) == (98, 128)
    assert LogMel()(x[:399]).shape == (0, 128)


def test_filterbank_covers_band():
    fb = mel_filterbank(MelConfig())
    assert fb.shape == (128, 257)
    # With 31.25 Hz FFT bins, the narrowest low filters can fall between two bins: exactly one
    # filter (index 3) is empty and gives a constant feature. Known and kept (the model is trained
    # on it); this pins it so a change of the front end is noticed.
    empty = np.nonzero(fb.max(axis=1) == 0)[0]
    assert empty.tolist() == [3]
    assert np.all(fb[40:].max(axis=1) > 0.5)   # below ~700 Hz filters are under-resolved


def test_log_floor(rng):
    m = LogMel()(np.zeros(1600, np.float32))
    assert np.allclose(m, np.log(MelConfig().log_floor))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_equals_offline_random_chunks(seed):
    r = np.random.default_rng(seed)
    x = r.normal(size=16000 * 2 + 123).astype(np.float32) * 0.1
    off = LogMel()(x)
    st = StreamingLogMel()
    outs, pos = [], 0
    while pos < x.size:
        n = int(r.integers(0, 700))
        outs.append(st.push(x[pos:pos + n]))
        pos += n
    on = np.concatenate(outs)
    assert on.shape == off.shape
    np.testing.assert_allclose(on, off, rtol=0, atol=1e-5)


def test_torch_twin_matches_numpy(rng):
    torch = pytest.importorskip("torch")
    from kws.train.features import TorchLogMel

    x = rng.normal(size=(3, 8000)).astype(np.float32) * 0.2
    tm = TorchLogMel()(torch.from_numpy(x)).numpy()
    for i in range(3):
        np.testing.assert_allclose(tm[i], LogMel()(x[i]), atol=1e-4, rtol=1e-4)
    assert int(TorchLogMel.frames_for(torch.tensor(8000))) == num_frames(8000)
