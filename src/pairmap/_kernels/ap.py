"""Numba kernels shared by the AP engine and the null distributions.

:func:`ap_from_ranks` is the single definition of average precision from the
1-based ranks of the positives. Observed scores and null draws both go through
it, so an observed AP and a null AP for the same ranking are bit-identical and
p-value ties are counted exactly.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def ap_from_ranks(ranks: np.ndarray, k: int) -> float:
    """AP of a ranked list from the sorted 1-based ranks of its ``k`` positives.

    ``ranks[0] < ranks[1] < ... < ranks[k-1]``; precision at the i-th positive
    is ``i / ranks[i-1]``; AP is their mean, summed in order in float64.
    """
    total = 0.0
    for i in range(k):
        total += (i + 1) / ranks[i]
    return total / k
