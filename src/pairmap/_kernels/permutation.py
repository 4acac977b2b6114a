"""Numba kernels of the permutation null: random relabelings of a group's pool, scored exactly.

A group ``G`` of ``k`` profiles is tested against its *pool*: ``G`` plus the
profiles its members are ranked against (their negatives). Pool positions are
split into *base* positions ``0 .. nB-1`` (similarity rows precomputed once and
shared by every group with the same base, e.g. the control wells) and *own*
positions ``nB .. nB+nO-1`` (the group's own members when they are not part of
the base). Positions are also split into *blocks* (e.g. plates): negatives of a
profile are the pool profiles of its block that are not relabeled as members.

A relabeling ``S`` (the same number of positions per block as ``G``) is scored
like the engine scores ``G``: each ``s`` in ``S`` ranks ``S \\ {s}`` as positives
against the pool profiles of its block outside ``S`` as negatives; AP comes from
:func:`pairmap._kernels.retrieval.score_tallies` (the engine's scoring, ties
included) and the group statistic from the engine's sorted mean. Negatives
above a positive are counted by binary search in the sorted base row, plus the
own positions, minus the relabeled positions, so a relabeling costs about
``k**2 * (log nB + nO + k)`` operations whatever the pool size.

Relabelings are drawn with the counter-based streams of
:mod:`pairmap._kernels.nulls` (draw ``d`` depends only on the key and ``d``),
block by block with Floyd's algorithm, or enumerated exactly (lexicographic
per block, mixed radix over blocks).
"""

from __future__ import annotations

import numba
import numpy as np

from pairmap._kernels.nulls import (
    _STREAM_GAMMA,
    _draw_small,
    _mix64,
    _parallel_build,
    _serial_build,
    _sorted_sum_mean,
)
from pairmap._kernels.pairs import rule_ok
from pairmap._kernels.retrieval import pair_similarity, score_tallies
from pairmap._kernels.search import lower_bound


@numba.njit(cache=True, nogil=True, inline="always")
def _upper_bound(a, size, value):
    """First index ``i`` in the sorted prefix ``a[:size]`` with ``a[i] > value`` (or ``size``)."""
    lo = 0
    hi = size
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] <= value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@numba.njit(cache=True, nogil=True)
def pair_similarities(X, inv_norm, sq_norm, metric, rows_a, rows_b, out):
    """``out[a, b]`` = similarity of rows ``rows_a[a]`` and ``rows_b[b]`` (direct loops)."""
    for a in range(rows_a.shape[0]):
        i = rows_a[a]
        for b in range(rows_b.shape[0]):
            out[a, b] = pair_similarity(X, i, rows_b[b], inv_norm, sq_norm, metric)


@numba.njit(cache=True, nogil=True)
def sorted_block_rows(sim, self_col, blk_row, blk_col, width, out, lens):
    """Sort each row's similarities to the columns of its block, ascending.

    ``sim[r, c]`` is the similarity of row ``r`` to column ``c``; column
    ``self_col[r]`` (``-1`` for none) is left out. ``out[r, :lens[r]]`` receives
    the sorted values.
    """
    for r in range(sim.shape[0]):
        m = 0
        for c in range(sim.shape[1]):
            if blk_col[c] == blk_row[r] and c != self_col[r]:
                out[r, m] = sim[r, c]
                m += 1
        out[r, :m].sort()
        lens[r] = m


@numba.njit(cache=True, nogil=True)
def mark_negatives(codes, rows, lo, hi, index, all_same, any_same, all_diff, any_diff, mark, found):
    """Rows satisfying the rule with any of ``rows`` (row ``q`` scans ``index[lo[q]:hi[q]]``).

    Writes them to ``found`` (unsorted, each once) and returns their number;
    ``mark`` (all False on entry) is restored on exit.
    """
    m = 0
    for q in range(rows.shape[0]):
        i = rows[q]
        for t in range(lo[q], hi[q]):
            j = index[t]
            if j == i or mark[j]:
                continue
            if rule_ok(codes, i, j, all_same, any_same, all_diff, any_diff):
                mark[j] = True
                found[m] = j
                m += 1
    for t in range(m):
        mark[found[t]] = False
    return m


@numba.njit(cache=True, nogil=True, inline="always")
def _sim(p, q, n_base, base_sim, own_base, own_own):
    if p < n_base:
        if q < n_base:
            return base_sim[p, q]
        return own_base[q - n_base, p]
    if q < n_base:
        return own_base[p - n_base, q]
    return own_own[p - n_base, q - n_base]


