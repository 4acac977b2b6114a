"""One self-contained HTML report of an analysis: summary, results table, figures.

:func:`write_report` takes the tables :func:`pairmap.average_precision` and
:func:`pairmap.mean_average_precision` return (or ``pairmap run`` / ``pairmap
demo`` wrote) and an optional run-info mapping (:func:`make_run_info`, or a
``run_info.json`` sidecar read with :func:`read_run_info`), and writes

* ``report.html``: summary (data, pairing rules, null model, null size, seed,
  versions, run time), a sortable and searchable results table and every
  figure that the tables support, as inline SVG (hover a point for its name);
  styles and script are inline and a Content-Security-Policy forbids any
  network access, so the file can be mailed as it is;
* ``<stem>_figures/<figure>.png`` and ``.svg``: static copies for papers.

All files of one report appear together or not at all. Figures are drawn by
:mod:`pairmap.plotting`; see ``docs/report.md``.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from pairmap.report._info import (
    RUN_INFO_FORMAT,
    check_run_info,
    make_run_info,
    read_run_info,
    run_info_json,
)

logger = logging.getLogger(__name__)

__all__ = [
    "RUN_INFO_FORMAT",
    "Report",
    "build_report",
    "make_run_info",
    "read_run_info",
    "run_info_json",
    "write_report",
]

#: Static figure formats written next to the report by default.
FIGURE_FORMATS = ("png", "svg")


class Report:
    """A built report: the HTML text and the figures it shows.

    Attributes
    ----------
    html : str
        The whole document.
    figures : list
        ``ReportFigure`` objects (``key``, ``title``, ``figure`` or ``skipped``).
    svgs : dict
        Figure key -> SVG text, as inlined in ``html``.
    """

    def __init__(self, html: str, figures: list, svgs: dict) -> None:
        self.html = html
        self.figures = figures
        self.svgs = svgs

    def __repr__(self) -> str:
        drawn = [f.key for f in self.figures if f.figure is not None]
        return f"Report({len(self.html):,} characters, figures={drawn})"


def _check_tables(ap_scores, map_results, extra_results) -> dict:
    if ap_scores is None and map_results is None:
        raise ValueError("a report needs ap_scores, map_results or both")
    for name, table in (("ap_scores", ap_scores), ("map_results", map_results)):
        if table is not None and not isinstance(table, pd.DataFrame):
            raise TypeError(f"{name} must be a pandas DataFrame, got {type(table).__name__}")
    if ap_scores is not None and "average_precision" not in ap_scores.columns:
        raise ValueError(
            "ap_scores has no 'average_precision' column; pass the table "
            "average_precision returned (or pairmap run wrote)"
        )
    if map_results is not None and "mean_average_precision" not in map_results.columns:
        raise ValueError(
            "map_results has no 'mean_average_precision' column; pass the table "
            "mean_average_precision returned"
        )
    extra = {
        str(name): table
        for name, table in sorted((extra_results or {}).items(), key=lambda item: str(item[0]))
    }
    for name, table in extra.items():
        if not isinstance(table, pd.DataFrame):
            raise TypeError(f"extra_results[{name!r}] must be a DataFrame")
    return extra


def _extra_figures(extra: Mapping, info: Mapping) -> list:
    from pairmap.report import _figures

    figs = []
    columns = dict(info.get("columns") or {})
    for name, table in extra.items():
        sameby = _figures.table_sameby(table)
        compound, dose = _figures._dose_roles(table, sameby, None, columns)
        slug = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()
        if compound is not None:
            figs.append(_figures.dose_figure(table, compound, dose, f"dose_response_{slug}", name))
        elif len(sameby) == 1 and "n_profiles" in table and columns.get("label") in sameby:
            figs.append(_figures.label_figure(table, sameby[0], f"label_map_{slug}", name))
    return figs


def _collect_figures(ap_scores, map_results, extra, info, max_points, seed) -> list:
    from pairmap.report import _figures

    roles = _figures.resolve_roles(ap_scores, map_results, info)
    figs = _figures.main_figures(
        ap_scores, map_results, info, roles, max_points=max_points, seed=seed
    )
    if map_results is not None and roles.compound is not None:
        figs.append(
            _figures.dose_figure(
                map_results, roles.compound, roles.dose, "dose_response", "main analysis"
            )
        )
    if map_results is not None and roles.label is not None:
        figs.append(_figures.label_figure(map_results, roles.label, "label_map", "main analysis"))
    figs += _extra_figures(extra, info)
    if ap_scores is not None:
        figs.append(_figures.ap_histogram(ap_scores))
    tables = {"AP scores": ap_scores, "mAP results": map_results, **extra}
    metrics = _figures.metrics_figure({k: v for k, v in tables.items() if v is not None})
    if metrics is not None:
        figs.append(metrics)
    return figs


def build_report(
    ap_scores=None,
    map_results=None,
    *,
    info: Mapping | None = None,
    extra_results: Mapping | None = None,
    figure_links=None,
    max_points: int = 5000,
    max_table_rows: int = 20000,
    seed: int = 0,
) -> Report:
    """Build the report in memory (see :func:`write_report` for the parameters).

    ``figure_links`` (optional) maps a figure key to the static file names to
    list under that figure.

    Returns
    -------
    Report
        ``.html`` (the document), ``.figures`` and ``.svgs``.

    Examples
    --------
    >>> ap = pd.DataFrame({"cpd": ["a", "a", "b", "b"], "Metadata_Plate": ["p1", "p2"] * 2,
    ...                    "average_precision": [1.0, 1.0, 0.5, 0.25],
    ...                    "n_pos_pairs": [1, 1, 1, 1], "n_total_pairs": [4, 4, 4, 4]})
    >>> maps = pd.DataFrame({"cpd": ["a", "b"], "mean_average_precision": [1.0, 0.375],
    ...                      "n_profiles": [2, 2], "p_value": [0.25, 0.5],
    ...                      "corrected_p_value": [0.5, 0.5],
    ...                      "below_corrected_p": [False, False]})
    >>> report = build_report(ap, maps, info={"mean_average_precision": {"null_size": 100}})
    >>> [f.key for f in report.figures if f.figure is not None]
    ['map_scatter', 'ap_distributions', 'null_comparison', 'plate_ap', 'ap_histogram']
    """
    from pairmap.report import _html, _render, _summary

    start = time.perf_counter()
    extra = _check_tables(ap_scores, map_results, extra_results)
    info = check_run_info(info)
    figs = _collect_figures(ap_scores, map_results, extra, info, max_points, seed)
    svgs, blocks = {}, []
    for i, f in enumerate(figs):
        if f.figure is not None:
            svgs[f.key] = _render.figure_svg(f.figure, f"f{i}")
        files = figure_links(f.key) if figure_links is not None else ()
        blocks.append(
            _html.figure_block(f.key, f.title, f.caption, svgs.get(f.key), f.skipped, files)
        )
    sections = []
    main_table = map_results if map_results is not None else ap_scores
    payload, note = _html.table_payload(main_table, "table-main", max_rows=max_table_rows)
    sections.append(
        (
            "results",
            "Results table",
            _html.table_section(
                "results",
                "Results table",
                payload,
                note,
                "Click a column name to sort; type to search all columns.",
            ),
        )
    )
    sections.append(
        (
            "figures",
            "Figures",
            '<section id="figures"><h2>Figures</h2>' + "".join(blocks) + "</section>",
        )
    )
    for i, (name, table) in enumerate(extra.items()):
        payload, note = _html.table_payload(table, f"table-extra-{i}", max_rows=max_table_rows)
        sections.append(
            (
                f"extra-{i}",
                name,
                _html.table_section(
                    f"extra-{i}",
                    f"More results: {name}",
                    payload,
                    note,
                    "Another mAP analysis of the same AP scores.",
                ),
            )
        )
    from pairmap import __version__

    title = info.get("title") or "pairmap report"
    subtitle = f"pairmap {__version__} · {info.get('created', time.strftime('%Y-%m-%d'))}"
    text = _html.page(
        title, subtitle, _summary.summary_rows(info, ap_scores, map_results), sections
    )
    logger.info(
        "report built in %.2f s: %d figures, %d characters",
        time.perf_counter() - start,
        len(svgs),
        len(text),
    )
    return Report(text, figs, svgs)


def _default_figures_dir(out: Path) -> Path:
    return out.with_name(out.stem + "_figures")


def write_report(
    ap_scores: pd.DataFrame | None = None,
    map_results: pd.DataFrame | None = None,
    out: str | os.PathLike = "report.html",
    *,
    info: Mapping | None = None,
    extra_results: Mapping[str, pd.DataFrame] | None = None,
    figures_dir: str | os.PathLike | bool | None = None,
    formats: Sequence[str] = FIGURE_FORMATS,
    max_points: int = 5000,
    max_table_rows: int = 20000,
    seed: int = 0,
    overwrite: bool = True,
) -> Path:
    """Write a self-contained HTML report (and static figures) of an AP/mAP analysis.

    Parameters
    ----------
    ap_scores : pandas.DataFrame or None
        Output of :func:`pairmap.average_precision` (all metadata columns
        kept: the plate and well columns feed the plate figures).
    map_results : pandas.DataFrame or None
        Output of :func:`pairmap.mean_average_precision` on ``ap_scores``:
        the results table of the report. A hierarchical compound x dose
        analysis adds the dose figure.
    out : path, default "report.html"
        The HTML file.
    info : mapping or None
        Run info (see :func:`make_run_info`): data, pairing rules, null
        settings, column roles, versions, run time. Unknown keys are an error.
        With the analysis' ``null_size``, ``seed`` and ``null`` the report
        redraws the nulls of a few groups (and checks they reproduce the
        table's p-values; otherwise that figure is listed as not drawn).
    extra_results : mapping of str to DataFrame, optional
        More mAP tables (e.g. by compound and dose with ``hierarchical_by``,
        or a consistency analysis by label): each gets its own table section
        and its figures, in the order of their names.
    figures_dir : path, bool or None
        Folder for the static figures; None/True: ``<out stem>_figures`` next
        to ``out``; False: none.
    formats : sequence of str, default ("png", "svg")
        Static figure formats.
    max_points : int, default 5000
        Points drawn at most by the scatter (see :func:`pairmap.plotting.plot_map_scatter`).
    max_table_rows : int, default 20000
        Rows of a table embedded at most (the most significant first; the
        report says when rows were left out).
    seed : int, default 0
        Seed of point sampling and jitter in figures (never of results).
    overwrite : bool, default True
        Replace existing files; False raises ``FileExistsError`` instead.

    Returns
    -------
    pathlib.Path
        The HTML file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> ap = pd.DataFrame({"cpd": ["a", "a", "b", "b"],
    ...                    "average_precision": [1.0, 1.0, 0.5, 0.25],
    ...                    "n_pos_pairs": [1, 1, 1, 1], "n_total_pairs": [4, 4, 4, 4]})
    >>> maps = pd.DataFrame({"cpd": ["a", "b"], "mean_average_precision": [1.0, 0.375],
    ...                      "p_value": [0.25, 0.5], "corrected_p_value": [0.5, 0.5],
    ...                      "below_corrected_p": [False, False]})
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "report.html"
    >>> write_report(ap, maps, out, formats=("png",)).name
    'report.html'
    >>> sorted(p.name for p in (out.parent / "report_figures").iterdir())
    ['ap_distributions.png', 'ap_histogram.png', 'map_scatter.png', 'null_comparison.png']
    """
    from pairmap._io import StagedOutputs
    from pairmap.report import _render

    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"report path {str(out)!r} must end with .html")
    formats = tuple(str(f).lower() for f in formats)
    unknown = sorted(set(formats) - {"png", "svg", "pdf"})
    if unknown:
        raise ValueError(f"figure formats {unknown} are not supported; use png, svg or pdf")
    fig_dir = (
        None
        if figures_dir is False or not formats
        else (_default_figures_dir(out) if figures_dir in (None, True) else Path(figures_dir))
    )
    report = build_report(
        ap_scores,
        map_results,
        info=info,
        extra_results=extra_results,
        max_points=max_points,
        max_table_rows=max_table_rows,
        seed=seed,
        figure_links=_figure_links(fig_dir, out, formats),
    )
    with StagedOutputs(overwrite=overwrite) as staged:
        staged.write(out, lambda fh: fh.write(report.html.encode("utf-8")))
        for f in report.figures if fig_dir is not None else ():
            if f.figure is None:
                continue
            for fmt in formats:
                path = fig_dir / f"{f.key}.{fmt}"
                if fmt == "svg":
                    svg = report.svgs[f.key].encode("utf-8")
                    staged.write(path, lambda fh, data=svg: fh.write(data))
                elif fmt == "png":
                    png = _render.figure_png(f.figure)
                    staged.write(path, lambda fh, data=png: fh.write(data))
                else:
                    staged.write_figure(f.figure, path, bbox_inches="tight")
    logger.info("wrote report %s", out)
    return out


def _figure_links(fig_dir, out: Path, formats):
    """Function: figure key -> static file names shown under the figure (relative paths)."""
    if fig_dir is None:
        return None
    try:
        rel = Path(os.path.relpath(fig_dir, out.parent))
    except ValueError:  # another drive on Windows
        rel = Path(fig_dir)
    return lambda key: [(rel / f"{key}.{fmt}").as_posix() for fmt in formats]
