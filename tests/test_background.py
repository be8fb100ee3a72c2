"""The background bank's storage (kws.enroll.background): principal components at one step, not
made unit length again (and the int4 format before it, which still loads), and thresholds that
stay put."""
import json
import shutil
import types

import numpy as np
import pytest

from kws.enroll.background import (STEP, Background, BackgroundError, ComponentCodes, Int4Codes, decode,
                                   decode_components, encode, encode_components, load, save)
from kws.enroll.thresholds import fit_tail, keyword_peaks
from kws.model.head import unit
from kws.spot.templates import TemplateBank, keyword_templates


def test_encode_decode_round_trip_error():
    rng = np.random.default_rng(0)
    v = unit(rng.normal(size=(500, 128)))
    back = decode(*encode(v))
    step = np.abs(v).max(axis=1) / 7.5
    assert np.all(np.abs(back - v) <= step[:, None] / 2 + 1e-3)
    cos = np.sum(unit(back) * v, axis=1)
    assert cos.min() > 0.98
    with pytest.raises(ValueError):
        encode(np.zeros((3, 5)))


def _structured(rng, n, d=128):
    """Unit vectors spread as a bank's are: a common offset, variances falling from 0.05 to 2e-5
    along random directions (the shipped bank's principal variances run from 0.05 to 2e-5)."""
    var = np.geomspace(0.05, 2e-5, d)
    var *= 0.85 / var.sum()
    rot, _ = np.linalg.qr(rng.normal(size=(d, d)))
    mean = unit(rng.normal(size=d)) * 0.39
    return unit(mean + (rng.normal(size=(n, d)) * np.sqrt(var)) @ rot.T).astype(np.float32)


def test_component_codes_round_trip_error():
    rng = np.random.default_rng(0)
    v = _structured(rng, 4000)
    codes, mean, basis = encode_components(v)
    assert codes.dtype == np.int8 and codes.shape[1] == v.shape[0] and 0 < codes.shape[0] <= v.shape[1]
    assert basis.shape == (v.shape[1], codes.shape[0]) and mean.shape == (v.shape[1],)
    np.testing.assert_allclose(basis.T @ basis, np.eye(basis.shape[1]), atol=1e-5)
    again = encode_components(v)
    assert all(np.array_equal(a, b) for a, b in zip((codes, mean, basis), again))
    back = decode_components(codes, mean, basis, float(np.float32(STEP)))
    assert back.dtype == np.float32 and back.shape == v.shape
    # every kept coordinate within half a step; the whole error within half a step a dimension
    kept = (v - mean) @ basis
    assert np.max(np.abs((back - mean) @ basis - kept)) <= STEP / 2 + 1e-5
    err = np.linalg.norm(back - v, axis=1)
    assert err.max() <= STEP / 2 * np.sqrt(v.shape[1]) and err.mean() < STEP * np.sqrt(codes.shape[0] / 12) * 1.1
    # not made unit length again: the rounding noise lies on top of the vector, so a dot product
    # with a template near it (a peak's score, 0.87 here) keeps its mean but for the components
    # rounded away (-0.0036 here); made unit length, it would drop by about that score times half
    # the noise's energy as well (-0.0122)
    t = unit(v + 0.05 * rng.normal(size=v.shape)).astype(np.float32)
    true, got = np.sum(t * v, axis=1), np.sum(t * back, axis=1)
    noise = np.mean(np.sum((back - v) ** 2, axis=1))                # 0.029
    assert abs(np.mean(got - true)) < 0.15 * noise
    assert np.mean(np.sum(t * unit(back), axis=1) - true) < -0.3 * noise
    lengths = np.linalg.norm(back, axis=1)
    assert 1.0 < lengths.mean() < 1.0 + noise
    with pytest.raises(ValueError):
        encode_components(np.zeros((0, 8)))


