"""copairs.map on pairmap: AP, mAP with p-values, FDR corrections, normalization, filters."""

from pairmap.compat.map import filter, multilabel, normalization  # noqa: A004 - copairs' names
from pairmap.compat.map.average_precision import average_precision, p_values
from pairmap.compat.map.hierarchical_fdr import (
    apply_fdr_correction,
    apply_hierarchical_fdr_correction,
)
from pairmap.compat.map.map import (
    get_map_pvalue,
    mean_average_precision,
    mean_average_precision_hierarchical,
)

__all__ = [
    "apply_fdr_correction",
    "apply_hierarchical_fdr_correction",
    "average_precision",
    "filter",
    "get_map_pvalue",
    "mean_average_precision",
    "mean_average_precision_hierarchical",
    "multilabel",
    "normalization",
    "p_values",
]
