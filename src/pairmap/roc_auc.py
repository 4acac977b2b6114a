"""p-values of ROC-AUC: exact Mann-Whitney distribution, normal approximation, group nulls.

The null hypothesis is the one of the AP p-values (:mod:`pairmap.nulls`):
a query's ``k`` positives occupy a uniformly random ``k``-subset of the ranks
``1..n`` of its list (``m = n - k`` negatives). ROC-AUC is ``U / (k m)`` with
U the Mann-Whitney statistic; an observed negative tied with a positive counts
1/2, so an observed U may be a half-integer, and the p-value is
``P(U_null >= U_observed)``.

* :func:`mann_whitney_counts` -- the exact null: how many of the ``C(n, k)``
  subsets give each U, the coefficients of the Gaussian binomial
  ``[n choose k]_q = prod_i (1 - q^(m+i)) / (1 - q^i)``, computed in exact
  int64 arithmetic (``O(k^2 m)``) while ``C(n, k) < 2**62``.
* :func:`roc_auc_p_values` -- per profile: exact when the counts fit, else
  the normal approximation with continuity correction
  (mean ``k m / 2``, variance ``k m (n + 1) / 12``).
* :func:`mean_roc_auc` -- mean ROC-AUC per group with p-values from the group
  null machinery of :func:`pairmap.mean_average_precision` (``"shared"`` or
  ``"independent"`` model, exact enumeration when the joint null has at most
  ``null_size`` outcomes, otherwise seeded draws cached in the null cache) and
  Benjamini-Hochberg correction.

No tie correction is applied: the null ranks have no ties (similarities are
continuous; the engine's 2**-36 grid only merges values equal up to rounding).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

from ._parallel import thread_limits
from ._progress import progress
from ._typing import CacheSpec, Columns
from ._validation import check_bool, check_int, check_option, check_seed
from .fdr import benjamini_hochberg
from .nulls import _get_or_compute, _open_cache, check_null_memory, exact_size, key_seed
from .significance import NULL_MODELS, _as_columns, _DrawStore, _group_pvalues, _group_signatures

__all__ = ["auc_recompute", "mann_whitney_counts", "mean_roc_auc", "roc_auc_p_values"]

logger = logging.getLogger(__name__)

#: exact counts while C(n, k) stays below this (int64 arithmetic without overflow)
EXACT_MAX_SUBSETS = 2**62
#: and while the distribution has at most this many values (k m + 1)
EXACT_MAX_DEGREE = 1 << 22

_REQUIRED = ("roc_auc", "n_pos_pairs", "n_total_pairs")


def mann_whitney_counts(n_pos: int, n_neg: int) -> np.ndarray | None:
    """Number of rankings giving each Mann-Whitney U, for ``n_pos`` positives and ``n_neg`` negatives.

    Parameters
    ----------
    n_pos, n_neg : int
        ``k >= 1`` positives and ``m >= 1`` negatives.

    Returns
    -------
    numpy.ndarray or None
        int64 array ``c`` of length ``k m + 1``: ``c[u]`` of the ``C(k+m, k)``
        equally likely rankings have U = u. ``None`` when ``C(k+m, k) >= 2**62``
        or ``k m >= 2**22`` (use the normal approximation).

    Examples
    --------
    >>> mann_whitney_counts(2, 2).tolist()  # U of the 6 rankings of 2 + 2 items
    [1, 1, 2, 1, 1]
    """
    k, m = check_int("n_pos", n_pos, minimum=1), check_int("n_neg", n_neg, minimum=1)
    if k * m >= EXACT_MAX_DEGREE or exact_size(k, k + m, EXACT_MAX_SUBSETS - 1) is None:
        return None
    k, m = min(k, m), max(k, m)  # [n choose k]_q = [n choose m]_q: fewer steps
    deg = k * m
    c = np.zeros(deg + 1, dtype=np.int64)
    c[0] = 1
    for i in range(1, k + 1):
        s = m + i
        if s <= deg:  # times (1 - q^s), truncated at deg (exact for the kept terms)
            c[s:] = c[s:] - c[:-s]
        # divided by (1 - q^i): c[j] += c[j - i], i.e. a cumulative sum per residue mod i
        width = -(-(deg + 1) // i) * i
        tmp = np.zeros(width, dtype=np.int64)
        tmp[: deg + 1] = c
        c = np.cumsum(tmp.reshape(-1, i), axis=0).reshape(-1)[: deg + 1]
    return c


def _normal_tail(u_ceil, k, m):
    """P(U >= u) for integer ``u`` by the normal approximation with continuity correction."""
    mean = k * m / 2.0
    sd = np.sqrt(k * m * (k + m + 1) / 12.0)
    z = (u_ceil - 0.5 - mean) / sd
    return 0.5 * np.vectorize(math.erfc, otypes=[np.float64])(z / math.sqrt(2.0))


def _tail_probabilities(u_obs, k, m):
    """P(U_null >= u_obs) for the observed (possibly half-integer) U of one list shape."""
    u_ceil = np.ceil(u_obs - 1e-9)  # u_obs is a multiple of 1/2 up to rounding
    counts = mann_whitney_counts(k, m)
    if counts is None:
        return np.minimum(1.0, _normal_tail(u_ceil, k, m)), False
    tail = np.cumsum(counts[::-1])[::-1]  # tail[u] = #{U >= u}, exact integers
    idx = np.clip(u_ceil.astype(np.int64), 0, k * m)
    out = tail[idx] / float(tail[0])
    return np.where(u_ceil > k * m, 0.0, out), True


def _scores_frame(scores, *, what):
    """Validated (valid, auc, k, n) arrays of a table with ``roc_auc`` and pair counts."""
    if not isinstance(scores, pd.DataFrame):
        raise TypeError(
            f"{what} needs a pandas DataFrame (the output of average_precision with "
            f"metrics=['roc_auc']), got {type(scores).__name__}"
        )
    missing = [c for c in _REQUIRED if c not in scores.columns]
    if missing:
        raise ValueError(
            f"{what}: the table is missing column(s) {missing}; compute it with "
            f"pairmap.average_precision(..., metrics=['roc_auc'])"
        )
    auc = pd.to_numeric(scores["roc_auc"], errors="raise").to_numpy(np.float64)
    k = pd.to_numeric(scores["n_pos_pairs"], errors="raise").to_numpy(np.float64)
    n = pd.to_numeric(scores["n_total_pairs"], errors="raise").to_numpy(np.float64)
    valid = ~np.isnan(auc) & ~np.isnan(k) & ~np.isnan(n) & (k > 0)
    bad = valid & (
        (n <= k) | (k != np.round(k)) | (n != np.round(n)) | (n >= 2**32) | (auc < 0) | (auc > 1)
    )
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{what}: row {scores.index[i]!r} has roc_auc={auc[i]:g}, n_pos_pairs={k[i]:g}, "
            f"n_total_pairs={n[i]:g}; ROC-AUC must be in [0, 1] and the counts integers with "
            f"n_pos_pairs < n_total_pairs < 2**32"
        )
    return (
        valid,
        auc,
        np.where(valid, k, 0).astype(np.int64),
        np.where(valid, n, 0).astype(np.int64),
    )


def roc_auc_p_values(scores: pd.DataFrame) -> np.ndarray:
    """p-value of every profile's ROC-AUC against random rankings of its own list.

    Exact (Mann-Whitney distribution) while ``C(n, k) < 2**62``, otherwise the
    normal approximation with continuity correction; see the module notes.

    Parameters
    ----------
    scores : pandas.DataFrame
        Output of :func:`pairmap.average_precision` with
        ``metrics=["roc_auc"]``: columns ``roc_auc``, ``n_pos_pairs``,
        ``n_total_pairs``.

    Returns
    -------
    numpy.ndarray
        float64 p-values ``P(U_null >= U_observed)``, NaN where ROC-AUC is NaN.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"roc_auc": [1.0, 0.5, float("nan")],
    ...                    "n_pos_pairs": [2, 2, 0], "n_total_pairs": [4, 4, 0]})
    >>> roc_auc_p_values(df)  # 1 of 6 rankings has U = 4; 4 of 6 have U >= 2
    array([0.16666667, 0.66666667,        nan])
    """
    valid, auc, k, n = _scores_frame(scores, what="roc_auc_p_values")
    out = np.full(len(scores), np.nan)
    idx = np.flatnonzero(valid)
    if not idx.size:
        return out
    confs, inv = np.unique(np.stack([k[idx], n[idx]], axis=1), axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    n_exact = 0
    for c, (kc, nc) in enumerate(confs.tolist()):
        rows = idx[inv == c]
        m = nc - kc
        out[rows], exact = _tail_probabilities(auc[rows] * (kc * m), kc, m)
        n_exact += exact
    logger.info(
        "ROC-AUC p-values for %d profiles: %d of %d list shapes exact",
        idx.size,
        n_exact,
        len(confs),
    )
    return out


def _exact_aucs(k: int, n: int) -> np.ndarray:
    """ROC-AUC of every ranking of ``k`` positives among ``n`` items, U ascending."""
    counts = mann_whitney_counts(k, n - k)
    u = np.arange(counts.shape[0], dtype=np.float64)
    return np.repeat(u / float(k * (n - k)), counts)


def auc_recompute(key):
    """``recompute(positions)`` for a cached ROC-AUC null (``auc_*`` methods), else ``None``.

    Used by the cache to spot-check stored values (see :mod:`pairmap._null_check`).

    Examples
    --------
    >>> from pairmap.cache import NullKey
    >>> auc_recompute(NullKey("auc_exact", 0, 100, 4, 2, 1))(np.array([0, 5])).tolist()
    [0.0, 1.0]
    """
    from ._kernels.roc_auc import sample_null_aucs

    k, n = key.n_pos, key.n_total
    if not 1 <= k < n < 2**32 or key.null_size < 1:
        return None
    if key.method == "auc_exact":
        if exact_size(k, n, key.null_size) is None:
            return None
        return lambda positions: _exact_aucs(k, n)[np.asarray(positions, dtype=np.int64)]
    if key.method == "auc_sampled":
        ordinal = 0
    elif key.method.startswith("auc_sampled_m") and key.method[13:].isdigit():
        ordinal = int(key.method[13:])
    else:
        return None
    stream = key_seed(key.seed, key.null_size, n, k, ordinal)
    return lambda positions: np.array(
        [sample_null_aucs(stream, n, k, int(p), 1, 1)[0] for p in np.asarray(positions)],
        dtype=np.float64,
    )


class _AucDrawStore(_DrawStore):
    """The group-null draw store of :mod:`pairmap.significance`, drawing ROC-AUC instead of AP."""

    def _draws(self, k, n, ordinal, start, stop):
        from ._kernels.roc_auc import sample_null_aucs

        key = key_seed(self.seed, self.null_size, n, k, ordinal)
        return sample_null_aucs(key, n, k, start, stop - start, 4 * max(1, self.n_threads))

    def sampled(self, k, n, ordinal):
        key = ("s", k, n, ordinal)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        method = "auc_sampled" if ordinal == 0 else f"auc_sampled_m{ordinal}"
        arr = _get_or_compute(
            self.cache_obj,
            method,
            self.seed,
            self.null_size,
            n,
            k,
            lambda: self._draws(k, n, ordinal, 0, self.null_size),
            self.null_size,
            self._recompute(method, k, n),
        )
        return self._remember(key, arr)

    def partial(self, k, n, ordinal, start, stop):
        return self._draws(k, n, ordinal, start, stop)

    def _recompute(self, method, k, n):
        from .cache import NullKey
        from .nulls import ALGORITHM_VERSION

        return auc_recompute(NullKey(method, self.seed, self.null_size, n, k, ALGORITHM_VERSION))

    def exact(self, k, n):
        key = ("e", k, n)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        total = exact_size(k, n, self.null_size)
        if total is None:
            return None

        arr = _get_or_compute(
            self.cache_obj,
            "auc_exact",
            self.seed,
            self.null_size,
            n,
            k,
            lambda: _exact_aucs(k, n),
            total,
            self._recompute("auc_exact", k, n),
        )
        return self._remember(key, arr)


def mean_roc_auc(
    scores: pd.DataFrame,
    sameby: Columns,
    *,
    null_size: int = 10000,
    threshold: float = 0.05,
    seed: int = 0,
    null: str = "shared",
    cache: CacheSpec = None,
    n_jobs: int | None = None,
    progress_bar: bool = True,
) -> pd.DataFrame:
    """Mean ROC-AUC per group with permutation p-values and Benjamini-Hochberg correction.

    The group null is built exactly as for :func:`pairmap.mean_average_precision`
    (same models, seeds, exact-enumeration rule and null cache), from the
    ROC-AUC of the same random rankings.

    Parameters
    ----------
    scores : pandas.DataFrame
        Output of :func:`pairmap.average_precision` with ``metrics=["roc_auc"]``.
    sameby : str or list of str
        Columns defining the groups.
    null_size : int, default 10000
        Draws per null; joint nulls with at most ``null_size`` outcomes are
        enumerated exactly.
    threshold : float, default 0.05
        Level for ``below_p`` / ``below_corrected_p`` (strict ``<``).
    seed : int, default 0
        Base seed; results are bit-identical for equal inputs.
    null : {"shared", "independent"}, default "shared"
        Group null model (see :func:`pairmap.mean_average_precision`).
    cache : None, str, path, False or NullCache, default None
        Null cache (``False`` disables it).
    n_jobs : int or None, default None
        Threads (never changes results).
    progress_bar : bool, default True
        Show a progress bar over distinct group nulls.

    Returns
    -------
    pandas.DataFrame
        One row per group (sorted by ``sameby``): the ``sameby`` columns,
        ``mean_roc_auc``, ``n_profiles``, ``p_value``, ``corrected_p_value``,
        ``below_p``, ``below_corrected_p``.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"cpd": ["a", "a", "b", "b"], "roc_auc": [1.0, 1.0, 0.5, 0.0],
    ...                    "n_pos_pairs": [1, 1, 1, 1], "n_total_pairs": [3, 3, 3, 3]})
    >>> res = mean_roc_auc(df, "cpd", cache=False, progress_bar=False)
    >>> res[["cpd", "mean_roc_auc", "p_value"]].to_dict("list")
    {'cpd': ['a', 'b'], 'mean_roc_auc': [1.0, 0.25], 'p_value': [0.3333333333333333, 0.6666666666666666]}
    """
    valid, auc, k, n = _scores_frame(scores, what="mean_roc_auc")
    sameby = _as_columns("sameby", sameby, scores)
    null_size = check_int("null_size", null_size, minimum=1)
    check_null_memory(null_size)
    seed = check_seed(seed)
    check_option("null", null, NULL_MODELS)
    progress_bar = check_bool("progress_bar", progress_bar)
    if isinstance(threshold, bool) or not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"threshold must be a number in (0, 1], got {threshold!r}")
    df = scores.reset_index(drop=True)
    gid = df.groupby(sameby, sort=True, observed=True, dropna=False).ngroup().to_numpy()
    n_groups = int(gid.max()) + 1 if gid.size else 0
    _, first = np.unique(gid, return_index=True)
    result = df.loc[first, sameby].reset_index(drop=True)
    vidx = np.flatnonzero(valid)
    vg = gid[vidx]
    counts = np.bincount(vg, minlength=n_groups)
    pvals = np.full(n_groups, np.nan)
    cache_obj = _open_cache(cache)
    with thread_limits(n_jobs) as n_threads:
        from ._kernels.nulls import run_segment_sorted_means

        order = np.lexsort((auc[vidx], vg))
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        means = run_segment_sorted_means(auc[vidx][order], starts, n_threads)
        confs, by_sig = _group_signatures(k[vidx], n[vidx], vg, n_groups)
        logger.info(
            "mean ROC-AUC for %d groups (%d distinct group nulls, null=%r)",
            n_groups,
            len(by_sig),
            null,
        )
        store = _AucDrawStore(null_size, seed, cache_obj, n_threads)
        for sig in progress(
            sorted(by_sig), total=len(by_sig), desc="ROC-AUC nulls", enabled=progress_bar
        ):
            groups = np.asarray(by_sig[sig])
            pvals[groups] = _group_pvalues(sig, means[groups], confs, null, store, n_threads)
    result["mean_roc_auc"] = means
    result["n_profiles"] = counts.astype(np.int64)
    result["p_value"] = pvals
    result["corrected_p_value"] = benjamini_hochberg(pvals)
    result["below_p"] = result["p_value"] < threshold
    result["below_corrected_p"] = result["corrected_p_value"] < threshold
    return result
