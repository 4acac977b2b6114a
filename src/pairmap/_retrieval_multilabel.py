"""The block engine behind multi-label AP (pure arrays, no pandas).

Every profile carries a set of labels; a query is a (profile, label)
*membership*. For membership (i, T) the positives are the other profiles
carrying T that satisfy the rest of the positive rule; the negatives are the
profiles whose label set is disjoint from i's that satisfy the rest of the
negative rule. The negatives do not depend on T, so the engine works per
profile: queries are profiles, processed in blocks bounded by ``max_memory``.

For each query profile of a block:

1. the positives of each of its labels are found from the label's member list
   and their similarities computed directly, then sorted per membership
   (CSR lists, as in :mod:`pairmap._retrieval`);
2. the candidates of the rest of the negative rule come from the same bucket
   planning as single-label AP (:func:`pairmap._retrieval._split`): small
   buckets are scanned by a compiled loop, large ones go through one BLAS
   product per group of queries. The rows sharing a label with the query are
   stamped in a per-thread ``mark`` array, so a candidate is a negative when
   it is unstamped and satisfies the rest of the rule -- one array read per
   candidate, never a label-set comparison;
3. the negatives' similarities (computed once per profile) are tallied
   against each label's sorted positives and every membership is scored by
   the same kernel as single-label AP.

Memory is the block's positive lists and tallies, one ``mark`` array of n
integers per thread and the dense product blocks; no pair table is built.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ._kernels import metrics as KM
from ._kernels import multilabel as MK
from ._kernels import retrieval as K
from ._retrieval import (
    _ITEM,
    RulePlan,
    _dense_steps,
    _GatherCache,
    _split,
    block_bounds,
    plan_workers_for,
    run_blocks,
    sort_lists,
)
from .pairing import EncodedRule
from .similarity import PreparedFeatures

__all__ = ["LabelSets", "compute_multilabel_ap"]


@dataclass(frozen=True)
class LabelSets:
    """Label sets of n rows as CSR arrays (see :mod:`pairmap._kernels.multilabel`)."""

    ptr: np.ndarray
    code: np.ndarray
    mem_ptr: np.ndarray
    mem_row: np.ndarray

    @classmethod
    def build(cls, ptr: np.ndarray, code: np.ndarray, n_labels: int) -> LabelSets:
        """From per-row label codes ``code[ptr[i]:ptr[i+1]]`` (codes ``0..n_labels-1``)."""
        ptr = np.ascontiguousarray(ptr, dtype=np.int64)
        code = np.ascontiguousarray(code, dtype=np.int64)
        rows = np.repeat(np.arange(len(ptr) - 1, dtype=np.int64), np.diff(ptr))
        order = np.argsort(code, kind="stable")  # rows stay ascending within a label
        mem_ptr = np.zeros(n_labels + 1, dtype=np.int64)
        np.cumsum(np.bincount(code, minlength=n_labels), out=mem_ptr[1:])
        return cls(ptr, code, mem_ptr, np.ascontiguousarray(rows[order]))

    @property
    def n_rows(self) -> int:
        return len(self.ptr) - 1

    def label_sizes(self) -> np.ndarray:
        """Number of rows carrying each label."""
        return np.diff(self.mem_ptr)

    def sorted_codes(self) -> np.ndarray:
        """``code`` with each row's labels in ascending order (for sorted-merge tests)."""
        rows = np.repeat(np.arange(self.n_rows), np.diff(self.ptr))
        return np.ascontiguousarray(self.code[np.lexsort([self.code, rows])])

    def as_tuple(self):
        return self.ptr, self.code, self.mem_ptr, self.mem_row


