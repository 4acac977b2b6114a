"""Numba kernels for multi-label pairing (label sets as CSR arrays of integer label codes).

Label sets are stored twice:

* per profile: ``lab_ptr`` (n + 1) and ``lab_code`` -- the labels of row ``i``
  are ``lab_code[lab_ptr[i]:lab_ptr[i + 1]]`` (one *membership* each);
* per label: ``mem_ptr`` (n_labels + 1) and ``mem_row`` -- the rows carrying
  label ``T`` are ``mem_row[mem_ptr[T]:mem_ptr[T + 1]]``, ascending.

Two rows *share* a label when their sets intersect. The AP kernels find the
rows sharing a label with a query by stamping them in a ``mark`` array
(``mark[j] == i``: row ``j`` shares a label with query row ``i``), so the
"label sets are disjoint" test of a negative candidate is one array read.
"""

from __future__ import annotations

import numba
import numpy as np

from .pairs import rule_ok
from .retrieval import _block_similarity, pair_similarity


@numba.njit(cache=True, inline="always", nogil=True)
def mark_sharers(i, lab_ptr, lab_code, mem_ptr, mem_row, mark):
    """Set ``mark[j] = i`` for every row ``j`` sharing a label with row ``i`` (``i`` included)."""
    for t in range(lab_ptr[i], lab_ptr[i + 1]):
        lab = lab_code[t]
        for idx in range(mem_ptr[lab], mem_ptr[lab + 1]):
            mark[mem_row[idx]] = i


@numba.njit(cache=True, nogil=True)
def collect_label_positives(
    rows,
    first_slot,
    lab_ptr,
    lab_code,
    mem_ptr,
    mem_row,
    X,
    inv_norm,
    sq_norm,
    metric,
    codes,
    all_same,
    any_same,
    all_diff,
    any_diff,
    offsets,
    counts,
    values,
):
    """Similarities of the positives of every (query, label) membership of a block.

    Query ``rows[q]``'s memberships are the slots ``first_slot[q] ...`` in list
    order; the positives of a slot are the other rows carrying that label that
    satisfy the rest of the positive rule. They go to
    ``values[offsets[s]:offsets[s] + counts[s]]`` (unsorted).
    """
    for q in range(rows.shape[0]):
        i = rows[q]
        s = first_slot[q]
        for t in range(lab_ptr[i], lab_ptr[i + 1]):
            lab = lab_code[t]
            base = offsets[s]
            c = 0
            for idx in range(mem_ptr[lab], mem_ptr[lab + 1]):
                j = mem_row[idx]
                if j == i or not rule_ok(codes, i, j, all_same, any_same, all_diff, any_diff):
                    continue
                values[base + c] = pair_similarity(X, i, j, inv_norm, sq_norm, metric)
                c += 1
            counts[s] = c
            s += 1


@numba.njit(cache=True, inline="always", nogil=True)
def _first_not_below(a, size, v):
    """First index ``i < size`` with ``a[i] >= v`` (or ``size``); branch-free halving."""
    if size == 0:
        return 0
    base = 0
    n = size
    while n > 1:
        half = n >> 1
        base = base + half if a[base + half] < v else base
        n -= half
    return base + (1 if a[base] < v else 0)


#: at most this many buckets index a profile's positive grid (see :func:`_tally_labels`)
MAX_BUCKETS = 4096


@numba.njit(cache=True, inline="always", nogil=True)
def _bucket(v, g0, scale, n_buckets):
    x = (v - g0) * scale
    if x <= 0.0:
        return 0
    if x >= n_buckets - 1:
        return n_buckets - 1
    return int(x)


