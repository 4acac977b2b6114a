"""Numba kernels of the retrieval engine: collect ranked-list similarities, score AP.

Metric codes (see :mod:`pairmap.similarity`):
0 cosine, 1 abs_cosine, 2 correlation (cosine of row-centred data),
3 euclidean, 4 manhattan, 5 chebyshev, 6 precomputed (dense matrix already
holds similarities).

Per block the engine fills, for every query, a slice of a flat buffer with the
similarities of its positives and another with those of its negatives
(``offsets``/``counts`` in CSR style); :func:`score_block` then turns each
query's two lists into AP without building the merged ranked list.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .._codes import (  # noqa: F401 - re-exported: the kernels' metric codes
    ABS_COSINE,
    CHEBYSHEV,
    CORRELATION,
    COSINE,
    EUCLID_RECOMPUTE,
    EUCLIDEAN,
    MANHATTAN,
    PARTNER,
    PRECOMPUTED,
    SNAP,
)
from .ap import ap_from_ranks
from .pairs import rule_ok
from .search import lower_bound

_INV_SNAP = 1.0 / SNAP  # exact: SNAP is a power of two


@numba.njit(cache=True, inline="always", nogil=True)
def snap(v):
    """Round a similarity to the tie grid (see ``SNAP``)."""
    return np.floor(v * SNAP + 0.5) * _INV_SNAP


@numba.njit(cache=True, inline="always", nogil=True)
def _from_dot(dot, i, j, inv_norm, sq_norm, metric):
    if metric == COSINE or metric == CORRELATION:
        return snap(dot * inv_norm[i] * inv_norm[j])
    if metric == ABS_COSINE:
        return snap(abs(dot * inv_norm[i] * inv_norm[j]))
    if metric == EUCLIDEAN:
        d2 = sq_norm[i] + sq_norm[j] - 2.0 * dot
        if d2 < 0.0:
            d2 = 0.0
        return snap(1.0 / (1.0 + math.sqrt(d2)))
    return snap(dot)


@numba.njit(cache=True, nogil=True, fastmath=True)
def pair_similarity(X, i, j, inv_norm, sq_norm, metric):
    """Similarity of rows i and j computed directly (direct-scan path).

    ``fastmath`` lets LLVM vectorize the feature loop (float64 accumulation);
    inputs are checked finite beforehand, so only the summation order
    changes (last-bit differences, like a BLAS product).
    """
    d = X.shape[1]
    if metric == EUCLIDEAN:
        acc = 0.0
        for f in range(d):
            t = X[i, f] - X[j, f]
            acc += t * t
        return snap(1.0 / (1.0 + math.sqrt(acc)))
    if metric == MANHATTAN:
        acc = 0.0
        for f in range(d):
            acc += abs(X[i, f] - X[j, f])
        return snap(1.0 / (1.0 + acc))
    if metric == CHEBYSHEV:
        acc = 0.0
        for f in range(d):
            t = abs(X[i, f] - X[j, f])
            if t > acc:
                acc = t
        return snap(1.0 / (1.0 + acc))
    acc = 0.0
    for f in range(d):
        acc += X[i, f] * X[j, f]
    return _from_dot(acc, i, j, inv_norm, sq_norm, metric)


@numba.njit(cache=True, inline="always", nogil=True)
def _block_similarity(raw, X, i, j, inv_norm, sq_norm, metric):
    """Similarity from a dense-block entry (dot product, or similarity for PRECOMPUTED)."""
    if metric == EUCLIDEAN:
        s2 = sq_norm[i] + sq_norm[j]
        if s2 - 2.0 * raw < EUCLID_RECOMPUTE * s2:
            return pair_similarity(X, i, j, inv_norm, sq_norm, metric)
    return _from_dot(raw, i, j, inv_norm, sq_norm, metric)


@numba.njit(cache=True, nogil=True)
def dense_distance_similarity(Xq, Xc, metric, out):
    """Similarities 1/(1+d) for manhattan/chebyshev/euclidean between all rows of Xq and Xc."""
    nq, d = Xq.shape
    nc = Xc.shape[0]
    for a in numba.prange(nq):
        for b in range(nc):
            acc = 0.0
            if metric == MANHATTAN:
                for f in range(d):
                    acc += abs(Xq[a, f] - Xc[b, f])
            elif metric == CHEBYSHEV:
                for f in range(d):
                    t = abs(Xq[a, f] - Xc[b, f])
                    if t > acc:
                        acc = t
            else:
                for f in range(d):
                    t = Xq[a, f] - Xc[b, f]
                    acc += t * t
                acc = math.sqrt(acc)
            out[a, b] = 1.0 / (1.0 + acc)


@numba.njit(cache=True, inline="always", nogil=True)
def _scan(
    i,
    s,
    start,
    stop,
    index,
    X,
    inv_norm,
    sq_norm,
    metric,
    codes,
    all_same,
    any_same,
    all_diff,
    any_diff,
    o_all_same,
    o_any_same,
    o_all_diff,
    o_any_diff,
    check_other,
    out,
    base,
    conflict,
):
    """Scan candidates ``index[start:stop]`` of query row ``i`` (slot ``s``).

    Every match of the rule goes to ``out[base + c]`` (its similarity, or its
    row for ``metric == PARTNER``); returns the number of matches. A match that
    also satisfies the other rule is recorded in ``conflict[s]`` when
    ``check_other``.
    """
    c = 0
    for idx in range(start, stop):
        j = index[idx]
        if j == i:
            continue
        if not rule_ok(codes, i, j, all_same, any_same, all_diff, any_diff):
            continue
        if check_other and rule_ok(codes, i, j, o_all_same, o_any_same, o_all_diff, o_any_diff):
            conflict[s] = j
        if metric == PARTNER:
            out[base + c] = j
        else:
            out[base + c] = pair_similarity(X, i, j, inv_norm, sq_norm, metric)
        c += 1
    return c


@numba.njit(cache=True, nogil=True)
def collect_direct(
    slots,
    rows,
    lo,
    hi,
    index,
    X,
    inv_norm,
    sq_norm,
    metric,
    codes,
    all_same,
    any_same,
    all_diff,
    any_diff,
    o_all_same,
    o_any_same,
    o_all_diff,
    o_any_diff,
    check_other,
    offsets,
    counts,
    values,
    conflict,
):
    """For each query ``rows[q]`` scan ``index[lo[q]:hi[q]]``, keep rule matches, compute similarities.

    Results go to ``values[offsets[slots[q]] + counts[slots[q]] ...]``. With
    ``check_other`` a match that also satisfies the other rule is recorded in
    ``conflict[slots[q]]`` (the partner row).
    """
    for q in numba.prange(rows.shape[0]):
        s = slots[q]
        counts[s] += _scan(
            rows[q],
            s,
            lo[q],
            hi[q],
            index,
            X,
            inv_norm,
            sq_norm,
            metric,
            codes,
            all_same,
            any_same,
            all_diff,
            any_diff,
            o_all_same,
            o_any_same,
            o_all_diff,
            o_any_diff,
            check_other,
            values,
            offsets[s] + counts[s],
            conflict,
        )


@numba.njit(cache=True, nogil=True)
def collect_dense(slots, rows, cols, S, M, X, inv_norm, sq_norm, metric, offsets, counts, values):
    """Like :func:`collect_direct` for a dense block: ``M[q, c]`` says which entries match."""
    for q in numba.prange(rows.shape[0]):
        i = rows[q]
        s = slots[q]
        base = offsets[s]
        c = counts[s]
        for b in range(cols.shape[0]):
            if M[q, b]:
                values[base + c] = _block_similarity(
                    S[q, b], X, i, cols[b], inv_norm, sq_norm, metric
                )
                c += 1
        counts[s] = c


@numba.njit(cache=True, inline="always", nogil=True)
def _tally(v, pos, k, gt, eq):
    """Record negative similarity ``v`` against the ascending positives ``pos[:k]``.

    With ``lo`` = number of positives strictly below ``v``: a tie with
    ``pos[lo]`` goes to ``eq[lo]``, otherwise ``gt[lo]`` (v beats exactly the
    positives below ``lo``). ``pos``, ``gt`` and ``eq`` are per-query local
    arrays (kept out of shared buffers so the compiler can keep them hot).
    """
    if k <= 16:
        lo = 0
        for t in range(k):
            lo += pos[t] < v
    else:
        lo = lower_bound(pos, k, v)
    if lo < k and pos[lo] == v:
        eq[lo] += 1
    else:
        gt[lo] += 1


@numba.njit(cache=True, inline="always", nogil=True)
def _flush(gt_local, eq_local, gt, eq, t0):
    for t in range(gt_local.shape[0]):
        gt[t0 + t] += gt_local[t]
        eq[t0 + t] += eq_local[t]


#: up to this many positives, negatives are counted against each positive in
#: branch-free (vectorized) passes; beyond, each negative is placed by binary search
FEW_POSITIVES = 32


@numba.njit(cache=True, nogil=True)
def _tally_all(buf, c, pos, k, gt, eq, t0):
    """Tally the negatives ``buf[:c]`` against the ascending positives ``pos[:k]``.

    Adds to ``gt[t0:t0+k+1]`` and ``eq[t0:t0+k+1]`` exactly what :func:`_tally`
    would add value by value.
    """
    if k <= FEW_POSITIVES:
        above_prev = c  # negatives above pos[t-1]; all of them for t = 0
        for t in range(k):
            p = pos[t]
            above = 0
            equal = 0
            for b in range(c):
                above += buf[b] > p
                equal += buf[b] == p
            if t > 0 and pos[t - 1] == p:
                equal = 0  # ties are booked on the first positive of the group
            eq[t0 + t] += equal
            gt[t0 + t] += above_prev - above - equal
            above_prev = above
        gt[t0 + k] += above_prev
    else:
        gt_local = np.zeros(k + 1, dtype=np.int64)
        eq_local = np.zeros(k + 1, dtype=np.int64)
        for b in range(c):
            _tally(buf[b], pos, k, gt_local, eq_local)
        _flush(gt_local, eq_local, gt, eq, t0)


@numba.njit(cache=True, nogil=True)
def sort_segments(values, offsets, counts, max_len):
    """Sort each query's positive similarities ascending, in place (segments up to ``max_len``)."""
    for s in numba.prange(counts.shape[0]):
        if counts[s] <= max_len:
            values[offsets[s] : offsets[s] + counts[s]].sort()


