"""Approximate index (FAISS): agrees with the exact scan, follows re-indexing, deletions and
interruptions, says what to install when FAISS or Dask is missing; clips and playback of hits."""
import json
import sys

import numpy as np
import pytest

from kws.audio import load_audio, write_wav
from kws.bundle import Bundle
from kws.commands import main
from kws.search import IndexConfig, SearchIndex, clip_hits
from kws.search_ann import AnnConfig, MissingExtra, auto_cells, projection
from tests.test_search import wav_copies

faiss = pytest.importorskip("faiss", reason='FAISS not installed (pip install "kws[search]")')


@pytest.fixture(scope="module")
def bundle():
    return Bundle.load(variant="int8")


@pytest.fixture
def recordings(shared_data, tmp_path):
    return wav_copies((shared_data / "speechocean762-train" / "audio" / "SPEAKER0001").glob("*.ogg"), 10,
                      tmp_path / "rec")


def _same_places(a, b):
    """Share of hits in ``a`` that a hit of ``b`` in the same file overlaps."""
    return np.mean([any(x.file == y.file and x.start < y.end and x.end > y.start for y in b) for x in a])


def test_projection_keeps_inner_products(rng):
    # rows in an 8-dimensional subspace of 64 dimensions, far from the origin (large mean)
    basis = np.linalg.qr(rng.normal(size=(64, 8)))[0]
    x = rng.normal(size=(3000, 8)) @ basis.T + 3 * basis[:, 0]
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    P = projection(x.astype(np.float32), 0.999)
    assert P.shape == (64, 8)
    q = rng.normal(size=64)
    assert np.allclose((x @ P) @ (P.T @ q), x @ q, atol=1e-4)     # uncentred: ranking kept
    assert auto_cells(1_000_000) == 2048 and auto_cells(100) == 2
    with pytest.raises(ValueError):
        AnnConfig(energy=0.2)


def test_approximate_index_matches_exact_and_follows_changes(recordings, tmp_path, bundle):
    exact = SearchIndex(tmp_path / "exact", bundle)
    exact.add([recordings], quiet=True)
    ix = SearchIndex(tmp_path / "ivf", bundle, IndexConfig(kind="ivf"))
    st = ix.add([recordings], quiet=True)
    assert st["ann"]["retrained"] and st["ann"]["added_files"] == 10
    assert not (tmp_path / "ivf" / "packed.json").exists() and ix.size_bytes("search") > 0
    cells = ix.ann.meta["cells"]
    assert ix.ann.meta["dim"] < bundle.embedding_dim    # the projection is smaller than D
    for term in ("morning", "because", "computer"):
        q = ix.embed_query(term)
        ref = exact.query(q, top=5)
        assert [(h.file, h.start) for h in ix.query(q, top=5, exact=True)] == [(h.file, h.start) for h in ref]
        approx = ix.query(q, top=5, nprobe=cells)            # every list: only coding error left
        assert _same_places(ref, approx) >= 0.8
        assert abs(approx[0].score - ref[0].score) < 0.03
    # a changed file is re-embedded and replaces its rows; a deleted one leaves the index
    files = sorted(recordings.glob("*.wav"))
    changed = files[0]
    write_wav(changed, load_audio(changed)[:16000 * 2])
    files[1].unlink()
    st = SearchIndex(tmp_path / "ivf", bundle).add([recordings], quiet=True)
    assert (st["indexed"], st["removed"]) == (1, 1)
    assert (st["ann"]["removed_files"], st["ann"]["added_files"], st["ann"]["retrained"]) == (2, 1, False)
    ix = SearchIndex(tmp_path / "ivf", bundle)
    meta = ix.ann.meta
    assert set(meta["files"]) == set(ix.files) and str(files[1]) not in meta["files"]
    index = faiss.read_index(str(tmp_path / "ivf" / "ann" / "ivf.faiss"))
    assert index.ntotal == sum(f["windows"] for f in ix.files.values())
    for term in ("morning", "because"):
        hits = ix.query(ix.embed_query(term), top=20, nprobe=cells)
        assert hits and all(h.file in ix.files for h in hits)
        assert all(h.end <= ix.files[str(changed)]["seconds"] + 0.05 for h in hits if h.file == str(changed))


