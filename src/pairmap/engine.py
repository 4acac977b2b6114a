"""Average precision per profile: :func:`average_precision` (the pandas edge of the engine)."""

from __future__ import annotations

import logging
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from . import _small as small_screen
from ._ap_math import normalize_ap
from ._parallel import resolve_n_jobs, thread_limits
from ._progress import progress
from ._ties import warn_if_tied
from ._typing import DaskClient, Distance, Features, RuleSpec, Size
from ._validation import check_bool, check_int, check_option, parse_size
from .distributed import current_client
from .features import FeatureSource, as_feature_source
from .metrics import parse_metrics
from .pairing import EncodedRule, apply_queries, encode_columns, parse_rule
from .permutation import PermutationContext, attach_context
from .similarity import prepare_features

logger = logging.getLogger(__name__)

__all__ = ["average_precision", "parse_memory"]

TIES = ("positives_first", "expected")
DEFAULT_MAX_MEMORY = 1 << 30


def parse_memory(value: Size, name: str = "max_memory") -> int:
    """Bytes from an int or a string such as ``"2GB"`` or ``"512MiB"`` (at least 1 byte).

    The size grammar is :func:`pairmap._validation.parse_size`, shared with
    the cache's ``max_bytes``; a memory budget must be positive.

    Parameters
    ----------
    value : int or str
    name : str
        Parameter name for error messages.

    Returns
    -------
    int

    Examples
    --------
    >>> parse_memory("1.5GB")
    1500000000
    """
    return parse_size(value, name, minimum=1)


def _align_features(meta: pd.DataFrame, feats):
    """``feats`` in ``meta``'s row order when both are DataFrames with the same row labels.

    Pairing by position when the labels disagree gives silently wrong results
    (rows of one frame matched to other rows of the other), so labels that
    cannot be matched one-to-one are refused.
    """
    if not isinstance(feats, pd.DataFrame) or meta.index.equals(feats.index):
        return feats
    how = (
        "pass feats.to_numpy() to pair rows by position, or give both frames the same index "
        "(e.g. .reset_index(drop=True) on both, taken from the same table)"
    )
    if not (meta.index.is_unique and feats.index.is_unique):
        raise ValueError(
            "meta and feats have different row indexes and at least one has duplicate labels, "
            f"so rows cannot be matched by label; {how}"
        )
    if len(meta.index) != len(feats.index) or not meta.index.isin(feats.index).all():
        missing = meta.index.difference(feats.index)[:3].tolist()
        raise ValueError(
            f"meta and feats have different row labels (e.g. meta rows {missing} are not in "
            f"feats), so it is unclear which features belong to which profile; {how}"
        )
    logger.info("feats rows reordered to match meta's index labels")
    return feats.reindex(meta.index)


def _feature_matrix(feats, n_meta: int) -> tuple[np.ndarray, list[str] | None]:
    """Validated features as one C-ordered array and their names (for callers that need it whole).

    The AP engine itself never calls this: it reads a :class:`FeatureSource` block by block.
    """
    source = as_feature_source(feats, n_meta)
    X = source.direct
    if X is None:
        X = source.take(np.arange(source.n_rows))
    return X, source.names


def _check_finite(source, names=None, compiled=True) -> None:
    """Raise on NaN/inf, naming the first bad row and feature (reads the source block-wise).

    ``source``: a :class:`FeatureSource`, or an array with its feature ``names``.
    ``compiled``: take the check from the source's one compiled pass over its rows
    (:meth:`FeatureSource.scan`, which also takes norms and projections); False for
    the NumPy path of small screens, which never loads compiled kernels.
    """
    if not isinstance(source, FeatureSource):
        source = FeatureSource(source, names)
    if compiled:
        stats = source.scan()
        n_bad, first = stats.n_bad, stats.first_bad
    else:
        n_bad, first = 0, None
        for start, block in source.blocks():
            ok = np.isfinite(block)
            if not ok.all():
                r, c = np.argwhere(~ok)[0]
                first = (start + int(r), int(c), block[r, c].item())
                n_bad = sum(int((~np.isfinite(b)).sum()) for _, b in source.blocks())
                break
    if first is not None:
        r, c, value = first
        col = source.names[c] if source.names is not None else f"column {c}"
        raise ValueError(
            f"feats contain {n_bad} NaN or infinite value(s); first at row {r}, feature "
            f"{col!r} (value {value}). Impute or drop those features/profiles first"
        )


