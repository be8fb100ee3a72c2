"""The trainer runs end to end on a tiny synthetic corpus (CPU), writes checkpoints and logs."""
import json
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from kws.phonemes import pronounce  # noqa: E402
from kws.train.checkpoint import join, split  # noqa: E402
from kws.train.trainer import TrainConfig, train  # noqa: E402


def _corpus(d, rng):
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    clips, text, split_ = [], [], []
    for ti, w in enumerate(words):
        f0 = 150 + 40 * ti
        for k in range(5):
            n = int(16000 * rng.uniform(0.3, 0.6))
            t = np.arange(n) / 16000
            x = 0.3 * np.sin(2 * np.pi * f0 * (1 + 0.05 * k) * t) + 0.01 * rng.normal(size=n)
            clips.append(np.round(x * 32767).astype(np.int16))
            text.append(ti)
            split_.append(0 if k < 3 else (1 if ti < 3 else 2))
    lengths = np.array([c.size for c in clips])
    np.save(d / "audio.npy", np.concatenate(clips))
    np.savez(d / "clips.npz", offset=np.r_[0, np.cumsum(lengths)[:-1]], length=lengths,
             text=np.array(text, np.int32), split=np.array(split_, np.int8))
    (d / "texts.json").write_text(json.dumps([{"text": w, "phonemes": " ".join(pronounce(w).phonemes),
                                               "kind": "word", "oov": False} for w in words]))


def test_train_checkpoint_and_split(tmp_path, rng):
    _corpus(tmp_path, rng)
    cfg = TrainConfig.from_dict({"corpus": str(tmp_path), "out": str(tmp_path / "run"), "steps": 4,
                                 "words_per_batch": 4, "clips_per_word": 2, "eval_every": 2,
                                 "encoder": {"hidden": 16, "layers": 1, "embed_dim": 8}})
    metrics = train(cfg)
    assert {"ap_iv", "ap_oov", "xap_iv", "xap_oov"} <= set(metrics)
    log = [json.loads(l) for l in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any("eval" in r for r in log) and any("dwd" in r for r in log)
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert ck["step"] == 4
    parts = split(str(tmp_path / "run" / "best.pt"), str(tmp_path / "parts"))
    assert parts
    join(str(tmp_path / "parts"), str(tmp_path / "model.pt"))
    slim = torch.load(tmp_path / "model.pt", weights_only=False)
    assert set(slim["model"]) == set(ck["model"])
    with pytest.raises(SystemExit, match="unknown config keys"):
        TrainConfig.from_dict({"stepz": 3})


def _tiny_config(tmp_path, **kw):
    d = {"corpus": str(tmp_path), "out": str(tmp_path / "run"), "steps": 4, "words_per_batch": 4,
         "clips_per_word": 2, "eval_every": 2, "encoder": {"hidden": 16, "layers": 1, "embed_dim": 8}}
    d.update(kw)
    p = tmp_path / "cfg.json"
    p.write_text(json.dumps(d))
    return p


def test_two_process_ddp_on_gloo(tmp_path, rng):
    """torchrun with 2 CPU processes (gloo): trains, rank 0 writes, replicas stay identical."""
    import subprocess
    import sys
    _corpus(tmp_path, rng)
    cfg = _tiny_config(tmp_path)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc_per_node", "2", "-m", "kws.train", str(cfg)],
                       capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    sync = [json.loads(l) for l in r.stdout.splitlines() if "replicas_in_sync" in l]
    assert sync == [{"ranks": 2, "replicas_in_sync": True}]
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert ck["step"] == 4


def test_ablation_runner_and_table(tmp_path, rng, monkeypatch):
    from kws.train import ablation
    _corpus(tmp_path, rng)
    cfg = _tiny_config(tmp_path, steps=2)
    monkeypatch.setattr(ablation, "RUNS", {k: ablation.RUNS[k] for k in ("clap+dwd", "dwd-only", "clap+dwd-text1")})
    out = tmp_path / "abl"
    assert ablation.main(["run", str(cfg), "--out", str(out), "--parallel", "2", "--budget-s", "600"]) == 0
    for name in ablation.RUNS:
        assert ablation.final_eval(out / name, 2) is not None, (out / name / "stdout.log").read_text()[-2000:]
    text = ablation.table(out, 2)
    lines = text.splitlines()
    assert len(lines) == 2 + 3 and lines[2].startswith("| clap+dwd | 0.1 | 1.0 | 0.0 | 2 |")
    ap_iv = ablation.final_eval(out / "dwd-only", 2)["eval"]["ap_iv"]
    assert f"| {100 * ap_iv:.1f} |" in lines[3]
    with pytest.raises(SystemExit, match="fixed step count"):
        ablation.main(["run", str(_tiny_config(tmp_path, steps=0)), "--out", str(out)])


def test_room_bank_and_reverb_with_it(tmp_path, rng):
    pytest.importorskip("pyroomacoustics")
    from kws.corpus.rooms import simulate
    from kws.train.augment import AugmentConfig, augment_waveforms, reverb

    rirs, rt60 = simulate(4, seed=1, quiet=True)
    assert rirs.shape == (4, 12800) and np.all((rt60 >= 0.15) & (rt60 <= 0.9))
    assert np.allclose(np.linalg.norm(rirs, axis=1), 1, atol=1e-3)
    assert np.all(np.argmax(np.abs(rirs), axis=1) == 0)      # starts at the direct path
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(2, 16000)
    x[:, 100] = 1.0                                            # an impulse: output = the response
    bank = torch.from_numpy(rirs)
    y = reverb(x, AugmentConfig(), g, bank)
    for row in y:
        k = int(np.argmax([abs(float(torch.dot(row[100:100 + 2000], b[:2000]))) for b in bank]))
        corr = float(torch.dot(row[100:100 + 12800], bank[k][:15900])) / float(row[100:].norm() * bank[k][:15900].norm())
        assert corr > 0.99
    wav, lens = augment_waveforms(torch.randn(3, 8000) * 0.1, torch.tensor([8000, 6000, 4000]),
                                  AugmentConfig(p_reverb=1.0), g, None, bank)
    assert wav.shape[0] == 3 and torch.isfinite(wav).all()


def test_schedule_sized_to_a_time_budget(tmp_path, rng):
    """steps <= 0: the one-cycle schedule is sized from timed steps to fit max_minutes, and the
    run stops there with a checkpoint."""
    _corpus(tmp_path, rng)
    cfg = TrainConfig.from_dict({"corpus": str(tmp_path), "out": str(tmp_path / "run"), "steps": 0,
                                 "max_minutes": 0.05, "words_per_batch": 4, "clips_per_word": 2,
                                 "eval_every": 10 ** 6, "encoder": {"hidden": 16, "layers": 1, "embed_dim": 8}})
    train(cfg)
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    total = ck["scheduler"]["total_steps"]
    assert total >= 50 and 0 < ck["step"] <= total


def test_seconds_per_step_times_the_calls():
    from kws.train.trainer import seconds_per_step

    calls = []
    per = seconds_per_step(lambda: calls.append(time.sleep(0.01)), 2, 5, torch.device("cpu"))
    assert len(calls) == 7 and 0.009 < per < 0.1


def test_backbone_trainer_runs_end_to_end(tmp_path, rng):
    """The head on the speech-embedding backbone trains on words in context with negatives (no real
    speech given: TTS clips serve as context and babble) and writes its checkpoints."""
    from kws.train.backbone_trainer import BackboneTrainConfig, train as train_bb

    _corpus(tmp_path, rng)
    enc = {"hidden": 16, "layers": 1, "embed_dim": 8, "audio_hidden": 8, "audio_layers": 1}
    cfg = BackboneTrainConfig.from_dict({"corpus": str(tmp_path), "out": str(tmp_path / "bb"), "steps": 3,
                                         "words_per_batch": 4, "real_words_per_batch": 0,
                                         "clips_per_word": 2, "eval_every": 3, "amp": False,
                                         "encoder": enc})
    metrics = train_bb(cfg)
    assert {"ap_iv", "ap_oov", "xap_iv", "xap_oov"} <= set(metrics)
    log = [json.loads(l) for l in (tmp_path / "bb" / "log.jsonl").read_text().splitlines()]
    first = next(r for r in log if "loss" in r)
    assert first["negatives"] > 0 and first["windows"] > first["negatives"]
    ck = torch.load(tmp_path / "bb" / "last.pt", weights_only=False)
    assert ck["step"] == 3 and "null" in ck["model"]
    with pytest.raises(SystemExit, match="unknown config keys"):
        BackboneTrainConfig.from_dict({"stepz": 3})
