"""Null distributions of average precision under random rankings.

Under the null hypothesis the ``k`` positives of a query occupy a uniformly
random ``k``-subset of the ranks ``1..n``. :func:`null_distribution` returns
the AP of such random rankings:

* **exact** -- when the number of possible rankings ``C(n, k)`` is at most
  ``null_size``, every ``k``-subset is enumerated once (lexicographic order),
  giving the exact null distribution (each value equally likely);
* **sampled** -- otherwise ``null_size`` independent draws, returned in draw
  order (draw ``d`` is the same number whatever else is computed).

Determinism: the draws of a configuration depend only on its *key*
``(seed, null_size, n_total, n_pos, ALGORITHM_VERSION)``, hashed with
:class:`numpy.random.SeedSequence`; each draw has its own counter-based random
stream. Results are bit-identical across runs, thread counts, call order,
other configurations and cache state.
"""

from __future__ import annotations

import logging

import numpy as np

from pairmap._null_check import exact_recompute, sampled_recompute
from pairmap._parallel import thread_limits
from pairmap._typing import CacheSpec
from pairmap._validation import check_int, check_seed, parse_size

__all__ = [
    "ALGORITHM_VERSION",
    "check_null_memory",
    "exact_size",
    "null_distribution",
    "null_method",
]

logger = logging.getLogger(__name__)

#: Version of the sampling algorithm; part of every key and cache entry. Bump it
#: whenever the numbers produced for a key change.
ALGORITHM_VERSION = 1

_MAX_N = 2**32 - 1  # Lemire's 32-bit bounded integers


#: Environment variable: the most memory the null arrays of one call may take (a size).
ENV_MAX_NULL_MEMORY = "PAIRMAP_MAX_NULL_MEMORY"
#: Arrays of ``null_size`` float64 values alive at once in the worst case: the
#: draws, a sorted copy for counting, a group mean and the caller's copy.
NULL_COPIES = 4


def null_memory_limit() -> int:
    """Bytes the null arrays of one call may use: ``$PAIRMAP_MAX_NULL_MEMORY`` or half the RAM.

    Returns
    -------
    int

    Examples
    --------
    >>> null_memory_limit() > 0
    True
    """
    import os

    env = os.environ.get(ENV_MAX_NULL_MEMORY, "").strip()
    if env:
        try:
            return parse_size(env, ENV_MAX_NULL_MEMORY, minimum=1)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{ENV_MAX_NULL_MEMORY}: {exc}") from None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return 8 * 10**9


def check_null_memory(null_size: int) -> int:
    """Refuse a ``null_size`` whose null arrays cannot fit in memory, before computing anything.

    Parameters
    ----------
    null_size : int
        Requested draws per null.

    Returns
    -------
    int
        The estimated peak bytes (``NULL_COPIES * 8 * null_size``).

    Raises
    ------
    ValueError
        Naming ``null_size``, the estimate, the limit and how to change either.

    Examples
    --------
    >>> check_null_memory(10_000)
    320000
    """
    need = NULL_COPIES * 8 * null_size
    limit = null_memory_limit()
    if need > limit:
        raise ValueError(
            f"null_size={null_size} needs about {need / 1e9:.3g} GB of memory for its null "
            f"distributions ({NULL_COPIES} arrays of 8-byte values), more than the "
            f"{limit / 1e9:.3g} GB allowed (half the RAM, or ${ENV_MAX_NULL_MEMORY}). The "
            f"smallest p-value is 1/(null_size + 1), so null_size=1000000 already resolves "
            f"p = 1e-6: lower null_size, or raise ${ENV_MAX_NULL_MEMORY} (e.g. 64GB)"
        )
    return need


