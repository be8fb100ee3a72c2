"""torch == ONNX: the hand-built ONNX graph reproduces the encoders (tiny random model)."""
import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
import onnxruntime as ort  # noqa: E402

from export.onnx_export import audio_encoder_onnx, state_dict_numpy, text_encoder_onnx  # noqa: E402
from kws.bundle import Bundle, BundleError  # noqa: E402
from kws.train.encoders import EncoderConfig, JointModel  # noqa: E402


def _run(model_proto, feeds):
    sess = ort.InferenceSession(model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)[0]


def test_onnx_matches_torch_with_padding():
    torch.manual_seed(0)
    cfg = EncoderConfig(hidden=24, layers=3, embed_dim=16)
    m = JointModel(cfg).eval()
    m.audio.feat_mean.normal_()
    m.audio.feat_std.uniform_(0.5, 2.0)
    sd = state_dict_numpy(m.state_dict())
    lens = np.array([7, 30, 19, 1], dtype=np.int64)
    mel = np.random.default_rng(0).normal(size=(4, 30, 128)).astype(np.float32)
    with torch.no_grad():
        ref = m.audio(torch.from_numpy(mel), torch.from_numpy(lens)).numpy()
    got = _run(audio_encoder_onnx(sd, cfg.layers, cfg.hidden), {"mel": mel, "lengths": lens})
    assert np.min(np.sum(ref * got, 1)) > 0.9999
    ids = np.array([[5, 6, 7, 1, 8], [9, 10, 0, 0, 0]], dtype=np.int64)
    ilens = np.array([5, 2], dtype=np.int64)
    with torch.no_grad():
        tref = m.text(torch.from_numpy(ids), torch.from_numpy(ilens)).numpy()
    tgot = _run(text_encoder_onnx(sd, cfg.layers, cfg.hidden), {"ids": ids, "lengths": ilens})
    assert np.min(np.sum(tref * tgot, 1)) > 0.9999


@pytest.mark.parametrize("stack", [2, 3])
def test_onnx_matches_torch_student_stacked(stack):
    """A smaller audio encoder with stacked frames (a distilled student) exports exactly too,
    and padding a row further never changes its embedding."""
    torch.manual_seed(1)
    cfg = EncoderConfig(hidden=24, layers=3, embed_dim=16, audio_hidden=12, audio_layers=2, stack=stack)
    m = JointModel(cfg).eval()
    m.audio.feat_mean.normal_()
    m.audio.feat_std.uniform_(0.5, 2.0)
    sd = state_dict_numpy(m.state_dict())
    lens = np.array([7, 30, 19, 1, 29], dtype=np.int64)
    mel = np.random.default_rng(1).normal(size=(5, 31, 128)).astype(np.float32)
    with torch.no_grad():
        ref = m.audio(torch.from_numpy(mel), torch.from_numpy(lens)).numpy()
        alone = np.concatenate([m.audio(torch.from_numpy(mel[i:i + 1, :L]), torch.tensor([L])).numpy()
                                for i, L in enumerate(lens)])
    assert np.min(np.sum(ref * alone, 1)) > 0.9999
    proto = audio_encoder_onnx(sd, 2, 12, stack=stack)
    got = _run(proto, {"mel": mel, "lengths": lens})
    assert np.min(np.sum(ref * got, 1)) > 0.9999
    # garbage in the padding must not leak in
    noisy = mel.copy()
    for i, L in enumerate(lens):
        noisy[i, L:] = 50.0
    assert np.allclose(_run(proto, {"mel": noisy, "lengths": lens}), got, atol=1e-5)


def test_shipped_bundle_parity_recorded():
    b = Bundle.load()
    par = b.manifest["parity"]
    assert par["fp32"]["audio_min_cos"] >= 0.9999 and par["fp32"]["text_min_cos"] >= 0.9999
    assert par["int8"]["audio_min_cos"] >= 0.95 and par["int8"]["text_min_cos"] >= 0.999


def test_shipped_bundle_is_the_distilled_student():
    """The shipped audio encoder is the student the README describes, recorded in the manifest."""
    m = Bundle.load().manifest
    enc = m["encoder"]
    assert (enc["audio_hidden"], enc["audio_layers"], enc["stack"]) == (192, 2, 2)
    assert (enc["hidden"], enc["layers"]) == (256, 3)          # text encoder: the teacher's
    assert m["distilled"]["student"] == {"audio_hidden": 192, "audio_layers": 2, "stack": 2}
    assert m["recipe"].endswith("+distill-1")


def test_format2_bundle_on_the_backbone(tmp_path, rng):
    """A tiny encoder on the speech-embedding front end, written as a format-2 bundle (what
    spoken-term search loads): the bundle embeds as torch does."""
    from importlib import resources

    from kws.bundle import sha256_file
    from kws.phonemes import TOKENS

    torch.manual_seed(2)
    cfg = EncoderConfig(hidden=16, layers=1, embed_dim=16, n_mels=96, audio_hidden=12, audio_layers=2,
                        frontend="speech_embedding")
    m = JointModel(cfg).eval()
    m.audio.feat_mean.normal_()
    m.audio.feat_std.uniform_(5.0, 10.0)
    sd = state_dict_numpy(m.state_dict())
    out = tmp_path / "b2"
    out.mkdir()
    onnx.save(audio_encoder_onnx(sd, 2, 12, input_name="frames"), str(out / "audio.onnx"))
    onnx.save(text_encoder_onnx(sd, 1, 16), str(out / "text.onnx"))
    src = resources.files("kws") / "assets" / "model"
    for f in ("backbone.onnx", "backbone_mel.npz", "NOTICE.backbone"):
        shutil.copyfile(str(src / f), out / f)
    files = ["audio.onnx", "text.onnx", "backbone.onnx", "backbone_mel.npz"]
    manifest = {"format": "kws-bundle", "format_version": 2, "model_id": "tiny-b2", "embedding_dim": 16,
                "phonemes": list(TOKENS), "features": {}, "background": {"file": "none"},
                "frontend": {"kind": "speech_embedding", "network": "backbone.onnx",
                             "constants": "backbone_mel.npz"},
                "variants": {v: {"audio": "audio.onnx", "text": "text.onnx"} for v in ("fp32", "int8")},
                "files": {f: {"sha256": sha256_file(out / f)} for f in files}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    b = Bundle.load(out, "fp32")
    assert b.frontend.kind == "speech_embedding" and b.frontend.hop == 1280
    frames = rng.normal(size=(3, 9, 96)).astype(np.float32) * 8
    lens = np.array([9, 4, 1])
    with torch.no_grad():
        ref = m.audio(torch.from_numpy(frames), torch.from_numpy(lens)).numpy()
    assert np.min(np.sum(ref * b.embed_frames(frames, lens), 1)) > 0.9999
    # a bundle missing its front-end file is refused with a message naming it
    (out / "backbone.onnx").unlink()
    with pytest.raises(BundleError, match="backbone.onnx"):
        Bundle.load(out, "fp32")
