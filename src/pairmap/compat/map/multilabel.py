"""copairs.map.multilabel on pairmap's multi-label engine."""

from __future__ import annotations

import numpy as np
import pandas as pd

import pairmap
from pairmap.compat.map.average_precision import _rule_side
from pairmap.compat.map.filter import evaluate_and_filter, flatten_str_list, validate_pipeline_input
from pairmap.compat.matching import UnpairedException

__all__ = ["average_precision"]

_AP = ["average_precision", "normalized_average_precision", "n_pos_pairs", "n_total_pairs"]


def average_precision(
    meta: pd.DataFrame,
    feats,
    pos_sameby,
    pos_diffby,
    neg_sameby,
    neg_diffby,
    multilabel_col,
    batch_size=20000,
    distance="cosine",
    progress_bar: bool = True,
) -> pd.DataFrame:
    """AP per (profile, label) of a multi-label column (copairs' columns; pairmap's engine).

    ``multilabel_col`` holds a list of labels per profile. As in copairs, only
    (profile, label) rows with positives are returned, with the metadata
    (without ``multilabel_col``), the AP columns, then ``multilabel_col``
    holding the label. ``batch_size`` does not change results.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> meta = pd.DataFrame({"cpd": ["a", "b", "c", "d"],
    ...                      "t": [["A", "B"], ["A"], ["B"], ["C"]]})
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.8, 0.3], [0.0, 1.0]])
    >>> out = average_precision(meta, X, ["t"], [], [], ["t"], "t", progress_bar=False)
    >>> out[["cpd", "t", "n_pos_pairs"]].values.tolist()
    [['a', 'A', 1], ['a', 'B', 1], ['b', 'A', 1], ['c', 'B', 1]]
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
    _, columns = evaluate_and_filter(meta, flatten_str_list(*rules))
    validate_pipeline_input(meta, np.asarray(feats), columns)
    try:
        ap = pairmap.average_precision(
            meta,
            np.asarray(feats),
            *rules,
            distance=distance,
            multilabel_col=multilabel_col,
            progress_bar=progress_bar,
        )
    except ValueError as exc:
        for kind in ("positive", "negative"):
            if str(exc).startswith(f"no {kind} pairs"):
                raise UnpairedException(f"Unable to find {kind} pairs.") from exc
        raise
    ap = ap[ap["n_pos_pairs"] > 0].reset_index(drop=True)  # (rows a query removed have none)
    meta_cols = [c for c in ap.columns if c not in _AP and c != multilabel_col]
    out = ap[meta_cols + _AP + [multilabel_col]].copy()
    for col in ("n_pos_pairs", "n_total_pairs"):
        out[col] = out[col].astype(np.uint32)
    return out
