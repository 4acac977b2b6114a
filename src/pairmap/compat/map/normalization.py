"""copairs.map.normalization: expected AP of a random ranking, normalized AP.

Computed with pairmap's closed form (:mod:`pairmap._ap_math`). One deliberate
difference: a list without negatives has no random baseline (every ranking has
AP 1), so its normalized AP is NaN where copairs returns 0 (and copairs clips
to [-1, 1]; the formula never leaves that range for valid AP values).
"""

from __future__ import annotations

import numpy as np

from pairmap._ap_math import _harmonic_numbers, expected_random_ap
from pairmap._ap_math import normalize_ap as _normalize

__all__ = ["compute_normalized_ap_scores", "expected_ap", "harmonic_number", "normalize_ap"]


def harmonic_number(n: int) -> float:
    """The n-th harmonic number (0 for ``n <= 0``).

    Examples
    --------
    >>> harmonic_number(3)
    1.8333333333333333
    """
    return 0.0 if n <= 0 else float(_harmonic_numbers(np.array([float(n)]))[0])


def expected_ap(M: int, N: int) -> float:
    """Expected AP of a random ranking of ``M`` positives and ``N`` negatives.

    Examples
    --------
    >>> expected_ap(1, 1), expected_ap(0, 5), expected_ap(3, 0)
    (0.75, 0.0, 1.0)
    """
    L = M + N
    if L < 1 or M < 0 or N < 0:
        raise ValueError(f"Invalid inputs: M={M}, N={N}")
    if M == 0:
        return 0.0
    return float(expected_random_ap(M, L))


def normalize_ap(ap, M, N, eps: float = 1e-10):
    """``(AP - mu0) / (1 - mu0)``; NaN for lists without negatives (``N = 0``).

    ``eps`` is accepted for copairs compatibility; pairmap needs no guard.

    Examples
    --------
    >>> normalize_ap(1.0, 1, 1), normalize_ap(0.75, 1, 1)
    (1.0, 0.0)
    """
    scalar = np.isscalar(ap)
    ap, M, N = (np.atleast_1d(np.asarray(v)) for v in (ap, M, N))
    lengths = {len(ap), len(M), len(N)} - {1}
    if len(lengths) > 1:
        raise ValueError(f"Array lengths must match: ap={len(ap)}, M={len(M)}, N={len(N)}")
    out = _normalize(ap, M, M + N)
    return float(out[0]) if scalar else out


def compute_normalized_ap_scores(ap_scores, null_confs):
    """``(ap_scores, normalized)`` from ``[n_pos_pairs, n_total_pairs]`` rows.

    Examples
    --------
    >>> import numpy as np
    >>> compute_normalized_ap_scores(np.array([1.0]), np.array([[1, 2]]))[1].tolist()
    [1.0]
    """
    confs = np.asarray(null_confs)
    return ap_scores, normalize_ap(ap_scores, confs[:, 0], confs[:, 1] - confs[:, 0])
