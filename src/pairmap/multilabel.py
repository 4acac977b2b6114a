"""Multi-label metadata (targets, mechanisms of action): label sets, pairs and AP.

Semantics (those of copairs 0.5.5's ``copairs.map.multilabel`` and
``matching.find_pairs_multilabel``, restated)
-----------------------------------------------------------------------
One metadata column, the *label column*, holds a list of labels per profile
(``["DRD2", "HTR2A"]``). Two profiles *share a label* when their lists
intersect.

* The label column must appear in the positive rule's sameby ("all") and in
  the negative rule's diffby ("all"), and nowhere else: positives are defined
  per label, negatives are profiles with no label in common. Any other
  placement is an error (copairs fails on it too).
* For every profile i and every label T it carries, (i, T) is a query. Its
  positives are the other profiles carrying T that satisfy the rest of the
  positive rule; its negatives are the profiles whose label set is disjoint
  from i's that satisfy the rest of the negative rule -- the same negatives for
  every label of i. Profiles that share some other label with i, but not T,
  are neither. Positives and negatives are ranked by similarity exactly as
  in single-label AP (ties: positives first, or the expected AP).
* The result is in long form: one row per (profile, label), in the order of
  ``meta.explode(column)``, with the label in the label column.
  (i, T) without positives, or whose profile has no negatives, gets NaN and
  zero counts; copairs leaves the rows without positives out instead.
* Label lists may be Python lists or tuples, NumPy arrays or Arrow list
  values; empty lists, missing values, duplicated labels within a list,
  labels of mixed types and plain strings are refused (use
  :func:`split_multilabel` for ``"A|B"`` strings).

This module is the pandas edge; the engine is
:mod:`pairmap._retrieval_multilabel`.
"""

from __future__ import annotations

import logging
import numbers
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ._retrieval_multilabel import LabelSets
from .pairing import Buckets, EncodedRule, Rule, encode_columns, group_keys

logger = logging.getLogger(__name__)

__all__ = ["encode_labels", "split_multilabel", "split_rules"]


