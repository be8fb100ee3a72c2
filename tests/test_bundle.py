import json
import shutil

import numpy as np
import pytest

from kws.bundle import Bundle, BundleError, default_bundle_path


def test_shipped_bundle_loads_both_variants():
    for v in ("int8", "fp32"):
        b = Bundle.load(variant=v)
        assert b.embedding_dim == 512
        e = b.embed_text("hello world")
        assert e.shape == (512,) and abs(np.linalg.norm(e) - 1) < 1e-4


def test_int8_batches_of_mixed_lengths_match_single_calls(rng):
    b = Bundle.load(variant="int8")
    mel = rng.normal(-4, 2, size=(3, 40, 128)).astype(np.float32)
    lens = np.array([40, 25, 10])
    batch = b.embed_mel(mel, lens)
    for i, L in enumerate(lens):
        single = b.embed_mel(mel[i:i + 1, :L], np.array([L]))[0]
        assert float(single @ batch[i]) > 0.9999


def test_int8_close_to_fp32(rng):
    mel = rng.normal(-4, 2, size=(1, 50, 128)).astype(np.float32)
    a = Bundle.load(variant="fp32").embed_mel(mel, np.array([50]))[0]
    b = Bundle.load(variant="int8").embed_mel(mel, np.array([50]))[0]
    assert float(a @ b) > 0.9


@pytest.fixture
def bundle_copy(tmp_path):
    d = tmp_path / "bundle"
    shutil.copytree(default_bundle_path(), d)
    return d


def test_corrupt_file_detected(bundle_copy):
    f = bundle_copy / "audio.int8.onnx"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="checksum mismatch"):
        Bundle.load(bundle_copy, "int8")
    Bundle.load(bundle_copy, "fp32")          # the other variant is intact


def test_missing_and_mismatched(bundle_copy, tmp_path):
    with pytest.raises(BundleError, match="no manifest"):
        Bundle.load(tmp_path)
    (bundle_copy / "text.onnx").unlink()
    with pytest.raises(BundleError, match="missing"):
        Bundle.load(bundle_copy, "fp32")
    m = json.loads((bundle_copy / "manifest.json").read_text())
    m["features"]["n_mels"] = 80
    (bundle_copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="feature parameters"):
        Bundle.load(bundle_copy, "int8")
    (bundle_copy / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        Bundle.load(bundle_copy)
    with pytest.raises(BundleError, match="variant"):
        Bundle.load(variant="fp16")