@numba.njit(cache=True, nogil=True)
def rank_direct(
    slots,
    rows,
    lo,
    hi,
    index,
    X,
    inv_norm,
    sq_norm,
    metric,
    codes,
    all_same,
    any_same,
    all_diff,
    any_diff,
    o_all_same,
    o_any_same,
    o_all_diff,
    o_any_diff,
    check_other,
    pos_values,
    pos_offsets,
    pos_counts,
    gt,
    eq,
    neg_counts,
    conflict,
):
    """Scan each query's candidates ``index[lo[q]:hi[q]]``; tally every negative against its positives."""
    buf = np.empty(0)
    for q in numba.prange(rows.shape[0]):
        i = rows[q]
        s = slots[q]
        k = pos_counts[s]
        if k == 0:
            continue
        p0 = pos_offsets[s]
        if buf.shape[0] < hi[q] - lo[q]:
            buf = np.empty(hi[q] - lo[q])
        c = _scan(
            i,
            s,
            lo[q],
            hi[q],
            index,
            X,
            inv_norm,
            sq_norm,
            metric,
            codes,
            all_same,
            any_same,
            all_diff,
            any_diff,
            o_all_same,
            o_any_same,
            o_all_diff,
            o_any_diff,
            check_other,
            buf,
            0,
            conflict,
        )
        _tally_all(buf, c, pos_values[p0 : p0 + k], k, gt, eq, p0 + s)
        neg_counts[s] += c


