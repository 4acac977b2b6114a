"""Slow, obviously-correct reference implementations for the AP engine tests.

Everything here loops over profiles and pairs in plain Python (NumPy only for
per-pair arithmetic). Nothing is vectorized across pairs and nothing is shared
with the engine except :func:`pairmap._ap_math.expected_random_ap`, which the
contract fixes as the definition of the random-ranking baseline (and which is
itself checked against exhaustive enumeration in ``test_ap_oracle.py``).

Semantics implemented (the engine contract):

* A rule is a (sameby, diffby) pair; each side is a list of column names or a
  dict ``{"all": [...], "any": [...]}``.  Pair (i, j), i != j, satisfies the
  rule iff every ``sameby["all"]`` column is equal, at least one
  ``sameby["any"]`` column is equal (when that list is non-empty), every
  ``diffby["all"]`` column differs and at least one ``diffby["any"]`` column
  differs (when non-empty).
* List entries that are not column names are pandas query expressions; rows
  failing any of them are dropped before pairing.
* Query i ranks all its positives and negatives by decreasing similarity.
  ``ties="positives_first"`` puts tied positives ahead of tied negatives;
  ``ties="expected"`` averages AP over all orderings inside tie groups.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

METRICS = ("cosine", "abs_cosine", "correlation", "euclidean", "manhattan", "chebyshev")

#: Two float64 similarities closer than this (relative) count as the same value.
#: Only used to recognize ties that are exact in real arithmetic but whose two
#: float64 evaluations differ in the last bit; real, distinct similarities of the
#: small integer-valued test inputs are many orders of magnitude further apart.
TIE_RTOL = 1e-12


#: The contract raises ValueError only when there are no positive pairs at all or no
#: negative pairs at all. The engine (8594cb0) also raises when pairs of both kinds
#: exist but no single profile has both (every AP would be NaN). Flip this to True
#: if the contract is amended to that stricter rule.
RAISE_WHEN_NO_PROFILE_HAS_BOTH = False


class OracleError(ValueError):
    """The input is invalid under the contract (the engine must raise ValueError)."""


# --------------------------------------------------------------------------- rules
def normalize_side(side) -> tuple[list[str], list[str]]:
    """Return ``(all, any)`` lists for one side of a rule."""
    if side is None:
        return [], []
    if isinstance(side, str):
        return [side], []
    if isinstance(side, dict):
        return list(side.get("all", [])), list(side.get("any", []))
    return list(side), []


def split_queries(meta: pd.DataFrame, entries) -> tuple[list[str], list[str]]:
    """Split entries into (column names, query expressions)."""
    cols, queries = [], []
    for e in entries:
        (cols if e in meta.columns else queries).append(e)
    return cols, queries


def parse_rule(meta: pd.DataFrame, sameby, diffby):
    """Return ``(same_all, same_any, diff_all, diff_any, queries)`` for one rule."""
    s_all, s_any = normalize_side(sameby)
    d_all, d_any = normalize_side(diffby)
    s_all, q1 = split_queries(meta, s_all)
    s_any, q2 = split_queries(meta, s_any)
    d_all, q3 = split_queries(meta, d_all)
    d_any, q4 = split_queries(meta, d_any)
    if q3 or q4:
        raise OracleError(f"query expression in diffby: {q3 + q4}")
    if len(s_any) == 1 or len(d_any) == 1:
        raise OracleError("an 'any' list needs at least two columns")
    if set(s_all + s_any) & set(d_all + d_any):
        raise OracleError("column in both sameby and diffby")
    return s_all, s_any, d_all, d_any, q1 + q2


def _equal(a, b) -> bool:
    return bool(a == b)


def pair_satisfies(rows: list[dict], i: int, j: int, s_all, s_any, d_all, d_any) -> bool:
    """Whether the unordered pair (i, j) satisfies the parsed rule."""
    ri, rj = rows[i], rows[j]
    if not all(_equal(ri[c], rj[c]) for c in s_all):
        return False
    if s_any and not any(_equal(ri[c], rj[c]) for c in s_any):
        return False
    if not all(not _equal(ri[c], rj[c]) for c in d_all):
        return False
    if d_any and not any(not _equal(ri[c], rj[c]) for c in d_any):
        return False
    return True


def brute_force_pairs(meta: pd.DataFrame, sameby, diffby) -> np.ndarray:
    """All (i, j), i < j, row positions satisfying the rule, lexicographically sorted."""
    s_all, s_any, d_all, d_any, queries = parse_rule(meta, sameby, diffby)
    if queries:
        raise OracleError("brute_force_pairs does not take query expressions")
    rows = meta.to_dict("records")
    n = len(rows)
    out = [
        (i, j)
        for i in range(n)
        for j in range(i + 1, n)
        if pair_satisfies(rows, i, j, s_all, s_any, d_all, d_any)
    ]
    return np.array(out, dtype=np.int64).reshape(-1, 2)


# --------------------------------------------------------------------- similarity
def similarity(x: np.ndarray, y: np.ndarray, distance) -> tuple[float, bool]:
    """Similarity of two profiles (float64) and whether it hit a degenerate row.

    Degenerate rows (zero norm for cosine/abs_cosine, zero variance for
    correlation) give similarity 0.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if callable(distance):
        return float(np.asarray(distance(x[None, :], y[None, :])).reshape(-1)[0]), False
    if distance in ("cosine", "abs_cosine", "correlation"):
        if distance == "correlation":
            x = x - x.mean()
            y = y - y.mean()
        nx = math.sqrt(float(np.dot(x, x)))
        ny = math.sqrt(float(np.dot(y, y)))
        if nx == 0.0 or ny == 0.0:
            return 0.0, True
        c = float(np.dot(x, y)) / (nx * ny)
        return (abs(c) if distance == "abs_cosine" else c), False
    diff = np.abs(x - y)
    if distance == "euclidean":
        d = math.sqrt(float(np.sum(diff * diff)))
    elif distance == "manhattan":
        d = float(np.sum(diff))
    elif distance == "chebyshev":
        d = float(np.max(diff))
    else:
        raise OracleError(f"unknown distance {distance!r}")
    return 1.0 / (1.0 + d), False


