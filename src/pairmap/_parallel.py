"""Thread-count resolution and limits (numba threads, BLAS threads).

Every compute entry point calls :func:`thread_limits` so that pairmap never
oversubscribes the machine: ``n_jobs`` is capped by the CPU affinity mask,
numba's parallel kernels use at most that many threads and BLAS libraries are
limited through threadpoolctl while pairmap runs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from ._validation import check_int

__all__ = ["available_cpus", "resolve_n_jobs", "thread_limits"]


def available_cpus() -> int:
    """Number of CPUs this process may run on (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def resolve_n_jobs(n_jobs: int | None) -> int:
    """Turn a user ``n_jobs`` into a positive thread count.

    ``None`` means all CPUs this process may use; negative values count back
    from that number (``-1`` = all, ``-2`` = all but one), as in scikit-learn.

    Parameters
    ----------
    n_jobs : int or None
        Requested number of threads.

    Returns
    -------
    int
        A thread count between 1 and the number of available CPUs.

    Examples
    --------
    >>> resolve_n_jobs(1)
    1
    """
    cpus = available_cpus()
    if n_jobs is None:
        return cpus
    n_jobs = check_int("n_jobs", n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs=0 is not valid: use None (all CPUs), a positive count, or -1")
    if n_jobs < 0:
        return max(1, cpus + 1 + n_jobs)
    return min(n_jobs, cpus)


@contextlib.contextmanager
def thread_limits(n_jobs: int | None, *, compiled: bool = True) -> Iterator[int]:
    """Limit numba and BLAS threads to ``n_jobs`` for the duration of a block.

    Yields the resolved thread count. ``compiled=False`` (NumPy-only work)
    limits BLAS alone and does not import numba.
    """
    from threadpoolctl import threadpool_limits

    n = resolve_n_jobs(n_jobs)
    if not compiled:
        with threadpool_limits(limits=n):
            yield n
        return
    import numba

    n = min(n, numba.config.NUMBA_NUM_THREADS)
    previous = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield n
    finally:
        numba.set_num_threads(previous)
