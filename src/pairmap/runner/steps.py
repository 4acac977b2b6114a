"""Preprocessing steps: one function each, registered with its parameters.

Adding a step means writing one function ``f(df, params, ctx) -> df`` and
decorating it with :func:`step`, which declares its name, meaning and
parameters (:class:`~pairmap.runner.schema.Key`); validation, defaults,
error messages and the documentation table come from that declaration.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pairmap.runner.loading import ConfigError
from pairmap.runner.schema import Key, check_keys, check_section

logger = logging.getLogger(__name__)

__all__ = ["STEPS", "StepContext", "parse_steps", "preprocess", "step"]


@dataclass(frozen=True)
class StepContext:
    """What steps may need besides the table: the input section's column rules."""

    input: Mapping = field(default_factory=dict)

    def feature_columns(self, df: pd.DataFrame) -> list[str]:
        """Feature columns of ``df`` by the input section's rules."""
        if self.input.get("feature_columns") is not None:
            return [c for c in self.input["feature_columns"] if c in df.columns]
        if self.input.get("feature_regex") is not None:
            return [c for c in df.columns if re.search(self.input["feature_regex"], str(c))]
        return [c for c in df.columns if c not in set(self.metadata_columns(df))]

    def metadata_columns(self, df: pd.DataFrame) -> list[str]:
        """Metadata columns of ``df`` (matching ``metadata_regex``)."""
        meta_re = self.input.get("metadata_regex", "^Metadata")
        return [c for c in df.columns if re.search(meta_re, str(c))]


@dataclass(frozen=True)
class Step:
    """A registered preprocessing step."""

    func: Callable[[pd.DataFrame, dict, StepContext], pd.DataFrame]
    doc: str
    params: dict[str, Key]


STEPS: dict[str, Step] = {}
#: Other names of the same steps (pairmap's first config version).
STEP_ALIASES = {"assign_reference": "apply_assign_reference"}


def step(name: str, doc: str, **params: Key) -> Callable:
    """Register a preprocessing step ``name`` with its parameters.

    Examples
    --------
    >>> @step("example_drop_all", "drop every row (doc example)")
    ... def _drop_all(df, params, ctx):
    ...     return df.iloc[:0]
    >>> sorted(STEPS["example_drop_all"].params)
    []
    >>> del STEPS["example_drop_all"]
    """

    def register(func):
        STEPS[name] = Step(func, doc, dict(params))
        return func

    return register


def _columns_present(df: pd.DataFrame, columns: list[str], where: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(
            f"'{where}': columns not in the table: {missing[:5]}; the table has "
            f"{len(df.columns)} columns, e.g. {list(df.columns[:5])}"
        )


def _step_list(raw: Any, section: str) -> list:
    if raw is None:
        return []
    if isinstance(raw, Mapping):
        check_keys(raw, ("steps",), section)
        raw = raw.get("steps") or []
    if not isinstance(raw, list):
        raise ConfigError(
            f"'{section}' must be a list of steps (or a mapping with 'steps'), "
            f"got {type(raw).__name__}"
        )
    return raw


def parse_steps(raw: Any, section: str = "preprocessing") -> list[tuple[str, dict]]:
    """Check the steps of one preprocessing section; return ``(name, params)`` couples.

    Examples
    --------
    >>> parse_steps({"steps": [{"type": "dropna", "params": {"columns": "Metadata_x"}}]})
    [('dropna', {'columns': ['Metadata_x']})]
    """
    valid = ", ".join([*STEPS, *STEP_ALIASES])
    steps = []
    for i, entry in enumerate(_step_list(raw, section)):
        where = f"{section}[{i}]"
        if not isinstance(entry, Mapping) or "type" not in entry:
            raise ConfigError(f"'{where}' must be a mapping with a 'type' key (one of: {valid})")
        kind = entry["type"]
        name = STEP_ALIASES.get(kind, kind)
        if name not in STEPS:
            raise ConfigError(
                f"'{where}': unknown preprocessing step {kind!r}; valid steps are: {valid}"
            )
        if "params" in entry:
            check_keys(entry, ("type", "params"), where)
            params, pwhere = entry["params"] or {}, f"{where}.params"
        else:  # first copairs runner version: parameters next to 'type'
            params, pwhere = {k: v for k, v in entry.items() if k != "type"}, where
        params = _aliased(name, params)
        steps.append((name, check_section(params, STEPS[name].params, f"{pwhere} ({kind})")))
    return steps


#: Parameter names of earlier copairs runner versions, per step.
_PARAM_ALIASES = {"filter_active": {"activity_csv": "activity_file"}}


def _aliased(name: str, params: Mapping) -> dict:
    params = dict(params) if isinstance(params, Mapping) else params
    for old, new in _PARAM_ALIASES.get(name, {}).items():
        if isinstance(params, dict) and old in params and new not in params:
            params[new] = params.pop(old)
    return params


def preprocess(df: pd.DataFrame, steps: list[tuple[str, dict]], input: Mapping | None = None):
    """Apply checked preprocessing steps in order.

    Parameters
    ----------
    df : pandas.DataFrame
        The loaded table.
    steps : list of (str, dict)
        ``(step_name, params)`` couples, as from :func:`parse_steps`.
    input : mapping, optional
        The ``input`` section (metadata/feature column rules).

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
    ctx = StepContext(input or {})
    for name, params in steps:
        name = STEP_ALIASES.get(name, name)
        params = check_section(params, STEPS[name].params, name)  # defaults (idempotent)
        before = len(df)
        df = STEPS[name].func(df, params, ctx)
        logger.info(
            "preprocessing %s: %d -> %d rows, %d columns", name, before, len(df), df.shape[1]
        )
        if len(df) == 0:
            raise ConfigError(f"preprocessing step '{name}' {params} left no rows")
    return df


def _query_mask(df: pd.DataFrame, query: str, where: str) -> np.ndarray:
    try:
        mask = df.eval(query) if query not in df.columns else df[query]
    except Exception as exc:  # pandas raises many types for a bad expression
        raise ConfigError(
            f"{where} query {query!r} failed: {type(exc).__name__}: {exc}; "
            f"use pandas query syntax with the table's column names"
        ) from exc
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != (len(df),):
        raise ConfigError(f"{where} query {query!r} must give one true/false value per row")
    return mask


# --------------------------------------------------------------------------- the steps
# (imported for registration; kept in their own module to keep this one short)
from pairmap.runner import _step_functions  # noqa: E402,F401
