"""copairs 0.5.5's ``copairs.replicating`` on pairmap (percent replicating).

Same names, arguments and outputs as copairs::

    from pairmap.compat.replicating import correlation_test   # was: from copairs.replicating ...
    result = correlation_test(X, meta, sameby, diffby, n_samples=1000)
    result.percent_score("right"), result.wasserstein_distance()

Correlations are Pearson in float64 (copairs: float32, medians agree to ~1e-7).
The null pairs are drawn by :func:`pairmap.percent_replicating`'s seeded
generator (seed 0, like copairs' ``Matcher(seed=0)``, but not copairs' random
stream), so percent scores can differ from copairs' by the sampling of the
null. ``wasserstein_distance`` leaves groups without pairs out (copairs
returns NaN then).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from pairmap._pair_stats import pair_corr
from pairmap.replicating import ReplicatingResult, _standardized, percent_replicating

__all__ = [
    "CorrelationTestResult",
    "corr_between_non_replicates",
    "corr_between_replicates",
    "corr_from_null_pairs",
    "corr_from_pairs",
    "correlation_test",
    "correlation_test_from_pairs",
]

_MAX_REPLICATES = 50


class CorrelationTestResult:
    """Replicate and null median correlations, with copairs' scoring methods.

    Examples
    --------
    >>> corr_df = pd.DataFrame({"median": [0.5, 0.9], "count": [3, 3]})
    >>> res = CorrelationTestResult(corr_df, pd.Series(np.linspace(-0.2, 0.6, 101)))
    >>> res.percent_score("right")
    (0.5, None, 0.56)
    """

    def __init__(self, corr_df: pd.DataFrame, null_dist: pd.Series):
        self.corr_df = corr_df
        self.corr_dist = corr_df["median"]
        self.null_dist = null_dist

    def _result(self) -> ReplicatingResult:
        groups = pd.DataFrame({"median_correlation": self.corr_dist.to_numpy(np.float64)})
        return ReplicatingResult(
            groups, np.asarray(self.null_dist, dtype=np.float64), 0.0, None, None, 0
        )

    def percent_score_left(self):
        """Share of groups below the null's 5th percentile, and that percentile."""
        score, left, _ = self._result().percent_score("left")
        return score, left

    def percent_score_right(self):
        """Share of groups above the null's 95th percentile, and that percentile."""
        score, _, right = self._result().percent_score("right")
        return score, right

    def percent_score_both(self):
        """Sum of the left and right shares, and the two percentiles."""
        return self._result().percent_score("both")

    def percent_score(self, how: Literal["left", "right", "both"]):
        """(score, left threshold or None, right threshold or None) for ``how``."""
        if how not in ("left", "right", "both"):
            raise ValueError(f"Invalid value: {how} for how param")
        return self._result().percent_score(how)

    def wasserstein_distance(self):
        """1-Wasserstein distance between the null and the group medians."""
        return self._result().wasserstein_distance()


def _standardize(X) -> np.ndarray:
    X = np.asarray(X)
    return _standardized(X, X.shape[0], "pearson")


def corr_from_null_pairs(X: np.ndarray, null_pairs, n_replicates, progress_bar: bool = True):
    """Median correlation of consecutive groups of ``n_replicates`` of the given row pairs.

    Examples
    --------
    >>> X = np.array([[1.0, 2, 3], [1, 2, 4], [3, 2, 1], [1, 3, 2]])
    >>> corr_from_null_pairs(X, [(0, 1), (0, 2), (1, 3), (2, 3)], 2).round(3).tolist()
    [-0.009, -0.086]
    """
    pairs = np.asarray(null_pairs, dtype=np.int64).reshape(-1, 2)
    corrs = pair_corr(_standardize(X), pairs[:, 0], pairs[:, 1]).reshape(-1, n_replicates)
    return pd.Series(np.nanmedian(corrs, axis=1))


def corr_from_pairs(X: np.ndarray, pairs: dict, sameby, progress_bar: bool = True):
    """Per key of ``pairs``: median and count of its pairs' correlations; median replicate count.

    Returns ``(corr_dist, median_num_repl)`` like copairs: ``corr_dist`` has
    columns ``median`` and ``count`` indexed by the key (joined with ``"_"``
    for several ``sameby`` columns); the replicate count of a key is the
    number of distinct first rows of its pairs.

    Examples
    --------
    >>> X = np.array([[1.0, 2, 3], [1, 2, 4], [3, 2, 1], [3, 1, 1]])
    >>> dist, n = corr_from_pairs(X, {"a": [(0, 1)], "b": [(2, 3)]}, ["cpd"])
    >>> dist["count"].tolist(), n
    ([1, 1], 1)
    """
    keys = list(pairs)
    pair_ix = np.vstack([np.asarray(pairs[k], dtype=np.int64).reshape(-1, 2) for k in keys])
    counts = [len(pairs[k]) for k in keys]
    labels = keys if len(sameby) == 1 else ["_".join(k) for k in keys]
    frame = pd.DataFrame(
        {
            "_".join(sameby): np.repeat(np.asarray(labels, dtype=object), counts),
            "corr": pair_corr(_standardize(X), pair_ix[:, 0], pair_ix[:, 1]),
            "row_x": pair_ix[:, 0],
        }
    )
    agg = frame.groupby("_".join(sameby)).agg({"corr": ["median", "count"], "row_x": "nunique"})
    return agg["corr"], int(agg["row_x", "nunique"].median())


