"""``pairmap report RESULTS...``: an HTML report from result tables on disk.

RESULTS are result files or folders holding them (what ``pairmap run`` and
``pairmap demo`` write): a table with an ``average_precision`` column is the
AP table, tables with a ``mean_average_precision`` column are mAP tables (the
one whose name ends in ``map_results`` is the main one, others are shown as
extra analyses), and a ``*run_info.json`` file is the run info. In a folder,
Parquet is preferred over CSV when both copies of a table exist.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)

__all__ = ["ResultFiles", "add_report_subcommand", "find_results"]

_TABLE_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".tsv", ".tsv.gz")

_EPILOG = """\
examples:
  pairmap report pairmap-demo-20260101-120000/
  pairmap report results/activity_ap_scores.csv results/activity_map_results.csv \\
      --info run_info.json --out activity.html

RESULTS are files or folders: the AP table (average_precision column), mAP
tables (mean_average_precision column; the one named *map_results is the
main one) and an optional *run_info.json (see docs/report.md). The report is
one self-contained HTML file; static PNG/SVG copies of the figures go to
<report name>_figures/ unless --no-figures.
"""


class ResultFiles:
    """Tables and run info found among the report's inputs."""

    def __init__(self) -> None:
        self.ap_scores: pd.DataFrame | None = None
        self.ap_path: Path | None = None
        self.map_results: pd.DataFrame | None = None
        self.map_path: Path | None = None
        self.extra: dict[str, pd.DataFrame] = {}
        self.info_path: Path | None = None
        self.ignored: list[Path] = []


def _stem(path: Path) -> str:
    name = path.name
    for suffix in _TABLE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _expand(paths) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p
                for p in path.iterdir()
                if p.is_file()
                and (p.name.lower().endswith(_TABLE_SUFFIXES) or p.name.endswith("run_info.json"))
            )
            if not found:
                raise FileNotFoundError(
                    f"folder {str(path)!r} holds no result table "
                    f"({', '.join(_TABLE_SUFFIXES)}) and no run_info.json"
                )
            by_stem: dict[str, Path] = {}
            for p in found:  # Parquet wins over CSV copies of the same table
                key = _stem(p) if not p.name.endswith(".json") else p.name
                if key not in by_stem or p.suffix == ".parquet":
                    by_stem[key] = p
            files += sorted(by_stem.values())
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"result file or folder {str(path)!r} does not exist")
    return files


def _read_table(path: Path) -> pd.DataFrame:
    from pairmap._io import table_format

    fmt = table_format(path)
    if fmt == "parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, sep="\t" if fmt == "tsv" else ",")


def _pick_main(tables: dict, name: str, what: str):
    """The main table among ``tables`` (stem -> (path, frame)): named ``name``, or the only one."""
    if not tables:
        return None
    if name in tables:
        return name
    suffixed = [stem for stem in tables if stem.endswith("_" + name)]
    if len(suffixed) == 1 or len(tables) == 1:
        return suffixed[0] if suffixed else next(iter(tables))
    raise ValueError(
        f"several {what} tables given ({', '.join(sorted(tables))}); name the "
        f"main one '{name}' or report one analysis at a time"
    )


def find_results(paths) -> ResultFiles:
    """Read the result tables and run info among ``paths`` (files or folders).

    The AP table named ``ap_scores`` (or the only AP table) and the mAP table
    named ``map_results`` (or the only one, or the only ``*_map_results``) are
    the main analysis; other mAP tables are extra analyses, other AP tables
    are listed in ``ignored``.

    Parameters
    ----------
    paths : sequence of path

    Returns
    -------
    ResultFiles
        ``ap_scores``, ``map_results``, ``extra`` (name -> table),
        ``info_path`` and ``ignored`` (paths).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"cpd": ["a"], "mean_average_precision": [1.0]}).to_csv(
    ...     d / "x_map_results.csv", index=False)
    >>> found = find_results([d])
    >>> found.map_results.columns.tolist(), found.ap_scores
    (['cpd', 'mean_average_precision'], None)
    """
    result = ResultFiles()
    ap_tables, map_tables = {}, {}
    for path in _expand(paths):
        if path.name.endswith(".json"):
            if result.info_path is not None:
                raise ValueError(f"two run-info files given: {result.info_path} and {path}")
            result.info_path = path
            continue
        table = _read_table(path)
        if "mean_average_precision" in table.columns:
            map_tables[_stem(path)] = (path, table)
        elif "average_precision" in table.columns:
            ap_tables[_stem(path)] = (path, table)
        else:
            raise ValueError(
                f"{path} is neither an AP table (no 'average_precision' column) "
                "nor a mAP table (no 'mean_average_precision' column)"
            )
    main_ap = _pick_main(ap_tables, "ap_scores", "AP")
    if main_ap is not None:
        result.ap_path, result.ap_scores = ap_tables.pop(main_ap)
    result.ignored = [path for path, _ in ap_tables.values()]
    main_map = _pick_main(
        {k: v for k, v in map_tables.items() if k == "map_results" or k.endswith("_map_results")}
        or map_tables,
        "map_results",
        "mAP",
    )
    if main_map is not None:
        result.map_path, result.map_results = map_tables.pop(main_map)
    result.extra = {stem: table for stem, (_, table) in map_tables.items()}
    if result.ap_scores is None and result.map_results is None:
        raise ValueError(
            "no result table found; give the AP and/or mAP tables "
            "(or the folder pairmap run / pairmap demo wrote)"
        )
    return result


