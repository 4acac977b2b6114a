"""Similarity measures between profiles (pure array code).

Built-in measures (names as in copairs):

========================  =============================================
``"cosine"`` (default)    x.y / (|x| |y|)
``"abs_cosine"``          |cosine|
``"correlation"``         Pearson correlation (cosine of row-centred data)
``"euclidean"``           1 / (1 + ||x - y||_2)
``"manhattan"``           1 / (1 + ||x - y||_1)
``"chebyshev"``           1 / (1 + ||x - y||_inf)
========================  =============================================

Any other metric name of :func:`scipy.spatial.distance.cdist` (``"jaccard"``,
``"hamming"``, ``"braycurtis"``, ``"canberra"``, ``"sqeuclidean"``...) is accepted
as in copairs: the bounded distances ``"jaccard"`` and ``"hamming"`` become
``1 - d``, the others ``1 / (1 + d)`` (needs SciPy; computed row pair by row
pair, so slower than the built-in measures).

A callable ``f(X, Y) -> s`` taking two equally shaped row blocks and returning
one similarity per row pair is accepted too.

Cosine, abs_cosine, correlation and (for float64 data) euclidean are computed
with blocked matrix products (BLAS); the others with compiled loops. Rows
with zero norm (cosine, abs_cosine) or zero variance (correlation) have no
direction: their similarity to every profile is defined as 0, and a warning
says how many there are.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import _codes as K
from .features import FeatureSource

logger = logging.getLogger(__name__)

__all__ = [
    "METRICS",
    "PreparedFeatures",
    "prepare_features",
    "scipy_similarity",
    "similarity_matrix",
]

METRICS = {
    "cosine": K.COSINE,
    "abs_cosine": K.ABS_COSINE,
    "correlation": K.CORRELATION,
    "euclidean": K.EUCLIDEAN,
    "manhattan": K.MANHATTAN,
    "chebyshev": K.CHEBYSHEV,
}


@dataclass
class PreparedFeatures:
    """Features ready for the kernels.

    ``source`` gives C-ordered row blocks of the features (row-centred for
    correlation); ``X`` is the array the kernels may read in place, or None
    when rows must be gathered block by block (see :mod:`pairmap.features`).
    ``inv_norm`` and ``sq_norm`` are per-row helpers (empty when unused).
    ``gemm`` tells whether dense blocks use a matrix product; ``func`` is a
    user callable, if any.
    """

    X: np.ndarray | None
    metric: int
    inv_norm: np.ndarray
    sq_norm: np.ndarray
    gemm: bool
    func: Callable | None = None
    name: str = ""
    source: FeatureSource | None = None

    def __post_init__(self):
        if self.source is None:
            self.source = FeatureSource(self.X)


#: SciPy distances bounded in [0, 1]: their similarity is ``1 - d`` (others: ``1 / (1 + d)``).
SCIPY_BOUNDED = ("jaccard", "hamming")
_SCIPY_BLOCK = 64


def scipy_similarity(metric: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Row-pair similarity ``f(X, Y)`` from a :func:`scipy.spatial.distance.cdist` metric name.

    ``"jaccard"`` and ``"hamming"`` (distances in [0, 1]) give ``1 - d``, other
    metrics ``1 / (1 + d)``.

    Examples
    --------
    >>> import numpy as np
    >>> f = scipy_similarity("hamming")
    >>> f(np.array([[1.0, 0.0, 1.0, 1.0]]), np.array([[1.0, 1.0, 1.0, 1.0]])).tolist()
    [0.75]
    >>> float(scipy_similarity("braycurtis")(np.ones((1, 2)), np.ones((1, 2)))[0])
    1.0
    """
    try:
        from scipy.spatial.distance import cdist
    except ImportError:  # pragma: no cover - scipy is a test dependency
        raise ValueError(f"distance={metric!r} needs SciPy (pip install scipy)") from None
    try:
        cdist(np.zeros((1, 2)), np.ones((1, 2)), metric=metric)
    except (ValueError, TypeError):
        raise ValueError(
            f"distance={metric!r} is not supported; use one of {sorted(METRICS)}, a "
            f"scipy.spatial.distance.cdist metric name, or a callable f(X, Y) returning one "
            f"similarity per row pair"
        ) from None
    bounded = metric in SCIPY_BOUNDED

    def similarity(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        d = np.empty(X.shape[0], dtype=np.float64)
        for start in range(0, X.shape[0], _SCIPY_BLOCK):  # diagonal of small cdist blocks
            stop = start + _SCIPY_BLOCK
            d[start:stop] = np.diagonal(cdist(X[start:stop], Y[start:stop], metric=metric))
        return 1.0 - d if bounded else 1.0 / (1.0 + d)

    similarity.__name__ = metric
    return similarity


#: inputs below this size that kernels cannot read in place are copied whole (cheap)
COPY_BELOW = 1 << 25


def _row_norms(source: FeatureSource) -> np.ndarray:
    """Squared row norms accumulated in float64, from the source's one pass over its rows."""
    return source.scan().sq_norms


def prepare_features(X, distance) -> PreparedFeatures:
    """Validate ``distance`` and compute per-row helpers for it.

    Parameters
    ----------
    X : numpy.ndarray or FeatureSource
        (n, d) float32 or float64 features, finite. Sources that the kernels
        cannot read in place (Fortran order, memory maps, row subsets,
        correlation's centring) are read in row blocks; below ``COPY_BELOW``
        bytes they are copied whole instead.
    distance : str or callable
        See the module documentation.

    Returns
    -------
    PreparedFeatures

    Examples
    --------
    >>> import numpy as np
    >>> prep = prepare_features(np.eye(3), "cosine")
    >>> prep.inv_norm.tolist()
    [1.0, 1.0, 1.0]
    """
    source = X if isinstance(X, FeatureSource) else FeatureSource(X)
    empty = np.empty(0, dtype=np.float64)
    if callable(distance):
        return _precomputed(source, distance, getattr(distance, "__name__", "callable"))
    if isinstance(distance, str) and distance not in METRICS:
        return _precomputed(source, scipy_similarity(distance), distance)
    if not isinstance(distance, str):
        raise ValueError(
            f"distance={distance!r} is not supported; use one of {sorted(METRICS)} or a callable "
            f"f(X, Y) returning one similarity per row pair"
        )
    metric = METRICS[distance]
    if metric == K.CORRELATION:
        source = source.centered()
    source = _small_copy(source)
    X = source.direct
    if metric in (K.COSINE, K.ABS_COSINE, K.CORRELATION):
        sq = _row_norms(source)
        zero = sq == 0.0
        warn_no_direction(zero, distance, stacklevel=4)
        with np.errstate(divide="ignore"):
            inv = np.where(zero, 0.0, 1.0 / np.sqrt(sq))
        return PreparedFeatures(X, metric, inv, empty, True, None, distance, source)
    if metric == K.EUCLIDEAN and source.dtype == np.float64:
        return PreparedFeatures(X, metric, empty, _row_norms(source), True, None, distance, source)
    return PreparedFeatures(X, metric, empty, empty, False, None, distance, source)


def warn_no_direction(zero: np.ndarray, distance: str, stacklevel: int = 3) -> None:
    """Warn (and log) about profiles with zero norm (zero variance for correlation).

    Examples
    --------
    >>> warn_no_direction(np.array([False, False]), "cosine")  # nothing to say
    """
    if not zero.any():
        return
    what = "zero variance" if distance == "correlation" else "zero norm"
    first = np.flatnonzero(zero)[:5].tolist()
    msg = (
        f"{int(zero.sum())} profile(s) have {what} (rows {first}...); their {distance} "
        f"similarity to every profile is set to 0"
    )
    warnings.warn(msg, RuntimeWarning, stacklevel=stacklevel)
    logger.warning(msg)


def _precomputed(source: FeatureSource, func, name: str) -> PreparedFeatures:
    """Features for a similarity computed row pair by row pair (a callable or a SciPy metric)."""
    source = _small_copy(source)
    empty = np.empty(0, dtype=np.float64)
    return PreparedFeatures(source.direct, K.PRECOMPUTED, empty, empty, False, func, name, source)


def _small_copy(source: FeatureSource) -> FeatureSource:
    """A source the kernels read in place: small inputs are gathered whole once."""
    if source.direct is not None:
        return source
    if source.n_rows * source.n_features * source.itemsize > COPY_BELOW:
        logger.debug("features are read in row blocks (%s)", type(source.data).__name__)
        return source
    X = source.take(np.arange(source.n_rows, dtype=np.int64))
    return FeatureSource(X if X.flags.owndata else X.copy(), source.names)


def dense_block(prep: PreparedFeatures, Xq: np.ndarray, Xc: np.ndarray) -> np.ndarray:
    """Raw block for the dense kernel: dot products (GEMM metrics) or similarities."""
    if prep.gemm:
        return Xq @ Xc.T
    from ._kernels.retrieval import dense_distance_similarity

    out = np.empty((Xq.shape[0], Xc.shape[0]), dtype=np.float64)
    dense_distance_similarity(Xq, Xc, prep.metric, out)
    return out


def similarity_matrix(X: np.ndarray, Y: np.ndarray | None = None, distance="cosine") -> np.ndarray:
    """All-by-all similarities between the rows of ``X`` and ``Y`` (small inputs, for inspection).

    Parameters
    ----------
    X : array_like, shape (n, d)
    Y : array_like, shape (m, d), optional
        Defaults to ``X``.
    distance : str or callable
        As for :func:`pairmap.average_precision`.

    Returns
    -------
    numpy.ndarray, shape (n, m)

    Examples
    --------
    >>> import numpy as np
    >>> similarity_matrix(np.array([[1.0, 0.0], [0.0, 2.0]])).round(3).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    Y = X if Y is None else np.ascontiguousarray(Y, dtype=np.float64)
    both = np.vstack([X, Y])
    prep = prepare_features(both, distance)
    n = X.shape[0]
    if prep.func is not None:
        ii, jj = np.meshgrid(np.arange(n), np.arange(Y.shape[0]), indexing="ij")
        vals = np.asarray(prep.func(X[ii.ravel()], Y[jj.ravel()]), dtype=np.float64)
        return vals.reshape(n, Y.shape[0])
    from ._kernels.retrieval import _block_similarity

    raw = dense_block(prep, prep.X[:n], prep.X[n:])
    out = np.empty_like(raw)
    for a in range(n):
        for b in range(Y.shape[0]):
            metric = prep.metric if prep.gemm else K.PRECOMPUTED
            out[a, b] = _block_similarity(
                raw[a, b], prep.X, a, n + b, prep.inv_norm, prep.sq_norm, metric
            )
    return out