@numba.njit(cache=True, nogil=True)
def rank_dense(
    slots,
    rows,
    cols,
    S,
    M,
    X,
    inv_norm,
    sq_norm,
    metric,
    pos_values,
    pos_offsets,
    pos_counts,
    gt,
    eq,
    neg_counts,
):
    """Like :func:`rank_direct` for a dense block: ``M[q, c]`` says which entries are negatives."""
    buf = np.empty(cols.shape[0])
    for q in numba.prange(rows.shape[0]):
        i = rows[q]
        s = slots[q]
        k = pos_counts[s]
        if k == 0:
            continue
        p0 = pos_offsets[s]
        c = 0
        for b in range(cols.shape[0]):
            if M[q, b]:
                buf[c] = _block_similarity(S[q, b], X, i, cols[b], inv_norm, sq_norm, metric)
                c += 1
        _tally_all(buf, c, pos_values[p0 : p0 + k], k, gt, eq, p0 + s)
        neg_counts[s] += c


@numba.njit(cache=True, nogil=True)
def rank_values(neg_values, neg_offsets, neg_counts, pos_values, pos_offsets, pos_counts, gt, eq):
    """Tally precomputed negative similarities (used with similarity callables)."""
    for s in numba.prange(pos_counts.shape[0]):
        k = pos_counts[s]
        if k == 0:
            continue
        p0 = pos_offsets[s]
        n0 = neg_offsets[s]
        _tally_all(
            neg_values[n0 : n0 + neg_counts[s]],
            neg_counts[s],
            pos_values[p0 : p0 + k],
            k,
            gt,
            eq,
            p0 + s,
        )


