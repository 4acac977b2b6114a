"""Orders and ranks of small non-negative integer keys by counting (compiled; pure arrays).

Group codes are dense integers (0 .. n_groups - 1), so rows can be ordered by them
with counting sorts: two linear passes per key instead of a comparison sort whose
cost grows when rows arrive in random order. Every order here is stable (ties keep
row order), so results equal those of ``np.argsort(kind="stable")``,
``np.lexsort`` and ``np.unique(return_inverse=True)`` on the same keys.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _counting_pass(keys, n_keys, order, out):
    """``out``: ``order`` stably re-sorted by ``keys[order]`` (keys in ``0..n_keys-1``)."""
    starts = np.zeros(n_keys + 1, dtype=np.int64)
    for i in range(order.shape[0]):
        starts[keys[order[i]] + 1] += 1
    for k in range(n_keys):
        starts[k + 1] += starts[k]
    for i in range(order.shape[0]):
        r = order[i]
        k = keys[r]
        out[starts[k]] = r
        starts[k] += 1


@numba.njit(cache=True, nogil=True)
def lex_order(keys, n_keys):
    """Rows ordered by ``keys[0]``, then ``keys[1]``, ... (stable: then by row).

    ``keys``: (n_levels, n) int64, level ``j`` in ``0..n_keys[j]-1``; the same
    order as ``np.lexsort(keys[::-1])``.
    """
    n = keys.shape[1]
    order = np.arange(n, dtype=np.int64)
    tmp = np.empty(n, dtype=np.int64)
    for j in range(keys.shape[0] - 1, -1, -1):  # least significant level first
        _counting_pass(keys[j], n_keys[j], order, tmp)
        order, tmp = tmp, order
    return order


@numba.njit(cache=True, nogil=True)
def lex_ranks(keys, n_keys):
    """Dense rank of every row's key tuple ``keys[:, row]`` among the distinct tuples.

    Tuples are compared level by level (``keys[0]`` first), so the ranks equal
    ``np.unique`` of the tuples packed into one integer (``return_inverse=True``).
    """
    n = keys.shape[1]
    out = np.empty(n, dtype=np.int64)
    if n == 0:
        return out
    order = lex_order(keys, n_keys)
    rank = 0
    out[order[0]] = 0
    for i in range(1, n):
        a, b = order[i - 1], order[i]
        for j in range(keys.shape[0]):
            if keys[j, a] != keys[j, b]:
                rank += 1
                break
        out[b] = rank
    return out