def _scan_while_encoding(source, meta, columns, n_jobs) -> np.ndarray:
    """The pairing codes of ``meta``, encoded while another thread scans the features.

    The scan (:meth:`FeatureSource.scan`: finiteness, norms, means, tie projection)
    is compiled code that releases the GIL, and factorizing string columns runs
    mostly in Arrow's C++ code, so with two threads allowed (``n_jobs``) the two
    overlap. Errors keep their order: non-finite features are reported before
    metadata problems, as when the two run one after the other.
    """
    if resolve_n_jobs(n_jobs) < 2:
        _check_finite(source)
        return encode_columns(meta, columns)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pairmap-scan") as pool:
        scanning = pool.submit(source.scan)
        try:
            codes, problem = encode_columns(meta, columns), None
        except (ValueError, TypeError) as exc:
            codes, problem = None, exc
        scanning.result()
    _check_finite(source)
    if problem is not None:
        raise problem
    return codes


def _rule_has_pairs(codes, columns, rule) -> bool:
    from ._kernels.pairs import count_rule_pairs
    from .pairing import Buckets, group_keys

    enc = EncodedRule.from_rule(rule, columns)
    b = Buckets.build(group_keys(codes, enc.all_same))
    return bool(count_rule_pairs(codes, b.keys, b.order, b.starts, *enc.as_tuple()).any())


def _explain_unscored(meta, columns, codes, pos_rule, neg_rule) -> None:
    """No profile has both positives and negatives: raise if a kind of pair is missing, else warn."""
    if not _rule_has_pairs(codes, columns, pos_rule):
        raise ValueError(
            f"no positive pairs: no two profiles satisfy the positive rule ({pos_rule.describe()}). "
            f"Check pos_sameby/pos_diffby and that groups have replicates"
        )
    if not _rule_has_pairs(codes, columns, neg_rule):
        raise ValueError(
            f"no negative pairs: no two profiles satisfy the negative rule ({neg_rule.describe()}). "
            f"Check neg_sameby/neg_diffby and the controls"
        )
    msg = (
        "positive and negative pairs exist, but no profile has both, so every AP is NaN; "
        "check that the profiles with replicates also have negatives (e.g. controls on their plate)"
    )
    warnings.warn(msg, RuntimeWarning, stacklevel=3)
    logger.warning(msg)


