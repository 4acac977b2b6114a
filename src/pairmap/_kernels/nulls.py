"""Numba kernels for null distributions of average precision.

Random rankings are drawn with a counter-based scheme: draw ``d`` of a null
distribution owns a private SplitMix64 stream started from
``mix64(key + d * STREAM_GAMMA)``, where ``key`` is a 64-bit seed derived from
the null's configuration only. A draw therefore never depends on which thread
computed it, on how the draws were split into blocks or on any other draw, so
results are bit-identical for every thread count and every chunking.

Each draw picks a uniformly random ``k``-subset of ``1..n`` with Floyd's
algorithm (exactly ``k`` bounded integers, unbiased by Lemire's
multiply-and-reject method) and scores it with
:func:`pairmap._kernels.ap.ap_from_ranks`, the same function the engine uses
for observed scores.
"""

from __future__ import annotations

import types

import numba
import numpy as np

from pairmap._kernels.ap import ap_from_ranks
from pairmap._kernels.search import lower_bound

_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # SplitMix64 increment
_STREAM_GAMMA = np.uint64(0xD1B54A32D192ED03)  # odd constant separating draw streams
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_LOW32 = np.uint64(0xFFFFFFFF)
_TWO32 = np.uint64(1 << 32)

#: Up to this many positives the sorted subset is built by binary-search
#: insertion; above it a marker array is used and the subset sorted at the end.
#: Both paths produce identical subsets (same Floyd sequence).
SMALL_K = 24
#: longest list for which the marker-array path is used (bytes per work block)
MARKER_MAX_N = 1 << 22


