"""kws.corpus.kokoro_torch: Kokoro-82M in PyTorch with the ONNX file's weights, against onnxruntime.

Skipped without torch, onnx or the Kokoro model file. About 20 s on one core.
"""
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def _model_file():
    from kws.enroll import kokoro

    try:
        return kokoro.model_path()
    except Exception:
        return None


@pytest.fixture(scope="module")
def models():
    path = _model_file()
    if path is None or not os.path.exists(path):
        pytest.skip("the Kokoro model file is not installed")
    from kws.corpus import kokoro_torch

    torch.set_num_threads(1)
    return kokoro_torch.load(path)


def _mel_diff(a, b):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from kokoro_torch_check import mel_diff

    return mel_diff(a, b)


def test_every_weight_mapped(models):
    # load() raises when a parameter gets no tensor or a weight of the file no parameter; what is
    # left are the graph's own constants
    assert sum(p.numel() for p in models.parameters()) == 81_140_664
    assert not any(n.endswith("_quantized") for n in models.unused_initializers)
    assert len(models.weight_sources) == 460


def test_close_to_onnxruntime(models):
    from kws.enroll import kokoro

    ids = kokoro.tokens(kokoro.misaki([["S", "EH1", "V", "AH0", "N"]]))
    style = kokoro.voices().style("am_adam", ids.size - 2)
    a_ort, d_ort = kokoro.synthesize_timed(ids, style)
    a_pt, d_pt = models.synthesize_timed(ids, style)
    assert a_pt.dtype == np.float32 and d_pt.shape == d_ort.shape
    assert np.abs(d_pt - d_ort).max() <= 1 and np.sum(d_pt != d_ort) <= 1
    assert abs(a_pt.size - a_ort.size) <= 600
    assert _mel_diff(a_ort, a_pt) < 4.0


def test_batch_rows_render_as_alone(models):
    """Rows of one padded batch (two lengths, two voices, two speeds) render as they do alone."""
    from kws.enroll import kokoro

    v = kokoro.voices()
    ids = [kokoro.tokens(kokoro.misaki([["K", "AE1", "T"]])),
           kokoro.tokens(kokoro.misaki([["HH", "EY1"], ["JH", "AA1", "R", "V", "IH0", "S"]]))]
    styles = [v.style("bf_emma", ids[0].size - 2), v.style("af_heart", ids[1].size - 2)]
    speeds = [1.2, 0.9]
    batch = models.synthesize_batch(ids, styles, speeds)
    for x, s, sp, (ab, db) in zip(ids, styles, speeds, batch):
        a1, d1 = models.synthesize_timed(x, s, sp)
        assert np.array_equal(d1, db)
        assert a1.size == ab.size == int(d1.sum()) * 600
        # the tensors agree to float rounding up to the generator; the source's phase (float32
        # accumulation) and the phase of its near-zero STFT bins pass on 1e-7 differences as
        # differences of up to a few 1e-2 in the waveform, so the audio is compared as log-mels
        assert _mel_diff(a1, ab) < 1.0