@numba.njit(cache=True, nogil=True, inline="always")
def _count_above(p, v, strict, S, k, blk, n_base, base_sim, base_sorted, base_len, own_base,
                 own_sorted, own_len, own_own):
    """Negatives of ``p`` (pool profiles of its block outside ``S``) above ``v``.

    ``strict``: similarity ``> v``, else ``>= v``.
    """
    if p < n_base:
        row = base_sorted[p]
        n_row = base_len[p]
    else:
        row = own_sorted[p - n_base]
        n_row = own_len[p - n_base]
    if strict:
        c = n_row - _upper_bound(row, n_row, v)
    else:
        c = n_row - lower_bound(row, n_row, v)
    n_own = own_own.shape[0]
    for o in range(n_own):
        q = n_base + o
        if q != p and blk[q] == blk[p]:
            w = _sim(p, q, n_base, base_sim, own_base, own_own)
            if w > v or (not strict and w == v):
                c += 1
    for t in range(k):
        q = S[t]
        if q != p and blk[q] == blk[p]:
            w = _sim(p, q, n_base, base_sim, own_base, own_own)
            if w > v or (not strict and w == v):
                c -= 1
    return c


@numba.njit(cache=True, nogil=True)
def _n_negatives(p, S, k, blk, n_base, base_len, own_len, n_own):
    n = base_len[p] if p < n_base else own_len[p - n_base]
    for o in range(n_own):
        q = n_base + o
        if q != p and blk[q] == blk[p]:
            n += 1
    for t in range(k):
        q = S[t]
        if q != p and blk[q] == blk[p]:
            n -= 1
    return n


@numba.njit(cache=True, nogil=True)
def _member_ap(a, S, k, blk, n_base, base_sim, base_sorted, base_len, own_base, own_sorted,
               own_len, own_own, ties_expected, pos, gt, eq, ranks):
    """AP of ``S[a]`` with positives ``S`` minus itself, scored like the engine."""
    p = S[a]
    m = 0
    for b in range(k):
        if b != a:
            pos[m] = _sim(p, S[b], n_base, base_sim, own_base, own_own)
            m += 1
    pos[:m].sort()
    above_prev = _n_negatives(p, S, k, blk, n_base, base_len, own_len, own_own.shape[0])
    for t in range(m):
        v = pos[t]
        above = _count_above(p, v, True, S, k, blk, n_base, base_sim, base_sorted, base_len,
                             own_base, own_sorted, own_len, own_own)
        equal = _count_above(p, v, False, S, k, blk, n_base, base_sim, base_sorted, base_len,
                             own_base, own_sorted, own_len, own_own) - above
        if t > 0 and pos[t - 1] == v:
            equal = 0  # ties are booked on the first positive of a tie group, as in the engine
        eq[t] = equal
        gt[t] = above_prev - above - equal
        above_prev = above
    gt[m] = above_prev
    eq[m] = 0
    cohesion = 0.0
    for t in range(m):
        cohesion += pos[t]
    ap = score_tallies(pos[:m], gt[: m + 1], eq[: m + 1], ties_expected, ranks)
    return ap, cohesion / m


@numba.njit(cache=True, nogil=True)
def _subset_stat(S, k, blk, n_base, base_sim, base_sorted, base_len, own_base, own_sorted,
                 own_len, own_own, ties_expected, pos, gt, eq, ranks, aps, cohs, mult, order):
    """Statistic of the relabeling ``S``: (mAP, cohesion).

    mAP is the engine's sorted mean of the members' APs; cohesion, the sorted
    mean of each member's mean similarity to the others, only breaks ties of
    mAP. Both depend on the set ``S`` only, not on the order of its entries.
    """
    for a in range(k):
        aps[a], cohs[a] = _member_ap(a, S, k, blk, n_base, base_sim, base_sorted, base_len,
                                     own_base, own_sorted, own_len, own_own, ties_expected, pos,
                                     gt, eq, ranks)
    return _sorted_sum_mean(aps, mult, k, order), _sorted_sum_mean(cohs, mult, k, order)


@numba.njit(cache=True, nogil=True)
def member_scores(S, blk, n_base, base_sim, base_sorted, base_len, own_base, own_sorted, own_len,
                  own_own, ties_expected):
    """AP and mean similarity to the others of every profile of ``S`` (the observed group)."""
    k = S.shape[0]
    pos = np.empty(k, dtype=np.float64)
    gt = np.empty(k + 1, dtype=np.int64)
    eq = np.empty(k + 1, dtype=np.int64)
    ranks = np.empty(k, dtype=np.float64)
    aps = np.empty(k, dtype=np.float64)
    cohs = np.empty(k, dtype=np.float64)
    for a in range(k):
        aps[a], cohs[a] = _member_ap(a, S, k, blk, n_base, base_sim, base_sorted, base_len,
                                     own_base, own_sorted, own_len, own_own, ties_expected, pos,
                                     gt, eq, ranks)
    return aps, cohs


@numba.njit(cache=True, nogil=True)
def _draw_relabeling(state, bm_start, bm, kb, buf, S):
    """Uniform relabeling: ``kb[b]`` of the ``bm`` positions of each block ``b`` (Floyd)."""
    a = 0
    for b in range(kb.shape[0]):
        kk = kb[b]
        if kk == 0:
            continue
        state = _draw_small(state, bm_start[b + 1] - bm_start[b], kk, buf)
        for i in range(kk):
            S[a] = bm[bm_start[b] + buf[i] - 1]
            a += 1
    return state


