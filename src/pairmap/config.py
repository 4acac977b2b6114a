"""YAML/JSON-configured analyses (``pairmap run CONFIG.yaml``).

The config format keeps the section and key names of the copairs example
runner, so its users' configs run unchanged (as long as they use features
pairmap has): sections ``data`` (alias ``input``), ``preprocessing``,
``average_precision``, ``mean_average_precision``, ``output`` and
``plotting``. Unlike that runner, an unknown section, key or preprocessing
step is an error that names it and lists the valid ones, so a typo never
silently changes an analysis.

See ``docs/cli.md`` for the full reference.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

__all__ = [
    "ConfigError",
    "RunResult",
    "load_config",
    "preprocess",
    "run_config",
    "validate_config",
]


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the key and the fix."""


# --------------------------------------------------------------------------- schema

_TOP_LEVEL = {
    "data": "input table and how to split metadata from features (required)",
    "input": "alias of 'data' (newer copairs runner configs)",
    "preprocessing": "list of preprocessing steps, applied in order",
    "average_precision": "AP pairing rules and options (required)",
    "mean_average_precision": "mAP grouping and significance options",
    "output": "where results are written (required)",
    "plotting": "mAP vs -log10(p) scatter plot",
    "hydra": "copairs runner's Hydra settings (accepted and ignored)",
}

_DATA_KEYS = {
    "path": "CSV (.csv, .csv.gz, .tsv) or Parquet file",
    "metadata_regex": "regex selecting metadata columns (default '^Metadata')",
    "feature_columns": "explicit list of feature columns",
    "feature_regex": "regex selecting feature columns",
    "columns": "only load these columns",
}
_DATA_UNSUPPORTED = {
    "use_lazy_filter": "lazy SQL filtering is not supported; load the file and use a "
    "'filter' preprocessing step (pandas query syntax) instead",
    "filter_query": "lazy SQL filtering is not supported; use a 'filter' preprocessing step "
    "(pandas query syntax) instead",
}

_OUTPUT_KEYS = {
    "path": "file for the final table (mAP results, or AP scores without mAP)",
    "save_ap_scores": "with 'path': also write AP scores to '<stem>_ap_scores<ext>'",
    "directory": "folder for '<name>_ap_scores', '<name>_map_results', '<name>_map_plot.png'",
    "name": "base name of the files in 'directory'",
    "format": "'csv' (default) or 'parquet' for files in 'directory'",
    "overwrite": "replace existing result files (default true)",
}

_PLOTTING_KEYS = {
    "enabled": "draw the plot (default true when this section exists)",
    "path": "image file (.png, .pdf, .svg); needed with output.path",
    "format": "image format when 'path' has no extension",
    "title": "plot title",
    "xlabel": "x axis label",
    "ylabel": "y axis label",
    "annotation_prefix": "label of the share-of-significant annotation",
    "figsize": "[width, height] in inches",
    "dpi": "resolution",
}

_AP_SECTION_KEYS = {"params": "arguments of pairmap.average_precision", "multilabel": "must be false"}
_AP_REQUIRED = ("pos_sameby", "pos_diffby", "neg_sameby", "neg_diffby")
_AP_FALLBACK_PARAMS = (
    *_AP_REQUIRED,
    "distance",
    "ties",
    "max_memory",
    "batch_size",
    "n_jobs",
    "progress_bar",
)
_MAP_FALLBACK_PARAMS = (
    "sameby",
    "null_size",
    "threshold",
    "seed",
    "null",
    "hierarchical_by",
    "cache",
    "n_jobs",
    "progress_bar",
)
#: copairs parameter names that map to a pairmap parameter.
_MAP_ALIASES = {"max_workers": "n_jobs", "cache_dir": "cache"}


def _signature_params(func_name: str, skip: int, fallback: tuple[str, ...]) -> tuple[str, ...]:
    """Keyword names of a public pairmap function (minus its first ``skip`` data args)."""
    try:
        import pairmap

        func = getattr(pairmap, func_name)
        params = list(inspect.signature(func).parameters.values())[skip:]
        names = tuple(p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
        return names or fallback
    except (ImportError, AttributeError):  # pragma: no cover - before the module lands
        return fallback


# --------------------------------------------------------------------------- helpers


def _where(*parts: object) -> str:
    return ".".join(str(p) for p in parts)


def _check_keys(mapping: Mapping, valid: Mapping | tuple, where: str) -> None:
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"'{where}' must be a mapping (key: value), got {type(mapping).__name__}")
    allowed = list(valid)
    for key in mapping:
        if key not in allowed:
            raise ConfigError(
                f"unknown key '{_where(where, key)}'; valid keys in '{where}' are: "
                f"{', '.join(allowed)}"
            )


