"""Distillation: a smaller stacked student learns the teacher's vectors (CPU, tiny models), and
the merged checkpoint exports to ONNX with the teacher's text encoder untouched."""
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
import onnxruntime as ort  # noqa: E402

from export.onnx_export import audio_encoder_onnx, state_dict_numpy  # noqa: E402
from kws.train.distill import DistillConfig, merge, pack, train  # noqa: E402
from kws.train.encoders import EncoderConfig, JointModel  # noqa: E402
from tests.conftest import speechlike  # noqa: E402
from tests.test_training import _corpus  # noqa: E402


def test_distill_learns_teacher_and_merges(tmp_path, rng):
    import soundfile as sf

    _corpus(tmp_path, rng)
    (tmp_path / "speech").mkdir()
    sf.write(tmp_path / "speech" / "a.wav", speechlike(rng, 12.0), 16000)
    torch.manual_seed(0)
    teacher = JointModel(EncoderConfig(hidden=16, layers=1, embed_dim=8))
    teacher.audio.feat_mean.fill_(-5.0)
    teacher.audio.feat_std.fill_(3.0)
    full = {"model": teacher.state_dict(), "config": {"encoder": teacher.cfg.to_dict(), "alpha_clap": 0.1,
                                                      "alpha_dwd": 1.0}, "step": 7, "recipe": "clap-dwd-1"}
    torch.save(full, tmp_path / "teacher_full.pt")
    packed = pack(str(tmp_path / "teacher_full.pt"), str(tmp_path / "teacher.pt"))
    assert packed["bytes"] < (tmp_path / "teacher_full.pt").stat().st_size
    cfg = DistillConfig.from_dict({
        "teacher": str(tmp_path / "teacher.pt"), "corpus": str(tmp_path), "speech": str(tmp_path / "speech"),
        "out": str(tmp_path / "run"), "audio_hidden": 12, "audio_layers": 1, "stack": 2, "steps": 90,
        "batch": 24, "lr": 1e-2, "eval_every": 45, "max_clip_s": 0.6})
    train(cfg)
    log = [json.loads(l) for l in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if "loss" in r]
    evals = [r["eval"] for r in log if "eval" in r]
    assert set(evals[-1]) >= {"cos_clips", "cos_tts_windows", "cos_speech_windows"}
    assert losses[-1] < 0.5 * losses[0], losses
    assert evals[-1]["cos_clips"] > evals[0]["cos_clips"]
    assert evals[-1]["cos_clips"] > 0.7

    out = merge(str(tmp_path / "run" / "student.pt"), str(tmp_path / "teacher_full.pt"), str(tmp_path / "m.pt"))
    assert out["encoder"]["stack"] == 2 and out["encoder"]["audio_hidden"] == 12
    ck = torch.load(tmp_path / "m.pt", weights_only=False)
    m = JointModel(EncoderConfig(**ck["config"]["encoder"])).eval()
    m.load_state_dict(ck["model"])
    for k, v in teacher.state_dict().items():      # text side is the teacher's, bit for bit
        if k.startswith("text."):
            assert torch.equal(ck["model"][k], v)
    sd = state_dict_numpy(m.state_dict())
    sess = ort.InferenceSession(audio_encoder_onnx(sd, 1, 12, stack=2).SerializeToString(),
                                providers=["CPUExecutionProvider"])
    mel = rng.normal(-5, 3, size=(3, 41, 128)).astype(np.float32)
    lens = np.array([41, 28, 9])
    with torch.no_grad():
        ref = m.audio(torch.from_numpy(mel), torch.from_numpy(lens)).numpy()
    got = sess.run(None, {"mel": mel, "lengths": lens})[0]
    assert np.min(np.sum(ref * got, 1)) > 0.9999
    with pytest.raises(SystemExit, match="no text encoder"):
        merge(str(tmp_path / "run" / "student.pt"), str(tmp_path / "teacher.pt"), str(tmp_path / "x.pt"))
    with pytest.raises(SystemExit, match="unknown config keys"):
        DistillConfig.from_dict({"stepz": 1})


def test_speech_subset_takes_one_half_of_the_speakers(tmp_path, shared_data):
    from kws.corpus.real import speaker_half
    from kws.train.distill import speech_subset

    out = speech_subset(shared_data, tmp_path / "sp", half="a", megabytes=0.3)
    files = sorted((tmp_path / "sp").rglob("*.ogg"))
    assert files and out["files"] == len(files)
    assert out["bytes"] == sum(f.stat().st_size for f in files) <= 0.3e6
    assert {speaker_half(f.parent.name.replace("SPEAKER", "")) for f in files} == {"a"}
    with pytest.raises(SystemExit, match="no speechocean762"):
        speech_subset(tmp_path, tmp_path / "none")