def _check_config(n_pos, n_total, null_size, seed) -> tuple[int, int, int, int]:
    n_pos = check_int("n_pos", n_pos, minimum=1)
    n_total = check_int("n_total", n_total, minimum=1)
    null_size = check_int("null_size", null_size, minimum=1)
    seed = check_seed(seed)
    if n_pos > n_total:
        raise ValueError(
            f"n_pos ({n_pos}) must not exceed n_total ({n_total}): a ranked list of "
            f"{n_total} items cannot hold {n_pos} positives"
        )
    if n_total > _MAX_N:
        raise ValueError(f"n_total must be < 2**32, got {n_total}")
    return n_pos, n_total, null_size, seed


def exact_size(n_pos: int, n_total: int, limit: int) -> int | None:
    """``C(n_total, n_pos)`` if it is at most ``limit``, else ``None``.

    Computed incrementally with an early exit, so it is cheap for huge lists.

    Parameters
    ----------
    n_pos, n_total : int
        Positives and list length.
    limit : int
        Largest count of interest (``null_size``).

    Returns
    -------
    int or None

    Examples
    --------
    >>> exact_size(3, 6, 100)
    20
    >>> exact_size(3, 1003, 10000) is None
    True
    """
    k = min(n_pos, n_total - n_pos)
    c = 1
    for i in range(1, k + 1):
        c = c * (n_total - k + i) // i
        if c > limit:
            return None
    return c if c <= limit else None


def null_method(n_pos: int, n_total: int, null_size: int) -> str:
    """``"exact"`` when ``C(n_total, n_pos) <= null_size``, else ``"sampled"``.

    Parameters
    ----------
    n_pos, n_total : int
        Positives and list length.
    null_size : int
        Requested number of draws.

    Returns
    -------
    str

    Examples
    --------
    >>> null_method(2, 10, 10000)
    'exact'
    >>> null_method(3, 1003, 10000)
    'sampled'
    """
    n_pos, n_total, null_size, _ = _check_config(n_pos, n_total, null_size, 0)
    return "exact" if exact_size(n_pos, n_total, null_size) is not None else "sampled"


def key_seed(seed: int, null_size: int, n_total: int, n_pos: int, ordinal: int = 0) -> np.uint64:
    """64-bit stream key of a null, derived from its key fields only.

    ``ordinal`` > 0 gives further independent streams for the same
    configuration (used by the ``"independent"`` group null).
    """
    entropy = [seed, null_size, n_total, n_pos, ALGORITHM_VERSION]
    if ordinal:
        entropy.append(ordinal)
    state = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)
    return np.uint64(state[0])


def _open_cache(cache):
    """The cache object for ``cache`` or ``None`` (disabled or cache package unavailable)."""
    if cache is False:
        return None
    try:
        from pairmap.cache import open_cache
    except ImportError:  # pragma: no cover - cache package missing
        logger.debug("pairmap.cache unavailable; computing nulls without a cache")
        return None
    return open_cache(cache)


def _null_key(method: str, seed: int, null_size: int, n_total: int, n_pos: int):
    from pairmap.cache import NullKey

    return NullKey(method, seed, null_size, n_total, n_pos, ALGORITHM_VERSION)


def _get_or_compute(
    cache_obj, method, seed, null_size, n_total, n_pos, compute, length, recompute=None
):
    if cache_obj is None:
        return compute()
    key = _null_key(method, seed, null_size, n_total, n_pos)
    arr = np.asarray(cache_obj.get_or_compute(key, compute, recompute=recompute), dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] != length:
        logger.warning(
            "cache returned %s values for %s, expected %d; recomputing", arr.shape, key, length
        )
        arr = compute()
    return arr


def sampled_draws(
    n_pos, n_total, null_size, seed, *, ordinal=0, cache_obj=None, n_threads=1, start=0, stop=None
) -> np.ndarray:
    """Draws ``start..stop-1`` of the sampled null (no enumeration shortcut).

    Internal building block: arguments must already be validated. A full range
    goes through the cache; a partial range is always computed directly (and is
    bit-identical to the same slice of the full array).
    """
    from pairmap._kernels.nulls import run_sample_null_aps

    stop = null_size if stop is None else stop
    key = key_seed(seed, null_size, n_total, n_pos, ordinal)

    def compute():
        return run_sample_null_aps(key, n_total, n_pos, start, stop - start, n_threads)

    if start != 0 or stop != null_size:
        return compute()

    recompute = sampled_recompute(key, n_total, n_pos)
    method = "sampled" if ordinal == 0 else f"sampled_m{ordinal}"
    return _get_or_compute(
        cache_obj, method, seed, null_size, n_total, n_pos, compute, null_size, recompute
    )