@numba.njit(cache=True, nogil=True, inline="always")
def _mix64(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@numba.njit(cache=True, nogil=True, inline="always")
def _bounded(state, s):
    """Unbiased integer in ``[0, s)`` (``1 <= s < 2**32``); returns (new_state, value)."""
    state = state + _GAMMA
    x = _mix64(state) >> _S32
    m = x * s
    low = m & _LOW32
    if low < s:
        t = (_TWO32 - s) % s
        while low < t:
            state = state + _GAMMA
            x = _mix64(state) >> _S32
            m = x * s
            low = m & _LOW32
    return state, m >> _S32


@numba.njit(cache=True, nogil=True)
def _draw_small(state, n, k, buf):
    """Floyd's algorithm keeping ``buf[:k]`` sorted (binary search + insertion)."""
    size = 0
    for j in range(n - k + 1, n + 1):
        state, r = _bounded(state, np.uint64(j))
        t = np.int64(r) + 1
        lo = lower_bound(buf, size, t)
        if lo < size and buf[lo] == t:
            t = j  # j is larger than everything chosen so far: append
            lo = size
        for p in range(size, lo, -1):
            buf[p] = buf[p - 1]
        buf[lo] = t
        size += 1
    return state


@numba.njit(cache=True, nogil=True)
def _draw_large(state, n, k, buf, marker):
    """Floyd's algorithm with a marker array; ``buf[:k]`` sorted on return, marker cleared."""
    size = 0
    for j in range(n - k + 1, n + 1):
        state, r = _bounded(state, np.uint64(j))
        t = np.int64(r) + 1
        if marker[t]:
            t = j
        marker[t] = 1
        buf[size] = t
        size += 1
    buf.sort()
    for i in range(k):
        marker[buf[i]] = 0
    return state


@numba.njit(cache=True, nogil=True, inline="always")
def _draw_buffers(n, k):
    # The marker path costs n bytes per block; for very long lists the insertion
    # path (same Floyd sequence, same subsets, O(k^2) per draw) keeps memory O(k).
    use_marker = k > SMALL_K and n <= MARKER_MAX_N
    marker = np.zeros(n + 1 if use_marker else 1, dtype=np.uint8)
    return np.empty(k, dtype=np.int64), marker, use_marker


@numba.njit(cache=True, nogil=True, inline="always")
def _draw_ap(key, n, k, d, buf, marker, use_marker):
    """AP of draw ``d`` of the null keyed by ``key`` (its own counter-based stream)."""
    state = _mix64(key + np.uint64(d) * _STREAM_GAMMA)
    if use_marker:
        _draw_large(state, n, k, buf, marker)
    else:
        _draw_small(state, n, k, buf)
    return ap_from_ranks(buf, k)


@numba.njit(cache=True, nogil=True)
def _sample_block(key, n, k, d_start, d_stop, out, out_offset):
    buf, marker, use_marker = _draw_buffers(n, k)
    for d in range(d_start, d_stop):
        out[d - out_offset] = _draw_ap(key, n, k, d, buf, marker, use_marker)


@numba.njit(cache=True, nogil=True)
def sample_null_aps_at(key, n, k, positions):
    """AP of the draws at ``positions`` (any order), bit-identical to the full array's."""
    buf, marker, use_marker = _draw_buffers(n, k)
    out = np.empty(positions.shape[0], dtype=np.float64)
    for i in range(positions.shape[0]):
        out[i] = _draw_ap(key, n, k, positions[i], buf, marker, use_marker)
    return out


def _sample_null_aps(key, n, k, d_start, n_draws, n_blocks):
    """AP of draws ``d_start .. d_start + n_draws - 1`` of the null keyed by ``key``.

    Parameters
    ----------
    key : uint64
        Stream key of the null (derived from its configuration).
    n, k : int
        List length and number of positives (``1 <= k <= n < 2**32``).
    d_start, n_draws : int
        First draw index and number of draws.
    n_blocks : int
        Number of independent work blocks (affects speed only, never values).
    """
    out = np.empty(n_draws, dtype=np.float64)
    if n_draws == 0:
        return out
    n_blocks = max(1, min(n_blocks, n_draws))
    step = (n_draws + n_blocks - 1) // n_blocks
    for b in numba.prange(n_blocks):
        lo = b * step
        hi = min(n_draws, lo + step)
        if lo < hi:
            _sample_block(key, n, k, d_start + lo, d_start + hi, out, d_start)
    return out


@numba.njit(cache=True, nogil=True)
def enumerate_null_aps(n, k, total):
    """AP of every ``k``-subset of ``1..n`` in lexicographic order (``total = C(n, k)``)."""
    out = np.empty(total, dtype=np.float64)
    ranks = np.arange(1, k + 1).astype(np.int64)
    for idx in range(total):
        out[idx] = ap_from_ranks(ranks, k)
        # next combination in lexicographic order
        i = k - 1
        while i >= 0 and ranks[i] == n - k + 1 + i:
            i -= 1
        if i < 0:
            break
        ranks[i] += 1
        for j in range(i + 1, k):
            ranks[j] = ranks[j - 1] + 1
    return out


@numba.njit(cache=True, nogil=True, inline="always")
def _sorted_sum_mean(vals, mult, m, order):
    """Mean of the multiset {vals[c] repeated mult[c] times}: sorted ascending, summed in order."""
    n_comp = vals.shape[0]
    # insertion sort of component indices by value (ties keep index order: values equal anyway)
    for c in range(n_comp):
        order[c] = c
    for i in range(1, n_comp):
        cur = order[i]
        v = vals[cur]
        j = i - 1
        while j >= 0 and vals[order[j]] > v:
            order[j + 1] = order[j]
            j -= 1
        order[j + 1] = cur
    total = 0.0
    for i in range(n_comp):
        c = order[i]
        v = vals[c]
        for _ in range(mult[c]):
            total += v
    return total / m


@numba.njit(cache=True, nogil=True)
def sorted_mean(values):
    """Mean of ``values`` summed sequentially in ascending order (float64).

    The one definition of a group mean: observed mAPs and null group means both
    use it, so equal multisets of member APs give bit-identical means.
    """
    m = values.shape[0]
    if m == 0:
        return np.nan
    mult = np.ones(m, dtype=np.int64)
    order = np.empty(m, dtype=np.int64)
    return _sorted_sum_mean(values.astype(np.float64), mult, m, order)


def _segment_sorted_means(values, starts, n_blocks):
    """:func:`sorted_mean` of each segment ``values[starts[g]:starts[g + 1]]``."""
    n_groups = starts.shape[0] - 1
    out = np.empty(n_groups, dtype=np.float64)
    n_blocks = max(1, min(n_blocks, n_groups))
    if n_groups == 0:
        return out
    step = (n_groups + n_blocks - 1) // n_blocks
    for b in numba.prange(n_blocks):
        lo = b * step
        hi = min(n_groups, lo + step)
        for g in range(lo, hi):
            out[g] = sorted_mean(values[starts[g] : starts[g + 1]])
    return out


def _group_null_means(comp_draws, mult, n_blocks):
    """Per-draw group means of component draws (columns are draws).

    ``comp_draws[c, d]`` is draw ``d`` of component ``c``; component ``c`` stands
    for ``mult[c]`` members sharing that draw. Each draw's mean is computed as
    :func:`sorted_mean` of the expanded multiset.
    """
    n_comp, n_draws = comp_draws.shape
    out = np.empty(n_draws, dtype=np.float64)
    if n_draws == 0:
        return out
    m = 0
    for c in range(n_comp):
        m += mult[c]
    n_blocks = max(1, min(n_blocks, n_draws))
    step = (n_draws + n_blocks - 1) // n_blocks
    for b in numba.prange(n_blocks):
        vals = np.empty(n_comp, dtype=np.float64)
        order = np.empty(n_comp, dtype=np.int64)
        lo = b * step
        hi = min(n_draws, lo + step)
        for d in range(lo, hi):
            for c in range(n_comp):
                vals[c] = comp_draws[c, d]
            out[d] = _sorted_sum_mean(vals, mult, m, order)
    return out


# Each parallel kernel also exists as a serial build: small jobs skip the thread
# barrier (costly on busy machines). Both builds give identical values. The
# serial build compiles a renamed clone: numba's on-disk cache is keyed by the
# function's name and signature, not by the ``parallel`` flag.
def _parallel_build(func):
    return numba.njit(cache=True, nogil=True, parallel=True)(func)


def _serial_build(func):
    clone = types.FunctionType(
        func.__code__,
        func.__globals__,
        func.__name__ + "_serial",
        func.__defaults__,
        func.__closure__,
    )
    clone.__qualname__ = func.__qualname__ + "_serial"
    clone.__module__ = func.__module__
    return numba.njit(cache=True, nogil=True)(clone)


sample_null_aps = _parallel_build(_sample_null_aps)
sample_null_aps_serial = _serial_build(_sample_null_aps)
segment_sorted_means = _parallel_build(_segment_sorted_means)
segment_sorted_means_serial = _serial_build(_segment_sorted_means)
group_null_means = _parallel_build(_group_null_means)
group_null_means_serial = _serial_build(_group_null_means)

#: Below this amount of work (draws x positives, or values) kernels run serially.
SERIAL_WORK = 200_000


def run_sample_null_aps(key, n, k, d_start, n_draws, n_threads):
    """Dispatch :func:`sample_null_aps` to the serial build for small jobs or one thread."""
    if n_threads <= 1 or n_draws * max(k, 4) < SERIAL_WORK:
        return sample_null_aps_serial(key, n, k, d_start, n_draws, 1)
    return sample_null_aps(key, n, k, d_start, n_draws, 4 * n_threads)


def run_group_null_means(comp_draws, mult, n_threads):
    """Dispatch :func:`group_null_means` (serial for small jobs or one thread)."""
    if n_threads <= 1 or comp_draws.size < SERIAL_WORK:
        return group_null_means_serial(comp_draws, mult, 1)
    return group_null_means(comp_draws, mult, 4 * n_threads)


def run_segment_sorted_means(values, starts, n_threads):
    """Dispatch :func:`segment_sorted_means` (serial for small jobs or one thread)."""
    if n_threads <= 1 or values.size < SERIAL_WORK:
        return segment_sorted_means_serial(values, starts, 1)
    return segment_sorted_means(values, starts, 4 * n_threads)
