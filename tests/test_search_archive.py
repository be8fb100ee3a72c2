"""Archive index (kws.search.archive): the detector's score and event rule, building in shards,
approximate against exact, appending without rebuilding, damaged, half-written and earlier-format
indexes refused, a killed worker's shard redone, and the command line."""
import json
import os
import signal
import sys
import time

import numpy as np
import pytest

from kws.audio.io import load_audio, write_wav
from kws.commands import main
from kws.errors import ArchiveDamaged, SearchIndexError, UsageError
from kws.search.archive import ArchiveConfig, ArchiveIndex
from kws.search.query import Hit, clip_hits, stretch_peaks, stretch_scores, top_hits
from kws.search.rows import HOP_S, PAD_S, Space, Template, row_hash
from kws.search.shards import import_faiss
from kws.search.terms import template_from_audio
from kws.spot.events import peak_positions, peaks
from kws.spot.templates import Matcher, TemplateBank

faiss = pytest.importorskip("faiss", reason='FAISS not installed (pip install "kws[search]")')

SMALL = ArchiveConfig(min_list_rows=0, nlist=8, coarse_cells=2, retrain_growth=100.0)
# format 2: lists of single rows in 8 bits a dimension, on disk (the default before windows)
SMALL_V2 = ArchiveConfig(min_list_rows=0, nlist=8, coarse_cells=2, retrain_growth=100.0, codec="sq8", context=1,
                         listed_dim=0, stride=2, nprobe=16, k=1024, rescore=4096)


def _sample():
    from kws.enroll.demo import sample_recording

    return load_audio(sample_recording())


