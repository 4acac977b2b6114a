"""p-values of AP and mAP scores against permutation nulls, with FDR control.

Two entry points:

* :func:`p_values` -- one p-value per profile, from the null of its own list
  shape ``(n_pos_pairs, n_total_pairs)``;
* :func:`mean_average_precision` -- mAP per group of profiles, a p-value from a
  group null (``"shared"`` or ``"independent"``), and Benjamini-Hochberg or
  hierarchical FDR correction.

A p-value is ``(1 + #{null >= observed}) / (1 + null_size)`` for a sampled
null and the exact tail probability ``P(null >= observed)`` when the null is
enumerated exactly (see :mod:`pairmap.nulls`). Comparisons are done in float64;
observed and null group means are computed by the same function
(:func:`pairmap._kernels.nulls.sorted_mean`) so ties are exact.
"""

from __future__ import annotations

import logging
import math
import numbers
import warnings
from collections import OrderedDict

import numpy as np
import pandas as pd

from pairmap._ap_math import normalize_ap
from pairmap._parallel import thread_limits
from pairmap._progress import progress
from pairmap._typing import CacheSpec, Columns
from pairmap._validation import check_bool, check_int, check_option, check_seed
from pairmap.fdr import benjamini_hochberg, hierarchical_fdr
from pairmap.nulls import _open_cache, check_null_memory, exact_size, exact_values, sampled_draws
from pairmap.permutation import CONTEXT_ATTR

__all__ = ["NULL_MODELS", "group_null", "mean_average_precision", "p_values"]

logger = logging.getLogger(__name__)

#: Group null models accepted by :func:`mean_average_precision` (plus ``"auto"``).
NULL_MODELS = ("permutation", "shared", "independent")

_REQUIRED = ("average_precision", "n_pos_pairs", "n_total_pairs")
#: Memory for the component draws of one group null before it is chunked.
_GROUP_BUDGET_BYTES = 256 * 2**20
#: Memory kept for per-configuration draws reused across groups.
_LRU_BUDGET_BYTES = 512 * 2**20
#: Below this many observed values, counting beats sorting the null.
_DIRECT_COUNT_MAX = 8


def _check_ap_frame(ap_scores) -> None:
    if not isinstance(ap_scores, pd.DataFrame):
        raise TypeError(
            f"ap_scores must be a pandas DataFrame (the output of average_precision), "
            f"got {type(ap_scores).__name__}"
        )
    missing = [c for c in _REQUIRED if c not in ap_scores.columns]
    if missing:
        raise ValueError(
            f"ap_scores is missing column(s) {missing}; it needs {list(_REQUIRED)} as "
            "produced by pairmap.average_precision"
        )


#: list lengths the samplers support (32-bit unbiased integer draws)
_MAX_LIST = 2**32

#: columns mean_average_precision writes; a sameby column may not use these names
_OUTPUT_COLUMNS = frozenset(
    {
        "mean_average_precision",
        "mean_normalized_average_precision",
        "n_profiles",
        "p_value",
        "corrected_p_value",
        "below_p",
        "below_corrected_p",
        "stage1_p_value",
        "stage1_corrected_p_value",
        "stage1_significant",
        "average_precision",
        "normalized_average_precision",
        "n_pos_pairs",
        "n_total_pairs",
    }
)