def _sample_null(key, d_start, n_draws, n_blocks, bm_start, bm, kb, blk, n_base, base_sim,
                 base_sorted, base_len, own_base, own_sorted, own_len, own_own, ties_expected):
    """(mAP, cohesion) of relabelings ``d_start .. d_start + n_draws - 1`` of the null ``key``."""
    out = np.empty(n_draws, dtype=np.float64)
    coh = np.empty(n_draws, dtype=np.float64)
    if n_draws == 0:
        return out, coh
    k = 0
    for b in range(kb.shape[0]):
        k += kb[b]
    n_blocks = max(1, min(n_blocks, n_draws))
    step = (n_draws + n_blocks - 1) // n_blocks
    for w in numba.prange(n_blocks):
        S = np.empty(k, dtype=np.int64)
        buf = np.empty(k, dtype=np.int64)
        pos = np.empty(k, dtype=np.float64)
        gt = np.empty(k + 1, dtype=np.int64)
        eq = np.empty(k + 1, dtype=np.int64)
        ranks = np.empty(k, dtype=np.float64)
        aps = np.empty(k, dtype=np.float64)
        cohs = np.empty(k, dtype=np.float64)
        mult = np.ones(k, dtype=np.int64)
        order = np.empty(k, dtype=np.int64)
        lo = w * step
        hi = min(n_draws, lo + step)
        for d in range(lo, hi):
            state = _mix64(key + np.uint64(d_start + d) * _STREAM_GAMMA)
            _draw_relabeling(state, bm_start, bm, kb, buf, S)
            out[d], coh[d] = _subset_stat(S, k, blk, n_base, base_sim, base_sorted, base_len,
                                          own_base, own_sorted, own_len, own_own, ties_expected,
                                          pos, gt, eq, ranks, aps, cohs, mult, order)
    return out, coh


sample_null = _parallel_build(_sample_null)
sample_null_serial = _serial_build(_sample_null)


@numba.njit(cache=True, nogil=True)
def enumerate_null(total, bm_start, bm, kb, blk, n_base, base_sim, base_sorted, base_len,
                   own_base, own_sorted, own_len, own_own, ties_expected):
    """(mAP, cohesion) of every relabeling (``total`` = product of C(n_b, k_b)).

    Order: lexicographic subsets within each block, the last block varying fastest.
    """
    nb = kb.shape[0]
    k = 0
    for b in range(nb):
        k += kb[b]
    first = np.zeros(nb + 1, dtype=np.int64)  # offset of each block's combination in ``comb``
    for b in range(nb):
        first[b + 1] = first[b] + kb[b]
    comb = np.empty(k, dtype=np.int64)
    for b in range(nb):
        for i in range(kb[b]):
            comb[first[b] + i] = i
    S = np.empty(k, dtype=np.int64)
    pos = np.empty(k, dtype=np.float64)
    gt = np.empty(k + 1, dtype=np.int64)
    eq = np.empty(k + 1, dtype=np.int64)
    ranks = np.empty(k, dtype=np.float64)
    aps = np.empty(k, dtype=np.float64)
    cohs = np.empty(k, dtype=np.float64)
    mult = np.ones(k, dtype=np.int64)
    order = np.empty(k, dtype=np.int64)
    out = np.empty(total, dtype=np.float64)
    coh = np.empty(total, dtype=np.float64)
    for idx in range(total):
        for b in range(nb):
            for i in range(kb[b]):
                S[first[b] + i] = bm[bm_start[b] + comb[first[b] + i]]
        out[idx], coh[idx] = _subset_stat(S, k, blk, n_base, base_sim, base_sorted, base_len,
                                          own_base, own_sorted, own_len, own_own, ties_expected,
                                          pos, gt, eq, ranks, aps, cohs, mult, order)
        # advance the mixed-radix counter of per-block combinations
        b = nb - 1
        while b >= 0:
            kk = kb[b]
            n = bm_start[b + 1] - bm_start[b]
            i = kk - 1
            while i >= 0 and comb[first[b] + i] == n - kk + i:
                i -= 1
            if i >= 0:
                comb[first[b] + i] += 1
                for j in range(i + 1, kk):
                    comb[first[b] + j] = comb[first[b] + j - 1] + 1
                break
            for j in range(kk):
                comb[first[b] + j] = j
            b -= 1
    return out, coh


#: Below this many (draws x k**2) operations the serial build runs.
SERIAL_WORK = 200_000


def run_sample_null(key, n_draws, layout, ties_expected, n_threads, d_start=0):
    """Dispatch :func:`sample_null` (serial for small jobs or one thread)."""
    k = int(layout[2].sum())
    if n_threads <= 1 or n_draws * k * k < SERIAL_WORK:
        return sample_null_serial(key, d_start, n_draws, 1, *layout, ties_expected)
    return sample_null(key, d_start, n_draws, 4 * n_threads, *layout, ties_expected)
