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

from .ap import ap_from_ranks
from .pairs import rule_ok

COSINE, ABS_COSINE, CORRELATION, EUCLIDEAN, MANHATTAN, CHEBYSHEV, PRECOMPUTED = range(7)


@numba.njit(cache=True, inline="always", nogil=True)
def _from_dot(dot, i, j, inv_norm, sq_norm, metric):
    if metric == COSINE or metric == CORRELATION:
        return dot * inv_norm[i] * inv_norm[j]
    if metric == ABS_COSINE:
        return abs(dot * inv_norm[i] * inv_norm[j])
    if metric == EUCLIDEAN:
        d2 = sq_norm[i] + sq_norm[j] - 2.0 * dot
        if d2 < 0.0:
            d2 = 0.0
        return 1.0 / (1.0 + math.sqrt(d2))
    return dot


@numba.njit(cache=True, inline="always", nogil=True)
def pair_similarity(X, i, j, inv_norm, sq_norm, metric):
    """Similarity of rows i and j computed directly (sparse path)."""
    d = X.shape[1]
    if metric == EUCLIDEAN:
        acc = 0.0
        for f in range(d):
            t = X[i, f] - X[j, f]
            acc += t * t
        return 1.0 / (1.0 + math.sqrt(acc))
    if metric == MANHATTAN:
        acc = 0.0
        for f in range(d):
            acc += abs(X[i, f] - X[j, f])
        return 1.0 / (1.0 + acc)
    if metric == CHEBYSHEV:
        acc = 0.0
        for f in range(d):
            t = abs(X[i, f] - X[j, f])
            if t > acc:
                acc = t
        return 1.0 / (1.0 + acc)
    acc = 0.0
    for f in range(d):
        acc += X[i, f] * X[j, f]
    return _from_dot(acc, i, j, inv_norm, sq_norm, metric)


@numba.njit(cache=True, parallel=True, nogil=True)
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


@numba.njit(cache=True, parallel=True, nogil=True)
def collect_sparse(
    slots, rows, X, inv_norm, sq_norm, metric, codes,
    keys, order, starts, all_same, any_same, all_diff, any_diff,
    o_all_same, o_any_same, o_all_diff, o_any_diff, check_other,
    offsets, counts, values, conflict,
):
    """For each query ``rows[q]`` scan its bucket, keep rule matches, compute similarities.

    Results go to ``values[offsets[slots[q]] + counts[slots[q]] ...]``. With
    ``check_other`` a match that also satisfies the other rule is recorded in
    ``conflict[slots[q]]`` (the partner row).
    """
    for q in numba.prange(rows.shape[0]):
        i = rows[q]
        s = slots[q]
        k = keys[i]
        base = offsets[s]
        c = counts[s]
        for idx in range(starts[k], starts[k + 1]):
            j = order[idx]
            if j == i:
                continue
            if not rule_ok(codes, i, j, all_same, any_same, all_diff, any_diff):
                continue
            if check_other and rule_ok(codes, i, j, o_all_same, o_any_same, o_all_diff, o_any_diff):
                conflict[s] = j
            values[base + c] = pair_similarity(X, i, j, inv_norm, sq_norm, metric)
            c += 1
        counts[s] = c


@numba.njit(cache=True, parallel=True, nogil=True)
def collect_dense(
    slots, rows, cols, S, inv_norm, sq_norm, metric, codes,
    all_same, any_same, all_diff, any_diff,
    o_all_same, o_any_same, o_all_diff, o_any_diff, check_other,
    offsets, counts, values, conflict,
):
    """Like :func:`collect_sparse` but reads dot products / similarities from ``S[q, c]``."""
    for q in numba.prange(rows.shape[0]):
        i = rows[q]
        s = slots[q]
        base = offsets[s]
        c = counts[s]
        for b in range(cols.shape[0]):
            j = cols[b]
            if j == i:
                continue
            if not rule_ok(codes, i, j, all_same, any_same, all_diff, any_diff):
                continue
            if check_other and rule_ok(codes, i, j, o_all_same, o_any_same, o_all_diff, o_any_diff):
                conflict[s] = j
            values[base + c] = _from_dot(S[q, b], i, j, inv_norm, sq_norm, metric)
            c += 1
        counts[s] = c


