"""The permutation null of :func:`pairmap.mean_average_precision` (``null="permutation"``).

Hypothesis tested for a group ``G`` (e.g. a compound's replicates): *the
profiles of G are exchangeable with the profiles they are ranked against*. The
group's **pool** is ``G`` plus every negative of its members (the controls for a
phenotypic-activity analysis; every other profile for a consistency analysis).
When the negative rule keeps negatives within a block (``neg_sameby``, e.g. the
plate), the pool is split into those blocks.

A relabeling picks, in every block, as many pool profiles as ``G`` has there,
uniformly at random; each picked profile is scored like the engine scores a
member: the other picked profiles are its positives, the unpicked pool profiles
of its block its negatives, with the real similarities, the engine's tie rule
and the engine's AP and mean. ``G`` itself is one of the relabelings, so
``p = (1 + #{null >= observed}) / (1 + B)`` for ``B`` sampled relabelings (or
``#{null >= observed} / C`` when all ``C`` relabelings fit in ``null_size`` and
are enumerated) is a valid p-value at every finite sample size.

The group statistic of a relabeling is computed from similarity rows sorted
once per pool *base* (profiles shared by many pools, e.g. the controls) plus the
group's own rows; see :mod:`pairmap._kernels.permutation`.

Applicability is checked per group from the engine's own counts: every member
must have the other members as its positives and exactly the unpicked pool
profiles of its block as negatives. Groups that fail the check, or whose null
would need more than :data:`MAX_WORK` operations or more than
:data:`POOL_BUDGET_BYTES` of similarity rows, are reported back to the caller,
which tests them with the ``"shared"`` null (conservative) and warns.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from pairmap.pairing import Buckets, EncodedRule, group_keys, rule_mask

__all__ = [
    "CONTEXT_ATTR",
    "PERMUTATION_VERSION",
    "PermutationContext",
    "attach_context",
    "context_of",
    "permutation_pvalues",
]

logger = logging.getLogger(__name__)


def _kp():
    """The compiled permutation kernels (imported on first use: importing numba is slow)."""
    from pairmap._kernels import permutation

    return permutation


class _Compiled:
    """The compiled backend of :class:`PermutationTester` (numba kernels, loaded lazily)."""

    tables = True

    def __getattr__(self, name):
        return getattr(_kp(), name)

    @staticmethod
    def sorted_mean(values):
        from pairmap._kernels.nulls import sorted_mean

        return sorted_mean(values)


def _backend(name: str):
    """``"compiled"`` (numba kernels) or ``"numpy"`` (small screens, :mod:`pairmap._small`)."""
    if name == "numpy":
        from pairmap._small import permutation

        return permutation
    return _Compiled()


#: ``DataFrame.attrs`` key under which :func:`pairmap.average_precision` records its context
CONTEXT_ATTR = "pairmap_context"
#: Version of the relabeling sampler; part of every permutation stream key.
PERMUTATION_VERSION = 1
#: Largest similarity-row storage (base rows, sorted and unsorted) for one pool.
POOL_BUDGET_BYTES = 512 * 2**20
#: Largest cost (relabelings x k**2) of one group's null before it falls back.
MAX_WORK = 4 * 10**9
#: Largest tables of base-only relabelings shared across groups (see ``_kernels.permutation``).
TABLE_BUDGET_BYTES = 256 * 2**20
#: Bases kept for reuse across groups.
_BASE_CACHE_BYTES = 768 * 2**20
#: mAPs are compared on a grid of 2**-40 (equal rationals summed in different orders tie)
_MAP_GRID = 2.0**40
#: Observed APs recomputed from the pool may differ from the engine's by rounding only.
_AP_TOLERANCE = 1e-9


@dataclass(frozen=True, eq=False)
class PermutationContext:
    """What :func:`pairmap.average_precision` saw: features, pairing codes, rules and results.

    Held by reference (no copy of the features); see :func:`attach_context`.
    """

    prep: object  # pairmap.similarity.PreparedFeatures
    codes: np.ndarray
    pos_rule: EncodedRule
    neg_rule: EncodedRule
    ties_expected: bool
    ap: np.ndarray
    n_pos: np.ndarray
    n_total: np.ndarray
    #: every similarity, for small screens (:mod:`pairmap._small`); None otherwise
    similarity: np.ndarray | None = None


class _ContextToken(str):
    """A string carrying a :class:`PermutationContext`.

    pandas deep-copies ``DataFrame.attrs`` on most operations and writes them
    as JSON to Parquet: a ``str`` subclass whose copies are itself keeps the
    context by reference through both, and pickles as a plain string.
    """

    context: PermutationContext

    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self

    def __reduce__(self):
        return (str, (str(self),))


def attach_context(frame, context: PermutationContext) -> None:
    """Record ``context`` in ``frame.attrs`` (by reference, cheap to copy).

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"a": [1]})
    >>> context_of(frame) is None
    True
    """
    token = _ContextToken(f"pairmap.average_precision result ({len(context.ap)} profiles)")
    token.context = context
    frame.attrs[CONTEXT_ATTR] = token


def context_of(frame) -> PermutationContext | None:
    """The context recorded by :func:`attach_context`, or ``None``."""
    token = frame.attrs.get(CONTEXT_ATTR) if hasattr(frame, "attrs") else None
    return getattr(token, "context", None)


def rows_of(frame, context: PermutationContext) -> tuple[np.ndarray | None, str]:
    """Context row of every row of ``frame``, or ``(None, reason)`` if they do not match.

    The AP table's index labels are the context's row numbers (the engine
    resets the index); its counts and APs must be the ones computed.
    """
    n = len(context.ap)
    index = frame.index
    import pandas as pd

    if not pd.api.types.is_integer_dtype(index.dtype):
        return None, "its index is no longer the row numbers average_precision returned"
    rows = index.to_numpy(np.int64)
    if len(rows) and (rows.min() < 0 or rows.max() >= n or len(np.unique(rows)) != len(rows)):
        return None, "its index is no longer the row numbers average_precision returned"
    ap = frame["average_precision"].to_numpy(np.float64)
    same = (
        np.array_equal(ap, context.ap[rows], equal_nan=True)
        and np.array_equal(
            frame["n_pos_pairs"].to_numpy(np.float64), context.n_pos[rows].astype(np.float64)
        )
        and np.array_equal(
            frame["n_total_pairs"].to_numpy(np.float64), context.n_total[rows].astype(np.float64)
        )
    )
    if not same:
        return None, "its scores differ from the ones average_precision computed"
    return rows, ""


@dataclass
class _Base:
    rows: np.ndarray  # context rows, sorted by (block, row)
    blocks: np.ndarray  # block key per base row
    sim: np.ndarray  # (nB, nB)
    sorted_rows: np.ndarray  # (nB, W)
    lens: np.ndarray

    @property
    def nbytes(self):
        return self.sim.nbytes + self.sorted_rows.nbytes


class _Similarity:
    """Similarities between context rows, by the engine's direct-loop definition."""

    def __init__(self, prep, matrix=None):
        self.prep = prep
        self.matrix = matrix

    def block(self, rows_a, rows_b):
        if self.matrix is not None:  # a small screen: every similarity is known
            return self.matrix[np.ix_(rows_a, rows_b)]
        prep = self.prep
        out = np.empty((len(rows_a), len(rows_b)), dtype=np.float64)
        if not len(rows_a) or not len(rows_b):
            return out
        if prep.func is None:
            X, inv, sq = prep.X, prep.inv_norm, prep.sq_norm
            ra, rb = np.ascontiguousarray(rows_a), np.ascontiguousarray(rows_b)
            if X is None:  # features read in row blocks (pairmap.features): gather these rows
                local, ids = np.unique(np.concatenate([ra, rb]), return_inverse=True)
                ids = ids.reshape(-1)
                X = prep.source.take(local)
                inv = inv[local] if inv.size else inv
                sq = sq[local] if sq.size else sq
                ra, rb = ids[: len(ra)], ids[len(ra) :]
            _kp().pair_similarities(X, inv, sq, prep.metric, ra, rb, out)
            return out
        from pairmap._kernels.retrieval import SNAP

        a = np.repeat(rows_a, len(rows_b))
        b = np.tile(rows_b, len(rows_a))
        take = prep.X.__getitem__ if prep.X is not None else prep.source.take
        sims = np.asarray(prep.func(take(a), take(b)), dtype=np.float64).reshape(-1)
        out[:] = (np.floor(sims * SNAP + 0.5) / SNAP).reshape(out.shape)
        return out


