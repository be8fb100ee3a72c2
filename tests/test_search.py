"""Search index: windows, int8 rows, update/skip/prune, merging, queries, bad input; STD protocol."""
import json
import os
import time

import numpy as np
import pytest

from kws.audio import load_audio, write_wav
from kws.bundle import Bundle
from kws.search import (Hit, IndexConfig, SearchIndexError, SearchIndex, merge_hits, quantize,
                        window_embeddings)


@pytest.fixture(scope="module")
def bundle():
    return Bundle.load(variant="int8")


def wav_copies(src, n, dest):
    """The first ``n`` recordings of ``src`` (sorted) as 16 kHz WAV files in ``dest`` (skips if fewer)."""
    src = sorted(src)[:n]
    if len(src) < n:
        pytest.skip(f"fewer than {n} recordings found in ../shared/data")
    dest.mkdir()
    for f in src:
        write_wav(dest / (f.stem + ".wav"), load_audio(f))
    return dest


def _sample():
    from kws.demo import sample_recording

    return load_audio(sample_recording())


def test_windows_match_direct_embedding(bundle):
    x = _sample()[: 16000 * 3]
    cfg = IndexConfig(min_speech=0.0)
    emb, times = window_embeddings(bundle, x, cfg)
    # hops of 0.15 s, 5 window lengths, each fitting window once
    assert emb.shape[0] == times.shape[0] and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-4)
    assert np.all(np.diff(times[:, 0]) >= 0)
    i = emb.shape[0] // 2
    s, e = times[i]
    from kws.features import LogMel
    mel = LogMel()(x)
    f0 = int(round(s / 0.01))
    L = int(round((e - 0.025) / 0.01)) + 1 - f0
    direct = bundle.embed_mel(mel[None, f0:f0 + L], np.array([L]))[0]
    assert float(direct @ emb[i]) > 0.999
    # block-wise log-mel (blocks of 0.6 s here) gives the same windows as one block
    # (exact in fp32; int8 quantises activations per call, so other batches move it slightly)
    small, st2 = window_embeddings(bundle, x, cfg, block_s=0.6)
    assert np.array_equal(st2, times) and np.min(np.sum(small * emb, axis=1)) > 0.99
    fp32 = Bundle.load(variant="fp32")
    one, _ = window_embeddings(fp32, x[:16000], cfg)
    blocks, _ = window_embeddings(fp32, x[:16000], cfg, block_s=0.3)
    assert np.allclose(one, blocks, atol=1e-5)
    # VAD gating only removes windows
    gated, gt = window_embeddings(bundle, x, IndexConfig())
    assert 0 < gated.shape[0] <= emb.shape[0]
    silent, _ = window_embeddings(bundle, np.zeros(16000, np.float32), IndexConfig())
    assert silent.shape[0] == 0
    short, st = window_embeddings(bundle, x[:1600], IndexConfig(min_speech=0.0))
    assert short.shape[0] == 1 and st[0, 0] == 0