def _speech_bank(model):
    """A small bank of real-ish audio: the sample recording and noisy, shifted copies of it."""
    from kws.audio.io import load_audio
    from kws.enroll.demo import sample_recording

    x = load_audio(sample_recording())
    rng = np.random.default_rng(1)
    parts = [x] + [np.roll(x, int(rng.integers(1000, x.size))) * 0.7 + 0.01 * rng.normal(size=x.size).astype(np.float32)
                   for _ in range(5)]
    vecs = [model.vectors(p) for p in parts]
    return np.concatenate(vecs), [v.shape[0] for v in vecs]


def test_thresholds_from_the_coded_bank_equal_the_float_ones(model, tmp_path):
    from kws.enroll.demo import demo_keywords

    vec, segs = _speech_bank(model)
    vec = unit(vec)
    exact = Background(vec, np.array(segs), tuple("speech" for _ in segs), float(sum(segs)) * 0.08 / 3600)
    save(tmp_path / "bank.npz", vec, segs, ["speech"] * len(segs))
    z = np.load(tmp_path / "bank.npz")
    assert z["codes"].dtype == np.int8 and z["codes"].shape[1] == vec.shape[0]
    coded = Background.coded(ComponentCodes(z["codes"], z["mean"], z["basis"], float(z["step"])),
                             exact.segments, exact.kinds, exact.hours)
    shift = []
    for kw in demo_keywords(model):
        bank = TemplateBank.build([keyword_templates(model, kw)])
        a, b = keyword_peaks(bank, exact)[0][:20], keyword_peaks(bank, coded)[0][:20]
        # the peaks thresholds are read from: on this bank (the shipped head) a single one moves
        # by 0.015 at most, the twenty by 0.0046 on average
        assert np.mean(np.abs(a - b)) < 0.007 and np.max(np.abs(a - b)) < 0.025, kw.name
        shift.append(np.mean(b - a))
        ta, tb = fit_tail(a, exact.hours, m=20), fit_tail(b, coded.hours, m=20)
        assert abs(ta.threshold(10 / exact.hours) - tb.threshold(10 / exact.hours)) < 0.005, kw.name
    # no common shift: -0.0005 on average here (the same codes made unit length again: -0.0040)
    assert abs(np.mean(shift)) < 0.002


def test_both_formats_load(model, tmp_path):
    """A bank that save writes, and one in the int4 format of model folders before it, load with the
    model; the int4 one decodes to unit rows as it always did."""
    from kws.model.model import Model

    d = tmp_path / "model"
    shutil.copytree(model.path, d)
    rng = np.random.default_rng(2)
    v = _structured(rng, 3000)
    segs, kinds = [1000, 1500, 500], ["speech", "music", "tv"]
    save(d / "background.npz", v, segs, kinds)
    bg = load(Model.load(d, verify=False))
    assert isinstance(bg._codes, ComponentCodes) and bg.size == 3000 and bg.kinds == tuple(kinds)
    assert bg.hours == pytest.approx(3000 * 0.08 / 3600)
    with np.load(d / "background.npz") as f:
        z = {k: f[k] for k in f.files}
    np.testing.assert_array_equal(bg.rows(1000, 2500), decode_components(z["codes"][:, 1000:2500], z["mean"],
                                                                         z["basis"], float(z["step"])))
    assert np.min(np.sum(bg.vectors * v, axis=1) / np.linalg.norm(bg.vectors, axis=1)) > 0.98
    codes, scales = encode(v)                # the int4 file, as model folders before hold it
    np.savez_compressed(d / "background.npz", codes=codes, scales=scales, segments=np.array(segs, np.int64),
                        kinds=np.array(kinds))
    old = load(Model.load(d, verify=False))
    assert isinstance(old._codes, Int4Codes) and old.size == 3000
    np.testing.assert_allclose(old.rows(0, 3000), unit(decode(*encode(v))), rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(old.vectors, axis=1), 1.0, atol=1e-5)
    np.savez_compressed(d / "background.npz", codes=z["codes"], mean=z["mean"], basis=z["basis"][:, :-1],
                        step=z["step"], segments=np.array(segs), kinds=np.array(kinds))
    with pytest.raises(BackgroundError, match="do not fit"):
        load(Model.load(d, verify=False))


