"""Joint lists of an index of both spaces (kws.search.joint): a joint template's windows add up to
the fused score's two parts, the approximate fused score of the ends the lists propose, the lists
built, appended to and checked, and a damaged or half-written file of them refused."""
import json

import numpy as np
import pytest

from kws.audio.io import load_audio, write_wav
from kws.errors import ArchiveDamaged, SearchIndexError
from kws.search.rows import HOP_S, Template
from kws.search.terms import template_from_audio

faiss = pytest.importorskip("faiss", reason='FAISS not installed (pip install "kws[search]")')

from kws.search.fusion import PairedIndex  # noqa: E402
from kws.search.joint import (JointConfig, _sparse_entries, approximate_ends, joint_entries,  # noqa: E402
                              joint_windows, pair_shift)

TINY = JointConfig(min_list_rows=0, nlist=8, coarse_cells=2)


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _score(T, rows, e):
    """A template's score ending at row e: the mean cosine along the diagonal, by hand."""
    L = T.vectors.shape[0]
    return float(np.mean([T.vectors[j] @ rows[e - L + 1 + j] for j in range(L)]))


def test_joint_windows_add_up_to_the_raw_and_the_aligned_head_score():
    """For every pair of a raw and a head template and every raw end whose rows lie in the
    recording, the windows' inner products with the unprojected entries at the rows they start at
    add up to the raw score there plus the head score at the end whose term ends at the same
    second: what the fused score (times 2) takes from that pair."""
    rng = np.random.default_rng(0)
    n = 80
    raw, head = _unit(rng.standard_normal((n, 96))), _unit(rng.standard_normal((n, 128)))
    # two raw templates and three head ones of other lengths; the head's terms end later in them
    R = [Template(_unit(rng.standard_normal((L, 96))), 0.25, 0.25 + 0.08 * (L - 6)) for L in (7, 12)]
    H = [Template(_unit(rng.standard_normal((L, 128))), 0.44, 0.44 + 0.08 * (L - 9) + s)
         for L, s in ((11, 0.0), (16, 0.3), (5, -0.5))]
    W, owner, start, lr = joint_windows(R, H, context=4)
    assert W.shape[1] == 4 * (96 + 128) and sorted(set(owner)) == list(range(6))
    X = joint_entries(raw, head, np.arange(n), context=4)
    checked = 0
    for i, r in enumerate(R):
        for j, h in enumerate(H):
            p = i * len(H) + j
            d = pair_shift(r, h)
            assert d == round((r.end_s - h.end_s) / HOP_S)
            Lr, Lh = r.vectors.shape[0], h.vectors.shape[0]
            for e in range(n):
                b = e - Lr + 1
                eh = b + d + Lh - 1                       # the head end whose term ends where the raw one's does
                rows = b + start[owner == p]
                # only where every row the pair's windows hold lies in the recording (no repeated last row)
                if b - max(0, -min(0, d)) < 0 or b + min(0, d) < 0 or rows.max() + 3 >= n or eh >= n or eh - Lh + 1 < 0:
                    continue
                got = float(sum(W[w] @ X[b + start[w]] for w in np.flatnonzero(owner == p)))
                want = _score(r, raw, e) + _score(h, head, eh)
                assert got == pytest.approx(want, abs=1e-5)
                checked += 1
    assert checked > 100
    # int8 rows are the same entries, scaled back to unit
    q = np.clip(np.round(raw * 127), -127, 127).astype(np.int8)
    qh = np.clip(np.round(head * 127), -127, 127).astype(np.int8)
    assert np.allclose(joint_entries(q, qh, np.array([3, n - 1]), 4),
                       joint_entries(q.astype(np.float32) / 127, qh.astype(np.float32) / 127, np.array([3, n - 1]), 4))
    # past the end the last row repeats
    assert np.array_equal(joint_entries(raw, head, np.array([n - 2]), 4)[0, 2 * 96:3 * 96], raw[n - 1])
    # what the lists are built from: the same entries, from only the rows they need
    at = np.array([0, 5, 6, 40, n - 3, n - 1])
    need = np.unique(np.minimum(at[:, None] + np.arange(4), n - 1))
    assert np.array_equal(_sparse_entries(q[need], qh[need], need, at, n, 4), joint_entries(q, qh, at, 4))


