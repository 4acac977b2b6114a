"""copairs.matching on pairmap: find_pairs, Matcher, assign_reference_index, UnpairedException."""

from __future__ import annotations

import itertools
import warnings
from collections import namedtuple
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

import pairmap

__all__ = [
    "Matcher",
    "UnpairedException",
    "assign_reference_index",
    "dict_to_dframe",
    "find_pairs",
    "reverse_index",
]


class UnpairedException(Exception):
    """No row could be paired with another (copairs' exception type)."""


def _validate(sameby, diffby):
    """Strings are accepted with copairs' DeprecationWarning and made into 1-tuples."""
    out = []
    for name, value in (("sameby", sameby), ("diffby", diffby)):
        if isinstance(value, str):
            warnings.warn(
                f"Passing strings to '{name}' is deprecated and will be removed in v0.5.3.",
                DeprecationWarning,
                stacklevel=3,
            )
            value = (value,)
        out.append(value)
    if not (len(out[0]) or len(out[1])):
        raise ValueError("sameby, diffby: at least one should be provided")
    return tuple(out)


def _columns(side) -> list[str]:
    if isinstance(side, Mapping):
        return [*side.get("all", []), *side.get("any", [])]
    return list(side)


def find_pairs(dframe: pd.DataFrame, sameby, diffby, rev: bool = False) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, equal in ``sameby`` and different in ``diffby``.

    Missing labels never match (they are neither equal nor different), as in
    copairs. Row labels of ``dframe``'s index are returned, as uint32.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"c": ["a", "a", "b", None], "p": [1, 2, 1, 2]})
    >>> find_pairs(df, ["c"], ["p"]).tolist()
    [[0, 1]]
    """
    sameby, diffby = _validate(sameby, diffby)
    if rev:
        sameby, diffby = diffby, sameby
    if set(_columns(sameby)) & set(_columns(diffby)):
        raise ValueError("sameby and diffby must be disjoint lists")
    sameby = dict(sameby) if isinstance(sameby, Mapping) else list(sameby)
    diffby = dict(diffby) if isinstance(diffby, Mapping) else list(diffby)
    meta = dframe.reset_index(drop=True)
    pairs = pairmap.find_pairs(meta, sameby, diffby, missing="unmatched")
    labels = np.asarray(dframe.index)
    return np.ascontiguousarray(labels[pairs], dtype=np.uint32).reshape(-1, 2)


def assign_reference_index(
    df: pd.DataFrame,
    condition,
    reference_col: str = "Metadata_Reference_Index",
    default_value: int = -1,
    inplace: bool = False,
):
    """Give rows matching ``condition`` their index label in ``reference_col`` (copairs' rule).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"cpd": ["DMSO", "x", "DMSO"]}, index=[10, 11, 12])
    >>> assign_reference_index(df, "cpd == 'DMSO'")["Metadata_Reference_Index"].tolist()
    [10, -1, 12]
    """
    out = df if inplace else df.copy()
    if isinstance(condition, str):
        condition = out.query(condition).index
    values = pd.Series(default_value, index=out.index)
    values.loc[condition] = condition
    out[reference_col] = values.to_numpy()
    return None if inplace else out


def reverse_index(col: pd.Series) -> pd.Series:
    """Row positions of each value of ``col`` (missing values left out)."""
    return pd.Series(col.groupby(col, observed=True).indices, name=col.name)


def dict_to_dframe(dict_pairs, sameby):
    """Matcher.get_all_pairs output as a frame: key column(s), ``ix1``, ``ix2``.

    Examples
    --------
    >>> dict_to_dframe({"a": [(0, 1)], "b": [(2, 3), (2, 4)]}, "c").values.tolist()
    [['a', 0, 1], ['b', 2, 3], ['b', 2, 4]]
    """
    if not dict_pairs:
        raise ValueError("dict_pairs empty")
    counts = [len(v) for v in dict_pairs.values()]
    keys = list(
        itertools.chain.from_iterable([k] * n for k, n in zip(dict_pairs, counts, strict=True))
    )
    if keys and isinstance(keys[0], tuple):
        keys_df = pd.DataFrame([tuple(k) for k in keys])
    else:
        name = sameby[0] if isinstance(sameby, list) else sameby
        keys_df = pd.DataFrame({name: keys})
    pairs = pd.DataFrame(
        list(itertools.chain.from_iterable(dict_pairs.values())), columns=["ix1", "ix2"]
    )
    return pd.concat([keys_df, pairs], axis=1)


def _side(value) -> dict:
    if isinstance(value, str):
        return {"all": [value], "any": []}
    if isinstance(value, Mapping):
        return {"all": list(value.get("all", [])), "any": list(value.get("any", []))}
    return {"all": list(value), "any": []}


class Matcher:
    """All pairs (or random null pairs) under sameby/diffby constraints (copairs' Matcher).

    Pairs are computed by :func:`pairmap.find_pairs`; ``get_all_pairs``
    groups them by the values of the ``"all"`` sameby columns, as copairs does.
    As in copairs' Matcher, a missing value equals nothing and differs from
    everything (:func:`find_pairs` follows copairs' SQL rule instead).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"c": ["a", "a", "b", "b"], "p": [1, 2, 1, 1]})
    >>> Matcher(df, ["c", "p"], seed=0).get_all_pairs("c", ["p"])
    {'a': [(0, 1)]}
    """

    def __init__(self, dframe: pd.DataFrame, columns: Sequence[str], seed: int):
        self.columns = list(columns)
        self.original_index = (
            None if dframe.index.equals(pd.RangeIndex(len(dframe))) else dframe.index
        )
        self.dframe = dframe[self.columns].reset_index(drop=True)
        self.rng = np.random.default_rng(seed)

    def _check(self, sameby: dict, diffby: dict) -> None:
        for side in (sameby, diffby):
            for key in ("all", "any"):
                for col in side[key]:
                    if col not in self.columns:
                        raise ValueError(f"Invalid query or column name: {col}")
        if set(sameby["all"] + sameby["any"]) & set(diffby["all"] + diffby["any"]):
            raise ValueError("sameby and diffby must be disjoint lists")
        if not any([sameby["all"], sameby["any"], diffby["all"], diffby["any"]]):
            raise ValueError("sameby, diffby: at least one should be provided")
        for name, side in (("sameby", sameby), ("diffby", diffby)):
            if len(side["any"]) == 1:
                raise ValueError(f"{name}: any should have more than one column")

    def get_all_pairs(self, sameby, diffby, original_index: bool = True) -> dict:
        """Pairs by key: the ``"all"`` sameby value(s), or ``None`` without them."""
        sameby, diffby = _side(sameby), _side(diffby)
        self._check(sameby, diffby)
        pairs = pairmap.find_pairs(self._unique_missing(), sameby, diffby)
        keys_from = pairs[:, 0]
        if original_index and self.original_index is not None:
            pairs = np.asarray(self.original_index)[pairs]
        if not sameby["all"]:
            return {None: [tuple(p) for p in pairs.tolist()]} if len(pairs) else {}
        key_cols = sameby["all"]
        values = self.dframe[key_cols].to_numpy()[keys_from]
        composed = namedtuple("ComposedKey", key_cols)
        out: dict = {}
        for key, pair in zip(map(tuple, values.tolist()), pairs.tolist(), strict=True):
            key = key[0] if len(key_cols) == 1 else composed(*key)
            out.setdefault(key, []).append(tuple(pair))
        return out

    def _unique_missing(self) -> pd.DataFrame:
        """The frame with each missing value replaced by a value of its own."""
        frame = self.dframe.copy()
        for col in frame.columns:
            isna = frame[col].isna().to_numpy()
            if isna.any():
                values = frame[col].astype(object).to_numpy().copy()
                for i in np.flatnonzero(isna):  # a fresh object equals only itself
                    values[i] = object()
                frame[col] = values
        return frame

    def sample_null_pair(self, diffby, n_tries: int = 5):
        """A random pair of rows that differ in ``diffby`` (missing values differ from all)."""
        side = _side(diffby)
        if len(side["any"]) == 1:
            raise ValueError("diffby: any should have more than one column")
        values = self.dframe
        for _ in range(n_tries):
            i = int(self.rng.integers(len(values)))
            ok = np.ones(len(values), dtype=bool)
            ok[i] = False
            for col in side["all"]:
                if not pd.isna(values[col].iloc[i]):
                    ok &= (values[col] != values[col].iloc[i]).to_numpy()
            if side["any"]:
                same = [
                    (values[c] == values[c].iloc[i]).to_numpy()
                    for c in side["any"]
                    if not pd.isna(values[c].iloc[i])
                ]
                if same:
                    ok &= ~np.logical_and.reduce(same)
            candidates = np.flatnonzero(ok)
            if len(candidates):
                return i, int(self.rng.choice(candidates))
        raise ValueError("Number of tries exhusted. Could not find a valid pair")
