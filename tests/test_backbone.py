"""The speech-embedding front end (kws.model.backbone), its step graph (export.backbone) and its
torch twin (kws.train.backbone)."""
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from kws.model.backbone import (CONTEXT, STEP_FILE, STRIDE, VEC_HOP, VEC_SPAN, Backbone, StreamingBackbone,
                                as_files, num_vectors)

MODEL = Path(str(resources.files("kws") / "assets" / "model"))
FILES = as_files(MODEL)


@pytest.fixture(scope="module")
def bb():
    return Backbone(FILES)


@pytest.fixture(scope="module")
def bb_windows():
    """The same front end without its step graph: streams run the network on whole windows."""
    return Backbone(as_files(MODEL, step=None))


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


def _stream(st, x, sizes):
    """Push ``x`` in chunks of ``sizes`` (cycled); the vectors each push gave, and how many."""
    out, pos, i = [], 0, 0
    while pos < x.size:
        n = sizes[i % len(sizes)]
        out.append(st.push(x[pos:pos + n]))
        pos, i = pos + n, i + 1
    return np.concatenate(out), [o.shape[0] for o in out]


def test_the_shipped_model_streams_with_its_step_graph(bb, bb_windows):
    assert FILES.step == MODEL / STEP_FILE and StreamingBackbone(bb).stepped
    assert not StreamingBackbone(bb_windows).stepped


@pytest.mark.parametrize("step", [True, False], ids=["step", "windows"])
@pytest.mark.parametrize("sizes", [[1], [800], [16000], [1999], [12511, 3, 1281, 159, 161, 7777]],
                         ids=["1", "50ms", "1s", "1999", "odd"])
def test_streaming_equals_offline(bb, bb_windows, rng, step, sizes):
    """Any chunking gives the offline vectors, each as soon as its last sample has arrived."""
    fe = bb if step else bb_windows
    x = _speechlike(rng, 1.3 if sizes == [1] else 4.1)
    off = fe(x)
    st = StreamingBackbone(fe)
    on, counts = _stream(st, x, sizes)
    assert on.shape == off.shape and st.vectors_emitted == off.shape[0] > 0
    # tolerance: frames of a 1-sample chunk are each analysed alone (the FFT of one frame rounds
    # otherwise than that of many); with longer chunks the vectors are equal
    np.testing.assert_allclose(on, off, rtol=1e-5, atol=1e-4 if sizes == [1] else 1e-5)
    ends = np.cumsum([sizes[i % len(sizes)] for i in range(len(counts))])
    np.testing.assert_array_equal(np.cumsum(counts), [num_vectors(min(e, x.size)) for e in ends])


def test_stepped_and_windowed_streams_agree_and_reset_starts_afresh(bb, bb_windows, rng):
    x = _speechlike(rng, 3.0)
    st, win = StreamingBackbone(bb), StreamingBackbone(bb_windows)
    a, _ = _stream(st, x, [800])
    np.testing.assert_allclose(a, _stream(win, x, [800])[0], rtol=1e-5, atol=1e-5)
    st.push(_speechlike(rng, 1.7)[:20001])           # a stream cut off mid-frame, mid-step
    st.reset()
    assert st.vectors_emitted == 0
    b, _ = _stream(st, x, [800])
    np.testing.assert_array_equal(a, b)


def test_a_folder_without_the_step_graph_streams_on_windows(tmp_path, bb, rng):
    """Model folders made before the step graph (runs/model-*) keep working."""
    for name in ("backbone.onnx", "backbone_mel.npz"):
        shutil.copy2(MODEL / name, tmp_path / name)
    files = as_files(tmp_path)
    assert files.step is None
    old = Backbone(files)
    st = StreamingBackbone(old)
    assert not st.stepped
    x = _speechlike(rng, 2.0)
    on, _ = _stream(st, x, [800])
    np.testing.assert_allclose(on, bb(x), rtol=1e-5, atol=1e-5)


def test_step_graph_made_from_backbone_onnx_is_the_shipped_one(tmp_path):
    """export.backbone.step_network of the shipped backbone.onnx gives the shipped step graph,
    whose stepped vectors equal backbone.onnx's (export.backbone.check_step)."""
    pytest.importorskip("onnx")
    from export.backbone import check_step, write_step

    for name in ("backbone.onnx", "backbone_mel.npz"):
        shutil.copy2(MODEL / name, tmp_path / name)
    rep = write_step(tmp_path)
    assert (tmp_path / STEP_FILE).read_bytes() == (MODEL / STEP_FILE).read_bytes()
    assert rep["step_max_abs_diff"] <= 1e-5 and rep["step_vectors"] > 50
    assert (rep["lead_frames"], rep["skip_vectors"], rep["states"]) == (4, 9, 11)
    assert check_step(MODEL)["step_max_abs_diff"] <= 1e-5


def test_step_check_fails_on_a_misaligned_start(tmp_path):
    """A stream started a frame off (the poolings then pair other rows) is caught by the check."""
    onnx = pytest.importorskip("onnx")
    from onnx import helper

    from export.backbone import check_step

    for name in ("backbone.onnx", "backbone_mel.npz"):
        shutil.copy2(MODEL / name, tmp_path / name)
    m = onnx.load(str(MODEL / STEP_FILE))
    props = {p.key: p.value for p in m.metadata_props}
    del m.metadata_props[:]
    helper.set_model_props(m, {**props, "kws_lead_frames": str(int(props["kws_lead_frames"]) + 1)})
    onnx.save(m, str(tmp_path / STEP_FILE))
    with pytest.raises(SystemExit, match="differ"):
        check_step(tmp_path)


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