# ----------------------------------------------------------------------- ranking
def tie_groups(pos_sims: list[float], neg_sims: list[float]) -> list[tuple[int, int]]:
    """(n_pos, n_neg) per tie group, in decreasing-similarity order.

    Values are grouped after sorting; consecutive values within ``TIE_RTOL``
    (relative) of the group's first value join the group.
    """
    items = sorted([(s, 1) for s in pos_sims] + [(s, 0) for s in neg_sims], key=lambda t: -t[0])
    groups: list[list[int]] = []
    head = None
    for s, lab in items:
        if head is None or abs(s - head) > TIE_RTOL * max(1.0, abs(head)):
            groups.append([0, 0])
            head = s
        groups[-1][0 if lab else 1] += 1
    return [(p, q) for p, q in groups]


def ap_positives_first(pos_sims, neg_sims) -> float:
    """AP with tied positives ranked ahead of tied negatives."""
    labels = []
    for p, q in tie_groups(pos_sims, neg_sims):
        labels += [1] * p + [0] * q
    return ap_of_labels(labels)


def ap_of_labels(labels) -> float:
    """Mean over positives of the precision at that positive's rank."""
    hits, precisions = 0, []
    for rank, lab in enumerate(labels, start=1):
        if lab:
            hits += 1
            precisions.append(hits / rank)
    return sum(precisions) / len(precisions)


