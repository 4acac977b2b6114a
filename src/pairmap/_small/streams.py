"""The permutation null's random relabelings, drawn by NumPy for many draws at once.

The same counter-based streams as the compiled kernels
(:mod:`pairmap._kernels.nulls`): draw ``d`` starts SplitMix64 from
``mix64(key + d * STREAM_GAMMA)`` and picks each block's members with Floyd's
algorithm and Lemire's bounded integers. Every draw is therefore the very set the
kernels draw; only the loop runs over draws in NumPy instead of one draw at a time.
"""

from __future__ import annotations

import functools
from itertools import combinations

import numpy as np

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_STREAM_GAMMA = np.uint64(0xD1B54A32D192ED03)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_LOW32 = np.uint64(0xFFFFFFFF)


def mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer (wrapping uint64 arithmetic).

    Examples
    --------
    >>> hex(int(mix64(np.array([1], dtype=np.uint64))[0]))
    '0x5692161d100b05e5'
    """
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _bounded(state: np.ndarray, s: int):
    """Unbiased integers in ``[0, s)``, one per stream; returns (new states, values)."""
    su = np.uint64(s)
    state = state + _GAMMA
    m = (mix64(state) >> np.uint64(32)) * su
    threshold = np.uint64(((1 << 32) - s) % s)
    redo = np.flatnonzero((m & _LOW32) < threshold)
    while len(redo):  # rejection: rare, and only for these streams
        state[redo] += _GAMMA
        m[redo] = (mix64(state[redo]) >> np.uint64(32)) * su
        redo = redo[(m[redo] & _LOW32) < threshold]
    return state, m >> np.uint64(32)


def _floyd(state: np.ndarray, n: int, k: int):
    """A uniform ``k``-subset of ``1..n`` per stream, sorted (Floyd's algorithm)."""
    chosen = np.empty((len(state), k), dtype=np.int64)
    for i, j in enumerate(range(n - k + 1, n + 1)):
        state, r = _bounded(state, j)
        t = r.astype(np.int64) + 1
        taken = (chosen[:, :i] == t[:, None]).any(axis=1)
        t[taken] = j
        chosen[:, i] = t
    chosen.sort(axis=1)
    return state, chosen


def relabelings(key, d_start: int, n_draws: int, bm_start, bm, kb) -> np.ndarray:
    """(n_draws, k) pool positions of draws ``d_start ...`` of the null keyed by ``key``.

    ``bm[bm_start[b]:bm_start[b + 1]]`` are the positions of block ``b``, of
    which ``kb[b]`` are drawn; as ``_draw_relabeling`` in the kernels.

    Examples
    --------
    >>> sets = relabelings(np.uint64(7), 0, 3, np.array([0, 5]), np.arange(5), np.array([2]))
    >>> sets.shape, bool(((sets >= 0) & (sets < 5)).all())
    ((3, 2), True)
    """
    d = np.arange(d_start, d_start + n_draws, dtype=np.uint64)
    state = mix64(np.uint64(key) + d * _STREAM_GAMMA)
    parts = []
    for b in range(len(kb)):
        if kb[b] == 0:
            continue
        state, picked = _floyd(state, int(bm_start[b + 1] - bm_start[b]), int(kb[b]))
        parts.append(bm[bm_start[b] + picked - 1])
    return np.concatenate(parts, axis=1)


@functools.lru_cache(maxsize=16)
def _combinations(n: int, k: int) -> np.ndarray:
    """The ``k``-subsets of ``range(n)`` in lexicographic order, (C(n, k), k) (read-only)."""
    comb = np.array(list(combinations(range(n), k)), dtype=np.int64).reshape(-1, k)
    comb.flags.writeable = False
    return comb


def all_relabelings(bm_start, bm, kb) -> np.ndarray:
    """Every relabeling, in the kernels' order (lexicographic per block, last block fastest).

    Examples
    --------
    >>> all_relabelings(np.array([0, 3]), np.arange(3), np.array([2])).tolist()
    [[0, 1], [0, 2], [1, 2]]
    """
    sets = np.zeros((1, 0), dtype=np.int64)
    for b in range(len(kb)):
        n_b, k_b = int(bm_start[b + 1] - bm_start[b]), int(kb[b])
        block = bm[bm_start[b] + _combinations(n_b, k_b)]
        sets = np.concatenate(
            [np.repeat(sets, len(block), axis=0), np.tile(block, (len(sets), 1))], axis=1
        )
    return sets
