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
def _insertion_sort(a, m):
    for i in range(1, m):
        v = a[i]
        j = i - 1
        while j >= 0 and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


@numba.njit(cache=True, nogil=True)
def _member_ap(
    a,
    S,
    k,
    blk,
    n_base,
    base_sim,
    base_sorted,
    base_len,
    own_base,
    own_sorted,
    own_len,
    own_own,
    ties_expected,
    pos,
    gt,
    eq,
    ranks,
    s_sim,
    o_sim,
):
    """(AP, mean positive similarity) of ``S[a]`` with positives ``S`` minus itself.

    Negatives are the pool profiles of its block outside ``S``: those above a
    similarity ``v`` are counted by binary search in the sorted base row, plus
    the own positions, minus the relabeled ones. Scored like the engine.
    """
    p = S[a]
    bp = blk[p]
    n_own = own_own.shape[0]
    if p < n_base:
        row = base_sorted[p]
        n_row = base_len[p]
    else:
        row = own_sorted[p - n_base]
        n_row = own_len[p - n_base]
    # similarities to the relabeled set (same block, others only) and to the own positions
    n_neg = n_row
    m = 0
    n_s = 0
    for b in range(k):
        if b == a:
            continue
        q = S[b]
        w = _sim(p, q, n_base, base_sim, own_base, own_own)
        pos[m] = w
        m += 1
        if blk[q] == bp:
            s_sim[n_s] = w
            n_s += 1
    n_o = 0
    for o in range(n_own):
        q = n_base + o
        if q != p and blk[q] == bp:
            o_sim[n_o] = _sim(p, q, n_base, base_sim, own_base, own_own)
            n_o += 1
    n_neg += n_o - n_s
    _insertion_sort(pos, m)
    above_prev = n_neg
    cohesion = 0.0
    for t in range(m):
        v = pos[t]
        cohesion += v
        above = n_row - _upper_bound(row, n_row, v)
        at_least = n_row - lower_bound(row, n_row, v)
        for i in range(n_o):
            w = o_sim[i]
            above += w > v
            at_least += w >= v
        for i in range(n_s):
            w = s_sim[i]
            above -= w > v
            at_least -= w >= v
        equal = at_least - above
        if t > 0 and pos[t - 1] == v:
            equal = 0  # ties are booked on the first positive of a tie group, as in the engine
        eq[t] = equal
        gt[t] = above_prev - above - equal
        above_prev = above
    gt[m] = above_prev
    eq[m] = 0
    ap = score_tallies(pos[:m], gt[: m + 1], eq[: m + 1], ties_expected, ranks)
    return ap, cohesion / m


@numba.njit(cache=True, nogil=True)
def _subset_stat(
    S,
    k,
    blk,
    n_base,
    base_sim,
    base_sorted,
    base_len,
    own_base,
    own_sorted,
    own_len,
    own_own,
    ties_expected,
    pos,
    gt,
    eq,
    ranks,
    aps,
    cohs,
    mult,
    order,
    s_sim,
    o_sim,
):
    """Statistic of the relabeling ``S``: (mAP, cohesion).

    mAP is the engine's sorted mean of the members' APs; cohesion, the sorted
    mean of each member's mean similarity to the others, only breaks ties of
    mAP. Both depend on the set ``S`` only, not on the order of its entries.
    """
    for a in range(k):
        aps[a], cohs[a] = _member_ap(
            a,
            S,
            k,
            blk,
            n_base,
            base_sim,
            base_sorted,
            base_len,
            own_base,
            own_sorted,
            own_len,
            own_own,
            ties_expected,
            pos,
            gt,
            eq,
            ranks,
            s_sim,
            o_sim,
        )
    return _sorted_sum_mean(aps, mult, k, order), _sorted_sum_mean(cohs, mult, k, order)