def average_precision(
    meta: pd.DataFrame,
    feats: Features,
    pos_sameby: RuleSpec,
    pos_diffby: RuleSpec,
    neg_sameby: RuleSpec,
    neg_diffby: RuleSpec,
    *,
    distance: Distance = "cosine",
    ties: str = "positives_first",
    max_memory: Size | None = None,
    batch_size: int | None = None,
    n_jobs: int | None = None,
    progress_bar: bool = True,
    multilabel_col: str | None = None,
    metrics: list[str] | None = None,
    client: DaskClient = None,
) -> pd.DataFrame:
    """Average precision (AP) of every profile against its positives and negatives.

    Each profile is a query. Profiles that satisfy the positive rule
    (``pos_sameby``/``pos_diffby``) with it are its positives, profiles that
    satisfy the negative rule are its negatives; they are ranked by decreasing
    similarity to the query, and AP is the mean, over positives, of the
    precision at that positive's rank.

    Parameters
    ----------
    meta : pandas.DataFrame
        Metadata, one row per profile.
    feats : numpy.ndarray, pandas.DataFrame, str or os.PathLike
        (n_profiles, n_features) numeric features in the same row order, in
        any memory order (C, Fortran, strided), memory-mapped, a Zarr array,
        or the path of a ``.npy`` file (memory-mapped), a Parquet file (its
        non-``Metadata_`` columns, streamed once into a temporary memory map;
        :mod:`pairmap.feature_files`) or a Zarr array. They are read in row blocks, never copied whole (see
        :mod:`pairmap.features`). A DataFrame whose index holds the same
        labels as ``meta``'s in another order is aligned to ``meta`` by
        label; different labels are refused (pass ``feats.to_numpy()`` to
        pair by position). float32 input is computed in float32; other
        numeric types are converted to float64 block by block.
    pos_sameby, pos_diffby, neg_sameby, neg_diffby : str, list of str or dict
        Pairing rules: column names that must all be equal (``sameby``) or all
        differ (``diffby``; a single column may be given as a string), or ``{"all": [...], "any": [...]}`` where at
        least one of the ``"any"`` columns (two or more) must be equal/differ.
        ``sameby`` entries that are not columns are pandas query expressions
        that filter the profiles (metadata and features alike) first.
        A pair may not satisfy both rules (``ValueError``).
    distance : str or callable, default "cosine"
        ``"cosine"``, ``"abs_cosine"``, ``"correlation"``, ``"euclidean"``,
        ``"manhattan"``, ``"chebyshev"`` (distances d become 1/(1+d)) or a
        callable ``f(X, Y)`` returning one similarity per row pair of two
        equally shaped blocks.
    ties : {"positives_first", "expected"}, default "positives_first"
        ``"positives_first"``: a positive tied with negatives ranks ahead of
        them (copairs' behaviour: published numbers reproduce).
        ``"expected"``: the expected AP over all orders of tied items
        (McSherry & Najork 2008), which neither favours nor penalises ties.
    max_memory : int or str, optional
        Bound on the engine's block buffers, e.g. ``"2GB"`` (default 1 GiB).
        Blocks are sized as if 16 threads (or ``n_jobs``, when more) shared it,
        at least 4 MiB each, so that results do not depend on ``n_jobs``; with
        fewer threads less is used. The input features and per-row bookkeeping
        (a few integers per profile) are not counted.
    batch_size : int, optional
        Maximum number of query profiles per block (default: from
        ``max_memory``). Results do not depend on it.
    n_jobs : int, optional
        Threads for the compiled kernels and BLAS (default: all CPUs this
        process may use; ``-1`` likewise). Results are identical bit for bit
        for every thread count up to 16 (and on Dask, whatever the workers).
    progress_bar : bool, default True
        Show a progress bar with ETA (drawn only once the work has taken a
        second).
    multilabel_col : str, optional
        A column holding a list of labels per profile (targets, mechanisms;
        lists, tuples, arrays or Arrow lists -- see
        :func:`pairmap.split_multilabel` for ``"A|B"`` strings). It must be in
        ``pos_sameby`` and ``neg_diffby``: every (profile, label) is a query
        whose positives carry that label and whose negatives share no label
        with the profile (copairs' multi-label AP; details in
        :mod:`pairmap.multilabel`). Built-in distances only.
    metrics : list of str, optional
        Further metrics from the same ranking pass, one output column each:
        ``"roc_auc"``, ``"precision@K"``, ``"recall@K"`` (``K`` an integer or
        ``"R"``, the number of positives: R-precision); see
        :mod:`pairmap.metrics`.
    client : distributed.Client or str, optional
        Run the AP blocks as tasks on Dask: a client, a scheduler address or
        ``"local"`` (default: the client of :func:`pairmap.distributed.use`,
        else this process only). The blocks are planned for ``n_jobs``
        threads, so results are identical to a run here with the same
        ``n_jobs``; see :mod:`pairmap.distributed`.

    Returns
    -------
    pandas.DataFrame
        ``meta`` (filtered by any query expressions, index reset) with columns
        ``average_precision``, ``normalized_average_precision`` ((AP - mu0) /
        (1 - mu0), mu0 the expected AP of a random ranking), ``n_pos_pairs`` and
        ``n_total_pairs`` (list length), then one column per ``metrics``
        entry. Profiles without positives or without negatives get NaN scores
        and zero counts. With ``multilabel_col``: one row per (profile, label)
        in the order of ``meta.explode(multilabel_col)``, the label in
        ``multilabel_col``.

    Warns
    -----
    RuntimeWarning
        When at least 10% of the profiles are constant or identical to
        another profile (their similarities tie, so the tie policy rather
        than the data decides their ranks; with ``"positives_first"`` APs
        are inflated, up to 1), and when no profile could be scored.

    Raises
    ------
    ValueError
        For bad input (missing columns, NaN/inf features or missing values in
        pairing columns, row-count mismatch, overlapping rules, no positive or
        no negative pairs at all, ...); the message names the culprit.

    Notes
    -----
    Similarities are rounded to a grid of 2**-36 before ranking, so values
    that are equal in exact arithmetic tie even when the computation rounds
    them differently. Similarities from matrix products (cosine, abs_cosine,
    correlation, float64 euclidean) can differ from a direct loop in the last
    bits; euclidean distances that would cancel in ``|x|^2 + |y|^2 - 2x.y``
    are recomputed directly. Whatever the block size, thread count or
    internal path, every AP is computed by the same sequential code from
    those similarities (tests compare the paths against a brute-force oracle).
    Screens of at most 1,024 profiles with a dot-product distance are scored
    by NumPy alone, loading no compiled kernel (:mod:`pairmap._small`): every
    similarity comes from one float64 matrix product.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from pairmap import assign_reference_index
    >>> meta = pd.DataFrame({"Metadata_cpd": ["a", "a", "ctl", "ctl", "b", "b"]})
    >>> meta = assign_reference_index(meta, "Metadata_cpd == 'ctl'")
    >>> feats = np.array([[1, 0], [1, .1], [0, 1], [.1, 1], [1, 1], [1, .9]])
    >>> cols = ["Metadata_cpd", "Metadata_Reference_Index"]
    >>> res = average_precision(meta, feats, cols, [], [], cols, progress_bar=False)
    >>> res["average_precision"].round(3).tolist()
    [1.0, 1.0, nan, nan, 1.0, 1.0]
    """
    if not isinstance(meta, pd.DataFrame):
        raise TypeError(f"meta must be a pandas DataFrame, got {type(meta).__name__}")
    if len(meta) == 0:
        raise ValueError("meta is empty: there are no profiles to rank")
    check_option("ties", ties, TIES)
    progress_bar = check_bool("progress_bar", progress_bar)
    if batch_size is not None:
        batch_size = check_int("batch_size", batch_size, minimum=1)
    budget = DEFAULT_MAX_MEMORY if max_memory is None else parse_memory(max_memory)
    request = None if metrics is None else parse_metrics(metrics)
    source = as_feature_source(_align_features(meta, feats), len(meta))
    pos_rule, pos_q = parse_rule(pos_sameby, pos_diffby, meta.columns, name="pos")
    neg_rule, neg_q = parse_rule(neg_sameby, neg_diffby, meta.columns, name="neg")
    for label, rule in (("pos", pos_rule), ("neg", neg_rule)):
        if not rule.columns:
            raise ValueError(
                f"the {label} rule has no columns: give at least one column in "
                f"{label}_sameby or {label}_diffby"
            )
    meta = meta.reset_index(drop=True)
    if pos_q or neg_q:
        keep = apply_queries(meta, pos_q + neg_q)
        if not keep.any():
            raise ValueError(f"no profile satisfies the query expressions {pos_q + neg_q}")
        meta = meta.loc[keep].reset_index(drop=True)
        source = source.subset(np.flatnonzero(keep))
    small = small_screen.applies(source.n_rows, distance)
    columns = list(dict.fromkeys(pos_rule.columns + neg_rule.columns))
    if small or multilabel_col is not None:
        _check_finite(source, compiled=not small)
        codes = None
    else:  # one pass for every whole-matrix statistic, while the metadata is encoded
        codes = _scan_while_encoding(source, meta, columns, n_jobs)
    if multilabel_col is not None:
        if client is not None or current_client() is not None:
            raise ValueError("multilabel_col does not run on Dask yet; call without client=")
        # the multi-label engine reads features in place: a C-ordered copy only when needed
        X = source.direct
        if X is None:
            X = source.take(np.arange(source.n_rows))
        return _multilabel_ap(
            meta,
            X,
            pos_rule,
            neg_rule,
            multilabel_col,
            distance=distance,
            ties=ties,
            budget=budget,
            batch_size=batch_size,
            n_jobs=n_jobs,
            progress_bar=progress_bar,
            request=request,
        )
    if codes is None:
        codes = encode_columns(meta, columns)
    rules = (EncodedRule.from_rule(pos_rule, columns), EncodedRule.from_rule(neg_rule, columns))
    if small_screen.applies(source.n_rows, distance):
        if client is not None or current_client() is not None:
            logger.info("a small screen is scored in this process, not on Dask")
        parsed = (columns, pos_rule, neg_rule)
        return _small_screen_ap(
            meta, source, codes, rules, parsed, distance, ties, n_jobs, progress_bar, request
        )
    prep = _prepare(source, distance, ties)
    logger.info(
        "average_precision: %d profiles, %d features, distance=%s", *source.shape, prep.name
    )

    from threadpoolctl import threadpool_limits

    from .startup import ensure_compiled

    ensure_compiled(prep.source.dtype.name)  # a first-run compile is announced, not in the ETA

    with (
        thread_limits(n_jobs) as threads,
        threadpool_limits(limits=1),
        progress(
            total=len(meta), desc="average precision", unit="profile", enabled=progress_bar
        ) as bar,
    ):
        logger.debug("using %d threads", threads)
        extra = _metric_spec(request, len(meta))
        options = dict(
            ties_expected=ties == "expected",
            max_memory=budget,
            batch_size=batch_size,
            progress=bar.update,
        )
        if client is None:
            client = current_client()
        if client is None:
            from ._retrieval import compute_average_precision

            ap, n_pos, n_total, totals = compute_average_precision(
                prep, codes, *rules, n_workers=threads, metrics=extra, **options
            )
        else:
            from .distributed import compute_on_dask

            ap, n_pos, n_total, totals = compute_on_dask(
                client, prep, codes, *rules, plan_workers=threads, metrics=extra, **options
            )
    context = PermutationContext(prep, codes, *rules, ties == "expected", ap, n_pos, n_total)
    metric_values = None if extra is None else extra.out
    return _ap_table(meta, context, totals, request, metric_values, (columns, pos_rule, neg_rule))