def test_approximate_fused_score_of_the_proposed_ends():
    """An end's approximate fused score: per pair, the inner products of its windows that found
    the entry there, plus each other window's last inner product, halved; its best pair's."""
    # two pairs; pair 0 has windows 0 and 1 (starting at joint rows 0 and 3), pair 1 window 2 (at
    # joint row -1); Lr: 6 for pair 0, 4 for pair 1
    owner, start, lr = np.array([0, 0, 1]), np.array([0, 3, -1]), np.array([6, 4])
    D = np.array([[0.9, 0.5, 0.2], [0.7, 0.6, 0.0], [0.8, 0.4, 0.0]], np.float32)
    ids = np.array([[10, 20, 30], [13, 40, -1], [12, 50, -1]])
    e, s = approximate_ends(D, ids, owner, start, lr, 2)
    # pair 0: entry 10 by window 0 -> end 15; 13 by window 1 -> end 10 + ... (13 - 3 + 5 = 15): both
    # found end 15: (0.9 + 0.7) / 2; 20 -> end 25: (0.5 + bound of window 1, 0.6) / 2; 30 -> end 35:
    # (0.2 + 0.6) / 2; 40 -> end 42: (0.2 + 0.6) / 2 (window 0's bound 0.2, its last)
    # pair 1 (kth 0.4): 12 -> end 12 - (-1) + 3 = 16: 0.8 / 2; 50 -> end 54: 0.4 / 2
    want = {15: 0.8, 25: 0.55, 35: 0.4, 42: 0.4, 16: 0.4, 54: 0.2}
    assert list(e) == sorted(want) and np.allclose(s, [want[x] for x in e])
    # where both pairs propose one end, the better pair's
    e2, s2 = approximate_ends(D, np.array([[10, 20, 30], [13, 40, -1], [11, 50, -1]]), owner, start, lr, 2)
    assert s2[list(e2).index(15)] == pytest.approx(0.8)
    ids3 = np.array([[10, 20, 30], [13, 40, -1], [14, 50, -1]])       # pair 1's end 18
    D3 = D.copy()
    D3[2, 0] = 1.9
    e3, s3 = approximate_ends(D3, ids3, owner, start, lr, 2)
    assert s3[list(e3).index(18)] == pytest.approx(0.95)


def _clip_templates(ix, x):
    return ([template_from_audio(x, "clip", space=ix.raw.space)], [template_from_audio(x, "clip", space=ix.head.space)])