@numba.njit(cache=True, nogil=True)
def member_scores(
    S,
    blk,
    n_base,
    base_sim,
    base_sorted,
    base_len,
    own_base,
    own_sorted,
    own_len,
    own_own,
    ties_expected,
):
    """AP and mean similarity to the others of every profile of ``S`` (the observed group)."""
    k = S.shape[0]
    pos = np.empty(k, dtype=np.float64)
    gt = np.empty(k + 1, dtype=np.int64)
    eq = np.empty(k + 1, dtype=np.int64)
    ranks = np.empty(k, dtype=np.float64)
    aps = np.empty(k, dtype=np.float64)
    cohs = np.empty(k, dtype=np.float64)
    s_sim = np.empty(k, dtype=np.float64)
    o_sim = np.empty(own_own.shape[0], dtype=np.float64)
    for a in range(k):
        aps[a], cohs[a] = _member_ap(
            a,
            S,
            k,
            blk,
            n_base,
            base_sim,
            base_sorted,
            base_len,
            own_base,
            own_sorted,
            own_len,
            own_own,
            ties_expected,
            pos,
            gt,
            eq,
            ranks,
            s_sim,
            o_sim,
        )
    return aps, cohs


@numba.njit(cache=True, nogil=True)
def _buffers(k, n_own):
    """Scratch arrays of one worker: (pos, gt, eq, ranks, aps, cohs, mult, order, s_sim, o_sim)."""
    return (
        np.empty(k, dtype=np.float64),
        np.empty(k + 1, dtype=np.int64),
        np.empty(k + 1, dtype=np.int64),
        np.empty(k, dtype=np.float64),
        np.empty(k, dtype=np.float64),
        np.empty(k, dtype=np.float64),
        np.ones(k, dtype=np.int64),
        np.empty(k, dtype=np.int64),
        np.empty(k, dtype=np.float64),
        np.empty(n_own, dtype=np.float64),
    )


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


def _sample_null(
    key,
    d_start,
    n_draws,
    n_blocks,
    bm_start,
    bm,
    kb,
    blk,
    n_base,
    base_sim,
    base_sorted,
    base_len,
    own_base,
    own_sorted,
    own_len,
    own_own,
    ties_expected,
):
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
        pos, gt, eq, ranks, aps, cohs, mult, order, s_sim, o_sim = _buffers(k, own_own.shape[0])
        lo = w * step
        hi = min(n_draws, lo + step)
        for d in range(lo, hi):
            state = _mix64(key + np.uint64(d_start + d) * _STREAM_GAMMA)
            _draw_relabeling(state, bm_start, bm, kb, buf, S)
            out[d], coh[d] = _subset_stat(
                S,
                k,
                blk,
                n_base,
                base_sim,
                base_sorted,
                base_len,
                own_base,
                own_sorted,
                own_len,
                own_own,
                ties_expected,
                pos,
                gt,
                eq,
                ranks,
                aps,
                cohs,
                mult,
                order,
                s_sim,
                o_sim,
            )
    return out, coh


sample_null = _parallel_build(_sample_null)
sample_null_serial = _serial_build(_sample_null)


@numba.njit(cache=True, nogil=True)
def enumerate_null(
    total,
    bm_start,
    bm,
    kb,
    blk,
    n_base,
    base_sim,
    base_sorted,
    base_len,
    own_base,
    own_sorted,
    own_len,
    own_own,
    ties_expected,
):
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
    pos, gt, eq, ranks, aps, cohs, mult, order, s_sim, o_sim = _buffers(k, own_own.shape[0])
    out = np.empty(total, dtype=np.float64)
    coh = np.empty(total, dtype=np.float64)
    for idx in range(total):
        for b in range(nb):
            for i in range(kb[b]):
                S[first[b] + i] = bm[bm_start[b] + comb[first[b] + i]]
        out[idx], coh[idx] = _subset_stat(
            S,
            k,
            blk,
            n_base,
            base_sim,
            base_sorted,
            base_len,
            own_base,
            own_sorted,
            own_len,
            own_own,
            ties_expected,
            pos,
            gt,
            eq,
            ranks,
            aps,
            cohs,
            mult,
            order,
            s_sim,
            o_sim,
        )
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


# -- relabelings shared by groups with the same base and pool shape ---------------------------
# With a large base (e.g. 1,000 controls) and a few own rows (a group's replicates), most
# relabelings pick base profiles only. Their counts of base negatives above each positive
# depend on the base and the draw only, so they are tabulated once and every group adds the
# contribution of its own rows (which are negatives of every picked profile of their block).


