"""Numba kernels for percent replicating / percent strong: ranks, pair correlations, medians."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, parallel=True)
def row_average_ranks(X, out):
    """1-based ranks of every row's values, tied values sharing their average rank (Spearman)."""
    n, d = X.shape
    for i in numba.prange(n):
        order = np.argsort(X[i], kind="mergesort")
        a = 0
        while a < d:
            b = a + 1
            while b < d and X[i, order[b]] == X[i, order[a]]:
                b += 1
            r = 0.5 * (a + b + 1)  # mean of the 1-based positions a+1 .. b
            for t in range(a, b):
                out[i, order[t]] = r
            a = b


@numba.njit(cache=True, nogil=True, parallel=True)
def standardize_rows(X, out):
    """``out[i] = (X[i] - mean) / norm`` in float64; returns the rows with zero variance."""
    n, d = X.shape
    flat = np.zeros(n, dtype=np.bool_)
    for i in numba.prange(n):
        constant = True  # exactly constant rows (a rounded mean would hide them)
        for f in range(1, d):
            if X[i, f] != X[i, 0]:
                constant = False
                break
        if constant:
            flat[i] = True
            continue
        mean = 0.0
        for f in range(d):
            mean += X[i, f]
        mean /= d
        ss = 0.0
        for f in range(d):
            t = X[i, f] - mean
            out[i, f] = t
            ss += t * t
        inv = 1.0 / np.sqrt(ss)
        for f in range(d):
            out[i, f] *= inv
    return np.flatnonzero(flat)


@numba.njit(cache=True, nogil=True, parallel=True)
def pair_dots(Z, a, b, out):
    """``out[p] = Z[a[p]] . Z[b[p]]`` accumulated in float64."""
    d = Z.shape[1]
    for p in numba.prange(a.shape[0]):
        i, j = a[p], b[p]
        acc = 0.0
        for f in range(d):
            acc += Z[i, f] * Z[j, f]
        out[p] = acc


@numba.njit(cache=True, nogil=True)
def segment_medians(values, starts, out):
    """Median of each segment ``values[starts[g]:starts[g+1]]`` (sorted ascending; NaN if empty).

    Even-sized segments take the mean of the two middle values, like pandas
    and NumPy.
    """
    for g in range(starts.shape[0] - 1):
        lo, hi = starts[g], starts[g + 1]
        size = hi - lo
        if size == 0:
            out[g] = np.nan
        elif size % 2:
            out[g] = values[lo + size // 2]
        else:
            out[g] = 0.5 * (values[lo + size // 2 - 1] + values[lo + size // 2])
