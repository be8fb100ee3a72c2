"""The background bank's storage (kws.enroll.background): 4 bits a value, and thresholds that stay put."""
import json
import shutil

import numpy as np
import pytest

from kws.enroll.background import Background, BackgroundError, decode, encode, load, save
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


def test_thresholds_from_the_4_bit_bank_equal_the_float_ones(model, tmp_path):
    from kws.enroll.demo import demo_keywords

    vec, segs = _speech_bank(model)
    vec = unit(vec)
    exact = Background(vec, np.array(segs), tuple("speech" for _ in segs), float(sum(segs)) * 0.08 / 3600)
    save(tmp_path / "bank.npz", vec, segs, ["speech"] * len(segs))
    z = np.load(tmp_path / "bank.npz")
    assert z["codes"].dtype == np.uint8 and z["codes"].shape == (vec.shape[0], vec.shape[1] // 2)
    coded = Background(unit(decode(z["codes"], z["scales"])), exact.segments, exact.kinds, exact.hours)
    for kw in demo_keywords(model):
        bank = TemplateBank.build([keyword_templates(model, kw)])
        a, b = keyword_peaks(bank, exact)[0][:20], keyword_peaks(bank, coded)[0][:20]
        # the peaks thresholds are read from: a single one may move by about a hundredth (the
        # shipped int8 head: 0.0105 at most on this bank), the twenty by a few thousandths
        assert np.mean(np.abs(a - b)) < 0.005 and np.max(np.abs(a - b)) < 0.015, kw.name
        ta, tb = fit_tail(a, exact.hours, m=20), fit_tail(b, coded.hours, m=20)
        assert abs(ta.threshold(10 / exact.hours) - tb.threshold(10 / exact.hours)) < 0.01, kw.name


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
    cal = th.calibrate(None, tpl, 1.0)
    assert cal.tail.hours == pytest.approx(0.30)
    want = fit_tail(keyword_peaks(TemplateBank.build([tpl]), bg)[0], 0.30).threshold(1.0)
    assert cal.threshold == pytest.approx(max(th.MIN_THRESHOLD, want))
