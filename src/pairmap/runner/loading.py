"""Reading a config file: YAML/JSON parsing and ``${oc.env:...}`` expansion.

The result is the raw configuration (a dict), not yet validated; see
:mod:`pairmap.runner.schema` for the checks.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "expand_env", "load_config"]


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the key, the value and the fix."""


_ENV_RE = re.compile(r"\$\{([^}]*)\}")


def _env_value(expr: str, where: str, hydra: dict) -> str:
    if expr in hydra:
        if hydra[expr] is None:
            raise ConfigError(
                f"'{where}': '${{{expr}}}' needs the Hydra run folder: set 'hydra.run.dir' in "
                f"the config, or write the output folder directly"
            )
        return hydra[expr]
    if not expr.startswith("oc.env:"):
        raise ConfigError(
            f"'{where}': interpolation '${{{expr}}}' is not supported; only "
            f"'${{oc.env:NAME}}', '${{oc.env:NAME,default}}', '${{hydra:runtime.cwd}}' and "
            f"'${{hydra:runtime.output_dir}}' are (write the path directly)"
        )
    name, comma, default = expr[len("oc.env:") :].partition(",")
    name = name.strip()
    if name in os.environ:
        return os.environ[name]
    if comma:
        return default.strip()
    raise ConfigError(
        f"'{where}': environment variable {name!r} is not set (used as '${{{expr}}}'); "
        f"set it or give a default with '${{oc.env:{name},DEFAULT}}'"
    )


def expand_env(value: Any, where: str = "config", hydra: dict | None = None) -> Any:
    """Expand ``${oc.env:NAME}`` / ``${oc.env:NAME,default}`` in every string of ``value``.

    This is the copairs runner's (Hydra) syntax for environment variables.
    ``${hydra:runtime.cwd}`` is the current folder and
    ``${hydra:runtime.output_dir}`` the config's ``hydra.run.dir`` (Hydra's run
    folder); other interpolations are an error naming the key.

    Parameters
    ----------
    value : object
        A config value: mappings and lists are expanded recursively.
    where : str, optional
        The key path, used in error messages.
    hydra : dict, optional
        Values of the ``hydra:`` interpolations (default: from the current
        folder; no run folder).

    Returns
    -------
    object
        ``value`` with the variables replaced.

    Examples
    --------
    >>> expand_env({"path": "${oc.env:PAIRMAP_NO_SUCH_VARIABLE,data}/x.csv"})
    {'path': 'data/x.csv'}
    """
    if hydra is None:
        hydra = {"hydra:runtime.cwd": os.getcwd(), "hydra:runtime.output_dir": None}
    if isinstance(value, Mapping):
        return {
            k: expand_env(v, f"{where}.{k}" if where != "config" else str(k), hydra)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [expand_env(v, f"{where}[{i}]", hydra) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    return _ENV_RE.sub(lambda m: _env_value(m.group(1).strip(), where, hydra), value)


def _hydra_values(raw: Mapping) -> dict:
    """``hydra:runtime.*`` values: the current folder and the config's ``hydra.run.dir``."""
    cwd = os.getcwd()
    values = {"hydra:runtime.cwd": cwd, "hydra:runtime.output_dir": None}
    run = raw.get("hydra", {}).get("run", {}) if isinstance(raw.get("hydra"), Mapping) else {}
    if isinstance(run, Mapping) and isinstance(run.get("dir"), str):
        values["hydra:runtime.output_dir"] = os.path.join(
            cwd, expand_env(run["dir"], "hydra.run.dir", values)
        )
    return values


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
    >>> _ = p.write_text("input:\\n  path: x.csv\\n")
    >>> load_config(p)
    {'input': {'path': 'x.csv'}}
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} not found")
    text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"cannot parse config file {str(path)!r}: {detail}") from exc
    if raw is None:
        raise ConfigError(f"config file {str(path)!r} is empty")
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"config file {str(path)!r} must hold a mapping of sections, got {type(raw).__name__}"
        )
    return expand_env(dict(raw), hydra=_hydra_values(raw))