def _sorted_rows(sim, self_col, blk_row, blk_col, kernels):
    width = int(np.bincount(blk_col).max()) if len(blk_col) else 0
    out = np.empty((sim.shape[0], max(width, 1)), dtype=np.float64)
    lens = np.empty(sim.shape[0], dtype=np.int64)
    kernels.sorted_block_rows(sim, self_col, blk_row, blk_col, width, out, lens)
    return out, lens


class _Pools:
    """Finds the pool of a group and checks that the engine scored its members that way."""

    def __init__(self, ctx: PermutationContext):
        self.ctx = ctx
        neg = ctx.neg_rule
        self.block_key = group_keys(ctx.codes, neg.all_same)
        self.buckets = Buckets.build(self.block_key)
        n = ctx.codes.shape[0]
        self.mark = np.zeros(n, dtype=np.bool_)
        self.found = np.empty(n, dtype=np.int64)

    def negatives(self, members):
        ctx = self.ctx
        if ctx.similarity is not None:  # a small screen: one vectorized mask, no kernel
            everyone = np.arange(ctx.codes.shape[0], dtype=np.int64)
            return np.flatnonzero(rule_mask(ctx.neg_rule, ctx.codes, members, everyone).any(0))
        b = self.buckets
        keys = self.block_key[members]
        m = _kp().mark_negatives(
            self.ctx.codes,
            members,
            b.starts[keys],
            b.starts[keys + 1],
            b.order,
            *self.ctx.neg_rule.as_tuple(),
            self.mark,
            self.found,
        )
        return np.sort(self.found[:m])

    def check(self, members, others) -> str:
        """Reason why the pool model does not describe the engine's lists ('' if it does)."""
        ctx = self.ctx
        k = len(members)
        if np.any(ctx.n_pos[members] != k - 1):
            return "not every member has exactly the other members as positives"
        pos = rule_mask(ctx.pos_rule, ctx.codes, members, members)
        if int(pos.sum()) != k * (k - 1):
            return "not every member has exactly the other members as positives"
        if np.intersect1d(others, members).size:
            return "a member is a negative of another member"
        counts = np.bincount(self.block_key[others], minlength=int(self.block_key.max()) + 1)
        n_neg = ctx.n_total[members] - ctx.n_pos[members]
        if np.any(counts[self.block_key[members]] != n_neg):
            return (
                "a member's negatives are not all the non-member pool profiles of its "
                "negative block (neg_sameby)"
            )
        return ""


