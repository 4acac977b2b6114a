"""Multiple-testing corrections: Benjamini-Hochberg and a two-stage hierarchical FDR.

Pure array functions (NumPy only). ``NaN`` p-values mark tests that were not
performed: they are ignored (the number of tests ``m`` counts non-NaN values
only) and stay ``NaN`` in the output.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["benjamini_hochberg", "hierarchical_fdr"]


def _as_pvalues(p_values, name: str = "p_values") -> np.ndarray:
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {p.shape}")
    finite = p[~np.isnan(p)]
    if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
        raise ValueError(
            f"{name} must lie in [0, 1] (or be NaN), got values from {finite.min()} "
            f"to {finite.max()}"
        )
    return p


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), NaN-aware.

    ``q_(i) = min_{j >= i} min(1, m * p_(j) / j)`` over the ``m`` non-NaN
    p-values sorted ascending; the result is monotone in ``p`` and capped at 1.

    Parameters
    ----------
    p_values : array_like of float
        Raw p-values in ``[0, 1]``; NaN entries are skipped.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values (float64), NaN where the input is NaN.

    Examples
    --------
    >>> benjamini_hochberg([0.01, 0.04, 0.03, float("nan")])
    array([0.03, 0.04, 0.04,  nan])
    """
    p = _as_pvalues(p_values)
    out = np.full(p.shape, np.nan)
    mask = ~np.isnan(p)
    q = p[mask]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    ranked = q[order] * (m / np.arange(1, m + 1, dtype=np.float64))
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    np.minimum(adjusted, 1.0, out=adjusted)
    res = np.empty(m)
    res[order] = adjusted
    out[mask] = res
    return out


def hierarchical_fdr(p_values, groups, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Two-stage hierarchical FDR (group screening, then within-group BH).

    Stage 1: each group's p-value is the minimum p-value of its tests; BH is
    applied across groups and a group passes when its adjusted p-value is
    ``<= alpha``. Stage 2: inside each passing group, BH is applied to the
    group's own tests (a single test keeps its p-value). Tests of failing
    groups get a corrected p-value of 1.0. NaN p-values stay NaN; a group
    whose p-values are all NaN has NaN stage-1 values and does not pass.

    Parameters
    ----------
    p_values : array_like of float
        Raw p-values per test (NaN = not tested).
    groups : array_like
        Group label per test (any hashable labels of equal length).
    alpha : float, default 0.05
        Stage-1 FDR level.

    Returns
    -------
    dict of numpy.ndarray
        Per-test arrays ``corrected_p_value``, ``stage1_p_value``,
        ``stage1_corrected_p_value`` and ``stage1_significant`` (bool).

    Examples
    --------
    >>> out = hierarchical_fdr([0.001, 0.2, 0.5, 0.6], ["a", "a", "b", "b"])
    >>> out["stage1_significant"].tolist()
    [True, True, False, False]
    >>> out["corrected_p_value"].tolist()
    [0.002, 0.2, 1.0, 1.0]
    """
    p = _as_pvalues(p_values)
    labels = np.asarray(groups)
    if labels.shape != p.shape:
        raise ValueError(
            f"groups must have one label per p-value ({p.shape[0]}), got shape {labels.shape}"
        )
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    # factorize by hashing, so mixed label types (None, str, numbers) work
    gid, _ = pd.factorize(pd.Series(labels, dtype=object), use_na_sentinel=False)
    gid = np.asarray(gid, dtype=np.int64)
    n_groups = int(gid.max()) + 1 if gid.size else 0

    group_min = np.full(n_groups, np.inf)
    valid = ~np.isnan(p)
    np.minimum.at(group_min, gid[valid], p[valid])
    group_min[np.isinf(group_min)] = np.nan
    group_q = benjamini_hochberg(group_min)
    group_pass = ~np.isnan(group_q) & (group_q <= alpha)

    corrected = np.where(valid, 1.0, np.nan)
    order = np.argsort(gid, kind="stable")
    bounds = np.searchsorted(gid[order], np.arange(n_groups + 1))
    for g in np.flatnonzero(group_pass):
        idx = order[bounds[g] : bounds[g + 1]]
        corrected[idx] = benjamini_hochberg(p[idx])
    return {
        "corrected_p_value": corrected,
        "stage1_p_value": group_min[gid],
        "stage1_corrected_p_value": group_q[gid],
        "stage1_significant": group_pass[gid],
    }
