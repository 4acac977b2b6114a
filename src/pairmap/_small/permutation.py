"""The permutation null of a small screen in NumPy: the compiled kernels' draws and scores.

A backend of :class:`pairmap.permutation.PermutationTester` with the functions
it calls on :mod:`pairmap._kernels.permutation` (same arguments, same results
bit for bit), vectorized over draws instead of compiled. A relabeling ``S`` of
``k`` pool positions is scored as there: each member ranks the other members
(its positives) against the pool profiles of its block outside ``S`` (its
negatives); negatives above a positive are counted by binary search in the
member's sorted row, minus the relabeled ones. Tallies, APs, cohesion and the
sorted means follow the kernels' arithmetic (:mod:`pairmap._small.scoring`).
"""

from __future__ import annotations

import numpy as np

from .. import _codes as C
from .scoring import expected_ap, sequential_ap, sorted_means, tallies
from .streams import all_relabelings, relabelings

#: the compiled backend tabulates base-only draws; this one scores every draw directly
tables = False
#: (draws x k**3) entries per chunk of draws (bounds the temporary arrays)
CHUNK_ENTRIES = 1 << 21
_ROW = 1 << 38  # row offset of the flat sorted rows (grid values span 2**37)
_SHIFT = 1 << 36  # makes grid values non-negative


def sorted_mean(values) -> float:
    """Mean summed in ascending order, as :func:`pairmap._kernels.nulls.sorted_mean`."""
    values = np.asarray(values, dtype=np.float64)
    return float(sorted_means(values[None, :])[0]) if len(values) else np.nan


def sorted_block_rows(sim, self_col, blk_row, blk_col, width, out, lens):
    """Each row's similarities to the columns of its block (minus ``self_col``), sorted."""
    for r in range(sim.shape[0]):
        keep = blk_col == blk_row[r]
        if self_col[r] >= 0:
            keep[self_col[r]] = False
        vals = np.sort(sim[r, keep])
        out[r, : len(vals)] = vals
        lens[r] = len(vals)


class _Pool:
    """The pool's similarities as grid integers and each row's sorted block row (flat)."""

    def __init__(self, blk, n_base, base_sim, own_base, own_own):
        n_own = own_own.shape[0]
        size = n_base + n_own
        sim = np.empty((size, size))
        sim[:n_base, :n_base] = base_sim
        sim[n_base:, :n_base] = own_base
        sim[:n_base, n_base:] = own_base.T
        sim[n_base:, n_base:] = own_own
        self.grid = np.rint(sim * C.SNAP).astype(np.int64)  # exact: snapped similarities
        self.blk = blk
        same = blk[:, None] == blk[None, :]
        np.fill_diagonal(same, False)
        rows, cols = np.nonzero(same)
        self.flat = np.sort(rows * _ROW + self.grid[rows, cols] + _SHIFT)
        self.row_len = same.sum(axis=1)
        self.row_end = np.cumsum(self.row_len)


def _stats(pool: _Pool, sets: np.ndarray, ties_expected: bool):
    """(AP, mean positive similarity) of every member of every relabeling in ``sets``."""
    n_sets, k = sets.shape
    others = np.array([[b for b in range(k) if b != a] for a in range(k)], dtype=np.int64)
    grid = pool.grid[sets[:, :, None], sets[:, None, :]]  # (n, k, k): member a -> member b
    blk = pool.blk[sets]
    same = (blk[:, :, None] == blk[:, None, :]) & ~np.eye(k, dtype=bool)
    pos = np.sort(grid[:, np.arange(k)[:, None], others], axis=2)  # (n, k, k-1) ascending
    # negatives of member a at or above each positive: pool row minus the relabeled profiles
    keys = sets[:, :, None] * _ROW + pos + _SHIFT
    end = pool.row_end[sets][:, :, None]
    above = end - np.searchsorted(pool.flat, keys, side="right")
    inside = np.where(same, grid, np.iinfo(np.int64).min)[:, :, None, :]  # (n, k, 1, k)
    above -= (inside > pos[:, :, :, None]).sum(axis=3)
    m = k - 1
    ranks = np.arange(1, m + 1) + above[:, :, ::-1]  # best positive first
    aps = sequential_ap(ranks.reshape(-1, m).astype(np.float64), np.full(n_sets * k, m))
    aps = aps.reshape(n_sets, k)
    values = pos * (1.0 / C.SNAP)  # exact: the similarities themselves
    cohesion = np.zeros((n_sets, k))
    for t in range(m):
        cohesion += values[:, :, t]
    cohesion /= m
    if ties_expected:  # negatives at least as high as each positive: ties show up there
        at_least = end - np.searchsorted(pool.flat, keys, side="left")
        at_least -= (inside >= pos[:, :, :, None]).sum(axis=3)
        tied = (at_least > above).any(axis=2) | (pos[:, :, 1:] == pos[:, :, :-1]).any(axis=2)
        n_neg = pool.row_len[sets] - same.sum(axis=2)
        for d, a in zip(*np.nonzero(tied), strict=True):
            gt, eq = tallies(pos[d, a], above[d, a], at_least[d, a], int(n_neg[d, a]))
            aps[d, a] = expected_ap(pos[d, a], gt, eq)
    return aps, cohesion


def _set_stats(pool, sets, ties_expected):
    """(mAP, cohesion) of every relabeling: sorted means over its members, in chunks."""
    n_sets, k = sets.shape
    out = np.empty(n_sets)
    coh = np.empty(n_sets)
    step = max(1, CHUNK_ENTRIES // max(1, k**3))
    for start in range(0, n_sets, step):
        aps, cohs = _stats(pool, sets[start : start + step], ties_expected)
        out[start : start + step] = sorted_means(aps)
        coh[start : start + step] = sorted_means(cohs)
    return out, coh


def member_scores(S, blk, n_base, base_sim, base_sorted, base_len, own_base, own_sorted,
                  own_len, own_own, ties_expected):  # fmt: skip
    """AP and mean similarity to the others of every profile of ``S`` (the observed group)."""
    pool = _Pool(blk, n_base, base_sim, own_base, own_own)
    aps, cohs = _stats(pool, np.asarray(S, dtype=np.int64)[None, :], ties_expected)
    return aps[0], cohs[0]


def enumerate_null(total, bm_start, bm, kb, blk, n_base, base_sim, base_sorted, base_len,
                   own_base, own_sorted, own_len, own_own, ties_expected):  # fmt: skip
    """(mAP, cohesion) of every relabeling, in the kernels' order."""
    sets = all_relabelings(bm_start, bm, kb)
    assert len(sets) == total
    return _set_stats(_Pool(blk, n_base, base_sim, own_base, own_own), sets, ties_expected)


def run_sample_null(key, n_draws, layout, ties_expected, n_threads, d_start=0):
    """(mAP, cohesion) of draws ``d_start .. d_start + n_draws - 1`` of the null ``key``."""
    bm_start, bm, kb, blk, n_base, base_sim, _, _, own_base, _, _, own_own = layout
    pool = _Pool(blk, n_base, base_sim, own_base, own_own)
    sets = relabelings(key, d_start, n_draws, bm_start, bm, kb)
    return _set_stats(pool, sets, ties_expected)