@dataclass
class GroupResult:
    statistic: float
    p_value: float
    fallback: str = ""  # reason the group needs another null ('' if tested here)


class PermutationTester:
    """Permutation p-values of groups of one AP table (shares bases and nulls across groups)."""

    def __init__(
        self,
        ctx: PermutationContext,
        tested_rows: np.ndarray,
        null_size: int,
        seed: int,
        n_threads: int,
        backend: str = "compiled",
    ):
        self.ctx = ctx
        self.kernels = _backend(backend)
        self.null_size = null_size
        self.seed = seed
        self.n_threads = n_threads
        self.pools = _Pools(ctx)
        self.sim = _Similarity(ctx.prep, ctx.similarity)
        self.tested = np.zeros(ctx.codes.shape[0], dtype=np.bool_)
        self.tested[tested_rows] = True
        self._bases: OrderedDict = OrderedDict()
        self._base_bytes = 0
        self._nulls: dict = {}
        self._table = None
        self.mismatches = 0

    # -- pools and their similarity rows ------------------------------------------------------
    def _base(self, rows) -> _Base:
        blocks = self.pools.block_key[rows]
        order = np.lexsort((rows, blocks))
        rows, blocks = rows[order], blocks[order]
        key = hashlib.blake2b(rows.tobytes() + blocks.tobytes(), digest_size=16).digest()
        hit = self._bases.get(key)
        if hit is not None:
            self._bases.move_to_end(key)
            return hit
        sim = self.sim.block(rows, rows)
        local = np.unique(blocks, return_inverse=True)[1].reshape(-1).astype(np.int64)
        srt, lens = _sorted_rows(
            sim, np.arange(len(rows), dtype=np.int64), local, local, self.kernels
        )
        base = _Base(rows, blocks, sim, srt, lens)
        self._bases[key] = base
        self._base_bytes += base.nbytes
        while self._base_bytes > _BASE_CACHE_BYTES and len(self._bases) > 1:
            _, old = self._bases.popitem(last=False)
            self._base_bytes -= old.nbytes
        return base

    def _layout(self, base: _Base, own_rows):
        """Kernel arguments for pool = base + own rows, plus the pool's row order."""
        nB = len(base.rows)
        own_blocks = self.pools.block_key[own_rows]
        order = np.lexsort((own_rows, own_blocks))
        own_rows, own_blocks = own_rows[order], own_blocks[order]
        all_blocks = np.concatenate([base.blocks, own_blocks])
        uniq, blk = np.unique(all_blocks, return_inverse=True)
        blk = blk.reshape(-1).astype(np.int64)
        own_base = self.sim.block(own_rows, base.rows)
        own_own = self.sim.block(own_rows, own_rows)
        own_sorted, own_len = _sorted_rows(
            own_base, np.full(len(own_rows), -1, dtype=np.int64), blk[nB:], blk[:nB], self.kernels
        )
        bm = np.argsort(blk, kind="stable").astype(np.int64)
        bm_start = np.zeros(len(uniq) + 1, dtype=np.int64)
        np.cumsum(np.bincount(blk, minlength=len(uniq)), out=bm_start[1:])
        pool_rows = np.concatenate([base.rows, own_rows])
        arrays = (
            bm_start,
            bm,
            blk,
            nB,
            base.sim,
            base.sorted_rows,
            base.lens,
            own_base,
            own_sorted,
            own_len,
            own_own,
        )
        return arrays, pool_rows

    # -- one group ------------------------------------------------------------------------------
    def test(self, members: np.ndarray) -> GroupResult:
        """Observed statistic and p-value of the group made of context rows ``members``."""
        res, observed, null, total = self._run(members, prune=True)
        if res is not None:
            return res
        (obs_map, obs_coh), (null_map, null_coh) = observed, null
        # mAPs equal in exact arithmetic but summed from different APs may differ in the last
        # bit: compare on a 2**-40 grid. Ties are broken by cohesion. Both are fixed functions
        # of the relabeled set, so the test stays exact.
        obs_key, null_key = _snap(obs_map), _snap(null_map)
        at_least = (null_key > obs_key) | ((null_key == obs_key) & (null_coh >= obs_coh))
        count = int(np.count_nonzero(at_least))
        if total is not None:
            return GroupResult(obs_map, count / total)
        return GroupResult(obs_map, (1.0 + count) / (1.0 + self.null_size))

    def null_values(self, members: np.ndarray):
        """``((mAP, cohesion) observed, (mAP array, cohesion array) null, exact total or None)``."""
        res, observed, null, total = self._run(members, prune=False)
        if res is not None:
            raise ValueError(f"this group cannot use the permutation null: {res.fallback}")
        return observed, null, total

    def _run(self, members, prune):
        members = np.sort(members)
        k = len(members)
        others = self.pools.negatives(members)
        reason = self.pools.check(members, others)
        if reason:
            return GroupResult(np.nan, np.nan, reason), None, None, None
        full_pool = bool(self.tested[others].any())
        base_rows = np.union1d(others, members) if full_pool else others
        n_base = len(base_rows)
        if 2 * 8 * n_base * n_base > POOL_BUDGET_BYTES:
            return (
                GroupResult(
                    np.nan,
                    np.nan,
                    f"its pool of {n_base} profiles exceeds the "
                    f"{POOL_BUDGET_BYTES >> 20} MiB similarity budget",
                ),
                None,
                None,
                None,
            )
        base = self._base(base_rows)
        own = np.empty(0, dtype=np.int64) if full_pool else members
        arrays, pool_rows = self._layout(base, own)
        bm_start, bm, blk = arrays[0], arrays[1], arrays[2]
        lookup = np.argsort(pool_rows)
        positions = lookup[np.searchsorted(pool_rows[lookup], members)].astype(np.int64)
        n_blocks = len(bm_start) - 1
        kb = np.bincount(blk[positions], minlength=n_blocks).astype(np.int64)
        nb = np.diff(bm_start)
        layout = (bm_start, bm, kb) + arrays[2:]
        # the observed group, scored by the same kernel as every relabeling
        S = np.sort(positions)
        aps, cohs = self.kernels.member_scores(S, *arrays[2:], self.ctx.ties_expected)
        engine = self.ctx.ap[pool_rows[S]]
        if np.max(np.abs(aps - engine)) > _AP_TOLERANCE:
            self.mismatches += 1
        observed = self.kernels.sorted_mean(aps)
        cohesion = self.kernels.sorted_mean(cohs)
        total = _relabelings(nb, kb, self.null_size)
        n_null = total if total is not None else self.null_size
        if n_null * k * k > MAX_WORK:
            reason = f"its null would take {n_null} x {k}**2 operations"
            return GroupResult(np.nan, np.nan, reason), None, None, None
        null = self._null(
            layout, base, full_pool, nb, kb, total, (observed, cohesion) if prune else None
        )
        return None, (observed, cohesion), null, total

    def _tables_fit(self, kb):
        return _table_bytes(int(kb.sum()), self.null_size) <= TABLE_BUDGET_BYTES

    def _tables(self, layout, base, kb):
        """Base-only counts of the sampled relabelings, shared by groups of the same pool shape."""
        blk = layout[3]
        key = (blk.tobytes(), kb.tobytes())
        if self._table is not None and self._table[0] is base and self._table[1] == key:
            return self._table[2]
        self._table = None  # free the previous tables first
        nb = np.diff(layout[0])
        tables = _kp().run_base_tables(
            stream_key(self.seed, self.null_size, nb, kb),
            self.null_size,
            layout,
            self.ctx.ties_expected,
            self.n_threads,
        )
        self._table = (base, key, tables)
        return tables

    def _null(self, layout, base, full_pool, nb, kb, total, observed):
        """The null (mAP, cohesion) arrays; with ``observed``, possibly only the relabelings
        that can reach it (the others are below it: same counts ``>= observed``)."""
        # a full pool (no own rows) depends only on the base and the block counts: share it
        share_key = None
        if full_pool:
            share_key = (id(base), nb.tobytes(), kb.tobytes())
            hit = self._nulls.get(share_key)
            if hit is not None and hit[0] is base:
                return hit[1]
        if total is not None:
            null = self.kernels.enumerate_null(total, *layout, self.ctx.ties_expected)
        elif not full_pool and self.kernels.tables and self._tables_fit(kb):
            tables = self._tables(layout, base, kb)
            draws = np.arange(self.null_size, dtype=np.int64)
            if observed is not None:  # skip draws whose base-only upper bound is below
                bound_key, obs_key = _snap(tables[6][:, 0]), _snap(observed[0])
                reach = (bound_key > obs_key) | (
                    (bound_key == obs_key) & (tables[6][:, 1] >= observed[1])
                )
                draws = draws[reach]
            null = _kp().run_null_from_tables(
                draws, tables, layout, self.ctx.ties_expected, self.n_threads
            )
        else:
            key = stream_key(self.seed, self.null_size, nb, kb)
            null = self.kernels.run_sample_null(
                key, self.null_size, layout, self.ctx.ties_expected, self.n_threads
            )
        if share_key is not None:
            self._nulls[share_key] = (base, null)
        return null