def _query_order(neg: RulePlan, labels: LabelSets) -> tuple[np.ndarray, np.ndarray]:
    """Profiles that can be scored, ordered so dense negative groups are contiguous.

    Returns the queries and, per row, the summed size of its labels (an upper
    bound of its positive lists).
    """
    member_size = labels.label_sizes()[labels.code]
    counts = np.diff(labels.ptr)
    cap = np.add.reduceat(member_size, labels.ptr[:-1]) if len(member_size) else counts
    largest = np.maximum.reduceat(member_size, labels.ptr[:-1]) if len(member_size) else counts
    candidates = np.flatnonzero((largest > 1) & (neg.bucket_size > 1))
    sort_keys = [candidates]
    sort_keys += [neg.signature[candidates, a] for a in range(neg.signature.shape[1])][::-1]
    sort_keys += [neg.buckets.keys[candidates]]
    return candidates[np.lexsort(sort_keys)], cap.astype(np.int64)


@dataclass
class _Block:
    """One block's queries and their memberships ("slots", in list order)."""

    rows: np.ndarray
    first_slot: np.ndarray  # per query
    n_labels: np.ndarray  # per query
    memberships: np.ndarray  # per slot: index into labels.code

    @classmethod
    def build(cls, rows, labels: LabelSets) -> _Block:
        n_labels = np.diff(labels.ptr)[rows]
        first = np.cumsum(n_labels) - n_labels
        memb = np.repeat(labels.ptr[rows] - first, n_labels) + np.arange(int(n_labels.sum()))
        return cls(rows, first, n_labels, memb)


def _block_positives(block: _Block, prep, codes, pos_rest: EncodedRule, labels: LabelSets):
    """Sorted positive similarities of every membership of the block (CSR)."""
    caps = labels.label_sizes()[labels.code[block.memberships]]
    offsets = np.zeros(len(caps) + 1, dtype=np.int64)
    np.cumsum(caps, out=offsets[1:])
    values = np.empty(int(offsets[-1]), dtype=np.float64)
    counts = np.zeros(len(caps), dtype=np.int64)
    MK.collect_label_positives(
        block.rows,
        block.first_slot,
        *labels.as_tuple(),
        prep.X,
        prep.inv_norm,
        prep.sq_norm,
        prep.metric,
        codes,
        *pos_rest.as_tuple(),
        offsets,
        counts,
        values,
    )
    sort_lists(values, offsets, counts)
    return values, offsets, counts


def _block_negatives(block, positives, neg: RulePlan, prep, codes, labels, mark, gather, budget):
    """Tally every query's negatives against each of its labels' positives."""
    pos_values, pos_offsets, pos_counts = positives
    n_q = len(block.rows)
    gt = np.zeros(len(pos_values) + len(pos_counts), dtype=np.int64)
    eq = np.zeros_like(gt)
    neg_counts = np.zeros(n_q, dtype=np.int64)
    has_pos = np.add.reduceat(pos_counts, block.first_slot) > 0 if n_q else np.zeros(0, bool)
    active = np.flatnonzero(has_pos)
    lab = labels.as_tuple()
    common = (
        mark,
        block.first_slot,
        has_pos,
        pos_values,
        pos_offsets,
        pos_counts,
        gt,
        eq,
        neg_counts,
    )
    dense_metric = prep.metric if prep.gemm else K.PRECOMPUTED
    for kind, item in _split(neg, prep, codes, block.rows[active], active, budget):
        if kind == "direct":
            slots, rows, lo, hi, index = item
            MK.rank_direct_multilabel(
                slots,
                rows,
                lo,
                hi,
                index,
                prep.X,
                prep.inv_norm,
                prep.sq_norm,
                prep.metric,
                codes,
                *neg.rule.as_tuple(),
                *lab,
                *common,
            )
            continue
        for g_slots, qrows, S, M in _dense_steps(prep, gather, item, budget, neg, codes):
            MK.rank_dense_multilabel(
                g_slots,
                qrows,
                item.cols,
                S,
                M,
                prep.X,
                prep.inv_norm,
                prep.sq_norm,
                dense_metric,
                *lab,
                *common,
            )
    return gt, eq, neg_counts