def exact_values(n_pos, n_total, null_size, seed, *, cache_obj=None) -> np.ndarray | None:
    """All ``C(n_total, n_pos)`` null APs (lexicographic subsets) or ``None`` if too many."""
    from pairmap._kernels.nulls import enumerate_null_aps

    total = exact_size(n_pos, n_total, null_size)
    if total is None:
        return None

    def compute():
        return enumerate_null_aps(n_total, n_pos, total)

    return _get_or_compute(
        cache_obj,
        "exact",
        seed,
        null_size,
        n_total,
        n_pos,
        compute,
        total,
        exact_recompute(n_total, n_pos, total),
    )


def null_distribution(
    n_pos: int,
    n_total: int,
    null_size: int = 10000,
    seed: int = 0,
    *,
    cache: CacheSpec = None,
    n_jobs: int | None = None,
) -> np.ndarray:
    """Average precision of random rankings of ``n_pos`` positives among ``n_total`` items.

    Parameters
    ----------
    n_pos : int
        Number of positives ``k`` (``>= 1``).
    n_total : int
        Length of the ranked list ``n`` (``k <= n < 2**32``).
    null_size : int, default 10000
        Number of draws (``>= 1``). When ``C(n, k) <= null_size`` the exact
        distribution is returned instead: all ``C(n, k)`` subsets, once each.
    seed : int, default 0
        Base seed (``0 <= seed < 2**64``).
    cache : None, str, path, False or NullCache, default None
        Null cache: ``None`` for the default location, a directory, an open
        cache, or ``False`` to disable caching.
    n_jobs : int or None, default None
        Threads for sampling (never changes the values).

    Returns
    -------
    numpy.ndarray
        float64 AP values: ``null_size`` draws in draw order (sampled), or
        the ``C(n, k)`` values of all subsets in lexicographic order (exact;
        see :func:`null_method`).

    Raises
    ------
    ValueError
        For out-of-range arguments, and for a ``null_size`` whose arrays would
        not fit in memory (:func:`check_null_memory`), before any work.

    Notes
    -----
    Each draw picks the positive ranks with Floyd's algorithm (cost grows
    with ``k``, not ``n``) from a private counter-based stream keyed by
    ``SeedSequence([seed, null_size, n_total, n_pos, ALGORITHM_VERSION])``
    and the draw index, and scores them with the engine's AP function, so
    null and observed APs agree bit for bit on equal rankings.

    Examples
    --------
    >>> import numpy as np
    >>> null = null_distribution(3, 1003, null_size=1000, seed=0, cache=False)
    >>> null.shape, null.dtype
    ((1000,), dtype('float64'))
    >>> np.sort(null_distribution(1, 3, cache=False))  # exact: ranks 1, 2, 3
    array([0.33333333, 0.5       , 1.        ])
    """
    n_pos, n_total, null_size, seed = _check_config(n_pos, n_total, null_size, seed)
    check_null_memory(null_size)
    cache_obj = _open_cache(cache)
    with thread_limits(n_jobs) as n_threads:
        arr = exact_values(n_pos, n_total, null_size, seed, cache_obj=cache_obj)
        if arr is None:
            arr = sampled_draws(
                n_pos, n_total, null_size, seed, cache_obj=cache_obj, n_threads=n_threads
            )
    logger.debug(
        "null n_pos=%d n_total=%d null_size=%d seed=%d: %d values",
        n_pos,
        n_total,
        null_size,
        seed,
        arr.shape[0],
    )
    return np.array(arr, dtype=np.float64, copy=True)