def split_multilabel(df: pd.DataFrame, column: str, sep: str = "|") -> pd.DataFrame:
    """Turn ``sep``-separated label strings into label lists (``"A|B"`` -> ``["A", "B"]``).

    Parameters
    ----------
    df : pandas.DataFrame
        Metadata or a full profile table.
    column : str
        The column holding the label strings.
    sep : str, default "|"
        Separator (split exactly like ``str.split(sep)``; no whitespace is
        stripped).

    Returns
    -------
    pandas.DataFrame
        A copy of ``df`` whose ``column`` holds lists of strings.

    Raises
    ------
    ValueError
        When the column is missing, holds missing values or non-strings, or a
        string has an empty or repeated label (``"A||B"``, ``"A|A"``); the
        message names the row.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"Metadata_target": ["DRD2|HTR2A", "DRD2"]})
    >>> split_multilabel(df, "Metadata_target")["Metadata_target"].tolist()
    [['DRD2', 'HTR2A'], ['DRD2']]
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if not isinstance(sep, str) or not sep:
        raise ValueError(f"sep must be a non-empty string, got {sep!r}")
    _require_column(df, column)
    values = df[column].tolist()
    out = []
    for pos, value in enumerate(values):
        if not isinstance(value, str):
            what = "a missing value" if _is_missing(value) else f"{type(value).__name__} {value!r}"
            raise ValueError(
                f"split_multilabel: column {column!r} holds {what} at row {pos} "
                f"(index {df.index[pos]!r}); every value must be a {sep!r}-separated string. "
                f"Drop or fill those rows first (e.g. df.dropna(subset=[{column!r}]))"
            )
        parts = value.split(sep)
        if "" in parts:
            raise ValueError(
                f"split_multilabel: column {column!r} row {pos} ({value!r}) has an empty label; "
                f"remove doubled, leading or trailing {sep!r} separators"
            )
        if len(set(parts)) != len(parts):
            dup = next(p for p in parts if parts.count(p) > 1)
            raise ValueError(
                f"split_multilabel: column {column!r} row {pos} ({value!r}) lists {dup!r} twice"
            )
        out.append(parts)
    result = df.copy()
    result[column] = pd.Series(out, index=df.index, dtype=object)
    return result


def _require_column(df: pd.DataFrame, column) -> None:
    if column not in df.columns:
        raise ValueError(f"column {column!r} is not in the frame (columns: {list(df.columns)})")
    if isinstance(df[column], pd.DataFrame):
        raise ValueError(f"column name {column!r} appears more than once")


def _is_missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _as_label_list(value, column: str, pos: int) -> list:
    """One cell of the label column as a list, or a ValueError naming the row."""
    if isinstance(value, str):
        raise ValueError(
            f"multilabel column {column!r} holds the string {value!r} at row {pos}; it needs a "
            f"list of labels per profile. Split strings first, e.g. "
            f"pairmap.split_multilabel(meta, {column!r}, sep='|')"
        )
    if hasattr(value, "as_py"):  # a pyarrow ListScalar
        value = value.as_py()
    if isinstance(value, (list, tuple, np.ndarray, pd.api.extensions.ExtensionArray)):
        items = (
            list(np.asarray(value, dtype=object).reshape(-1))
            if isinstance(value, np.ndarray)
            else list(value)
        )
    elif value is None or _is_missing(value):
        raise ValueError(
            f"multilabel column {column!r} has a missing value at row {pos}; drop those profiles "
            f"or give them a list of labels"
        )
    else:
        raise ValueError(
            f"multilabel column {column!r} holds {type(value).__name__} {value!r} at row {pos}; "
            f"each value must be a list (or tuple/array) of labels"
        )
    if not items:
        raise ValueError(
            f"multilabel column {column!r} has an empty label list at row {pos}; every profile "
            f"needs at least one label (drop unannotated profiles first)"
        )
    return items


def _label_kind(label) -> str:
    if isinstance(label, str):
        return "str"
    if isinstance(label, (bool, np.bool_)):
        return "bool"
    if isinstance(label, numbers.Integral):
        return "int"
    if isinstance(label, numbers.Real):
        return "float"
    return type(label).__name__


def _check_labels(items: list, column: str, pos: int, kinds: dict) -> None:
    for label in items:
        if type(label) is str:  # fast path: the common case is never missing
            kinds.setdefault("str", (pos, label))
            continue
        if label is None or _is_missing(label):
            raise ValueError(
                f"multilabel column {column!r} row {pos} contains a missing label ({label!r}) "
                f"in {items!r}; remove it"
            )
        try:
            hash(label)
        except TypeError:
            raise ValueError(
                f"multilabel column {column!r} row {pos} contains the unhashable label {label!r}; "
                f"labels must be strings or numbers"
            ) from None
        kinds.setdefault(_label_kind(label), (pos, label))
    if len(set(items)) != len(items):
        dup = next(x for x in items if items.count(x) > 1)
        raise ValueError(
            f"multilabel column {column!r} row {pos} lists the label {dup!r} more than once "
            f"({items!r}); each profile must carry a label at most once"
        )
    if len(kinds) > 1:
        (k1, (p1, l1)), (k2, (p2, l2)) = list(kinds.items())[:2]
        raise ValueError(
            f"multilabel column {column!r} mixes label types: {l1!r} ({k1}, row {p1}) and "
            f"{l2!r} ({k2}, row {p2}); convert them to one type (e.g. all strings)"
        )


def encode_labels(series: pd.Series, column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate a label column and encode it as CSR integer codes.

    Parameters
    ----------
    series : pandas.Series
        One label list per profile.
    column : str
        Column name for error messages.

    Returns
    -------
    ptr : numpy.ndarray
        (n + 1,) int64; row ``i``'s labels are ``code[ptr[i]:ptr[i+1]]``.
    code : numpy.ndarray
        int64 label codes, in each list's order.
    uniques : numpy.ndarray
        The labels, sorted; ``uniques[code]`` gives back the flat labels.

    Examples
    --------
    >>> import pandas as pd
    >>> ptr, code, uniques = encode_labels(pd.Series([["b", "a"], ["a"]]), "targets")
    >>> ptr.tolist(), code.tolist(), uniques.tolist()
    ([0, 2, 3], [1, 0, 0], ['a', 'b'])
    """
    kinds: dict = {}
    lists = []
    for pos, value in enumerate(series.tolist()):
        items = _as_label_list(value, column, pos)
        _check_labels(items, column, pos, kinds)
        lists.append(items)
    lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
    ptr = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(lengths, out=ptr[1:])
    flat = np.empty(int(ptr[-1]), dtype=object)
    flat[:] = [label for items in lists for label in items]
    code, uniques = pd.factorize(flat, sort=True)
    return ptr, code.astype(np.int64), np.asarray(uniques, dtype=object)


def split_rules(column: str, pos_rule: Rule, neg_rule: Rule) -> tuple[Rule, Rule]:
    """Check where the label column is used and return both rules without it.

    Parameters
    ----------
    column : str
        The label column.
    pos_rule, neg_rule : Rule
        The parsed positive and negative rules.

    Returns
    -------
    pos_rest, neg_rest : Rule

    Examples
    --------
    >>> from pairmap.pairing import Rule
    >>> pos, neg = split_rules("t", Rule(all_same=("t", "plate")), Rule(all_diff=("t",)))
    >>> pos.all_same, neg.all_diff
    (('plate',), ())
    """
    fix = (
        f"put {column!r} in pos_sameby and in neg_diffby (positives share the label, "
        f"negatives share no label)"
    )
    for name, rule, ok in (("pos", pos_rule, "all_same"), ("neg", neg_rule, "all_diff")):
        for part in ("all_same", "any_same", "all_diff", "any_diff"):
            if part != ok and column in getattr(rule, part):
                side = "sameby" if "same" in part else "diffby"
                where = f"{name}_{side}" + ("['any']" if part.startswith("any") else "")
                raise ValueError(f"multilabel column {column!r} cannot be used in {where}; {fix}")
        if column not in getattr(rule, ok):
            raise ValueError(f"multilabel column {column!r} is missing from the {name} rule; {fix}")
    pos_rest = replace(pos_rule, all_same=tuple(c for c in pos_rule.all_same if c != column))
    neg_rest = replace(neg_rule, all_diff=tuple(c for c in neg_rule.all_diff if c != column))
    return pos_rest, neg_rest


