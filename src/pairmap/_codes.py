"""Codes and constants shared by the compiled kernels and the NumPy paths.

Kept apart from :mod:`pairmap._kernels` so that code choosing a path, parsing
options or scoring a small screen with NumPy never imports numba.

Examples
--------
>>> COSINE, EUCLIDEAN, SNAP == 2.0**36
(0, 3, True)
"""

from __future__ import annotations

#: metric codes of the similarity kernels (see :mod:`pairmap.similarity`)
COSINE, ABS_COSINE, CORRELATION, EUCLIDEAN, MANHATTAN, CHEBYSHEV, PRECOMPUTED = range(7)
#: pseudo-metric for the direct scan: store the partner row instead of a similarity
PARTNER = 7
#: metrics whose similarities come from dot products
GEMM_METRICS = (COSINE, ABS_COSINE, CORRELATION, EUCLIDEAN)

#: similarities are snapped to multiples of 2**-36 (about 1.5e-11) before ranking, so values
#: that are equal in exact arithmetic but differ by rounding error tie as they should
SNAP = 2.0**36
#: with euclidean via matrix products, d^2 = |x|^2 + |y|^2 - 2 x.y cancels when d^2 is
#: small next to |x|^2 + |y|^2; below this fraction the distance is recomputed directly
EUCLID_RECOMPUTE = 1e-2

#: per-query metric codes (see :mod:`pairmap.metrics`)
ROC_AUC, PRECISION, RECALL = range(3)
#: cut-off code meaning "R = number of positives of the query"
CUT_R = -1
