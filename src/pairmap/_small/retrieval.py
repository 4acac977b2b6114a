"""AP (and the ``metrics=`` columns) of every profile of a small screen, from its similarity matrix.

Pure NumPy; see :mod:`pairmap._small`. For a block of queries, every candidate
gets an integer sort key: ``-2 m`` for a positive and ``-2 m + 1`` for a
negative, ``m`` its similarity in units of the 2**-36 tie grid. Sorting the keys
of a row ranks the query's list by decreasing similarity with positives ahead of
tied negatives (the ``"positives_first"`` rule), so a positive's rank is its
position. Runs of equal ``m`` are the tie groups of the ``"expected"`` rule and
of ROC-AUC. Every float is computed by the operations of the compiled kernels,
in the same order (:mod:`pairmap._small.scoring`).
"""

from __future__ import annotations

import numpy as np

from .. import _codes as C
from ..pairing import EncodedRule, overlap_error, rule_mask
from .scoring import expected_ap, sequential_ap, tallies

#: (query, candidate) entries per block of queries (a few arrays of this many 8-byte values)
BLOCK_ENTRIES = 1 << 20
_NONE = np.iinfo(np.int64).max  # sort key of a row that is not in the list


def average_precision(
    S: np.ndarray,
    codes: np.ndarray,
    pos_rule: EncodedRule,
    neg_rule: EncodedRule,
    *,
    ties_expected: bool = False,
    kinds: np.ndarray | None = None,
    cuts: np.ndarray | None = None,
    metrics_out: np.ndarray | None = None,
    progress=None,
):
    """AP, positive count and list length of every row (NaN / 0 for unscored rows).

    Parameters
    ----------
    S : numpy.ndarray
        (n, n) snapped similarities (:func:`pairmap._small.similarity.similarity_matrix`).
    codes : numpy.ndarray
        (n, n_columns) int64 group codes of the rule columns.
    pos_rule, neg_rule : EncodedRule
    ties_expected : bool
        The ``"expected"`` tie rule instead of ``"positives_first"``.
    kinds, cuts, metrics_out : numpy.ndarray, optional
        Metric codes and cut-offs of :mod:`pairmap._codes` and the (n, n_metrics)
        output, filled in place (as :class:`pairmap._retrieval.MetricSpec`).
    progress : callable, optional
        Called with the number of queries finished after each block.

    Returns
    -------
    ap, n_pos, n_total : numpy.ndarray
    totals : dict
        ``{"pos": ..., "neg": ...}`` pairs found over lists with positives.

    Examples
    --------
    >>> from pairmap.pairing import EncodedRule
    >>> S = np.array([[1.0, 0.9, 0.5], [0.9, 1.0, 0.2], [0.5, 0.2, 1.0]])
    >>> codes = np.array([[0], [0], [1]])
    >>> same = EncodedRule(np.array([0]), np.array([], int), np.array([], int), np.array([], int))
    >>> diff = EncodedRule(np.array([], int), np.array([], int), np.array([0]), np.array([], int))
    >>> average_precision(S, codes, same, diff)[0].tolist()
    [1.0, 1.0, nan]
    """
    n = S.shape[0]
    ap = np.full(n, np.nan)
    n_pos = np.zeros(n, dtype=np.int64)
    n_total = np.zeros(n, dtype=np.int64)
    totals = {"pos": 0, "neg": 0}
    cols = np.arange(n, dtype=np.int64)
    step = max(1, BLOCK_ENTRIES // max(n, 1))
    for start in range(0, n, step):
        q = cols[start : start + step]
        P = rule_mask(pos_rule, codes, q, cols)
        N = rule_mask(neg_rule, codes, q, cols)
        k = P.sum(axis=1)
        m = N.sum(axis=1)
        bad = np.flatnonzero((k > 0) & (P & N).any(axis=1))
        if len(bad):
            i = bad[0]
            raise overlap_error(int(q[i]), int(np.flatnonzero(P[i] & N[i])[0]))
        totals["pos"] += int(k.sum())
        totals["neg"] += int(m[k > 0].sum())
        ok = (k > 0) & (m > 0)
        if ok.any():
            rows = np.flatnonzero(ok)
            out = _score_block(
                S, q[rows], P[rows], N[rows], k[rows], m[rows], ties_expected, kinds, cuts
            )
            ap[q[rows]] = out[0]
            n_pos[q[rows]] = k[rows]
            n_total[q[rows]] = k[rows] + m[rows]
            if metrics_out is not None:
                metrics_out[q[rows]] = out[1]
        if progress is not None:
            progress(len(q))
    return ap, n_pos, n_total, totals


def _score_block(S, q, P, N, k, m, ties_expected, kinds, cuts):
    """(AP, metrics) of the queries ``q`` with positive/negative masks ``P``/``N``."""
    grid = np.rint(S[q] * C.SNAP).astype(np.int64)  # exact: S is on the grid
    key = np.where(P, -2 * grid, np.where(N, 1 - 2 * grid, _NONE))
    del grid
    key.sort(axis=1)
    width = int((k + m).max())
    key = key[:, :width]
    valid = key != _NONE
    is_pos = valid & ((key & 1) == 0)
    cum_pos = np.cumsum(is_pos, axis=1)
    position = np.arange(1, width + 1)
    with np.errstate(divide="ignore"):
        ranks = np.where(is_pos, position, np.inf)
    # positives in rank order: their ranks, left-aligned (entries past k are inf)
    order = np.argsort(~is_pos, axis=1, kind="stable")
    ranks = np.take_along_axis(ranks, order[:, : int(k.max())], axis=1)
    ap = sequential_ap(ranks, k)
    level = key >> 1  # minus the grid value: equal levels tie
    tie = np.zeros_like(valid)
    tie[:, 1:] = valid[:, 1:] & (level[:, 1:] == level[:, :-1]) & (is_pos[:, 1:] | is_pos[:, :-1])
    if ties_expected:
        for r in np.flatnonzero(tie.any(axis=1)):
            ap[r] = _expected_row(key[r, : k[r] + m[r]])
    if kinds is None or not len(kinds):
        return ap, None
    return ap, _metrics(key, valid, is_pos, cum_pos, level, k, m, ties_expected, kinds, cuts)


def _expected_row(key):
    """Expected-ties AP of one list from its sorted keys (via the kernels' tallies)."""
    level = key >> 1
    is_pos = (key & 1) == 0
    pos = -level[is_pos][::-1]  # ascending similarity (grid units)
    neg = np.sort(-level[~is_pos])
    above = len(neg) - np.searchsorted(neg, pos, side="right")
    at_least = len(neg) - np.searchsorted(neg, pos, side="left")
    gt, eq = tallies(pos, above, at_least, len(neg))
    return expected_ap(pos, gt, eq)


def _runs(valid, level):
    """Start and end (inclusive) position of the tie run of every entry."""
    width = valid.shape[1]
    idx = np.arange(width)
    same_prev = np.zeros_like(valid)
    same_prev[:, 1:] = valid[:, 1:] & (level[:, 1:] == level[:, :-1])
    same_next = np.zeros_like(valid)
    same_next[:, :-1] = same_prev[:, 1:]
    start = np.maximum.accumulate(np.where(same_prev, 0, idx), axis=1)
    end = np.minimum.accumulate(np.where(same_next, width, idx)[:, ::-1], axis=1)[:, ::-1]
    return start, end


def _metrics(key, valid, is_pos, cum_pos, level, k, m, ties_expected, kinds, cuts):
    """The ``metrics=`` columns from the sorted keys (kernels: :mod:`pairmap._kernels.metrics`)."""
    n_q = key.shape[0]
    out = np.empty((n_q, len(kinds)))
    start, end = _runs(valid, level)
    before = np.where(start > 0, np.take_along_axis(cum_pos, np.maximum(start - 1, 0), axis=1), 0)
    run_pos = np.take_along_axis(cum_pos, end, axis=1) - before
    run_len = end - start + 1
    run_neg = run_len - run_pos
    rows = np.arange(n_q)
    for j, (kind, cut) in enumerate(zip(kinds.tolist(), cuts.tolist(), strict=True)):
        if kind == C.ROC_AUC:
            idx = np.arange(key.shape[1])
            neg_above = idx - (cum_pos - 1)
            below = m[:, None] - neg_above - run_neg
            u = np.where(is_pos, below + 0.5 * run_neg, 0.0).sum(axis=1)  # exact: halves
            out[:, j] = u / (k * m)
            continue
        c = k if cut == C.CUT_R else np.full(n_q, cut)
        last = np.minimum(c, k + m) - 1  # last position inside the cut-off
        hits = cum_pos[rows, last].astype(np.float64)
        if ties_expected:
            s, e = start[rows, last], end[rows, last]
            p = run_pos[rows, last]
            split = (e >= c) & (p > 0)  # a tie group with positives straddles the cut-off
            prior = np.where(s > 0, cum_pos[rows, np.maximum(s - 1, 0)], 0)
            t = run_len[rows, last]
            with np.errstate(invalid="ignore", divide="ignore"):
                part = prior + p * (c - s) / t
            hits = np.where(split, part, hits)
        out[:, j] = hits / c if kind == C.PRECISION else hits / k
    return out
