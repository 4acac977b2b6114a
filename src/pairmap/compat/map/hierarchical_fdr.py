"""copairs.map.hierarchical_fdr: Benjamini-Hochberg and hierarchical FDR on mAP tables."""

from __future__ import annotations

import pandas as pd

from pairmap.fdr import benjamini_hochberg, hierarchical_fdr

__all__ = ["apply_fdr_correction", "apply_hierarchical_fdr_correction"]


def apply_fdr_correction(map_scores: pd.DataFrame, method: str = "fdr_bh") -> pd.DataFrame:
    """Add ``corrected_p_value`` (Benjamini-Hochberg over all rows).

    Examples
    --------
    >>> import pandas as pd
    >>> apply_fdr_correction(pd.DataFrame({"p_value": [0.01, 0.04]}))["corrected_p_value"].tolist()
    [0.02, 0.04]
    """
    if method != "fdr_bh":
        raise ValueError(
            f"method={method!r} is not supported; pairmap.compat implements "
            f"'fdr_bh' (Benjamini-Hochberg)"
        )
    out = map_scores.copy()
    out["corrected_p_value"] = benjamini_hochberg(out["p_value"].to_numpy(dtype=float))
    return out


def apply_hierarchical_fdr_correction(
    map_scores: pd.DataFrame, hierarchical_by, sameby, alpha: float = 0.05
) -> pd.DataFrame:
    """Two-stage FDR: min-p per ``hierarchical_by`` group with BH, then BH inside passing groups.

    Adds ``stage1_p_value``, ``stage1_corrected_p_value``, ``stage1_significant``
    and ``corrected_p_value`` (1.0 in groups that fail stage 1).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"c": ["a", "a", "b"], "d": [1, 2, 1], "p_value": [0.001, 0.2, 0.5]})
    >>> apply_hierarchical_fdr_correction(df, ["c"], ["c", "d"])["corrected_p_value"].tolist()
    [0.002, 0.2, 1.0]
    """
    hierarchical_by = (
        [hierarchical_by] if isinstance(hierarchical_by, str) else list(hierarchical_by)
    )
    sameby = [sameby] if isinstance(sameby, str) else list(sameby)
    if not set(hierarchical_by) <= set(sameby):
        raise ValueError(
            f"hierarchical_by columns {hierarchical_by} must be a subset of sameby columns {sameby}"
        )
    if set(hierarchical_by) == set(sameby):
        raise ValueError(
            f"hierarchical_by columns {hierarchical_by} must be a proper subset of "
            f"sameby columns {sameby}. If they are equal, use standard correction "
            f"instead."
        )
    out = map_scores.copy()
    groups = (
        pd.MultiIndex.from_frame(out[hierarchical_by])
        if len(hierarchical_by) > 1
        else out[hierarchical_by[0]].to_numpy()
    )
    res = hierarchical_fdr(out["p_value"].to_numpy(dtype=float), groups, alpha=alpha)
    for col in (
        "stage1_p_value",
        "stage1_corrected_p_value",
        "stage1_significant",
        "corrected_p_value",
    ):
        out[col] = res[col]
    return out
