"""Closed-form quantities of random rankings (vectorized, pure NumPy)."""

from __future__ import annotations

import numpy as np

__all__ = ["expected_random_ap", "normalize_ap"]


def expected_random_ap(n_pos, n_total) -> np.ndarray:
    """Expected AP of a uniformly random ranking of ``n_pos`` positives among ``n_total`` items.

    mu0 = (1/L) * [ (M-1)/(L-1) * (L - H_L) + H_L ] with M = n_pos, L = n_total and
    H_L the L-th harmonic number (exact for every M >= 1, L >= 2; mu0 = 1 when L = M).

    Parameters
    ----------
    n_pos : array_like of int
        Number of positives M (>= 1).
    n_total : array_like of int
        Length of the ranked list L = M + N (>= M).

    Returns
    -------
    numpy.ndarray
        Expected AP, float64, NaN where ``n_pos < 1`` or ``n_total < n_pos``.

    Examples
    --------
    >>> float(expected_random_ap(1, 2))
    0.75
    """
    m = np.asarray(n_pos, dtype=np.float64)
    L = np.asarray(n_total, dtype=np.float64)
    valid = (m >= 1) & (L >= m)
    Ls = np.where(valid, L, 1.0)
    h = _harmonic_numbers(Ls)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(Ls > 1, (np.where(valid, m, 1.0) - 1.0) / (Ls - 1.0), 0.0)
        mu = (frac * (Ls - h) + h) / Ls
    mu = np.where(valid & (L == m), 1.0, mu)
    return np.where(valid, mu, np.nan)


def _harmonic_numbers(L: np.ndarray) -> np.ndarray:
    """H_L for float arrays of non-negative integers (exact table up to 2**16, asymptotic beyond)."""
    L = np.asarray(L, dtype=np.float64)
    out = np.empty_like(L)
    small = L <= _TABLE_SIZE
    out[small] = _H_TABLE[L[small].astype(np.int64)]
    big = L[~small]
    # Euler-Maclaurin: H_n = ln n + gamma + 1/(2n) - 1/(12n^2) + 1/(120n^4) - ...
    out[~small] = (
        np.log(big) + np.euler_gamma + 1.0 / (2 * big) - 1.0 / (12 * big**2) + 1.0 / (120 * big**4)
    )
    return out


_TABLE_SIZE = 1 << 16
_H_TABLE = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, _TABLE_SIZE + 1, dtype=np.float64))])


def normalize_ap(ap, n_pos, n_total) -> np.ndarray:
    """Normalized AP, (AP - mu0) / (1 - mu0), with mu0 the expected AP of a random ranking.

    Returns NaN where AP is NaN or the list holds no negatives (mu0 = 1).

    Parameters
    ----------
    ap : array_like of float
        Observed AP.
    n_pos, n_total : array_like of int
        Positives and list length per AP.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> float(normalize_ap(1.0, 1, 2))
    1.0
    """
    mu = expected_random_ap(n_pos, n_total)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (np.asarray(ap, dtype=np.float64) - mu) / (1.0 - mu)
    return np.where(mu < 1.0, out, np.nan)
