"""The sections of a run config and :func:`validate_config`.

Sections (copairs runner names): ``input`` (older configs: ``data``), every
top-level key starting with ``preprocessing`` (merged in sorted order),
``average_precision``, ``mean_average_precision``, ``output``, ``plotting``
and ``hydra`` (ignored). Keys are declared once, in the tables below.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

from pairmap.runner.loading import ConfigError
from pairmap.runner.schema import Key, check_keys, check_section, coerce
from pairmap.runner.steps import parse_steps

logger = logging.getLogger(__name__)

__all__ = ["validate_config"]

TOP_LEVEL = {
    "input": "the table to analyze and how to split metadata from features (required)",
    "data": "older name of 'input'",
    "preprocessing": "steps applied in order; 'preprocessing_*' sections are appended in "
    "sorted order",
    "average_precision": "AP pairing rules and options (required)",
    "mean_average_precision": "mAP grouping and significance options",
    "output": "where results are written (required)",
    "plotting": "mAP vs -log10(p) scatter plot",
    "hydra": "copairs runner's Hydra settings (accepted and ignored)",
}

INPUT_KEYS = {
    "path": Key("path", "the CSV/TSV (optionally .gz) or Parquet file to analyze", required=True),
    "metadata_regex": Key("regex", "columns matching it are metadata", default="^Metadata"),
    "feature_columns": Key("columns", "explicit list of feature columns"),
    "feature_regex": Key("regex", "regex selecting feature columns"),
    "columns": Key("columns", "load only these columns"),
    "use_lazy_filter": Key("bool", "apply 'filter_query' while reading", default=False),
    "filter_query": Key(
        "str",
        "SQL condition on rows, applied while reading (Parquet: "
        "only matching row groups are loaded)",
    ),
}

OUTPUT_KEYS = {
    "directory": Key(
        "path", "folder for '<name>_ap_scores', '<name>_map_results', '<name>_map_plot.png'"
    ),
    "name": Key("str", "base name of the files in 'directory'"),
    "format": Key("str", "'csv' (default) or 'parquet' for files in 'directory'"),
    "path": Key("path", "one file for the final table (older configs)"),
    "save_ap_scores": Key("bool", "with 'path': also write '<stem>_ap_scores<ext>'"),
    "overwrite": Key("bool", "replace existing result files (default false)", default=False),
    "report": Key(
        "bool", "with 'directory': also write '<name>_report.html' (pairmap.report)", default=False
    ),
}

PLOTTING_KEYS = {
    "enabled": Key("bool", "draw the plot", default=True),
    "path": Key("path", "image file (.png, .pdf, .svg); needed with output.path"),
    "format": Key("str", "image format when 'path' has no extension"),
    "title": Key("str", "plot title"),
    "xlabel": Key("str", "x axis label"),
    "ylabel": Key("str", "y axis label"),
    "annotation_prefix": Key("str", "label of the share-of-significant annotation"),
    "figsize": Key("any", "[width, height] in inches"),
    "dpi": Key("int", "resolution"),
}

AP_SECTION = {
    "params": Key("mapping", "arguments of pairmap.average_precision", required=True),
    "multilabel": Key("bool", "pairing columns hold lists of labels", default=False),
}
MAP_SECTION = {
    "params": Key("mapping", "arguments of pairmap.mean_average_precision", required=True)
}

#: Kinds of the function arguments a config may set (others pass through unchecked).
PARAM_KINDS = {
    "pos_sameby": "rule",
    "pos_diffby": "rule",
    "neg_sameby": "rule",
    "neg_diffby": "rule",
    "sameby": "columns",
    "hierarchical_by": "columns",
    "null_size": "int",
    "seed": "int",
    "threshold": "float",
    "batch_size": "int",
    "n_jobs": "int",
    "progress_bar": "bool",
}
AP_REQUIRED = ("pos_sameby", "pos_diffby", "neg_sameby", "neg_diffby")
#: copairs parameter names read as pairmap's.
MAP_ALIASES = {"max_workers": "n_jobs", "cache_dir": "cache"}


def function_params(name: str, skip: int) -> tuple[str, ...]:
    """Keyword names of a public pairmap function after its first ``skip`` data arguments."""
    import pairmap

    params = list(inspect.signature(getattr(pairmap, name)).parameters.values())[skip:]
    return tuple(p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


def _params(raw: Any, section: str, keys: Mapping[str, Key], valid: tuple[str, ...]) -> dict:
    """A function-call section: ``{params: {...}}`` (or, in the first runner version, flat)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"'{section}' must be a mapping with a 'params' key, got {raw!r}")
    if "params" not in raw:  # first copairs runner version: arguments directly in the section
        raw = {
            "params": {k: v for k, v in raw.items() if k not in keys},
            **{k: v for k, v in raw.items() if k in keys and k != "params"},
        }
    out = check_section(raw, keys, section)
    params, where = out["params"], f"{section}.params"
    if section == "mean_average_precision":
        if None in params:  # YAML reads an unquoted ``null:`` key (the parameter) as None
            if "null" in params:
                raise ConfigError(f"'{where}' sets 'null' twice; keep one")
            params["null"] = params.pop(None)
        for old, new in MAP_ALIASES.items():
            if old in params:
                if new in params:
                    raise ConfigError(f"'{where}' sets both '{old}' and '{new}'; keep '{new}'")
                logger.info("%s.%s is read as pairmap's '%s'", where, old, new)
                params[new] = params.pop(old)
    check_keys(params, valid, where)
    out["params"] = {
        k: coerce(PARAM_KINDS.get(k, "any"), v, f"{where}.{k}") for k, v in params.items()
    }
    return out