def null_aps_bruteforce(n: int, k: int) -> np.ndarray:
    """AP of every ``k``-subset of ranks ``1..n``, in lexicographic (itertools) order.

    The exact null distribution of AP for ``k`` positives in a list of ``n``:
    each subset is one equally likely placement of the positives. Precisions
    are summed in rank order, as the engine does, so values compare bit for bit.
    """
    out = []
    for ranks in itertools.combinations(range(1, n + 1), k):
        total = 0.0
        for i, r in enumerate(ranks):
            total += (i + 1) / r
        out.append(total / k)
    return np.array(out, dtype=np.float64)


def _group_contribution_enumerate(q: int, r: int, p: int, g: int) -> float:
    """E[sum of precisions of the p positives of one tie group] by enumeration.

    ``q`` positives and ``r`` items rank before the group; the group has ``g``
    items of which ``p`` positive; every placement of the positives among the
    ``g`` slots is equally likely.
    """
    total, count = 0.0, 0
    for slots in itertools.combinations(range(1, g + 1), p):
        total += sum((q + t) / (r + s) for t, s in enumerate(slots, start=1))
        count += 1
    return total / count


def _group_contribution_order_stats(q: int, r: int, p: int, g: int) -> float:
    """Same as :func:`_group_contribution_enumerate` via the slot distribution.

    The t-th positive sits in slot s with probability
    C(s-1, t-1) C(g-s, p-t) / C(g, p).
    """
    total = 0.0
    denom = math.comb(g, p)
    for t in range(1, p + 1):
        for s in range(t, g - p + t + 1):
            prob = math.comb(s - 1, t - 1) * math.comb(g - s, p - t) / denom
            total += prob * (q + t) / (r + s)
    return total


def ap_expected(pos_sims, neg_sims, *, enumerate_limit: int = 5000) -> float:
    """Expected AP over uniformly random orderings inside each tie group.

    Tie groups are independent (the items ranked before a group are fixed), so
    the expectation is a sum of per-group expectations. A group is enumerated
    exhaustively when it has at most ``enumerate_limit`` placements, otherwise
    the exact order-statistic formula is used (the two are checked against
    each other in the tests).
    """
    k = len(pos_sims)
    total, q, r = 0.0, 0, 0
    for p, n in tie_groups(pos_sims, neg_sims):
        g = p + n
        if p:
            if math.comb(g, p) <= enumerate_limit:
                total += _group_contribution_enumerate(q, r, p, g)
            else:
                total += _group_contribution_order_stats(q, r, p, g)
        q += p
        r += g
    return total / k


def ap_expected_bruteforce_permutations(pos_sims, neg_sims) -> float:
    """Expected AP by enumerating every permutation inside every tie group (tiny lists only)."""
    groups = tie_groups(pos_sims, neg_sims)
    per_group = [list(itertools.permutations([1] * p + [0] * n)) for p, n in groups]
    total, count = 0.0, 0
    for combo in itertools.product(*per_group):
        labels = [lab for grp in combo for lab in grp]
        total += ap_of_labels(labels)
        count += 1
    return total / count