@numba.njit(cache=True, parallel=True, nogil=True)
def count_sparse(rows, codes, keys, order, starts, all_same, any_same, all_diff, any_diff, out):
    """Number of rule matches of each query row within its bucket."""
    for q in numba.prange(rows.shape[0]):
        i = rows[q]
        k = keys[i]
        c = 0
        for idx in range(starts[k], starts[k + 1]):
            j = order[idx]
            if j != i and rule_ok(codes, i, j, all_same, any_same, all_diff, any_diff):
                c += 1
        out[q] = c


@numba.njit(cache=True, nogil=True)
def _expected_group_sum(p_before, t_before, p, t):
    """Sum over the tie group's positives of their expected precision (McSherry & Najork)."""
    acc = 0.0
    frac = (p - 1.0) / (t - 1.0) if t > 1 else 0.0
    for pos in range(1, t + 1):
        acc += (p_before + 1.0 + (pos - 1) * frac) / (t_before + pos)
    return acc * p / t


@numba.njit(cache=True, nogil=True)
def score_list(pos, neg, ties_expected, ranks):
    """AP of one ranked list from its positive and negative similarities (both sorted here)."""
    k = pos.shape[0]
    m = neg.shape[0]
    pos.sort()
    if not ties_expected:
        # No sort of the negatives: for each negative find, by binary search in
        # the ascending positives, how many positives it beats (strictly), then
        # a suffix sum gives the negatives ranked above each positive.
        beats = np.zeros(k + 1, dtype=np.int64)
        for b in range(m):
            v = neg[b]
            lo = 0
            hi = k
            while lo < hi:  # first index with pos[idx] >= v
                mid = (lo + hi) >> 1
                if pos[mid] < v:
                    lo = mid + 1
                else:
                    hi = mid
            beats[lo] += 1  # v > pos[0..lo-1]
        above = 0
        # positives in descending order: pos[k-1] is the best
        for a in range(k):
            idx = k - 1 - a
            above += beats[idx + 1]
            ranks[a] = a + 1 + above
        return ap_from_ranks(ranks, k)
    neg.sort()
    total = 0.0
    a = k - 1  # next positive (descending)
    jn = m - 1
    p_before = 0
    n_before = 0
    while a >= 0:
        s = pos[a]
        while jn >= 0 and neg[jn] > s:
            n_before += 1
            jn -= 1
        p = 0
        while a >= 0 and pos[a] == s:
            p += 1
            a -= 1
        n = 0
        while jn >= 0 and neg[jn] == s:
            n += 1
            jn -= 1
        total += _expected_group_sum(p_before, p_before + n_before, p, p + n)
        p_before += p
        n_before += n
    return total / k


@numba.njit(cache=True, parallel=True, nogil=True)
def score_block(
    pos_values, pos_offsets, pos_counts, neg_values, neg_offsets, neg_counts,
    ties_expected, out_ap, out_npos, out_ntot,
):
    """AP per query slot; NaN and zero counts where a list lacks positives or negatives."""
    nq = pos_counts.shape[0]
    for s in numba.prange(nq):
        k = pos_counts[s]
        m = neg_counts[s]
        if k == 0 or m == 0:
            out_ap[s] = np.nan
            out_npos[s] = 0
            out_ntot[s] = 0
            continue
        pos = pos_values[pos_offsets[s]:pos_offsets[s] + k]
        neg = neg_values[neg_offsets[s]:neg_offsets[s] + m]
        ranks = np.empty(k, dtype=np.float64)
        out_ap[s] = score_list(pos, neg, ties_expected, ranks)
        out_npos[s] = k
        out_ntot[s] = k + m


@numba.njit(cache=True, parallel=True, nogil=True)
def collect_partners(
    slots, rows, codes, keys, order, starts, all_same, any_same, all_diff, any_diff,
    o_all_same, o_any_same, o_all_diff, o_any_diff, check_other,
    offsets, counts, partners, conflict,
):
    """Like :func:`collect_sparse` but records partner rows (for user similarity callables)."""
    for q in numba.prange(rows.shape[0]):
        i = rows[q]
        s = slots[q]
        k = keys[i]
        base = offsets[s]
        c = counts[s]
        for idx in range(starts[k], starts[k + 1]):
            j = order[idx]
            if j == i:
                continue
            if not rule_ok(codes, i, j, all_same, any_same, all_diff, any_diff):
                continue
            if check_other and rule_ok(codes, i, j, o_all_same, o_any_same, o_all_diff, o_any_diff):
                conflict[s] = j
            partners[base + c] = j
            c += 1
        counts[s] = c