def test_scores_and_hits_are_the_detectors(rng):
    """A term scores as the detector's matcher scores a keyword (best template, -1 until one
    fits), stretch by stretch; its hits are the events of kws.spot.events' rule."""
    x = rng.normal(size=(70, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ts = [x[10:16] + 0.1 * rng.normal(size=(6, 16)).astype(np.float32), x[40:44]]
    bank = TemplateBank.build([ts])
    starts = np.array([0, 30, 52])                       # three recordings one after the other
    best, which = stretch_scores(bank, (x * 127).round().astype(np.int8), starts)
    for a, b in zip(starts, list(starts[1:]) + [70]):
        q = np.round(x[a:b] * 127) / 127
        want = Matcher(bank).scores(q / np.linalg.norm(q, axis=1, keepdims=True))[:, 0]
        assert np.allclose(best[a:b, 0], want, atol=1e-5)
    assert int(np.argmax(best[:30, 0])) == 15 and which[15, 0] == 0 and which[43, 0] == 1
    assert best[52:55, 0].max() == -1.0                   # no template fits 3 rows
    series = best[:, 0].astype(np.float64)
    got = stretch_peaks(series, starts, refractory=4)
    want = np.concatenate([a + peak_positions(series[a:b], 4) for a, b in zip(starts, list(starts[1:]) + [70])])
    assert np.array_equal(np.sort(got), np.sort(want)) and got.size >= 3
    assert sorted(series[got], reverse=True) == sorted(np.concatenate(
        [peaks(series[a:b], 4) for a, b in zip(starts, list(starts[1:]) + [70])]), reverse=True)
    scores = np.array([0.9, 0.8, 0.3, 0.7, 0.95])
    times = np.array([[0.0, 0.5], [0.3, 0.8], [1.0, 1.2], [1.1, 1.6], [5.0, 5.4]])
    hits = top_hits(["f", "g"], np.array([0, 0, 1, 0, 1]), scores, times, top=10, per_file=2)
    assert [(h.file, h.start, h.score) for h in hits] == [("g", 5.0, 0.95), ("f", 0.0, 0.9), ("f", 0.3, 0.8),
                                                           ("g", 1.0, 0.3)]
    with pytest.raises(UsageError):
        Template(np.zeros((0, 5)), 0, 1)
    # an entry of the lists: the inner product of two is the sum of cosines row by row
    from kws.search.lists import context_vectors

    a = context_vectors(x, np.array([3, 69]), 3, np.eye(48, dtype=np.float32))
    b = context_vectors(ts[1], np.array([0]), 3, np.eye(48, dtype=np.float32))
    assert float(a[0] @ b[0]) == pytest.approx(sum(x[3 + i] @ ts[1][i] for i in range(3)), abs=1e-4)
    assert np.array_equal(a[1], np.tile(x[69], 3))                # past the end: the last row again
    # a template's windows: one if it fits (rows past its end are zeros, so the inner product
    # with an entry is the template's own diagonal sum there), else as few as cover it
    from kws.search.lists import window_queries, window_starts

    assert window_starts(4, 8).tolist() == [0] and window_starts(8, 8).tolist() == [0]
    assert window_starts(10, 8).tolist() == [0, 2] and window_starts(37, 8).tolist() == [0, 7, 14, 22, 29]
    Q, owner, start, width = window_queries([Template(ts[1], 0, 1), Template(x[:10], 0, 1)], 8,
                                            np.eye(128, dtype=np.float32))
    assert owner.tolist() == [0, 1, 1] and start.tolist() == [0, 0, 2] and width.tolist() == [4, 8, 8]
    e = context_vectors(x, np.array([20]), 8, np.eye(128, dtype=np.float32))[0]
    T1 = Template(ts[1], 0, 1).vectors
    assert float(Q[0] @ e) == pytest.approx(sum(T1[i] @ x[20 + i] for i in range(4)), abs=1e-4)
    h = row_hash(np.ones((2, 128), np.int8))
    bad = np.ones((2, 128), np.int8)
    bad[1, 100] = 2
    assert h[0] == h[1] and row_hash(bad)[1] != h[1]


def test_templates_are_cut_with_the_models_geometry():
    """A head template is the detector's: the utterance trimmed, padded with the model's pad_s,
    through front end and head, cut by the model's trim; the term's place in it follows. The raw
    space, the default, takes the same model's front end."""
    from kws.audio.io import trim_silence
    from kws.search.rows import DEFAULT_SPACE, SPACES
    from kws.search.terms import template_from_audio
    from kws.spot.templates import cut, source_vectors

    assert DEFAULT_SPACE == "raw" and set(SPACES) == {"raw", "head"}
    assert Space().kind == "raw" and ArchiveConfig().vectors == "raw"
    space = Space("head")
    m = space.model
    x = _sample()[int(4.6 * 16000):int(5.5 * 16000)]
    T = space.template(x, "c")
    v = m.head(source_vectors(m.frontend.frames, x, pad_s=m.pad_s))
    a, b = cut(v.shape[0], m.trim)
    assert np.allclose(T.vectors, v[a:b], atol=1e-6) and T.space == f"head:{m.model_id}"
    dur = trim_silence(x, top_db=40.0, margin_s=0.0).size / 16000
    assert T.start_s == pytest.approx(m.pad_s - m.trim * HOP_S) and T.end_s == pytest.approx(T.start_s + dur)
    raw = Space("raw", m).template(x, "c")
    assert raw.vectors.shape[1] == 96 and raw.space.startswith(f"raw:{m.model_id}:")
    default = template_from_audio(x, "c")
    assert default.space == raw.space and np.array_equal(default.vectors, raw.vectors)


def test_build_query_append_and_remove(recordings, tmp_path):
    root = tmp_path / "arch"
    ix = ArchiveIndex(root, SMALL)
    st = ix.add([recordings], quiet=True)
    assert (st["indexed"], st["retrained"], len(ix)) == (4, True, 4)
    assert ix.rows == st["rows"] and all(s["ivf"] for s in ix.manifest["segments"])
    # format 3: windows of rows in fast-scan codes, the lists inside the index file
    assert ix.manifest["version"] == 3 and (ix.config.codec, ix.config.context, ix.config.stride) == ("fs64", 4, 1)
    assert not list(root.glob("seg-0000/*.ivfdata"))
    ix = ArchiveIndex(root)
    assert ix.manifest["space"].startswith(f"raw:{ix.space.model.model_id}:") and ix.dim == 96
    # query by example: a recorded phrase of r2 (2.3-4.2 s, between two pauses; no other
    # recording holds these seconds of the sample) finds it there first, by a wide margin
    x = load_audio(recordings / "r2.wav")
    T = template_from_audio(x[int(2.3 * 16000):int(4.2 * 16000)], "clip")
    exact = ix.query([T], top=5, exact=True)
    best = exact[0]
    assert best.file.endswith("r2.wav") and abs(best.start - 2.3) < 0.25 and abs(best.end - 4.2) < 0.25
    assert best.score > 0.6 and all(h.score < best.score - 0.3 for h in exact[1:])
    # every list searched: the approximate search re-scores exactly, so it finds the same hits
    approx = ix.query([T], top=5, nprobe=8, k=4096)
    assert [(h.file, round(h.start, 2), round(h.score, 4)) for h in approx] == \
        [(h.file, round(h.start, 2), round(h.score, 4)) for h in exact]
    scores, times = ix.file_scores(best.file, [T])
    assert scores.max() == pytest.approx(best.score, abs=1e-5) and times.shape == (scores.size, 2)
    # appending: a new segment; the first segment's files stay as they were
    before = {p: p.stat().st_mtime_ns for p in (root / "seg-0000").iterdir()}
    write_wav(recordings / "new.wav", x[: 6 * 16000])
    st = ArchiveIndex(root).add([recordings], quiet=True)
    assert (st["indexed"], st["unchanged"], st["retrained"], st["segment"]) == (1, 4, False, "seg-0001")
    assert {p: p.stat().st_mtime_ns for p in (root / "seg-0000").iterdir()} == before
    ix = ArchiveIndex(root)
    hits = ix.query([T], top=10)
    assert any(h.file.endswith("new.wav") and abs(h.start - 2.3) < 0.25 for h in hits)          # a copy of r2
    # a changed file answers from its new rows only; a deleted one no more
    time.sleep(0.01)
    write_wav(recordings / "new.wav", x[int(1.5 * 16000):])
    os.unlink(recordings / "r0.wav")
    st = ArchiveIndex(root).add([recordings], quiet=True)
    assert (st["indexed"], st["removed"]) == (1, 1)
    st = ArchiveIndex(root).add([recordings], quiet=True)         # nothing new: no new segment
    assert (st["indexed"], st["unchanged"], st["segment"]) == (0, 4, None)
    ix = ArchiveIndex(root)
    assert sorted(k.rsplit("/", 1)[1] for k in ix.files) == ["new.wav", "r1.wav", "r2.wav", "r3.wav"]
    hits = ix.query([T], top=10, exact=True)
    assert not any(h.file.endswith("r0.wav") for h in hits)
    assert any(h.file.endswith("new.wav") and abs(h.start - 0.8) < 0.25 for h in hits)          # r2 from 1.5 s
    assert [(h.file, h.start) for h in ix.query([T], top=3, nprobe=8, k=4096)] == \
        [(h.file, h.start) for h in hits[:3]]
    assert len(list(root.glob("seg-*"))) == 3 and ix.verify()["files"] == len(ix.manifest["checksums"])


def test_a_query_of_one_template_looks_further(recordings, tmp_path, monkeypatch):
    """A recorded example (one template) gets ArchiveConfig.single_*, a text (several templates)
    the usual defaults; what a caller asks for wins over both."""
    ix = ArchiveIndex(tmp_path / "arch", SMALL)
    ix.add([recordings], quiet=True)
    ix = ArchiveIndex(tmp_path / "arch")
    seen = []
    real = type(ix)._approx_segment

    def spy(self, seg, templates, bank, nprobe, k, step, spread, floor, rescore, judge, places=False):
        seen.append((len(templates), nprobe, k, rescore))
        return real(self, seg, templates, bank, nprobe, k, step, spread, floor, rescore, judge, places)

    monkeypatch.setattr(type(ix), "_approx_segment", spy)
    x = load_audio(recordings / "r2.wav")
    T = template_from_audio(x[int(2.3 * 16000):int(4.2 * 16000)], "clip")
    U = template_from_audio(x[int(2.2 * 16000):int(4.3 * 16000)], "clip2")
    c = ix.config
    ix.query([T])
    ix.query([T, U])
    ix.query([T], nprobe=3, k=100, rescore=50)
    assert c.single_nprobe > c.nprobe and c.single_k > c.k and c.single_rescore > c.rescore
    assert set(seen) == {(1, c.single_nprobe, c.single_k, c.single_rescore), (2, c.nprobe, c.k, c.rescore),
                         (1, 3, 100, 50)}


def test_places_from_the_lists_are_a_second_apart_and_hold_the_best(recordings, tmp_path):
    """``places``: the rescored ends that are the best of their recording's within the refractory
    second, best first: two of one recording more than a second apart (one template, so its
    ends' times step by HOP_S), the exact best among them."""
    from kws.search.rows import HOP_S
    from kws.spot.events import REFRACTORY

    ix = ArchiveIndex(tmp_path / "arch", SMALL)
    ix.add([recordings], quiet=True)
    ix = ArchiveIndex(tmp_path / "arch")
    x = load_audio(recordings / "r2.wav")
    T = template_from_audio(x[int(2.3 * 16000):int(4.2 * 16000)], "clip")
    exact = ix.query([T], top=1, exact=True)[0]
    places = ix.query([T], top=40, nprobe=8, k=4096, places=True)
    assert len(places) > 4 and (places[0].file, places[0].start) == (exact.file, exact.start)
    assert [p.score for p in places] == sorted((p.score for p in places), reverse=True)
    for i, a in enumerate(places):
        for b in places[i + 1:]:
            assert a.file != b.file or abs(a.end - b.end) > REFRACTORY * HOP_S - 1e-4


def test_growing_past_the_quantizer_trains_one_for_new_segments_only(recordings, tmp_path):
    """Appending never rebuilds: once the archive outgrows its quantizer, the new segment gets a
    new one, and every file of the older segments (their lists, their quantizer) stays as it was."""
    root = tmp_path / "arch"
    files = sorted(recordings.glob("r*.wav"))
    grow = ArchiveConfig(min_list_rows=0, nlist=8, coarse_cells=2, retrain_growth=1.5)
    ArchiveIndex(root, grow).add(files[:2], quiet=True)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file() and p.name != "manifest.json"}
    st = ArchiveIndex(root).add(files, quiet=True)
    assert st["retrained"] and st["segment"] == "seg-0001"
    ix = ArchiveIndex(root)
    assert [s["trained"] for s in ix.manifest["segments"]] == ["trained-0000.faiss", "trained-0001.faiss"]
    assert all(p.exists() and p.stat().st_mtime_ns == t for p, t in before.items())
    T = template_from_audio(load_audio(files[3])[16000:int(2.2 * 16000)], "clip")
    exact = ix.query([T], top=4, exact=True)
    assert exact[0].file.endswith("r3.wav") and abs(exact[0].start - 1.0) < 0.25
    assert [(h.file, h.start) for h in ix.query([T], top=4, nprobe=8, k=4096)] == [(h.file, h.start) for h in exact]
    assert ix.verify()["files"] == len(ix.manifest["checksums"])


@pytest.mark.parametrize("config", [SMALL, SMALL_V2], ids=["format3", "format2"])
def test_damage_and_half_written_index_are_refused(recordings, tmp_path, monkeypatch, config):
    root = tmp_path / "arch"
    files = sorted(recordings.glob("r*.wav"))
    ArchiveIndex(root, config).add(files[:2], quiet=True)
    assert ArchiveIndex(root).manifest["version"] == (3 if config.codec.startswith("fs") else 2)
    ix = ArchiveIndex(root)
    T = template_from_audio(load_audio(files[1])[16000:int(1.8 * 16000)])
    ref = [h.to_dict() for h in ix.query([T], top=3)]
    # an append interrupted before its manifest: the index answers as before, the leftovers go
    import kws.search.archive as sa

    real = sa.write_atomic

    def crash(path, data):
        if path.name == "manifest.json":
            raise KeyboardInterrupt
        real(path, data)
    monkeypatch.setattr(sa, "write_atomic", crash)
    with pytest.raises(KeyboardInterrupt):
        ArchiveIndex(root).add(files, quiet=True)
    monkeypatch.setattr(sa, "write_atomic", real)
    assert (root / "seg-0001").exists()
    assert [h.to_dict() for h in ArchiveIndex(root).query([T], top=3)] == ref
    (root / "seg-0001" / "left-over").write_text("x")
    st = ArchiveIndex(root).add(files, quiet=True)        # the leftovers go, the run is redone
    assert st["indexed"] == 2 and st["segment"] == "seg-0001" and not (root / "seg-0001" / "left-over").exists()
    assert [s["name"] for s in ArchiveIndex(root).manifest["segments"]] == ["seg-0000", "seg-0001"]
    # an index of format 2 stays one when recordings are appended: its lists as before
    assert ArchiveIndex(root).manifest["version"] == (3 if config.codec.startswith("fs") else 2)
    assert bool(list(root.glob("seg-0001/*.ivfdata"))) == (not config.codec.startswith("fs"))

    def damaged(rel, at, match):
        p = root / rel
        data = bytearray(p.read_bytes())
        data[at] ^= 0x40
        p.write_bytes(bytes(data))
        try:
            with pytest.raises(ArchiveDamaged, match="sha256"):    # small files: checked at open
                ArchiveIndex(root)
            with monkeypatch.context() as m:                       # large files: where a query reads
                m.setattr(sa, "SMALL_FILE", 0)
                with pytest.raises(ArchiveDamaged, match=match):
                    ArchiveIndex(root).query([T], top=3)
                with pytest.raises(ArchiveDamaged, match="sha256"):
                    ArchiveIndex(root).verify()
        finally:
            data[at] ^= 0x40
            p.write_bytes(bytes(data))
    ix = ArchiveIndex(root)
    seg = ix.segments()[0]
    best = ix.query([T], top=1)[0]
    key = next(k for k in seg.keys if k == best.file)
    row = int(seg.file_first[seg.keys.index(key)] + round((best.start + PAD_S) / HOP_S))
    damaged("seg-0000/shard-000.i8", row * ix.dim + 5, "hashes")                 # a row the query reads
    ivf = ix.manifest["segments"][0]["ivf"]
    if config.codec.startswith("fs"):    # lists inside the index file, the last list at its end
        damaged(f"seg-0000/{ivf}.faiss", (root / "seg-0000" / f"{ivf}.faiss").stat().st_size - 40, "CRC-32")
    else:
        damaged(f"seg-0000/{ivf}.ivfdata", 200, "CRC-32")                    # a list it scans
    with open(root / "seg-0000" / "shard-000.i8", "ab") as fh:               # a longer file
        fh.write(b"\0")
    with pytest.raises(ArchiveDamaged, match="bytes"):
        ArchiveIndex(root)
    (root / "manifest.json").unlink()                                        # never finished
    with pytest.raises(ArchiveDamaged, match="no manifest"):
        ArchiveIndex(root)
    assert main(["search", "query", str(root), "--example", str(files[0])]) == 2


def test_killed_worker_shard_is_redone(recordings, tmp_path, monkeypatch):
    dd = pytest.importorskip("dask.distributed", reason='Dask not installed (pip install "kws[search]")')
    files = sorted(recordings.glob("r*.wav"))
    single = ArchiveIndex(tmp_path / "single", SMALL)
    single.add(files, quiet=True)
    cluster = dd.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              dashboard_address=None, silence_logs=40)
    client = dd.Client(cluster)
    killed = {}
    import kws.progress

    real = kws.progress.progress

    def kill_first(it, desc="", **kw):
        if desc == "embedding shards" and not killed:     # kill a worker running a shard
            for _ in range(400):
                busy = {w: t for w, t in client.processing().items() if t}
                if busy:
                    break
                time.sleep(0.025)
            pids = client.run(os.getpid)
            w = sorted(busy)[0]
            killed.update(worker=w, tasks=len(busy[w]))
            os.kill(pids[w], signal.SIGKILL)
        return real(it, desc, **kw)
    monkeypatch.setattr(kws.progress, "progress", kill_first)
    try:
        dist = ArchiveIndex(tmp_path / "dist", SMALL)
        st = dist.add(files, quiet=True, address=cluster.scheduler_address)
    finally:
        client.close()
        cluster.close()
    assert killed["tasks"] >= 1
    assert st["indexed"] == 4 and not st["failed"]
    assert len(dist.manifest["segments"][0]["shards"]) == 2            # one per worker
    for k in single.files:
        assert np.array_equal(single.file_rows(k), dist.file_rows(k))
    T = template_from_audio(load_audio(files[2])[16000:40000])
    assert [h.to_dict() for h in single.query([T], exact=True)] == [h.to_dict() for h in dist.query([T], exact=True)]