def _default_out(found: ResultFiles) -> Path:
    anchor = found.map_path or found.ap_path or found.info_path
    return (anchor.parent if anchor is not None else Path.cwd()) / "report.html"


def _cmd_report(args: argparse.Namespace) -> int:
    from pairmap.report import read_run_info, write_report

    if args.max_points < 1:
        raise ValueError(f"--max-points must be at least 1, got {args.max_points}")
    start = time.perf_counter()
    found = find_results(args.results)
    info_path = Path(args.info) if args.info else found.info_path
    info = read_run_info(info_path) if info_path is not None else None
    if info is not None and args.title:
        info["title"] = args.title
    elif args.title:
        info = {"title": args.title}
    out = Path(args.out) if args.out else _default_out(found)
    if out.exists() and not args.force:
        raise FileExistsError(
            f"{out} already exists; pass --force to replace it or --out another file"
        )
    write_report(
        found.ap_scores,
        found.map_results,
        out,
        info=info,
        extra_results=found.extra,
        figures_dir=False if args.no_figures else None,
        max_points=args.max_points,
        overwrite=True,
    )
    used = [p for p in (found.ap_path, found.map_path, info_path) if p is not None]
    print(
        f"pairmap report ({time.perf_counter() - start:.1f} s)\n"
        f"  read:  {', '.join(str(p) for p in used)}"
        + (f" + {len(found.extra)} more mAP table(s)" if found.extra else "")
        + (
            f"\n  not used (other AP tables): {', '.join(str(p) for p in found.ignored)}"
            if found.ignored
            else ""
        )
        + f"\n  wrote: {out}"
        + ("" if args.no_figures else f"\n         {out.with_name(out.stem + '_figures')}/")
    )
    return 0


def add_report_subcommand(subparsers, formatter_class=argparse.RawDescriptionHelpFormatter):
    """Add ``report RESULTS...`` to an argparse subparsers object.

    Examples
    --------
    >>> parser = argparse.ArgumentParser(prog="pairmap")
    >>> _ = add_report_subcommand(parser.add_subparsers())
    >>> parser.parse_args(["report", "results/", "--out", "r.html"]).out
    'r.html'
    """
    report = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report of result tables",
        description="Write one self-contained HTML report (summary, sortable and searchable "
        "results table, figures) of the result tables pairmap run or pairmap demo wrote.",
        epilog=_EPILOG,
        formatter_class=formatter_class,
    )
    report.add_argument(
        "results",
        nargs="+",
        metavar="RESULTS",
        help="result tables (Parquet/CSV) or folders holding them",
    )
    report.add_argument(
        "--out",
        metavar="FILE.html",
        default=None,
        help="report file (default: report.html next to the mAP table)",
    )
    report.add_argument(
        "--info",
        metavar="RUN_INFO.json",
        default=None,
        help="run-info file for the summary (default: *run_info.json among RESULTS)",
    )
    report.add_argument("--title", default=None, help="report title")
    report.add_argument(
        "--no-figures",
        action="store_true",
        help="do not write static PNG/SVG copies of the figures",
    )
    report.add_argument(
        "--max-points",
        type=int,
        default=5000,
        help="most points drawn in the scatter (more are sampled)",
    )
    report.add_argument("--force", action="store_true", help="replace an existing report")
    report.set_defaults(func=_cmd_report)
    return report
