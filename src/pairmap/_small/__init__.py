"""Small screens scored with NumPy alone: no compiled kernel is loaded.

A fresh process spends about a second and 100 MB importing numba and loading
pairmap's cached kernels before its first result. Pipelines that score one
plate per job pay that hundreds of times, for a few milliseconds of work. So a
screen of at most :data:`MAX_PROFILES` profiles (after any query filters) with a
dot-product distance (``cosine``, ``abs_cosine``, ``correlation``,
``euclidean``) takes this path:

1. every similarity is computed once, in float64, by one matrix product
   (:mod:`pairmap._small.similarity`), snapped to the engine's 2**-36 grid;
2. AP and the ``metrics=`` columns come from those similarities by vectorized
   NumPy (:mod:`pairmap._small.retrieval`), with the engine's tie rules and its
   summation order, so the values equal what the compiled engine computes from
   the same similarities, bit for bit (the tests check this);
3. the permutation null of :func:`pairmap.mean_average_precision` reads the same
   matrix (:mod:`pairmap._small.permutation`, the compiled kernels' draws and
   scores in NumPy; again equal bit for bit).

Which path a screen takes depends only on its size and distance, never on
threads, memory limits or Dask, so results stay reproducible. The float64
matrix product is at least as accurate as the compiled engine's mix of float32
products and direct loops; the two paths may differ in the last bits of a
similarity, hence, rarely, in a tie.

Examples
--------
>>> applies(384, "cosine"), applies(384, "manhattan"), applies(10**5, "cosine")
(True, False, False)
"""

from __future__ import annotations

import contextlib
import contextvars

#: screens up to this many profiles take the NumPy path (an n x n float64 matrix: 8 MiB)
MAX_PROFILES = 1024
#: distances computed from dot products (the others need a loop over features per pair)
DISTANCES = ("cosine", "abs_cosine", "correlation", "euclidean")


_compiled_only = contextvars.ContextVar("pairmap_compiled_only", default=False)


def applies(n_profiles: int, distance) -> bool:
    """Whether a screen of ``n_profiles`` with ``distance`` takes the NumPy path."""
    return (
        isinstance(distance, str)
        and distance in DISTANCES
        and n_profiles <= MAX_PROFILES
        and not _compiled_only.get()
    )


@contextlib.contextmanager
def compiled_only():
    """Within this block every screen takes the compiled engine (``pairmap warmup`` uses it).

    Examples
    --------
    >>> with compiled_only():
    ...     applies(10, "cosine")
    False
    """
    token = _compiled_only.set(True)
    try:
        yield
    finally:
        _compiled_only.reset(token)