def _table_bytes(k, n_draws):
    return n_draws * (k * 12 + 17 + k * max(k - 1, 1) * 16)


def _snap(x):
    return np.floor(np.asarray(x) * _MAP_GRID + 0.5)


def _relabelings(nb, kb, limit) -> int | None:
    """Number of relabelings (product of C(n_b, k_b)) if at most ``limit``, else None."""
    total = 1
    for n, k in zip(nb.tolist(), kb.tolist(), strict=True):
        total *= math.comb(n, k)
        if total > limit:
            return None
    return total


def stream_key(seed, null_size, nb, kb) -> np.uint64:
    """64-bit key of the relabeling streams for pools of block sizes ``nb`` with ``kb`` members.

    Groups whose pools have the same shape draw the same relabelings (as pool
    positions), so draws are shared and reproducible bit for bit.
    """
    entropy = [seed, null_size, PERMUTATION_VERSION, len(nb), *nb.tolist(), *kb.tolist()]
    state = np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)
    return np.uint64(state[0])


#: a small screen's permutation nulls run in NumPy up to this many draws in all (groups x
#: null_size; beyond, loading the compiled kernels pays off); results are the same either way
NUMPY_DRAWS = 1_000_000
#: the same with ``ties="expected"``, whose tied lists NumPy scores one by one
NUMPY_DRAWS_EXPECTED = 20_000