def _base_tables(
    key,
    d_start,
    n_draws,
    n_blocks,
    bm_start,
    bm,
    kb,
    blk,
    n_base,
    base_sim,
    base_sorted,
    base_len,
    ties_expected,
):
    """Per draw: the relabeling, whether it picks an own position, and for base-only draws the
    sorted positives of each picked profile with its base negatives above / at least them, and
    the base-only (mAP, cohesion), an upper bound of the draw's statistic for any own rows
    (``inf`` for draws that pick own positions)."""
    k = 0
    for b in range(kb.shape[0]):
        k += kb[b]
    m = max(k - 1, 1)
    S_tab = np.empty((n_draws, k), dtype=np.int64)
    own = np.zeros(n_draws, dtype=np.bool_)
    pos_tab = np.empty((n_draws, k, m), dtype=np.float64)
    gt_tab = np.empty((n_draws, k, m), dtype=np.int32)
    ge_tab = np.empty((n_draws, k, m), dtype=np.int32)
    neg_tab = np.empty((n_draws, k), dtype=np.int32)
    bound = np.empty((n_draws, 2), dtype=np.float64)
    if n_draws == 0:
        return S_tab, own, pos_tab, gt_tab, ge_tab, neg_tab, bound
    n_blocks = max(1, min(n_blocks, n_draws))
    step = (n_draws + n_blocks - 1) // n_blocks
    for w in numba.prange(n_blocks):
        S = np.empty(k, dtype=np.int64)
        buf = np.empty(k, dtype=np.int64)
        pos, gt, eq, ranks, aps, cohs, mult, order, s_sim, o_sim = _buffers(k, 0)
        lo = w * step
        hi = min(n_draws, lo + step)
        for d in range(lo, hi):
            state = _mix64(key + np.uint64(d_start + d) * _STREAM_GAMMA)
            _draw_relabeling(state, bm_start, bm, kb, buf, S)
            S_tab[d, :] = S
            for a in range(k):
                if S[a] >= n_base:
                    own[d] = True
            if own[d]:
                bound[d, 0] = np.inf
                bound[d, 1] = np.inf
                continue
            for a in range(k):
                p = S[a]
                n_row = base_len[p]
                row = base_sorted[p]
                mm = 0
                n_s = 0
                for b in range(k):
                    if b == a:
                        continue
                    w_ = base_sim[p, S[b]]
                    pos[mm] = w_
                    mm += 1
                    if blk[S[b]] == blk[p]:
                        s_sim[n_s] = w_
                        n_s += 1
                _insertion_sort(pos, mm)
                neg_tab[d, a] = n_row - n_s
                for t in range(mm):
                    v = pos[t]
                    above = n_row - _upper_bound(row, n_row, v)
                    at_least = n_row - lower_bound(row, n_row, v)
                    for i in range(n_s):
                        above -= s_sim[i] > v
                        at_least -= s_sim[i] >= v
                    pos_tab[d, a, t] = v
                    gt_tab[d, a, t] = above
                    ge_tab[d, a, t] = at_least
            bound[d, 0], bound[d, 1] = _tabled_stat(
                d,
                S,
                k,
                own_sorted_empty(),
                0,
                blk,
                n_base,
                pos_tab,
                gt_tab,
                ge_tab,
                neg_tab,
                ties_expected,
                pos,
                gt,
                eq,
                ranks,
                aps,
                cohs,
                mult,
                order,
                s_sim,
            )
    return S_tab, own, pos_tab, gt_tab, ge_tab, neg_tab, bound


@numba.njit(cache=True, nogil=True)
def own_sorted_empty():
    return np.empty(0, dtype=np.float64).reshape(0, 0)


@numba.njit(cache=True, nogil=True)
def _tabled_stat(
    d,
    S,
    k,
    own_base,
    n_own,
    blk,
    n_base,
    pos_tab,
    gt_tab,
    ge_tab,
    neg_tab,
    ties_expected,
    pos,
    gt,
    eq,
    ranks,
    aps,
    cohs,
    mult,
    order,
    o_sim,
):
    """(mAP, cohesion) of base-only draw ``d`` when the ``n_own`` own rows are negatives of
    every picked profile of their block (``n_own = 0``: the base-only statistic, an upper
    bound: extra negatives never raise an AP)."""
    m = k - 1
    for a in range(k):
        p = S[a]
        n_o = 0
        for o in range(n_own):
            if blk[n_base + o] == blk[p]:
                o_sim[n_o] = own_base[o, p]
                n_o += 1
        above_prev = neg_tab[d, a] + n_o
        cohesion = 0.0
        for t in range(m):
            v = pos_tab[d, a, t]
            pos[t] = v
            cohesion += v
            above = np.int64(gt_tab[d, a, t])
            at_least = np.int64(ge_tab[d, a, t])
            for i in range(n_o):
                above += o_sim[i] > v
                at_least += o_sim[i] >= v
            equal = at_least - above
            if t > 0 and pos[t - 1] == v:
                equal = 0
            eq[t] = equal
            gt[t] = above_prev - above - equal
            above_prev = above
        gt[m] = above_prev
        eq[m] = 0
        aps[a] = score_tallies(pos[:m], gt[: m + 1], eq[: m + 1], ties_expected, ranks)
        cohs[a] = cohesion / m
    return _sorted_sum_mean(aps, mult, k, order), _sorted_sum_mean(cohs, mult, k, order)