# -------------------------------------------------------------------------- AP
def brute_force_ap(
    meta: pd.DataFrame,
    feats,
    pos_sameby,
    pos_diffby,
    neg_sameby,
    neg_diffby,
    *,
    distance="cosine",
    ties: str = "positives_first",
) -> pd.DataFrame:
    """Reference AP table: meta (filtered, index reset) + AP columns.

    Raises :class:`OracleError` wherever the engine must raise ``ValueError``
    (overlapping positive/negative definitions, no positive or no negative
    pairs at all, bad rules, nothing left after filtering).
    """
    from pairmap._ap_math import expected_random_ap

    if ties not in ("positives_first", "expected"):
        raise OracleError(f"bad ties {ties!r}")
    X = feats.to_numpy(dtype=np.float64) if isinstance(feats, pd.DataFrame) else feats
    X = np.asarray(X, dtype=np.float64)
    if len(meta) != len(X):
        raise OracleError("row count mismatch")

    pos = parse_rule(meta, pos_sameby, pos_diffby)
    neg = parse_rule(meta, neg_sameby, neg_diffby)
    keep = np.ones(len(meta), dtype=bool)
    for query in pos[4] + neg[4]:
        hit = meta.index.isin(meta.query(query).index)
        keep &= hit
    meta = meta.loc[keep].reset_index(drop=True)
    X = X[keep]
    n = len(meta)
    if n == 0:
        raise OracleError("no rows left")

    rows = meta.to_dict("records")
    sims: dict[tuple[int, int], float] = {}
    degenerate = False

    def sim(i: int, j: int) -> float:
        nonlocal degenerate
        key = (min(i, j), max(i, j))
        if key not in sims:
            s, deg = similarity(X[key[0]], X[key[1]], distance)
            sims[key] = s
            degenerate |= deg
        return sims[key]

    ap = np.full(n, np.nan)
    n_pos = np.zeros(n, dtype=np.int64)
    n_tot = np.zeros(n, dtype=np.int64)
    any_pos = any_neg = False
    for i in range(n):
        ps, ns = [], []
        for j in range(n):
            if j == i:
                continue
            is_pos = pair_satisfies(rows, i, j, *pos[:4])
            is_neg = pair_satisfies(rows, i, j, *neg[:4])
            if is_pos and is_neg:
                raise OracleError(f"pair ({i}, {j}) is both positive and negative")
            if is_pos:
                ps.append(sim(i, j))
            elif is_neg:
                ns.append(sim(i, j))
        any_pos |= bool(ps)
        any_neg |= bool(ns)
        if ps and ns:
            if ties == "positives_first":
                ap[i] = ap_positives_first(ps, ns)
            else:
                ap[i] = ap_expected(ps, ns)
            n_pos[i] = len(ps)
            n_tot[i] = len(ps) + len(ns)
    if not any_pos:
        raise OracleError("no positive pairs")
    if not any_neg:
        raise OracleError("no negative pairs")
    if RAISE_WHEN_NO_PROFILE_HAS_BOTH and not (n_pos > 0).any():
        raise OracleError("no profile has both positives and negatives")

    out = meta.copy()
    out["average_precision"] = ap
    has = n_pos > 0
    mu = np.full(n, np.nan)
    mu[has] = expected_random_ap(n_pos[has], n_tot[has])
    with np.errstate(invalid="ignore", divide="ignore"):
        out["normalized_average_precision"] = (ap - mu) / (1.0 - mu)
    out["n_pos_pairs"] = n_pos
    out["n_total_pairs"] = n_tot
    out.attrs["degenerate"] = degenerate
    return out


# ------------------------------------------------------------------ multi-label AP
def _rest_side(side, column: str, part: str):
    """One rule side without the label column (which must sit in its ``part`` list)."""
    s_all, s_any = normalize_side(side)
    if column in s_any:
        raise OracleError(f"label column {column!r} in an 'any' list")
    if part == "all" and column not in s_all:
        raise OracleError(f"label column {column!r} missing from its rule")
    if part == "none" and column in s_all:
        raise OracleError(f"label column {column!r} in the wrong rule")
    rest_all = [c for c in s_all if c != column]
    return {"all": rest_all, "any": s_any} if s_any else rest_all


def multilabel_list(X, rows, lists, i, label, rest_rule, distance) -> list[float]:
    """Similarities of query i's positives for ``label`` (or its negatives if ``label is None``).

    ``rows``: the other metadata as records; ``lists``: label lists; ``rest_rule``:
    ``(same_all, same_any, diff_all, diff_any)`` of the rule without the label column.
    """

    def member(j):
        if label is None:
            return not set(lists[i]) & set(lists[j])
        return label in lists[j]

    return [
        similarity(X[i], X[j], distance)[0]
        for j in range(len(rows))
        if j != i and member(j) and pair_satisfies(rows, i, j, *rest_rule)
    ]


