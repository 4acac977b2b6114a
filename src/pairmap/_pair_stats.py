"""Correlation statistics over profile pairs in bounded memory (used by :mod:`pairmap.replicating`).

``Z`` is the standardized feature matrix (rows centred, unit norm), so the
correlation of rows i and j is ``Z[i] . Z[j]``.

* :func:`group_stats` -- per replicate group (rows sharing a key), the median
  correlation of its pairs ``i < j`` that differ in every ``diff`` column, the
  pair count and copairs' replicate count (members that are the first row of
  a pair), optionally counting pairs above a threshold. Small groups are
  handled all at once with vectorized pair lists; large groups by matrix
  products in row blocks; a group with more pairs than the budget gets its
  median by exact streamed selection.
* :func:`select` -- exact order statistics of a value stream (one collecting
  pass when it fits the budget, else histogram refinement over passes).
* :func:`sample_null_pairs` -- random non-replicate pairs, as copairs draws them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .pairing import Buckets, encode_columns, group_keys

#: groups up to this size are processed together through vectorized pair lists
SMALL_GROUP = 64
#: rows per matrix-product block of a large group (only the upper triangle is multiplied)
LARGE_BLOCK_ROWS = 256
_HIST_BINS = 1 << 16


# ------------------------------------------------------------------ exact order statistics
def lerp_quantile(low: float, high: float, q: float, n: int) -> float:
    """Linear-interpolation quantile from its two order statistics, with NumPy's arithmetic."""
    h = (n - 1) * q
    return float(np.quantile(np.array([low, high]), h - math.floor(h)))


def quantile_ranks(n: int, q: float) -> tuple[int, int]:
    """0-based ranks of the two order statistics a linear-interpolation quantile needs."""
    h = (n - 1) * q
    lo = math.floor(h)
    return lo, min(lo + 1, n - 1)


def select(chunks: Callable[[], Iterator[np.ndarray]], ranks, n_values: int, budget: int):
    """Values of the given 0-based ranks in the ascending order of a streamed multiset.

    ``chunks()`` yields the values (one pass per call). When ``n_values`` fits in
    ``budget`` values one pass collects them; otherwise each rank is located by
    histogram refinement (a pass per level) and found in a final collecting pass.
    """
    ranks = list(ranks)
    if n_values <= budget:  # one buffer, filled and partitioned in place (no extra copy)
        values = np.empty(n_values, dtype=np.float64)
        filled = 0
        for c in chunks():
            values[filled : filled + len(c)] = c
            filled += len(c)
        values.partition(ranks)
        return values[ranks]
    return np.array([_select_one(chunks, r, budget) for r in ranks])


def _select_one(chunks, rank: int, budget: int) -> float:
    lo, hi = math.inf, -math.inf
    for c in chunks():
        if c.size:
            lo, hi = min(lo, float(c.min())), max(hi, float(c.max()))
    levels: list[tuple[float, float, int]] = []  # (lo, width, bin) of each refinement
    below = 0  # values known to rank before the current window

    def inside(c):
        keep = np.ones(c.shape, dtype=bool)
        for l_lo, l_width, l_bin in levels:
            keep &= _bins(c, l_lo, l_width) == l_bin
        return c[keep]

    while True:
        width = hi - lo
        if width <= 0.0:  # every value left in the window is equal
            return lo
        counts = np.zeros(_HIST_BINS, dtype=np.int64)
        vmin = np.full(_HIST_BINS, math.inf)
        vmax = np.full(_HIST_BINS, -math.inf)
        for c in chunks():
            c = inside(c)
            idx = _bins(c, lo, width)
            counts += np.bincount(idx, minlength=_HIST_BINS)
            np.minimum.at(vmin, idx, c)
            np.maximum.at(vmax, idx, c)
        cum = np.cumsum(counts)
        b = int(np.searchsorted(cum, rank - below, side="right"))
        below += int(cum[b] - counts[b])
        levels.append((lo, width, b))
        if vmin[b] == vmax[b]:
            return float(vmin[b])
        if counts[b] <= budget:
            values = np.concatenate([inside(c) for c in chunks()])
            return float(np.partition(values, rank - below)[rank - below])
        lo, hi = float(vmin[b]), float(vmax[b])


