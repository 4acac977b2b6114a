"""Command line interface: ``pairmap demo``, ``run``, ``report``, ``cache``.

Bad input (a missing file, an invalid config, a wrong column name) ends with
one ``pairmap: error: ...`` line on stderr and exit code 2; pass
``--log-level DEBUG`` to see the full traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import sys
import textwrap
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from pairmap.demo import _demo_plates, run_demo  # noqa: F401  (importable from here too)

logger = logging.getLogger("pairmap.cli")

__all__ = ["build_parser", "main", "run_demo"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

_EPILOG = """\
examples:
  pairmap demo                      simulate a screen and analyze it (no input needed)
  pairmap demo --dataset lincs      analyze the built-in LINCS Cell Painting plate
  pairmap run analysis.yaml         run the analysis a config file describes
  pairmap report results/           an HTML report of result tables
  pairmap cache --help              manage the on-disk null distribution cache

docs: {docs} (commands and config format)
"""


def _docs_file(name: str) -> str:
    """Where the installed (or checked-out) documentation page ``name`` is.

    Wheels install ``docs/*.md`` under ``<prefix>/share/doc/pairmap``; a source
    checkout has them in ``docs/``.
    """
    import sysconfig

    candidates = [Path(__file__).resolve().parents[2] / "docs" / name]
    for scheme_path in {sysconfig.get_path("data"), sys.prefix}:
        candidates.append(Path(scheme_path) / "share" / "doc" / "pairmap" / name)
    for path in candidates:
        if path.is_file():
            return str(path)
    return f"docs/{name} in the pairmap source distribution"


_DEMO_EPILOG = """\
examples:
  pairmap demo --out demo-results --seed 3
  pairmap demo --dataset lincs --out lincs-demo

The default demo simulates a plate-based screen (perturbations with
replicates on different plates, negative controls on every plate; background
features N(0, 1), active perturbations with some features drawn from
N(1, 1)), computes phenotypic activity AP (each perturbation's replicates vs
the controls), mAP with permutation p-values (BH-corrected) and compares the
significant perturbations with the simulated truth. With --dataset lincs it
analyzes the LINCS Cell Painting plate shipped with pairmap instead: activity
of each compound against the DMSO wells, by compound and by compound x dose
(hierarchical FDR). It writes ap_scores.{parquet,csv},
map_results.{parquet,csv} (LINCS: also map_results_by_dose), profiles.parquet
(simulation), map_plot.png, run_info.json, report.html and report_figures/
into the output folder, which must not exist yet.
"""

_RUN_EPILOG = """\
example config (activity of each compound against DMSO controls):

  input:
    path: profiles.parquet         # .csv, .csv.gz, .tsv or .parquet
    use_lazy_filter: true          # optional: SQL row filter applied while reading
    filter_query: "Metadata_Plate = 'P1'"
  preprocessing:
    steps:
      - type: apply_assign_reference
        params:
          condition: "Metadata_broad_sample == 'DMSO'"
          reference_col: Metadata_reference_index
  average_precision:
    params:
      pos_sameby: [Metadata_broad_sample, Metadata_reference_index]
      pos_diffby: []
      neg_sameby: []
      neg_diffby: [Metadata_broad_sample, Metadata_reference_index]
  mean_average_precision:
    params:
      sameby: [Metadata_broad_sample]
      null_size: 10000
      threshold: 0.05
      seed: 0
  output:
    directory: results
    name: activity                 # results/activity_map_results.csv ...

  pairmap run activity.yaml --n-jobs 2

The format is today's copairs runner's (the older 'data' section is read
too); an unknown section, key or preprocessing step is an error.
{steps}
Relative paths are read from the current folder. Existing result files are
not replaced unless --overwrite (or output.overwrite: true) is given. Outputs
of one run are written atomically: a failing run leaves no result files.
See docs/cli.md.
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep the layout of descriptions/epilogs; append meaningful defaults to option help.

    ``None`` and ``False`` defaults are not shown (the help text says what
    happens when the option is not given).
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or not action.option_strings
        ):
            return text
        return text + " (default: %(default)s)"


def _step_names() -> str:
    from pairmap.runner.steps import STEP_ALIASES, STEPS

    names = ", ".join([*STEPS, *(f"{a} (= {n})" for a, n in STEP_ALIASES.items())])
    return textwrap.fill(f"Preprocessing steps: {names}.", width=79)


def _wrap(text: str) -> str:
    return textwrap.fill(" ".join(text.split()), width=79)


def _n_jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError("0 is not valid: use a positive count or -1 for all CPUs")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _version() -> str:
    try:
        from pairmap import __version__

        return __version__
    except ImportError:  # pragma: no cover
        return "unknown"


def _add_log_level(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--log-level",
        default=default,
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging detail on stderr; DEBUG also shows tracebacks of errors"
        + ("" if default != argparse.SUPPRESS else " (also accepted before the command)"),
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the ``pairmap`` argument parser with all subcommands.

    Returns
    -------
    argparse.ArgumentParser
        The parser; each subcommand sets ``func`` (called with the parsed
        arguments, returns an exit code).

    Examples
    --------
    >>> args = build_parser().parse_args(["demo", "--seed", "3"])
    >>> args.seed
    3
    """
    parser = argparse.ArgumentParser(
        prog="pairmap",
        description=_wrap(
            "Mean average precision (mAP) for biological profiles: how strong "
            "(phenotypic activity) and how reproducible (phenotypic consistency) "
            "are your perturbations' profiles, with permutation p-values."
        ),
        epilog=_EPILOG.format(docs=_docs_file("cli.md")),
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pairmap {_version()}")
    _add_log_level(parser, "WARNING")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")

    demo = sub.add_parser(
        "demo",
        help="analyze built-in data (simulated or LINCS): tables, plot, HTML report",
        description=_wrap(
            "Simulate a screen with a known truth (or load the built-in LINCS "
            "plate), compute phenotypic activity (AP of each perturbation's "
            "replicates against negative controls), mAP with p-values, and write "
            "tables (Parquet and CSV), a plot and an HTML report. Needs no input "
            "and no network."
        ),
        epilog=_DEMO_EPILOG,
        formatter_class=_HelpFormatter,
    )
    demo.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="output folder to create; it must not exist (default: a new "
        "./pairmap-demo-YYYYmmdd-HHMMSS folder)",
    )
    demo.add_argument(
        "--dataset",
        choices=["simulation", "lincs"],
        default="simulation",
        help="data to analyze: a simulated screen or the built-in LINCS plate",
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed of simulation and null")
    demo.add_argument(
        "--null-size",
        type=_positive_int,
        default=10000,
        help="number of null AP draws per p-value (smallest p is 1/(null_size+1))",
    )
    demo.add_argument(
        "--n-perturbations",
        type=_positive_int,
        default=100,
        help="simulated perturbations (simulation only, like the next four)",
    )
    demo.add_argument(
        "--n-replicates",
        type=_positive_int,
        default=4,
        help="replicate wells per perturbation (each on another plate)",
    )
    demo.add_argument("--n-features", type=_positive_int, default=200, help="features per profile")
    demo.add_argument(
        "--n-active-features",
        type=int,
        default=30,
        help="features shifted (drawn from N(1,1)) for active perturbations",
    )
    demo.add_argument(
        "--fraction-active", type=float, default=0.5, help="share of perturbations that are active"
    )
    demo.add_argument(
        "--no-progress", action="store_true", help="hide progress bars (default: shown)"
    )
    demo.add_argument(
        "--n-jobs",
        type=_n_jobs,
        default=None,
        help="threads to use: a count, -1 for all CPUs, -2 for all but one "
        "(default: all available CPUs)",
    )
    demo.set_defaults(func=_cmd_demo)

    run = sub.add_parser(
        "run",
        help="run an analysis described by a YAML/JSON config file",
        description=_wrap(
            "Load a CSV/Parquet table of profiles, preprocess it, compute AP and "
            "(optionally) mAP with p-values, and write the results, as the config "
            "file says. The config format follows the copairs example runner."
        ),
        epilog=_RUN_EPILOG.replace("{steps}", _step_names()),
        formatter_class=_HelpFormatter,
    )
    run.add_argument("config", metavar="CONFIG.yaml", help="analysis config (YAML or JSON)")
    run.add_argument(
        "--n-jobs",
        type=_n_jobs,
        default=None,
        help="threads to use, overriding n_jobs in the config (default: the "
        "config's value, else all available CPUs)",
    )
    run.add_argument(
        "--no-progress",
        action="store_true",
        help="hide progress bars, overriding progress_bar in the config (default: shown)",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing result files (same as output.overwrite: true); "
        "by default a run refuses to overwrite, like pairmap demo",
    )
    run.add_argument(
        "--check",
        action="store_true",
        help="only validate the config (no data is read, nothing is written)",
    )
    run.add_argument(
        "--dask",
        metavar="ADDRESS",
        default=None,
        help="run the AP blocks and null distributions on Dask: a scheduler "
        "address (tcp://host:8786) or 'local' for a cluster of this machine's "
        "CPUs; needs pip install 'pairmap[dask]' and, for a remote cluster, "
        "data and null cache on storage every worker sees",
    )
    run.set_defaults(func=_cmd_run)

    warm = sub.add_parser(
        "warmup",
        help="compile the kernels now (first run only), e.g. after installing",
        description=_wrap(
            "Compile pairmap's kernels for float32 and float64 features and cache them on "
            "disk, so that the first analysis does not pay the one-time compile (about half "
            "a minute). Later runs load the cached kernels; running it again is quick."
        ),
        formatter_class=_HelpFormatter,
    )
    warm.set_defaults(func=_cmd_warmup)
    _add_log_level(warm, argparse.SUPPRESS)

    from pairmap.report.commands import add_report_subcommand

    report = add_report_subcommand(sub, _HelpFormatter)
    _add_log_level(report, argparse.SUPPRESS)

    try:
        from pairmap.cache.commands import add_cache_subcommand
    except ImportError as exc:  # the cache commands are optional until they land
        logger.debug("cache subcommand unavailable: %s", exc)
    else:
        cache = add_cache_subcommand(sub)
        for action in cache._actions:  # the cache ACTION subparsers
            if isinstance(action, argparse._SubParsersAction):
                for sub_action in action.choices.values():
                    _add_log_level(sub_action, argparse.SUPPRESS)
    # ``pairmap run x.yaml --log-level DEBUG`` works too; SUPPRESS keeps the global value
    # unless the option is given after the command.
    _add_log_level(demo, argparse.SUPPRESS)
    _add_log_level(run, argparse.SUPPRESS)
    return parser


# --------------------------------------------------------------------------- demo


def _fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def _cmd_demo(args: argparse.Namespace) -> int:
    if not 0.0 <= args.fraction_active <= 1.0:
        raise ValueError(f"--fraction-active must be between 0 and 1, got {args.fraction_active}")
    start = time.perf_counter()
    s = run_demo(
        args.out,
        dataset=args.dataset,
        seed=args.seed,
        null_size=args.null_size,
        n_jobs=args.n_jobs,
        progress_bar=not args.no_progress,
        n_perturbations=args.n_perturbations,
        n_replicates=args.n_replicates,
        n_features=args.n_features,
        n_active_features=args.n_active_features,
        fraction_active=args.fraction_active,
    )
    head = (
        f"pairmap demo (seed {args.seed}, null size {args.null_size}, "
        f"{time.perf_counter() - start:.1f} s)"
    )
    if s["dataset"] == "simulation":
        lines = [
            head,
            f"  profiles:       {s['n_profiles']} ({s['n_perturbations']} perturbations x "
            f"{args.n_replicates} replicates + {s['n_controls']} controls)",
            f"  significant:    {s['n_significant']} of {s['n_perturbations']} perturbations "
            f"(corrected p < 0.05); {s['n_active']} are truly active",
            f"  vs truth:       recall {_fmt(s['recall'])}, precision {_fmt(s['precision'])} "
            f"({s['true_positives']} true positives)",
        ]
    else:
        untested = s["n_groups"] - s["n_scored_groups"]
        lines = [
            head.replace("pairmap demo", "pairmap demo --dataset lincs"),
            f"  profiles:       {s['n_profiles']} wells of LINCS plate SQ00015054 "
            f"({s['n_controls']} DMSO controls)",
            f"  significant:    {s['n_significant']} of {s['n_scored_groups']} compounds "
            f"(corrected p < 0.05)"
            + (f"; {untested} group without a score (DMSO)" if untested else ""),
        ]
    lines.append(f"  results in:     {s['out']}")
    lines += [f"    {f.relative_to(s['out']).as_posix()}" for f in s["files"]]
    lines.append(f"  open the report: {s['out'] / 'report.html'}")
    print("\n".join(lines))
    return EXIT_OK


# --------------------------------------------------------------------------- run


def _cmd_run(args: argparse.Namespace) -> int:
    from pairmap.runner import check_config, run_config

    if args.check:
        check_config(args.config)
        print(f"{args.config}: config is valid")
        return EXIT_OK
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if args.dask:
            from pairmap.distributed import use

            stack.enter_context(use(args.dask))
        result = run_config(
            args.config,
            n_jobs=args.n_jobs,
            progress_bar=False if args.no_progress else None,
            overwrite=True if args.overwrite else None,
        )
    lines = [f"pairmap run {args.config} ({time.perf_counter() - start:.1f} s)"]
    lines += _run_summary(result)
    lines.append("  wrote:")
    lines += [f"    {p}" for p in result.written]
    print("\n".join(lines))
    return EXIT_OK


def _run_summary(result) -> list[str]:
    """Profile and group counts, computed from the written tables (so they agree with them)."""
    ap = result.ap_scores
    n_scored = int(ap["average_precision"].notna().sum())
    lines = [
        f"  profiles:       {len(ap)} ({n_scored} with an AP score), {result.n_features} features"
    ]
    if result.map_results is not None:
        m = result.map_results
        n_tested = int(m["p_value"].notna().sum())
        untested = len(m) - n_tested
        lines.append(
            f"  groups:         {len(m)} in the table: {n_tested} tested, {untested} without a "
            f"scored profile (n_profiles = 0); significant (corrected p): "
            f"{int(m['below_corrected_p'].sum())} of {n_tested}"
        )
    return lines


# --------------------------------------------------------------------------- warmup


def _cmd_warmup(args: argparse.Namespace) -> int:
    from pairmap.startup import kernels_cached, warmup

    cached = all(kernels_cached(d) for d in ("float32", "float64", None))
    seconds = warmup()
    state = "were already cached" if cached else "compiled and cached"
    print(f"pairmap warmup: kernels {state} ({seconds:.1f} s)")
    return EXIT_OK


# --------------------------------------------------------------------------- entry point


def _input_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [ValueError, TypeError, KeyError, OSError]
    try:
        from pairmap.runner import ConfigError

        errors.insert(0, ConfigError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def _one_line(exc: BaseException) -> str:
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    text = " ".join(text.split()) or type(exc).__name__
    if isinstance(exc, KeyError):
        text = f"missing key or column {text}"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pairmap`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code: 0 success, 2 bad input (one error line on stderr), 1 an
        unexpected failure.

    Examples
    --------
    >>> main(["--version"])  # doctest: +SKIP
    pairmap 0.1.0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    previous_showwarning = warnings.showwarning
    warnings.showwarning = _show_warning  # one log line per warning, no source echo
    try:
        return _dispatch(args)
    finally:
        warnings.showwarning = previous_showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Show a library warning as one log line: ``WARNING pairmap: Category: message``."""
    text = " ".join(str(message).split())
    logging.getLogger("pairmap").warning("%s: %s", category.__name__, text)


def _dispatch(args: argparse.Namespace) -> int:
    debug = args.log_level == "DEBUG"
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        print("pairmap: interrupted", file=sys.stderr)
        return 130
    except _input_errors() as exc:
        if debug:
            logger.exception("failed")
        print(f"pairmap: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        if debug:
            logger.exception("unexpected failure")
        print(
            f"pairmap: unexpected {type(exc).__name__}: {_one_line(exc)} "
            f"(run with --log-level DEBUG for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