_ENV_RE = re.compile(r"\$\{([^}]*)\}")


def _expand(value: Any, where: str = "config") -> Any:
    """Expand ``${oc.env:NAME}`` / ``${oc.env:NAME,default}`` (copairs runner syntax)."""
    if isinstance(value, Mapping):
        return {k: _expand(v, _where(where, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def repl(match: re.Match) -> str:
        expr = match.group(1).strip()
        if not expr.startswith("oc.env:"):
            raise ConfigError(
                f"'{where}': interpolation '${{{expr}}}' is not supported; only "
                f"'${{oc.env:NAME}}' and '${{oc.env:NAME,default}}' are (write the path directly)"
            )
        name, _, default = expr[len("oc.env:") :].partition(",")
        name = name.strip()
        if name in os.environ:
            return os.environ[name]
        if _:
            return default.strip()
        raise ConfigError(
            f"'{where}': environment variable {name!r} is not set (used as '${{{expr}}}'); "
            f"set it or give a default with '${{oc.env:{name},DEFAULT}}'"
        )

    return _ENV_RE.sub(repl, value)


def load_config(path: str | os.PathLike) -> dict:
    """Read a YAML (``.yaml``/``.yml``) or JSON config file into a dict.

    ``${oc.env:NAME}`` and ``${oc.env:NAME,default}`` inside strings are
    replaced by environment variables, as in the copairs runner.

    Parameters
    ----------
    path : str or os.PathLike
        The config file.

    Returns
    -------
    dict
        The raw (not yet validated) configuration.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.yaml"
    >>> _ = p.write_text("data:\\n  path: x.csv\\n")
    >>> load_config(p)
    {'data': {'path': 'x.csv'}}
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} not found")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(text)
        else:
            raw = yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"cannot parse config file {str(path)!r}: {detail}") from exc
    if raw is None:
        raise ConfigError(f"config file {str(path)!r} is empty")
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"config file {str(path)!r} must hold a mapping of sections, got {type(raw).__name__}"
        )
    return _expand(dict(raw))


# --------------------------------------------------------------------------- preprocessing


def _feature_columns(df: pd.DataFrame, data: Mapping) -> list[str]:
    if data.get("feature_columns") is not None:
        cols = list(data["feature_columns"])
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ConfigError(f"data.feature_columns names columns not in the table: {missing[:5]}")
        return cols
    if data.get("feature_regex") is not None:
        return [c for c in df.columns if re.search(data["feature_regex"], str(c))]
    meta_re = data.get("metadata_regex", "^Metadata")
    return [c for c in df.columns if not re.search(meta_re, str(c))]


def _step_filter(df, params, data):
    query = params["query"]
    try:
        out = df.query(query)
    except Exception as exc:  # pandas raises many types for a bad expression
        raise ConfigError(f"filter query {query!r} failed: {exc}") from exc
    logger.info("filter %r: %d -> %d rows", query, len(df), len(out))
    return out


def _step_assign_reference(df, params, data):
    from pairmap import assign_reference_index

    kwargs = dict(params)
    condition = kwargs.pop("condition")
    try:
        return assign_reference_index(df, condition, **kwargs)
    except Exception as exc:
        if isinstance(exc, (ValueError, TypeError, KeyError)):
            raise ConfigError(f"assign_reference with condition {condition!r}: {exc}") from exc
        raise ConfigError(
            f"assign_reference condition {condition!r} failed: {type(exc).__name__}: {exc}"
        ) from exc


def _step_dropna(df, params, data):
    columns = params.get("columns")
    if columns is None:
        columns = [c for c in df.columns if re.search(data.get("metadata_regex", "^Metadata"), c)]
    elif isinstance(columns, str):
        columns = [columns]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(f"dropna: columns not in the table: {missing}")
    out = df.dropna(subset=list(columns))
    logger.info("dropna on %d columns: %d -> %d rows", len(columns), len(df), len(out))
    return out


def _step_remove_nan_features(df, params, data):
    feats = _feature_columns(df, data)
    bad = [c for c in feats if df[c].isna().any()]
    if bad:
        logger.info("removing %d feature columns with NaN: %s", len(bad), bad[:5])
        df = df.drop(columns=bad)
    return df


def _step_aggregate_replicates(df, params, data):
    groupby = params["groupby"]
    groupby = [groupby] if isinstance(groupby, str) else list(groupby)
    feats = _feature_columns(df, data)
    out = df.groupby(groupby, as_index=False, observed=True, dropna=False)[feats].median()
    logger.info("aggregate_replicates by %s: %d -> %d rows", groupby, len(df), len(out))
    return out


def _step_filter_single_replicates(df, params, data):
    groupby = params["groupby"]
    groupby = [groupby] if isinstance(groupby, str) else list(groupby)
    min_rep = int(params.get("min_replicates", 2))
    sizes = df.groupby(groupby, observed=True, dropna=False)[groupby[0]].transform("size")
    out = df[sizes.to_numpy() >= min_rep]
    logger.info("filter_single_replicates (< %d): %d -> %d rows", min_rep, len(df), len(out))
    return out


def _step_add_column(df, params, data):
    column, query = params["column"], params["query"]
    try:
        mask = df.eval(query)
    except Exception as exc:
        raise ConfigError(f"add_column query {query!r} failed: {exc}") from exc
    df = df.copy()
    df[column] = np.asarray(mask, dtype=bool)
    return df


@dataclass(frozen=True)
class _Step:
    func: Callable
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    doc: str = ""


STEPS: dict[str, _Step] = {
    "filter": _Step(_step_filter, ("query",), (), "keep rows matching a pandas query"),
    "assign_reference": _Step(
        _step_assign_reference,
        ("condition",),
        ("reference_col", "default_value"),
        "give rows matching 'condition' their own reference index (pairmap.assign_reference_index)",
    ),
    "dropna": _Step(_step_dropna, (), ("columns",), "drop rows with NaN in 'columns' (default: metadata)"),
    "remove_nan_features": _Step(
        _step_remove_nan_features, (), (), "drop feature columns that contain NaN"
    ),
    "aggregate_replicates": _Step(
        _step_aggregate_replicates, ("groupby",), (), "median of features per group"
    ),
    "filter_single_replicates": _Step(
        _step_filter_single_replicates,
        ("groupby",),
        ("min_replicates",),
        "drop groups with fewer than 'min_replicates' rows (default 2)",
    ),
    "add_column": _Step(_step_add_column, ("column", "query"), (), "boolean column from a query"),
}
#: Other names of the same steps (copairs runner versions).
STEP_ALIASES = {"apply_assign_reference": "assign_reference"}
#: copairs runner steps pairmap does not provide, with the reason.
UNSUPPORTED_STEPS = {
    "split_multilabel": "multi-label pairing is not supported by pairmap",
    "merge_metadata": "merge external metadata before running pairmap",
    "filter_active": "filter the table with a 'filter' step or beforehand",
    "filter_by_external_csv": "filter the table with a 'filter' step or beforehand",
}


def _normalize_steps(raw: Any) -> list[tuple[str, dict]]:
    if raw is None:
        return []
    if isinstance(raw, Mapping):
        _check_keys(raw, ("steps",), "preprocessing")
        raw = raw.get("steps") or []
    if not isinstance(raw, list):
        raise ConfigError(
            f"'preprocessing' must be a list of steps (or a mapping with 'steps'), "
            f"got {type(raw).__name__}"
        )
    valid = ", ".join([*STEPS, *STEP_ALIASES])
    steps = []
    for i, step in enumerate(raw):
        where = f"preprocessing[{i}]"
        if not isinstance(step, Mapping) or "type" not in step:
            raise ConfigError(f"'{where}' must be a mapping with a 'type' key (one of: {valid})")
        kind = step["type"]
        if kind in UNSUPPORTED_STEPS:
            raise ConfigError(
                f"'{where}': preprocessing step '{kind}' is not supported "
                f"({UNSUPPORTED_STEPS[kind]}); valid steps are: {valid}"
            )
        name = STEP_ALIASES.get(kind, kind)
        if name not in STEPS:
            raise ConfigError(
                f"'{where}': unknown preprocessing step '{kind}'; valid steps are: {valid}"
            )
        spec = STEPS[name]
        if "params" in step:
            _check_keys(step, ("type", "params"), where)
            params = step["params"] or {}
            pwhere = f"{where}.params"
        else:  # first copairs runner version: parameters next to 'type'
            params = {k: v for k, v in step.items() if k != "type"}
            pwhere = where
        _check_keys(params, (*spec.required, *spec.optional), f"{pwhere} ({kind})")
        missing = [k for k in spec.required if k not in params]
        if missing:
            raise ConfigError(f"'{pwhere}': step '{kind}' needs the parameter(s) {missing}")
        steps.append((name, dict(params)))
    return steps


def preprocess(df: pd.DataFrame, steps: list[tuple[str, dict]], data: Mapping | None = None):
    """Apply validated preprocessing steps in order.

    Parameters
    ----------
    df : pandas.DataFrame
        The loaded table.
    steps : list of (str, dict)
        ``(step_name, params)`` couples, as in ``validate_config(...)["preprocessing"]``.
    data : mapping, optional
        The ``data`` section (for the metadata/feature column rules).

    Returns
    -------
    pandas.DataFrame
        The preprocessed table.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Metadata_x": [1, 2, 3], "f": [0.1, 0.2, 0.3]})
    >>> len(preprocess(df, [("filter", {"query": "Metadata_x > 1"})]))
    2
    """
    data = data or {}
    for name, params in steps:
        df = STEPS[name].func(df, params, data)
        if len(df) == 0:
            raise ConfigError(f"preprocessing step '{name}' {params} left no rows")
    return df


# --------------------------------------------------------------------------- validation


def _check_bool(mapping: Mapping, key: str, where: str) -> None:
    """Accept only real booleans: the string "no" or "false" would be truthy."""
    if key in mapping and not isinstance(mapping[key], bool):
        raise ConfigError(
            f"'{where}.{key}' must be true or false (a YAML boolean, unquoted), "
            f"got {mapping[key]!r}"
        )


def _user_path(value: Any) -> str:
    """A config path with ``~`` expanded (relative paths stay relative to the current folder)."""
    return os.path.expanduser(os.fspath(value))


def _section_params(cfg: Mapping, section: str, valid: tuple[str, ...]) -> dict:
    raw = cfg.get(section) or {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"'{section}' must be a mapping, got {type(raw).__name__}")
    if "params" in raw:
        extra = [k for k in raw if k not in ("params", "multilabel")]
        if extra:
            raise ConfigError(
                f"unknown key '{section}.{extra[0]}'; put function arguments under "
                f"'{section}.params' (valid keys in '{section}': params)"
            )
        params = dict(raw.get("params") or {})
        where = f"{section}.params"
    else:  # first copairs runner version: arguments directly in the section
        params = {k: v for k, v in raw.items() if k != "multilabel"}
        where = section
    if section == "mean_average_precision" and None in params:
        # YAML reads an unquoted ``null:`` key (the parameter ``null``) as None.
        if "null" in params:
            raise ConfigError(f"'{where}' sets 'null' twice; keep one")
        params["null"] = params.pop(None)
    for old, new in _MAP_ALIASES.items():
        if old in params and new in valid and section == "mean_average_precision":
            if new in params:
                raise ConfigError(f"'{where}' sets both '{old}' and '{new}'; keep '{new}'")
            logger.info("%s.%s is read as pairmap's '%s'", where, old, new)
            params[new] = params.pop(old)
    _check_keys(params, valid, where)
    return params


def validate_config(cfg: Mapping) -> dict:
    """Check a raw config and return its normalized form.

    Every section and key is checked: an unknown one raises
    :class:`ConfigError` naming it and listing the valid ones.

    Parameters
    ----------
    cfg : mapping
        The raw configuration (see :func:`load_config`).

    Returns
    -------
    dict
        Keys ``data``, ``preprocessing`` (list of ``(step, params)``),
        ``average_precision`` (kwargs), ``mean_average_precision`` (kwargs or
        None), ``output`` and ``plotting`` (dict or None).

    Examples
    --------
    >>> cfg = {"data": {"path": "x.csv"},
    ...        "average_precision": {"params": {"pos_sameby": ["Metadata_a"],
    ...            "pos_diffby": [], "neg_sameby": [], "neg_diffby": ["Metadata_a"]}},
    ...        "output": {"path": "ap.csv"}}
    >>> validate_config(cfg)["output"]["path"]
    'ap.csv'
    >>> validate_config({**cfg, "outptu": {}})
    Traceback (most recent call last):
    ...
    pairmap.config.ConfigError: unknown top-level section 'outptu'; valid sections are: ...
    """
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"the config must be a mapping of sections, got {type(cfg).__name__}")
    for key in cfg:
        if key not in _TOP_LEVEL:
            raise ConfigError(
                f"unknown top-level section '{key}'; valid sections are: {', '.join(_TOP_LEVEL)}"
            )
    if "hydra" in cfg:
        logger.warning("config section 'hydra' is ignored by pairmap")
    if "data" in cfg and "input" in cfg:
        raise ConfigError("the config has both 'data' and 'input' sections; keep only 'data'")
    data_key = "input" if "input" in cfg else "data"
    for required in (data_key, "average_precision", "output"):
        if required not in cfg or cfg[required] is None:
            raise ConfigError(f"the config needs a '{required}' section (see docs/cli.md)")

    data = cfg[data_key]
    if isinstance(data, Mapping):
        for key, reason in _DATA_UNSUPPORTED.items():
            if key in data:
                raise ConfigError(f"'{data_key}.{key}': {reason}")
    _check_keys(data, _DATA_KEYS, data_key)
    if not data.get("path"):
        raise ConfigError(f"'{data_key}.path' is required: the CSV or Parquet file to analyze")
    data = {"metadata_regex": "^Metadata", **data, "path": _user_path(data["path"])}
    for key in ("metadata_regex", "feature_regex"):
        if data.get(key) is not None:
            try:
                re.compile(data[key])
            except re.error as exc:
                raise ConfigError(f"'{data_key}.{key}' is not a valid regex: {exc}") from exc

    steps = _normalize_steps(cfg.get("preprocessing"))

    ap_section = cfg["average_precision"]
    if not isinstance(ap_section, Mapping):
        raise ConfigError("'average_precision' must be a mapping with a 'params' key")
    if ap_section.get("multilabel"):
        raise ConfigError(
            "'average_precision.multilabel: true' is not supported: pairmap has no multi-label "
            "pairing; remove the key or set it to false"
        )
    ap_valid = _signature_params("average_precision", 2, _AP_FALLBACK_PARAMS)
    ap_params = _section_params(cfg, "average_precision", ap_valid)
    missing = [k for k in _AP_REQUIRED if k not in ap_params]
    if missing:
        raise ConfigError(
            f"'average_precision.params' needs {missing} (pairing rules; use [] for none)"
        )

    map_params = None
    if cfg.get("mean_average_precision") is not None:
        map_valid = _signature_params("mean_average_precision", 1, _MAP_FALLBACK_PARAMS)
        map_params = _section_params(cfg, "mean_average_precision", map_valid)
        if "sameby" not in map_params:
            raise ConfigError(
                "'mean_average_precision.params.sameby' is required: the metadata column(s) "
                "that define a group (e.g. [\"Metadata_broad_sample\"])"
            )

    output = cfg["output"]
    _check_keys(output, _OUTPUT_KEYS, "output")
    for key in ("overwrite", "save_ap_scores"):
        _check_bool(output, key, "output")
    has_path, has_dir = "path" in output, ("directory" in output or "name" in output)
    if has_path == has_dir:
        raise ConfigError(
            "'output' needs either 'path' (one result file) or 'directory' and 'name' "
            "(a set of files), not both and not neither"
        )
    if has_dir and not (output.get("directory") and output.get("name")):
        raise ConfigError("'output' needs both 'directory' and 'name' when one of them is given")
    if has_path and ("format" in output):
        raise ConfigError(
            "'output.format' applies to 'output.directory'; with 'output.path' the format follows "
            "the file extension (.csv or .parquet)"
        )
    if has_dir and "save_ap_scores" in output:
        raise ConfigError(
            "'output.save_ap_scores' applies to 'output.path'; with 'output.directory' AP scores "
            "are always written"
        )
    fmt = str(output.get("format", "csv")).lower()
    if fmt not in ("csv", "parquet"):
        raise ConfigError(f"'output.format' must be 'csv' or 'parquet', got {output['format']!r}")
    output = {**output, "format": fmt}
    for key in ("path", "directory"):
        if output.get(key):
            output[key] = _user_path(output[key])
    if has_path:
        from pairmap._io import table_format

        try:
            table_format(output["path"])
        except ValueError as exc:
            raise ConfigError(f"'output.path': {exc}") from exc

    plotting = None
    if cfg.get("plotting") is not None:
        _check_keys(cfg["plotting"], _PLOTTING_KEYS, "plotting")
        _check_bool(cfg["plotting"], "enabled", "plotting")
        plotting = {"enabled": True, **cfg["plotting"]}
        if plotting.get("path"):
            plotting["path"] = _user_path(plotting["path"])
        if plotting["enabled"] and has_path and not plotting.get("path"):
            raise ConfigError("'plotting.path' is required when 'output.path' is used")
    elif has_dir:
        plotting = {"enabled": True}
    if plotting is not None and plotting["enabled"] and map_params is None:
        logger.warning("plotting needs a 'mean_average_precision' section; no plot is drawn")
        plotting = {**plotting, "enabled": False}

    return {
        "data": data,
        "preprocessing": steps,
        "average_precision": ap_params,
        "mean_average_precision": map_params,
        "output": output,
        "plotting": plotting,
    }


# --------------------------------------------------------------------------- running


@dataclass
class RunResult:
    """What :func:`run_config` produced."""

    ap_scores: pd.DataFrame
    map_results: pd.DataFrame | None
    written: list[Path] = field(default_factory=list)
    n_features: int = 0


def _read_table(data: Mapping) -> pd.DataFrame:
    path = Path(data["path"])
    if path.is_dir():
        raise IsADirectoryError(
            f"data.path {str(path)!r} is a folder; give the CSV or Parquet file inside it"
        )
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} not found (data.path; relative paths "
                                f"are read from the current folder {os.getcwd()!r})")
    from pairmap._io import table_format

    try:
        fmt = table_format(path)
    except ValueError as exc:
        raise ConfigError(f"data.path: {exc}") from exc
    columns = data.get("columns")
    if columns is not None:
        columns = [columns] if isinstance(columns, str) else list(columns)
        available = _table_columns(path, fmt)
        missing = [c for c in columns if c not in set(available)]
        if missing:
            raise ConfigError(
                f"data.columns names columns not in {str(path)!r}: {missing[:5]}; "
                f"the file has {len(available)} columns, e.g. {available[:5]}"
            )
    if fmt == "parquet":
        df = pd.read_parquet(path, columns=columns)
    else:
        try:
            df = pd.read_csv(path, usecols=columns, sep="\t" if fmt == "tsv" else ",")
        except pd.errors.EmptyDataError as exc:
            raise ConfigError(f"data.path: {str(path)!r} is empty (no header row)") from exc
    logger.info("loaded %s: %d rows x %d columns", path, len(df), df.shape[1])
    return df


def _table_columns(path: Path, fmt: str) -> list[str]:
    """Column names of a table file without reading its data."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    try:
        header = pd.read_csv(path, nrows=0, sep="\t" if fmt == "tsv" else ",")
    except pd.errors.EmptyDataError as exc:
        raise ConfigError(f"data.path: {str(path)!r} is empty (no header row)") from exc
    return [str(c) for c in header.columns]


def _split(df: pd.DataFrame, data: Mapping) -> tuple[pd.DataFrame, np.ndarray]:
    meta_re = data["metadata_regex"]
    meta_cols = [c for c in df.columns if re.search(meta_re, str(c))]
    feat_cols = _feature_columns(df, data)
    feat_cols = [c for c in feat_cols if c not in set(meta_cols)]
    if not meta_cols:
        raise ConfigError(f"no metadata column matches data.metadata_regex {meta_re!r}")
    if not feat_cols:
        raise ConfigError("no feature columns left (check data.metadata_regex / feature_regex)")
    nonnum = [c for c in feat_cols if not pd.api.types.is_numeric_dtype(df[c])]
    if nonnum:
        raise ConfigError(
            f"feature columns must be numeric, but {nonnum[:5]} are not; name metadata columns so "
            f"data.metadata_regex ({meta_re!r}) matches them"
        )
    feats = df[feat_cols].to_numpy(dtype=np.float64)
    if not np.isfinite(feats).all():
        bad = [c for c in feat_cols if not np.isfinite(df[c].to_numpy(dtype=float)).all()]
        raise ConfigError(
            f"{len(bad)} feature columns hold NaN or infinite values (e.g. {bad[:3]}); add a "
            f"'remove_nan_features' preprocessing step or clean the data"
        )
    logger.info("%d metadata columns, %d features", len(meta_cols), len(feat_cols))
    return df[meta_cols].reset_index(drop=True), feats


def _with_suffix(path: Path, suffix: str) -> Path:
    name = path.name
    for ext in (".csv.gz", ".tsv.gz"):
        if name.lower().endswith(ext):
            return path.with_name(name[: -len(ext)] + suffix + name[-len(ext) :])
    return path.with_name(path.stem + suffix + path.suffix)


def run_config(
    config: Mapping | str | os.PathLike,
    *,
    n_jobs: int | None = None,
    progress_bar: bool | None = None,
) -> RunResult:
    """Run a configured analysis: load, preprocess, AP, mAP, write results.

    All outputs of one run are written atomically together: if anything
    fails, no result file is created or changed.

    Parameters
    ----------
    config : mapping or path
        A raw config dict or a YAML/JSON file.
    n_jobs : int or None, optional
        Overrides ``n_jobs`` of both AP and mAP when given.
    progress_bar : bool or None, optional
        Overrides ``progress_bar`` of both AP and mAP when given.

    Returns
    -------
    RunResult
        AP scores, mAP results (or None) and the written paths.

    Examples
    --------
    >>> run_config("analysis.yaml")  # doctest: +SKIP
    """
    raw = load_config(config) if isinstance(config, (str, os.PathLike)) else _expand(dict(config))
    cfg = validate_config(raw)
    import pairmap
    from pairmap._io import StagedOutputs
    from pairmap.plotting import plot_map_scatter

    df = _read_table(cfg["data"])
    df = preprocess(df, cfg["preprocessing"], cfg["data"])
    meta, feats = _split(df, cfg["data"])

    ap_kwargs = dict(cfg["average_precision"])
    map_kwargs = dict(cfg["mean_average_precision"] or {})
    for kwargs in (ap_kwargs, map_kwargs):
        if n_jobs is not None:
            kwargs["n_jobs"] = n_jobs
        if progress_bar is not None:
            kwargs["progress_bar"] = progress_bar
    logger.info("average precision for %d profiles", len(meta))
    ap_scores = pairmap.average_precision(meta, feats, **ap_kwargs)

    map_results = None
    if cfg["mean_average_precision"] is not None:
        sameby = map_kwargs.pop("sameby")
        logger.info("mean average precision by %s", sameby)
        map_results = pairmap.mean_average_precision(ap_scores, sameby, **map_kwargs)
        if "corrected_p_value" in map_results.columns:
            with np.errstate(divide="ignore"):
                map_results["-log10(p-value)"] = -np.log10(
                    map_results["corrected_p_value"].to_numpy(dtype=float)
                )

    out, plot_cfg = cfg["output"], cfg["plotting"]
    fig = None
    if plot_cfg is not None and plot_cfg["enabled"] and map_results is not None:
        options = {
            k: plot_cfg[k]
            for k in ("title", "xlabel", "ylabel", "annotation_prefix", "dpi")
            if k in plot_cfg
        }
        if "figsize" in plot_cfg:
            options["figsize"] = tuple(plot_cfg["figsize"])
        fig = plot_map_scatter(
            map_results,
            threshold=float(map_kwargs.get("threshold", 0.05)),
            null_size=map_kwargs.get("null_size"),
            **options,
        )

    overwrite = out.get("overwrite", True)
    with StagedOutputs(overwrite=overwrite) as staged:
        if "path" in out:
            final_path = Path(out["path"])
            staged.write_dataframe(map_results if map_results is not None else ap_scores, final_path)
            if out.get("save_ap_scores") and map_results is not None:
                staged.write_dataframe(ap_scores, _with_suffix(final_path, "_ap_scores"))
            if fig is not None:
                plot_path = Path(plot_cfg["path"])
                kw = {}
                if not plot_path.suffix:
                    kw["format"] = plot_cfg.get("format", "png")
                staged.write_figure(fig, plot_path, bbox_inches="tight", **kw)
        else:
            directory, name, fmt = Path(out["directory"]), out["name"], out["format"]
            ext = ".parquet" if fmt == "parquet" else ".csv"
            staged.write_dataframe(ap_scores, directory / f"{name}_ap_scores{ext}")
            if map_results is not None:
                staged.write_dataframe(map_results, directory / f"{name}_map_results{ext}")
            if fig is not None:
                image = str(plot_cfg.get("format", "png"))
                staged.write_figure(fig, directory / f"{name}_map_plot.{image}",
                                    bbox_inches="tight")
    for p in staged.written:
        logger.info("wrote %s", p)
    return RunResult(ap_scores, map_results, list(staged.written), n_features=feats.shape[1])