def choose_backend(ctx: PermutationContext, n_groups: int, null_size: int) -> str:
    """``"numpy"`` for a small screen's context and a light null, else ``"compiled"``.

    Both backends give the same p-values bit for bit; NumPy avoids loading the
    compiled kernels (about a second per process), the kernels are faster on heavy nulls.

    Examples
    --------
    >>> choose_backend(None, 10, 1000)
    'compiled'
    """
    if ctx is None or ctx.similarity is None:
        return "compiled"
    limit = NUMPY_DRAWS_EXPECTED if ctx.ties_expected else NUMPY_DRAWS
    return "numpy" if n_groups * null_size <= limit else "compiled"


def permutation_pvalues(
    ctx, rows, gid, n_groups, *, null_size, seed, n_threads, progress=None, backend=None
):
    """Permutation statistic, p-value and fallback reason of every group.

    Parameters
    ----------
    ctx : PermutationContext
    rows : numpy.ndarray
        Context rows of the valid AP-table rows.
    gid : numpy.ndarray
        Group of each of ``rows`` (``0 .. n_groups - 1``).
    n_groups : int
    null_size, seed, n_threads : int
    progress : callable, optional
        Called with 1 after each group.
    backend : {"compiled", "numpy"}, optional
        Kernels to use (equal results); default ``"numpy"`` for a small
        screen's context (:mod:`pairmap._small`), else ``"compiled"``.

    Returns
    -------
    statistic, p_value : numpy.ndarray
        NaN for groups without members or that fell back.
    fallback : dict
        group -> reason, for groups that need another null.
    """
    stat = np.full(n_groups, np.nan)
    pval = np.full(n_groups, np.nan)
    fallback = {}
    if backend is None:
        backend = choose_backend(ctx, n_groups, null_size)
    tester = PermutationTester(ctx, rows, null_size, seed, n_threads, backend)
    order = np.argsort(gid, kind="stable")
    bounds = np.searchsorted(gid[order], np.arange(n_groups + 1))
    for g in range(n_groups):
        members = rows[order[bounds[g] : bounds[g + 1]]]
        if len(members):
            res = tester.test(members)
            if res.fallback:
                fallback[g] = res.fallback
            else:
                stat[g], pval[g] = res.statistic, res.p_value
        if progress is not None:
            progress(1)
    if tester.mismatches:
        logger.warning(
            "%d group(s): APs recomputed from the pool differ from the engine's by more than "
            "%g (similarities rounded differently by the two code paths); their p-values use "
            "the recomputed scores",
            tester.mismatches,
            _AP_TOLERANCE,
        )
    return stat, pval, fallback
