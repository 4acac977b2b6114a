"""Retrieval metrics besides AP, from the same ranking pass: ROC-AUC, precision@k, recall@k.

:func:`pairmap.average_precision` accepts ``metrics=[...]``; every name below
adds one column to its output, computed from the same per-query tallies as AP
(no second similarity pass):

* ``"roc_auc"`` -- area under the ROC curve of the query's ranked list, the
  Mann-Whitney statistic ``U / (k m)`` (``k`` positives, ``m`` negatives), a
  negative tied with a positive counting 1/2;
* ``"precision@K"`` -- positives among the first ``K`` items, divided by ``K``
  (also when the list is shorter than ``K``, as trec_eval and cytominer-eval
  do);
* ``"recall@K"`` -- positives among the first ``K`` items, divided by ``k``;
* ``K = "R"`` -- the cut-off is the query's number of positives ``k``:
  ``precision@R`` (= ``recall@R``) is the R-precision.

Ties follow ``average_precision``'s ``ties=`` rule: ``"positives_first"``
ranks a positive tied with negatives ahead of them, ``"expected"`` takes the
expected value over the orders of tied items. ROC-AUC counts ties 1/2 either
way. Profiles without positives or negatives get NaN, as for AP.

p-values of ROC-AUC (per profile, and for group means) are in
:mod:`pairmap.roc_auc`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from . import _codes as KM

__all__ = ["MetricRequest", "parse_metrics"]

_PATTERN = re.compile(r"(precision|recall)@(R|[0-9]+)")


@dataclass(frozen=True)
class MetricRequest:
    """Parsed ``metrics=`` argument: output column names and kernel codes."""

    names: tuple[str, ...]
    kinds: np.ndarray
    cuts: np.ndarray


def parse_metrics(metrics) -> MetricRequest:
    """Check and encode a list of metric names such as ``["roc_auc", "precision@10"]``.

    Parameters
    ----------
    metrics : str or sequence of str
        ``"roc_auc"``, ``"precision@K"``, ``"recall@K"`` with ``K`` a positive
        integer or ``"R"`` (the query's number of positives).

    Returns
    -------
    MetricRequest

    Raises
    ------
    ValueError
        For an unknown name, ``K = 0`` or a name given twice.

    Examples
    --------
    >>> req = parse_metrics(["roc_auc", "precision@10", "recall@R"])
    >>> req.names
    ('roc_auc', 'precision@10', 'recall@R')
    >>> req.cuts.tolist()
    [0, 10, -1]
    """
    if isinstance(metrics, str):
        metrics = [metrics]
    try:
        names = list(metrics)
    except TypeError:
        raise TypeError(
            f"metrics must be a list of metric names such as ['roc_auc', 'precision@10'], "
            f"got {type(metrics).__name__}"
        ) from None
    kinds, cuts = [], []
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"metrics entries must be strings, got {name!r}")
        if name == "roc_auc":
            kinds.append(KM.ROC_AUC)
            cuts.append(0)
            continue
        match = _PATTERN.fullmatch(name)
        if match is None:
            raise ValueError(
                f"unknown metric {name!r}; use 'roc_auc', 'precision@K' or 'recall@K' with K a "
                f"positive integer or 'R' (e.g. 'precision@10', 'recall@R')"
            )
        kinds.append(KM.PRECISION if match.group(1) == "precision" else KM.RECALL)
        cut = KM.CUT_R if match.group(2) == "R" else int(match.group(2))
        if cut == 0:
            raise ValueError(f"metric {name!r}: the cut-off K must be at least 1")
        cuts.append(cut)
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"metric {dup!r} is listed more than once in metrics")
    return MetricRequest(
        tuple(names), np.asarray(kinds, dtype=np.int64), np.asarray(cuts, dtype=np.int64)
    )