def _ap_table(meta, context, totals, request, metric_values, rules) -> pd.DataFrame:
    """The AP table: ``meta`` plus the score columns, carrying ``context`` (see permutation).

    ``rules``: ``(columns, pos_rule, neg_rule)`` as parsed, to explain a run that scored nothing.
    """
    if totals["pos"] == 0 or totals["neg"] == 0:
        _explain_unscored(meta, rules[0], context.codes, rules[1], rules[2])
    ap, n_pos, n_total = context.ap, context.n_pos, context.n_total
    scored = int(np.isfinite(ap).sum())
    logger.info("average_precision: %d of %d profiles scored", scored, len(meta))
    out = meta.copy()
    out["average_precision"] = ap
    out["normalized_average_precision"] = normalize_ap(ap, n_pos, n_total)
    out["n_pos_pairs"] = n_pos
    out["n_total_pairs"] = n_total
    attach_context(out, context)
    return _add_metric_columns(out, request, metric_values)


def _add_metric_columns(out, request, values):
    for j, name in enumerate(request.names if request is not None else ()):
        out[name] = values[:, j]
    return out


def _small_screen_ap(
    meta, source, codes, rules, parsed, distance, ties, n_jobs, progress_bar, request
):
    """:func:`average_precision` of a small screen by NumPy alone (see :mod:`pairmap._small`)."""
    from ._small.retrieval import average_precision as small_average_precision
    from ._small.similarity import similarity_matrix
    from .similarity import METRICS, PreparedFeatures, warn_no_direction

    n = source.n_rows
    X = source.direct if source.direct is not None else source.take(np.arange(n))
    metric = METRICS[distance]
    logger.info(
        "average_precision: %d profiles, %d features, distance=%s (small screen: NumPy path)",
        *source.shape,
        distance,
    )
    values = None if request is None else np.full((n, len(request.names)), np.nan)
    with (
        thread_limits(n_jobs, compiled=False),
        progress(total=n, desc="average precision", unit="profile", enabled=progress_bar) as bar,
    ):
        S, X_seen, inv_norm, zero = similarity_matrix(X, metric)
        warn_no_direction(zero, distance, stacklevel=5)
        warn_if_tied(X_seen, inv_norm if inv_norm.size else None, ties=ties, stacklevel=5)
        ap, n_pos, n_total, totals = small_average_precision(
            S,
            codes,
            *rules,
            ties_expected=ties == "expected",
            kinds=None if request is None else request.kinds,
            cuts=None if request is None else request.cuts,
            metrics_out=values,
            progress=bar.update,
        )
    prep = PreparedFeatures(X_seen, metric, inv_norm, np.empty(0), True, None, distance)
    context = PermutationContext(
        prep, codes, *rules, ties == "expected", ap, n_pos, n_total, similarity=S
    )
    return _ap_table(meta, context, totals, request, values, parsed)


