"""The block engine behind :func:`pairmap.average_precision` (pure arrays, no pandas).

How it works
------------
Rows are bucketed by the ``"all"`` sameby columns of each rule (a bucket is
every row when there are none), so the candidates of a query under a rule are
the rows of its bucket. Queries are processed in blocks whose buffer size is
bounded by ``max_memory``; candidate pairs are never materialized for the
whole data set.

Within a block, for each rule:

* queries whose bucket is large are *dense*: queries sharing a bucket and the
  same values in the frequent ``"all"`` diffby columns form a group, and the
  group's candidate columns are the bucket minus the rows those values exclude
  (for the phenotypic-activity setup: the control wells). Large groups get
  their similarities from one matrix product (BLAS) plus a vectorized rule
  mask; small ones are scanned by a compiled loop; groups are planned lazily
  so a block never holds more than ``max_memory`` worth of column lists;
* the other queries are *sparse*: a compiled loop scans their (small) bucket
  and computes the similarity of each match directly.

Either way the exact rule is checked for every (query, candidate) entry, so
the grouping only decides speed, never the result. Positives are collected and
sorted per query; negatives are never stored: each one is counted against the
sorted positives (branch-free passes for a few positives, binary search for
many), which gives every positive's rank without a global sort.

Blocks run on ``n_workers`` threads with serial kernels and single-threaded
BLAS. Block sizes, thread counts and paths do not change results: every AP is
computed by the same sequential code from similarities snapped to a 2**-36
grid (see :func:`pairmap.average_precision`).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace

import numpy as np

from ._kernels import metrics as KM
from ._kernels import order as KO
from ._kernels import retrieval as K
from .pairing import Buckets, EncodedRule, dense_ranks, group_keys, overlap_error
from .pairing import rule_mask as _rule_mask
from .similarity import PreparedFeatures, dense_block

logger = logging.getLogger(__name__)

#: buckets at least this large are handled by matrix products
DENSE_MIN_BUCKET = 128
#: dense groups with fewer (query, candidate) entries are scanned directly, not by BLAS
GEMM_MIN_ENTRIES = 1024
#: dense groups with fewer queries scan their bucket instead of building a column list
GROUP_MIN_QUERIES = 4
#: a diffby value shared by at least this many bucket rows is excluded group-wise
FREQUENT_VALUE = 32
#: positive lists longer than this are sorted by NumPy
LONG_LIST = 512
#: smallest automatic block (per-block planning costs a few array passes)
MIN_BLOCK_QUERIES = 256
#: row pairs per call of a user similarity callable
CALLABLE_CHUNK = 65536
#: queries per block unless batch_size says otherwise (progress granularity)
DEFAULT_BLOCK_QUERIES = 16384
#: the positives pre-pass may use up to max_memory // PREPASS_SHARE bytes
PREPASS_SHARE = 8
#: bytes per buffered similarity
_ITEM = 8
#: the thread count every block plan assumes (up to this many threads): blocks, and so
#: which similarities come from a matrix product, do not depend on ``n_jobs`` or on the
#: number of Dask workers, and results are identical bit for bit whatever they are
PLAN_WORKERS = 16


def plan_workers_for(threads: int) -> int:
    """The worker count a block plan assumes for ``threads`` concurrent blocks.

    :data:`PLAN_WORKERS` up to that many threads (results independent of the thread
    count); beyond, the thread count itself, so ``max_memory`` still bounds the
    blocks in flight.

    Examples
    --------
    >>> plan_workers_for(1), plan_workers_for(16), plan_workers_for(64)
    (16, 16, 64)
    """
    return max(PLAN_WORKERS, int(threads))


@dataclass
class RulePlan:
    """Per-rule arrays prepared once for the whole run."""

    rule: EncodedRule
    buckets: Buckets
    bucket_size: np.ndarray  # per row
    signature: np.ndarray  # (n, n_all_diff) code of frequent diffby values, -1 otherwise

    @classmethod
    def build(cls, codes: np.ndarray, rule: EncodedRule) -> RulePlan:
        keys = _group_keys(codes, rule.all_same)
        n_keys = int(keys.max()) + 1 if len(keys) else 0
        order = KO.lex_order(keys[None, :], np.array([n_keys], dtype=np.int64))
        starts = np.zeros(n_keys + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys, minlength=n_keys), out=starts[1:])
        buckets = Buckets(keys, order, starts)
        size = buckets.sizes()[keys]
        n = codes.shape[0]
        sig = np.full((n, len(rule.all_diff)), -1, dtype=np.int64)
        for a, c in enumerate(rule.all_diff):
            k2 = _group_keys(codes, np.concatenate([rule.all_same, [c]]).astype(np.int64))
            freq = np.bincount(k2)[k2]
            frequent = freq >= FREQUENT_VALUE
            sig[frequent, a] = codes[frequent, c]
        return cls(rule, buckets, size, sig)


def _group_keys(codes: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """:func:`pairmap.pairing.group_keys` by counting sorts (the same keys, no comparison sort)."""
    cols = np.asarray(cols, dtype=np.int64)
    if len(cols) < 2:
        return group_keys(codes, cols)
    levels = np.ascontiguousarray(codes[:, cols].T)
    return KO.lex_ranks(levels, levels.max(axis=1, initial=-1) + 1)


@dataclass
class MetricSpec:
    """Extra per-query metrics for :func:`compute_average_precision`.

    ``kinds``/``cuts``: int64 codes of :mod:`pairmap._kernels.metrics`, one per
    metric; ``out``: (n_rows, n_metrics) float64, filled in place.
    """

    kinds: np.ndarray
    cuts: np.ndarray
    out: np.ndarray


@dataclass
class _Group:
    slots: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    excluded: np.ndarray  # per all_diff column: already excluded from cols group-wide


def _dense_groups(plan: RulePlan, codes, rows, slots):
    """Split dense rows into groups sharing a bucket and a frequent-diffby signature.

    Yields ``(members, key, signature)`` lazily; the candidate columns of a
    group are built only when it is processed (:func:`_group_columns`), so a
    block never holds more than one group's columns at a time.
    """
    # one dense key per (bucket, signature) combination, via 1-D factorization
    keys = plan.buckets.keys[rows]
    group_of = dense_ranks(keys)
    for a in range(plan.signature.shape[1]):
        sig = plan.signature[rows, a] + 1  # -1 (not frequent) becomes 0
        group_of = dense_ranks(group_of * (int(sig.max()) + 1) + sig)
    order = np.argsort(group_of, kind="stable")
    n_groups = int(group_of.max()) + 1 if len(group_of) else 0
    bounds = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(group_of, minlength=n_groups), out=bounds[1:])
    for g in range(n_groups):
        members = order[bounds[g] : bounds[g + 1]]
        first = rows[members[0]]
        yield members, int(keys[members[0]]), plan.signature[first]


def _group_columns(plan: RulePlan, codes, key, signature):
    """Candidate columns of a dense group: its bucket minus the rows its signature excludes."""
    b = plan.buckets
    cols = b.order[b.starts[key] : b.starts[key + 1]]
    keep = np.ones(len(cols), dtype=bool)
    for a, c in enumerate(plan.rule.all_diff):
        if signature[a] >= 0:
            keep &= codes[cols, c] != signature[a]
    return cols[keep]


class _GatherCache:
    """Reuse the gathered candidate features when consecutive groups share columns."""

    def __init__(self, source):
        # a FeatureSource, or an array the kernels read in place
        self.take = (
            source.take
            if hasattr(source, "take") and not isinstance(source, np.ndarray)
            else (lambda cols: np.ascontiguousarray(source[cols]))
        )
        self.cols = None
        self.Xc = None

    def get(self, cols):
        if self.cols is None or len(cols) != len(self.cols) or not np.array_equal(cols, self.cols):
            self.cols = cols
            self.Xc = self.take(cols)
        return self.Xc


def _local_chunks(item, cap):
    """Split a direct-scan item so that each piece touches about ``cap`` rows at most.

    Long candidate ranges are cut into pieces of ``cap`` (the kernels add up
    what a query finds over several calls), and queries are packed by range so
    that the rows of one piece (its queries plus their candidates) stay near
    ``cap``. Order within a query's lists does not matter: positives are sorted
    afterwards and negatives are tallied.
    """
    slots, rows, lo, hi, index = item
    pieces = np.maximum(1, -(-(hi - lo) // cap))
    if (pieces > 1).any():
        rep = np.repeat(np.arange(len(rows)), pieces)
        k = np.arange(len(rep)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        slots, rows, new_lo = slots[rep], rows[rep], lo[rep] + k * cap
        lo, hi = new_lo, np.minimum(hi[rep], new_lo + cap)
    seg = lo * (len(index) + 1) + hi
    order = np.argsort(seg, kind="stable")
    slots, rows, lo, hi, seg = slots[order], rows[order], lo[order], hi[order], seg[order]
    first = np.ones(len(seg), dtype=bool)
    first[1:] = seg[1:] != seg[:-1]
    cost = 1 + np.where(first, hi - lo, 0)
    chunk = (np.cumsum(cost) - cost) // cap
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(chunk)) + 1, [len(rows)]])
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        yield slots[a:b], rows[a:b], lo[a:b], hi[a:b], index


def _local_cap(source, codes, budget) -> int:
    """Rows a gathered block may hold within ``budget`` bytes (features, codes, indices)."""
    return max(256, budget // (source.n_features * source.itemsize + 8 * codes.shape[1] + 32))


def _direct_args(prep, codes, item, budget):
    """Kernel arguments of a direct-scan item, gathered into a local block when needed.

    Yields ``(slots, rows, lo, hi, index, X, inv_norm, sq_norm, codes, local)``:
    with in-place features ``local`` is None and everything is global; otherwise
    rows, candidates and per-row helpers are renumbered into a gathered C-ordered
    block and ``local`` maps local row numbers back to global ones.
    """
    if prep.X is not None:
        yield (*item, prep.X, prep.inv_norm, prep.sq_norm, codes, None)
        return
    src = prep.source
    if isinstance(src, _BlockRows):
        held = _in_block_copy(src, item)
        if held is not None:
            yield held
            return
    for slots, rows, lo, hi, index in _local_chunks(item, _local_cap(src, codes, budget)):
        cands, lo_l = _segments(lo, hi, index)
        local, ids = np.unique(np.concatenate([rows, cands]), return_inverse=True)
        ids = ids.reshape(-1)
        inv = prep.inv_norm[local] if len(prep.inv_norm) else prep.inv_norm
        sq = prep.sq_norm[local] if len(prep.sq_norm) else prep.sq_norm
        yield (
            slots,
            ids[: len(rows)],
            lo_l,
            lo_l + (hi - lo),
            ids[len(rows) :],
            src.take(local),
            inv,
            sq,
            codes[local],
            local,
        )


def _segments(lo, hi, index):
    """The distinct ranges ``index[lo:hi]``, concatenated: (rows, start of each query's range)."""
    width = len(index) + 1
    seg, seg_of = np.unique(lo * width + hi, return_inverse=True)
    s_lo, s_len = seg // width, seg % width - seg // width
    starts = np.cumsum(s_len) - s_len
    pos = np.repeat(s_lo - starts, s_len) + np.arange(int(s_len.sum()), dtype=np.int64)
    return index[pos], starts[seg_of.reshape(-1)]


def _in_block_copy(src, item):
    """Kernel arguments of a direct-scan item read in place from a block's copy, or None.

    Rows and candidates are renumbered into positions of the copy (no gather);
    None when some of them are not in the copy.
    """
    slots, rows, lo, hi, index = item
    at_rows = src.positions(rows)
    if at_rows is None:
        return None
    cands, lo_l = _segments(lo, hi, index)
    at_cands = src.positions(cands)
    if at_cands is None:
        return None
    # queries that scan the same range one after the other: its rows are read once
    by_range = np.argsort(lo_l, kind="stable")
    return (
        slots[by_range],
        at_rows[by_range],
        lo_l[by_range],
        (lo_l + (hi - lo))[by_range],
        at_cands,
        src.X,
        src.inv_norm,
        src.sq_norm,
        src.codes,
        src.rows,
    )


def _dense_args(prep, Xq, Xc, qrows, cols):
    """(rows, cols, X, inv_norm, sq_norm) for the dense kernels.

    The kernels read features only to recompute near-cancelling euclidean
    distances; with gathered features those rows are renumbered into
    ``[Xq; Xc]``, otherwise ``Xc`` stands in for the unused argument.
    """
    if prep.X is not None:
        return qrows, cols, prep.X, prep.inv_norm, prep.sq_norm
    if prep.metric != K.EUCLIDEAN or not prep.gemm:
        return qrows, cols, Xc, prep.inv_norm, prep.sq_norm
    nq = len(qrows)
    sq = np.concatenate([prep.sq_norm[qrows], prep.sq_norm[cols]])
    return (
        np.arange(nq, dtype=np.int64),
        np.arange(nq, nq + len(cols), dtype=np.int64),
        np.concatenate([Xq, Xc]),
        prep.inv_norm,
        sq,
    )


def _split(plan, prep, codes, rows, slots, budget):
    """Plan one rule for one block, lazily and within ``budget`` bytes.

    Yields work items: ``("direct", (slots, rows, lo, hi, index))`` -- query
    ``q`` scans ``index[lo[q]:hi[q]]`` in a compiled loop -- or
    ``("gemm", group)`` for a dense group large enough for a matrix product.
    Small buckets, and dense groups with only a few queries, scan their bucket
    directly (no column list is built); other dense groups build their column
    list once, and small ones are batched into direct scans whose concatenated
    column lists stay within ``budget``.
    """
    b = plan.buckets
    big = (plan.bucket_size[rows] >= DENSE_MIN_BUCKET) & (prep.func is None)
    scan_slots, scan_rows = [slots[~big]], [rows[~big]]
    if big.any():
        pieces, g_slots, g_rows, g_lo, g_hi = [], [], [], [], []
        used = 0
        for members, key, signature in _dense_groups(plan, codes, rows[big], slots[big]):
            m_slots, m_rows = slots[big][members], rows[big][members]
            if len(members) < GROUP_MIN_QUERIES:
                scan_slots.append(m_slots)
                scan_rows.append(m_rows)
                continue
            cols = _group_columns(plan, codes, key, signature)
            if len(members) * len(cols) >= GEMM_MIN_ENTRIES and prep.gemm:
                yield "gemm", _Group(m_slots, m_rows, cols, signature >= 0)
                continue
            if used and (used + len(cols)) * 8 > budget:
                yield (
                    "direct",
                    (
                        np.concatenate(g_slots),
                        np.concatenate(g_rows),
                        np.concatenate(g_lo),
                        np.concatenate(g_hi),
                        np.concatenate(pieces),
                    ),
                )
                pieces, g_slots, g_rows, g_lo, g_hi = [], [], [], [], []
                used = 0
            pieces.append(cols)
            g_slots.append(m_slots)
            g_rows.append(m_rows)
            g_lo.append(np.full(len(members), used, dtype=np.int64))
            g_hi.append(np.full(len(members), used + len(cols), dtype=np.int64))
            used += len(cols)
        if pieces:
            yield (
                "direct",
                (
                    np.concatenate(g_slots),
                    np.concatenate(g_rows),
                    np.concatenate(g_lo),
                    np.concatenate(g_hi),
                    np.concatenate(pieces),
                ),
            )
    scan_slots, scan_rows = np.concatenate(scan_slots), np.concatenate(scan_rows)
    if len(scan_rows):
        keys = b.keys[scan_rows]
        yield "direct", (scan_slots, scan_rows, b.starts[keys], b.starts[keys + 1], b.order)


def _dense_steps(prep, gather, group, budget, plan, codes):
    """Yield (slots, rows, S, M) blocks of one dense group (features read in place).

    See :func:`_dense_steps_k`, which also yields the kernels' feature arguments.
    """
    for g_slots, qrows, S, M, _ in _dense_steps_k(prep, gather, group, budget, plan, codes):
        yield g_slots, qrows, S, M


def _dense_steps_k(prep, gather, group, budget, plan, codes):
    """Yield (slots, rows, S, M, kargs) blocks of one dense group, each within ``budget`` bytes.

    ``S`` holds dot products (or similarities), ``M`` marks the entries that
    satisfy the rule, ``kargs`` the feature arguments of the kernels
    (:func:`_dense_args`).
    """
    Xc = gather.get(group.cols)
    step = max(1, budget // max(1, len(group.cols) * (prep.source.itemsize + 1)))
    for start in range(0, len(group.rows), step):
        qrows = group.rows[start : start + step]
        mask = _rule_mask(
            plan.rule, codes, qrows, group.cols, bucketed=True, excluded=group.excluded
        )
        Xq = _rows_of(Xc, group.cols, qrows)
        if Xq is None:
            Xq = prep.X[qrows] if prep.X is not None else prep.source.take(qrows)
        kargs = _dense_args(prep, Xq, Xc, qrows, group.cols)
        yield group.slots[start : start + step], qrows, dense_block(prep, Xq, Xc), mask, kargs


def _rows_of(Xc, cols, rows):
    """The features of ``rows`` taken from ``Xc`` (the gathered ``cols``), or None.

    With per-plate negatives a dense group's queries are rows of its own plate, so
    their features are already in the plate's gathered (cache-hot) block: copying
    them from there spares a second read of rows scattered over the matrix.
    """
    if not len(cols) or not len(rows):
        return None
    at = np.minimum(np.searchsorted(cols, rows), len(cols) - 1)
    if not np.array_equal(cols[at], rows):
        return None
    return Xc[at]


class _BlockRows:
    """A block's rows of a gathered source, read once into a C-ordered copy.

    Features that cannot be read in place (Fortran order, memory maps, row
    subsets) cost a gather per request, so the same rows would be gathered once
    for the positives and again for the negatives. Requests for rows held here
    are served from the copy (the same values: the copy came from the source);
    any other request goes to the source.
    """

    def __init__(self, source, rows, prep, codes):
        self.source = source
        self.rows = rows  # sorted, unique
        self.X = source.take(rows)
        # per-row helpers of the copy, for kernels that read it in place
        self.inv_norm = prep.inv_norm[rows] if len(prep.inv_norm) else prep.inv_norm
        self.sq_norm = prep.sq_norm[rows] if len(prep.sq_norm) else prep.sq_norm
        self.codes = codes[rows]

    def __getattr__(self, name):
        return getattr(self.source, name)

    def positions(self, rows):
        """Positions of ``rows`` in the copy, or None when some are not held."""
        at = np.minimum(np.searchsorted(self.rows, rows), len(self.rows) - 1)
        return at if np.array_equal(self.rows[at], rows) else None

    def take(self, rows):
        rows = np.asarray(rows, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.rows, rows), len(self.rows) - 1)
        held = self.rows[at] == rows
        if held.all():
            return self.X[at]
        out = np.empty((len(rows), self.X.shape[1]), dtype=self.X.dtype)
        out[held] = self.X[at[held]]
        out[~held] = self.source.take(rows[~held])
        return out


def _block_buckets(prep, neg, rows, budget, codes):
    """Negative buckets whose rows a block copies (see :func:`_with_block_rows`), or None."""
    if prep.X is not None or prep.func is not None or not len(rows):
        return None
    b = neg.buckets
    keys = np.unique(b.keys[rows])
    if int((b.starts[keys + 1] - b.starts[keys]).sum()) > _local_cap(prep.source, codes, budget):
        return None
    return keys


def _with_block_rows(prep, neg, rows, budget, codes):
    """``prep`` reading a block's rows from one gathered copy, when they fit in ``budget``.

    The rows are the block's queries and every row of their negative buckets
    (plates, with per-plate negatives), which hold the negatives and, in the usual
    layouts, the replicates. Returns ``prep`` itself for sources read in place,
    user callables, and blocks whose rows would not fit.
    """
    keys = _block_buckets(prep, neg, rows, budget, codes)
    if keys is None:
        return prep
    b = neg.buckets
    sizes = b.starts[keys + 1] - b.starts[keys]
    starts = np.repeat(b.starts[keys] - (np.cumsum(sizes) - sizes), sizes)
    members = b.order[starts + np.arange(int(sizes.sum()), dtype=np.int64)]
    need = np.unique(np.concatenate([rows, members]))
    return replace(prep, source=_BlockRows(prep.source, need, prep, codes))


def _held_positives(prep, pos, neg, queries, bounds, budget, codes):
    """Rows whose positives lie in their own block's copy (they need no pre-pass).

    A small positive bucket is held when all its rows' negative buckets are copied
    by one block (:func:`_with_block_rows`) and the query is in that block: with
    per-plate negatives and replicates on neighbouring plates, most are. Only
    gathered sources copy blocks; returns None otherwise.
    """
    if prep.X is not None or prep.func is not None:
        return None
    block_of_bucket = np.full(len(neg.buckets.starts) - 1, -1, dtype=np.int64)
    query_block = np.empty(len(queries), dtype=np.int64)
    for i in range(len(bounds) - 1):
        rows = queries[bounds[i] : bounds[i + 1]]
        query_block[bounds[i] : bounds[i + 1]] = i
        keys = _block_buckets(prep, neg, rows, budget, codes)
        if keys is not None:
            free = keys[block_of_bucket[keys] < 0]
            block_of_bucket[free] = i
    row_block = block_of_bucket[neg.buckets.keys]
    b = pos.buckets
    members = row_block[b.order]
    starts = b.starts[:-1]
    nonempty = b.starts[1:] > starts
    lo = np.full(len(starts), -1, dtype=np.int64)
    hi = np.full(len(starts), -2, dtype=np.int64)
    lo[nonempty] = np.minimum.reduceat(members, starts[nonempty])
    hi[nonempty] = np.maximum.reduceat(members, starts[nonempty])
    bucket_block = np.where((lo == hi) & (lo >= 0), lo, -2)
    held = np.zeros(len(row_block), dtype=bool)
    held[queries] = bucket_block[b.keys[queries]] == query_block
    return held


def _collect_positives(plan, prep, codes, rows, budget, gather, callable_chunk, known=None):
    """Similarities of every query's positives, sorted ascending per query (CSR layout).

    Lists already in ``known`` (a :class:`KnownPositives`) are copied, not recomputed.
    """
    n_rows = len(rows)
    slots = np.arange(n_rows, dtype=np.int64)
    caps = plan.bucket_size[rows].astype(np.int64)  # upper bound of every list
    offsets = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(caps, out=offsets[1:])
    values = np.empty(int(offsets[-1]), dtype=np.float64)
    counts = np.zeros(n_rows, dtype=np.int64)
    if known is not None:
        found = known.copy_into(rows, offsets, counts, values)
        slots, rows = slots[~found], rows[~found]
        if not len(rows):
            return values, offsets, counts
    no_conflict = np.full(n_rows, -1, dtype=np.int64)
    r = plan.rule.as_tuple()
    if prep.func is not None:
        _collect_callable(
            plan,
            plan,
            False,
            prep,
            codes,
            rows,
            offsets,
            counts,
            values,
            no_conflict,
            callable_chunk,
        )
    else:
        metric = prep.metric if prep.gemm else K.PRECOMPUTED
        for kind, item in _split(plan, prep, codes, rows, slots, budget):
            if kind == "direct":
                for *args, _local in _direct_args(prep, codes, item, budget):
                    K.collect_direct(
                        *args[:8],
                        prep.metric,
                        args[8],
                        *r,
                        *r,
                        False,
                        offsets,
                        counts,
                        values,
                        no_conflict,
                    )
                continue
            for g_slots, _, S, M, kargs in _dense_steps_k(prep, gather, item, budget, plan, codes):
                k_rows, k_cols, X, inv, sq = kargs
                K.collect_dense(
                    g_slots, k_rows, k_cols, S, M, X, inv, sq, metric, offsets, counts, values
                )
    sort_lists(values, offsets, counts)
    return values, offsets, counts


@dataclass
class KnownPositives:
    """Sorted positive lists computed ahead of the blocks (see :func:`_positives_prepass`).

    The lists are stored chunk by chunk, compactly: chunk ``c`` holds the lists of
    slots ``bounds[c]:bounds[c + 1]`` in ``values[c]``, list ``s`` starting at
    ``starts[s]`` (within its chunk) with ``counts[s]`` values. ``slot_of[row]`` is
    the row's slot, or -1 when the row has no list here.
    """

    slot_of: np.ndarray
    bounds: np.ndarray
    values: list
    starts: np.ndarray
    counts: np.ndarray

    def copy_into(self, rows, offsets, counts, values) -> np.ndarray:
        """Copy the lists of ``rows`` into a block's CSR arrays; True where a list was known."""
        src_slot = self.slot_of[rows]
        found = src_slot >= 0
        dst = np.flatnonzero(found)
        src_slot = src_slot[found]
        n = self.counts[src_slot].astype(np.int64)
        counts[dst] = n
        total = int(n.sum())
        if not total:
            return found
        # every value's chunk, its position there and its place in the block's buffer
        within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
        target = np.repeat(offsets[dst], n) + within
        source = np.repeat(self.starts[src_slot].astype(np.int64), n) + within
        chunk = np.repeat(np.searchsorted(self.bounds, src_slot, side="right") - 1, n)
        order = np.argsort(chunk, kind="stable")
        edges = np.searchsorted(chunk[order], np.arange(len(self.values) + 1))
        for c in range(len(self.values)):
            part = order[edges[c] : edges[c + 1]]
            if len(part):
                values[target[part]] = self.values[c][source[part]]
        return found


def _by_first_use(rows, keys, n_keys):
    """``rows`` (in query order) grouped by bucket, buckets in the order the blocks reach them.

    Each bucket's rows stay in query order. In that order the pre-pass reads the
    rows of neighbouring plates together (with rows in random order too), and each
    block finds its queries' lists in one or two chunks.
    """
    by_key = KO.lex_order(keys[None, :], np.array([n_keys], dtype=np.int64))
    sorted_keys = keys[by_key]
    head = np.ones(len(rows), dtype=bool)
    head[1:] = sorted_keys[1:] != sorted_keys[:-1]
    first = np.empty(n_keys, dtype=np.int64)
    first[sorted_keys[head]] = by_key[head]
    rank = first[keys]
    return rows[KO.lex_order(rank[None, :], np.array([len(rows)], dtype=np.int64))]


def _positives_prepass(plan, prep, codes, queries, max_memory, workers, held=None):
    """Positive lists of the queries with small positive buckets, computed bucket by bucket.

    Blocks are ordered by the negative rule's buckets (plates, say), so a query's
    positives (its replicates, say) may lie anywhere in the matrix when replicates
    sit on random plates or rows are shuffled. Computing them here, with the queries
    of each positive bucket one after the other, reads every bucket's rows once
    instead of once per query. Each list is computed by the same direct kernel as in
    the blocks (small buckets never take the matrix-product path), so results are
    identical bit for bit; this only changes the order of the work.

    Rows marked in ``held`` (positives in their own block's copy of a gathered
    source, see :func:`_held_positives`) are left to their blocks.

    Returns a :class:`KnownPositives`, or None when there is nothing to do or the
    lists would need more than ``max_memory // PREPASS_SHARE`` bytes.
    """
    if prep.func is not None or not len(queries):
        return None
    rows = queries[plan.bucket_size[queries] < DENSE_MIN_BUCKET]
    if held is not None:
        rows = rows[~held[rows]]
    if not len(rows):
        return None
    n = codes.shape[0]
    need = int(plan.bucket_size[rows].sum()) * _ITEM + (3 * len(rows) + n) * 8
    if need > max_memory // PREPASS_SHARE:
        logger.debug("positives pre-pass skipped: %d bytes needed", need)
        return None
    rows = _by_first_use(rows, plan.buckets.keys[rows], len(plan.buckets.starts) - 1)
    r = plan.rule.as_tuple()
    keys = plan.buckets.keys[rows]
    # chunks end at bucket boundaries, so each bucket's rows are read by one thread
    step = max(MIN_BLOCK_QUERIES, -(-len(rows) // (8 * max(1, workers))))
    bounds = [0]
    while bounds[-1] < len(rows):
        stop = min(len(rows), bounds[-1] + step)
        while stop < len(rows) and keys[stop] == keys[stop - 1]:
            stop += 1
        bounds.append(stop)
    b = plan.buckets
    budget = _budgets(max_memory, plan_workers_for(workers))[1]
    chunk_values = [None] * (len(bounds) - 1)
    # list starts within a chunk, and list lengths (under DENSE_MIN_BUCKET): 32 bits suffice
    wide = int(plan.bucket_size[rows].sum()) >= 2**31
    starts = np.empty(len(rows), dtype=np.int64 if wide else np.int32)
    counts = np.empty(len(rows), dtype=np.int32)

    def run_chunk(i):
        sl = slice(bounds[i], bounds[i + 1])
        c_rows, c_keys = rows[sl], keys[sl]
        m = len(c_rows)
        c_offsets = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(plan.bucket_size[c_rows], out=c_offsets[1:])  # room for whole buckets
        c_values = np.empty(int(c_offsets[-1]), dtype=np.float64)
        c_counts = np.zeros(m, dtype=np.int64)
        item = (
            np.arange(m, dtype=np.int64),
            c_rows,
            b.starts[c_keys],
            b.starts[c_keys + 1],
            b.order,
        )
        for *args, _local in _direct_args(prep, codes, item, budget):
            K.collect_direct(
                *args[:8],
                prep.metric,
                args[8],
                *r,
                *r,
                False,
                c_offsets,
                c_counts,
                c_values,
                np.full(m, -1, dtype=np.int64),
            )
        sort_lists(c_values, c_offsets, c_counts)
        # keep only the lists themselves, one after the other
        within = np.arange(int(c_counts.sum()), dtype=np.int64)
        within -= np.repeat(np.cumsum(c_counts) - c_counts, c_counts)
        chunk_values[i] = c_values[np.repeat(c_offsets[:-1], c_counts) + within]
        counts[sl] = c_counts
        starts[sl] = np.cumsum(c_counts) - c_counts

    run_blocks(len(bounds) - 1, run_chunk, lambda _: None, max(1, workers))
    slot_of = np.full(n, -1, dtype=np.int32 if len(rows) < 2**31 else np.int64)
    slot_of[rows] = np.arange(len(rows))
    return KnownPositives(slot_of, np.asarray(bounds, dtype=np.int64), chunk_values, starts, counts)


def sort_lists(values, offsets, counts):
    """Sort every list ``values[offsets[s]:offsets[s] + counts[s]]`` ascending, in place.

    Short lists in one compiled pass; long ones with NumPy's (SIMD) sort.
    """
    K.sort_segments(values, offsets, counts, LONG_LIST)
    for slot in np.flatnonzero(counts > LONG_LIST):
        seg = values[offsets[slot] : offsets[slot] + counts[slot]]
        seg.sort()


def _rank_negatives(
    plan, other, check_other, prep, codes, rows, budget, gather, conflict, positives, callable_chunk
):
    """Tally every query's negatives against its sorted positives (no negative is stored)."""
    pos_values, pos_offsets, pos_counts = positives
    n_rows = len(rows)
    gt = np.zeros(len(pos_values) + n_rows, dtype=np.int64)
    eq = np.zeros_like(gt)
    neg_counts = np.zeros(n_rows, dtype=np.int64)
    active = np.flatnonzero(pos_counts > 0)
    if len(active) == 0:
        return gt, eq, neg_counts
    arows = rows[active]
    r = plan.rule.as_tuple()
    o = other.rule.as_tuple()
    if prep.func is not None:
        caps = np.zeros(n_rows, dtype=np.int64)
        caps[active] = plan.bucket_size[arows]
        offsets = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(caps, out=offsets[1:])
        values = np.empty(int(offsets[-1]), dtype=np.float64)
        _collect_callable(
            plan,
            other,
            check_other,
            prep,
            codes,
            rows,
            offsets,
            neg_counts,
            values,
            conflict,
            callable_chunk,
            only=active,
        )
        K.rank_values(values, offsets, neg_counts, pos_values, pos_offsets, pos_counts, gt, eq)
        return gt, eq, neg_counts
    common = (pos_values, pos_offsets, pos_counts, gt, eq, neg_counts, conflict)
    metric = prep.metric if prep.gemm else K.PRECOMPUTED
    for kind, item in _split(plan, prep, codes, arows, active, budget):
        if kind == "direct":
            for *args, local in _direct_args(prep, codes, item, budget):
                found = conflict if local is None else np.full_like(conflict, -1)
                K.rank_direct(
                    *args[:8], prep.metric, args[8], *r, *o, check_other, *common[:-1], found
                )
                if local is not None and check_other:
                    hit = found >= 0
                    conflict[hit] = local[found[hit]]
            continue
        for g_slots, qrows, S, M, kargs in _dense_steps_k(prep, gather, item, budget, plan, codes):
            if check_other:
                both = M & _rule_mask(other.rule, codes, qrows, item.cols)
                hit = np.argwhere(both)
                if len(hit):
                    conflict[g_slots[hit[0, 0]]] = item.cols[hit[0, 1]]
            k_rows, k_cols, X, inv, sq = kargs
            K.rank_dense(
                g_slots,
                k_rows,
                k_cols,
                S,
                M,
                X,
                inv,
                sq,
                metric,
                pos_values,
                pos_offsets,
                pos_counts,
                gt,
                eq,
                neg_counts,
            )
    return gt, eq, neg_counts


def _collect_callable(
    plan, other, check_other, prep, codes, rows, offsets, counts, values, conflict, chunk, only=None
):
    """Sparse enumeration of partners, then the user's similarity in chunks of row pairs."""
    n_rows = len(rows)
    slots = np.arange(n_rows, dtype=np.int64) if only is None else only
    partners = np.empty(len(values), dtype=np.float64)  # row numbers, exact in float64
    b = plan.buckets
    qrows = rows[slots]
    keys = b.keys[qrows]
    # PARTNER stores partner rows: the kernel does not read features
    X_unused = prep.X if prep.X is not None else prep.source.take(np.zeros(1, dtype=np.int64))
    K.collect_direct(
        slots,
        qrows,
        b.starts[keys],
        b.starts[keys + 1],
        b.order,
        X_unused,
        prep.inv_norm,
        prep.sq_norm,
        K.PARTNER,
        codes,
        *plan.rule.as_tuple(),
        *other.rule.as_tuple(),
        check_other,
        offsets,
        counts,
        partners,
        conflict,
    )
    owner = np.repeat(rows, counts)
    starts = np.cumsum(counts) - counts
    pos = np.repeat(offsets[:-1], counts) + (
        np.arange(int(counts.sum())) - np.repeat(starts, counts)
    )
    partner_rows = partners[pos].astype(np.int64)
    take = prep.X.__getitem__ if prep.X is not None else prep.source.take
    for start in range(0, len(pos), chunk):
        a = owner[start : start + chunk]
        bb = partner_rows[start : start + chunk]
        sims = np.asarray(prep.func(take(a), take(bb)), dtype=np.float64).reshape(-1)
        if sims.shape[0] != len(a):
            raise ValueError(
                f"the distance callable returned {sims.shape[0]} values for {len(a)} row pairs; "
                f"it must return one similarity per row pair"
            )
        if not np.all(np.isfinite(sims)):
            raise ValueError("the distance callable returned NaN or infinite similarities")
        values[pos[start : start + chunk]] = np.floor(sims * K.SNAP + 0.5) / K.SNAP


def _query_order(pos: RulePlan, neg: RulePlan, rows=None) -> np.ndarray:
    """Rows that can be scored (both buckets hold others), ordered so blocks share buckets."""
    candidates = np.flatnonzero((pos.bucket_size > 1) & (neg.bucket_size > 1))
    if rows is not None:
        candidates = candidates[np.isin(candidates, rows)]
    # by negative bucket, then its frequent-diffby signature, then positive bucket, then row
    levels = [neg.buckets.keys[candidates]]
    levels += [neg.signature[candidates, a] + 1 for a in range(neg.signature.shape[1])]
    levels += [pos.buckets.keys[candidates]]
    levels = np.ascontiguousarray(np.stack(levels), dtype=np.int64)
    return candidates[KO.lex_order(levels, levels.max(axis=1, initial=-1) + 1)]


def _budgets(max_memory: int, workers: int) -> tuple[int, int]:
    """(block buffer, matrix-product) byte budgets when ``workers`` blocks run at once."""
    per_worker = max(1 << 22, max_memory // workers)  # every worker holds one block
    return per_worker // 2, per_worker // 4


def _block_bounds(prep, pos, neg, queries, buffer_budget, batch_size, workers) -> list[int]:
    """Block boundaries in ``queries`` (see :func:`block_bounds`)."""
    if prep.func is None:
        est = pos.bucket_size[queries] * (3 * _ITEM) + 64
    else:  # callables scan whole buckets and keep partner indices too
        est = (pos.bucket_size + neg.bucket_size)[queries] * (2 * _ITEM) + 64
    edges = _bucket_edges(pos, neg, queries)
    return block_bounds(est, buffer_budget, batch_size, workers, edges)


def plan_blocks(prep, codes, pos_rule, neg_rule, *, max_memory, batch_size, n_workers):
    """The blocks of query rows :func:`compute_average_precision` would process, in order.

    Which rows share a block decides which similarities come from a matrix
    product and which from a direct loop (last-bit differences that the tie
    grid almost always absorbs). The plan assumes :func:`plan_workers_for`
    workers, the same for every thread count up to :data:`PLAN_WORKERS`, so a
    scheduler that hands out whole blocks of this plan (``blocks=``, with
    ``plan_workers=n_workers``) reproduces a single-machine run exactly.
    """
    pos, neg = RulePlan.build(codes, pos_rule), RulePlan.build(codes, neg_rule)
    queries = _query_order(pos, neg)
    workers = 1 if prep.func is not None else plan_workers_for(max(1, int(n_workers)))
    buffer_budget, _ = _budgets(max_memory, workers)
    bounds = _block_bounds(prep, pos, neg, queries, buffer_budget, batch_size, workers)
    return [queries[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def compute_average_precision(
    prep: PreparedFeatures,
    codes: np.ndarray,
    pos_rule: EncodedRule,
    neg_rule: EncodedRule,
    *,
    ties_expected: bool = False,
    max_memory: int = 1 << 30,
    batch_size: int | None = None,
    n_workers: int = 1,
    progress=None,
    metrics: MetricSpec | None = None,
    rows=None,
    blocks=None,
    plan_workers=None,
):
    """AP, positive count and list length for every row.

    Parameters
    ----------
    prep : PreparedFeatures
    codes : numpy.ndarray
        (n, n_columns) int64 group codes.
    pos_rule, neg_rule : EncodedRule
    ties_expected : bool
        Expected AP over random tie orders instead of positives-first.
    max_memory : int
        Bound, in bytes, on the block buffers (similarity lists and matrix
        product blocks). Input features are not counted.
    batch_size : int, optional
        Maximum number of queries per block (default: set by ``max_memory``).
    n_workers : int
        Threads processing blocks concurrently (kernels are serial and BLAS
        is held to one thread by the caller, so there is no oversubscription).
    progress : callable, optional
        Called with the number of queries finished after each block.
    metrics : MetricSpec, optional
        Further per-query metrics, written into ``metrics.out`` (one column
        per metric; rows that are never scored keep their NaN).
    rows : numpy.ndarray, optional
        Score only these rows (the others keep NaN and zero counts).
    blocks : list of numpy.ndarray, optional
        Process exactly these blocks of query rows (a share of
        :func:`plan_blocks`), e.g. on a Dask worker.
    plan_workers : int, optional
        The thread count the block plan and its memory budgets assume
        (default ``n_workers``); with ``blocks`` from :func:`plan_blocks`
        pass the same ``n_workers`` as there.

    Returns
    -------
    ap : numpy.ndarray (float64), n_pos : numpy.ndarray (int64), n_total : numpy.ndarray (int64)
    pos_pairs_found, neg_pairs_found : int
        Totals over all scored lists (before the NaN rule), for error reporting.
    """
    n = codes.shape[0]
    ap = np.full(n, np.nan)
    n_pos = np.zeros(n, dtype=np.int64)
    n_total = np.zeros(n, dtype=np.int64)
    pos = RulePlan.build(codes, pos_rule)
    neg = RulePlan.build(codes, neg_rule)
    totals = {"pos": 0, "neg": 0}
    # Pairs cannot satisfy both rules when a column must be equal in one and differ in the other.
    disjoint = bool(
        set(pos_rule.all_same.tolist()) & set(neg_rule.all_diff.tolist())
        or set(neg_rule.all_same.tolist()) & set(pos_rule.all_diff.tolist())
    )
    queries = _query_order(pos, neg, rows)
    if len(queries) == 0 or (blocks is not None and not len(blocks)):
        return ap, n_pos, n_total, totals

    workers = 1 if prep.func is not None else max(1, int(n_workers))
    plan = (
        workers
        if prep.func is not None
        else plan_workers_for(workers if plan_workers is None else max(1, int(plan_workers)))
    )
    buffer_budget, gemm_budget = _budgets(max_memory, plan)
    if blocks is None:
        bounds = _block_bounds(prep, pos, neg, queries, buffer_budget, batch_size, plan)
    else:  # a scheduler's share of a plan made by plan_blocks: exactly those blocks
        queries = np.concatenate(blocks) if len(blocks) else queries[:0]
        bounds = np.concatenate([[0], np.cumsum([len(b) for b in blocks])]).tolist()
    held = _held_positives(prep, pos, neg, queries, bounds, buffer_budget, codes)
    known = _positives_prepass(pos, prep, codes, queries, max_memory, workers, held)
    local = threading.local()

    def run_block(b):
        rows = queries[bounds[b] : bounds[b + 1]]
        b_prep = _with_block_rows(prep, neg, rows, buffer_budget, codes)
        if b_prep is not prep:  # this block's own copy of its rows: a gather cache of its own
            gather = _GatherCache(b_prep.source)
        else:
            gather = getattr(local, "gather", None)
            if gather is None:
                gather = local.gather = _GatherCache(prep.source)
        conflict = np.full(len(rows), -1, dtype=np.int64)
        positives = _collect_positives(
            pos, b_prep, codes, rows, gemm_budget, gather, CALLABLE_CHUNK, known
        )
        gt, eq, nc = _rank_negatives(
            neg,
            pos,
            not disjoint,
            b_prep,
            codes,
            rows,
            gemm_budget,
            gather,
            conflict,
            positives,
            CALLABLE_CHUNK,
        )
        pv, po, pc = positives
        b_ap = np.empty(len(rows))
        b_np = np.empty(len(rows), dtype=np.int64)
        b_nt = np.empty(len(rows), dtype=np.int64)
        K.score_block(pv, po, pc, gt, eq, nc, ties_expected, b_ap, b_np, b_nt)
        b_metrics = None
        if metrics is not None:  # same tallies, no second similarity pass
            b_metrics = np.empty((len(rows), len(metrics.kinds)))
            KM.score_metrics(
                pv, po, pc, gt, eq, nc, ties_expected, metrics.kinds, metrics.cuts, b_metrics
            )
        return rows, b_ap, b_np, b_nt, int(pc.sum()), int(nc.sum()), conflict, b_metrics

    def consume(result):
        rows, b_ap, b_np, b_nt, n_p, n_n, conflict, b_metrics = result
        bad = np.flatnonzero(conflict >= 0)
        if len(bad):
            raise overlap_error(int(rows[bad[0]]), int(conflict[bad[0]]))
        ap[rows] = b_ap
        n_pos[rows] = b_np
        n_total[rows] = b_nt
        if b_metrics is not None:
            metrics.out[rows] = b_metrics
        totals["pos"] += n_p
        totals["neg"] += n_n
        if progress is not None:
            progress(len(rows))

    run_blocks(len(bounds) - 1, run_block, consume, workers)
    return ap, n_pos, n_total, totals


def block_bounds(est, buffer_budget, batch_size, workers, edges=None):
    """Split queries with buffer estimates ``est`` (bytes) into blocks within ``buffer_budget``.

    Returns the block boundaries (``[0, ..., len(est)]``). Blocks hold at most
    ``batch_size`` queries (default: enough blocks to keep every worker busy,
    few enough to amortize per-block work) and at least one query.

    ``edges`` is ``(positions, costs)``: preferred cut positions (sorted) and
    what cutting there costs. A block then ends at the cheapest of them
    between half its nominal size and, without ``batch_size``, twice it (never
    beyond the buffer budget), the one nearest its nominal size among equals;
    only when there is none is it cut at its nominal size. The end of the
    queries is always a cut of cost 0.
    """
    n = len(est)
    csum = np.cumsum(est)
    per_block = batch_size or int(
        min(DEFAULT_BLOCK_QUERIES, max(MIN_BLOCK_QUERIES, -(-n // (4 * workers))))
    )
    longest = per_block if batch_size else 2 * per_block
    if edges is not None:
        at = np.append(np.asarray(edges[0], dtype=np.int64), n)
        cost = np.append(np.asarray(edges[1], dtype=np.int64), 0)
    bounds = [0]
    while bounds[-1] < n:
        start = bounds[-1]
        base = csum[start - 1] if start else 0
        fits = max(int(np.searchsorted(csum, base + buffer_budget, side="right")), start + 1)
        stop = min(fits, start + per_block)
        if edges is not None:
            lo, hi = start + max(1, per_block // 2), min(fits, start + longest)
            a, b = np.searchsorted(at, lo), np.searchsorted(at, hi, side="right")
            if b > a:  # cheapest first, then nearest the nominal cut
                best = np.lexsort((np.abs(at[a:b] - stop), cost[a:b]))[0]
                stop = int(at[a + best])
        bounds.append(stop)
    return bounds


def _bucket_edges(pos: RulePlan, neg: RulePlan, queries: np.ndarray):
    """Preferred block cuts in ``queries``: negative-bucket edges, and what each costs.

    Queries come grouped by negative bucket (plates, with per-plate negatives).
    Cutting blocks between buckets means no bucket's rows are copied by two
    blocks; a cut costs the number of small positive buckets (replicates) with
    rows on both sides of it, so cheap cuts let blocks hold their queries'
    positives too (see :func:`_held_positives`). Depends on the metadata only,
    so plans stay the same whatever the layout, the thread count or the number
    of Dask workers. Returns None when all queries share one negative bucket.
    """
    keys = neg.buckets.keys[queries]
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    if not len(change):
        return None
    # index of each negative bucket in the query order (-1: no query in it)
    index = np.full(len(neg.buckets.starts) - 1, -1, dtype=np.int64)
    index[keys[np.concatenate([[0], change])]] = np.arange(len(change) + 1)
    row_index = index[neg.buckets.keys]
    b = pos.buckets
    sizes = b.starts[1:] - b.starts[:-1]
    filled = sizes > 0
    members = row_index[b.order]
    # first and last negative bucket (in query order) of every small positive bucket
    first = np.minimum.reduceat(members, b.starts[:-1][filled]) if len(members) else members
    last = np.maximum.reduceat(members, b.starts[:-1][filled]) if len(members) else members
    small = ((sizes > 1) & (sizes < DENSE_MIN_BUCKET))[filled]
    small &= first >= 0  # a bucket with rows outside the query order fits no block anyway
    first, last = first[small], last[small]
    # small positive buckets with rows on both sides of bucket edge k (k = 1, 2, ...)
    width = len(change) + 2
    spanning = np.bincount(first + 1, minlength=width) - np.bincount(last + 1, minlength=width)
    return change, np.cumsum(spanning)[1 : len(change) + 1]


def run_blocks(n_blocks, run_block, consume, workers):
    """``consume(run_block(b))`` for every block, on ``workers`` threads.

    At most ``workers`` blocks are in flight, so memory stays bounded;
    ``consume`` runs in the calling thread.
    """
    if workers == 1 or n_blocks == 1:
        for b in range(n_blocks):
            consume(run_block(b))
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pairmap") as pool:
        pending = set()
        next_block = 0
        while next_block < n_blocks or pending:
            while next_block < n_blocks and len(pending) < workers:
                pending.add(pool.submit(run_block, next_block))
                next_block += 1
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                consume(fut.result())