@numba.njit(cache=True, nogil=True)
def _tally_labels(i, s0, lab_ptr, buf, c, pos_values, pos_offsets, pos_counts, gt, eq, work):
    """Tally the negatives ``buf[:c]`` of row ``i`` against each of its labels' positives.

    Adds to ``gt``/``eq`` of every label slot exactly what
    :func:`pairmap._kernels.retrieval._tally_all` would add label by label, but
    places each negative only once: against the sorted union ("grid") of all the
    row's positive values. For a value ``v`` first found at grid index ``f``,
    the negatives strictly above ``v`` are the suffix sum past ``f`` and the
    negatives equal to ``v`` are ``eq_grid[f]``; each label's per-gap counts
    follow by differences. ``work`` is a scratch buffer, returned (maybe grown).
    """
    n_lab = lab_ptr[i + 1] - lab_ptr[i]
    size = 0
    for s in range(s0, s0 + n_lab):
        size += pos_counts[s]
    if size == 0:
        return work
    if work.shape[0] < 4 * (size + 2):
        work = np.empty(4 * (size + 2))
    grid = work[:size]
    pos = 0
    for s in range(s0, s0 + n_lab):
        p0 = pos_offsets[s]
        for t in range(pos_counts[s]):
            grid[pos] = pos_values[p0 + t]
            pos += 1
    if n_lab > 1:
        grid.sort()
    gt_g = work[size : 2 * size + 1]
    eq_g = work[2 * size + 1 : 3 * size + 2]
    above = work[3 * size + 2 : 4 * size + 4]  # above[f] = negatives in gaps/ties past f - 1
    gt_g[:] = 0.0
    eq_g[:] = 0.0
    # Bucket index over the grid's range: the grid values in buckets below a value's bucket
    # are all below it (the bucket map is monotone), so the search starts at table[bucket]
    # and scans the few grid values of that bucket -- exact, whatever the rounding.
    n_buckets = 1
    while n_buckets < size and n_buckets < MAX_BUCKETS:
        n_buckets *= 2
    g0 = grid[0]
    span = grid[size - 1] - g0
    scale = n_buckets / span if span > 0 else 0.0
    table = np.empty(n_buckets + 1, dtype=np.int64)
    filled = 0
    for t in range(size):
        bk = _bucket(grid[t], g0, scale, n_buckets)
        while filled <= bk:
            table[filled] = t
            filled += 1
    while filled <= n_buckets:
        table[filled] = size
        filled += 1
    for b in range(c):
        v = buf[b]
        lo = table[_bucket(v, g0, scale, n_buckets)]
        while lo < size and grid[lo] < v:
            lo += 1
        if lo < size and grid[lo] == v:
            eq_g[lo] += 1.0
        else:
            gt_g[lo] += 1.0
    above[size + 1] = 0.0
    for f in range(size, -1, -1):
        above[f] = above[f + 1] + gt_g[f] + eq_g[f]
    for s in range(s0, s0 + n_lab):
        k = pos_counts[s]
        if k == 0:
            continue
        p0 = pos_offsets[s]
        t0 = p0 + s
        prev_v = 0.0
        prev_above = 0
        for a in range(k):
            v = pos_values[p0 + a]
            f = _first_not_below(grid, size, v)
            n_above = int(above[f + 1])
            n_equal = int(eq_g[f])
            if a == 0:
                gt[t0] += c - n_above - n_equal
                eq[t0] += n_equal
            elif v != prev_v:
                gt[t0 + a] += prev_above - n_above - n_equal
                eq[t0 + a] += n_equal
            prev_v = v
            prev_above = n_above
        gt[t0 + k] += prev_above
    return work


@numba.njit(cache=True, nogil=True)
def rank_direct_multilabel(
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
    lab_ptr,
    lab_code,
    mem_ptr,
    mem_row,
    mark,
    first_slot,
    has_pos,
    pos_values,
    pos_offsets,
    pos_counts,
    gt,
    eq,
    neg_counts,
):
    """Scan candidates ``index[lo[q]:hi[q]]`` of each query; tally its negatives per label.

    A candidate is a negative when it shares no label with the query and
    satisfies the rest of the negative rule. ``slots`` index the block's
    queries (``first_slot``, ``has_pos``, ``neg_counts``).
    """
    buf = np.empty(0)
    work = np.empty(0)
    for q in range(rows.shape[0]):
        i = rows[q]
        s = slots[q]
        if not has_pos[s]:
            continue
        mark_sharers(i, lab_ptr, lab_code, mem_ptr, mem_row, mark)
        if buf.shape[0] < hi[q] - lo[q]:
            buf = np.empty(hi[q] - lo[q])
        c = 0
        for idx in range(lo[q], hi[q]):
            j = index[idx]
            if mark[j] == i or not rule_ok(codes, i, j, all_same, any_same, all_diff, any_diff):
                continue
            buf[c] = pair_similarity(X, i, j, inv_norm, sq_norm, metric)
            c += 1
        work = _tally_labels(
            i, first_slot[s], lab_ptr, buf, c, pos_values, pos_offsets, pos_counts, gt, eq, work
        )
        neg_counts[s] += c