def _bins(c, lo, width):
    return np.clip(((c - lo) / width * _HIST_BINS).astype(np.int64), 0, _HIST_BINS - 1)


# --------------------------------------------------------------------- pairs by group
@dataclass
class Groups:
    """Rows bucketed by replicate group, and the codes that must differ within a pair."""

    key: np.ndarray  # group id per row
    buckets: Buckets  # members of a group in ascending row order
    diff: np.ndarray  # (n, n_diff) codes

    @classmethod
    def encode(cls, meta: pd.DataFrame, same, diff) -> Groups:
        codes = encode_columns(meta, list(same) + list(diff))
        key = group_keys(codes, np.arange(len(same), dtype=np.int64))
        return cls(key, Buckets.build(key), codes[:, len(same) :])

    def members(self, g: int) -> np.ndarray:
        b = self.buckets
        return b.order[b.starts[g] : b.starts[g + 1]]


@dataclass
class GroupStats:
    """Per group: median pair correlation (NaN without pairs), pair and first-row counts."""

    median: np.ndarray
    n_pairs: np.ndarray
    n_first: np.ndarray
    above: int = 0  # pairs whose correlation exceeds the threshold, if one was given


def pair_corr(Z, a, b) -> np.ndarray:
    """Correlations of the row pairs ``(a[p], b[p])``."""
    from ._kernels.replicating import pair_dots

    out = np.empty(len(a), dtype=np.float64)
    pair_dots(Z, a, b, out)
    return out


def _small_pairs(groups: Groups, gsel: np.ndarray):
    """All pairs (i < j) of the groups ``gsel`` that differ in every diff column.

    Returns ``(local, a, b)``: the position in ``gsel`` of each pair's group and its rows.
    """
    sizes = groups.buckets.sizes()[gsel]
    n_members = int(sizes.sum())
    group_start = np.cumsum(sizes) - sizes
    pos = np.arange(n_members) - np.repeat(group_start, sizes)  # position within the group
    members = groups.buckets.order[np.repeat(groups.buckets.starts[gsel], sizes) + pos]
    counts = np.repeat(sizes, sizes) - 1 - pos  # later members of the same group
    ia = np.repeat(np.arange(n_members), counts)
    offsets = np.cumsum(counts) - counts
    ib = ia + 1 + (np.arange(len(ia)) - np.repeat(offsets, counts))
    a, b = members[ia], members[ib]
    local = np.repeat(np.repeat(np.arange(len(gsel)), sizes), counts)
    keep = np.ones(len(a), dtype=bool)
    for col in range(groups.diff.shape[1]):
        keep &= groups.diff[a, col] != groups.diff[b, col]
    return local[keep], a[keep], b[keep]


def _small_batch(Z, groups, gsel, stats: GroupStats, threshold):
    from ._kernels.replicating import segment_medians

    local, a, b = _small_pairs(groups, gsel)
    vals = pair_corr(Z, a, b)
    counts = np.bincount(local, minlength=len(gsel))
    order = np.lexsort((vals, local))
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    out = np.empty(len(gsel))
    segment_medians(vals[order], starts, out)
    stats.median[gsel] = out
    stats.n_pairs[gsel] = counts
    firsts = np.unique(local.astype(np.int64) * len(Z) + a) // len(Z)
    stats.n_first[gsel] = np.bincount(firsts, minlength=len(gsel))
    if threshold is not None:
        stats.above += int((vals > threshold).sum())


