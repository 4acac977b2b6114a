"""Running a checked config: plan outputs, read, preprocess, AP, mAP, plot, write."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pairmap.runner.loading import ConfigError, expand_env, load_config
from pairmap.runner.steps import preprocess
from pairmap.runner.tables import read_input, split_table
from pairmap.runner.validate import validate_config

logger = logging.getLogger(__name__)

__all__ = ["RunResult", "check_config", "plan_outputs", "run_config"]


@dataclass
class RunResult:
    """What :func:`run_config` produced."""

    ap_scores: pd.DataFrame
    map_results: pd.DataFrame | None
    written: list[Path] = field(default_factory=list)
    n_features: int = 0


def check_config(config: Mapping | str | os.PathLike) -> dict:
    """Load (when a path) and validate a config; errors from a file name the file.

    Examples
    --------
    >>> check_config({"input": {"path": "x.csv"}})
    Traceback (most recent call last):
    ...
    pairmap.runner.loading.ConfigError: the config needs a 'average_precision' section ...
    """
    if not isinstance(config, (str, os.PathLike)):
        return validate_config(expand_env(dict(config)))
    raw = load_config(config)
    try:
        return validate_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"{os.fspath(config)}: {exc}") from exc


def _with_suffix(path: Path, suffix: str) -> Path:
    name = path.name
    for ext in (".csv.gz", ".tsv.gz"):
        if name.lower().endswith(ext):
            return path.with_name(name[: -len(ext)] + suffix + name[-len(ext) :])
    return path.with_name(path.stem + suffix + path.suffix)


def plan_outputs(cfg: Mapping) -> dict[str, Path]:
    """The files a checked config writes: ``{"ap_scores"|"map_results"|"map_plot": path}``.

    Examples
    --------
    >>> cfg = {"output": {"directory": "res", "name": "act", "format": "csv"},
    ...        "mean_average_precision": {"sameby": ["g"]}, "plotting": {"enabled": True}}
    >>> sorted(p.name for p in plan_outputs(cfg).values())
    ['act_ap_scores.csv', 'act_map_plot.png', 'act_map_results.csv']
    """
    out, plot = cfg["output"], cfg.get("plotting")
    has_map = cfg.get("mean_average_precision") is not None
    drawn = plot is not None and plot.get("enabled") and has_map
    if "path" not in out:
        directory, name = Path(out["directory"]), out["name"]
        ext = ".parquet" if out["format"] == "parquet" else ".csv"
        files = {"ap_scores": directory / f"{name}_ap_scores{ext}"}
        if has_map:
            files["map_results"] = directory / f"{name}_map_results{ext}"
        if drawn:
            files["map_plot"] = directory / f"{name}_map_plot.{plot.get('format') or 'png'}"
        if out.get("report"):
            files["report"] = directory / f"{name}_report.html"
        return files
    final = Path(out["path"])
    files = {"map_results" if has_map else "ap_scores": final}
    if out.get("save_ap_scores") and has_map:
        files["ap_scores"] = _with_suffix(final, "_ap_scores")
    if drawn:
        files["map_plot"] = Path(plot["path"])
    return files


def _nearest_existing(path: Path) -> Path:
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def check_outputs(files: Mapping[str, Path], overwrite: bool) -> None:
    """Refuse, before any computing, outputs that cannot be written or would be replaced."""
    for path in files.values():  # a folder in the way is an error even with overwrite
        if path.is_dir():
            raise IsADirectoryError(
                f"output {str(path)!r} is a folder; remove it or choose another output name"
            )
    for path in files.values():  # (an existing file is fine with overwrite)
        if path.exists() and not overwrite:
            raise ConfigError(
                f"output {str(path)!r} already exists; pass --overwrite (or set "
                f"output.overwrite: true) to replace it, or choose another "
                f"output.directory/name"
            )
        base = _nearest_existing(path)
        if not base.is_dir():
            raise ConfigError(
                f"cannot create output folder {str(path.parent)!r}: "
                f"{str(base)!r} is a file; remove it or choose another location"
            )
        if not os.access(base, os.W_OK | os.X_OK):
            raise ConfigError(
                f"cannot write {str(path)!r}: no write permission in "
                f"{str(base)!r}; choose another output location"
            )


def _compute_ap(meta, feats, ap_cfg: Mapping, overrides: Mapping) -> pd.DataFrame:
    import pairmap

    kwargs = {**ap_cfg["params"], **overrides}
    if ap_cfg.get("multilabel") and not kwargs.get("multilabel_col"):
        raise ConfigError(
            "'average_precision.multilabel: true' needs "
            "'average_precision.params.multilabel_col': the column holding label "
            "lists (made by a 'split_multilabel' step)"
        )
    logger.info("average precision for %d profiles", len(meta))
    try:
        return pairmap.average_precision(meta, feats, **kwargs)
    except ValueError as exc:
        if "missing value" not in str(exc):
            raise
        raise ConfigError(
            f"{exc}; in a config, add a 'fillna' preprocessing step (e.g. "
            f"{{type: fillna, params: {{columns: [...], value: unknown}}}}) or a "
            f"'dropna' step"
        ) from exc


def _compute_map(ap_scores, params: Mapping | None, overrides: Mapping):
    import pairmap

    if params is None:
        return None
    kwargs = {**params, **overrides}
    sameby = kwargs.pop("sameby")
    logger.info("mean average precision by %s", sameby)
    result = pairmap.mean_average_precision(ap_scores, sameby, **kwargs)
    with np.errstate(divide="ignore"):
        result["-log10(p-value)"] = -np.log10(result["corrected_p_value"].to_numpy(dtype=float))
    n_tested = int(result["p_value"].notna().sum())
    logger.info(
        "%d groups: %d tested, %d without a scored profile (n_profiles = 0), %d significant",
        len(result),
        n_tested,
        len(result) - n_tested,
        int(result["below_corrected_p"].sum()),
    )
    return result


def _figure(map_results, cfg: Mapping):
    from pairmap.plotting import plot_map_scatter

    plot, params = cfg["plotting"], cfg["mean_average_precision"]
    options = {
        k: plot[k]
        for k in ("title", "xlabel", "ylabel", "annotation_prefix", "dpi")
        if plot.get(k) is not None
    }
    if plot.get("figsize") is not None:
        options["figsize"] = tuple(plot["figsize"])
    return plot_map_scatter(
        map_results,
        threshold=float(params.get("threshold", 0.05)),
        null_size=params.get("null_size"),
        **options,
    )


def _report_html(ap_scores, map_results, cfg: Mapping) -> bytes:
    """The HTML report (pairmap.report) of the run, figures embedded."""
    from pairmap.report import build_report, make_run_info

    info = make_run_info(
        title=cfg["output"].get("name"),
        data={"path": str(cfg["input"]["path"])},
        average_precision=dict(cfg["average_precision"]["params"]),
        mean_average_precision=dict(cfg["mean_average_precision"] or {}),
    )
    return build_report(ap_scores, map_results, info=info).html.encode("utf-8")


def _write(files, ap_scores, map_results, fig, overwrite, cfg) -> list[Path]:
    from pairmap._io import StagedOutputs

    with StagedOutputs(overwrite=overwrite) as staged:
        for key, path in files.items():
            if key == "map_plot":
                kw = {} if path.suffix else {"format": "png"}
                staged.write_figure(fig, path, bbox_inches="tight", **kw)
            elif key == "report":
                html = _report_html(ap_scores, map_results, cfg)
                staged.write(path, lambda fh, html=html: fh.write(html))
            else:
                staged.write_dataframe(ap_scores if key == "ap_scores" else map_results, path)
    for p in staged.written:
        logger.info("wrote %s", p)
    return list(staged.written)


def run_config(
    config: Mapping | str | os.PathLike,
    *,
    n_jobs: int | None = None,
    progress_bar: bool | None = None,
    overwrite: bool | None = None,
) -> RunResult:
    """Run a configured analysis: load, preprocess, AP, mAP, write results.

    The output location is checked before anything is computed, and all
    outputs of one run are written atomically together: if anything fails, no
    result file is created or changed.

    Parameters
    ----------
    config : mapping or path
        A raw config dict or a YAML/JSON file.
    n_jobs : int or None, optional
        Overrides ``n_jobs`` of both AP and mAP when given.
    progress_bar : bool or None, optional
        Overrides ``progress_bar`` of both AP and mAP when given.
    overwrite : bool or None, optional
        Overrides ``output.overwrite`` (default false: existing results are
        never replaced) when given.

    Returns
    -------
    RunResult
        AP scores, mAP results (or None) and the written paths.

    Examples
    --------
    >>> run_config("analysis.yaml")  # doctest: +SKIP
    """
    cfg = check_config(config)
    overwrite = cfg["output"]["overwrite"] if overwrite is None else overwrite
    files = plan_outputs(cfg)
    check_outputs(files, overwrite)
    overrides = {
        k: v for k, v in (("n_jobs", n_jobs), ("progress_bar", progress_bar)) if v is not None
    }
    where = cfg["input_key"]
    df = preprocess(read_input(cfg["input"], where), cfg["preprocessing"], cfg["input"])
    meta, feats = split_table(df, cfg["input"], where)
    ap_scores = _compute_ap(meta, feats, cfg["average_precision"], overrides)
    map_results = _compute_map(ap_scores, cfg["mean_average_precision"], overrides)
    fig = _figure(map_results, cfg) if "map_plot" in files else None
    written = _write(files, ap_scores, map_results, fig, overwrite, cfg)
    return RunResult(ap_scores, map_results, written, n_features=feats.shape[1])
