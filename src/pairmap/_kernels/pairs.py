"""Numba kernels for pairing rules on integer group codes."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, inline="always", nogil=True)
def rule_ok(codes, i, j, all_same, any_same, all_diff, any_diff):
    """True when rows ``i`` and ``j`` satisfy the rule (``i != j`` is the caller's job)."""
    for c in all_same:
        if codes[i, c] != codes[j, c]:
            return False
    for c in all_diff:
        if codes[i, c] == codes[j, c]:
            return False
    if any_same.shape[0] > 0:
        hit = False
        for c in any_same:
            if codes[i, c] == codes[j, c]:
                hit = True
                break
        if not hit:
            return False
    if any_diff.shape[0] > 0:
        hit = False
        for c in any_diff:
            if codes[i, c] != codes[j, c]:
                hit = True
                break
        if not hit:
            return False
    return True


@numba.njit(cache=True, parallel=True, nogil=True)
def count_rule_pairs(codes, keys, order, starts, all_same, any_same, all_diff, any_diff):
    """Number of pairs (i, j > i) per row i that satisfy the rule."""
    n = codes.shape[0]
    counts = np.zeros(n, dtype=np.int64)
    for i in numba.prange(n):
        k = keys[i]
        c = 0
        for idx in range(starts[k], starts[k + 1]):
            j = order[idx]
            if j > i and rule_ok(codes, i, j, all_same, any_same, all_diff, any_diff):
                c += 1
        counts[i] = c
    return counts


@numba.njit(cache=True, parallel=True, nogil=True)
def fill_rule_pairs(
    codes, keys, order, starts, all_same, any_same, all_diff, any_diff, offsets, out
):
    """Write the pairs counted by :func:`count_rule_pairs`, sorted by (i, j)."""
    n = codes.shape[0]
    for i in numba.prange(n):
        k = keys[i]
        pos = offsets[i]
        start = pos
        for idx in range(starts[k], starts[k + 1]):
            j = order[idx]
            if j > i and rule_ok(codes, i, j, all_same, any_same, all_diff, any_diff):
                out[pos, 0] = i
                out[pos, 1] = j
                pos += 1
        # bucket order is by row position (stable argsort), so j is already ascending;
        # sort anyway to make the contract independent of that detail
        seg = out[start:pos, 1]
        seg.sort()