def _null_from_tables(
    draws,
    S_tab,
    own,
    pos_tab,
    gt_tab,
    ge_tab,
    neg_tab,
    n_blocks,
    blk,
    n_base,
    base_sim,
    base_sorted,
    base_len,
    own_base,
    own_sorted,
    own_len,
    own_own,
    ties_expected,
):
    """(mAP, cohesion) of the tabulated relabelings ``draws`` for one group's own rows."""
    n_draws = draws.shape[0]
    k = S_tab.shape[1]
    out = np.empty(n_draws, dtype=np.float64)
    coh = np.empty(n_draws, dtype=np.float64)
    if n_draws == 0:
        return out, coh
    n_own = own_own.shape[0]
    n_blocks = max(1, min(n_blocks, n_draws))
    step = (n_draws + n_blocks - 1) // n_blocks
    for w in numba.prange(n_blocks):
        pos, gt, eq, ranks, aps, cohs, mult, order, s_sim, o_sim = _buffers(k, n_own)
        lo = w * step
        hi = min(n_draws, lo + step)
        for j in range(lo, hi):
            d = draws[j]
            S = S_tab[d]
            if own[d]:
                out[j], coh[j] = _subset_stat(
                    S,
                    k,
                    blk,
                    n_base,
                    base_sim,
                    base_sorted,
                    base_len,
                    own_base,
                    own_sorted,
                    own_len,
                    own_own,
                    ties_expected,
                    pos,
                    gt,
                    eq,
                    ranks,
                    aps,
                    cohs,
                    mult,
                    order,
                    s_sim,
                    o_sim,
                )
                continue
            out[j], coh[j] = _tabled_stat(
                d,
                S,
                k,
                own_base,
                n_own,
                blk,
                n_base,
                pos_tab,
                gt_tab,
                ge_tab,
                neg_tab,
                ties_expected,
                pos,
                gt,
                eq,
                ranks,
                aps,
                cohs,
                mult,
                order,
                o_sim,
            )
    return out, coh


base_tables = _parallel_build(_base_tables)
base_tables_serial = _serial_build(_base_tables)
null_from_tables = _parallel_build(_null_from_tables)
null_from_tables_serial = _serial_build(_null_from_tables)


def run_base_tables(key, n_draws, layout, ties_expected, n_threads):
    """Dispatch :func:`base_tables` (``layout`` as for :func:`run_sample_null`, own rows unused)."""
    bm_start, bm, kb, blk, n_base, base_sim, base_sorted, base_len = layout[:8]
    k = int(kb.sum())
    f, nb = (
        (base_tables_serial, 1)
        if n_threads <= 1 or n_draws * k * k < SERIAL_WORK
        else (base_tables, 4 * n_threads)
    )
    return f(
        key,
        0,
        n_draws,
        nb,
        bm_start,
        bm,
        kb,
        blk,
        n_base,
        base_sim,
        base_sorted,
        base_len,
        ties_expected,
    )


def run_null_from_tables(draws, tables, layout, ties_expected, n_threads):
    """Dispatch :func:`null_from_tables` for the draws ``draws`` of one group."""
    k = tables[0].shape[1]
    n_draws = draws.shape[0]
    f, nb = (
        (null_from_tables_serial, 1)
        if n_threads <= 1 or n_draws * k * k < SERIAL_WORK
        else (null_from_tables, 4 * n_threads)
    )
    return f(draws, *tables[:6], nb, *layout[3:], ties_expected)
