"""Pairing rules: which profiles are positives and negatives of each other.

A rule is a ``(sameby, diffby)`` couple. Each side is a list of metadata
column names (all must be equal / all must differ; a single name may be given
as a string) or a dict
``{"all": [...], "any": [...]}`` where ``"any"`` holds at least two columns of
which at least one must be equal (sameby) or differ (diffby). A profile is
never paired with itself.

Entries that are not column names are pandas query expressions (for example
``"Metadata_dose > 1"``): they filter the profiles before pairing and add no
pairing constraint. They are only allowed in ``sameby`` lists (in a ``diffby``
list they could never be satisfied once the rows are filtered).

Columns are turned into integer group codes once (pandas at the edge); the
engine and :func:`find_pairs` then work on those codes with bucketed, linear
memory algorithms (no all-rows-by-all-rows join).
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._typing import Condition, RuleSpec

logger = logging.getLogger(__name__)

__all__ = ["Rule", "assign_reference_index", "find_pairs", "parse_rule"]


@dataclass(frozen=True)
class Rule:
    """A parsed pairing rule: column names for each kind of condition."""

    all_same: tuple[str, ...] = ()
    any_same: tuple[str, ...] = ()
    all_diff: tuple[str, ...] = ()
    any_diff: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return self.all_same + self.any_same + self.all_diff + self.any_diff

    def describe(self) -> str:
        parts = []
        for label, cols in (
            ("all equal", self.all_same),
            ("any equal", self.any_same),
            ("all differ", self.all_diff),
            ("any differ", self.any_diff),
        ):
            if cols:
                parts.append(f"{label}: {list(cols)}")
        return "; ".join(parts) if parts else "no constraint"


def _looks_like_query(entry: str) -> bool:
    return bool(re.search(r"[<>=!~&|()]|\s(in|not|and|or)\s|@", entry))


def _split_side(value, name: str, meta_columns: Iterable[str]):
    """Return (all_cols, any_cols, queries) for one side of a rule."""
    cols = set(meta_columns)
    if value is None:
        return [], [], []
    if isinstance(value, str):
        value = [value]  # one column (or query), as mean_average_precision's sameby accepts
    if isinstance(value, Mapping):
        unknown = set(value) - {"all", "any"}
        if unknown:
            raise ValueError(
                f"{name} dict accepts only the keys 'all' and 'any', got {sorted(unknown)}"
            )
        all_part = list(value.get("all", []) or [])
        any_part = list(value.get("any", []) or [])
    elif isinstance(value, Sequence) or isinstance(value, (tuple, np.ndarray, pd.Index)):
        all_part, any_part = list(value), []
    else:
        raise TypeError(
            f"{name} must be a list of column names or a dict {{'all': [...], 'any': [...]}}, "
            f"got {type(value).__name__}"
        )
    for entry in all_part + any_part:
        if not isinstance(entry, str):
            raise TypeError(f"{name} entries must be strings (column names), got {entry!r}")
    if any_part and len(any_part) < 2:
        raise ValueError(
            f"{name}['any'] needs at least two columns (one column is the same as 'all'), "
            f"got {any_part}"
        )
    queries = [e for e in all_part if e not in cols]
    for entry in queries:
        if not _looks_like_query(entry):
            close = difflib.get_close_matches(entry, [str(c) for c in cols], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"{name} entry {entry!r} is not a metadata column{hint} (entries that are not "
                f"columns must be pandas query expressions such as 'Metadata_dose > 1')"
            )
    for entry in any_part:
        if entry not in cols:
            raise ValueError(
                f"{name}['any'] entry {entry!r} is not a metadata column; "
                f"query expressions are only allowed in the 'all' part of sameby lists"
            )
    all_cols = [e for e in all_part if e in cols]
    return all_cols, any_part, queries


def parse_rule(
    sameby: RuleSpec, diffby: RuleSpec, meta_columns: Iterable[str], *, name: str = ""
) -> tuple[Rule, list[str]]:
    """Parse one ``(sameby, diffby)`` couple into a :class:`Rule` and its query filters.

    Parameters
    ----------
    sameby, diffby : list of str or dict
        Column names (or ``{"all": [...], "any": [...]}``); ``sameby`` entries
        that are not columns are pandas query expressions.
    meta_columns : iterable of str
        The metadata columns available.
    name : str
        Prefix for error messages (``"pos"`` or ``"neg"``).

    Returns
    -------
    rule : Rule
    queries : list of str
        Query expressions found in ``sameby``.

    Examples
    --------
    >>> rule, queries = parse_rule(["Metadata_cpd"], [], ["Metadata_cpd"], name="pos")
    >>> rule.all_same
    ('Metadata_cpd',)
    """
    prefix = f"{name}_" if name else ""
    s_all, s_any, s_queries = _split_side(sameby, f"{prefix}sameby", meta_columns)
    d_all, d_any, d_queries = _split_side(diffby, f"{prefix}diffby", meta_columns)
    if d_queries:
        bad = d_queries[0]
        raise ValueError(
            f"{prefix}diffby entry {bad!r} is not a metadata column. Query expressions filter rows "
            f"and are only allowed in sameby lists; if {bad!r} is meant to be a column, check its "
            f"spelling against the metadata columns"
        )
    same = set(s_all) | set(s_any)
    diff = set(d_all) | set(d_any)
    overlap = sorted(same & diff)
    if overlap:
        raise ValueError(
            f"{prefix}sameby and {prefix}diffby must not share columns, both contain {overlap}"
        )
    rule = Rule(
        tuple(dict.fromkeys(s_all)), tuple(s_any), tuple(dict.fromkeys(d_all)), tuple(d_any)
    )
    return rule, s_queries


def apply_queries(meta: pd.DataFrame, queries: Sequence[str]) -> np.ndarray:
    """Boolean mask of the rows that satisfy every query expression."""
    keep = np.ones(len(meta), dtype=bool)
    for query in dict.fromkeys(queries):
        try:
            result = meta.eval(query)
        except Exception as exc:  # pandas raises many types here
            raise ValueError(
                f"{query!r} is neither a metadata column nor a valid pandas query expression "
                f"({type(exc).__name__}: {exc})"
            ) from None
        result = np.asarray(result)
        if result.dtype != bool or result.shape != (len(meta),):
            raise ValueError(
                f"query expression {query!r} must evaluate to one boolean per row "
                f"(got dtype {result.dtype})"
            )
        keep &= result
    return keep


def encode_columns(
    meta: pd.DataFrame, columns: Sequence[str], *, missing: str = "error"
) -> np.ndarray:
    """Factorize metadata columns into an (n_rows, n_columns) int64 code matrix.

    Missing values are refused with an error naming the column, or, with
    ``missing="unmatched"``, each gets a code of its own (equal to no other).
    """
    codes = np.empty((len(meta), len(columns)), dtype=np.int64)
    for c, col in enumerate(columns):
        if col not in meta.columns:
            raise ValueError(
                f"column {col!r} is not in the metadata (columns: {list(meta.columns)})"
            )
        series = meta[col]
        if isinstance(series, pd.DataFrame):
            raise ValueError(f"column name {col!r} appears more than once in the metadata")
        isna = series.isna().to_numpy()
        if isna.any() and missing != "unmatched":
            first = int(np.flatnonzero(isna)[0])
            raise ValueError(
                f"pairing column {col!r} has {int(isna.sum())} missing value(s) "
                f"(first at row {first}); fill them (e.g. df[{col!r}].fillna('unknown')) or drop "
                f"those rows before pairing"
            )
        try:
            codes[:, c] = pd.factorize(series, sort=False)[0]
        except TypeError:
            raise ValueError(
                f"pairing column {col!r} holds unhashable values such as lists; if it is a "
                f"multi-label column (several labels per profile), pass multilabel_col={col!r}"
            ) from None
        if isna.any():  # factorize gives -1; every missing value gets a code of its own
            start = int(codes[:, c].max()) + 1
            codes[isna, c] = start + np.arange(int(isna.sum()))
    return codes


def _drop_pairs_differing_by_missing(pairs: np.ndarray, meta: pd.DataFrame, rule: Rule):
    """SQL semantics of a missing value: it differs from nothing (it equals nothing already)."""
    if len(pairs) == 0 or not (rule.all_diff or rule.any_diff):
        return pairs
    keep = np.ones(len(pairs), dtype=bool)
    for col in rule.all_diff:
        isna = meta[col].isna().to_numpy()
        keep &= ~(isna[pairs[:, 0]] | isna[pairs[:, 1]])
    if rule.any_diff:
        some = np.zeros(len(pairs), dtype=bool)
        for col in rule.any_diff:
            values = meta[col]
            isna = values.isna().to_numpy()
            codes = pd.factorize(values)[0]
            known = ~(isna[pairs[:, 0]] | isna[pairs[:, 1]])
            some |= known & (codes[pairs[:, 0]] != codes[pairs[:, 1]])
        keep &= some
    return pairs[keep]


@dataclass(frozen=True)
class EncodedRule:
    """A rule as index arrays into the columns of a code matrix (used by kernels)."""

    all_same: np.ndarray
    any_same: np.ndarray
    all_diff: np.ndarray
    any_diff: np.ndarray

    @classmethod
    def from_rule(cls, rule: Rule, columns: Sequence[str]) -> EncodedRule:
        pos = {c: i for i, c in enumerate(columns)}

        def idx(cols):
            return np.asarray([pos[c] for c in cols], dtype=np.int64)

        return cls(idx(rule.all_same), idx(rule.any_same), idx(rule.all_diff), idx(rule.any_diff))

    def as_tuple(self):
        return self.all_same, self.any_same, self.all_diff, self.any_diff


def group_keys(codes: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """One int64 key per row for the combination of ``codes[:, cols]`` (0 everywhere if no cols)."""
    n = codes.shape[0]
    if len(cols) == 0:
        return np.zeros(n, dtype=np.int64)
    key = codes[:, cols[0]].copy()
    for c in cols[1:]:
        # keep keys dense (0..n_groups-1) so the product never overflows
        width = int(codes[:, c].max()) + 1
        key = dense_ranks(key * width + codes[:, c])
    return key


def dense_ranks(values: np.ndarray) -> np.ndarray:
    """Rank of each value among the distinct values (``np.unique(values, return_inverse=True)[1]``).

    Non-negative integers whose range is at most 16 times their number are
    ranked by counting, not sorting: the same ranks, without the sort's cache
    misses on rows in random order (transient memory: 5 bytes per value of the range).

    Examples
    --------
    >>> dense_ranks(np.array([7, 3, 7, 0])).tolist()
    [2, 1, 2, 0]
    """
    values = np.asarray(values, dtype=np.int64)
    if len(values) and values.min() >= 0 and int(values.max()) < 16 * len(values) + 1024:
        present = np.zeros(int(values.max()) + 1, dtype=bool)
        present[values] = True
        rank = np.cumsum(present, dtype=np.int32 if len(present) < 2**31 else np.int64)
        rank -= 1
        return rank[values].astype(np.int64)
    return np.unique(values, return_inverse=True)[1].reshape(-1).astype(np.int64)


def rule_mask(rule: EncodedRule, codes, qrows, cols, *, bucketed=False, excluded=None):
    """Vectorized (len(qrows), len(cols)) boolean mask of the pairs that satisfy ``rule``.

    ``codes``: (n, n_columns) int64 group codes; a row is never paired with itself.

    ``bucketed``: every pair already shares the "all" sameby columns;
    ``excluded[a]``: the a-th "all" diffby column already differs for every pair.
    """
    mask = qrows[:, None] != cols[None, :]
    if not bucketed:
        for c in rule.all_same:
            mask &= codes[qrows, c][:, None] == codes[cols, c][None, :]
    for a, c in enumerate(rule.all_diff):
        if excluded is None or not excluded[a]:
            mask &= codes[qrows, c][:, None] != codes[cols, c][None, :]
    for cols_any, same in ((rule.any_same, True), (rule.any_diff, False)):
        if len(cols_any):
            hit = np.zeros_like(mask)
            for c in cols_any:
                left, right = codes[qrows, c][:, None], codes[cols, c][None, :]
                hit |= (left == right) if same else (left != right)
            mask &= hit
    return mask


def overlap_error(i: int, j: int) -> ValueError:
    """The error for rows ``i`` and ``j`` that satisfy both the positive and the negative rule."""
    return ValueError(
        f"rows {i} and {j} satisfy both the positive and the negative rule; a pair cannot be "
        f"both. Make the rules exclusive, e.g. put the pos_sameby columns in neg_diffby"
    )


@dataclass(frozen=True)
class Buckets:
    """Rows grouped by key: ``order[starts[k]:starts[k+1]]`` are the rows with key ``k``."""

    keys: np.ndarray
    order: np.ndarray
    starts: np.ndarray

    @classmethod
    def build(cls, keys: np.ndarray) -> Buckets:
        order = np.argsort(keys, kind="stable").astype(np.int64)
        n_keys = int(keys.max()) + 1 if len(keys) else 0
        starts = np.zeros(n_keys + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys, minlength=n_keys), out=starts[1:])
        return cls(keys, order, starts)

    def sizes(self) -> np.ndarray:
        return np.diff(self.starts)


def find_pairs(
    meta: pd.DataFrame,
    sameby: RuleSpec,
    diffby: RuleSpec,
    multilabel_col: str | None = None,
    *,
    missing: str = "error",
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """All pairs of rows that satisfy a pairing rule.

    Rows are bucketed by their ``"all"`` sameby columns, so memory is linear in
    the number of rows plus the number of pairs returned (never all rows by all
    rows).

    Parameters
    ----------
    meta : pandas.DataFrame
        Metadata, one row per profile.
    sameby, diffby : list of str or dict
        The rule (see the module documentation). Query expressions in
        ``sameby`` are not accepted here: filter ``meta`` first.
    multilabel_col : str, optional
        A column holding a list of labels per profile, used in the ``"all"``
        part of ``sameby`` (the pair shares a label) or of ``diffby`` (the
        pair shares no label); see :mod:`pairmap.multilabel`.
    missing : {"error", "unmatched"}, default "error"
        Missing values (NaN/None) in a rule column: an error naming the
        column, or ``"unmatched"``: as in SQL, a missing value is neither
        equal to nor different from any value, so a pair whose rule needs
        such a comparison is not formed (copairs' ``find_pairs`` behaviour).
        Not combined with ``multilabel_col``.

    Returns
    -------
    numpy.ndarray or tuple
        ``(n_pairs, 2)`` int64 array of row positions ``(i, j)`` with ``i < j``,
        sorted lexicographically. When ``multilabel_col`` is in ``sameby``: a
        tuple ``(pairs, labels)``, one row per pair *and* shared label (a pair
        sharing two labels appears twice), ordered by label, then ``(i, j)``;
        ``labels[k]`` is the label of ``pairs[k]``.

    Examples
    --------
    >>> import pandas as pd
    >>> meta = pd.DataFrame({"Metadata_cpd": ["a", "a", "b", "b"], "Metadata_plate": [1, 2, 1, 1]})
    >>> find_pairs(meta, ["Metadata_cpd"], ["Metadata_plate"]).tolist()
    [[0, 1]]
    >>> meta["Metadata_target"] = [["A", "B"], ["B"], ["A"], ["C"]]
    >>> pairs, labels = find_pairs(meta, ["Metadata_target"], [], multilabel_col="Metadata_target")
    >>> pairs.tolist(), labels.tolist()
    ([[0, 2], [0, 1]], ['A', 'B'])
    >>> find_pairs(meta, [], ["Metadata_target"], multilabel_col="Metadata_target").tolist()
    [[0, 3], [1, 2], [1, 3], [2, 3]]
    >>> meta.loc[0, "Metadata_plate"] = None
    >>> find_pairs(meta, ["Metadata_cpd"], ["Metadata_plate"], missing="unmatched").tolist()
    []
    """
    from ._kernels.pairs import count_rule_pairs, fill_rule_pairs

    if not isinstance(meta, pd.DataFrame):
        raise TypeError(f"meta must be a pandas DataFrame, got {type(meta).__name__}")
    rule, queries = parse_rule(sameby, diffby, meta.columns)
    if queries:
        raise ValueError(
            f"find_pairs does not filter rows: {queries[0]!r} is not a metadata column. "
            f"Filter first, e.g. meta = meta.query({queries[0]!r})"
        )
    if not rule.columns:
        raise ValueError("find_pairs needs at least one column in sameby or diffby")
    if missing not in ("error", "unmatched"):
        raise ValueError(f"missing={missing!r} is not supported; use 'error' or 'unmatched'")
    if multilabel_col is not None:
        from .multilabel import find_multilabel_pairs

        return find_multilabel_pairs(meta, rule, multilabel_col)
    columns = list(dict.fromkeys(rule.columns))
    codes = encode_columns(meta, columns, missing=missing)
    enc = EncodedRule.from_rule(rule, columns)
    buckets = Buckets.build(group_keys(codes, enc.all_same))
    counts = count_rule_pairs(codes, buckets.keys, buckets.order, buckets.starts, *enc.as_tuple())
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    pairs = np.empty((int(offsets[-1]), 2), dtype=np.int64)
    fill_rule_pairs(
        codes, buckets.keys, buckets.order, buckets.starts, *enc.as_tuple(), offsets, pairs
    )
    if missing == "unmatched":
        pairs = _drop_pairs_differing_by_missing(pairs, meta, rule)
    return pairs


def _describe_condition(condition) -> str:
    if isinstance(condition, str):
        return repr(condition)
    arr = np.asarray(condition)
    return "(an all-False boolean mask)" if arr.dtype == bool else "(index labels)"


def assign_reference_index(
    df: pd.DataFrame,
    condition: Condition,
    reference_col: str = "Metadata_Reference_Index",
    default_value: int = -1,
) -> pd.DataFrame:
    """Give the rows matching ``condition`` their own label in ``reference_col``.

    This is the standard trick for phenotypic activity: control rows each get
    a unique value, so with ``reference_col`` in ``pos_sameby`` controls never
    form positive pairs, and with it in ``neg_diffby`` negatives are
    treatment-versus-control only.

    Parameters
    ----------
    df : pandas.DataFrame
        Metadata (or a full profile table).
    condition : str, boolean array-like or index labels
        A pandas query string (``"Metadata_broad_sample == 'DMSO'"``), a
        boolean mask with one value per row, or index labels of the rows.
    reference_col : str
        Name of the column to write.
    default_value : int
        Value for rows that do not match.

    Returns
    -------
    pandas.DataFrame
        A copy of ``df`` with ``reference_col`` set: matching rows get their
        row position (0..n-1), the others ``default_value``.

    Raises
    ------
    ValueError
        If ``condition`` matches no row (a misspelt value would otherwise
        leave every row at ``default_value`` and fail later with a
        misleading "no negative pairs" error), or is not a valid condition.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Metadata_cpd": ["DMSO", "x", "DMSO"]})
    >>> assign_reference_index(df, "Metadata_cpd == 'DMSO'")["Metadata_Reference_Index"].tolist()
    [0, -1, 2]
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    n = len(df)
    if isinstance(condition, str):
        try:
            mask = np.asarray(df.eval(condition))
        except Exception as exc:
            raise ValueError(
                f"condition {condition!r} is not a valid pandas query on this frame "
                f"({type(exc).__name__}: {exc})"
            ) from None
        if mask.dtype != bool or mask.shape != (n,):
            raise ValueError(f"condition {condition!r} must give one boolean per row")
    else:
        arr = np.asarray(condition)
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise ValueError(
                    f"boolean condition has length {arr.shape[0] if arr.ndim else 0}, "
                    f"the frame has {n} rows"
                )
            mask = arr
        else:
            labels = pd.Index(arr if arr.ndim else [arr.item()])
            missing = labels.difference(df.index)
            if len(missing):
                raise ValueError(
                    f"condition lists index labels not in the frame: {list(missing[:5])}"
                )
            mask = df.index.isin(labels)
    if not mask.any():
        raise ValueError(
            f"assign_reference_index: condition {_describe_condition(condition)} matches none of "
            f"the {n} rows, so no row would be a reference and every {reference_col!r} would be "
            f"{default_value}; check the condition (column name and value spelling, e.g. "
            "'DMSO' vs 'dmso')"
        )
    if default_value in set(np.flatnonzero(mask).tolist()):
        raise ValueError(
            f"default_value={default_value} collides with a reference row position; "
            f"use a negative default_value such as -1"
        )
    out = df.copy()
    values = np.full(n, default_value, dtype=np.int64)
    values[mask] = np.flatnonzero(mask)
    out[reference_col] = values
    return out
