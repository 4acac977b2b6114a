"""copairs.map.map: mAP per group with p-values (pairmap's engine, copairs' null model)."""

from __future__ import annotations

import pandas as pd

import pairmap
from pairmap.compat.map.hierarchical_fdr import apply_hierarchical_fdr_correction

__all__ = ["get_map_pvalue", "mean_average_precision", "mean_average_precision_hierarchical"]

_COLUMNS = ["mean_average_precision", "indices", "mean_normalized_average_precision", "p_value"]


def _as_list(sameby) -> list:
    return [sameby] if isinstance(sameby, str) else list(sameby)


def get_map_pvalue(
    ap_scores: pd.DataFrame,
    sameby,
    null_size: int,
    seed: int,
    progress_bar: bool = True,
    max_workers=None,
    cache_dir=None,
) -> pd.DataFrame:
    """mAP and p-value per group, with ``indices`` (positions among the scored profiles).

    Groups without a scored profile are left out, as in copairs. p-values
    count ``null >= observed`` and use exact nulls when they fit in
    ``null_size`` (pairmap's rules).

    Examples
    --------
    >>> import pandas as pd
    >>> ap = pd.DataFrame({"g": ["a", "a", "b"], "average_precision": [1.0, 0.5, None],
    ...                    "normalized_average_precision": [1.0, 0.0, None],
    ...                    "n_pos_pairs": [1, 1, 0], "n_total_pairs": [2, 2, 0]})
    >>> get_map_pvalue(ap, ["g"], null_size=10, seed=0, progress_bar=False)[
    ...     ["g", "mean_average_precision", "indices"]].values.tolist()
    [['a', 0.75, [0, 1]]]
    """
    sameby = _as_list(sameby)
    scored = ap_scores.query("~average_precision.isna() and n_pos_pairs > 0")
    scored = scored.reset_index(drop=True)
    if "normalized_average_precision" not in scored:
        scored = scored.assign(normalized_average_precision=float("nan"))
    kwargs = dict(
        null_size=null_size, seed=seed, null="shared", progress_bar=progress_bar, n_jobs=max_workers
    )
    if cache_dir is not None:
        kwargs["cache"] = cache_dir
    result = pairmap.mean_average_precision(scored, sameby, **kwargs)
    result = result[result["n_profiles"] > 0]  # copairs leaves unscored groups out
    positions = scored.groupby(sameby, observed=True, sort=False).indices
    positions = {(k if isinstance(k, tuple) else (k,)): v for k, v in positions.items()}
    result["indices"] = [
        positions[tuple(row)].tolist() for row in result[sameby].itertuples(index=False)
    ]
    return result[sameby + _COLUMNS].reset_index(drop=True)


def _flag(map_scores: pd.DataFrame, threshold: float) -> pd.DataFrame:
    map_scores["below_p"] = map_scores["p_value"] < threshold
    map_scores["below_corrected_p"] = map_scores["corrected_p_value"] < threshold
    return map_scores


def mean_average_precision(
    ap_scores: pd.DataFrame,
    sameby,
    null_size: int,
    threshold: float,
    seed: int,
    progress_bar: bool = True,
    max_workers=None,
    cache_dir=None,
) -> pd.DataFrame:
    """mAP per group with p-values and Benjamini-Hochberg correction (copairs' columns).

    Examples
    --------
    >>> import pandas as pd
    >>> ap = pd.DataFrame({"g": ["a", "a"], "average_precision": [1.0, 1.0],
    ...                    "n_pos_pairs": [1, 1], "n_total_pairs": [4, 4]})
    >>> mean_average_precision(ap, ["g"], 100, 0.05, 0, progress_bar=False).columns.tolist()
    ... # doctest: +NORMALIZE_WHITESPACE
    ['g', 'mean_average_precision', 'indices', 'mean_normalized_average_precision',
     'p_value', 'corrected_p_value', 'below_p', 'below_corrected_p']
    """
    from pairmap.compat.map.hierarchical_fdr import apply_fdr_correction

    scores = get_map_pvalue(
        ap_scores, sameby, null_size, seed, progress_bar, max_workers, cache_dir
    )
    return _flag(apply_fdr_correction(scores), threshold)


def mean_average_precision_hierarchical(
    ap_scores: pd.DataFrame,
    sameby,
    null_size: int,
    threshold: float,
    seed: int,
    hierarchical_by,
    progress_bar: bool = True,
    max_workers=None,
    cache_dir=None,
) -> pd.DataFrame:
    """mAP per group with hierarchical FDR (min-p per ``hierarchical_by`` group, then BH).

    Examples
    --------
    >>> import pandas as pd
    >>> ap = pd.DataFrame({"c": ["x"] * 4, "d": [1, 1, 2, 2], "average_precision": [1.0] * 4,
    ...                    "n_pos_pairs": [1] * 4, "n_total_pairs": [4] * 4})
    >>> out = mean_average_precision_hierarchical(ap, ["c", "d"], 100, 0.05, 0, ["c"],
    ...                                           progress_bar=False)
    >>> out["stage1_significant"].tolist()
    [False, False]
    """
    scores = get_map_pvalue(
        ap_scores, sameby, null_size, seed, progress_bar, max_workers, cache_dir
    )
    scores = apply_hierarchical_fdr_correction(
        scores, hierarchical_by, _as_list(sameby), alpha=threshold
    )
    return _flag(scores, threshold)