def _average_precision(cfg: Mapping) -> dict:
    ap = _params(
        cfg["average_precision"],
        "average_precision",
        AP_SECTION,
        function_params("average_precision", 2),
    )
    missing = [k for k in AP_REQUIRED if k not in ap["params"]]
    if missing:
        raise ConfigError(
            f"'average_precision.params' needs {missing} (pairing rules; use [] for none)"
        )
    return ap


def _mean_average_precision(cfg: Mapping) -> dict | None:
    if cfg.get("mean_average_precision") is None:
        return None
    out = _params(
        cfg["mean_average_precision"],
        "mean_average_precision",
        MAP_SECTION,
        function_params("mean_average_precision", 1),
    )
    if "sameby" not in out["params"]:
        raise ConfigError(
            "'mean_average_precision.params.sameby' is required: the metadata column(s) "
            'that define a group (e.g. ["Metadata_broad_sample"])'
        )
    return out["params"]


def _output(raw: Any) -> dict:
    out = check_section(raw, OUTPUT_KEYS, "output")
    has_path, has_dir = "path" in out, ("directory" in out or "name" in out)
    if has_path == has_dir:
        raise ConfigError(
            "'output' needs 'directory' and 'name' (a set of files), or 'path' (one result "
            "file, older configs): either 'path' or 'directory' and 'name', not both and not neither"
        )
    if has_dir and not (out.get("directory") and out.get("name")):
        raise ConfigError("'output' needs both 'directory' and 'name' when one of them is given")
    if has_path and "format" in out:
        raise ConfigError(
            "'output.format' applies to 'output.directory'; with 'output.path' "
            "the format follows the file extension (.csv or .parquet)"
        )
    if has_path and out["report"]:
        raise ConfigError(
            "'output.report' needs 'output.directory' and 'output.name' (the "
            "report is written as '<name>_report.html' there)"
        )
    if has_dir and "save_ap_scores" in out:
        raise ConfigError(
            "'output.save_ap_scores' applies to 'output.path'; with "
            "'output.directory' AP scores are always written"
        )
    out["format"] = str(out.get("format") or "csv").lower()
    if out["format"] not in ("csv", "parquet"):
        raise ConfigError(f"'output.format' must be 'csv' or 'parquet', got {raw['format']!r}")
    if has_path:
        from pairmap._io import table_format

        try:
            table_format(out["path"])
        except ValueError as exc:
            raise ConfigError(f"'output.path': {exc}") from exc
    return out


