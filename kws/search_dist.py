"""Indexing on a Dask cluster: workers embed files, this process alone writes the index.

``SearchIndex.add(paths, workers=N)`` starts a local cluster of N single-threaded worker processes
(``kws search index`` uses all cores by default); ``address="tcp://host:8786"`` uses a running
cluster instead (``dask scheduler`` + ``dask worker`` on each machine, with kws installed and the
recordings at the same paths, e.g. a shared filesystem).

One task per file returns its int8 rows and times to the caller, which writes the shard and
``index.json`` as each result arrives (``as_completed``): a finished file is on disk before the next
result is read. A worker that dies (killed, out of memory, machine lost) takes only its running
task with it; the scheduler gives that task to another worker (up to Dask's
``allowed-failures``), and the local cluster's nanny starts a new worker process. Dask is an
optional dependency (``pip install "kws[search]"``).
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from kws.bundle import Bundle, default_bundle_path
from kws.search import IndexConfig, SearchIndexError, embed_file
from kws.errors import MissingExtra

_BUNDLES: dict = {}


def import_dask():
    """dask.distributed, or a :class:`MissingExtra` that says how to install it."""
    try:
        import dask.distributed as dd
    except ImportError as exc:
        raise MissingExtra('indexing on a cluster needs Dask: pip install "kws[search]" '
                           '(or pip install "dask[distributed]"), or index with --workers 1') from exc
    return dd


def default_workers() -> int:
    """All cores when Dask is installed, else 1 (in this process)."""
    try:
        import_dask()
    except MissingExtra:
        return 1
    return max(1, os.cpu_count() or 1)


def _remote_embed(path: str, bundle_path: Optional[str], variant: str, cfg: dict):
    """Runs on a worker: (model id, embed_file's result). The bundle is loaded once a process."""
    key = (bundle_path, variant)
    if key not in _BUNDLES:
        _BUNDLES[key] = Bundle.load(bundle_path, variant=variant)
    b = _BUNDLES[key]
    cfg = IndexConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})
    return b.model_id, embed_file(b, path, cfg)


def embed_distributed(todo: List[Tuple[Path, int, int]], bundle: Bundle, cfg: IndexConfig,
                      workers: int = 0, address: Optional[str] = None, quiet: bool = False
                      ) -> Iterator[tuple]:
    """Yield ``(item, result)`` for every ``(path, size, mtime_ns)`` in ``todo`` as workers finish
    (any order); ``result`` is :func:`kws.search.embed_file`'s. ``workers`` <= 0: all cores."""
    from kws.progress import progress

    dd = import_dask()
    cluster = None
    if address:
        try:
            client = dd.Client(address, timeout="20s")
        except OSError as exc:
            raise SearchIndexError(f"cannot reach a Dask scheduler at {address}: {exc}") from exc
    else:
        cluster = dd.LocalCluster(n_workers=workers if workers > 0 else (os.cpu_count() or 1),
                                  threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR)
        client = dd.Client(cluster)
    # the shipped bundle: every worker uses its own installed copy (checked by model id below)
    shipped = Path(bundle.path).resolve() == default_bundle_path().resolve()
    bpath = None if shipped else str(Path(bundle.path).resolve())
    try:
        futures = {client.submit(_remote_embed, str(item[0]), bpath, bundle.variant, asdict(cfg),
                                 pure=False): item for item in todo}
        for fut in progress(dd.as_completed(futures), "indexing", total=len(futures), quiet=quiet,
                            unit="file"):
            item = futures.pop(fut)
            try:
                model_id, out = fut.result()
            except Exception as exc:      # KilledWorker after repeated deaths, or a worker error
                yield item, f"{item[0]}: not indexed ({type(exc).__name__}: {exc})"
                continue
            finally:
                fut.release()
            if model_id != bundle.model_id:
                raise SearchIndexError(f"a worker embedded with model {model_id}, not "
                                       f"{bundle.model_id}: install the same kws on every worker")
            yield item, out
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
