"""Numba kernels: retrieval metrics besides AP from the engine's per-query tallies.

The engine stores, per query, its positives' similarities sorted ascending
(``pos``) and, for negatives, only counts: ``gt[L]`` negatives strictly between
``pos[L-1]`` and ``pos[L]`` (``gt[k]``: above the best positive) and ``eq[L]``
negatives tied with ``pos[L]`` (booked on the first positive ``L`` of a tie
group). Those counts fix the position of every positive in the ranked list, so
ROC-AUC and precision/recall at any cut-off follow without a second pass.

Metric codes: ``ROC_AUC`` (Mann-Whitney U / (k m), ties counted 1/2),
``PRECISION`` and ``RECALL`` at a cut-off ``cut`` (``cut < 0`` means R, the
number of positives: R-precision).
"""

from __future__ import annotations

import numba
import numpy as np

from .._codes import CUT_R, PRECISION, RECALL, ROC_AUC  # noqa: F401 - re-exported


@numba.njit(cache=True, nogil=True)
def _mann_whitney_u(pos, gt, eq, m):
    """U = sum over positives of (#negatives ranked below + 1/2 #negatives tied)."""
    k = pos.shape[0]
    u = 0.0
    above = gt[k]  # negatives strictly above the current tie group
    hi = k
    while hi > 0:
        v = pos[hi - 1]
        lo = hi - 1
        while lo > 0 and pos[lo - 1] == v:
            lo -= 1
        tied = eq[lo]
        u += (hi - lo) * ((m - above - tied) + 0.5 * tied)
        for L in range(lo, hi):
            above += gt[L] + eq[L]
        hi = lo
    return u


@numba.njit(cache=True, nogil=True)
def _hits_at(pos, gt, eq, cut, ties_expected):
    """(Expected) number of positives among the first ``cut`` items of the ranked list.

    ``positives_first``: a positive tied with negatives ranks ahead of them.
    ``expected``: a tie group straddling the cut contributes its share of
    positives in proportion to the positions it has inside the cut.
    """
    k = pos.shape[0]
    start = gt[k]  # items ranked before the current tie group
    hits = 0.0
    hi = k
    while hi > 0 and start < cut:
        v = pos[hi - 1]
        lo = hi - 1
        while lo > 0 and pos[lo - 1] == v:
            lo -= 1
        p = hi - lo
        t = p + eq[lo]
        room = cut - start
        if ties_expected:
            hits += p * min(room, t) / t
        else:
            hits += min(room, p)
        start += t
        for L in range(lo, hi):
            start += gt[L]
        hi = lo
    return hits


@numba.njit(cache=True, nogil=True)
def score_metrics(
    pos_values,
    pos_offsets,
    pos_counts,
    gt,
    eq,
    neg_counts,
    ties_expected,
    kinds,
    cuts,
    out,
):
    """``out[s, j]``: metric ``kinds[j]`` (cut-off ``cuts[j]``) of query slot ``s``.

    NaN where a list lacks positives or negatives (as for AP).
    """
    for s in numba.prange(pos_counts.shape[0]):
        k = pos_counts[s]
        m = neg_counts[s]
        if k == 0 or m == 0:
            for j in range(kinds.shape[0]):
                out[s, j] = np.nan
            continue
        p0 = pos_offsets[s]
        t0 = p0 + s
        pos = pos_values[p0 : p0 + k]
        g = gt[t0 : t0 + k + 1]
        e = eq[t0 : t0 + k + 1]
        for j in range(kinds.shape[0]):
            if kinds[j] == ROC_AUC:
                out[s, j] = _mann_whitney_u(pos, g, e, m) / (k * m)
                continue
            cut = k if cuts[j] == CUT_R else cuts[j]
            hits = _hits_at(pos, g, e, cut, ties_expected)
            out[s, j] = hits / cut if kinds[j] == PRECISION else hits / k