def _plotting(raw: Any, output: dict, has_map: bool) -> dict | None:
    if raw is None:
        plotting = {"enabled": True} if "directory" in output else None
    else:
        plotting = check_section(raw, PLOTTING_KEYS, "plotting")
        if plotting["enabled"] and "path" in output and not plotting.get("path"):
            raise ConfigError("'plotting.path' is required when 'output.path' is used")
    if plotting is not None and plotting["enabled"] and not has_map:
        logger.warning("plotting needs a 'mean_average_precision' section; no plot is drawn")
        plotting = {**plotting, "enabled": False}
    return plotting


def _top_level(cfg: Any) -> str:
    """Check the section names; return the name of the input section."""
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"the config must be a mapping of sections, got {type(cfg).__name__}")
    for key in cfg:
        if key not in TOP_LEVEL and not str(key).startswith("preprocessing"):
            raise ConfigError(
                f"unknown top-level section '{key}'; valid sections are: "
                f"{', '.join(TOP_LEVEL)}, preprocessing_*"
            )
    if "hydra" in cfg:
        logger.warning(
            "config section 'hydra' is ignored by pairmap (except hydra.run.dir, "
            "the value of ${hydra:runtime.output_dir})"
        )
    if "data" in cfg and "input" in cfg:
        raise ConfigError(
            "the config has both 'input' and 'data' sections (the same "
            "section, old and new name); keep only 'input'"
        )
    input_key = "data" if "data" in cfg else "input"
    for required in (input_key, "average_precision", "output"):
        if cfg.get(required) is None:
            raise ConfigError(f"the config needs a '{required}' section (see docs/cli.md)")
    return input_key


def validate_config(cfg: Mapping) -> dict:
    """Check a raw config and return its normalized form.

    Every section and key is checked: an unknown one raises
    :class:`ConfigError` naming it and listing the valid ones; values are
    converted to their declared kinds (YAML strings such as ``1e4`` become
    numbers where a number is expected).

    Parameters
    ----------
    cfg : mapping
        The raw configuration (see :func:`pairmap.runner.load_config`).

    Returns
    -------
    dict
        Keys ``input_key`` (``"input"`` or ``"data"``: the name used), ``input``,
        ``preprocessing`` (list of ``(step, params)``),
        ``average_precision`` (``{"params": kwargs, "multilabel": bool}``),
        ``mean_average_precision`` (kwargs or None), ``output`` and
        ``plotting`` (dict or None).

    Examples
    --------
    >>> cfg = {"input": {"path": "x.csv"},
    ...        "average_precision": {"params": {"pos_sameby": ["Metadata_a"],
    ...            "pos_diffby": [], "neg_sameby": [], "neg_diffby": ["Metadata_a"]}},
    ...        "output": {"directory": "results", "name": "act"}}
    >>> validate_config(cfg)["output"]["format"]
    'csv'
    >>> validate_config({**cfg, "outptu": {}})
    Traceback (most recent call last):
    ...
    pairmap.runner.loading.ConfigError: unknown top-level section 'outptu'; valid sections are: ...
    """
    input_key = _top_level(cfg)
    data = check_section(cfg[input_key], INPUT_KEYS, input_key)
    if data.get("filter_query") and not data["use_lazy_filter"]:
        logger.warning(
            "'%s.filter_query' is ignored without 'use_lazy_filter: true' (as in "
            "the copairs runner)",
            input_key,
        )
    sections = sorted(k for k in cfg if str(k).startswith("preprocessing"))
    steps = [s for name in sections for s in parse_steps(cfg[name], name)]
    map_params = _mean_average_precision(cfg)
    output = _output(cfg["output"])
    return {
        "input_key": input_key,
        "input": data,
        "preprocessing": steps,
        "average_precision": _average_precision(cfg),
        "mean_average_precision": map_params,
        "output": output,
        "plotting": _plotting(cfg.get("plotting"), output, map_params is not None),
    }
