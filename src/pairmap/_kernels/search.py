"""Small search helpers shared by the kernels."""

from __future__ import annotations

import numba


@numba.njit(cache=True, inline="always", nogil=True)
def lower_bound(a, size, value):
    """First index ``i`` in the sorted prefix ``a[:size]`` with ``a[i] >= value`` (or ``size``)."""
    lo = 0
    hi = size
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo
