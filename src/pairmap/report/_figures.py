"""Which figures a report shows, and drawing them from the result tables.

Column roles (plate, well, dose, label...) come from the run info's
``columns`` mapping when given, otherwise from the usual names; a figure whose
inputs are absent is left out, and a figure that cannot be drawn faithfully
(e.g. the null figure when the null settings do not reproduce the table's
p-values) is listed with the reason instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pairmap import plotting

logger = logging.getLogger(__name__)

_PLATE_NAMES = ("Metadata_Plate", "Metadata_plate", "Plate", "plate")
_WELL_NAMES = ("Metadata_Well", "Metadata_well", "Well", "well")
_TRUTH_NAMES = ("Metadata_Active",)
#: Numeric columns that hold metrics of other analyses (ROC-AUC, precision@k...).
_METRIC_PATTERN = re.compile(
    r"(roc|auc|precision_at|recall_at|precision@|recall@|replicating|matching|enrichment)",
    re.IGNORECASE,
)


@dataclass
class ReportFigure:
    """One figure of the report: a matplotlib figure or the reason it is missing."""

    key: str
    title: str
    caption: str
    figure: object | None = None
    skipped: str | None = None
    table: str | None = field(default=None)


@dataclass
class Roles:
    """Column roles resolved from the run info and the tables."""

    sameby: list
    plate: str | None
    well: str | None
    truth: str | None
    label: str | None
    compound: str | None
    dose: str | None


def table_sameby(table: pd.DataFrame) -> list:
    """Group columns of a mAP table: the columns before ``mean_average_precision``.

    Examples
    --------
    >>> table_sameby(pd.DataFrame(columns=["cpd", "dose", "mean_average_precision", "p_value"]))
    ['cpd', 'dose']
    """
    cols = list(table.columns)
    if "mean_average_precision" not in cols:
        return []
    return cols[: cols.index("mean_average_precision")]


def _first_present(df: pd.DataFrame | None, names) -> str | None:
    if df is None:
        return None
    return next((c for c in names if c in df.columns), None)


def _dose_roles(table: pd.DataFrame, sameby: list, hierarchical_by, columns: Mapping):
    """(compound, dose) columns of a hierarchical compound x dose table, else (None, None)."""
    if "stage1_p_value" not in table.columns or len(sameby) < 2:
        return None, None
    dose = columns.get("dose")
    compound = columns.get("compound")
    if compound is None and hierarchical_by:
        compound = list(hierarchical_by)[0]
    if dose is None:
        numeric = [c for c in sameby if c != compound and pd.api.types.is_numeric_dtype(table[c])]
        dose = numeric[0] if numeric else None
    if compound is None:
        rest = [c for c in sameby if c != dose]
        compound = rest[0] if rest else None
    if dose not in table.columns or compound not in table.columns:
        return None, None
    return compound, dose


def resolve_roles(ap_scores, map_results, info: Mapping) -> Roles:
    """Column roles for the main analysis.

    Examples
    --------
    >>> ap = pd.DataFrame({"Metadata_Plate": ["p"], "cpd": ["a"]})
    >>> maps = pd.DataFrame({"cpd": ["a"], "mean_average_precision": [1.0]})
    >>> r = resolve_roles(ap, maps, {})
    >>> r.sameby, r.plate, r.well
    (['cpd'], 'Metadata_Plate', None)
    """
    columns = dict(info.get("columns") or {})
    map_params = info.get("mean_average_precision") or {}
    sameby = map_params.get("sameby")
    if sameby is None and map_results is not None:
        sameby = table_sameby(map_results)
    sameby = [sameby] if isinstance(sameby, str) else list(sameby or [])
    label = columns.get("label")
    if label is None and info.get("analysis") == "consistency" and len(sameby) == 1:
        label = sameby[0]
    if map_results is None or label not in map_results.columns:
        label = None  # the label column belongs to another analysis (an extra table)
    compound = dose = None
    if map_results is not None:
        compound, dose = _dose_roles(
            map_results, sameby, map_params.get("hierarchical_by"), columns
        )
    return Roles(
        sameby=sameby,
        plate=columns.get("plate") or _first_present(ap_scores, _PLATE_NAMES),
        well=columns.get("well") or _first_present(ap_scores, _WELL_NAMES),
        truth=columns.get("truth") or _first_present(map_results, _TRUTH_NAMES),
        label=label,
        compound=compound,
        dose=dose,
    )


def metric_columns(table: pd.DataFrame | None) -> list:
    """Numeric columns holding metrics of other analyses (ROC-AUC, precision@k, ...).

    Examples
    --------
    >>> metric_columns(pd.DataFrame({"roc_auc": [0.5], "cpd": ["a"], "p_value": [0.1]}))
    ['roc_auc']
    """
    if table is None:
        return []
    return [
        c
        for c in table.columns
        if _METRIC_PATTERN.search(str(c))
        and pd.api.types.is_numeric_dtype(table[c])
        and not pd.api.types.is_bool_dtype(table[c])
    ]


def _scatter(map_results, info, roles, max_points, seed) -> ReportFigure:
    params = info.get("mean_average_precision") or {}
    threshold = float(params.get("threshold", 0.05))
    fig = plotting.plot_map_scatter(
        map_results,
        threshold=threshold,
        truth_col=roles.truth,
        label_cols=roles.sameby,
        null_size=params.get("null_size"),
        max_points=max_points,
        seed=seed,
        title=info.get("title") or "mAP and significance",
    )
    return ReportFigure(
        "map_scatter",
        "mAP vs significance",
        f"Each point is a group ({', '.join(map(str, roles.sameby))}); blue: corrected p < "
        f"{threshold:g}. Coincident groups are drawn once with their count; hover a point "
        "for its name.",
        fig,
    )


def _null_figure(ap_scores, map_results, info, roles) -> ReportFigure:
    params = info.get("mean_average_precision") or {}
    null_size = int(params.get("null_size", 10000))
    seed = int(params.get("seed", 0))
    model = params.get("null", "shared")
    title = "Observed mAP vs null"
    if model not in ("shared", "independent"):
        return ReportFigure(
            "null_comparison",
            title,
            "",
            skipped=(
                f"the {model!r} null relabels profiles using their similarities, which the result "
                "tables do not hold; this figure is drawn for the 'shared' and 'independent' "
                "nulls"
            ),
        )
    tested = map_results.dropna(subset=["mean_average_precision", "p_value"])
    groups = plotting._default_null_groups(tested, "mean_average_precision", 4)
    nulls, problem = _group_nulls(ap_scores, groups, roles.sameby, null_size, seed, model)
    if problem:
        return ReportFigure("null_comparison", title, "", skipped=problem)
    fig = plotting.plot_null_comparison(
        ap_scores,
        map_results,
        roles.sameby,
        groups=groups,
        null_size=null_size,
        seed=seed,
        null=model,
        nulls=nulls,
    )
    return ReportFigure(
        "null_comparison",
        title,
        "Histogram: the null distribution of each group's mAP (random rankings of its "
        "members' lists); red line: the observed mAP. Groups from the highest to the lowest "
        "mAP.",
        fig,
    )


def _group_nulls(ap_scores, groups, sameby, null_size, seed, model):
    """Nulls of ``groups`` and None, or None and the reason they do not match the table."""
    from pairmap.significance import group_null

    nulls = []
    for members, (_, row) in zip(
        plotting.group_members(ap_scores, groups, sameby), groups.iterrows(), strict=True
    ):
        if members.empty:
            return None, "the AP table has no scored member of a group in the mAP table"
        # cache=False: a few groups are cheap to draw, and the report never touches the
        # null cache (no second warning when the cache folder is unusable)
        values, exact = group_null(
            members["n_pos_pairs"],
            members["n_total_pairs"],
            null_size=null_size,
            seed=seed,
            null=model,
            cache=False,
        )
        count = int((values >= row["mean_average_precision"]).sum())
        p = count / values.size if exact else (1 + count) / (1 + null_size)
        if not np.isclose(p, row["p_value"], rtol=1e-9, atol=0):
            return None, (
                f"the null settings (null_size={null_size}, seed={seed}, "
                f"null={model!r}) do not reproduce the table's p-values; give the "
                "analysis' mean_average_precision parameters in the run info"
            )
        nulls.append((values, exact))
    return nulls, None


def main_figures(ap_scores, map_results, info, roles, *, max_points, seed) -> list:
    """Figures of the main analysis (AP table + its mAP table)."""
    figs = []
    has_ap = ap_scores is not None and "average_precision" in ap_scores.columns
    if map_results is not None and "corrected_p_value" in map_results.columns:
        figs.append(_scatter(map_results, info, roles, max_points, seed))
    if has_ap and map_results is not None and roles.sameby:
        figs.append(
            ReportFigure(
                "ap_distributions",
                "AP per group",
                "Each row is a group (top and bottom by mAP); dots: AP of each member profile, "
                "box: quartiles, red bar: mAP.",
                plotting.plot_ap_distributions(ap_scores, map_results, roles.sameby, seed=seed),
            )
        )
        if {"n_pos_pairs", "n_total_pairs"} <= set(
            ap_scores.columns
        ) and "p_value" in map_results.columns:
            figs.append(_null_figure(ap_scores, map_results, info, roles))
    if has_ap and roles.plate is not None:
        figs.append(
            ReportFigure(
                "plate_ap",
                "AP per plate",
                f"AP of the scored profiles of each plate ({roles.plate}); plates far from the "
                "dotted overall median point to plate effects.",
                plotting.plot_plate_ap(ap_scores, plate_col=roles.plate),
            )
        )
    if has_ap and roles.well is not None:
        figs.append(_layout_figure(ap_scores, roles.well))
    return figs


def _layout_figure(ap_scores, well_col) -> ReportFigure:
    title = "AP by well position"
    try:
        fig = plotting.plot_plate_layout(ap_scores, well_col=well_col)
    except ValueError as exc:
        return ReportFigure("plate_layout", title, "", skipped=str(exc))
    return ReportFigure(
        "plate_layout",
        title,
        "Mean AP of the profiles at each well position over all plates: edge "
        "or row/column patterns point to position effects.",
        fig,
    )


def dose_figure(table, compound, dose, key, name) -> ReportFigure:
    """mAP by dose per compound for a hierarchical compound x dose table."""
    return ReportFigure(
        key,
        f"mAP by dose ({name})",
        f"mAP of each {compound} at each {dose}; coloured: the compounds with the highest "
        "mAP at their best dose; filled markers: significant after hierarchical FDR.",
        plotting.plot_dose_response(table, compound_col=compound, dose_col=dose),
        table=name,
    )


def label_figure(table, label, key, name) -> ReportFigure:
    """Per-label mAP of a consistency analysis."""
    return ReportFigure(
        key,
        f"mAP per label ({name})",
        f"mAP of each {label}: how consistently profiles sharing the label retrieve each "
        "other; blue: significant.",
        plotting.plot_label_map(table, label_col=label),
        table=name,
    )


def metrics_figure(tables: Mapping[str, pd.DataFrame]) -> ReportFigure | None:
    """Histograms of the metric columns of other analyses found in ``tables``."""
    frames = {}
    for name, table in tables.items():
        for col in metric_columns(table):
            frames[f"{col} ({name})"] = table[col].reset_index(drop=True)
    if not frames:
        return None
    combined = pd.DataFrame(frames)
    return ReportFigure(
        "other_metrics",
        "Other metrics",
        "Distributions of the other retrieval metrics in the results.",
        plotting.plot_metric_distributions(combined, list(frames)),
    )


def ap_histogram(ap_scores) -> ReportFigure:
    """Distribution of the AP of all scored profiles."""
    cols = [
        c for c in ("average_precision", "normalized_average_precision") if c in ap_scores.columns
    ]
    return ReportFigure(
        "ap_histogram",
        "AP of all profiles",
        "Distribution of the AP (and normalized AP: 0 = random ranking, 1 = perfect) of "
        "every scored profile.",
        plotting.plot_metric_distributions(ap_scores, cols, title="AP of all scored profiles"),
    )
