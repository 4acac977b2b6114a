"""Per-row statistics of a feature matrix in one read (compiled; pure array code).

Every row gets its sum of squares, its sum and its projection on two fixed
directions, all accumulated in float64 with the features added one after the
other in column order. No reassociation is allowed (no ``fastmath``), so each
value is the same sequential sum whatever the memory order of the input:
:func:`row_stats` reads C-ordered row blocks, :func:`row_stats_transposed`
reads the transpose of a Fortran-ordered matrix in place (no copy, no
transposition), and both give identical bits. Vectorization runs across rows,
never across one row's features.
"""

from __future__ import annotations

import numba
import numpy as np

#: rows accumulated together (the accumulators stay in the first-level cache)
_TILE_C = 32
_TILE_T = 256


@numba.njit(cache=True, nogil=True, inline="always")
def _add4(s, v0, v1, v2, v3, w0, w1, w2, w3):
    """``s`` plus four products, added one after the other (a fixed order: no fastmath)."""
    s += v0 * w0
    s += v1 * w1
    s += v2 * w2
    s += v3 * w3
    return s


@numba.njit(cache=True, nogil=True, inline="always")
def _accumulate(T, off, m, R, acc, sums, p0, p1):
    """Add features ``0..d-1`` of columns ``off..off+m-1`` of ``T`` (d x rows), in order.

    Sums add ``v * 1.0``, which is ``v`` exactly, so every statistic is one
    sequential sum of products.
    """
    d = T.shape[0]
    f = 0
    while f + 4 <= d:  # four features per pass: fewer accumulator loads and stores
        a0, a1 = np.float64(R[f, 0]), np.float64(R[f + 1, 0])
        a2, a3 = np.float64(R[f + 2, 0]), np.float64(R[f + 3, 0])
        b0, b1 = np.float64(R[f, 1]), np.float64(R[f + 1, 1])
        b2, b3 = np.float64(R[f + 2, 1]), np.float64(R[f + 3, 1])
        x0, x1, x2, x3 = T[f], T[f + 1], T[f + 2], T[f + 3]
        for t in range(m):
            v0 = np.float64(x0[off + t])
            v1 = np.float64(x1[off + t])
            v2 = np.float64(x2[off + t])
            v3 = np.float64(x3[off + t])
            acc[t] = _add4(acc[t], v0, v1, v2, v3, v0, v1, v2, v3)
            sums[t] = _add4(sums[t], v0, v1, v2, v3, 1.0, 1.0, 1.0, 1.0)
            p0[t] = _add4(p0[t], v0, v1, v2, v3, a0, a1, a2, a3)
            p1[t] = _add4(p1[t], v0, v1, v2, v3, b0, b1, b2, b3)
        f += 4
    while f < d:
        a0 = np.float64(R[f, 0])
        b0 = np.float64(R[f, 1])
        x0 = T[f]
        for t in range(m):
            v0 = np.float64(x0[off + t])
            acc[t] += v0 * v0
            sums[t] += v0
            p0[t] += v0 * a0
            p1[t] += v0 * b0
        f += 1


@numba.njit(cache=True, nogil=True)
def row_stats(X, R, sq_out, sum_out, proj_out):
    """Sum of squares, sum and ``X @ R`` of every row of a C-ordered block ``X``.

    Tiles of rows are transposed into a small buffer (in cache), then
    accumulated feature by feature; see the module documentation.
    """
    n, d = X.shape
    buf = np.empty((d, _TILE_C), dtype=X.dtype)
    acc = np.empty(_TILE_C)
    sums = np.empty(_TILE_C)
    p0 = np.empty(_TILE_C)
    p1 = np.empty(_TILE_C)
    for a in range(0, n, _TILE_C):
        m = min(n, a + _TILE_C) - a
        for t in range(m):
            for f in range(d):
                buf[f, t] = X[a + t, f]
        acc[:] = 0.0
        sums[:] = 0.0
        p0[:] = 0.0
        p1[:] = 0.0
        _accumulate(buf, 0, m, R, acc, sums, p0, p1)
        for t in range(m):
            sq_out[a + t] = acc[t]
            sum_out[a + t] = sums[t]
            proj_out[a + t, 0] = p0[t]
            proj_out[a + t, 1] = p1[t]


@numba.njit(cache=True, nogil=True)
def row_stats_transposed(T, start, stop, R, sq_out, sum_out, proj_out):
    """:func:`row_stats` of rows ``start:stop`` of ``T.T`` (``T``: d x n, C-ordered).

    ``T`` is the transpose of a Fortran-ordered matrix, read in place; the
    outputs hold ``stop - start`` rows.
    """
    acc = np.empty(_TILE_T)
    sums = np.empty(_TILE_T)
    p0 = np.empty(_TILE_T)
    p1 = np.empty(_TILE_T)
    for a in range(start, stop, _TILE_T):
        m = min(stop, a + _TILE_T) - a
        acc[:] = 0.0
        sums[:] = 0.0
        p0[:] = 0.0
        p1[:] = 0.0
        _accumulate(T, a, m, R, acc, sums, p0, p1)
        for t in range(m):
            sq_out[a - start + t] = acc[t]
            sum_out[a - start + t] = sums[t]
            proj_out[a - start + t, 0] = p0[t]
            proj_out[a - start + t, 1] = p1[t]
