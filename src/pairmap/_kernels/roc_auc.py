"""Numba kernels: ROC-AUC of random rankings (the Mann-Whitney null), drawn like the AP null.

Draw ``d`` of the null keyed by ``key`` picks its ``k``-subset of ranks with
exactly the counter-based stream and Floyd sampler of
:mod:`pairmap._kernels.nulls`, so the ROC-AUC null and the AP null of a
configuration are computed on the same random rankings, and a draw never
depends on threads, chunking or other draws.

For ranks ``r_1 < ... < r_k`` (1 = most similar) of the positives among ``n``
items, ``m = n - k`` negatives, U = (negatives ranked below each positive,
summed) = ``k n - sum(r) - k (k - 1) / 2`` and ROC-AUC = ``U / (k m)``. The
engine computes an observed AUC as ``U / (k * m)`` with the same float64
operations, so equal rankings give bit-identical values.
"""

from __future__ import annotations

import numba
import numpy as np

from pairmap._kernels.nulls import (
    _STREAM_GAMMA,
    MARKER_MAX_N,
    SMALL_K,
    _draw_large,
    _draw_small,
    _mix64,
)


@numba.njit(cache=True, nogil=True)
def auc_from_ranks(ranks, n, k):
    """ROC-AUC of a list of ``n`` items whose ``k`` positives have the 1-based ``ranks``."""
    total = 0
    for i in range(k):
        total += ranks[i]
    u = k * n - total - k * (k - 1) // 2
    return float(u) / (k * (n - k))


@numba.njit(cache=True, nogil=True)
def _sample_block(key, n, k, d_start, d_stop, out, out_offset):
    buf = np.empty(k, dtype=np.int64)
    use_marker = k > SMALL_K and n <= MARKER_MAX_N
    marker = np.zeros(n + 1 if use_marker else 1, dtype=np.uint8)
    for d in range(d_start, d_stop):
        state = _mix64(key + np.uint64(d) * _STREAM_GAMMA)
        if use_marker:
            _draw_large(state, n, k, buf, marker)
        else:
            _draw_small(state, n, k, buf)
        out[d - out_offset] = auc_from_ranks(buf, n, k)


@numba.njit(cache=True, nogil=True, parallel=True)
def sample_null_aucs(key, n, k, d_start, n_draws, n_blocks):
    """ROC-AUC of draws ``d_start .. d_start + n_draws - 1`` (``1 <= k < n < 2**32``)."""
    out = np.empty(n_draws, dtype=np.float64)
    if n_draws == 0:
        return out
    n_blocks = max(1, min(n_blocks, n_draws))
    step = (n_draws + n_blocks - 1) // n_blocks
    for b in numba.prange(n_blocks):
        lo = b * step
        hi = min(n_draws, lo + step)
        if lo < hi:
            _sample_block(key, n, k, d_start + lo, d_start + hi, out, d_start)
    return out