def _valid_mask(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ap = pd.to_numeric(df["average_precision"], errors="raise").to_numpy(np.float64)
    k = pd.to_numeric(df["n_pos_pairs"], errors="raise").to_numpy(np.float64)
    n = pd.to_numeric(df["n_total_pairs"], errors="raise").to_numpy(np.float64)
    negative = (k < 0) | (n < 0)
    if negative.any():
        rows = df.index[np.flatnonzero(negative)[:5]].tolist()
        raise ValueError(
            f"ap_scores has {int(negative.sum())} row(s) with negative n_pos_pairs or "
            f"n_total_pairs (rows {rows}); pair counts are >= 0 in the output of "
            "pairmap.average_precision, so these rows were changed or built by hand"
        )
    valid = ~np.isnan(ap) & ~np.isnan(k) & ~np.isnan(n) & (k > 0)
    checks = (
        (
            n < k,
            "has n_total_pairs ({n:g}) < n_pos_pairs ({k:g}); n_total_pairs must count "
            "positives and negatives",
        ),
        (
            (k != np.round(k)) | (n != np.round(n)),
            "has non-integer pair counts (n_pos_pairs={k:g}, n_total_pairs={n:g})",
        ),
        (n >= _MAX_LIST, "has n_total_pairs={n:g}; ranked lists must be shorter than 2**32"),
        ((ap < 0) | (ap > 1), "has average_precision={ap:g} outside [0, 1]"),
    )
    for bad, message in checks:
        bad = valid & bad
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            label = df.index[i]
            raise ValueError(f"ap_scores row {label!r} " + message.format(n=n[i], k=k[i], ap=ap[i]))
    ki = np.where(valid, k, 0).astype(np.int64)
    ni = np.where(valid, n, 0).astype(np.int64)
    return valid, ap, ki, ni


def _tail_counts(null_sorted: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """#{null >= obs} for each observed value (null sorted ascending)."""
    return null_sorted.shape[0] - np.searchsorted(null_sorted, observed, side="left")


def _counts_ge(null: np.ndarray, observed: np.ndarray) -> np.ndarray:
    if observed.shape[0] <= _DIRECT_COUNT_MAX:
        return np.array([np.count_nonzero(null >= o) for o in observed], dtype=np.int64)
    return _tail_counts(np.sort(null), observed)


def p_values(
    ap_scores: pd.DataFrame,
    *,
    null_size: int = 10000,
    seed: int = 0,
    cache: CacheSpec = None,
    n_jobs: int | None = None,
    progress_bar: bool = True,
) -> np.ndarray:
    """p-value of every profile's AP against random rankings of its own list.

    Parameters
    ----------
    ap_scores : pandas.DataFrame
        Output of :func:`pairmap.average_precision`: columns
        ``average_precision``, ``n_pos_pairs`` and ``n_total_pairs``.
    null_size : int, default 10000
        Draws per null; list shapes with at most ``null_size`` possible
        rankings are enumerated exactly.
    seed : int, default 0
        Base seed of the nulls.
    cache : None, str, path, False or NullCache, default None
        Null cache (``False`` disables it).
    n_jobs : int or None, default None
        Threads (never changes results).
    progress_bar : bool, default True
        Show a tqdm progress bar over list shapes.

    Returns
    -------
    numpy.ndarray
        float64 p-values, one per row; NaN where AP is NaN or there are no
        positive pairs.

    Raises
    ------
    ValueError
        For rows with negative, non-integer or inconsistent pair counts or an
        AP outside [0, 1] (the message names the rows), and for a
        ``null_size`` whose nulls would not fit in memory (see
        :func:`pairmap.nulls.check_null_memory`), before any work.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"average_precision": [1.0, 0.5, float("nan")],
    ...                    "n_pos_pairs": [1, 1, 0], "n_total_pairs": [4, 4, 0]})
    >>> p_values(df, cache=False, progress_bar=False)  # exact: ranks 1..4 equally likely
    array([0.25, 0.5 ,  nan])
    """
    _check_ap_frame(ap_scores)
    null_size = check_int("null_size", null_size, minimum=1)
    check_null_memory(null_size)
    seed = check_seed(seed)
    progress_bar = check_bool("progress_bar", progress_bar)
    valid, ap, k, n = _valid_mask(ap_scores)
    out = np.full(len(ap_scores), np.nan)
    if not valid.any():
        return out
    idx = np.flatnonzero(valid)
    confs, inv = np.unique(np.stack([k[idx], n[idx]], axis=1), axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    order = np.argsort(inv, kind="stable")
    bounds = np.searchsorted(inv[order], np.arange(len(confs) + 1))
    cache_obj = _open_cache(cache)
    logger.info(
        "p-values for %d profiles over %d list shapes (null_size=%d)",
        idx.size,
        len(confs),
        null_size,
    )
    with thread_limits(n_jobs) as n_threads:
        for c in progress(
            range(len(confs)), total=len(confs), desc="AP nulls", enabled=progress_bar
        ):
            kc, nc = int(confs[c, 0]), int(confs[c, 1])
            rows = idx[order[bounds[c] : bounds[c + 1]]]
            obs = ap[rows]
            exact = exact_values(kc, nc, null_size, seed, cache_obj=cache_obj)
            if exact is not None:
                out[rows] = _counts_ge(exact, obs) / exact.shape[0]
            else:
                null = sampled_draws(
                    kc, nc, null_size, seed, cache_obj=cache_obj, n_threads=n_threads
                )
                out[rows] = (1.0 + _counts_ge(null, obs)) / (1.0 + null_size)
    return out


class _DrawStore:
    """Per-configuration draws reused across groups, bounded by a byte budget (LRU)."""

    def __init__(self, null_size, seed, cache_obj, n_threads, budget=_LRU_BUDGET_BYTES):
        self.null_size = null_size
        self.seed = seed
        self.cache_obj = cache_obj
        self.n_threads = n_threads
        self.budget = budget
        self._items: OrderedDict = OrderedDict()
        self._bytes = 0

    def _remember(self, key, arr):
        self._items[key] = arr
        self._bytes += arr.nbytes
        while self._bytes > self.budget and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes
        return arr

    def sampled(self, k, n, ordinal):
        key = ("s", k, n, ordinal)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        arr = sampled_draws(
            k,
            n,
            self.null_size,
            self.seed,
            ordinal=ordinal,
            cache_obj=self.cache_obj,
            n_threads=self.n_threads,
        )
        return self._remember(key, arr)

    def partial(self, k, n, ordinal, start, stop):
        """Draws ``start..stop-1`` only, never cached (bounded-memory group nulls)."""
        return sampled_draws(
            k,
            n,
            self.null_size,
            self.seed,
            ordinal=ordinal,
            n_threads=self.n_threads,
            start=start,
            stop=stop,
        )

    def exact(self, k, n):
        key = ("e", k, n)
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        arr = exact_values(k, n, self.null_size, self.seed, cache_obj=self.cache_obj)
        return self._remember(key, arr)


def _components(signature, confs, model):
    """(k, n, ordinal, multiplicity) of each independent source of draws of a group."""
    comps = []
    for c, count in signature:
        k, n = int(confs[c, 0]), int(confs[c, 1])
        if model == "shared":
            comps.append((k, n, 0, count))
        else:
            comps.extend((k, n, j, 1) for j in range(count))
    return comps


def _group_pvalues(signature, observed, confs, model, store, n_threads):
    """p-values of the observed group means of all groups sharing ``signature``."""
    null, exact = _group_null(signature, confs, model, store, n_threads)
    if exact:
        return _counts_ge(null, observed) / null.shape[0]
    return (1.0 + _counts_ge(null, observed)) / (1.0 + store.null_size)


def _group_null(signature, confs, model, store, n_threads):
    """Null group means for ``signature`` and whether they are the exact (enumerated) null."""
    from pairmap._kernels.nulls import run_group_null_means

    comps = _components(signature, confs, model)
    null_size = store.null_size
    mult = np.array([c[3] for c in comps], dtype=np.int64)

    # exact enumeration of the joint null when it is small enough
    sizes = [exact_size(k, n, null_size) for k, n, _, _ in comps]
    if all(s is not None for s in sizes) and math.prod(sizes) <= null_size:
        values = [store.exact(k, n) for k, n, _, _ in comps]
        grid = np.indices(sizes).reshape(len(comps), -1)
        mat = np.stack([v[g] for v, g in zip(values, grid, strict=True)])
        return run_group_null_means(mat, mult, n_threads), True

    if len(comps) == 1 and mult[0] == 1:
        k, n, j, _ = comps[0]
        null = store.sampled(k, n, j)
    elif len(comps) * null_size * 8 <= _GROUP_BUDGET_BYTES:
        mat = np.stack([store.sampled(k, n, j) for k, n, j, _ in comps])
        null = run_group_null_means(mat, mult, n_threads)
    else:  # bounded memory: draw the components chunk by chunk
        null = np.empty(null_size)
        step = max(1, _GROUP_BUDGET_BYTES // (8 * len(comps)))
        for start in range(0, null_size, step):
            stop = min(null_size, start + step)
            mat = np.stack([store.partial(k, n, j, start, stop) for k, n, j, _ in comps])
            null[start:stop] = run_group_null_means(mat, mult, n_threads)
    return null, False


def group_null(n_pos_pairs, n_total_pairs, *, null_size=10000, seed=0, null="shared", cache=None):
    """The null distribution of one group's mAP, as :func:`mean_average_precision` uses it.

    Parameters
    ----------
    n_pos_pairs, n_total_pairs : array-like of int
        List shapes of the group's members (rows with a valid AP).
    null_size, seed, null, cache
        As in :func:`mean_average_precision`.

    Returns
    -------
    values : numpy.ndarray
        Null group means (float64). Compare an observed mAP with ``>=``.
    exact : bool
        True when ``values`` enumerates every equally likely outcome (then the
        p-value is the share of ``values >= observed``), False when they are
        ``null_size`` draws (then it is ``(1 + count) / (1 + null_size)``).

    Examples
    --------
    >>> values, exact = group_null([1, 1], [4, 4], null_size=100, cache=False)
    >>> exact, values.shape, float(values.max())
    (True, (4,), 1.0)
    """
    k = np.asarray(n_pos_pairs, dtype=np.int64).reshape(-1)
    n = np.asarray(n_total_pairs, dtype=np.int64).reshape(-1)
    if k.size == 0 or k.shape != n.shape:
        raise ValueError("n_pos_pairs and n_total_pairs must be non-empty and of equal length")
    null = check_option("null", null, NULL_MODELS)
    null_size = check_int("null_size", null_size, minimum=1)
    check_null_memory(null_size)
    seed = check_seed(seed)
    confs, counts = np.unique(np.stack([k, n], axis=1), axis=0, return_counts=True)
    signature = tuple((c, int(m)) for c, m in enumerate(counts))
    with thread_limits(1) as n_threads:
        store = _DrawStore(null_size, seed, _open_cache(cache), n_threads)
        return _group_null(signature, confs, null, store, n_threads)


def _group_signatures(k, n, group, n_groups):
    """List shapes ``confs`` and the groups sharing each configuration multiset.

    ``k``, ``n``, ``group``: shape and group id of every valid member. Returns
    ``(confs, by_sig)``: ``confs[c] = (k, n)``, and ``by_sig`` maps a group's
    signature -- sorted ``(conf index, member count)`` pairs -- to its groups.
    """
    if not len(group):
        return np.empty((0, 2), np.int64), {}
    confs, cinv = np.unique(np.stack([k, n], axis=1), axis=0, return_inverse=True)
    cinv = cinv.reshape(-1)
    pair, pair_count = np.unique(group.astype(np.int64) * len(confs) + cinv, return_counts=True)
    pair_g, pair_c = np.divmod(pair, len(confs))
    splits = np.searchsorted(pair_g, np.arange(1, n_groups))
    by_sig: dict[tuple, list[int]] = {}
    for g, (cs, ns) in enumerate(
        zip(np.split(pair_c, splits), np.split(pair_count, splits), strict=True)
    ):
        if cs.size:
            by_sig.setdefault(tuple(zip(cs.tolist(), ns.tolist(), strict=True)), []).append(g)
    return confs, by_sig


def _as_columns(name, value, df) -> list:
    if value is None:
        cols = None
    elif isinstance(value, (list, pd.Index, np.ndarray)) or (
        isinstance(value, tuple) and value not in df.columns
    ):
        cols = list(value)
    else:
        cols = [value]  # one label: a string, a number, or a tuple naming a MultiIndex column
    if not cols:
        raise ValueError(f"{name} must name at least one column of ap_scores, got {value!r}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(
            f"{name} column(s) {missing} are not in ap_scores; available columns: "
            f"{list(df.columns)}"
        )
    if len(set(cols)) != len(cols):
        raise ValueError(f"{name} lists a column more than once: {cols}")
    for col in cols:
        missing = df[col].isna().to_numpy()
        if missing.any():
            rows = df.index[np.flatnonzero(missing)[:5]].tolist()
            raise ValueError(
                f"{name} column {col!r} has {int(missing.sum())} missing value(s) (rows {rows}); "
                f"they would form a group of their own. Fill them (e.g. "
                f"ap_scores[{col!r}] = ap_scores[{col!r}].fillna('unknown')) or drop those rows"
            )
    reserved = [c for c in cols if c in _OUTPUT_COLUMNS]
    if reserved:
        raise ValueError(
            f"{name} column(s) {reserved} are scores or output columns of "
            f"mean_average_precision, not group labels; group by metadata columns"
        )
    return cols


def _choose_null(null, ap_scores):
    """(model, context, context rows) for the requested null; see ``mean_average_precision``."""
    if null not in ("auto", "permutation"):
        return null, None, None
    from pairmap.permutation import context_of, rows_of

    ctx = context_of(ap_scores)
    if ctx is None:
        reason = (
            "ap_scores does not carry the features it was computed from (it was read from "
            "a file, built by hand, rebuilt by pandas or produced by another tool)"
        )
    else:
        rows, reason = rows_of(ap_scores, ctx)
        if rows is not None:
            return "permutation", ctx, rows
    if null == "permutation":
        raise ValueError(
            f"null='permutation' recomputes rankings from the profiles, but {reason}. Pass the "
            "table returned by pairmap.average_precision in this session (filtering rows is "
            "fine; changing scores or the index is not), or choose null='shared'"
        )
    logger.info("null='auto': using the 'shared' null because %s", reason)
    return "shared", None, None


def _permutation_step(ctx, rows, gid, labels, null_size, seed, n_threads, progress_bar, backend):
    """Permutation p-values of all groups; groups it cannot test are returned for fallback."""
    from pairmap.permutation import permutation_pvalues

    n_groups = len(labels)
    with progress(
        total=n_groups, desc="permutation nulls", enabled=progress_bar, unit="group"
    ) as bar:
        _, pvals, fallback = permutation_pvalues(
            ctx,
            rows,
            gid,
            n_groups,
            null_size=null_size,
            seed=seed,
            n_threads=n_threads,
            progress=bar.update,
            backend=backend,
        )
    if fallback:
        first = next(iter(fallback))
        label = labels.iloc[first].to_dict()
        msg = (
            f"{len(fallback)} of {n_groups} group(s) cannot use the permutation null and get "
            f"the 'shared' null (conservative) instead; e.g. group {label}: "
            f"{fallback[first]}"
        )
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
        logger.warning(msg)
    return pvals, fallback


#: groups of at most this many members get their observed mAP from NumPy (same floats)
_NUMPY_MEAN_MAX = 64


def _segment_sorted_means(values, starts, n_threads):
    """Sorted mean of each segment (ascending within it), by NumPy for small groups."""
    if len(starts) < 2 or int(np.diff(starts).max()) <= _NUMPY_MEAN_MAX:
        from pairmap._small.scoring import segment_sorted_means

        return segment_sorted_means(values, starts)
    from pairmap._kernels.nulls import run_segment_sorted_means

    return run_segment_sorted_means(values, starts, n_threads)


def mean_average_precision(
    ap_scores: pd.DataFrame,
    sameby: Columns,
    *,
    null_size: int = 10000,
    threshold: float = 0.05,
    seed: int = 0,
    null: str = "auto",
    hierarchical_by: Columns | None = None,
    cache: CacheSpec = None,
    n_jobs: int | None = None,
    progress_bar: bool = True,
) -> pd.DataFrame:
    """Mean average precision per group with permutation p-values and FDR control.

    Parameters
    ----------
    ap_scores : pandas.DataFrame
        Output of :func:`pairmap.average_precision`: metadata plus
        ``average_precision``, ``n_pos_pairs``, ``n_total_pairs`` (and
        optionally ``normalized_average_precision``).
    sameby : str or list of str
        Columns defining the groups (e.g. the compound id).
    null_size : int, default 10000
        Draws of each null (``>= 1``). Group nulls with at most ``null_size``
        possible outcomes are enumerated exactly.
    threshold : float, default 0.05
        Level for ``below_p`` / ``below_corrected_p`` (strict ``<``) and the
        stage-1 FDR level of the hierarchical correction.
    seed : int, default 0
        Base seed (``>= 0``); results are bit-identical for equal inputs.
    null : {"auto", "permutation", "shared", "independent"}, default "auto"
        Group null model. ``"permutation"``: relabel random sets of profiles
        of the group's pool (its members and their negatives, within the
        negative rule's blocks) as the group and score them from the real
        similarities; exact at every sample size (see
        ``docs/significance.md``). It needs the table returned by
        :func:`pairmap.average_precision` in this session (rows may be
        filtered; scores must be unchanged). ``"auto"``: ``"permutation"``
        when ``ap_scores`` carries that data, else ``"shared"``.
        ``"shared"``: the group null is the element-wise
        mean of the members' per-shape nulls with aligned draws, members of
        equal shape sharing draws (the model of copairs and of the published
        analyses; conservative). ``"independent"``: every member contributes
        its own independent draws (calibrated when member APs are
        independent; anti-conservative when replicates rank each other, as in
        most replicate designs -- see ``docs/significance.md``).
    hierarchical_by : str or list of str, optional
        A proper subset of ``sameby`` for two-stage hierarchical FDR (e.g.
        compound when ``sameby`` is compound and dose). Default: plain BH.
    cache : None, str, path, False or NullCache, default None
        Null cache (``False`` disables it).
    n_jobs : int or None, default None
        Threads (never changes results).
    progress_bar : bool, default True
        Show tqdm progress bars.

    Returns
    -------
    pandas.DataFrame
        One row per group (sorted by ``sameby``): the ``sameby`` columns,
        ``mean_average_precision``, ``mean_normalized_average_precision``,
        ``n_profiles`` (members with a valid AP), ``p_value``,
        ``corrected_p_value``, ``below_p``, ``below_corrected_p``, plus
        ``stage1_p_value``, ``stage1_corrected_p_value`` and
        ``stage1_significant`` when ``hierarchical_by`` is given. Groups
        without any valid AP have NaN scores and p-values.

    Raises
    ------
    ValueError
        For missing values in a ``sameby`` column (they would form a group of
        their own; fill or drop them), bad rows as for :func:`p_values`, and
        a ``null_size`` whose nulls would not fit in memory, before any work.

    Examples
    --------
    >>> import pandas as pd
    >>> ap = pd.DataFrame({"cpd": ["a", "a", "b", "b"],
    ...                    "average_precision": [1.0, 1.0, 0.25, 0.5],
    ...                    "n_pos_pairs": [1, 1, 1, 1], "n_total_pairs": [4, 4, 4, 4]})
    >>> res = mean_average_precision(ap, "cpd", cache=False, progress_bar=False)
    >>> res[["cpd", "mean_average_precision", "p_value"]].to_dict("list")
    {'cpd': ['a', 'b'], 'mean_average_precision': [1.0, 0.375], 'p_value': [0.25, 0.5]}
    """
    _check_ap_frame(ap_scores)
    sameby = _as_columns("sameby", sameby, ap_scores)
    null_size = check_int("null_size", null_size, minimum=1)
    check_null_memory(null_size)
    seed = check_seed(seed)
    check_option("null", null, NULL_MODELS + ("auto",))
    progress_bar = check_bool("progress_bar", progress_bar)
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"threshold must be a number in (0, 1], got {threshold!r}")
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if hierarchical_by is not None:
        hierarchical_by = _as_columns("hierarchical_by", hierarchical_by, ap_scores)
        if not set(hierarchical_by) < set(sameby):
            raise ValueError(
                f"hierarchical_by {hierarchical_by} must be a proper subset of sameby "
                f"{sameby} (e.g. sameby=['compound', 'dose'], hierarchical_by=['compound']); "
                "omit hierarchical_by for plain Benjamini-Hochberg"
            )

    from .distributed import precompute_for_current_client
    from .startup import ensure_compiled

    model, ctx, ctx_rows = _choose_null(null, ap_scores)
    df = ap_scores.reset_index(drop=True)
    gid = df.groupby(sameby, sort=True, observed=True, dropna=False).ngroup().to_numpy()
    n_groups = int(gid.max()) + 1 if gid.size else 0
    backend = None
    if model == "permutation":
        from pairmap.permutation import choose_backend

        backend = choose_backend(ctx, n_groups, null_size)
    if backend != "numpy":  # small screens' permutation nulls load no compiled kernel
        ensure_compiled(None)  # a first-run compile is announced and kept out of the ETA
    if (
        model != "permutation"
    ):  # Dask: the cached nulls as tasks (the permutation null is not cached)
        precompute_for_current_client(ap_scores, cache, null_size, seed)
    valid, ap, k, n = _valid_mask(df)
    if "normalized_average_precision" in df.columns:
        nap = pd.to_numeric(df["normalized_average_precision"]).to_numpy(np.float64)
    else:
        with np.errstate(invalid="ignore"):
            nap = normalize_ap(ap, np.maximum(k, 1), np.maximum(n, 1))

    _, first = np.unique(gid, return_index=True)
    result = df.loc[first, sameby].reset_index(drop=True)

    vidx = np.flatnonzero(valid)
    vg = gid[vidx]
    counts = np.bincount(vg, minlength=n_groups)
    nap_v = nap[vidx]
    nap_ok = ~np.isnan(nap_v)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_nap = np.bincount(vg[nap_ok], weights=nap_v[nap_ok], minlength=n_groups) / (
            np.bincount(vg[nap_ok], minlength=n_groups)
        )

    cache_obj = _open_cache(cache)
    pvals = np.full(n_groups, np.nan)
    with thread_limits(n_jobs, compiled=backend != "numpy") as n_threads:
        # observed mAP: members sorted ascending within each group, summed in order
        order = np.lexsort((ap[vidx], vg))
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        map_scores = _segment_sorted_means(ap[vidx][order], starts, n_threads)

        confs, by_sig = _group_signatures(k[vidx], n[vidx], vg, n_groups)
        logger.info(
            "mAP for %d groups (%d profiles, %d list shapes, %d distinct group nulls, "
            "null=%r, null_size=%d)",
            n_groups,
            vidx.size,
            len(confs),
            len(by_sig),
            model,
            null_size,
        )
        group_model = model
        if model == "permutation":
            pvals, fallback = _permutation_step(
                ctx, ctx_rows[vidx], vg, result, null_size, seed, n_threads, progress_bar, backend
            )
            by_sig = {sig: [g for g in gs if g in fallback] for sig, gs in by_sig.items()}
            by_sig = {sig: gs for sig, gs in by_sig.items() if gs}
            group_model = "shared"
        if by_sig:
            if backend == "numpy":  # groups that fell back need the compiled null kernels
                ensure_compiled(None)
            with thread_limits(n_jobs) as n_threads:
                store = _DrawStore(null_size, seed, cache_obj, n_threads)
                for sig in progress(
                    sorted(by_sig), total=len(by_sig), desc="mAP nulls", enabled=progress_bar
                ):
                    groups = np.asarray(by_sig[sig])
                    pvals[groups] = _group_pvalues(
                        sig, map_scores[groups], confs, group_model, store, n_threads
                    )

    result.attrs.pop(CONTEXT_ATTR, None)  # the group table is not an AP table
    result.attrs["pairmap_null"] = model
    result["mean_average_precision"] = map_scores
    result["mean_normalized_average_precision"] = mean_nap
    result["n_profiles"] = counts.astype(np.int64)
    result["p_value"] = pvals
    if hierarchical_by is None:
        result["corrected_p_value"] = benjamini_hochberg(pvals)
    else:
        hid = (
            result.groupby(hierarchical_by, sort=True, observed=True, dropna=False)
            .ngroup()
            .to_numpy()
        )
        hier = hierarchical_fdr(pvals, hid, alpha=float(threshold))
        result["corrected_p_value"] = hier["corrected_p_value"]
    result["below_p"] = result["p_value"] < threshold
    result["below_corrected_p"] = result["corrected_p_value"] < threshold
    if hierarchical_by is not None:
        for col in ("stage1_p_value", "stage1_corrected_p_value", "stage1_significant"):
            result[col] = hier[col]
    return result