@numba.njit(cache=True, nogil=True)
def _expected_group_sum(p_before, t_before, p, t):
    """Sum over a tie group's positives of their expected precision (McSherry & Najork).

    The group holds ``p`` positives among ``t`` tied items, after ``t_before``
    items of which ``p_before`` are positives. A positive at position ``r`` of
    the group has, in expectation, ``(r-1)(p-1)/(t-1)`` positives before it in
    the group; precision is linear in that count.
    """
    acc = 0.0
    frac = (p - 1.0) / (t - 1.0) if t > 1 else 0.0
    for r in range(1, t + 1):
        acc += (p_before + 1.0 + (r - 1) * frac) / (t_before + r)
    return acc * p / t


@numba.njit(cache=True, nogil=True)
def score_tallies(pos, gt, eq, ties_expected, ranks):
    """AP of one list from its ascending positives and the negative tallies.

    ``gt[L]``: negatives strictly between ``pos[L-1]`` and ``pos[L]``;
    ``eq[L]``: negatives equal to ``pos[L]`` (``L`` first of its tie group).
    """
    k = pos.shape[0]
    if not ties_expected:
        above = 0
        for a in range(k):  # the a-th best positive is pos[k-1-a]
            idx = k - 1 - a
            above += gt[idx + 1] + eq[idx + 1]
            ranks[a] = a + 1 + above
        return ap_from_ranks(ranks, k)
    total = 0.0
    above = gt[k]  # negatives strictly above the current group
    hi = k  # the current tie group is pos[lo:hi]
    while hi > 0:
        v = pos[hi - 1]
        lo = hi - 1
        while lo > 0 and pos[lo - 1] == v:
            lo -= 1
        p = hi - lo
        p_before = k - hi
        total += _expected_group_sum(p_before, p_before + above, p, p + eq[lo])
        for L in range(lo, hi):
            above += gt[L] + eq[L]
        hi = lo
    return total / k


@numba.njit(cache=True, nogil=True)
def score_block(
    pos_values,
    pos_offsets,
    pos_counts,
    gt,
    eq,
    neg_counts,
    ties_expected,
    out_ap,
    out_npos,
    out_ntot,
):
    """AP per query slot; NaN and zero counts where a list lacks positives or negatives."""
    for s in numba.prange(pos_counts.shape[0]):
        k = pos_counts[s]
        m = neg_counts[s]
        if k == 0 or m == 0:
            out_ap[s] = np.nan
            out_npos[s] = 0
            out_ntot[s] = 0
            continue
        p0 = pos_offsets[s]
        t0 = p0 + s
        ranks = np.empty(k, dtype=np.float64)
        out_ap[s] = score_tallies(
            pos_values[p0 : p0 + k], gt[t0 : t0 + k + 1], eq[t0 : t0 + k + 1], ties_expected, ranks
        )
        out_npos[s] = k
        out_ntot[s] = k + m