def compute_multilabel_ap(
    prep: PreparedFeatures,
    codes: np.ndarray,
    pos_rest: EncodedRule,
    neg_rest: EncodedRule,
    labels: LabelSets,
    *,
    ties_expected: bool = False,
    max_memory: int = 1 << 30,
    batch_size: int | None = None,
    n_workers: int = 1,
    progress=None,
    metrics=None,
):
    """AP, positive count and list length for every (row, label) membership.

    Parameters
    ----------
    prep : PreparedFeatures
        Features (built-in measures only; callables are refused by the caller).
    codes : numpy.ndarray
        (n, n_columns) int64 group codes of the other rule columns.
    pos_rest, neg_rest : EncodedRule
        The positive and negative rules without the label column.
    labels : LabelSets
        Every row's labels; memberships are ``labels.code``'s entries.
    ties_expected, max_memory, batch_size, n_workers, progress, metrics
        As in :func:`pairmap._retrieval.compute_average_precision`
        (``batch_size`` counts query profiles; ``metrics.out`` has one row per
        membership).

    Returns
    -------
    ap, n_pos, n_total : numpy.ndarray
        One entry per membership (NaN and zero counts when the membership has
        no positives or its profile no negatives).
    totals : dict
        ``{"pos": ..., "neg": ...}`` pairs found over scored lists.
    """
    m = len(labels.code)
    ap = np.full(m, np.nan)
    n_pos = np.zeros(m, dtype=np.int64)
    n_total = np.zeros(m, dtype=np.int64)
    totals = {"pos": 0, "neg": 0}
    neg = RulePlan.build(codes, neg_rest)
    queries, cap = _query_order(neg, labels)
    if len(queries) == 0:
        return ap, n_pos, n_total, totals
    workers = max(1, int(n_workers))
    plan = plan_workers_for(workers)  # blocks (and results) independent of the thread count
    per_worker = max(1 << 22, max_memory // plan)
    est = cap[queries] * (3 * _ITEM) + 64 * np.diff(labels.ptr)[queries] + 64
    bounds = block_bounds(est, per_worker // 2, batch_size, plan)
    local = threading.local()

    def run_block(b):
        if getattr(local, "mark", None) is None:
            local.mark = np.full(labels.n_rows, -1, dtype=np.int64)
            local.gather = _GatherCache(prep.X)
        block = _Block.build(queries[bounds[b] : bounds[b + 1]], labels)
        positives = _block_positives(block, prep, codes, pos_rest, labels)
        gt, eq, neg_q = _block_negatives(
            block, positives, neg, prep, codes, labels, local.mark, local.gather, per_worker // 4
        )
        pv, po, pc = positives
        k = len(pc)
        b_ap, b_np, b_nt = np.empty(k), np.empty(k, dtype=np.int64), np.empty(k, dtype=np.int64)
        n_neg = np.repeat(neg_q, block.n_labels)
        K.score_block(pv, po, pc, gt, eq, n_neg, ties_expected, b_ap, b_np, b_nt)
        b_metrics = None
        if metrics is not None:  # same tallies as AP
            b_metrics = np.empty((k, len(metrics.kinds)))
            KM.score_metrics(
                pv, po, pc, gt, eq, n_neg, ties_expected, metrics.kinds, metrics.cuts, b_metrics
            )
        return block, b_ap, b_np, b_nt, int(pc.sum()), int(neg_q.sum()), b_metrics

    def consume(result):
        block, b_ap, b_np, b_nt, found_pos, found_neg, b_metrics = result
        if b_metrics is not None:
            metrics.out[block.memberships] = b_metrics
        ap[block.memberships] = b_ap
        n_pos[block.memberships] = b_np
        n_total[block.memberships] = b_nt
        totals["pos"] += found_pos
        totals["neg"] += found_neg
        if progress is not None:
            progress(len(block.rows))

    run_blocks(len(bounds) - 1, run_block, consume, workers)
    return ap, n_pos, n_total, totals
