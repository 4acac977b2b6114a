"""The run-info sidecar: what an analysis did, for the report's summary.

A run-info file is a small JSON object written next to the result tables
(``run_info.json``). Every key is optional; the report shows what is there.
The schema is documented in ``docs/report.md``.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Value of the ``format`` key that identifies a run-info file.
RUN_INFO_FORMAT = "pairmap-run-info"
RUN_INFO_VERSION = 1

#: Keys a run-info mapping may have (anything else is an error, so typos show).
RUN_INFO_KEYS = {
    "format": "always 'pairmap-run-info'",
    "version": "schema version (1)",
    "title": "report title",
    "analysis": "kind of analysis: 'activity', 'consistency' (draws per-label mAP) or free text",
    "data": "mapping: source (file or description), n_profiles, n_features, ...",
    "average_precision": "mapping: the average_precision parameters (pairing rules, distance...)",
    "mean_average_precision": "mapping: sameby, null_size, threshold, seed, null, hierarchical_by",
    "columns": "mapping: plate, well, dose, compound, label, truth column names for figures",
    "versions": "mapping: package -> version",
    "run_time_s": "wall time of the analysis in seconds",
    "created": "ISO 8601 time stamp",
    "notes": "free text shown under the summary",
}


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("pairmap", "numpy", "pandas", "numba", "matplotlib"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name == "pairmap":
                from pairmap import __version__

                out[name] = __version__
    return out


def _jsonable(value: Any) -> Any:
    """Plain JSON types (tuples -> lists, numpy scalars -> Python numbers, paths -> str)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def make_run_info(
    *,
    title: str | None = None,
    analysis: str | None = None,
    data: Mapping | None = None,
    average_precision: Mapping | None = None,
    mean_average_precision: Mapping | None = None,
    columns: Mapping | None = None,
    run_time_s: float | None = None,
    notes: str | None = None,
) -> dict:
    """Build a run-info mapping (with versions and a time stamp) for :func:`write_report`.

    Parameters
    ----------
    title : str, optional
        Report title.
    analysis : str, optional
        ``"activity"``, ``"consistency"`` (the report then draws mAP per
        label) or free text.
    data : mapping, optional
        ``source``, ``n_profiles``, ``n_features`` and anything else worth
        showing about the input.
    average_precision, mean_average_precision : mapping, optional
        The parameters the analysis used. ``mean_average_precision`` keys
        ``null_size``, ``seed`` and ``null`` let the report redraw the nulls.
    columns : mapping, optional
        Column names for figures: ``plate``, ``well``, ``dose``,
        ``compound``, ``label``, ``truth``.
    run_time_s : float, optional
        Wall time of the analysis.
    notes : str, optional
        Free text.

    Returns
    -------
    dict
        JSON-serialisable; keys with value None are left out.

    Examples
    --------
    >>> info = make_run_info(analysis="activity", run_time_s=1.5,
    ...                      mean_average_precision={"sameby": ("cpd",), "null_size": 100})
    >>> info["mean_average_precision"], sorted(info["versions"])[:2]
    ({'sameby': ['cpd'], 'null_size': 100}, ['matplotlib', 'numba'])
    """
    info = {
        "format": RUN_INFO_FORMAT,
        "version": RUN_INFO_VERSION,
        "title": title,
        "analysis": analysis,
        "data": data,
        "average_precision": average_precision,
        "mean_average_precision": mean_average_precision,
        "columns": columns,
        "versions": _versions(),
        "run_time_s": run_time_s,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "notes": notes,
    }
    return _jsonable({k: v for k, v in info.items() if v is not None})


def check_run_info(info: Mapping | None, where: str = "run info") -> dict:
    """Validate a run-info mapping; return it as a plain dict (``{}`` for None).

    Parameters
    ----------
    info : mapping or None
    where : str
        Name used in error messages (e.g. the file name).

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        Unknown keys, a wrong ``format`` or a section that is not a mapping.

    Examples
    --------
    >>> check_run_info({"analysis": "activity"})
    {'analysis': 'activity'}
    >>> check_run_info({"nul_size": 3})
    Traceback (most recent call last):
    ...
    ValueError: run info: unknown key(s) ['nul_size']; valid keys: analysis, average_precision, ...
    """
    if info is None:
        return {}
    if not isinstance(info, Mapping):
        raise ValueError(f"{where}: must be a JSON object / mapping, got {type(info).__name__}")
    unknown = sorted(set(info) - set(RUN_INFO_KEYS))
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {unknown}; valid keys: {', '.join(sorted(RUN_INFO_KEYS))}"
        )
    if info.get("format", RUN_INFO_FORMAT) != RUN_INFO_FORMAT:
        raise ValueError(f"{where}: 'format' must be {RUN_INFO_FORMAT!r}, got {info['format']!r}")
    for key in ("data", "average_precision", "mean_average_precision", "columns", "versions"):
        if key in info and not isinstance(info[key], Mapping):
            raise ValueError(f"{where}: {key!r} must be a mapping, got {info[key]!r}")
    return dict(info)


def read_run_info(path: str | os.PathLike) -> dict:
    """Read and validate a run-info JSON file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "run_info.json"
    >>> _ = p.write_text('{"format": "pairmap-run-info", "analysis": "activity"}')
    >>> read_run_info(p)["analysis"]
    'activity'
    """
    path = Path(path)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return check_run_info(info, str(path))


def run_info_json(info: Mapping) -> str:
    """The JSON text of a run-info mapping (indented, keys in schema order).

    Examples
    --------
    >>> print(run_info_json({"analysis": "activity"}))
    {
      "analysis": "activity"
    }
    """
    info = check_run_info(info)
    ordered = {k: info[k] for k in RUN_INFO_KEYS if k in info}
    return json.dumps(_jsonable(ordered), indent=2, allow_nan=False)