def brute_force_multilabel_ap(
    meta: pd.DataFrame,
    feats,
    pos_sameby,
    pos_diffby,
    neg_sameby,
    neg_diffby,
    multilabel_col: str,
    *,
    distance="cosine",
    ties: str = "positives_first",
) -> pd.DataFrame:
    """Reference multi-label AP, one row per (profile, label) in ``meta.explode`` order.

    For profile i and label T in i's list: positives are the other profiles whose
    list contains T and that satisfy the positive rule without the label column;
    negatives are the profiles whose list shares no label with i's and that satisfy
    the negative rule without it. The label column must be in ``pos_sameby`` and
    ``neg_diffby`` ("all" parts) and nowhere else. Label lists must be non-empty,
    without missing values or repeats. No query expressions.
    """
    from pairmap._ap_math import expected_random_ap

    col = multilabel_col
    pos_same = _rest_side(pos_sameby, col, "all")
    pos_diff = _rest_side(pos_diffby, col, "none")
    neg_same = _rest_side(neg_sameby, col, "none")
    neg_diff = _rest_side(neg_diffby, col, "all")
    rest_meta = meta.drop(columns=[col]).reset_index(drop=True)
    pos = parse_rule(rest_meta, pos_same, pos_diff)
    neg = parse_rule(rest_meta, neg_same, neg_diff)
    if pos[4] or neg[4]:
        raise OracleError("no query expressions in the multi-label oracle")
    lists = [list(v) for v in meta[col]]
    for labels in lists:
        if not labels or len(set(labels)) != len(labels):
            raise OracleError(f"bad label list {labels!r}")
    X = np.asarray(feats, dtype=np.float64)
    rows = rest_meta.to_dict("records")
    n = len(rows)
    records = []
    any_pos = any_neg = False
    for i in range(n):
        negs = multilabel_list(X, rows, lists, i, None, neg[:4], distance)
        any_neg |= bool(negs)
        for label in lists[i]:
            ps = multilabel_list(X, rows, lists, i, label, pos[:4], distance)
            any_pos |= bool(ps)
            if ps and negs:
                ap = (
                    ap_positives_first(ps, negs)
                    if ties == "positives_first"
                    else ap_expected(ps, negs)
                )
                records.append((i, label, ap, len(ps), len(ps) + len(negs)))
            else:
                records.append((i, label, np.nan, 0, 0))
    if not any_pos:
        raise OracleError("no positive pairs")
    if not any_neg:
        raise OracleError("no negative pairs")
    idx = [r[0] for r in records]
    out = meta.iloc[idx].reset_index(drop=True)
    out[col] = [r[1] for r in records]
    out["average_precision"] = [r[2] for r in records]
    n_pos = np.array([r[3] for r in records], dtype=np.int64)
    n_tot = np.array([r[4] for r in records], dtype=np.int64)
    has = n_pos > 0
    mu = np.full(len(records), np.nan)
    mu[has] = expected_random_ap(n_pos[has], n_tot[has])
    with np.errstate(invalid="ignore", divide="ignore"):
        out["normalized_average_precision"] = (out["average_precision"].to_numpy() - mu) / (1 - mu)
    out["n_pos_pairs"] = n_pos
    out["n_total_pairs"] = n_tot
    return out


# ------------------------------------------------------------ permutation null
def relabelings(pool: list[int], blocks: dict[int, object], members: list[int]):
    """Every relabeling of ``pool``: as many profiles per block as ``members`` has there."""
    from collections import Counter
    from itertools import combinations, product

    need = Counter(blocks[m] for m in members)
    per_block = []
    for b in sorted(need, key=str):
        rows = [r for r in pool if blocks[r] == b]
        per_block.append(list(combinations(rows, need[b])))
    for parts in product(*per_block):
        yield sorted(r for part in parts for r in part)