def test_cli_index_query_verify(recordings, tmp_path, capsys, monkeypatch):
    ix = tmp_path / "ix"
    assert main(["search", "index", str(recordings / "r2.wav"), str(recordings / "r3.wav"), "--index", str(ix),
                 "--vectors", "raw", "--workers", "1", "--quiet"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["space"].startswith("raw:") and st["indexed"] == 2 and st["vectors"] > 100
    x = load_audio(recordings / "r3.wav")
    write_wav(tmp_path / "ex.wav", np.concatenate([np.zeros(8000, np.float32), x[48000:60800]]))
    assert main(["search", "query", str(ix), "--example", str(tmp_path / "ex.wav"), "--json", "--top", "2",
                 "--clip", str(tmp_path / "clips")]) == 0
    hits = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert hits[0]["file"].endswith("r3.wav") and abs(hits[0]["start"] - 3.0) < 0.25
    assert len(list((tmp_path / "clips").glob("*.wav"))) == 2
    played = []
    try:
        import sounddevice as sd
    except OSError:                  # no PortAudio library: --play says so and exits 2
        sd = None
    if sd is not None:
        monkeypatch.setattr(sd, "play", lambda a, sr: played.append(a.size))
        monkeypatch.setattr(sd, "wait", lambda: None)
    assert main(["search", "query", str(ix), "--example", str(tmp_path / "ex.wav"), "--top", "1", "--play",
                 "--exact"]) == (0 if sd else 2)
    cap = capsys.readouterr()
    assert "exact search" in cap.out and (len(played) == 1 if sd else "cannot play" in cap.err)
    assert main(["search", "verify", str(ix)]) == 0
    assert json.loads(capsys.readouterr().out)["ok"]
    # by text: Kokoro renderings of the term as templates (two voices here)
    assert main(["search", "query", str(ix), "computer", "--voices", "2", "--json", "--top", "1",
                 "--plot", str(tmp_path / "p.png")]) == 0
    hit = json.loads(capsys.readouterr().out.splitlines()[0])
    assert hit["query"] == "computer" and -1 <= hit["score"] <= 1
    assert (tmp_path / "p.png").stat().st_size > 1000
    shard = next(ix.glob("seg-*/shard-*.json"))
    shard.write_text(shard.read_text().replace("r3", "r4"))
    assert main(["search", "verify", str(ix)]) == 2
    assert "sha256" in capsys.readouterr().err


def test_rows_follow_the_audio():
    """Head rows are the detector's stream vectors; raw rows (the default) the same model's
    front-end vectors, whitened."""
    from kws.search.rows import whiten
    from kws.spot.templates import source_vectors

    x = _sample()[: 5 * 16000]
    raw = Space()
    rows = raw.rows(x)
    assert rows.dtype == np.int8 and rows.shape[1] == raw.dim == 96
    assert rows.shape[0] == 1 + (int((5 + 2 * PAD_S) * 16000) - 12512) // 1280
    w = whiten(source_vectors(raw.model.frontend.frames, x, trim=False, pad_s=PAD_S))
    assert np.abs(rows / 127 - w).max() < 0.01
    space = Space("head")
    rows = space.rows(x)
    assert rows.dtype == np.int8 and rows.shape[1] == space.dim == 128
    assert rows.shape[0] == 1 + (int((5 + 2 * PAD_S) * 16000) - 12512) // 1280
    norms = np.linalg.norm(rows.astype(np.float32) / 127, axis=1)
    assert np.all(np.abs(norms - 1) < 0.02)
    v = space.model.vectors(np.concatenate([np.zeros(int(PAD_S * 16000), np.float32), x,
                                            np.zeros(int(PAD_S * 16000), np.float32)]))
    assert np.abs(rows / 127 - v).max() < 0.01                         # the detector's stream vectors


def test_an_index_of_another_format_model_or_space_is_refused(recordings, tmp_path):
    """Rows of an earlier format, of another model, or templates of another space never answer:
    each is refused with what to do."""
    root = tmp_path / "ix"
    ArchiveIndex(root).add([recordings / "r0.wav"], quiet=True)
    m = json.loads((root / "manifest.json").read_text())
    T = template_from_audio(load_audio(recordings / "r0.wav")[16000:40000])
    head = Space("head").template(load_audio(recordings / "r0.wav")[16000:40000])
    with pytest.raises(UsageError, match="head:"):
        ArchiveIndex(root).query([head])
    mid = ArchiveIndex(root).space.model.model_id
    assert m["space"].startswith(f"raw:{mid}:")
    for change, match in (({"version": 1}, "format version 1, made by an earlier kws.*search index"),
                          ({"version": 4}, "format version 4, not one this kws"),
                          ({"space": m["space"].replace(mid, "another-model")}, "another model"),
                          ({"space": m["space"].rsplit(":", 1)[0] + ":0123456789abcdef"}, "whitening")):
        (root / "manifest.json").write_text(json.dumps({**m, **change}))
        with pytest.raises(SearchIndexError, match=match):
            ArchiveIndex(root).query([T])
        assert main(["search", "query", str(root), "--example", str(recordings / "r0.wav")]) == 2
    (root / "manifest.json").write_text(json.dumps(m))
    assert ArchiveIndex(root).query([T], top=1)[0].file.endswith("r0.wav")
    # a head index (asked for) answers head templates only, and the command line makes them for it
    assert main(["search", "index", str(recordings / "r0.wav"), "--index", str(tmp_path / "head"),
                 "--vectors", "head", "--workers", "1", "--quiet"]) == 0
    hx = ArchiveIndex(tmp_path / "head")
    assert hx.manifest["space"] == f"head:{mid}" and hx.dim == 128
    assert hx.query([head], top=1)[0].file.endswith("r0.wav")
    with pytest.raises(UsageError, match="raw:"):
        hx.query([T])
    assert main(["search", "query", str(tmp_path / "head"), "--example", str(recordings / "r0.wav"),
                 "--top", "1"]) == 0
    assert main(["search", "index", str(recordings / "r1.wav"), "--index", str(tmp_path / "head"),
                 "--vectors", "raw", "--workers", "1", "--quiet"]) == 2          # an index keeps its space
    assert len(ArchiveIndex(tmp_path / "head")) == 1


def test_small_index_without_the_extras_and_what_they_say_when_needed(recordings, tmp_path, monkeypatch):
    """Under min_list_rows an index needs neither FAISS nor Dask; asked for, each missing extra
    names the package to install."""
    monkeypatch.setitem(sys.modules, "faiss", None)             # import faiss -> ImportError
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    from kws.errors import MissingExtra
    from kws.search.dist import default_workers

    assert default_workers() == 1
    with pytest.raises(MissingExtra, match=r"kws\[search\]"):
        import_faiss()
    ix = ArchiveIndex(tmp_path / "ix")
    assert ix.add([recordings / "r0.wav"], quiet=True)["indexed"] == 1
    T = template_from_audio(load_audio(recordings / "r0.wav")[16000:40000])
    assert ix.query([T], top=1)[0].file.endswith("r0.wav")
    with pytest.raises(MissingExtra, match="Dask"):
        ix.add([recordings / "r1.wav"], workers=2, quiet=True)


def test_clips_are_the_hits_with_their_context(recordings, tmp_path):
    f = str(recordings / "r1.wav")
    x = load_audio(f)
    hits = [Hit(f, 2.0, 2.5, 0.9), Hit(f, 0.1, 0.6, 0.8), Hit(f, 5.7, 5.95, 0.7)]
    paths = clip_hits(hits, tmp_path / "clips", context=0.5)
    assert [p.name[:7] for p in paths] == ["01_r1_2", "02_r1_0", "03_r1_5"]
    for h, p in zip(hits, paths):
        s = max(0, int((h.start - 0.5) * 16000))
        e = min(x.size, int(np.ceil((h.end + 0.5) * 16000)))
        assert np.array_equal(load_audio(p), x[s:e])


def test_a_text_rendered_before_is_neither_pronounced_nor_rendered_again(monkeypatch):
    """Text templates come from the render cache: the second time, the text's phonemes and
    renderings are read from it (kws.enroll.render_cache), and the templates are the same."""
    from kws.enroll import kokoro
    import kws.enroll.phonemes
    from kws.search.terms import RAW_VOICES, VOICES, templates_from_text, voice_order

    first = templates_from_text("computer", voices=2)
    assert [t.label for t in first] == ["computer"] * 2 and first[0].space.startswith("raw:")

    def refuse(*a, **k):
        raise AssertionError("pronounced or rendered again")
    monkeypatch.setattr(kokoro, "render_timed", refuse)
    monkeypatch.setattr(kws.enroll.phonemes, "pronounce", refuse)
    again = templates_from_text("Computer ", voices=2)
    assert all(np.array_equal(a.vectors, b.vectors) for a, b in zip(first, again))
    assert len(VOICES) == len(set(VOICES)) and set(VOICES) <= set(kokoro.voices().names)
    # each space renders in its own measured order: the raw space (the default) RAW_VOICES
    assert sorted(RAW_VOICES) == sorted(VOICES) and RAW_VOICES[:2] != VOICES[:2]
    assert voice_order("raw")[:2] == list(RAW_VOICES[:2]) and voice_order("head")[:2] == list(VOICES[:2])
    monkeypatch.undo()
    seen = []
    monkeypatch.setattr(kokoro, "render_timed", lambda ph, r, threads=1: seen.append(r.voice) or refuse())
    with pytest.raises(AssertionError):
        templates_from_text("zorblax", voices=3)
    assert seen[:1] == [RAW_VOICES[0]] and set(seen) <= set(RAW_VOICES[:3])
    with pytest.raises(UsageError):
        templates_from_text("computer", voices=0)


def test_fused_score_is_the_mean_of_the_raw_score_and_the_aligned_head_score():
    """kws.search.fusion.fuse by hand: the head's best score among the ends whose term ends lie
    within ALIGN_S of the raw end's, -1 where none does."""
    from kws.search.fusion import fuse

    raw = np.array([0.1, 0.5, 0.2, 0.0])
    raw_end = np.array([0.0, 0.08, 0.16, 0.24])
    head = np.array([0.9, 0.3, 0.8, 0.4, 0.1])
    head_end = np.array([-0.5, 0.3, 0.4, 0.5, 2.0])        # the head's estimates: later
    got = fuse(raw, raw_end, head, head_end, align_s=0.2, reach=8)
    # raw end 0.00 and 0.08: no head end within 0.2 s -> -1; 0.16: the one at 0.3 -> 0.3;
    # 0.24: those at 0.3 and 0.4 -> 0.8
    assert np.allclose(got, [(0.1 - 1) / 2, (0.5 - 1) / 2, (0.2 + 0.3) / 2, (0.0 + 0.8) / 2])
    assert np.allclose(fuse(raw, raw_end, head, head_end, align_s=0.2, reach=1)[3], (0.0 + 0.8) / 2)
    assert np.allclose(fuse(raw, raw_end, head[:0], head_end[:0]), (raw - 1) / 2)


def test_an_index_of_both_spaces_finds_by_the_fused_score(recordings, tmp_path, capsys):
    """An index of both spaces (what ``kws search index`` makes without --vectors): the recordings in
    both spaces, a query scored in each, the scores of a place added; its hits are the fused
    series' events, exact and from the lists alike."""
    from kws.search.fusion import PairedIndex, fuse, is_pair

    root = tmp_path / "both"
    assert main(["search", "index", str(recordings), "--index", str(root), "--workers", "1", "--quiet"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert is_pair(root) and st["indexed"] == 4 and st["space"].startswith("raw:") and " + head:" in st["space"]
    ix = PairedIndex(root)
    assert len(ix) == 4 and ix.raw.config.vectors == "raw" and ix.head.config.vectors == "head"
    x = load_audio(recordings / "r2.wav")[int(2.3 * 16000):int(4.2 * 16000)]
    ts = ([template_from_audio(x, "clip", space=ix.raw.space)], [template_from_audio(x, "clip", space=ix.head.space)])
    exact = ix.query(ts, top=3, exact=True)
    assert exact[0].file.endswith("r2.wav") and abs(exact[0].start - 2.3) < 0.25
    r, rt = ix.raw.file_scores(exact[0].file, ts[0])
    h, ht = ix.head.file_scores(exact[0].file, ts[1])
    fused = fuse(r, rt[:, 1], h, ht[:, 1])
    assert exact[0].score == pytest.approx(fused.max(), abs=1e-5)
    # a stretch of a recording scores as the whole one does there, in each space and fused
    part, pt = ix.file_scores(exact[0].file, ts, 20, 50)
    whole, wt = ix.file_scores(exact[0].file, ts)
    assert np.allclose(part, whole[20:50], atol=1e-6) and np.allclose(pt, wt[20:50])
    assert np.allclose(ix.raw.file_scores(exact[0].file, ts[0], 20, 50)[0], r[20:50], atol=1e-6)
    assert ix.raw.file_scores(exact[0].file, ts[0], 10_000)[0].size == 0
    assert fused.max() > r.max() - 1 and fused.max() <= (r.max() + h.max()) / 2 + 1e-6
    assert [(hh.file, hh.start) for hh in ix.query(ts, top=3)] == [(hh.file, hh.start) for hh in exact]
    assert [(hh.file, hh.start) for hh in ix.query(ts, top=3, nprobe=2, k=64, rescore=64)] == \
        [(hh.file, hh.start) for hh in exact]
    # each space's candidates as its events judged again (the slower way) find the same
    assert [(hh.file, hh.start) for hh in ix.query(ts, top=3, places=False)] == [(hh.file, hh.start) for hh in exact]
    # the command line: by text, in both spaces; an index of one space cannot become both
    assert main(["search", "query", str(root), "computer", "--voices", "1", "--json", "--top", "1"]) == 0
    assert -1 <= json.loads(capsys.readouterr().out.splitlines()[0])["score"] <= 1
    assert main(["search", "verify", str(root)]) == 0 and json.loads(capsys.readouterr().out)["ok"]
    assert main(["search", "index", str(recordings), "--index", str(root), "--vectors", "raw"]) == 2
    assert "both spaces" in capsys.readouterr().err


def test_row_hash_is_the_linear_form_modulo_the_prime_exactly():
    """kws.search.rows.row_hash by hand: sum_j row_j * w_j (w: the fixed random form) modulo
    4294967291, computed in Python integers; the same from int8 rows and from their float32 values,
    at the extreme rows and in dimensions that split the form into 2 and 3 pieces."""
    from kws.search.rows import row_hash

    rng = np.random.default_rng(3)
    for d in (96, 256):
        w = [int(v) for v in np.random.default_rng(20261202).integers(1, 2 ** 20, d)]
        rows = rng.integers(-127, 128, (50, d)).astype(np.int8)
        rows[0], rows[1] = 127, -127
        want = [sum(int(x) * wj for x, wj in zip(r, w)) % 4294967291 for r in rows]
        assert row_hash(rows).tolist() == want
        assert row_hash(rows.astype(np.float32)).tolist() == want
        changed = rows.copy()
        changed[5, 7] += 1
        assert (row_hash(changed) != row_hash(rows)).tolist() == [i == 5 for i in range(50)]