def test_load_refuses_a_bank_of_another_head(model, tmp_path):
    from kws.model.model import Model

    d = tmp_path / "model"
    shutil.copytree(model.path, d)
    m = Model.load(d)
    good = load(m)
    assert good.vectors.shape[1] == 128 and good.hours > 1
    mf = json.loads((d / "manifest.json").read_text())
    mf["background"]["head_sha256"] = "0" * 64
    (d / "manifest.json").write_text(json.dumps(mf))
    if "codes" in np.load(d / "background.npz").files:
        with pytest.raises(BackgroundError, match="another head"):
            load(Model.load(d))
    (d / "background.npz").write_bytes(b"not a bank")
    with pytest.raises(BackgroundError, match="cannot be read"):
        load(Model.load(d, verify=False))


def test_decode_by_table_equals_unpacking_the_nibbles(rng):
    from kws.enroll.background import _MID, decode, encode, unit_rows
    from kws.model.head import unit

    v = rng.normal(size=(300, 64)).astype(np.float32)
    codes, scales = encode(v)
    q = np.empty((codes.shape[0], codes.shape[1] * 2), np.float32)    # the plain way
    q[:, 0::2] = codes & 0x0F
    q[:, 1::2] = codes >> 4
    want = (q - _MID) * scales.astype(np.float32)[:, None]
    got = decode(codes, scales)
    assert got.dtype == np.float32 and np.array_equal(got, want)
    np.testing.assert_allclose(unit_rows(got.copy()), unit(want), rtol=0, atol=1e-6)


def test_rates_are_counted_per_hour_of_the_banks_speech(monkeypatch):
    from kws.enroll import thresholds as th

    rng = np.random.default_rng(3)
    segs = np.array([4500, 9000, 2250, 6750])            # 0.1, 0.2, 0.05, 0.15 h
    kinds = ("speech", "music", "talk", "tv")
    bg = Background(unit(rng.normal(size=(int(segs.sum()), 16))).astype(np.float32), segs, kinds, 0.5)
    assert bg.speech_hours() == pytest.approx(0.30)
    assert Background(bg.vectors, segs, ("music", "noise", "babble", "household"), 0.5).speech_hours() == 0.5
    monkeypatch.setattr(th, "background", lambda model: bg)
    tpl = [unit(rng.normal(size=(6, 16))).astype(np.float32)]
    cal = th.calibrate(types.SimpleNamespace(soft_max=0.0), tpl, 1.0)     # a model: its bank is bg
    assert cal.tail.hours == pytest.approx(0.30)
    want = fit_tail(keyword_peaks(TemplateBank.build([tpl]), bg)[0], 0.30).threshold(1.0)
    assert cal.threshold == pytest.approx(max(th.MIN_THRESHOLD, want))


def test_savez_deflate_reads_back_equal_and_packs_at_least_as_small(tmp_path):
    from kws.enroll.background import savez_deflate

    rng = np.random.default_rng(3)
    codes = np.clip(np.round(rng.standard_normal((16, 20000)) * 3), -127, 127).astype(np.int8)
    kinds = np.array(["speech", "music"])
    savez_deflate(tmp_path / "a.npz", codes=codes, kinds=kinds, step=np.float32(0.06))
    np.savez_compressed(tmp_path / "b.npz", codes=codes, kinds=kinds, step=np.float32(0.06))
    with np.load(tmp_path / "a.npz") as z:
        np.testing.assert_array_equal(z["codes"], codes)
        np.testing.assert_array_equal(z["kinds"], kinds)
        assert z["step"] == np.float32(0.06) and z["codes"].dtype == np.int8
    assert (tmp_path / "a.npz").stat().st_size <= (tmp_path / "b.npz").stat().st_size