def _metric_spec(request, n_queries):
    """Output buffer for the ``metrics=`` columns (None when none were asked for)."""
    if request is None:
        return None
    from ._retrieval import MetricSpec

    return MetricSpec(request.kinds, request.cuts, np.full((n_queries, len(request.names)), np.nan))


def _prepare(X, distance, ties: str, depth: int = 1):
    """Features ready for the kernels; warns when many profiles tie wholesale.

    ``depth``: calls between the user and this function (for the warning's location).
    """
    prep = prepare_features(X, distance)
    if prep.func is None:
        warn_if_tied(
            prep.source,
            prep.inv_norm if prep.inv_norm.size else None,
            ties=ties,
            stacklevel=3 + depth,
        )
    for src in (X, prep.source):  # the one-pass statistics are used up: free them
        if isinstance(src, FeatureSource):
            src.forget_scan()
    return prep


def _multilabel_ap(
    meta,
    X,
    pos_rule,
    neg_rule,
    column,
    *,
    distance,
    ties,
    budget,
    batch_size,
    n_jobs,
    progress_bar,
    request=None,
) -> pd.DataFrame:
    """:func:`average_precision` with a label column (validated input, filtered rows)."""
    from threadpoolctl import threadpool_limits

    from ._retrieval_multilabel import compute_multilabel_ap
    from .multilabel import EncodedMultilabel, explain_unscored, long_form

    if callable(distance):
        raise ValueError(
            "multilabel_col supports the built-in distances only (cosine, abs_cosine, correlation, "
            "euclidean, manhattan, chebyshev), not a callable"
        )
    enc = EncodedMultilabel.build(meta, column, pos_rule, neg_rule)
    prep = _prepare(X, distance, ties, depth=2)
    logger.info(
        "average_precision: %d profiles, %d labels in %r, distance=%s",
        len(meta),
        len(enc.uniques),
        column,
        prep.name,
    )
    with (
        thread_limits(n_jobs) as threads,
        threadpool_limits(limits=1),
        progress(
            total=len(meta), desc="average precision", unit="profile", enabled=progress_bar
        ) as bar,
    ):
        extra = _metric_spec(request, len(enc.labels.code))
        ap, n_pos, n_total, totals = compute_multilabel_ap(
            prep,
            enc.codes,
            enc.encoded(enc.pos_rest),
            enc.encoded(enc.neg_rest),
            enc.labels,
            ties_expected=ties == "expected",
            max_memory=budget,
            batch_size=batch_size,
            n_workers=threads,
            progress=bar.update,
            metrics=extra,
        )
    if totals["pos"] == 0 or totals["neg"] == 0:
        explain_unscored(enc, column, totals)
    logger.info(
        "average_precision: %d of %d (profile, label) queries scored",
        int(np.isfinite(ap).sum()),
        len(ap),
    )
    out = long_form(meta, column, enc)
    out["average_precision"] = ap
    out["normalized_average_precision"] = normalize_ap(ap, n_pos, n_total)
    out["n_pos_pairs"] = n_pos
    out["n_total_pairs"] = n_total
    return _add_metric_columns(out, request, None if extra is None else extra.out)
