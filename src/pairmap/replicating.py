"""Percent replicating and percent strong: are replicates more alike than non-replicates?

Two established definitions, computed in bounded memory from one standardized
copy of the features (Pearson: rows centred and scaled to unit norm, so a
correlation is a dot product; Spearman: the same on within-profile ranks):

* :func:`percent_replicating` (copairs' ``correlation_test`` / ``percent_score``):
  per replicate group (rows equal in ``sameby``, pairs differing in
  ``diffby``), the median correlation of its replicate pairs. The null is the
  median correlation of ``n_replicates`` random *non-replicate* pairs (rows
  differing in every ``sameby`` and ``diffby`` column), repeated
  ``null_size`` times with a seeded generator. A group is replicating when
  its median exceeds the ``quantile`` of the null (``how="right"``), falls
  below its ``1 - quantile`` (``"left"``), or either (``"both"``).
* :func:`percent_strong` (cytominer-eval's ``replicate_reproducibility``): the
  fraction of replicate pairs (equal in every ``groups`` column) whose
  correlation exceeds the ``quantile`` of the correlations of *all*
  non-replicate pairs of the data set. The quantile is exact (linear
  interpolation, as pandas and NumPy): pairs are streamed in blocks, and when
  they do not fit in ``max_memory`` the order statistics are found by
  histogram refinement over repeated passes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._pair_stats import Groups, group_stats, lerp_quantile, null_medians, quantile_ranks, select
from ._parallel import thread_limits
from ._typing import Columns, Features, Size
from ._validation import check_int, check_seed
from .pairing import encode_columns

__all__ = ["ReplicatingResult", "StrongResult", "percent_replicating", "percent_strong"]

logger = logging.getLogger(__name__)

METHODS = ("pearson", "spearman")
HOW = ("left", "right", "both")
#: copairs caps the number of pairs per null group at 50
MAX_NULL_REPLICATES = 50
_DEFAULT_MAX_MEMORY = 1 << 30
#: bytes per replicate pair held at once (pair lists, correlations, sort keys, temporaries)
_PAIR_BYTES = 128


# ----------------------------------------------------------------------- inputs
def _as_list(name, value) -> list:
    if value is None:
        return []
    cols = [value] if isinstance(value, str) else list(value)
    if len(set(cols)) != len(cols):
        raise ValueError(f"{name} lists a column more than once: {cols}")
    return cols


def _standardized(feats, n_rows: int, method: str) -> np.ndarray:
    """Rows centred and scaled to unit norm (float64): correlations become dot products."""
    from ._kernels.replicating import row_average_ranks, standardize_rows
    from .engine import _check_finite, _feature_matrix

    if method not in METHODS:
        raise ValueError(f"method={method!r} is not supported; use one of {METHODS}")
    X, names = _feature_matrix(feats, n_rows)
    _check_finite(X, names)
    if method == "spearman":
        ranks = np.empty(X.shape, dtype=np.float64)
        row_average_ranks(X, ranks)
        X = ranks
    Z = np.empty(X.shape, dtype=np.float64)
    flat = standardize_rows(X, Z)
    if len(flat):
        raise ValueError(
            f"{len(flat)} profile(s) have zero variance (rows {flat[:5].tolist()}...); their "
            f"{method} correlation is undefined. Drop them (or their constant features) first"
        )
    return Z


def _budget(max_memory) -> int:
    from .engine import parse_memory

    return _DEFAULT_MAX_MEMORY if max_memory is None else parse_memory(max_memory)


# ---------------------------------------------------------------------- public API
@dataclass
class ReplicatingResult:
    """Output of :func:`percent_replicating`.

    Attributes
    ----------
    groups : pandas.DataFrame
        One row per replicate group (sorted by ``sameby``): the ``sameby``
        columns, ``median_correlation``, ``n_pairs``, ``n_first_rows``
        (members that are the first row of a pair: copairs' replicate count),
        ``replicating`` (for the chosen ``how``; False where the group has no
        pair).
    null : numpy.ndarray
        Null medians of ``n_replicates`` random non-replicate pairs.
    score : float
        Fraction of groups with pairs that are replicating (for ``"both"``:
        the fraction below plus the fraction above, as copairs).
    left_threshold, right_threshold : float or None
        The ``1 - quantile`` and ``quantile`` of the null used by ``how``.
    n_replicates : int
        Pairs per null median.
    quantile : float
        The quantile the result was computed with.
    """

    groups: pd.DataFrame
    null: np.ndarray
    score: float
    left_threshold: float | None
    right_threshold: float | None
    n_replicates: int
    quantile: float = 0.95

    def percent_score(self, how: str = "right", quantile: float | None = None):
        """Fraction of groups beyond the null thresholds, for any ``how`` (copairs' signature).

        Parameters
        ----------
        how : {"right", "left", "both"}, default "right"
        quantile : float, optional
            Default: the quantile of the result.

        Returns
        -------
        (float, float or None, float or None)
            Score, left threshold, right threshold.

        Examples
        --------
        >>> r = ReplicatingResult(pd.DataFrame({"median_correlation": [0.5, 19.5, 9.0]}),
        ...                       np.arange(21.0), 1 / 3, None, 19.0, 2)
        >>> r.percent_score("both")  # 1/3 below the 5th percentile + 1/3 above the 95th
        (0.6666666666666666, 1.0, 19.0)
        """
        quantile = self.quantile if quantile is None else quantile
        _check_common(quantile, how)
        medians = self.groups["median_correlation"].to_numpy(np.float64)
        score, _, left, right = _score(medians, self.null, float(quantile), how)
        return score, left, right

    def wasserstein_distance(self) -> float:
        """1-Wasserstein distance between the group medians and the null medians.

        Returns
        -------
        float

        Examples
        --------
        >>> r = ReplicatingResult(pd.DataFrame({"median_correlation": [0.5, 1.0]}),
        ...                       np.array([0.0, 0.5]), 1.0, None, 0.4, 2)
        >>> r.wasserstein_distance()
        0.5
        """
        return wasserstein_1d(self.groups["median_correlation"].dropna().to_numpy(), self.null)


def wasserstein_1d(u, v) -> float:
    """1-Wasserstein (earth mover's) distance between two samples of numbers.

    The integral of ``|F_u - F_v|`` over the real line, ``F`` the empirical
    distribution functions.

    Parameters
    ----------
    u, v : array_like
        Non-empty samples.

    Returns
    -------
    float

    Examples
    --------
    >>> wasserstein_1d([0.0, 1.0], [1.0, 2.0])
    1.0
    """
    u = np.sort(np.asarray(u, dtype=np.float64))
    v = np.sort(np.asarray(v, dtype=np.float64))
    if not len(u) or not len(v):
        raise ValueError("wasserstein_1d needs two non-empty samples")
    grid = np.sort(np.concatenate([u, v]))
    widths = np.diff(grid)
    fu = np.searchsorted(u, grid[:-1], side="right") / len(u)
    fv = np.searchsorted(v, grid[:-1], side="right") / len(v)
    return float(np.sum(np.abs(fu - fv) * widths))


def _score(medians, null, quantile, how):
    """(score, per-group hit, left, right): groups beyond the null's quantiles.

    As copairs: thresholds are NumPy percentiles of the null; a group counts
    when its median is strictly beyond one; "both" adds the two fractions;
    groups without pairs (NaN median) are left out.
    """
    has = ~np.isnan(medians)
    # 100 - 100 q, not 100 (1 - q): 5.0 exactly for q = 0.95 (copairs uses percentile 5)
    left = float(np.percentile(null, 100 - 100 * quantile)) if how in ("left", "both") else None
    right = float(np.percentile(null, 100 * quantile)) if how in ("right", "both") else None
    hit = np.zeros(len(medians), dtype=bool)
    score = 0.0
    for thr, beyond in ((left, np.less), (right, np.greater)):
        if thr is not None:
            side = beyond(medians, thr, where=has, out=np.zeros(len(medians), dtype=bool))
            hit |= side
            score += float(side[has].mean()) if has.any() else math.nan
    return score, hit, left, right


def _check_common(quantile, how=None):
    if isinstance(quantile, bool) or not isinstance(quantile, (int, float, np.floating)):
        raise TypeError(f"quantile must be a number in (0, 1], got {quantile!r}")
    if not 0.0 < float(quantile) <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], got {quantile!r}")
    if how is not None and how not in HOW:
        raise ValueError(f"how={how!r} is not supported; use one of {HOW}")


def percent_replicating(
    meta: pd.DataFrame,
    feats: Features,
    sameby: Columns,
    diffby: Columns = (),
    *,
    method: str = "pearson",
    quantile: float = 0.95,
    how: str = "right",
    null_size: int = 1000,
    n_replicates: int | None = None,
    seed: int = 0,
    max_memory: Size | None = None,
    n_jobs: int | None = None,
) -> ReplicatingResult:
    """Percent replicating: groups whose median replicate correlation beats a random null.

    copairs' ``correlation_test`` + ``percent_score`` (Way et al. 2022); see
    the module notes for the definitions.

    Parameters
    ----------
    meta : pandas.DataFrame
        Metadata, one row per profile.
    feats : numpy.ndarray or pandas.DataFrame
        (n_profiles, n_features) numeric features in the same row order.
    sameby : str or list of str
        Columns that define a replicate group (all equal).
    diffby : str or list of str, optional
        Columns in which the two profiles of a replicate pair must differ
        (e.g. the plate).
    method : {"pearson", "spearman"}, default "pearson"
        Correlation between profiles.
    quantile : float, default 0.95
        Null quantile for ``how="right"``; ``"left"`` uses ``1 - quantile``.
    how : {"right", "left", "both"}, default "right"
        ``"right"``: median above the null's ``quantile`` (replicating);
        ``"left"``: below its ``1 - quantile``; ``"both"``: either.
    null_size : int, default 1000
        Number of null medians (copairs' ``n_samples``).
    n_replicates : int, optional
        Pairs per null median. Default, as copairs: the median over groups of
        the number of members that are the first row of a replicate pair,
        capped at 50.
    seed : int, default 0
        Seed of the null pairs (``numpy.random.default_rng``); results are
        identical for equal inputs and seeds.
    max_memory : int or str, optional
        Bound on the pair buffers (default 1 GiB).
    n_jobs : int, optional
        Threads (default: all available CPUs).

    Returns
    -------
    ReplicatingResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> meta = pd.DataFrame({"cpd": np.repeat(["a", "b", "c", "d"], 3),
    ...                      "plate": np.tile([1, 2, 3], 4)})
    >>> effect = rng.normal(size=(4, 20)).repeat(3, axis=0)
    >>> feats = effect + 0.3 * rng.normal(size=(12, 20))
    >>> res = percent_replicating(meta, feats, "cpd", "plate", null_size=200)
    >>> res.score, res.groups["n_pairs"].tolist()
    (1.0, [3, 3, 3, 3])
    """
    same, diff = _as_list("sameby", sameby), _as_list("diffby", diffby)
    if not same:
        raise ValueError("sameby must name at least one column (the replicate groups)")
    overlap = set(same) & set(diff)
    if overlap:
        raise ValueError(f"columns {sorted(overlap)} are in both sameby and diffby")
    _check_common(quantile, how)
    null_size = check_int("null_size", null_size, minimum=1)
    seed = check_seed(seed)
    if not isinstance(meta, pd.DataFrame):
        raise TypeError(f"meta must be a pandas DataFrame, got {type(meta).__name__}")
    meta = meta.reset_index(drop=True)
    budget = _budget(max_memory)
    groups = Groups.encode(meta, same, diff)
    with thread_limits(n_jobs):
        Z = _standardized(feats, len(meta), method)
        stats = group_stats(Z, groups, max(1, budget // _PAIR_BYTES))
        has = stats.n_pairs > 0
        if not has.any():
            raise ValueError(
                f"no replicate pairs: no two profiles share {same}"
                + (f" while differing in {diff}" if diff else "")
            )
        if n_replicates is None:
            n_replicates = min(int(np.median(stats.n_first[has])), MAX_NULL_REPLICATES)
        n_replicates = check_int("n_replicates", n_replicates, minimum=1)
        null = null_medians(Z, encode_columns(meta, same + diff), null_size, n_replicates, seed)
    medians, n_pairs = stats.median, stats.n_pairs
    score, hit, left, right = _score(medians, null, float(quantile), how)
    table, order = _group_table(meta, same, groups.key)
    table["median_correlation"] = medians
    table["n_pairs"] = n_pairs
    table["n_first_rows"] = stats.n_first
    table["replicating"] = hit & has
    table = table.loc[order].reset_index(drop=True)
    logger.info(
        "percent_replicating: %.4f of %d groups (null: %d medians of %d pairs)",
        score,
        int(has.sum()),
        null_size,
        n_replicates,
    )
    return ReplicatingResult(table, null, score, left, right, n_replicates, float(quantile))


def _group_table(meta, same, key):
    """The ``same`` columns of each group id 0..G-1, and the order that sorts them by ``same``."""
    _, first = np.unique(key, return_index=True)
    table = meta.loc[first, same].reset_index(drop=True)
    order = table.sort_values(same, kind="stable").index.to_numpy()
    return table, order


@dataclass
class StrongResult:
    """Output of :func:`percent_strong`.

    Attributes
    ----------
    score : float
        Fraction of replicate pairs whose correlation exceeds ``threshold``.
    threshold : float
        The ``quantile`` of the correlations of all non-replicate pairs.
    groups : pandas.DataFrame
        Per replicate group: the ``groups`` columns, ``median_correlation``
        and ``n_pairs`` (cytominer-eval's median correlations).
    n_replicate_pairs, n_non_replicate_pairs : int
    """

    score: float
    threshold: float
    groups: pd.DataFrame
    n_replicate_pairs: int
    n_non_replicate_pairs: int


def percent_strong(
    meta: pd.DataFrame,
    feats: Features,
    groups: Columns,
    *,
    method: str = "pearson",
    quantile: float = 0.95,
    max_memory: Size | None = None,
    n_jobs: int | None = None,
) -> StrongResult:
    """Percent strong: replicate pairs more correlated than most non-replicate pairs.

    cytominer-eval's ``replicate_reproducibility``: pairs are all unordered
    profile pairs; a pair is a replicate pair when the two profiles are equal
    in every ``groups`` column. The score is the fraction of replicate pairs
    whose correlation is strictly above the ``quantile`` (linear
    interpolation) of all non-replicate correlations.

    Parameters
    ----------
    meta : pandas.DataFrame
        Metadata, one row per profile.
    feats : numpy.ndarray or pandas.DataFrame
        (n_profiles, n_features) numeric features.
    groups : str or list of str
        Replicate columns (e.g. ``["compound", "dose"]``).
    method : {"pearson", "spearman"}, default "pearson"
    quantile : float, default 0.95
    max_memory : int or str, optional
        Bound on the similarity blocks and collected values (default 1 GiB);
        beyond it the quantile is found by exact multi-pass selection.
    n_jobs : int, optional
        Threads (default: all available CPUs).

    Returns
    -------
    StrongResult

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> meta = pd.DataFrame({"cpd": ["a", "a", "b", "b", "c", "c"]})
    >>> feats = np.array([[1, 2, 3.0], [1, 2, 3.5], [3, 1, 2], [3, 1.2, 2], [2, 3, 1], [2, 3, 0]])
    >>> res = percent_strong(meta, feats, "cpd")
    >>> res.score, res.n_replicate_pairs, res.n_non_replicate_pairs
    (1.0, 3, 12)
    """
    cols = _as_list("groups", groups)
    if not cols:
        raise ValueError("groups must name at least one column (the replicate groups)")
    _check_common(quantile)
    if not isinstance(meta, pd.DataFrame):
        raise TypeError(f"meta must be a pandas DataFrame, got {type(meta).__name__}")
    meta = meta.reset_index(drop=True)
    budget = _budget(max_memory)
    grp = Groups.encode(meta, cols, [])
    n = len(meta)
    sizes = grp.buckets.sizes()
    n_rep = int((sizes * (sizes - 1) // 2).sum())
    n_non = n * (n - 1) // 2 - n_rep
    if n_rep == 0:
        raise ValueError(f"no replicate pairs: no two profiles share {cols}")
    if n_non == 0:
        raise ValueError(f"no non-replicate pairs: every profile has the same {cols}")
    with thread_limits(n_jobs):
        Z = _standardized(feats, n, method)
        step = max(1, budget // (8 * 8 * n))  # a block and its kept values: budget / 4

        def non_replicate_chunks():
            for r0 in range(0, n, step):
                r1 = min(n, r0 + step)
                keep = (np.arange(r0, n)[None, :] > np.arange(r0, r1)[:, None]) & (
                    grp.key[r0:r1, None] != grp.key[None, r0:]
                )
                yield (Z[r0:r1] @ Z[r0:].T)[keep]

        ranks = quantile_ranks(n_non, float(quantile))
        lo, hi = select(non_replicate_chunks, ranks, n_non, max(1, budget // 16))
        threshold = lerp_quantile(lo, hi, float(quantile), n_non)
        stats = group_stats(Z, grp, max(1, budget // _PAIR_BYTES), threshold=threshold)
    medians, n_pairs, above = stats.median, stats.n_pairs, stats.above
    table, order = _group_table(meta, cols, grp.key)
    table["median_correlation"] = medians
    table["n_pairs"] = n_pairs
    table = table.loc[order].reset_index(drop=True)
    score = above / n_rep
    logger.info("percent_strong: %d of %d replicate pairs above %.6f", above, n_rep, threshold)
    return StrongResult(score, threshold, table, n_rep, n_non)