def test_joint_lists_find_the_exact_hits_append_and_are_checked(recordings, tmp_path, monkeypatch):
    import kws.search.joint as sj

    root = tmp_path / "both"
    files = sorted(recordings.glob("r*.wav"))
    ix = PairedIndex(root, joint_config=TINY)
    st = ix.add(files[:3], workers=1, quiet=True)
    assert st["joint"]["listed"] == ["seg-0000"] and st["joint"]["retrained"]
    ix = PairedIndex(root)
    # the joint lists propose; neither space has lists of its own
    assert ix.lists == "joint" and json.loads((root / "manifest.json").read_text())["version"] == 2
    assert [s["ivf"] for s in ix.raw.manifest["segments"] + ix.head.manifest["segments"]] == [None, None]
    assert ix.size_parts()["space_lists"] == 0 and ix.size_parts()["joint_lists"] == ix.joint.size_bytes() > 0
    x = load_audio(files[2])[int(2.3 * 16000):int(4.2 * 16000)]
    ts = _clip_templates(ix, x)
    exact = ix.query(ts, top=3, exact=True)
    assert exact[0].file.endswith("r2.wav") and abs(exact[0].start - 2.3) < 0.25
    got = ix.query(ts, top=3)
    assert [(h.file, h.start, round(h.score, 5)) for h in got] == [(h.file, h.start, round(h.score, 5)) for h in exact]
    # a term of one template in each space (an example) is looked up with JointConfig's single_*, one of
    # several with the others (k shared by its joint templates)
    from kws.search.lists import Lists

    seen, search = [], Lists.search
    monkeypatch.setattr(Lists, "search",
                        lambda self, Q, k, nprobe: seen.append((k, nprobe)) or search(self, Q, k, nprobe))
    y = load_audio(files[2])[int(2.2 * 16000):int(4.3 * 16000)]
    ix.query(ts, top=3)
    ix.query(tuple(a + b for a, b in zip(ts, _clip_templates(ix, y))), top=3)
    c = ix.joint.config
    assert c.single_nprobe != c.nprobe and seen == [(c.single_k, c.single_nprobe), (c.k // 2, c.nprobe)]
    monkeypatch.setattr(Lists, "search", search)
    # the best proposed end is the exact best place
    rseg = ix.raw.segments()[0]
    e, approx = ix.joint.candidates(rseg, *ts, nprobe=8, k=4096)
    best = int(e[np.argmax(approx)])
    f = int(rseg.file_of(np.array([best]))[0])
    sc, _ = ix.file_scores(rseg.keys[f], ts)
    assert rseg.keys[f] == exact[0].file and abs(best - rseg.file_first[f] - int(np.argmax(sc))) <= 1
    # appending: a new raw segment gets its own joint lists; nothing listed before is rewritten
    before = {p.name: p.stat().st_mtime_ns for p in (root / "joint").iterdir() if p.name != "manifest.json"}
    write_wav(recordings / "new.wav", load_audio(files[2]))
    st = PairedIndex(root).add(files[3:] + [recordings / "new.wav"], workers=1, quiet=True)
    assert st["joint"]["listed"] == ["seg-0001"] and not st["joint"]["retrained"]
    after = {p.name: p.stat().st_mtime_ns for p in (root / "joint").iterdir() if p.name != "manifest.json"}
    assert all(after[k] == v for k, v in before.items()) and "ivf-0001.faiss" in after
    ix = PairedIndex(root)
    hits = ix.query(ts, top=2)
    assert {h.file.rsplit("/", 1)[1] for h in hits} == {"r2.wav", "new.wav"}
    assert [(h.file, h.start) for h in hits] == [(h.file, h.start) for h in ix.query(ts, top=2, exact=True)]
    assert ix.verify()["files"] > 0
    # an interrupted append (the joint manifest never written) is completed by the next run
    real = sj.write_atomic

    def crash(path, data):
        if path.parent.name == "joint" and path.name == "manifest.json":
            raise KeyboardInterrupt
        real(path, data)
    monkeypatch.setattr(sj, "write_atomic", crash)
    write_wav(recordings / "new2.wav", load_audio(files[0]))
    with pytest.raises(KeyboardInterrupt):
        PairedIndex(root).add([recordings / "new2.wav"], workers=1, quiet=True)
    monkeypatch.setattr(sj, "write_atomic", real)
    ix = PairedIndex(root)
    assert len(ix.joint.segments()) == 2 and len(ix.raw.segments()) == 3
    # its recordings still answer (a segment without joint lists is scanned exactly)
    y = load_audio(files[0])[int(1.0 * 16000):int(2.5 * 16000)]
    ty = _clip_templates(ix, y)
    assert sorted((h.file, h.start) for h in ix.query(ty, top=2)) == \
        sorted((h.file, h.start) for h in ix.query(ty, top=2, exact=True))      # r0 and its copy new2, tied
    st = ix.add([recordings / "new2.wav"], workers=1, quiet=True)
    assert st["indexed"] == 0 and st["joint"]["listed"] == ["seg-0002"]
    assert not [p for p in (root / "joint").iterdir() if p.name.endswith(".tmp")]


def test_damaged_or_half_written_joint_lists_are_refused(recordings, tmp_path, monkeypatch):
    import kws.search.joint as sj

    root = tmp_path / "both"
    PairedIndex(root, joint_config=TINY).add([recordings], workers=1, quiet=True)
    ix = PairedIndex(root)
    x = load_audio(recordings / "r2.wav")[int(2.3 * 16000):int(4.2 * 16000)]
    ts = _clip_templates(ix, x)
    ref = [h.to_dict() for h in ix.query(ts, top=3)]
    ivf = root / "joint" / "ivf-0000.faiss"

    def damaged(p, at, match):
        data = bytearray(p.read_bytes())
        data[at] ^= 0x40
        p.write_bytes(bytes(data))
        try:
            with pytest.raises(ArchiveDamaged, match="sha256"):        # small files: checked at open
                PairedIndex(root)
            with monkeypatch.context() as m:                           # large files: where a query reads
                m.setattr(sj, "SMALL_FILE", 0)
                with pytest.raises(ArchiveDamaged, match=match):
                    PairedIndex(root).query(ts, top=3)
                with pytest.raises(ArchiveDamaged, match="sha256"):
                    PairedIndex(root).verify()
        finally:
            data[at] ^= 0x40
            p.write_bytes(bytes(data))
    damaged(ivf, ivf.stat().st_size - 40, "CRC-32")                   # the last list, at the file's end
    assert [h.to_dict() for h in PairedIndex(root).query(ts, top=3)] == ref
    with open(ivf, "ab") as fh:                                        # a longer file
        fh.write(b"\0")
    with pytest.raises(ArchiveDamaged, match="bytes"):
        PairedIndex(root)
    with open(ivf, "r+b") as fh:
        fh.truncate(ivf.stat().st_size - 1)
    PairedIndex(root)
    (root / "joint" / "trained-0000.proj.npy").unlink()                 # a file missing
    with pytest.raises(ArchiveDamaged, match="missing"):
        PairedIndex(root)
    # a first listing that never finished (no joint manifest, files left): no segment has joint lists,
    # the recordings are scanned exactly, and the next index run lists them and removes the rest
    (root / "joint" / "manifest.json").unlink()
    ix = PairedIndex(root, joint_config=TINY)            # (its settings were in the manifest)
    assert ix.joint.segments() == [] and [h.to_dict() for h in ix.query(ts, top=3)] == \
        [h.to_dict() for h in ix.query(ts, top=3, exact=True)]
    st = ix.add([recordings], workers=1, quiet=True)
    assert st["indexed"] == 0 and st["joint"]["listed"] == ["seg-0000"]
    assert [h.to_dict() for h in PairedIndex(root).query(ts, top=3)] == ref


def test_an_index_of_both_made_before_gets_joint_lists_beside_its_own(recordings, tmp_path):
    """An index of both spaces of format 1 (each space's own lists) answers as before; add_joint
    lists its segments jointly too, and a query then takes either."""
    from kws.search.archive import ArchiveConfig

    root = tmp_path / "both"
    ix = PairedIndex(root, lists="spaces")
    assert ix.joint is None
    ix.raw = type(ix.raw)(root / "raw", ArchiveConfig(vectors="raw", min_list_rows=0, nlist=8, coarse_cells=2))
    ix.head = type(ix.head)(root / "head", ArchiveConfig(vectors="head", min_list_rows=0, nlist=8, coarse_cells=2))
    ix.add([recordings], workers=1, quiet=True)
    ix = PairedIndex(root)
    assert ix.lists == "spaces" and all(s["ivf"] for s in ix.raw.manifest["segments"])
    x = load_audio(recordings / "r2.wav")[int(2.3 * 16000):int(4.2 * 16000)]
    ts = _clip_templates(ix, x)
    exact = [(h.file, h.start) for h in ix.query(ts, top=3, exact=True)]
    assert [(h.file, h.start) for h in ix.query(ts, top=3)] == exact
    with pytest.raises(Exception, match="no joint lists"):
        ix.query(ts, top=3, source="joint")
    rep = ix.add_joint(TINY)
    assert rep["listed"] == ["seg-0000"]
    ix = PairedIndex(root)
    assert ix.lists == "both" and ix.joint is not None
    for source in ("joint", "spaces"):
        assert [(h.file, h.start) for h in ix.query(ts, top=3, source=source)] == exact
    # joint lists of other spaces than the index's are refused
    m = json.loads((root / "joint" / "manifest.json").read_text())
    m["head_space"] = "head:another"
    (root / "joint" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(SearchIndexError, match="spaces"):
        PairedIndex(root)


def test_fused_score_at_chosen_ends_is_the_recordings_fused_series(recordings, tmp_path):
    """PairedIndex._fused_at (the candidates' exact fused score: each space's rows at only the ends
    it needs) equals file_scores' fused series at those ends, at a recording's edges too."""
    root = tmp_path / "both"
    PairedIndex(root, joint_config=TINY).add([recordings], workers=1, quiet=True)
    ix = PairedIndex(root)
    x = load_audio(recordings / "r1.wav")
    rng = np.random.default_rng(1)
    keys = sorted(ix.files)
    for a, b in ((0.5, 1.4), (2.0, 4.5)):
        ts = _clip_templates(ix, x[int(a * 16000):int(b * 16000)])
        owner, end, want, wt = [], [], [], []
        for i, key in enumerate(keys):
            sc, tm = ix.file_scores(key, ts)
            e = np.unique(np.r_[0, 1, rng.choice(sc.size, 25), sc.size - 2, sc.size - 1])
            owner += [i] * e.size
            end += list(e)
            want += list(sc[e])
            wt.append(tm[e])
        got, times = ix._fused_at(ts, keys, np.array(owner), np.array(end))
        assert np.allclose(got, want, atol=1e-6) and np.allclose(times, np.concatenate(wt), atol=1e-5)
        assert (np.array(want) > -1).any() and (np.array(want) > 0.3).any()
