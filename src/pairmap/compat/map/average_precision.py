"""copairs.map.average_precision on pairmap's engine."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

import pairmap
from pairmap.compat.map.filter import evaluate_and_filter, flatten_str_list, validate_pipeline_input
from pairmap.compat.matching import UnpairedException

__all__ = ["average_precision", "p_values"]

#: copairs' column order after the metadata.
_AP_COLUMNS = ["n_pos_pairs", "n_total_pairs", "average_precision", "normalized_average_precision"]


def _rule_side(value, name: str):
    if isinstance(value, str):
        warnings.warn(
            f"Passing strings to '{name}' is deprecated and will be removed in v0.5.3.",
            DeprecationWarning,
            stacklevel=3,
        )
        return [value]
    return dict(value) if isinstance(value, dict) else list(value)


def average_precision(
    meta: pd.DataFrame,
    feats,
    pos_sameby,
    pos_diffby,
    neg_sameby,
    neg_diffby,
    batch_size: int = 20000,
    distance: str = "cosine",
    progress_bar: bool = True,
) -> pd.DataFrame:
    """AP of every profile (copairs' signature, columns and exceptions; pairmap's engine).

    Entries of the rules that are query expressions filter the rows first
    (as copairs does); ``batch_size`` is accepted and does not change results.
    Profiles with positives but no negatives get NaN (copairs: 1.0), and a
    pair satisfying both rules is an error (copairs counts it twice).

    Raises
    ------
    UnpairedException
        When no positive or no negative pair exists.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> meta = pd.DataFrame({"c": ["a", "a", "b", "b"]})
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> average_precision(meta, X, ["c"], [], [], ["c"], progress_bar=False)[
    ...     ["c", "n_pos_pairs", "n_total_pairs", "average_precision"]].values.tolist()
    [['a', 1, 3, 1.0], ['a', 1, 3, 1.0], ['b', 1, 3, 1.0], ['b', 1, 3, 1.0]]
    """
    rules = [
        _rule_side(v, n)
        for v, n in (
            (pos_sameby, "pos_sameby"),
            (pos_diffby, "pos_diffby"),
            (neg_sameby, "neg_sameby"),
            (neg_diffby, "neg_diffby"),
        )
    ]
    columns = flatten_str_list(*rules)
    filtered, columns = evaluate_and_filter(meta, columns)
    feats = np.asarray(feats)
    validate_pipeline_input(meta, feats, columns)
    rows = meta.index.get_indexer(filtered.index) if len(filtered) < len(meta) else None
    try:
        ap = pairmap.average_precision(
            meta, feats, *rules, distance=distance, progress_bar=progress_bar
        )
    except ValueError as exc:
        for kind in ("positive", "negative"):
            if str(exc).startswith(f"no {kind} pairs"):
                raise UnpairedException(f"Unable to find {kind} pairs.") from exc
        raise
    if rows is not None:  # pairmap returns every row; copairs only the filtered ones
        ap = ap.iloc[rows].reset_index(drop=True)
    meta_cols = [c for c in ap.columns if c not in _AP_COLUMNS]
    return ap[meta_cols + _AP_COLUMNS]


def p_values(dframe: pd.DataFrame, null_size: int, seed: int, progress_bar: bool = True):
    """p-value of every profile's AP against random rankings (NaN without positives).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"average_precision": [1.0, float("nan")], "n_pos_pairs": [1, 0],
    ...                    "n_total_pairs": [3, 0]})
    >>> p_values(df, null_size=100, seed=0, progress_bar=False).tolist()
    [0.3333333432674408, nan]
    """
    p = pairmap.p_values(dframe, null_size=null_size, seed=seed, progress_bar=progress_bar)
    return np.asarray(p, dtype=np.float32)
