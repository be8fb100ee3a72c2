"""Room copies of typed keywords' renderings (kws.spot.templates.room_copy, a model's rooms.npz)."""
import json
import shutil

import numpy as np
import pytest

from kws.checksum import sha256_file
from kws.model.model import Model, ModelError, default_model_path
from kws.spot.templates import ROOM_TAIL_S, TRIM_TOP_DB, room_copy, trim_silence, utterance_of

SR = 16000


def _word(f0: float, seconds: float = 0.6, seed: int = 0) -> np.ndarray:
    """A voiced-sounding sweep with silence around it."""
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    x = np.sin(2 * np.pi * (f0 + 200 * t) * t) * np.sin(np.pi * t / seconds) * 0.3
    x += 0.01 * rng.standard_normal(t.size)
    pad = np.zeros(int(0.3 * SR))
    return np.concatenate([pad, x, pad]).astype(np.float32)


def _rir(rt60: float, seed: int, seconds: float = 0.5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    h = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60)
    h[0] = 3.0
    return (h / np.linalg.norm(h)).astype(np.float32)


def test_room_copy_is_the_trimmed_word_through_the_room_at_its_peak():
    x, h = _word(300), _rir(0.6, 1)
    y = room_copy(x, h)
    t = trim_silence(x, top_db=TRIM_TOP_DB, margin_s=0.0)
    ref = np.convolve(t, h)[: t.size + int(ROOM_TAIL_S * SR)]
    ref *= np.abs(t).max() / np.abs(ref).max()
    assert y.shape == ref.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, ref, atol=2e-5)
    assert abs(np.abs(y).max() - np.abs(t).max()) < 1e-6
    assert not np.any(room_copy(np.zeros(1000, np.float32), h))        # silence stays silence


def test_origins_of_copies_name_their_rendering():
    assert utterance_of("kokoro:af_sarah+room") == "kokoro:af_sarah"
    assert utterance_of("kokoro:af_sarah") == "kokoro:af_sarah"
    assert utterance_of("recording") == "recording"


@pytest.fixture
def rooms_model(tmp_path):
    """The shipped model with three rooms (of five offered, RT60 0.3-0.9 s) written as export.model writes them."""
    from export.model import write_rooms

    d = tmp_path / "model"
    shutil.copytree(default_model_path(), d)
    src = tmp_path / "rooms-src.npz"
    rt60 = np.array([0.2, 0.4, 0.6, 0.8, 1.4], np.float32)
    np.savez(src, rir=np.stack([_rir(r, i, 1.0) for i, r in enumerate(rt60)]).astype(np.float16), rt60=rt60)
    meta = write_rooms(d, src, (0.3, 0.9), 3, seconds=0.6)
    assert meta["count"] == 3 and 0.3 <= meta["rt60_s"][0] <= meta["rt60_s"][1] <= 0.9
    with pytest.raises(SystemExit, match="4 wanted"):
        write_rooms(d / "x", src, (0.3, 0.9), 4)
    doc = json.loads((d / "manifest.json").read_text())
    doc["templates"]["rooms"] = meta
    doc["files"][meta["file"]] = {"sha256": sha256_file(d / meta["file"]), "bytes": (d / meta["file"]).stat().st_size}
    (d / "manifest.json").write_text(json.dumps(doc))
    return d


def test_a_model_with_rooms_loads_them_and_checks_them(rooms_model):
    m = Model.load(rooms_model)
    assert m.rooms.shape == (3, int(0.6 * SR)) and m.rooms.dtype == np.float32
    assert Model.load().rooms is None or Model.load().manifest["templates"].get("rooms")
    f = rooms_model / "rooms.npz"
    data = bytearray(f.read_bytes())
    data[-100] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum mismatch"):
        Model.load(rooms_model)


def test_typed_keyword_gets_a_room_copy_of_each_rendering(rooms_model):
    from kws.enroll.build import build_keyword

    m = Model.load(rooms_model)
    said = [("kokoro:af_sarah", _word(300, seed=1)), ("kokoro:am_adam", _word(320, seed=2)),
            ("kokoro:bf_emma", _word(280, seed=3))]
    kw = build_keyword(m, "tone", "tone", None, [], tune=True, utterances=said, progress=lambda s: None,
                       use_cache=False)
    assert kw.origins == [o for o, _ in said] + [o + "+room" for o, _ in said]
    assert kw.tuned_on["templates"] == 6
    assert kw.tuned_on["positives"] == 2 * len(said)      # copies are templates, not utterances
    # each copy is its rendering through rooms[i]
    from kws.spot.templates import source_vectors

    segs = np.cumsum([0] + kw.segments)
    for i, (_, audio) in enumerate(said):
        want = source_vectors(m.frontend.frames, room_copy(audio, m.rooms[i]), pad_s=m.pad_s)
        np.testing.assert_allclose(kw.vectors[segs[3 + i]:segs[4 + i]], want, atol=1e-5)


def test_own_scores_leave_a_rendering_out_with_its_copy():
    from kws.enroll.build import own_scores
    from kws.spot.templates import keyword_templates, source_vectors
    from kws.enroll.store import Keyword

    m = Model.load()
    a, b = _word(300, seed=1), _word(700, 0.4, seed=2)
    vs = [source_vectors(m.frontend.frames, x, pad_s=m.pad_s) for x in (a, b, a)]
    kw = Keyword(name="t", vectors=np.concatenate(vs), threshold=0.5, segments=[v.shape[0] for v in vs],
                 origins=["kokoro:x", "kokoro:y", "kokoro:x+room"])
    tpl = keyword_templates(m, kw)
    rng = np.random.default_rng(0)
    leaky = own_scores(m, tpl, [a, b], rng)                       # template 2 counts as a third utterance
    fair = own_scores(m, tpl, [a, b], np.random.default_rng(0), owners=[0, 1, 0])
    assert leaky[0] > 0.99                                       # 'a' met its own copy
    assert fair[0] < leaky[0] - 0.05
    np.testing.assert_allclose(fair[2:], leaky[2:], atol=1e-6)   # 'b' has no copy: the same