def relabeling_statistic(feats, S, pool, blocks, distance="cosine") -> tuple[float, float]:
    """(mAP, cohesion) of the relabeled group ``S``, brute force.

    Each s in S ranks S minus s (positives) against the profiles of ``pool``
    outside ``S`` in its block (negatives), positives first on ties; cohesion is
    the mean over s of its mean similarity to the others.
    """
    aps, cohesion = [], []
    for s in S:
        pos = [similarity(feats[s], feats[j], distance)[0] for j in S if j != s]
        neg = [
            similarity(feats[s], feats[t], distance)[0]
            for t in pool
            if t not in S and blocks[t] == blocks[s]
        ]
        aps.append(ap_positives_first(pos, neg))
        cohesion.append(sum(pos) / len(pos))
    return sum(aps) / len(aps), sum(cohesion) / len(cohesion)


def exact_permutation_p(feats, members, pool, blocks, distance="cosine", tol=1e-9):
    """Exact permutation p-value of ``members`` and the sorted null mAPs, by enumeration."""
    obs = relabeling_statistic(feats, sorted(members), pool, blocks, distance)
    null = [
        relabeling_statistic(feats, S, pool, blocks, distance)
        for S in relabelings(pool, blocks, members)
    ]
    hits = sum(
        1 for m, c in null if m > obs[0] + tol or (abs(m - obs[0]) <= tol and c >= obs[1] - tol)
    )
    return hits / len(null), np.sort([m for m, _ in null])


# ------------------------------------------------------- retrieval metrics (issue 10)
def brute_force_lists(
    meta: pd.DataFrame, feats, pos_sameby, pos_diffby, neg_sameby, neg_diffby, *, distance="cosine"
) -> list[tuple[list[float], list[float]]]:
    """(positive similarities, negative similarities) of every row, pair by pair (no filters)."""
    X = np.asarray(feats, dtype=np.float64)
    pos = parse_rule(meta, pos_sameby, pos_diffby)
    neg = parse_rule(meta, neg_sameby, neg_diffby)
    rows = meta.to_dict("records")
    out = []
    for i in range(len(meta)):
        ps, ns = [], []
        for j in range(len(meta)):
            if j == i:
                continue
            if pair_satisfies(rows, i, j, *pos[:4]):
                ps.append(similarity(X[i], X[j], distance)[0])
            elif pair_satisfies(rows, i, j, *neg[:4]):
                ns.append(similarity(X[i], X[j], distance)[0])
        out.append((ps, ns))
    return out


def roc_auc_from_lists(pos_sims, neg_sims) -> float:
    """Mann-Whitney U / (k m) by comparing every (positive, negative) pair; ties count 1/2."""
    groups = tie_groups(pos_sims, neg_sims)
    u, neg_below = 0.0, len(neg_sims)
    for p, n in groups:  # decreasing similarity
        neg_below -= n
        u += p * (neg_below + 0.5 * n)
    return u / (len(pos_sims) * len(neg_sims))


def hits_at(pos_sims, neg_sims, cut: int, ties: str) -> float:
    """Positives among the first ``cut`` items; ``expected``: mean over all tie orders."""
    groups = tie_groups(pos_sims, neg_sims)
    if ties == "positives_first":
        labels = [lab for p, n in groups for lab in [1] * p + [0] * n]
        return float(sum(labels[:cut]))
    per_group = [sorted(set(itertools.permutations([1] * p + [0] * n))) for p, n in groups]
    total, count = 0.0, 0
    for combo in itertools.product(*per_group):
        labels = [lab for grp in combo for lab in grp]
        total += sum(labels[:cut])
        count += 1
    return total / count


def mann_whitney_null_counts(k: int, n: int) -> dict[int, int]:
    """U -> number of k-subsets of ranks 1..n giving it, by full enumeration (tiny n only)."""
    counts: dict[int, int] = {}
    for subset in itertools.combinations(range(n), k):
        # U = pairs (positive, negative) with the negative ranked below the positive
        u = sum((n - 1 - r) - sum(1 for s in subset if s > r) for r in subset)
        counts[u] = counts.get(u, 0) + 1
    return counts
