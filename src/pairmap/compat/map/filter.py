"""copairs.map.filter: query-like entries in pairing rules, and input validation."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd

__all__ = [
    "apply_filters",
    "evaluate_and_filter",
    "extract_filters",
    "flatten_str_list",
    "validate_pipeline_input",
]


def validate_pipeline_input(meta: pd.DataFrame, feats, columns) -> None:
    """Refuse missing labels in ``columns``, a row count mismatch and NaN features.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> validate_pipeline_input(pd.DataFrame({"a": [1, None]}), np.zeros((2, 1)), ["a"])
    Traceback (most recent call last):
    ...
    ValueError: metadata columns should not have null values.
    """
    if meta[list(columns)].isna().any(axis=None):
        raise ValueError("metadata columns should not have null values.")
    if len(meta) != len(feats):
        raise ValueError("Metadata and features must have the same number of rows.")
    if np.isnan(np.asarray(feats, dtype=float)).any():
        raise ValueError("features should not have null values.")


def flatten_str_list(*args) -> list:
    """All column names of rule sides (strings, lists or ``{all, any}`` dicts), deduplicated.

    Examples
    --------
    >>> sorted(flatten_str_list("a", ["b", "a"], {"any": ["c", "d"]}))
    ['a', 'b', 'c', 'd']
    """
    columns = set()
    for side in args:
        if isinstance(side, str):
            columns.add(side)
        elif isinstance(side, dict):
            columns.update(itertools.chain.from_iterable(side.values()))
        else:
            columns.update(side)
    return list(columns)


_COLUMN_IN_QUERY = re.compile(r"(\w+)\s*[=<>!]+")


def extract_filters(columns, df_columns):
    """Split entries into query expressions and the column names they and the others use.

    Examples
    --------
    >>> extract_filters(["a", "b > 1"], ["a", "b"])
    (['b > 1'], ['a', 'b'])
    """
    parsed, queries = [], []
    for entry in columns:
        if entry in df_columns:
            parsed.append(entry)
            continue
        used = [c for c in _COLUMN_IN_QUERY.findall(entry) if c in df_columns]
        if not used:
            raise ValueError(f"Invalid query or metadata column name: {entry}")
        queries.append(entry)
        parsed.extend(used)
        if len(parsed) != len(set(parsed)):
            raise ValueError(f"Duplicate queries for column: {entry}")
    return queries, parsed


def apply_filters(df: pd.DataFrame, query_list) -> pd.DataFrame:
    """Rows matching every query (combined with ``&``); an empty result is an error.

    Examples
    --------
    >>> import pandas as pd
    >>> apply_filters(pd.DataFrame({"a": [1, 2, 3]}), ["a > 1", "a < 3"])["a"].tolist()
    [2]
    """
    if not query_list:
        return df
    combined = " & ".join(f"({q})" for q in query_list)
    try:
        out = df.query(combined)
        if out.empty:
            raise ValueError(f"No data matched the query: {combined}")
    except Exception as exc:
        raise ValueError(f"Invalid combined query expression: {combined}. Error: {exc}") from exc
    return out


def evaluate_and_filter(df: pd.DataFrame, columns):
    """Apply the query entries of ``columns`` to ``df``; return it and the column names used.

    Examples
    --------
    >>> import pandas as pd
    >>> df, cols = evaluate_and_filter(pd.DataFrame({"a": [1, 2], "b": [3, 4]}), ["a", "b > 3"])
    >>> len(df), cols
    (1, ['a', 'b'])
    """
    queries, parsed = extract_filters(columns, df.columns)
    return apply_filters(df, queries), parsed