def _replicates(X, meta, sameby, diffby, n_samples, n_replicates=None):
    return percent_replicating(
        meta, X, list(sameby), list(diffby), null_size=n_samples, n_replicates=n_replicates, seed=0
    )


def _corr_df(res: ReplicatingResult, sameby) -> pd.DataFrame:
    groups = res.groups[res.groups["n_pairs"] > 0]
    if len(sameby) == 1:
        index = pd.Index(groups[sameby[0]].to_numpy(), name=sameby[0])
    else:
        keys = groups[list(sameby)].astype(str).agg("_".join, axis=1).to_numpy()
        index = pd.Index(keys, name="_".join(sameby))
    out = pd.DataFrame(
        {"median": groups["median_correlation"].to_numpy(), "count": groups["n_pairs"].to_numpy()},
        index=index,
    )
    return out.sort_index()


def corr_between_replicates(
    X: np.ndarray, meta: pd.DataFrame, sameby, diffby, progress_bar: bool = True
):
    """Median correlation and pair count per replicate group, and the median replicate count.

    Examples
    --------
    >>> meta = pd.DataFrame({"cpd": ["a", "a", "b", "b"]})
    >>> X = np.array([[1.0, 2, 3], [1, 2, 4], [3, 2, 1], [3, 1, 1]])
    >>> df, n = corr_between_replicates(X, meta, ["cpd"], [])
    >>> df["count"].tolist(), n
    ([1, 1], 1)
    """
    res = _replicates(X, meta, sameby, diffby, 1)
    n_first = int(np.median(_first_counts(res)))
    return _corr_df(res, list(sameby)), n_first


def _first_counts(res: ReplicatingResult) -> np.ndarray:
    return res.groups.loc[res.groups["n_pairs"] > 0, "n_first_rows"].to_numpy()


def corr_between_non_replicates(
    X: np.ndarray,
    meta: pd.DataFrame,
    n_samples: int,
    n_replicates: int,
    diffby,
    progress_bar: bool = True,
):
    """``n_samples`` medians of ``n_replicates`` random pairs differing in every ``diffby`` column.

    Examples
    --------
    >>> meta = pd.DataFrame({"cpd": ["a", "a", "b", "b"]})
    >>> X = np.array([[1.0, 2, 3], [1, 2, 4], [3, 2, 1], [3, 1, 1]])
    >>> len(corr_between_non_replicates(X, meta, 10, 2, ["cpd"]))
    10
    """
    from pairmap._pair_stats import null_medians
    from pairmap.pairing import encode_columns

    codes = encode_columns(meta.reset_index(drop=True), list(diffby))
    return pd.Series(null_medians(_standardize(X), codes, int(n_samples), int(n_replicates), 0))


def correlation_test(
    X: np.ndarray,
    meta: pd.DataFrame,
    sameby,
    diffby,
    n_samples: int = 1000,
    progress_bar: bool = True,
) -> CorrelationTestResult:
    """Replicate and null distributions of median correlations (copairs' percent replicating).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> meta = pd.DataFrame({"cpd": np.repeat(list("abcd"), 3)})
    >>> X = rng.normal(size=(4, 20)).repeat(3, axis=0) + 0.3 * rng.normal(size=(12, 20))
    >>> correlation_test(X, meta, ["cpd"], [], n_samples=100).percent_score("right")[0]
    1.0
    """
    res = _replicates(X, meta, sameby, diffby, n_samples)
    return CorrelationTestResult(_corr_df(res, list(sameby)), pd.Series(res.null))


def correlation_test_from_pairs(
    X: np.ndarray, pairs: dict, null_pairs: list, sameby: list, progress_bar: bool = True
) -> CorrelationTestResult:
    """:func:`correlation_test` from given replicate pairs and null pairs.

    Examples
    --------
    >>> X = np.array([[1.0, 2, 3], [1, 2, 4], [3, 2, 1], [3, 1, 1]])
    >>> res = correlation_test_from_pairs(X, {"a": [(0, 1)], "b": [(2, 3)]},
    ...                                   [(0, 2), (1, 3)], ["cpd"])
    >>> len(res.null_dist)
    2
    """
    corr_df, median_num_repl = corr_from_pairs(X, pairs, sameby)
    n_replicates = min(median_num_repl, _MAX_REPLICATES)
    return CorrelationTestResult(corr_df, corr_from_null_pairs(X, null_pairs, n_replicates))