@dataclass
class EncodedMultilabel:
    """Codes of the other rule columns, both rules without the label column, label sets."""

    codes: np.ndarray
    columns: list
    pos_rest: Rule
    neg_rest: Rule
    labels: LabelSets
    uniques: np.ndarray

    @classmethod
    def build(cls, meta: pd.DataFrame, column: str, pos_rule: Rule, neg_rule: Rule):
        _require_column(meta, column)
        pos_rest, neg_rest = split_rules(column, pos_rule, neg_rule)
        columns = list(dict.fromkeys(pos_rest.columns + neg_rest.columns))
        codes = encode_columns(meta, columns)
        ptr, code, uniques = encode_labels(meta[column], column)
        return cls(
            codes, columns, pos_rest, neg_rest, LabelSets.build(ptr, code, len(uniques)), uniques
        )

    def encoded(self, rule: Rule) -> EncodedRule:
        return EncodedRule.from_rule(rule, self.columns)


def _disjoint_pair_counts(enc: EncodedMultilabel, rule: Rule) -> np.ndarray:
    from ._kernels.multilabel import count_disjoint_pairs

    er = enc.encoded(rule)
    b = Buckets.build(group_keys(enc.codes, er.all_same))
    return count_disjoint_pairs(
        enc.labels.sorted_codes(),
        enc.labels.ptr,
        b.keys,
        b.order,
        b.starts,
        enc.codes,
        *er.as_tuple(),
    )


def explain_unscored(enc: EncodedMultilabel, column: str, totals: dict) -> None:
    """No membership could be scored: raise if a kind of pair is missing, else warn."""
    from ._kernels.multilabel import count_label_pairs

    labels = enc.labels
    if (
        totals["pos"] == 0
        and not count_label_pairs(
            labels.mem_ptr, labels.mem_row, enc.codes, *enc.encoded(enc.pos_rest).as_tuple()
        ).any()
    ):
        raise ValueError(
            f"no positive pairs: no two profiles share a label in {column!r} and satisfy the rest "
            f"of the positive rule ({enc.pos_rest.describe()})"
        )
    if not _disjoint_pair_counts(enc, enc.neg_rest).any():
        raise ValueError(
            f"no negative pairs: no two profiles have disjoint label sets in {column!r} and "
            f"satisfy the rest of the negative rule ({enc.neg_rest.describe()})"
        )
    msg = (
        f"positive and negative pairs exist, but no profile has both for any label of "
        f"{column!r}, so every AP is NaN"
    )
    warnings.warn(msg, RuntimeWarning, stacklevel=4)
    logger.warning(msg)


def long_form(meta: pd.DataFrame, column: str, enc: EncodedMultilabel) -> pd.DataFrame:
    """``meta`` with one row per (profile, label), the label in ``column``."""
    counts = np.diff(enc.labels.ptr)
    out = meta.iloc[np.repeat(np.arange(len(meta)), counts)].reset_index(drop=True)
    # object labels -> the column's natural dtype (int64 for integer labels, like explode + infer)
    out[column] = pd.Series(enc.uniques[enc.labels.code], dtype=object).infer_objects()
    return out


def find_multilabel_pairs(meta: pd.DataFrame, rule: Rule, column: str):
    """Pairs of a rule that uses the label column (see :func:`pairmap.find_pairs`)."""
    from ._kernels import multilabel as MK

    _require_column(meta, column)
    in_same, in_diff = column in rule.all_same, column in rule.all_diff
    if column in rule.any_same + rule.any_diff or not (in_same or in_diff):
        raise ValueError(
            f"multilabel column {column!r} must be in the 'all' part of sameby (pairs sharing a "
            f"label) or of diffby (pairs sharing no label), got the rule {rule.describe()}"
        )
    rest = replace(
        rule,
        all_same=tuple(c for c in rule.all_same if c != column),
        all_diff=tuple(c for c in rule.all_diff if c != column),
    )
    columns = list(dict.fromkeys(rest.columns))
    codes = encode_columns(meta, columns)
    ptr, code, uniques = encode_labels(meta[column], column)
    labels = LabelSets.build(ptr, code, len(uniques))
    er = EncodedRule.from_rule(rest, columns)
    if in_same:
        counts = MK.count_label_pairs(labels.mem_ptr, labels.mem_row, codes, *er.as_tuple())
    else:
        b = Buckets.build(group_keys(codes, er.all_same))
        args = (labels.sorted_codes(), labels.ptr, b.keys, b.order, b.starts, codes, *er.as_tuple())
        counts = MK.count_disjoint_pairs(*args)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    pairs = np.empty((int(offsets[-1]), 2), dtype=np.int64)
    if in_same:
        MK.fill_label_pairs(labels.mem_ptr, labels.mem_row, codes, *er.as_tuple(), offsets, pairs)
        return pairs, np.repeat(uniques, counts)
    MK.fill_disjoint_pairs(*args, offsets, pairs)
    return pairs
