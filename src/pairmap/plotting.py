"""Figures of AP/mAP results, one function per figure (matplotlib, Agg: no display needed).

Figures are built with :class:`matplotlib.figure.Figure` and an Agg canvas
directly, so nothing here touches pyplot's global state or opens a window.
Every function takes the tables :func:`pairmap.average_precision` and
:func:`pairmap.mean_average_precision` return and gives back a ``Figure``;
save it with ``fig.savefig(path)``. :mod:`pairmap.report` puts them together
into one HTML file.

Large inputs are sampled, never silently: a figure that shows a subset of the
points says so in its corner (``showing 5,000 of 25,000``). Point collections
that name their points carry the names in ``collection.pairmap_labels`` (one
per drawn point, in order); the HTML report turns them into hover titles.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

__all__ = [
    "plot_ap_distributions",
    "plot_dose_response",
    "plot_label_map",
    "plot_map_scatter",
    "plot_metric_distributions",
    "plot_null_comparison",
    "plot_plate_ap",
    "plot_plate_layout",
]

_SIGNIFICANT = "#2166ac"
_NOT_SIGNIFICANT = "#969696"
_THRESHOLD = "#d6604d"
_NOTE = "#525252"
_MAP_COL = "mean_average_precision"
_AP_COL = "average_precision"


# --------------------------------------------------------------------------- helpers


def _new_axes(figsize, dpi, nrows=1, ncols=1, **kwargs):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    for ax in axes.flat:
        ax.spines["top"].set_visible(False)
        ax.spines["right"].set_visible(False)
    return fig, axes


def _require(df: pd.DataFrame, cols: Sequence, what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(
            f"column(s) {missing} are missing from the {what}; available columns: "
            f"{list(df.columns)}"
        )


def _as_list(cols) -> list:
    if cols is None:
        return []
    return [cols] if isinstance(cols, str) else list(cols)


def group_names(df: pd.DataFrame, cols: Sequence) -> np.ndarray:
    """Display names of groups: the ``cols`` values joined by ``" | "``.

    Parameters
    ----------
    df : pandas.DataFrame
        A table with the group columns.
    cols : sequence of column names
        Group columns (e.g. the ``sameby`` of the analysis).

    Returns
    -------
    numpy.ndarray of str

    Examples
    --------
    >>> group_names(pd.DataFrame({"cpd": ["a", "b"], "dose": [1.0, 0.5]}), ["cpd", "dose"])
    array(['a | 1', 'b | 0.5'], dtype='<U7')
    """
    cols = _as_list(cols)
    if not cols:
        return np.array([str(i) for i in range(len(df))])
    parts = [df[c].map(lambda v: f"{v:g}" if isinstance(v, float) else str(v)) for c in cols]
    joined = parts[0].astype(str)
    for part in parts[1:]:
        joined = joined + " | " + part.astype(str)
    return joined.to_numpy(dtype=str)


def _note(ax, text: str, *, loc: str = "upper left") -> None:
    x, ha = (0.02, "left") if "left" in loc else (0.98, "right")
    y, va = (0.98, "top") if "upper" in loc else (0.02, "bottom")
    ax.text(x, y, text, transform=ax.transAxes, va=va, ha=ha, fontsize=8.5, color=_NOTE)


def _significance(data: pd.DataFrame, significant_col, p_col: str, threshold: float):
    if significant_col is not None and significant_col in data.columns:
        return data[significant_col].fillna(False).to_numpy(dtype=bool)
    return data[p_col].to_numpy(dtype=float) < threshold


def _tested(map_results: pd.DataFrame, map_col: str, p_col: str | None = None) -> pd.DataFrame:
    cols = [map_col] + ([p_col] if p_col is not None and p_col in map_results else [])
    return map_results.dropna(subset=cols)


# --------------------------------------------------------------------------- mAP scatter


def _collapse_points(x, y, category, names, max_points, seed):
    """Merge coincident points (same x, y, category) and sample when too many remain.

    Returns ``(x, y, category, count, label, n_distinct)`` of the points to draw.
    """
    frame = pd.DataFrame({"x": x, "y": y, "cat": category, "name": names})
    grouped = frame.groupby(["x", "y", "cat"], sort=False)
    pts = grouped.agg(count=("name", "size"), first=("name", "first")).reset_index()
    pts["label"] = [
        first if count == 1 else f"{count} groups, e.g. {first}"
        for first, count in zip(pts["first"], pts["count"], strict=True)
    ]
    n_distinct = len(pts)
    if n_distinct > max_points:
        # keep the most significant points, sample the rest uniformly (seeded)
        order = np.argsort(-pts["y"].to_numpy(), kind="stable")
        keep_top = order[: max_points // 5]
        rest = order[max_points // 5 :]
        rng = np.random.default_rng(seed)
        keep = np.concatenate(
            [keep_top, rng.choice(rest, max_points - len(keep_top), replace=False)]
        )
        pts = pts.iloc[np.sort(keep)]
    return pts, n_distinct


def _marker_sizes(count: np.ndarray) -> np.ndarray:
    # few distinct sizes (log2 bins) keep SVG output compact
    return 30.0 * (1.0 + np.floor(np.log2(count)))


def _scatter_categories(data, truth_col):
    if truth_col is None:
        return np.zeros(len(data), dtype=int), {0: ("o", None)}
    if truth_col not in data.columns:
        raise ValueError(f"truth_col {truth_col!r} is not a column of the mAP results")
    column = data[truth_col]
    unknown = column.isna().to_numpy()  # NaN/None is "unknown", never "active"
    truth = column.fillna(False).to_numpy(dtype=bool) & ~unknown
    cat = np.where(unknown, 2, np.where(truth, 0, 1))
    return cat, {0: ("o", "truly active"), 1: ("x", "truly inactive"), 2: ("s", "truth unknown")}


def plot_map_scatter(
    map_results: pd.DataFrame,
    *,
    threshold: float = 0.05,
    map_col: str = _MAP_COL,
    p_col: str = "corrected_p_value",
    significant_col: str | None = "below_corrected_p",
    truth_col: str | None = None,
    label_cols: Sequence | None = None,
    null_size: int | None = None,
    max_points: int = 5000,
    seed: int = 0,
    title: str = "Phenotypic assessment",
    xlabel: str = "mAP",
    ylabel: str = "-log10(corrected p-value)",
    annotation_prefix: str = "Significant",
    figsize: tuple[float, float] = (7.0, 5.5),
    dpi: int = 100,
):
    """Scatter plot of mAP against -log10(corrected p-value).

    Points are colored by significance (``significant_col``; when ``None``,
    ``p_col < threshold``); a dashed, labelled line marks ``threshold``. The
    y axis ends just above the highest point (or the threshold line). Groups
    at exactly the same position are drawn once, with a larger marker and
    their count written next to it. Groups without a score (e.g. the DMSO
    group of an activity analysis, ``n_profiles = 0``) cannot be placed; the
    corner note counts them separately, so its numbers add up to the table.
    With ``truth_col`` (a boolean column, e.g. a simulation's
    ``Metadata_Active``) truly active groups are circles, inactive ones
    crosses and missing truth values squares.

    Parameters
    ----------
    map_results : pandas.DataFrame
        Output of :func:`pairmap.mean_average_precision`.
    threshold : float, default 0.05
        Significance threshold drawn as a horizontal line.
    map_col, p_col : str
        Columns with the mAP and the corrected p-value.
    significant_col : str or None, default "below_corrected_p"
        Boolean significance column used for colors.
    truth_col : str or None, default None
        Optional boolean column with the known truth (marker shape).
    label_cols : sequence of str or None
        Columns naming a group (hover names in the HTML report); default: the
        columns that are neither scores nor p-values.
    null_size : int or None, default None
        Null size of the analysis: the note gives the smallest p-value such a
        null can give, ``1 / (null_size + 1)``.
    max_points : int, default 5000
        At most this many distinct positions are drawn: the fifth with the
        smallest p-values and a seeded random sample of the rest; the note
        then says how many are shown.
    seed : int, default 0
        Seed of that sample.
    title, xlabel, ylabel : str
        Text of the figure.
    annotation_prefix : str, default "Significant"
        Label of the share annotation.
    figsize : tuple of float, default (7, 5.5)
        Size in inches.
    dpi : int, default 100
        Resolution.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> res = pd.DataFrame({"cpd": ["a", "b", "c", "DMSO"],
    ...                     "mean_average_precision": [1.0, 1.0, 0.2, np.nan],
    ...                     "corrected_p_value": [0.001, 0.001, 0.6, np.nan],
    ...                     "below_corrected_p": [True, True, False, False]})
    >>> fig = plot_map_scatter(res)
    >>> fig.axes[0].get_ylabel()
    '-log10(corrected p-value)'
    >>> sum(len(c.get_offsets()) for c in fig.axes[0].collections)  # a and b coincide
    2
    """
    _require(map_results, [map_col, p_col], "mAP results")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    if label_cols is None:
        label_cols = [c for c in map_results.columns if not _is_score_column(map_results, c)]
    data = _tested(map_results, map_col, p_col)
    n_untested = len(map_results) - len(data)
    x = data[map_col].to_numpy(dtype=float)
    with np.errstate(divide="ignore"):
        y = -np.log10(np.clip(data[p_col].to_numpy(dtype=float), np.finfo(float).tiny, 1.0))
    significant = _significance(data, significant_col, p_col, threshold)
    shape, shapes = _scatter_categories(data, truth_col)
    category = shape * 2 + (~significant).astype(int)
    pts, n_distinct = _collapse_points(
        x, y, category, group_names(data, label_cols), max_points, seed
    )

    fig, axes = _new_axes(figsize, dpi)
    ax = axes[0, 0]
    _draw_scatter_points(ax, pts, shapes)
    _draw_threshold(ax, threshold)
    top = max(float(np.max(y)) if len(y) else 0.0, -np.log10(threshold))
    ax.set_ylim(0, top * 1.12 + 0.05)
    ax.set_xlim(-0.02, 1.05)
    note = (
        f"{annotation_prefix}: {int(significant.sum())} of {len(data)} scored groups "
        f"({100.0 * significant.mean() if len(data) else 0.0:.1f}%)"
    )
    if n_untested:
        note += f"\n{n_untested} group(s) without a score (n_profiles = 0) not shown"
    if n_distinct > len(pts):
        note += f"\nshowing {len(pts):,} of {n_distinct:,} distinct positions"
    if null_size is not None:
        note += f"\nsmallest possible p: 1/({int(null_size):,} + 1)"
    _note(ax, note)
    _scatter_legend(ax, threshold, shapes if truth_col is not None else None, pts)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    logger.debug("plotted %d mAP groups at %d positions", len(data), len(pts))
    return fig


_SCORE_PREFIXES = ("mean_", "p_value", "corrected_p", "below_", "stage1_", "n_profiles", "-log10")


def _is_score_column(df: pd.DataFrame, col) -> bool:
    return str(col).startswith(_SCORE_PREFIXES)


def _draw_scatter_points(ax, pts: pd.DataFrame, shapes: dict) -> None:
    # one collection per (category, marker size): a scalar size lets SVG output reuse one
    # marker definition for all points (<use>), which keeps large scatters small
    size = _marker_sizes(pts["count"].to_numpy())
    keys = pd.DataFrame({"cat": pts["cat"].to_numpy(), "size": size})
    for (code, s), idx in keys.groupby(["cat", "size"], sort=True).indices.items():
        sub = pts.iloc[idx]
        marker = shapes[int(code) // 2][0]
        color = _NOT_SIGNIFICANT if code % 2 else _SIGNIFICANT
        kwargs = {"edgecolors": "none"} if marker != "x" else {}
        coll = ax.scatter(
            sub["x"], sub["y"], s=float(s), c=color, alpha=0.75, marker=marker, **kwargs
        )
        coll.pairmap_labels = sub["label"].tolist()
    many = pts[pts["count"] > 1].nlargest(25, "count")
    for xi, yi, count in zip(many["x"], many["y"], many["count"], strict=True):
        ax.annotate(
            f"×{count}",
            (xi, yi),
            xytext=(6, 4),
            textcoords="offset points",
            fontsize=8,
            color="#252525",
        )


def _draw_threshold(ax, threshold: float) -> None:
    level = -np.log10(threshold)
    ax.axhline(level, color=_THRESHOLD, ls="--", lw=1.2)
    ax.annotate(
        f"corrected p = {threshold:g}",
        (1.0, level),
        xycoords=("axes fraction", "data"),
        xytext=(-2, 3),
        textcoords="offset points",
        ha="right",
        va="bottom",
        fontsize=8,
        color=_THRESHOLD,
    )


def _scatter_legend(ax, threshold, shapes, pts) -> None:
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], marker="o", ls="", color=_SIGNIFICANT, label=f"corrected p < {threshold:g}"),
        Line2D(
            [], [], marker="o", ls="", color=_NOT_SIGNIFICANT, label=f"corrected p ≥ {threshold:g}"
        ),
    ]
    if shapes is not None:
        present = set((pts["cat"].to_numpy() // 2).tolist())
        handles += [
            Line2D([], [], marker=m, ls="", color="black", label=lab)
            for code, (m, lab) in shapes.items()
            if code in present or code < 2
        ]
    if (pts["count"] > 1).any():
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                ls="",
                color="#bdbdbd",
                markersize=9,
                label="×n: n groups at one position",
            )
        )
    ax.legend(handles=handles, loc="lower right", fontsize=8, frameon=False)


# --------------------------------------------------------------------------- AP per group


def _top_bottom(map_results, map_col, n_top, n_bottom) -> tuple[pd.DataFrame, pd.DataFrame]:
    ranked = _tested(map_results, map_col).sort_values(map_col, ascending=False, kind="stable")
    top = ranked.head(n_top)
    bottom = ranked.iloc[len(top) :].tail(n_bottom)
    return top, bottom


def plot_ap_distributions(
    ap_scores: pd.DataFrame,
    map_results: pd.DataFrame,
    sameby: Sequence,
    *,
    n_top: int = 10,
    n_bottom: int = 10,
    ap_col: str = _AP_COL,
    map_col: str = _MAP_COL,
    max_points_per_group: int = 200,
    seed: int = 0,
    figsize: tuple[float, float] | None = None,
    dpi: int = 100,
):
    """AP of every member profile for the top and bottom groups by mAP.

    One row per group: a box of the members' APs, the APs themselves as dots
    (spread vertically within the row so equal values stay visible) and the
    group's mAP as a red bar.

    Parameters
    ----------
    ap_scores : pandas.DataFrame
        Output of :func:`pairmap.average_precision`.
    map_results : pandas.DataFrame
        Output of :func:`pairmap.mean_average_precision` for ``sameby``.
    sameby : sequence of str
        The group columns of the mAP analysis.
    n_top, n_bottom : int, default 10
        Number of groups with the highest and lowest mAP.
    ap_col, map_col : str
        Score columns.
    max_points_per_group : int, default 200
        Dots drawn per group (a seeded sample beyond that; the box uses all).
    seed : int, default 0
        Seed of the vertical spread and of the sample.
    figsize : tuple of float or None
        Default: height grows with the number of rows.
    dpi : int, default 100

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> ap = pd.DataFrame({"cpd": ["a", "a", "b", "b"],
    ...                    "average_precision": [1.0, 0.5, 0.2, 0.1]})
    >>> maps = pd.DataFrame({"cpd": ["a", "b"], "mean_average_precision": [0.75, 0.15]})
    >>> fig = plot_ap_distributions(ap, maps, ["cpd"], n_top=1, n_bottom=1)
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['b', 'a']
    """
    sameby = _as_list(sameby)
    _require(ap_scores, sameby + [ap_col], "AP scores")
    _require(map_results, sameby + [map_col], "mAP results")
    top, bottom = _top_bottom(map_results, map_col, n_top, n_bottom)
    chosen = pd.concat([top, bottom])
    names = group_names(chosen, sameby)
    members = ap_scores[[*sameby, ap_col]].dropna(subset=[ap_col])
    members = members.merge(chosen[sameby].assign(_row=np.arange(len(chosen))), on=sameby)
    n_rows = len(chosen)
    if figsize is None:
        figsize = (7.0, 1.2 + 0.28 * max(n_rows, 1))
    fig, axes = _new_axes(figsize, dpi)
    ax = axes[0, 0]
    rng = np.random.default_rng(seed)
    ypos = n_rows - 1 - np.arange(n_rows)  # first (best) group on top
    for row in range(n_rows):
        values = members.loc[members["_row"] == row, ap_col].to_numpy(dtype=float)
        _draw_member_row(ax, values, ypos[row], rng, max_points_per_group)
    ax.scatter(
        chosen[map_col], ypos, marker="|", s=260, c=_THRESHOLD, linewidths=2, zorder=3, label="mAP"
    )
    if len(top) and len(bottom):
        ax.axhline(ypos[len(top)] + 0.5, color="#bdbdbd", lw=0.8, ls=":")
    ax.set_yticks(ypos[::-1], names[::-1])  # listed bottom to top
    ax.set_ylim(-0.7, n_rows - 0.3)
    ax.set_xlim(-0.03, 1.03)
    ax.set_xlabel("average precision of each member profile")
    ax.set_title(f"AP per group: top {len(top)} and bottom {len(bottom)} by mAP")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.tick_params(axis="y", labelsize=7.5)
    fig.tight_layout()
    return fig


@functools.cache
def _horizontal_boxes() -> tuple:
    import inspect

    from matplotlib.axes import Axes

    if "orientation" in inspect.signature(Axes.boxplot).parameters:
        return (("orientation", "horizontal"),)
    return (("vert", False),)  # matplotlib < 3.10


def _draw_member_row(ax, values: np.ndarray, y: float, rng, max_points: int) -> None:
    if values.size == 0:
        return
    ax.boxplot(
        [values],
        positions=[y],
        **dict(_horizontal_boxes()),
        widths=0.6,
        showfliers=False,
        manage_ticks=False,
        medianprops={"color": "#252525"},
        boxprops={"color": "#737373"},
        whiskerprops={"color": "#737373"},
        capprops={"color": "#737373"},
    )
    shown = values if values.size <= max_points else rng.choice(values, max_points, replace=False)
    jitter = rng.uniform(-0.22, 0.22, shown.size)
    ax.scatter(shown, y + jitter, s=9, c=_SIGNIFICANT, alpha=0.55, edgecolors="none", zorder=2)


# --------------------------------------------------------------------------- null


def _default_null_groups(tested: pd.DataFrame, map_col: str, n_groups: int) -> pd.DataFrame:
    ranked = tested.sort_values(map_col, ascending=False, kind="stable")
    if len(ranked) <= n_groups:
        return ranked
    picks = np.unique(np.linspace(0, len(ranked) - 1, n_groups).round().astype(int))
    return ranked.iloc[picks]


def plot_null_comparison(
    ap_scores: pd.DataFrame,
    map_results: pd.DataFrame,
    sameby: Sequence,
    *,
    groups: pd.DataFrame | None = None,
    n_groups: int = 4,
    null_size: int = 10000,
    seed: int = 0,
    null: str = "shared",
    cache=None,
    nulls: Sequence | None = None,
    map_col: str = _MAP_COL,
    figsize: tuple[float, float] | None = None,
    dpi: int = 100,
):
    """Observed mAP of selected groups against the null it was tested with.

    Each panel is the histogram of the group's null mAP distribution (the
    one :func:`pairmap.mean_average_precision` used: same ``null_size``,
    ``seed`` and ``null`` model give the same draws) with the observed mAP as
    a vertical line and the p-values from the table.

    Parameters
    ----------
    ap_scores, map_results : pandas.DataFrame
        AP scores and mAP results of the analysis.
    sameby : sequence of str
        The group columns of the mAP analysis.
    groups : pandas.DataFrame or None
        Rows of ``map_results`` to show; default ``n_groups`` groups spread
        from the highest to the lowest mAP.
    n_groups : int, default 4
        Number of groups when ``groups`` is None.
    null_size, seed, null, cache
        The settings of the analysis (see :func:`pairmap.mean_average_precision`).
    nulls : sequence of (numpy.ndarray, bool) or None
        The ``(values, exact)`` of :func:`pairmap.significance.group_null` for
        each row of ``groups``, when already computed.
    map_col : str
        mAP column.
    figsize : tuple of float or None
    dpi : int, default 100

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> ap = pd.DataFrame({"cpd": ["a", "a"], "average_precision": [1.0, 1.0],
    ...                    "n_pos_pairs": [1, 1], "n_total_pairs": [4, 4]})
    >>> maps = pd.DataFrame({"cpd": ["a"], "mean_average_precision": [1.0],
    ...                      "p_value": [0.25], "corrected_p_value": [0.25]})
    >>> fig = plot_null_comparison(ap, maps, ["cpd"], null_size=100, cache=False)
    >>> fig.axes[0].get_title()
    'a'
    """
    from pairmap.significance import group_null

    sameby = _as_list(sameby)
    _require(ap_scores, sameby + [_AP_COL, "n_pos_pairs", "n_total_pairs"], "AP scores")
    _require(map_results, sameby + [map_col], "mAP results")
    if groups is None:
        groups = _default_null_groups(_tested(map_results, map_col), map_col, n_groups)
    if nulls is None:
        nulls = [
            group_null(
                m["n_pos_pairs"],
                m["n_total_pairs"],
                null_size=null_size,
                seed=seed,
                null=null,
                cache=cache,
            )
            for m in group_members(ap_scores, groups, sameby)
        ]
    n = max(len(groups), 1)
    ncols = min(n, 2)
    nrows = int(np.ceil(n / ncols))
    fig, axes = _new_axes(figsize or (3.6 * ncols, 2.6 * nrows), dpi, nrows, ncols)
    names = group_names(groups, sameby)
    for ax, name, (_, row), (values, exact) in zip(
        axes.flat, names, groups.iterrows(), nulls, strict=False
    ):
        _draw_null_panel(ax, values, exact, row, map_col)
        ax.set_title(name, fontsize=9)
    for ax in list(axes.flat)[len(groups) :]:
        ax.set_visible(False)
    fig.suptitle(f"Observed mAP vs its null ({null} null, null size {null_size:,})", fontsize=10)
    fig.tight_layout()
    return fig


def group_members(ap_scores: pd.DataFrame, groups: pd.DataFrame, sameby: Sequence) -> list:
    """The scored member rows of ``ap_scores`` of each row of ``groups`` (a list of frames).

    Examples
    --------
    >>> ap = pd.DataFrame({"cpd": ["a", "a", "b"], "average_precision": [1.0, np.nan, 0.5],
    ...                    "n_pos_pairs": [1, 0, 1]})
    >>> [len(m) for m in group_members(ap, pd.DataFrame({"cpd": ["a", "b"]}), ["cpd"])]
    [1, 1]
    """
    sameby = _as_list(sameby)
    valid = ap_scores.dropna(subset=[_AP_COL])
    valid = valid[valid["n_pos_pairs"] > 0]
    keyed = groups[sameby].reset_index(drop=True).assign(_row=np.arange(len(groups)))
    merged = valid.merge(keyed, on=sameby, how="inner")
    return [merged[merged["_row"] == i].drop(columns="_row") for i in range(len(groups))]


def _draw_null_panel(ax, values: np.ndarray, exact: bool, row: pd.Series, map_col: str) -> None:
    observed = float(row[map_col])
    bins = np.linspace(0.0, 1.0, 51)
    weights = np.full(values.shape, 1.0 / max(values.size, 1))
    ax.hist(
        values,
        bins=bins,
        weights=weights,
        color="#bdbdbd",
        label="exact null" if exact else "null draws",
    )
    ax.axvline(observed, color=_THRESHOLD, lw=1.5, label="observed mAP")
    parts = [f"p = {row['p_value']:.3g}"] if "p_value" in row else []
    if "corrected_p_value" in row:
        parts.append(f"corrected p = {row['corrected_p_value']:.3g}")
    _note(ax, "\n".join(parts), loc="upper right")
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("mAP", fontsize=8)
    ax.set_ylabel("share of null", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(loc="center right", fontsize=7, frameon=False)


# --------------------------------------------------------------------------- plates


def plot_plate_ap(
    ap_scores: pd.DataFrame,
    *,
    plate_col: str = "Metadata_Plate",
    ap_col: str = _AP_COL,
    max_boxes: int = 60,
    figsize: tuple[float, float] = (7.5, 3.6),
    dpi: int = 100,
):
    """AP per plate: one box per plate (plate effects at a glance).

    With more than ``max_boxes`` plates, each plate is drawn as its median
    with a bar from the first to the third quartile instead of a box.

    Parameters
    ----------
    ap_scores : pandas.DataFrame
        Output of :func:`pairmap.average_precision` with a plate column.
    plate_col : str, default "Metadata_Plate"
    ap_col : str, default "average_precision"
    max_boxes : int, default 60
    figsize : tuple of float, default (7.5, 3.6)
    dpi : int, default 100

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> ap = pd.DataFrame({"Metadata_Plate": ["P1", "P1", "P2"],
    ...                    "average_precision": [0.5, 0.7, 0.2]})
    >>> fig = plot_plate_ap(ap)
    >>> [t.get_text() for t in fig.axes[0].get_xticklabels()]
    ['P1', 'P2']
    """
    _require(ap_scores, [plate_col, ap_col], "AP scores")
    scored = ap_scores[[plate_col, ap_col]].dropna()
    stats = scored.groupby(plate_col, sort=True)[ap_col].quantile([0.25, 0.5, 0.75]).unstack()
    stats.columns = ["25%", "50%", "75%"]
    fig, axes = _new_axes(figsize, dpi)
    ax = axes[0, 0]
    pos = np.arange(len(stats))
    if len(stats) <= max_boxes:
        values = [g.to_numpy(dtype=float) for _, g in scored.groupby(plate_col, sort=True)[ap_col]]
        ax.boxplot(
            values,
            positions=pos,
            widths=0.6,
            showfliers=True,
            manage_ticks=False,
            flierprops={"markersize": 2, "alpha": 0.5},
            medianprops={"color": _THRESHOLD},
        )
        if len(stats) <= 30:
            ax.set_xticks(pos, [str(p) for p in stats.index], rotation=45, ha="right", fontsize=7.5)
    else:
        ax.vlines(pos, stats["25%"], stats["75%"], color="#bdbdbd", lw=1)
        ax.scatter(pos, stats["50%"], s=6, c=_SIGNIFICANT, zorder=2)
        _note(ax, f"{len(stats)} plates: median AP and interquartile range", loc="upper right")
    overall = float(scored[ap_col].median()) if len(scored) else np.nan
    ax.axhline(overall, color=_NOTE, lw=0.8, ls=":")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel(f"plate ({plate_col})")
    ax.set_ylabel("average precision")
    ax.set_title(f"AP per plate ({len(scored):,} scored profiles; dotted: overall median)")
    fig.tight_layout()
    return fig


def _well_position(wells: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    codes, names = pd.factorize(wells.astype(str), sort=False)  # a plate has few distinct wells
    text = pd.Series(names).str.strip().str.upper()
    parts = text.str.extract(r"^([A-Z]{1,2})0*(\d+)$")
    if parts.isna().any().any():
        bad = text[parts.isna().any(axis=1)].iloc[0]
        raise ValueError(f"well names must look like 'A01' or 'P24'; got {bad!r}")
    row = np.array(
        [sum((ord(ch) - 64) * 26**i for i, ch in enumerate(reversed(s))) - 1 for s in parts[0]],
        dtype=np.int64,
    )
    col = parts[1].to_numpy(dtype=np.int64) - 1
    return row[codes], col[codes]


def plot_plate_layout(
    ap_scores: pd.DataFrame,
    *,
    well_col: str = "Metadata_Well",
    ap_col: str = _AP_COL,
    figsize: tuple[float, float] = (7.5, 4.2),
    dpi: int = 100,
):
    """Mean AP at each well position across plates (edge and position effects).

    Wells without any scored profile (e.g. control wells of an activity
    analysis) are left white.

    Parameters
    ----------
    ap_scores : pandas.DataFrame
        Output of :func:`pairmap.average_precision` with a well column
        (``A01``, ``B12``, ...).
    well_col : str, default "Metadata_Well"
    ap_col : str, default "average_precision"
    figsize : tuple of float, default (7.5, 4.2)
    dpi : int, default 100

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> ap = pd.DataFrame({"Metadata_Well": ["A01", "B02"], "average_precision": [0.5, 0.7]})
    >>> fig = plot_plate_layout(ap)
    >>> fig.axes[0].images[0].get_array().shape
    (2, 2)
    """
    _require(ap_scores, [well_col, ap_col], "AP scores")
    row, col = _well_position(ap_scores[well_col])
    ap = ap_scores[ap_col].to_numpy(dtype=float)
    ok = ~np.isnan(ap)
    shape = (int(row.max()) + 1 if row.size else 1, int(col.max()) + 1 if col.size else 1)
    sums = np.zeros(shape)
    counts = np.zeros(shape)
    np.add.at(sums, (row[ok], col[ok]), ap[ok])
    np.add.at(counts, (row[ok], col[ok]), 1)
    with np.errstate(invalid="ignore"):
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    fig, axes = _new_axes(figsize, dpi)
    ax = axes[0, 0]
    image = ax.imshow(
        np.ma.masked_invalid(mean),
        cmap="viridis",
        vmin=0,
        vmax=1,
        aspect="auto",
        interpolation="nearest",
    )
    fig.colorbar(image, ax=ax, label="mean AP")
    ax.set_yticks(
        np.arange(shape[0]),
        [chr(65 + r) if r < 26 else str(r + 1) for r in range(shape[0])],
        fontsize=7,
    )
    ax.set_xticks(np.arange(shape[1]), [str(c + 1) for c in range(shape[1])], fontsize=7)
    ax.set_title("Mean AP by well position (white: no scored profile)")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- doses and labels


def plot_dose_response(
    map_results: pd.DataFrame,
    *,
    compound_col: str,
    dose_col: str,
    map_col: str = _MAP_COL,
    significant_col: str = "below_corrected_p",
    max_compounds: int = 12,
    figsize: tuple[float, float] = (7.5, 4.5),
    dpi: int = 100,
):
    """mAP by dose for each compound (hierarchical dose analyses).

    The ``max_compounds`` compounds with the highest best-dose mAP get a
    colored line (filled markers: significant doses); the others are thin
    grey lines.

    Parameters
    ----------
    map_results : pandas.DataFrame
        mAP results grouped by compound and dose (``sameby=[compound, dose]``).
    compound_col, dose_col : str
        The compound and (numeric) dose columns.
    map_col, significant_col : str
    max_compounds : int, default 12
    figsize : tuple of float, default (7.5, 4.5)
    dpi : int, default 100

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> maps = pd.DataFrame({"cpd": ["a", "a", "b", "b"], "dose": [1.0, 10.0, 1.0, 10.0],
    ...                      "mean_average_precision": [0.3, 0.9, 0.1, 0.2],
    ...                      "below_corrected_p": [False, True, False, False]})
    >>> fig = plot_dose_response(maps, compound_col="cpd", dose_col="dose")
    >>> fig.axes[0].get_xscale()
    'log'
    """
    _require(map_results, [compound_col, dose_col, map_col], "mAP results")
    data = _tested(map_results, map_col)
    data = data[pd.to_numeric(data[dose_col], errors="coerce") > 0]
    best = data.groupby(compound_col, sort=False)[map_col].max().sort_values(ascending=False)
    highlight = list(best.index[:max_compounds])
    fig, axes = _new_axes(figsize, dpi)
    ax = axes[0, 0]
    colors = _palette(len(highlight))
    for compound, sub in data.groupby(compound_col, sort=False):
        sub = sub.sort_values(dose_col)
        dose = sub[dose_col].to_numpy(dtype=float)
        value = sub[map_col].to_numpy(dtype=float)
        if compound not in highlight:
            ax.plot(dose, value, color="#d9d9d9", lw=0.7, zorder=1)
            continue
        color = colors[highlight.index(compound)]
        ax.plot(dose, value, color=color, lw=1.4, label=str(compound), zorder=2)
        sig = (
            sub[significant_col].fillna(False).to_numpy(dtype=bool)
            if significant_col in sub
            else np.zeros(len(sub), bool)
        )
        ax.scatter(
            dose, value, s=22, zorder=3, facecolors=np.where(sig, color, "white"), edgecolors=color
        )
        ax.lines[-1].pairmap_labels = [str(compound)]
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel(f"dose ({dose_col})")
    ax.set_ylabel("mAP")
    ax.set_title(
        f"mAP by dose: top {len(highlight)} of {len(best)} compounds (filled: significant)"
    )
    ax.legend(fontsize=7, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def _palette(n: int) -> list:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps["tab20" if n > 10 else "tab10"]
    return [to_hex(cmap(i % cmap.N)) for i in range(n)]


def plot_label_map(
    map_results: pd.DataFrame,
    *,
    label_col: str,
    map_col: str = _MAP_COL,
    significant_col: str = "below_corrected_p",
    n_labels: int = 40,
    figsize: tuple[float, float] | None = None,
    dpi: int = 100,
):
    """mAP of each label (e.g. mechanism of action) of a consistency analysis.

    Labels are sorted by mAP; with more than ``n_labels`` labels the top and
    bottom halves of that many are shown. Each label is annotated with its
    number of scored profiles.

    Parameters
    ----------
    map_results : pandas.DataFrame
        mAP results grouped by label.
    label_col : str
        The label column.
    map_col, significant_col : str
    n_labels : int, default 40
    figsize : tuple of float or None
    dpi : int, default 100

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> maps = pd.DataFrame({"moa": ["x", "y"], "mean_average_precision": [0.8, 0.3],
    ...                      "n_profiles": [4, 6], "below_corrected_p": [True, False]})
    >>> fig = plot_label_map(maps, label_col="moa")
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['y (n=6)', 'x (n=4)']
    """
    _require(map_results, [label_col, map_col], "mAP results")
    top, bottom = _top_bottom(map_results, map_col, (n_labels + 1) // 2, n_labels // 2)
    shown = pd.concat([top, bottom])
    n_total = len(_tested(map_results, map_col))
    names = [
        f"{lab} (n={n})" if "n_profiles" in shown else str(lab)
        for lab, n in zip(
            shown[label_col], shown.get("n_profiles", pd.Series([0] * len(shown))), strict=True
        )
    ]
    fig, axes = _new_axes(figsize or (7.0, 1.2 + 0.24 * max(len(shown), 1)), dpi)
    ax = axes[0, 0]
    ypos = len(shown) - 1 - np.arange(len(shown))
    sig = (
        shown[significant_col].fillna(False).to_numpy(dtype=bool)
        if significant_col in shown
        else np.zeros(len(shown), bool)
    )
    ax.hlines(ypos, 0, shown[map_col], color="#d9d9d9", lw=1)
    coll = ax.scatter(
        shown[map_col], ypos, c=np.where(sig, _SIGNIFICANT, _NOT_SIGNIFICANT), s=28, zorder=2
    )
    coll.pairmap_labels = list(names)
    ax.set_yticks(ypos[::-1], names[::-1], fontsize=7.5)  # listed bottom to top
    ax.set_xlim(0, 1.03)
    ax.set_xlabel("mAP (blue: significant)")
    more = f", top and bottom of {n_total}" if len(shown) < n_total else ""
    ax.set_title(f"mAP per label ({label_col}{more})")
    if len(map_results) > n_total:
        _note(
            ax,
            f"{len(map_results) - n_total} label(s) without a score not shown",
            loc="lower right",
        )
    fig.tight_layout()
    return fig


def plot_metric_distributions(
    table: pd.DataFrame,
    columns: Sequence[str],
    *,
    title: str = "Other metrics",
    figsize: tuple[float, float] | None = None,
    dpi: int = 100,
):
    """Histograms of numeric metric columns (ROC-AUC, precision@k, ...), one panel each.

    Parameters
    ----------
    table : pandas.DataFrame
        A results table.
    columns : sequence of str
        Numeric columns to show; NaN values are left out (the panel title
        gives the count shown).
    title : str
    figsize : tuple of float or None
    dpi : int, default 100

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> t = pd.DataFrame({"roc_auc": [0.5, 0.9, np.nan]})
    >>> plot_metric_distributions(t, ["roc_auc"]).axes[0].get_title()
    'roc_auc (n=2)'
    """
    columns = list(columns)
    if not columns:
        raise ValueError("columns must name at least one metric column")
    _require(table, columns, "results table")
    ncols = min(len(columns), 3)
    nrows = int(np.ceil(len(columns) / ncols))
    fig, axes = _new_axes(figsize or (3.0 * ncols, 2.4 * nrows + 0.4), dpi, nrows, ncols)
    for ax, col in zip(axes.flat, columns, strict=False):
        values = pd.to_numeric(table[col], errors="coerce").dropna().to_numpy(dtype=float)
        ax.hist(values, bins=30, color=_SIGNIFICANT, alpha=0.8)
        ax.set_title(f"{col} (n={values.size})", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(columns) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
