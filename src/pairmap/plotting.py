"""Plots of mAP results (matplotlib, Agg backend: works without a display).

Figures are built with :class:`matplotlib.figure.Figure` and an Agg canvas
directly, so nothing here touches pyplot's global state or opens a window.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

__all__ = ["plot_map_scatter"]

_SIGNIFICANT = "#2166ac"
_NOT_SIGNIFICANT = "#969696"
_THRESHOLD = "#d6604d"


def plot_map_scatter(
    map_results: pd.DataFrame,
    *,
    threshold: float = 0.05,
    map_col: str = "mean_average_precision",
    p_col: str = "corrected_p_value",
    significant_col: str | None = "below_corrected_p",
    truth_col: str | None = None,
    null_size: int | None = None,
    title: str = "Phenotypic assessment",
    xlabel: str = "mAP",
    ylabel: str = "-log10(corrected p-value)",
    annotation_prefix: str = "Significant",
    figsize: tuple[float, float] = (7.0, 5.5),
    dpi: int = 100,
):
    """Scatter plot of mAP against -log10(corrected p-value).

    Points are colored by significance (``significant_col``; when ``None``,
    ``p_col < threshold``), a dashed line marks ``-log10(threshold)`` and the
    share of significant groups is printed in a corner. With ``truth_col`` (a
    boolean column, e.g. the ``Metadata_Active`` truth of a simulation) truly
    active groups are drawn as circles and inactive ones as crosses.

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
        Optional boolean column with the known truth (marker shape); missing
        values (NaN/None) are drawn as a third "truth unknown" category.
    null_size : int or None, default None
        If given, the y axis extends to ``-log10(1 / (null_size + 1))``, the
        smallest p-value a null of that size can give.
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
        The figure (save it with ``fig.savefig(path)`` or
        :func:`pairmap._io.atomic_write_figure`).

    Examples
    --------
    >>> import pandas as pd
    >>> res = pd.DataFrame({"mean_average_precision": [0.9, 0.2],
    ...                     "corrected_p_value": [0.001, 0.6],
    ...                     "below_corrected_p": [True, False]})
    >>> fig = plot_map_scatter(res)
    >>> fig.axes[0].get_xlabel()
    'mAP'
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    for col in (map_col, p_col):
        if col not in map_results.columns:
            raise ValueError(
                f"column {col!r} is missing from the mAP results; available columns: "
                f"{list(map_results.columns)}"
            )
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")

    data = map_results.dropna(subset=[map_col, p_col])
    x = data[map_col].to_numpy(dtype=float)
    p = data[p_col].to_numpy(dtype=float)
    with np.errstate(divide="ignore"):
        y = -np.log10(np.clip(p, np.finfo(float).tiny, 1.0))
    if significant_col is not None and significant_col in data.columns:
        significant = data[significant_col].to_numpy(dtype=bool)
    else:
        significant = p < threshold

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colors = np.where(significant, _SIGNIFICANT, _NOT_SIGNIFICANT)
    handles = [
        Line2D([], [], marker="o", ls="", color=_SIGNIFICANT, label=f"corrected p < {threshold:g}"),
        Line2D([], [], marker="o", ls="", color=_NOT_SIGNIFICANT, label=f"corrected p >= {threshold:g}"),
    ]
    if truth_col is not None:
        if truth_col not in data.columns:
            raise ValueError(f"truth_col {truth_col!r} is not a column of the mAP results")
        column = data[truth_col]
        unknown = column.isna().to_numpy()  # NaN/None is "unknown", never "active"
        truth = column.fillna(False).to_numpy(dtype=bool) & ~unknown
        inactive = ~truth & ~unknown
        ax.scatter(x[truth], y[truth], c=colors[truth], s=36, alpha=0.75, marker="o",
                   edgecolors="none")
        ax.scatter(x[inactive], y[inactive], c=colors[inactive], s=36, alpha=0.75, marker="x")
        handles += [
            Line2D([], [], marker="o", ls="", color="black", label="truly active"),
            Line2D([], [], marker="x", ls="", color="black", label="truly inactive"),
        ]
        if unknown.any():
            ax.scatter(x[unknown], y[unknown], c=colors[unknown], s=30, alpha=0.75,
                       marker="s", edgecolors="none")
            handles.append(
                Line2D([], [], marker="s", ls="", color="black", label="truth unknown")
            )
    else:
        ax.scatter(x, y, c=colors, s=36, alpha=0.75, edgecolors="none")

    ax.axhline(-np.log10(threshold), color=_THRESHOLD, ls="--", lw=1.2)
    share = 100.0 * significant.mean() if len(significant) else 0.0
    ax.text(0.02, 0.98, f"{annotation_prefix}: {share:.1f}% of {len(significant)}",
            transform=ax.transAxes, va="top", ha="left", fontsize=10, color="#525252")
    ax.set_xlim(-0.02, 1.05)
    top = np.nanmax(y) if len(y) else 1.0
    if null_size is not None:
        top = max(top, -np.log10(1.0 / (int(null_size) + 1)))
    ax.set_ylim(0, max(top, -np.log10(threshold)) * 1.08)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(handles=handles, loc="lower right", fontsize=8, frameon=False)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    fig.tight_layout()
    logger.debug("plotted %d mAP groups", len(data))
    return fig
