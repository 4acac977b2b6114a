"""All similarities of a small screen at once, in float64 (pure NumPy).

See :mod:`pairmap._small`. The matrix is exactly symmetric and snapped to the
engine's tie grid (multiples of 2**-36).
"""

from __future__ import annotations

import numpy as np

from .. import _codes as C

#: pairs recomputed per chunk for near-cancelling euclidean distances
_PAIR_CHUNK = 4096


def snap_inplace(S: np.ndarray) -> np.ndarray:
    """Round ``S`` to the tie grid in place, as the kernels' ``snap`` does; returns ``S``.

    Examples
    --------
    >>> bool(snap_inplace(np.array([0.1]))[0] == np.floor(0.1 * 2**36 + 0.5) / 2**36)
    True
    """
    S *= C.SNAP
    S += 0.5
    np.floor(S, out=S)
    S *= 1.0 / C.SNAP
    return S


def similarity_matrix(X: np.ndarray, metric: int):
    """``(S, X64, inv_norm, zero)``: the snapped (n, n) similarities of the rows of ``X``.

    Parameters
    ----------
    X : numpy.ndarray
        (n, d) finite features, any float dtype.
    metric : int
        ``COSINE``, ``ABS_COSINE``, ``CORRELATION`` or ``EUCLIDEAN`` of
        :mod:`pairmap._codes`.

    Returns
    -------
    S : numpy.ndarray
        (n, n) float64, symmetric; the diagonal is not meaningful.
    X64 : numpy.ndarray
        The features as the similarity sees them (float64, row-centred for
        correlation).
    inv_norm : numpy.ndarray
        1 / row norm (0 for a zero row) for the angular metrics, else empty.
    zero : numpy.ndarray
        Rows with zero norm (zero variance for correlation): similarity 0 to all.

    Examples
    --------
    >>> S, _, inv, zero = similarity_matrix(np.array([[1.0, 0.0], [1.0, 1.0]]), C.COSINE)
    >>> round(float(S[0, 1]), 6), zero.tolist()
    (0.707107, [False, False])
    """
    X64 = np.array(X, dtype=np.float64, order="C")
    n = X64.shape[0]
    constant = np.zeros(n, dtype=bool)
    if metric == C.CORRELATION:
        constant = np.all(X64 == X64[:, :1], axis=1)  # exactly zero variance
        X64 -= X64.mean(axis=1, keepdims=True)
        X64[constant] = 0.0
    sq = np.einsum("ij,ij->i", X64, X64)
    G = X64 @ X64.T
    lower = np.tril_indices(n, -1)
    G[lower] = G.T[lower]  # exactly symmetric, whatever the BLAS did
    if metric == C.EUCLIDEAN:
        S = _euclidean(X64, G, sq)
        return snap_inplace(S), X64, np.empty(0), np.zeros(n, dtype=bool)
    zero = (sq == 0.0) | constant
    inv = np.zeros(n)
    inv[~zero] = 1.0 / np.sqrt(sq[~zero])
    G *= np.multiply.outer(inv, inv)  # inv[i] * inv[j] is symmetric
    if metric == C.ABS_COSINE:
        np.abs(G, out=G)
    return snap_inplace(G), X64, inv, zero


def _euclidean(X64, G, sq):
    """Similarities 1 / (1 + d) from the Gram matrix, recomputing near-cancelling pairs."""
    s2 = np.add.outer(sq, sq)
    G *= -2.0
    G += s2  # d^2
    near = np.triu(G < C.EUCLID_RECOMPUTE * s2, 1)
    del s2
    ii, jj = np.nonzero(near)
    for start in range(0, len(ii), _PAIR_CHUNK):
        i, j = ii[start : start + _PAIR_CHUNK], jj[start : start + _PAIR_CHUNK]
        diff = X64[i] - X64[j]
        d2 = np.einsum("ij,ij->i", diff, diff)
        G[i, j] = d2
        G[j, i] = d2
    np.maximum(G, 0.0, out=G)
    np.sqrt(G, out=G)
    G += 1.0
    np.reciprocal(G, out=G)
    return G
