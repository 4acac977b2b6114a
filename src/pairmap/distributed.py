"""Distributed runs on Dask: AP blocks as tasks, each null computed once into a shared cache.

``pairmap.average_precision(..., client=client)`` plans the run on the calling
process (validation, pairing codes, per-row norms: a few numbers per profile),
then sends contiguous slices of the engine's query order to the Dask workers
as tasks. Workers read the features themselves: a ``.npy`` path (or a
``np.load(..., mmap_mode="r")`` array) is memory-mapped on every worker, so it
must be on storage all workers see; in-memory features are sent to every worker
once. Every AP is computed by the same code from the same numbers as in a
single-machine run, so results are identical, whatever the number of workers,
and Dask re-runs the tasks of a worker that dies.

:func:`mean_average_precision` first computes every null distribution the AP
table needs as one task each, written to the shared on-disk null cache (give a
directory all workers can write), then runs
:func:`pairmap.mean_average_precision` against that cache.

``client`` is a ``distributed.Client``, a scheduler address
(``"tcp://host:8786"``) or ``"local"`` (a ``LocalCluster`` of this machine).
:func:`use` makes a client the default of every call inside a ``with`` block
(that is how ``pairmap run --dask`` works). Dask is optional:
``pip install "pairmap[dask]"``.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import ctypes
import functools
import logging
import math
import os
import threading
from collections.abc import Iterator

import numpy as np

from ._parallel import thread_limits
from .features import FeatureSource, _find_mmap

logger = logging.getLogger(__name__)

__all__ = [
    "LEAN_SETTINGS",
    "connect",
    "current_client",
    "lean_environment",
    "local_cluster",
    "mean_average_precision",
    "use",
]

#: queries per task at least (each task re-plans the buckets: O(n) work)
MIN_TASK_QUERIES = 2048
#: tasks per worker thread: with a dozen, workers finish within a small task of each other
#: (measured: 4 per thread left one of two workers idle ~1 s at the end); a task costs ~25 ms
#: of planning on 110k profiles
TASKS_PER_THREAD = 12

#: Dask settings for compute-bound pairmap workers: Dask's own monitoring sampled less often.
#: On a 2-core machine, with Dask's defaults, the event loops of the scheduler, the client and
#: the workers (stack sampling every 10 ms, event-loop ticks every 20 ms, memory checks every
#: 100 ms) used about 3.4 s of CPU during an 11-12 s two-worker run, time taken from the two
#: task threads; with these settings 0.7 s (benchmarks/bench_dask.py). Only what the
#: dashboard shows is coarser: the profile tab stays empty and memory is checked each second.
LEAN_SETTINGS = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
}

_default: contextvars.ContextVar = contextvars.ContextVar("pairmap_dask_client", default=None)


def _import_distributed():
    try:
        import distributed
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Dask is not installed: pip install 'pairmap[dask]' (dask and distributed)"
        ) from None
    return distributed


def connect(client):
    """A ``distributed.Client`` for ``client`` (a Client, an address or ``"local"``).

    Parameters
    ----------
    client : distributed.Client or str
        An existing client is returned as is; ``"local"`` starts a
        :func:`local_cluster` (one worker process per CPU, one thread each);
        any other string is a scheduler address.

    Returns
    -------
    distributed.Client

    Examples
    --------
    >>> connect(42)
    Traceback (most recent call last):
    ...
    TypeError: client must be a distributed.Client, a scheduler address or 'local', got 42
    """
    if not isinstance(client, str):
        if hasattr(client, "submit") and hasattr(client, "scatter"):
            return client
        raise TypeError(
            f"client must be a distributed.Client, a scheduler address or 'local', got {client!r}"
        )
    distributed = _import_distributed()
    if client == "local":
        return distributed.Client(local_cluster())
    return distributed.Client(client)


def lean_environment() -> dict[str, str]:
    """:data:`LEAN_SETTINGS` as environment variables, for workers started elsewhere.

    Dask reads ``DASK_*`` variables at start-up, so exporting these in a job
    script (dask-jobqueue's ``job_script_prologue``, a container, ``srun``) gives
    those workers the settings :func:`local_cluster` uses.

    Returns
    -------
    dict
        Variable name -> value.

    Examples
    --------
    >>> lean_environment()["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"]
    'False'
    """
    return {
        "DASK_" + key.upper().replace(".", "__").replace("-", "_"): str(value)
        for key, value in LEAN_SETTINGS.items()
    }


def local_cluster(n_workers: int | None = None, *, threads_per_worker: int = 1, **kwargs):
    """A Dask ``LocalCluster`` of worker processes, set up for pairmap's compute-bound tasks.

    The cluster is started with :data:`LEAN_SETTINGS` (Dask's profiler off, its
    monitoring sampled less often), which the worker processes inherit, and no
    dashboard unless ``dashboard_address`` is given. Close it when done (it is a
    context manager).

    Parameters
    ----------
    n_workers : int, optional
        Worker processes; default: the CPUs this process may use (affinity).
    threads_per_worker : int, default 1
        Threads per worker process.
    **kwargs
        Passed to ``distributed.LocalCluster`` (e.g. ``memory_limit``,
        ``dashboard_address=":8787"``).

    Returns
    -------
    distributed.LocalCluster

    Examples
    --------
    >>> local_cluster(0)
    Traceback (most recent call last):
    ...
    ValueError: n_workers must be a positive number of worker processes, got 0
    """
    if n_workers is None:
        from ._parallel import available_cpus

        n_workers = available_cpus()
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(
            f"n_workers must be a positive number of worker processes, got {n_workers!r}"
        )
    distributed = _import_distributed()
    import dask

    kwargs.setdefault("dashboard_address", None)
    kwargs.setdefault("processes", True)
    with dask.config.set(LEAN_SETTINGS):
        if kwargs["processes"]:  # also workers started later (replacing one that died):
            # each nanny hands this configuration to its worker process
            kwargs.setdefault("config", copy.deepcopy(dask.config.config))
        return distributed.LocalCluster(
            n_workers=n_workers, threads_per_worker=threads_per_worker, **kwargs
        )


@contextlib.contextmanager
def use(client) -> Iterator:
    """Make ``client`` the default Dask client of pairmap calls in this context.

    Parameters
    ----------
    client : distributed.Client or str
        As for :func:`connect`; a cluster started here is closed on exit.

    Yields
    ------
    distributed.Client

    Examples
    --------
    >>> current_client() is None
    True
    """
    owned = isinstance(client, str)
    client = connect(client)
    token = _default.set(client)
    try:
        yield client
    finally:
        _default.reset(token)
        if owned:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()


def current_client():
    """The client set by :func:`use`, or None."""
    return _default.get()


# ----------------------------------------------------------------------------- features
class _Shipped:
    """Data sent to every worker once (scattered as one object)."""

    def __init__(self, data, columns=None):
        self.data = data
        self.columns = columns


def _recipe(source: FeatureSource, client):
    """How a worker gets the features: a ``.npy`` path to map, or a scattered object."""
    data = source.data
    filename = getattr(data, "filename", None)
    if (
        source._columns is None
        and _find_mmap(data) is not None
        and filename
        and str(filename).endswith(".npy")
    ):
        again = np.load(filename, mmap_mode="r")
        if (again.shape, again.dtype, again.strides, again.offset) == (
            data.shape,
            data.dtype,
            data.strides,
            data.offset,
        ):
            return ("npy", os.fspath(filename))
    shipped = _Shipped(None if source._columns is not None else np.asarray(data), source._columns)
    return ("scattered", client.scatter(shipped, broadcast=True, hash=False))


@functools.lru_cache(maxsize=8)
def _open_npy(path: str):
    return np.load(path, mmap_mode="r")


def _worker_source(recipe, rows, center, means) -> FeatureSource:
    kind, payload = recipe
    if kind == "npy":
        return FeatureSource(_open_npy(payload), None, rows, center, means)
    return FeatureSource(payload.data, None, rows, center, means, payload.columns)


#: glibc ``mallopt`` parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_alloc_lock = threading.Lock()
_alloc_users = 0


def _libc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc
        return None


@contextlib.contextmanager
def reuse_freed_memory() -> Iterator[None]:
    """Let glibc reuse freed memory while pairmap tasks run on this worker.

    Dask starts worker processes with ``MALLOC_TRIM_THRESHOLD_=65536`` so that
    they hand memory back to the operating system. The engine allocates and
    frees large temporaries (matrix-product blocks, masks) for every work item;
    with that setting each one is mapped and page-faulted afresh, which made a
    worker about 25% slower than the same work in a plain process. While a task
    runs, freed blocks up to 32 MiB stay in the process for reuse; afterwards
    the worker's settings are restored and the free memory is handed back
    (``malloc_trim``). Does nothing off glibc or without that variable.
    """
    global _alloc_users
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    libc = _libc() if trim is not None and trim.isdigit() else None
    if libc is None:
        yield
        return
    with _alloc_lock:
        _alloc_users += 1
        if _alloc_users == 1:
            libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
            libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
    try:
        yield
    finally:
        with _alloc_lock:
            _alloc_users -= 1
            if _alloc_users == 0:
                libc.mallopt(_M_TRIM_THRESHOLD, int(trim))
                libc.mallopt(_M_MMAP_THRESHOLD, 128 << 10)  # glibc's default
                libc.malloc_trim(0)


def _ap_task(recipe, shared, prep_info, rules, blocks, options):
    """Score whole blocks of the plan on a worker; returns (rows, ap, n_pos, n_total, totals)."""
    from threadpoolctl import threadpool_limits

    from ._retrieval import MetricSpec, compute_average_precision
    from .similarity import PreparedFeatures

    codes, rows, means, inv_norm, sq_norm = shared.data
    metric, gemm, func, name, center = prep_info
    extra = options.get("metrics")  # (kinds, cuts) of the metrics= columns, or None
    spec = (
        None
        if extra is None
        else MetricSpec(extra[0], extra[1], np.full((codes.shape[0], len(extra[0])), np.nan))
    )
    source = _worker_source(recipe, rows, center, means)
    prep = PreparedFeatures(source.direct, metric, inv_norm, sq_norm, gemm, func, name, source)
    with thread_limits(1), threadpool_limits(limits=1), reuse_freed_memory():
        ap, n_pos, n_total, totals = compute_average_precision(
            prep,
            codes,
            *rules,
            ties_expected=options["ties_expected"],
            max_memory=options["max_memory"],
            batch_size=options["batch_size"],
            n_workers=1,
            blocks=blocks,
            plan_workers=options["plan_workers"],
            metrics=spec,
        )
    queries = np.concatenate(blocks)
    values = None if spec is None else spec.out[queries]
    return queries, ap[queries], n_pos[queries], n_total[queries], totals, values


def _task_groups(blocks: list, n_threads: int) -> list[list]:
    """Consecutive runs of whole blocks, about ``TASKS_PER_THREAD`` tasks per worker thread."""
    n_queries = sum(len(b) for b in blocks)
    n_tasks = max(
        1, min(len(blocks), math.ceil(n_queries / MIN_TASK_QUERIES), TASKS_PER_THREAD * n_threads)
    )
    sizes = np.cumsum([len(b) for b in blocks])
    cut = np.searchsorted(sizes, np.linspace(0, n_queries, n_tasks + 1)[1:-1], side="left")
    edges = sorted(set([0, *(int(c) + 1 for c in cut), len(blocks)]))
    return [blocks[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def compute_on_dask(
    client,
    prep,
    codes,
    pos_rule,
    neg_rule,
    *,
    ties_expected,
    max_memory,
    batch_size,
    plan_workers,
    progress=None,
    metrics=None,
):
    """The Dask counterpart of :func:`pairmap._retrieval.compute_average_precision`.

    The blocks are planned here for ``plan_workers`` threads and handed out
    whole, so the result equals a single-machine run. ``metrics`` (a
    :class:`pairmap._retrieval.MetricSpec`) is filled in place, as there.
    """
    from ._retrieval import plan_blocks

    distributed = _import_distributed()
    client = connect(client)
    n = codes.shape[0]
    ap = np.full(n, np.nan)
    n_pos = np.zeros(n, dtype=np.int64)
    n_total = np.zeros(n, dtype=np.int64)
    totals = {"pos": 0, "neg": 0}
    blocks = plan_blocks(
        prep,
        codes,
        pos_rule,
        neg_rule,
        max_memory=max_memory,
        batch_size=batch_size,
        n_workers=plan_workers,
    )
    if not blocks:
        return ap, n_pos, n_total, totals
    threads = client.nthreads()
    source = prep.source
    recipe = _recipe(source, client)
    shared = client.scatter(
        _Shipped((codes, source.rows, source._means, prep.inv_norm, prep.sq_norm)),
        broadcast=True,
        hash=False,
    )
    prep_info = (prep.metric, prep.gemm, prep.func, prep.name, source.center)
    options = dict(
        ties_expected=ties_expected,
        max_memory=max_memory,
        batch_size=batch_size,
        plan_workers=plan_workers,
        metrics=None if metrics is None else (metrics.kinds, metrics.cuts),
    )
    groups = _task_groups(blocks, sum(threads.values()) or 1)
    logger.info(
        "average_precision on Dask: %d blocks in %d tasks over %d workers",
        len(blocks),
        len(groups),
        len(threads),
    )
    futures = [
        client.submit(
            _ap_task,
            recipe,
            shared,
            prep_info,
            (pos_rule, neg_rule),
            group,
            options,
            pure=False,
            key=f"pairmap-ap-{i}-{os.urandom(4).hex()}",
        )
        for i, group in enumerate(groups)
    ]
    try:
        for fut in distributed.as_completed(futures):
            rows, b_ap, b_np, b_nt, b_totals, b_metrics = fut.result()
            ap[rows], n_pos[rows], n_total[rows] = b_ap, b_np, b_nt
            if metrics is not None:
                metrics.out[rows] = b_metrics
            totals["pos"] += b_totals["pos"]
            totals["neg"] += b_totals["neg"]
            if progress is not None:
                progress(len(rows))
    finally:  # on an error, do not leave the other tasks running
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
    return ap, n_pos, n_total, totals


# ----------------------------------------------------------------------------- nulls
def _null_task(n_pos, n_total, null_size, seed, cache):
    from .nulls import null_distribution

    null_distribution(n_pos, n_total, null_size, seed, cache=cache)
    return n_pos, n_total


def mean_average_precision(
    ap_scores,
    sameby,
    *,
    client=None,
    cache=None,
    null_size=10000,
    seed=0,
    progress_bar=True,
    **kwargs,
):
    """:func:`pairmap.mean_average_precision` with the null distributions computed on Dask.

    Every distinct (positives, list length) configuration of the AP table is
    one task that writes its null to ``cache``; the p-values are then computed
    here from the cache, exactly as without Dask.

    Parameters
    ----------
    ap_scores, sameby, null_size, seed, progress_bar, **kwargs
        As for :func:`pairmap.mean_average_precision`.
    client : distributed.Client or str, optional
        Default: the client of :func:`use`; without one, nothing is distributed.
    cache : str or os.PathLike, optional
        Null cache directory shared by the workers and this process (default:
        the default cache location, which must then be shared).

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> import pandas as pd
    >>> ap = pd.DataFrame({"g": ["a", "a"], "average_precision": [1.0, 0.5],
    ...                    "n_pos_pairs": [1, 1], "n_total_pairs": [3, 3]})
    >>> mean_average_precision(ap, "g", cache=False, progress_bar=False)["p_value"].round(3).tolist()
    [0.333]
    """
    from .significance import mean_average_precision as single

    client = client if client is not None else current_client()
    kwargs.update(cache=cache, null_size=null_size, seed=seed, progress_bar=progress_bar)
    if client is None:
        return single(ap_scores, sameby, **kwargs)
    with use(client):  # the nulls are precomputed by the hook in the single-machine function
        return single(ap_scores, sameby, **kwargs)


def precompute_for_current_client(ap_scores, cache, null_size, seed) -> None:
    """Hook of :func:`pairmap.mean_average_precision`: nulls on Dask inside :func:`use`."""
    client = current_client()
    if client is not None and cache is not False:
        precompute_nulls(ap_scores, client=client, cache=cache, null_size=null_size, seed=seed)


def _shared_cache_location(cache):
    """The cache as something workers can open: this process's directory, never its default.

    Workers may see other environment variables, so ``None`` (the default location)
    is resolved here; an open cache object is passed by its directory.
    """
    if isinstance(cache, (str, os.PathLike)):
        return os.fspath(cache)
    from .nulls import _open_cache

    opened = _open_cache(cache)
    path = getattr(opened, "path", None)
    if path is None:
        raise ValueError(
            "distributed nulls need an on-disk cache that every worker can reach; pass "
            "cache='/shared/dir' (or cache=False to compute the nulls on this machine)"
        )
    return os.fspath(path)


def precompute_nulls(ap_scores, *, client, cache=None, null_size=10000, seed=0) -> int:
    """Compute every null the AP table needs on Dask, once each, into ``cache``; returns count."""
    distributed = _import_distributed()
    client = connect(client)
    k = np.asarray(ap_scores["n_pos_pairs"])
    n = np.asarray(ap_scores["n_total_pairs"])
    ok = (k > 0) & (n > k) & np.isfinite(np.asarray(ap_scores["average_precision"], float))
    confs = np.unique(np.stack([k[ok], n[ok]], axis=1).astype(np.int64), axis=0)
    cache_arg = _shared_cache_location(cache)
    futures = [
        client.submit(_null_task, int(a), int(b), null_size, seed, cache_arg, pure=False)
        for a, b in confs
    ]
    for fut in distributed.as_completed(futures):
        fut.result()
    logger.info("computed %d null distributions on Dask into the shared cache", len(confs))
    return len(confs)
