"""Recompute chosen values of a null distribution, to verify cached copies.

Nulls are deterministic in their key, and any single value is cheap to
recompute: draw ``d`` of a sampled null comes from its own counter-based
stream, and value ``i`` of an exact null is the AP of the ``i``-th positive
set in lexicographic order (unranked directly, without enumerating the others).
The cache (:func:`pairmap.cache.base.spot_check`) compares a random sample of
a stored entry with these recomputations before trusting it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["exact_recompute", "recompute_for_key", "sampled_recompute", "unrank_subset"]

#: Above this many positives, exact entries are checked by a full recomputation.
UNRANK_MAX_POS = 64

Recompute = Callable[[np.ndarray], np.ndarray]


def sampled_recompute(stream: np.uint64, n_total: int, n_pos: int) -> Recompute:
    """``recompute(positions)``: the draws at ``positions`` of the sampled null ``stream``.

    Examples
    --------
    >>> from pairmap.nulls import key_seed, null_distribution
    >>> full = null_distribution(3, 1003, null_size=100, cache=False)
    >>> again = sampled_recompute(key_seed(0, 100, 1003, 3), 1003, 3)(np.array([7, 42]))
    >>> bool((again == full[[7, 42]]).all())
    True
    """

    def recompute(positions: np.ndarray) -> np.ndarray:
        from pairmap._kernels.nulls import sample_null_aps_at

        return sample_null_aps_at(stream, n_total, n_pos, np.asarray(positions, dtype=np.int64))

    return recompute


def unrank_subset(index: int, n: int, k: int) -> np.ndarray:
    """1-based ranks of the ``index``-th ``k``-subset of ``1..n`` in lexicographic order.

    Examples
    --------
    >>> unrank_subset(0, 5, 2).tolist(), unrank_subset(9, 5, 2).tolist()
    ([1, 2], [4, 5])
    """
    ranks = np.empty(k, dtype=np.int64)
    prev = 0
    for j in range(k):
        r = k - j  # items still to place, the first of them now
        lo, hi = prev + 1, n - r + 1
        # smallest v such that more than ``index`` subsets start in prev+1..v
        while lo < hi:
            mid = (lo + hi) // 2
            if math.comb(n - prev, r) - math.comb(n - mid, r) > index:
                hi = mid
            else:
                lo = mid + 1
        index -= math.comb(n - prev, r) - math.comb(n - lo + 1, r)
        ranks[j] = prev = lo
    return ranks


def exact_recompute(n_total: int, n_pos: int, total: int) -> Recompute:
    """``recompute(positions)``: the values at ``positions`` of the exact null.

    Examples
    --------
    >>> exact_recompute(3, 1, 3)(np.array([0, 2])).tolist()  # positive at rank 1, at rank 3
    [1.0, 0.3333333333333333]
    """

    def recompute(positions: np.ndarray) -> np.ndarray:
        from pairmap._kernels.ap import ap_from_ranks
        from pairmap._kernels.nulls import enumerate_null_aps

        positions = np.asarray(positions, dtype=np.int64)
        if n_pos > UNRANK_MAX_POS:
            return enumerate_null_aps(n_total, n_pos, total)[positions]
        return np.array(
            [ap_from_ranks(unrank_subset(int(p), n_total, n_pos), n_pos) for p in positions],
            dtype=np.float64,
        )

    return recompute


def recompute_for_key(key) -> Recompute | None:
    """The recomputation of a cache key's values, or ``None`` if this pairmap cannot make it.

    Keys of another algorithm version or an unknown method give ``None``.

    Parameters
    ----------
    key : pairmap.cache.NullKey

    Returns
    -------
    callable or None

    Examples
    --------
    >>> from pairmap.cache import NullKey
    >>> from pairmap.nulls import null_distribution
    >>> f = recompute_for_key(NullKey("sampled", 0, 100, 1003, 3, 1))
    >>> bool(f(np.array([5]))[0] == null_distribution(3, 1003, null_size=100, cache=False)[5])
    True
    """
    from pairmap.nulls import ALGORITHM_VERSION, exact_size, key_seed

    if key.algorithm_version != ALGORITHM_VERSION or key.n_pos < 1:
        return None
    if key.method.startswith("auc_"):  # ROC-AUC nulls (pairmap.roc_auc)
        from pairmap.roc_auc import auc_recompute

        return auc_recompute(key)
    if key.method == "exact":
        total = exact_size(key.n_pos, key.n_total, key.null_size)
        return None if total is None else exact_recompute(key.n_total, key.n_pos, total)
    if key.method == "sampled":
        ordinal = 0
    elif key.method.startswith("sampled_m") and key.method[9:].isdigit():
        ordinal = int(key.method[9:])
    else:
        return None
    if key.null_size < 1 or key.n_total >= 2**32:
        return None
    stream = key_seed(key.seed, key.null_size, key.n_total, key.n_pos, ordinal)
    return sampled_recompute(stream, key.n_total, key.n_pos)
