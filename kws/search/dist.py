"""Work on a Dask cluster for indexing: workers run the tasks, this process alone writes the index.

``ArchiveIndex.add(paths, workers=N)`` (kws.search.archive) starts a local cluster of N
single-threaded worker processes (``kws search index`` uses all cores by default);
``address="tcp://host:8786"`` uses a running cluster instead (``dask scheduler`` + ``dask worker``
on each machine, with kws installed and the recordings and the index at the same paths, e.g. a
shared filesystem).

:func:`run_tasks` submits one task per job and yields results as they complete
(``as_completed``), so the caller writes each before reading the next. A worker that dies
(killed, out of memory, machine lost) takes only its running task with it; the scheduler gives
that task to another worker (up to Dask's ``allowed-failures``), and the local cluster's nanny
starts a new worker process. A task is one shard (a worker's share of the files), written by the
worker itself, atomically, so a shard redone after a death replaces nothing half-written. Dask
is an optional dependency (``pip install "kws[search]"``). This module imports no other part of
kws's search.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Iterator, Optional, Sequence

from kws.errors import MissingExtra, SearchIndexError


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


def cluster_workers(address: str) -> int:
    """Workers of the running cluster at ``address``."""
    dd = import_dask()
    try:
        with dd.Client(address, timeout="20s") as client:
            return max(1, len(client.scheduler_info()["workers"]))
    except OSError as exc:
        raise SearchIndexError(f"cannot reach a Dask scheduler at {address}: {exc}") from exc


def run_tasks(fn: Callable, jobs: Sequence[tuple], workers: int = 0, address: Optional[str] = None,
              quiet: bool = False, desc: str = "tasks", unit: str = "task",
              errors: str = "return") -> Iterator[tuple]:
    """Yield ``(job, fn(*job))`` for every job as workers finish (any order). ``fn`` must be a
    module-level function (workers import it). A job that fails on every worker it is given
    (``KilledWorker`` after repeated deaths, or an exception) yields the exception instead
    (``errors="return"``) or raises it (``errors="raise"``). ``workers`` <= 0: all cores."""
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
    try:
        futures = {client.submit(fn, *job, pure=False): job for job in jobs}
        for fut in progress(dd.as_completed(futures), desc, total=len(futures), quiet=quiet, unit=unit):
            job = futures.pop(fut)
            try:
                out = fut.result()
            except Exception as exc:      # KilledWorker after repeated deaths, or a worker error
                if errors == "raise":
                    raise
                out = exc
            finally:
                fut.release()
            yield job, out
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_jobs(fn: Callable, jobs: list, workers: int, address: Optional[str], quiet: bool, desc: str):
    """Yield (job, fn(job...)) for every job: in this process (workers <= 1, no address), else on
    a Dask cluster (:func:`run_tasks`), where a job whose worker dies is run again elsewhere."""
    if workers > 1 or address:
        yield from run_tasks(fn, jobs, workers=workers, address=address, quiet=quiet, desc=desc)
        return
    from kws.progress import progress

    for job in progress(jobs, desc, quiet=quiet or len(jobs) < 2, unit="shard"):
        yield job, fn(*job)