@numba.njit(cache=True, nogil=True)
def rank_dense_multilabel(
    slots,
    rows,
    cols,
    S,
    M,
    X,
    inv_norm,
    sq_norm,
    metric,
    lab_ptr,
    lab_code,
    mem_ptr,
    mem_row,
    mark,
    first_slot,
    has_pos,
    pos_values,
    pos_offsets,
    pos_counts,
    gt,
    eq,
    neg_counts,
):
    """Like :func:`rank_direct_multilabel` for a dense block (``M``: rest of the negative rule)."""
    buf = np.empty(cols.shape[0])
    work = np.empty(0)
    for q in range(rows.shape[0]):
        i = rows[q]
        s = slots[q]
        if not has_pos[s]:
            continue
        mark_sharers(i, lab_ptr, lab_code, mem_ptr, mem_row, mark)
        c = 0
        for b in range(cols.shape[0]):
            if M[q, b] and mark[cols[b]] != i:
                buf[c] = _block_similarity(S[q, b], X, i, cols[b], inv_norm, sq_norm, metric)
                c += 1
        work = _tally_labels(
            i, first_slot[s], lab_ptr, buf, c, pos_values, pos_offsets, pos_counts, gt, eq, work
        )
        neg_counts[s] += c


@numba.njit(cache=True, inline="always", nogil=True)
def sets_disjoint(sorted_code, lab_ptr, i, j):
    """True when the (ascending) label sets of rows ``i`` and ``j`` share no label."""
    a, a_end = lab_ptr[i], lab_ptr[i + 1]
    b, b_end = lab_ptr[j], lab_ptr[j + 1]
    while a < a_end and b < b_end:
        x = sorted_code[a]
        y = sorted_code[b]
        if x == y:
            return False
        if x < y:
            a += 1
        else:
            b += 1
    return True


@numba.njit(cache=True, parallel=True, nogil=True)
def count_label_pairs(mem_ptr, mem_row, codes, all_same, any_same, all_diff, any_diff):
    """Per label, the number of row pairs carrying it that satisfy the rest of the rule."""
    n_labels = mem_ptr.shape[0] - 1
    counts = np.zeros(n_labels, dtype=np.int64)
    for lab in numba.prange(n_labels):
        c = 0
        for a in range(mem_ptr[lab], mem_ptr[lab + 1]):
            for b in range(a + 1, mem_ptr[lab + 1]):
                if rule_ok(codes, mem_row[a], mem_row[b], all_same, any_same, all_diff, any_diff):
                    c += 1
        counts[lab] = c
    return counts


@numba.njit(cache=True, parallel=True, nogil=True)
def fill_label_pairs(mem_ptr, mem_row, codes, all_same, any_same, all_diff, any_diff, offsets, out):
    """Write the pairs counted by :func:`count_label_pairs` (by label, then rows ascending)."""
    n_labels = mem_ptr.shape[0] - 1
    for lab in numba.prange(n_labels):
        pos = offsets[lab]
        for a in range(mem_ptr[lab], mem_ptr[lab + 1]):
            for b in range(a + 1, mem_ptr[lab + 1]):
                i = mem_row[a]
                j = mem_row[b]
                if rule_ok(codes, i, j, all_same, any_same, all_diff, any_diff):
                    out[pos, 0] = i
                    out[pos, 1] = j
                    pos += 1


@numba.njit(cache=True, parallel=True, nogil=True)
def count_disjoint_pairs(
    sorted_code, lab_ptr, keys, order, starts, codes, all_same, any_same, all_diff, any_diff
):
    """Per row ``i``, the rows ``j > i`` of its bucket with a disjoint label set that satisfy the rule."""
    n = keys.shape[0]
    counts = np.zeros(n, dtype=np.int64)
    for i in numba.prange(n):
        k = keys[i]
        c = 0
        for idx in range(starts[k], starts[k + 1]):
            j = order[idx]
            if (
                j > i
                and sets_disjoint(sorted_code, lab_ptr, i, j)
                and rule_ok(codes, i, j, all_same, any_same, all_diff, any_diff)
            ):
                c += 1
        counts[i] = c
    return counts


@numba.njit(cache=True, parallel=True, nogil=True)
def fill_disjoint_pairs(
    sorted_code,
    lab_ptr,
    keys,
    order,
    starts,
    codes,
    all_same,
    any_same,
    all_diff,
    any_diff,
    offsets,
    out,
):
    """Write the pairs counted by :func:`count_disjoint_pairs`, sorted by (i, j)."""
    n = keys.shape[0]
    for i in numba.prange(n):
        k = keys[i]
        pos = offsets[i]
        start = pos
        for idx in range(starts[k], starts[k + 1]):
            j = order[idx]
            if (
                j > i
                and sets_disjoint(sorted_code, lab_ptr, i, j)
                and rule_ok(codes, i, j, all_same, any_same, all_diff, any_diff)
            ):
                out[pos, 0] = i
                out[pos, 1] = j
                pos += 1
        seg = out[start:pos, 1]
        seg.sort()