def test_interrupted_and_damaged_structures_recover(recordings, tmp_path, bundle):
    ix = SearchIndex(tmp_path / "ivf", bundle, IndexConfig(kind="ivf"))
    files = sorted(recordings.glob("*.wav"))
    ix.add(files[:6], quiet=True, prune=False)
    q = ix.embed_query("morning")
    # a file stored but the structure not synced (Ctrl-C between the two): queries scan shards
    more = SearchIndex(tmp_path / "ivf", bundle)
    x = load_audio(files[6])
    emb_rows = more._embed_here([(files[6], files[6].stat().st_size, files[6].stat().st_mtime_ns)], True)
    (item, out), = list(emb_rows)
    more._store(str(files[6]), item[1], item[2], out[0], out[1], x.size / 16000)
    assert not more.ann.current(more._stamp())
    assert [h.start for h in more.query(q, top=5)] == [h.start for h in more.query(q, top=5, exact=True)]
    assert more.refresh()["ann"]["added_files"] == 1 and more.ann.current(more._stamp())
    # a damaged FAISS file is rebuilt from the shards
    (tmp_path / "ivf" / "ann" / "ivf.faiss").write_bytes(b"damaged")
    again = SearchIndex(tmp_path / "ivf", bundle)
    assert not again.ann.current(again._stamp())
    assert again.refresh()["ann"]["retrained"]
    assert again.query(q, top=3)


def test_missing_extras_say_what_to_install(tmp_path, bundle, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "faiss", None)           # import faiss -> ImportError
    with pytest.raises(MissingExtra, match=r"pip install"):
        SearchIndex(tmp_path / "a", bundle, IndexConfig(kind="ivf"))
    write_wav(tmp_path / "x.wav", load_audio(_sample_path())[:16000])
    assert main(["search", "index", str(tmp_path / "x.wav"), "--index", str(tmp_path / "b"),
                        "--approximate", "--workers", "1"]) == 2
    assert "kws[search]" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    ix = SearchIndex(tmp_path / "c", bundle)
    with pytest.raises(MissingExtra, match="Dask"):
        ix.add([tmp_path / "x.wav"], workers=2, quiet=True)
    from kws.search_dist import default_workers
    assert default_workers() == 1


def _sample_path():
    from kws.demo import sample_recording

    return sample_recording()


def test_clip_and_play_hits(tmp_path, bundle, monkeypatch, capsys):
    x = load_audio(_sample_path())
    write_wav(tmp_path / "rec.wav", x)
    assert main(["search", "index", str(tmp_path / "rec.wav"), "--index", str(tmp_path / "ix"),
                 "--representation", "windows",
                        "--workers", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["search", "query", str(tmp_path / "ix"), "computer", "--top", "3", "--json",
                        "--clip", str(tmp_path / "clips")]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    clips = sorted((tmp_path / "clips").glob("*.wav"))
    assert len(clips) == len(hits) == 3 and clips[0].name.startswith("01_rec_")
    ix = SearchIndex(tmp_path / "ix", bundle)
    found = ix.query(ix.embed_query("computer"), top=3)
    x16 = load_audio(tmp_path / "rec.wav")
    for h, c in zip(found, clip_hits(found, tmp_path / "api", context=0.5)):
        s = max(0, int((h.start - 0.5) * 16000))
        e = min(x.size, int(np.ceil((h.end + 0.5) * 16000)))
        y = load_audio(c)
        assert y.size == e - s and np.array_equal(y, x16[s:e])
    played = []
    import sounddevice as sd
    monkeypatch.setattr(sd, "play", lambda a, sr: played.append((a.size, sr)))
    monkeypatch.setattr(sd, "wait", lambda: None)
    assert main(["search", "query", str(tmp_path / "ix"), "computer", "--top", "2", "--play"]) == 0
    assert len(played) == 2 and all(sr == 16000 and n > 8000 for n, sr in played)

    def no_device(a, sr):
        raise sd.PortAudioError("Error querying device -1")
    monkeypatch.setattr(sd, "play", no_device)
    assert main(["search", "query", str(tmp_path / "ix"), "computer", "--top", "1", "--play"]) == 2
    assert "cannot play" in capsys.readouterr().err