def test_quantized_rows_keep_cosines(rng):
    v = rng.normal(size=(200, 512)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    q = v[0]
    err = np.abs(quantize(v).astype(np.float32) @ q / 127 - v @ q).max()
    assert err < 0.01


def test_merge_hits_hand_case():
    scores = np.array([0.9, 0.8, 0.3, 0.7, 0.95])
    times = np.array([[0.0, 0.5], [0.3, 0.8], [1.0, 1.2], [1.1, 1.6], [5.0, 5.4]])
    hits = merge_hits("f", scores, times, top=10)
    assert [(h.start, h.score, h.windows) for h in hits] == [(5.0, 0.95, 1), (0.0, 0.9, 2), (1.1, 0.7, 2)]
    assert [h.score for h in merge_hits("f", scores, times, top=10, threshold=0.85)] == [0.95, 0.9]
    assert len(merge_hits("f", scores, times, top=1)) == 1
    assert merge_hits("f", np.zeros(0), np.zeros((0, 2)), top=3) == []


def test_index_update_skip_prune_and_query(tmp_path, bundle):
    x = _sample()
    a, b = tmp_path / "rec" / "a.wav", tmp_path / "rec" / "sub" / "b.flac"
    b.parent.mkdir(parents=True)
    write_wav(a, x)
    import soundfile as sf
    sf.write(b, x[: 16000 * 4], 16000)
    (tmp_path / "rec" / "notes.txt").write_text("not audio")
    ix = SearchIndex(tmp_path / "ix", bundle)
    st = ix.add([tmp_path / "rec"], quiet=True)
    assert st["indexed"] == 2 and st["unchanged"] == 0 and len(ix) == 2
    assert SearchIndex(tmp_path / "ix", bundle).add([tmp_path / "rec"], quiet=True)["unchanged"] == 2
    # a changed file is re-embedded, a deleted one dropped with its shard
    time.sleep(0.01)
    write_wav(a, x[: 16000 * 5])
    os.utime(a, ns=(time.time_ns(), time.time_ns()))
    b.unlink()
    ix2 = SearchIndex(tmp_path / "ix", bundle)
    st = ix2.add([tmp_path / "rec"], quiet=True)
    assert (st["indexed"], st["removed"], len(ix2)) == (1, 1, 1)
    assert len(list((tmp_path / "ix" / "shards").glob("*.npy"))) == 2
    assert abs(ix2.seconds - 5.0) < 0.01
    q = ix2.embed_query("computer")
    hits = ix2.query(q, top=5)
    # the packed scan (small chunks) finds the same hits as the shard-by-shard path
    assert (tmp_path / "ix" / "packed.json").exists()
    chunked = ix2.query(q, top=5, chunk=100)
    (tmp_path / "ix" / "packed.json").unlink()
    per_shard = ix2.query(q, top=5)
    assert [(h.start, round(h.score, 5)) for h in chunked] == [(h.start, round(h.score, 5)) for h in per_shard]
    assert [(h.start, round(h.score, 5)) for h in hits] == [(h.start, round(h.score, 5)) for h in per_shard]
    ix2.pack()
    scores, times = ix2.file_scores(str(a), q)
    assert hits[0].score == pytest.approx(float(scores.max()))
    assert all(isinstance(h, Hit) for h in hits)
    # hits never overlap within a file
    for h1 in hits:
        for h2 in hits:
            if h1 is not h2 and h1.file == h2.file:
                assert h1.end <= h2.start or h2.end <= h1.start
    # query by example: a cut of the indexed audio finds itself
    write_wav(tmp_path / "ex.wav", x[16000:16000 + 8000])
    ex = ix2.embed_query(example=tmp_path / "ex.wav")
    top = ix2.query(ex, top=1)[0]
    assert top.start < 1.6 and top.end > 0.9


def test_index_bad_input(tmp_path, bundle):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    with pytest.raises(SearchIndexError, match="not a kws index"):
        SearchIndex(tmp_path / "junk", bundle)
    ix = SearchIndex(tmp_path / "ix", bundle, IndexConfig(window_s=(0.3,)))
    write_wav(tmp_path / "a.wav", _sample()[:16000])
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really")
    st = ix.add([tmp_path / "a.wav", bad], quiet=True)
    assert st["indexed"] == 1 and len(st["failed"]) == 1
    with pytest.raises(SearchIndexError, match="built with"):
        SearchIndex(tmp_path / "ix", bundle, IndexConfig())
    meta = json.loads((tmp_path / "ix" / "index.json").read_text())
    meta["model_id"] = "other-model"
    (tmp_path / "ix" / "index.json").write_text(json.dumps(meta))
    with pytest.raises(SearchIndexError, match="other-model"):
        SearchIndex(tmp_path / "ix", bundle)
    with pytest.raises(ValueError):
        IndexConfig(window_s=())
    with pytest.raises(ValueError):
        ix.embed_query()


def test_std_protocol_on_real_sentences(shared_data, bundle):
    from kws.corpus.align import load_alignments
    from kws.std import _overlaps, choose_queries, run_std

    recs = load_alignments()
    assert len(recs) > 2000 and all(r["words"] for r in recs[:50])
    r = recs[0]
    assert all(0 <= s < e <= r["seconds"] + 0.02 for _, s, e in r["words"])
    assert _overlaps(0.0, 1.0, 0.4, 0.6) and not _overlaps(0.0, 1.0, 0.9, 1.5)
    res = run_std(bundle, shared_data, recs, n_utts=12, max_queries=3, quiet=True)
    assert res["utterances"] == 12 and res["index_windows"] > 0
    for g in res["groups"].values():
        for q in g["per_query"].values():
            assert 0 <= q["eer"] <= 1 and 0 <= q["p_at_10"] <= 1 and q["utterances_with"] >= 2
    qs = choose_queries(recs[:200], 5)
    assert all(len(v) <= 5 for v in qs.values()) and qs["iv"]


def test_std_text_queries_follow_the_tts_switch(shared_data, bundle, monkeypatch):
    """evaluate --no-tts measures text queries by their text vectors alone, as it does keywords."""
    from kws.corpus.align import load_alignments
    from kws.search import SearchIndex
    from kws.std import run_std

    seen = []
    embed = SearchIndex.embed_query

    def spy(self, *a, **kw):
        seen.append(kw.get("tts", True))
        return embed(self, *a, **kw)

    monkeypatch.setattr(SearchIndex, "embed_query", spy)
    run_std(bundle, shared_data, load_alignments(), n_utts=6, max_queries=1, quiet=True, tts=False)
    assert seen and not any(seen)