def _large_chunks(Z, groups: Groups, g: int, budget_pairs: int):
    """(values, first rows) of group ``g``'s pairs, by blocks of rows (matrix products)."""
    members = groups.members(g)
    size = len(members)
    # short blocks: each multiplies only the columns right of its diagonal block
    step = max(1, min(LARGE_BLOCK_ROWS, budget_pairs // size))
    Zg = Z[members]
    dg = groups.diff[members]
    for r0 in range(0, size, step):
        r1 = min(size, r0 + step)
        S = Zg[r0:r1] @ Zg[r0:].T
        mask = np.arange(r0, size)[None, :] > np.arange(r0, r1)[:, None]
        for col in range(dg.shape[1]):
            mask &= dg[r0:r1, col][:, None] != dg[None, r0:, col]
        yield S[mask], int(mask.any(axis=1).sum())


def _large_group(Z, groups, g, budget_pairs, stats: GroupStats, threshold):
    size = len(groups.members(g))
    fits = size * (size - 1) // 2 <= budget_pairs  # then one pass keeps every value
    kept = []
    total = first = 0
    for vals, n_first in _large_chunks(Z, groups, g, budget_pairs):
        total += len(vals)
        first += n_first
        if threshold is not None:
            stats.above += int((vals > threshold).sum())
        if fits:
            kept.append(vals)
    stats.n_pairs[g], stats.n_first[g] = total, first
    if total and fits:
        stats.median[g] = np.median(np.concatenate(kept))
    elif total:

        def chunks():
            return (vals for vals, _ in _large_chunks(Z, groups, g, budget_pairs))

        lo, hi = select(chunks, [(total - 1) // 2, total // 2], total, budget_pairs)
        stats.median[g] = lo if total % 2 else 0.5 * (lo + hi)


def group_stats(Z, groups: Groups, budget_pairs: int, threshold=None) -> GroupStats:
    """Median replicate-pair correlation, pair count and first-row count of every group.

    With ``threshold``, also counts the pairs whose correlation exceeds it.
    Memory: about ``budget_pairs`` pairs (or one row block of a large group).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # small products: BLAS threads only add barrier waits
        return _group_stats(Z, groups, budget_pairs, threshold)


def _group_stats(Z, groups, budget_pairs, threshold):
    n_groups = len(groups.buckets.starts) - 1
    sizes = groups.buckets.sizes()
    stats = GroupStats(
        np.full(n_groups, np.nan),
        np.zeros(n_groups, dtype=np.int64),
        np.zeros(n_groups, dtype=np.int64),
    )
    small = np.flatnonzero((sizes > 1) & (sizes <= SMALL_GROUP))
    pairs = np.cumsum(sizes[small] * (sizes[small] - 1) // 2)
    start = 0
    while start < len(small):  # batches of whole groups within the budget
        base = pairs[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(pairs, base + budget_pairs, side="right")))
        _small_batch(Z, groups, small[start:stop], stats, threshold)
        start = stop
    for g in np.flatnonzero(sizes > SMALL_GROUP):
        _large_group(Z, groups, int(g), budget_pairs, stats, threshold)
    return stats


# ------------------------------------------------------------------------ null pairs
def sample_null_pairs(codes: np.ndarray, size: int, rng: np.random.Generator):
    """``size`` random pairs (i, j): i uniform, j uniform among rows differing from i everywhere.

    Rows without any valid partner are redrawn (copairs retries them too).
    Rejection sampling first; rows still unmatched after a few rounds get an
    exact draw from their enumerated partners.
    """
    n = codes.shape[0]
    first = rng.integers(0, n, size)
    second = np.full(size, -1, dtype=np.int64)
    todo = np.arange(size)
    for _ in range(64):
        if not len(todo):
            return first, second
        cand = rng.integers(0, n - 1, len(todo))
        cand += cand >= first[todo]  # skip the row itself
        ok = (codes[first[todo]] != codes[cand]).all(axis=1)
        second[todo[ok]] = cand[ok]
        todo = todo[~ok]
    lonely = np.zeros(n, dtype=bool)  # rows known to have no valid partner
    for t in todo:  # rows with few valid partners: draw among all of them
        while True:
            partners = np.flatnonzero((codes != codes[first[t]]).all(axis=1))
            if len(partners):
                second[t] = partners[rng.integers(0, len(partners))]
                break
            lonely[first[t]] = True
            if lonely.all():
                raise ValueError(
                    "no null pairs: no two profiles differ in every sameby and diffby column"
                )
            first[t] = rng.choice(np.flatnonzero(~lonely))
    return first, second


def null_medians(Z, codes, null_size: int, n_replicates: int, seed: int) -> np.ndarray:
    """Median correlation of ``n_replicates`` random null pairs, ``null_size`` times (seeded)."""
    rng = np.random.default_rng(seed)
    a, b = sample_null_pairs(codes, null_size * n_replicates, rng)
    return np.median(pair_corr(Z, a, b).reshape(null_size, n_replicates), axis=1)
