"""Indexing on a Dask cluster: a worker killed mid-run loses nothing, and the index is the one a
single process builds (same files, same rows, bit for bit)."""
import json
import os
import signal

import numpy as np
import pytest

from kws.bundle import Bundle
from kws.search import SearchIndex
from tests.test_search import wav_copies

dd = pytest.importorskip("dask.distributed", reason='Dask not installed (pip install "kws[search]")')


def test_killed_worker_loses_nothing_and_index_equals_single_process(shared_data, tmp_path, monkeypatch):
    rec = wav_copies((shared_data / "librispeech-bits" / "train-clean-100").glob("*.opus"), 16, tmp_path / "rec")
    bundle = Bundle.load(variant="int8")
    single = SearchIndex(tmp_path / "single", bundle)
    single.add([rec], quiet=True)

    cluster = dd.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              dashboard_address=None, silence_logs=40)
    client = dd.Client(cluster)
    killed = {}
    store = SearchIndex._store

    def store_then_kill(self, *args, **kw):
        store(self, *args, **kw)
        if not killed:                  # after the first finished file: kill a busy worker
            pids = client.run(os.getpid)
            busy = {w: t for w, t in client.processing().items() if t}
            assert busy, "no task left running: the files are too short for this test"
            w = sorted(busy)[0]
            killed.update(worker=w, tasks=len(busy[w]), stored=len(self.files))
            os.kill(pids[w], signal.SIGKILL)
    monkeypatch.setattr(SearchIndex, "_store", store_then_kill)
    try:
        dist = SearchIndex(tmp_path / "dist", bundle)
        st = dist.add([rec], quiet=True, address=cluster.scheduler_address)
    finally:
        client.close()
        cluster.close()
    assert killed["tasks"] >= 1 and killed["stored"] == 1
    assert st["indexed"] == 16 and not st["failed"]
    a = json.loads((tmp_path / "single" / "index.json").read_text())
    b = json.loads((tmp_path / "dist" / "index.json").read_text())
    assert a["files"] == b["files"] and list(a["files"]) == list(b["files"])
    for key in a["files"]:
        for x, y in zip(single.shard_rows(key), dist.shard_rows(key)):
            assert np.array_equal(np.asarray(x), np.asarray(y))
    q = single.embed_query("morning")
    assert [h.to_dict() for h in single.query(q)] == [h.to_dict() for h in dist.query(q)]
