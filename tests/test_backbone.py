"""The speech-embedding front end (kws.model.backbone) and its torch twin (kws.train.backbone)."""
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from kws.model.backbone import (CONTEXT, STRIDE, VEC_HOP, VEC_SPAN, Backbone, StreamingBackbone, as_files,
                          num_vectors)

FILES = as_files(Path(str(resources.files("kws") / "assets" / "model")))


@pytest.fixture(scope="module")
def bb():
    return Backbone(FILES)


def _speechlike(rng, seconds):
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    f = 180 + 120 * np.sin(2 * np.pi * 2.5 * t)
    x = 0.3 * np.sin(2 * np.pi * np.cumsum(f) / 16000) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    return (x + 0.02 * rng.normal(size=n)).astype(np.float32)


def test_geometry(bb):
    x = np.zeros(VEC_SPAN + 5 * VEC_HOP, np.float32)
    assert num_vectors(x.size) == 6 == bb(x).shape[0]
    assert num_vectors(VEC_SPAN - 1) == 0 and bb(x[:VEC_SPAN - 1]).shape == (0, 96)


def test_one_long_call_equals_windows_one_by_one(bb, rng):
    """The network over 76 + 8(n-1) frames gives the n vectors of its 76-frame windows."""
    mel = bb.mel(_speechlike(rng, 2.0))
    long_ = bb.vectors_from_mel(mel)
    single = np.stack([bb.vectors_from_mel(mel[STRIDE * j: STRIDE * j + CONTEXT])[0]
                       for j in range(long_.shape[0])])
    np.testing.assert_allclose(long_, single, rtol=1e-4, atol=1e-3)


def test_streaming_equals_offline(bb, rng):
    x = _speechlike(rng, 3.3)
    off = bb(x)
    st = StreamingBackbone(bb)
    out, pos = [], 0
    while pos < x.size:
        n = int(rng.integers(1, 3000))
        out.append(st.push(x[pos:pos + n]))
        pos += n
    on = np.concatenate(out)
    assert on.shape == off.shape and st.vectors_emitted == off.shape[0]
    np.testing.assert_allclose(on, off, rtol=1e-4, atol=1e-3)


def test_torch_twin_equals_onnx(bb, rng):
    torch = pytest.importorskip("torch")
    from kws.train.backbone import TorchBackbone

    x = np.stack([_speechlike(rng, 1.5), 0.01 * rng.normal(size=24000).astype(np.float32)])
    with torch.no_grad():
        tv = TorchBackbone(FILES)(torch.from_numpy(x)).numpy()
    for i in range(2):
        ref = bb(x[i])
        rel = np.linalg.norm(tv[i] - ref) / np.linalg.norm(ref)
        assert rel < 1e-4, rel
