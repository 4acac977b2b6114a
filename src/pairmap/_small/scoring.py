"""AP from ranked lists, in NumPy and plain Python, with the compiled kernels' arithmetic.

The compiled kernels (:mod:`pairmap._kernels.retrieval`) define AP from a query's
positives sorted ascending and two tallies of its negatives: ``gt[L]``, the
negatives strictly between ``pos[L-1]`` and ``pos[L]`` (``gt[k]``: above the best
positive), and ``eq[L]``, those tied with ``pos[L]`` (booked on the first positive
``L`` of a tie group). The functions here follow the same operations in the same
order, so their floats are the kernels' floats.
"""

from __future__ import annotations

import numpy as np


def sequential_ap(ranks: np.ndarray, k: np.ndarray) -> np.ndarray:
    """AP of many lists from the 1-based ranks of their positives, best first.

    ``ranks``: (n_lists, width) float64; entries past a list's ``k`` positives
    must be ``inf`` (they add 0). Precisions are summed left to right, as in
    :func:`pairmap._kernels.ap.ap_from_ranks`.

    Examples
    --------
    >>> sequential_ap(np.array([[1.0, 3.0, np.inf]]), np.array([2])).tolist()
    [0.8333333333333333]
    """
    width = ranks.shape[1]
    total = np.zeros(ranks.shape[0])
    for i in range(width):
        total += (i + 1) / ranks[:, i]
    return total / k


def sorted_means(values: np.ndarray) -> np.ndarray:
    """Mean of each row, summed in ascending order (:func:`pairmap._kernels.nulls.sorted_mean`).

    Examples
    --------
    >>> sorted_means(np.array([[0.5, 0.25, 1.0]])).tolist()
    [0.5833333333333334]
    """
    ordered = np.sort(values, axis=1)
    total = np.zeros(values.shape[0])
    for i in range(values.shape[1]):
        total += ordered[:, i]
    return total / values.shape[1]


def segment_sorted_means(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """:func:`sorted_means` of each segment ``values[starts[g]:starts[g + 1]]`` (sorted within).

    Empty segments give NaN.

    Examples
    --------
    >>> segment_sorted_means(np.array([0.25, 0.5, 1.0]), np.array([0, 2, 3, 3])).tolist()
    [0.375, 1.0, nan]
    """
    sizes = np.diff(starts)
    total = np.zeros(len(sizes))
    for i in range(int(sizes.max()) if len(sizes) else 0):
        has = sizes > i
        total[has] += values[starts[:-1][has] + i]
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / sizes


def tallies(pos: np.ndarray, above: np.ndarray, at_least: np.ndarray, n_neg: int):
    """``(gt, eq)`` of a list from its ascending positives and, per positive, the
    negatives strictly above it (``above``) and at least as high (``at_least``)."""
    k = len(pos)
    gt = np.zeros(k + 1, dtype=np.int64)
    eq = np.zeros(k + 1, dtype=np.int64)
    above_prev = n_neg
    for t in range(k):
        equal = int(at_least[t] - above[t])
        if t > 0 and pos[t - 1] == pos[t]:
            equal = 0  # booked on the first positive of a tie group
        eq[t] = equal
        gt[t] = above_prev - int(above[t]) - equal
        above_prev = int(above[t])
    gt[k] = above_prev
    return gt, eq


def _expected_group_sum(p_before, t_before, p, t):
    acc = 0.0
    frac = (p - 1.0) / (t - 1.0) if t > 1 else 0.0
    for r in range(1, t + 1):
        acc += (p_before + 1.0 + (r - 1) * frac) / (t_before + r)
    return acc * p / t


def expected_ap(pos, gt, eq) -> float:
    """Expected AP over the orders of tied items (McSherry & Najork), from the tallies.

    The same operations as the kernels' ``score_tallies(..., ties_expected=True)``.

    Examples
    --------
    >>> pos = np.array([0.5, 0.9])  # one negative tied with 0.9, none elsewhere
    >>> gt, eq = tallies(pos, np.array([1, 0]), np.array([1, 1]), 1)
    >>> round(expected_ap(pos, gt, eq), 6)
    0.708333
    """
    k = len(pos)
    # tie groups of the ascending positives, walked from the best one down
    firsts = np.flatnonzero(np.r_[True, pos[1:] != pos[:-1]])
    stops = np.r_[firsts[1:], k]
    total = 0.0
    above = int(gt[k])  # negatives strictly above the current group
    for lo, hi in zip(firsts[::-1].tolist(), stops[::-1].tolist(), strict=True):
        p_before = k - hi
        total += _expected_group_sum(p_before, p_before + above, hi - lo, hi - lo + int(eq[lo]))
        above += int(gt[lo:hi].sum() + eq[lo:hi].sum())
    return total / k
