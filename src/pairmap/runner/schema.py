"""The config schema, declared once: every section's keys with kind, default and meaning.

A key is a :class:`Key` (value kind, meaning, default, required); a section is
a mapping of key names to keys, checked by :func:`check_section`, which
coerces each value with the converter of its kind. Preprocessing steps
declare their parameters with the same :class:`Key` (see
:mod:`pairmap.runner.steps`). Error messages are built in one place: they
name the key, the value and the fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pairmap.runner.loading import ConfigError

__all__ = ["Key", "check_keys", "check_section", "coerce"]

_MISSING = object()


@dataclass(frozen=True)
class Key:
    """One config key: its value kind, what it means, and its default."""

    kind: str
    doc: str
    default: Any = _MISSING
    required: bool = False

    @property
    def has_default(self) -> bool:
        return self.default is not _MISSING


def _number(value: Any, where: str, integer: bool) -> int | float:
    """Numbers, also when YAML read them as strings (``1e4``, ``5e-2``: YAML 1.1 floats need a dot)."""
    what = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"'{where}' must be {what}, got {value!r}")
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip().replace("_", ""))
        except ValueError:
            raise ConfigError(
                f"'{where}' must be {what}, got the string {value!r}; write a number such as "
                f"10000, 1e4 or 0.05 (unquoted)"
            ) from None
    if not integer:
        return float(number) if isinstance(value, str) else number
    if isinstance(number, float):
        if not number.is_integer():
            raise ConfigError(f"'{where}' must be {what}, got {value!r} (not a whole number)")
        return int(number)
    return number


def _as_bool(value, where):
    if not isinstance(value, bool):  # the strings "no"/"false" would be truthy
        raise ConfigError(
            f"'{where}' must be true or false (a YAML boolean, unquoted), got {value!r}"
        )
    return value


def _as_str(value, where):
    if not isinstance(value, str):
        raise ConfigError(f"'{where}' must be a string, got {value!r}")
    return value


def _as_path(value, where):
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise ConfigError(f"'{where}' must be a file or folder path, got {value!r}")
    text = os.fspath(value)
    if text.startswith(("http://", "https://", "s3://")):
        return text
    # relative paths stay relative to the current folder; "a/../b" is read lexically, as
    # Hydra configs write "${hydra:runtime.output_dir}/../other" before that folder exists
    return os.path.normpath(os.path.expanduser(text))


def _as_columns(value, where):
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(c, str) for c in value):
        return list(value)
    raise ConfigError(f"'{where}' must be a column name or a list of column names, got {value!r}")


def _as_regex(value, where):
    _as_str(value, where)
    try:
        re.compile(value)
    except re.error as exc:
        raise ConfigError(
            f"'{where}' is not a valid regular expression ({value!r}): {exc}"
        ) from exc
    return value


def _as_mapping(value, where):
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"'{where}' must be a mapping (key: value), got {value!r}")
    return dict(value)


def _as_rule(value, where):
    """A pairing rule side: a column, a list of columns, or ``{all: [...], any: [...]}``."""
    if isinstance(value, str):  # copairs accepts a single column name (deprecated there)
        return [value]
    if isinstance(value, (list, tuple, Mapping)):
        return dict(value) if isinstance(value, Mapping) else list(value)
    raise ConfigError(
        f"'{where}' must be a list of column names ([] for none) or {{all: [...], any: [...]}}, "
        f"got {value!r}"
    )


_KINDS: dict[str, Callable[[Any, str], Any]] = {
    "any": lambda value, where: value,
    "bool": _as_bool,
    "str": _as_str,
    "int": lambda value, where: _number(value, where, integer=True),
    "float": lambda value, where: _number(value, where, integer=False),
    "path": _as_path,
    "columns": _as_columns,
    "regex": _as_regex,
    "mapping": _as_mapping,
    "rule": _as_rule,
}


def coerce(kind: str, value: Any, where: str) -> Any:
    """Check and convert one value of the given kind (``None`` stays ``None``).

    Examples
    --------
    >>> coerce("int", "1e4", "mean_average_precision.params.null_size")
    10000
    >>> coerce("float", "5e-2", "mean_average_precision.params.threshold")
    0.05
    """
    if value is None and kind not in ("mapping",):
        return None
    return _KINDS[kind](value, where)


def check_keys(mapping: Any, valid: Mapping | tuple, where: str) -> None:
    """Raise :class:`ConfigError` for the first key of ``mapping`` not in ``valid``."""
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"'{where}' must be a mapping (key: value), got {mapping!r}")
    allowed = [str(k) for k in valid]
    for key in mapping:
        if key not in valid:
            raise ConfigError(
                f"unknown key '{where}.{key}'; valid keys in '{where}' are: {', '.join(allowed)}"
            )


def check_section(mapping: Any, keys: Mapping[str, Key], where: str) -> dict:
    """Check a section against its declared keys; fill in defaults; coerce values.

    Examples
    --------
    >>> keys = {"null_size": Key("int", "draws", default=10000), "seed": Key("int", "seed")}
    >>> check_section({"seed": "3"}, keys, "params")
    {'null_size': 10000, 'seed': 3}
    """
    mapping = {} if mapping is None else mapping
    check_keys(mapping, keys, where)
    out = {}
    for name, key in keys.items():
        if name in mapping:
            out[name] = coerce(key.kind, mapping[name], f"{where}.{name}")
        elif key.required:
            raise ConfigError(f"'{where}.{name}' is required: {key.doc}")
        elif key.has_default:
            out[name] = key.default
    return out
