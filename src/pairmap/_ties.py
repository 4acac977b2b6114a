"""Detect inputs whose similarities tie wholesale (constant or identical profiles).

Average precision ranks items by similarity. When many profiles point in the
same direction (identical rows, constant rows under cosine, rows that are
multiples of each other) their similarities to every query are equal, so the
ranking is decided by the tie policy rather than by the data. With the default
``ties="positives_first"`` a positive tied with negatives ranks ahead of them
and AP is inflated (up to 1 when a whole list ties). This module finds such
profiles cheaply (two random projections of the normalised rows, one matrix
product each; no all-pairs comparison) so :func:`pairmap.average_precision`
can warn.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

logger = logging.getLogger(__name__)

#: Warn when at least this share of the profiles ties with another profile.
TIED_SHARE_WARN = 0.10
# Rounding grids of the projections: directions equal up to float noise share a key.
_GRID_F64 = 2.0**-32
_GRID_F32 = 2.0**-16


def projection_matrix(n_features: int, dtype) -> np.ndarray:
    """The two fixed random directions the rows are projected on (seeded: reproducible)."""
    return np.random.default_rng(0).standard_normal((n_features, 2)).astype(dtype)


def tied_profile_mask(X: np.ndarray, inv_norm: np.ndarray | None = None) -> np.ndarray:
    """Rows that tie with at least one other row in every similarity, or have no direction.

    Parameters
    ----------
    X : numpy.ndarray or pairmap.features.FeatureSource
        (n, d) float32/float64 features as the similarity sees them (row-centred
        for correlation); a source is read in row blocks.
    inv_norm : numpy.ndarray, optional
        ``1 / |row|`` (0 for zero rows) for angle-based similarities (cosine,
        correlation): then rows that are positive multiples of each other tie
        and zero rows have no direction. ``None`` for distances: only
        identical rows tie.

    Returns
    -------
    numpy.ndarray
        Boolean mask, one value per row.

    Examples
    --------
    >>> X = np.array([[1.0, 1.0], [2.0, 2.0], [1.0, 0.0], [0.0, 0.0]])
    >>> inv = np.array([2**-0.5, 8**-0.5, 1.0, 0.0])
    >>> tied_profile_mask(X, inv).tolist()
    [True, True, False, True]
    >>> tied_profile_mask(X).tolist()
    [False, False, False, False]
    """
    n = X.shape[0]
    if n < 2:
        return np.zeros(n, dtype=bool)
    if isinstance(X, np.ndarray):  # (the NumPy path of small screens: no compiled kernels)
        proj = (X @ projection_matrix(X.shape[1], X.dtype)).astype(np.float64)
    else:  # a FeatureSource: from its one shared pass over the rows, never copied whole
        proj = X.scan().proj.copy()
    zero = np.zeros(n, dtype=bool)
    if inv_norm is not None:
        zero = inv_norm == 0.0
        proj *= inv_norm[:, None]
    else:
        proj /= max(float(np.abs(proj).max(initial=0.0)), 1e-300)
    # float32 products carry ~1e-7 relative noise; a coarser grid then (false matches
    # of unrelated rows stay far too rare to reach the warning threshold)
    grid = _GRID_F32 if X.dtype == np.float32 else _GRID_F64
    keys = np.round(proj / grid)
    # rows tie when both keys are equal: find rows whose 64-bit hash of the two keys occurs
    # more than once (one integer sort), then compare the keys themselves among those few
    # (a full two-key lexsort costs several times more)
    mixed = keys.astype(np.int64)
    mixed = mixed[:, 0] * np.int64(-7046029254386353131) + mixed[:, 1]  # wraps: a hash
    candidates = np.flatnonzero(_has_equal(mixed))
    tied = np.zeros(n, dtype=bool)
    if len(candidates):
        sub = keys[candidates]
        order = np.lexsort((sub[:, 1], sub[:, 0]))
        k = sub[order]
        same_next = np.all(k[1:] == k[:-1], axis=1)
        tied_sorted = np.zeros(len(candidates), dtype=bool)
        tied_sorted[1:] |= same_next
        tied_sorted[:-1] |= same_next
        tied[candidates[order]] = tied_sorted
    return tied | zero


def _has_equal(values: np.ndarray) -> np.ndarray:
    """Whether each value occurs more than once in ``values``."""
    order = np.argsort(values)
    v = values[order]
    same_next = v[1:] == v[:-1]
    dup = np.zeros(len(values), dtype=bool)
    dup[1:] |= same_next
    dup[:-1] |= same_next
    out = np.empty(len(values), dtype=bool)
    out[order] = dup
    return out


def warn_if_tied(
    X: np.ndarray, inv_norm: np.ndarray | None, *, ties: str, stacklevel: int = 3
) -> float:
    """Warn (``RuntimeWarning`` and log) when many profiles tie; return the tied share.

    Parameters
    ----------
    X : numpy.ndarray
        Features as the similarity sees them.
    inv_norm : numpy.ndarray or None
        See :func:`tied_profile_mask`.
    ties : str
        The tie policy in use (named in the message).
    stacklevel : int, default 3
        Passed to :func:`warnings.warn` (so the warning points at user code).

    Returns
    -------
    float
        Share of profiles that tie with another profile or have no direction.

    Examples
    --------
    >>> X = np.random.default_rng(0).standard_normal((20, 5))
    >>> warn_if_tied(X, None, ties="expected")
    0.0
    """
    mask = tied_profile_mask(X, inv_norm)
    share = float(mask.mean()) if mask.size else 0.0
    if share >= TIED_SHARE_WARN:
        first = np.flatnonzero(mask)[:5].tolist()
        effect = (
            "with ties='positives_first' (the default) a positive tied with negatives ranks "
            "first, so these APs are inflated (up to 1); ties='expected' scores ties neutrally"
            if ties == "positives_first"
            else "ties='expected' scores them neutrally, but their ranks carry no information"
        )
        msg = (
            f"{int(mask.sum())} of {mask.size} profiles ({share:.0%}; rows {first}...) are "
            f"constant or identical to another profile, so their similarities tie; {effect}. "
            "Check the preprocessing (constant features, failed normalisation, duplicated rows)"
        )
        warnings.warn(msg, RuntimeWarning, stacklevel=stacklevel)
        logger.warning(msg)
    return share
