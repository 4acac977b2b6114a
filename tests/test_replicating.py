"""Percent replicating / percent strong.

Oracles: brute-force pair enumeration with NumPy/SciPy correlations and
``np.quantile``; cytominer-eval 0.1 (run live on the LINCS plate, plus its
published test values) and copairs 0.5.5 ``correlation_test``.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import LINCS_FILE, data_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pairmap._pair_stats import sample_null_pairs, select
from pairmap.replicating import (
    ReplicatingResult,
    percent_replicating,
    percent_strong,
    wasserstein_1d,
)

stats = pytest.importorskip("scipy.stats")


def _screen(seed, n_groups=6, reps=3, n_plates=3, d=15, effect=1.0):
    rng = np.random.default_rng(seed)
    meta = pd.DataFrame(
        {
            "cpd": np.repeat([f"c{g}" for g in range(n_groups)], reps),
            "plate": np.tile(np.arange(reps) % n_plates, n_groups),
        }
    )
    X = effect * rng.normal(size=(n_groups, d)).repeat(reps, axis=0) + rng.normal(
        size=(len(meta), d)
    )
    return meta, X


def _corr(X, method):
    if method == "spearman":
        X = np.apply_along_axis(stats.rankdata, 1, X)
    return np.corrcoef(X)


def _brute_strong(meta, X, cols, q, method):
    C = _corr(X, method)
    key = meta[cols].astype(str).agg("|".join, axis=1).to_numpy()
    rep, non = [], []
    for i, j in itertools.combinations(range(len(meta)), 2):
        (rep if key[i] == key[j] else non).append(C[i, j])
    thr = np.quantile(non, q)
    return float(np.mean(np.array(rep) > thr)), float(thr)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    n_groups=st.integers(2, 7),
    reps=st.integers(2, 4),
    q=st.sampled_from([0.5, 0.9, 0.95, 0.99, 1.0]),
    method=st.sampled_from(["pearson", "spearman"]),
    tiny_memory=st.booleans(),
)
def test_percent_strong_equals_brute_force(seed, n_groups, reps, q, method, tiny_memory):
    meta, X = _screen(seed, n_groups, reps)
    score, thr = _brute_strong(meta, X, ["cpd"], q, method)
    # tiny_memory forces the multi-pass histogram selection of the quantile
    res = percent_strong(
        meta, X, "cpd", quantile=q, method=method, max_memory=1000 if tiny_memory else None
    )
    assert res.threshold == pytest.approx(thr, abs=1e-12)
    assert res.score == score
    assert res.n_replicate_pairs == n_groups * reps * (reps - 1) // 2


@pytest.mark.parametrize("budget", [1, 7, 50, 10**6])
def test_streamed_selection_equals_partition_with_ties(budget):
    rng = np.random.default_rng(budget)
    values = np.concatenate([rng.normal(size=300), np.full(200, 0.25), rng.integers(0, 3, 100)])
    rng.shuffle(values)
    pieces = np.array_split(values, 7)
    ranks = [0, 1, 150, 250, 420, 599]
    got = select(lambda: iter(pieces), ranks, len(values), budget)
    np.testing.assert_array_equal(got, np.sort(values)[ranks])


def _brute_medians(meta, X, same, diff, method="pearson"):
    C = _corr(X, method)
    out = {}
    for key, part in meta.groupby(same, sort=True):
        idx = part.index.to_numpy()
        vals = [
            C[i, j]
            for i, j in itertools.combinations(idx, 2)
            if all(meta.loc[i, c] != meta.loc[j, c] for c in diff)
        ]
        out[key if len(same) > 1 else key[0]] = (np.median(vals) if vals else np.nan, len(vals))
    return out


@pytest.mark.parametrize("method", ["pearson", "spearman"])
@pytest.mark.parametrize("diff", [[], ["plate"]])
def test_group_medians_equal_brute_force(method, diff):
    meta, X = _screen(1, n_groups=5, reps=5, n_plates=3)
    res = percent_replicating(meta, X, ["cpd"], diff, method=method, null_size=50)
    expected = _brute_medians(meta, X, ["cpd"], diff, method)
    for _, row in res.groups.iterrows():
        med, n = expected[row["cpd"]]
        assert row["n_pairs"] == n
        assert row["median_correlation"] == pytest.approx(med, abs=1e-12)


@pytest.mark.parametrize("max_memory", [None, 3000])
def test_large_groups_use_blocks_and_streamed_medians(max_memory):
    # groups of 90 > SMALL_GROUP go through matrix-product blocks; 3000 bytes forces the
    # multi-pass selection of their medians
    meta, X = _screen(2, n_groups=3, reps=90, n_plates=4)
    meta = pd.concat([meta, meta.head(6).assign(cpd="small")], ignore_index=True)
    X = np.vstack([X, X[:6] + 0.1])
    res = percent_replicating(meta, X, "cpd", "plate", null_size=100, max_memory=max_memory)
    expected = _brute_medians(meta, X, ["cpd"], ["plate"])
    for _, row in res.groups.iterrows():
        med, n = expected[row["cpd"]]
        assert row["n_pairs"] == n
        assert row["median_correlation"] == pytest.approx(med, abs=1e-12)
    score, thr = _brute_strong(meta, X, ["cpd"], 0.9, "pearson")
    strong = percent_strong(meta, X, "cpd", quantile=0.9, max_memory=max_memory)
    assert strong.score == score
    assert strong.threshold == pytest.approx(thr, abs=1e-12)


def test_default_null_group_size_follows_copairs_rule():
    # complete groups of 5 with no diffby: members 0..3 start a pair -> 4 per null median
    meta, X = _screen(3, n_groups=4, reps=5)
    assert percent_replicating(meta, X, "cpd", null_size=20).n_replicates == 4
    assert percent_replicating(meta, X, "cpd", null_size=20, n_replicates=7).n_replicates == 7


def test_null_is_seeded_and_reproducible():
    meta, X = _screen(4)
    a = percent_replicating(meta, X, "cpd", null_size=300, seed=1)
    b = percent_replicating(meta, X, "cpd", null_size=300, seed=1, n_jobs=1)
    c = percent_replicating(meta, X, "cpd", null_size=300, seed=2)
    np.testing.assert_array_equal(a.null, b.null)
    assert not np.array_equal(a.null, c.null)


def test_null_pairs_are_valid_and_uniform():
    # 2 columns; row i's partners are the rows differing in both
    codes = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [2, 2], [2, 0]])
    size = 120_000
    a, b = sample_null_pairs(codes, size, np.random.default_rng(0))
    assert (codes[a] != codes[b]).all()
    n = len(codes)
    partners = [np.flatnonzero((codes != codes[i]).all(axis=1)) for i in range(n)]
    expected = np.zeros((n, n))
    for i in range(n):
        expected[i, partners[i]] = 1 / n / len(partners[i])
    observed = np.zeros((n, n))
    np.add.at(observed, (a, b), 1)
    mask = expected > 0
    chi2 = (((observed - size * expected) ** 2)[mask] / (size * expected[mask])).sum()
    assert stats.chi2.sf(chi2, mask.sum() - n) > 1e-4


def test_rows_without_null_partner_are_redrawn_and_impossible_nulls_raise():
    codes = np.array([[0], [0], [0], [1]])  # row 3 pairs with all; 0..2 only with row 3
    a, b = sample_null_pairs(codes, 1000, np.random.default_rng(0))
    assert (codes[a] != codes[b]).all()
    meta = pd.DataFrame({"cpd": ["a", "a", "b", "b"], "plate": [1, 2, 1, 2]})
    X = np.random.default_rng(0).normal(size=(4, 5))
    with pytest.raises(ValueError, match="no null pairs"):
        percent_replicating(meta.assign(batch=1), X, ["cpd", "batch"], null_size=10)


def test_scoring_matches_copairs_on_the_same_null():
    replicating = pytest.importorskip("copairs.replicating")
    rng = np.random.default_rng(0)
    corr_df = pd.DataFrame({"median": np.r_[rng.normal(0.3, 0.3, 40), np.nan], "count": 1})
    null = pd.Series(rng.normal(0, 0.15, 1000))
    theirs = replicating.CorrelationTestResult(corr_df, null)
    ours = ReplicatingResult(
        corr_df.rename(columns={"median": "median_correlation"}),
        null.to_numpy(),
        0.0,
        None,
        None,
        3,
    )
    for how in ("left", "right", "both"):
        t, o = theirs.percent_score(how), ours.percent_score(how)
        assert o[0] == pytest.approx(t[0], abs=1e-15)
        for a, b in zip(o[1:], t[1:], strict=True):
            assert (a is None and b is None) or a == pytest.approx(b, abs=1e-15)
    # copairs passes NaN medians (groups without pairs) to scipy and gets NaN; pairmap drops them
    assert np.isnan(theirs.wasserstein_distance())
    theirs = replicating.CorrelationTestResult(corr_df.dropna(), null)
    assert ours.wasserstein_distance() == pytest.approx(theirs.wasserstein_distance(), abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_wasserstein_equals_scipy(seed):
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=rng.integers(1, 30)), rng.gamma(2, size=rng.integers(1, 30))
    assert wasserstein_1d(u, v) == pytest.approx(stats.wasserstein_distance(u, v), abs=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(sameby="nope"), ValueError, "column 'nope' is not in the metadata"),
        (dict(sameby="cpd", diffby="cpd"), ValueError, "both sameby and diffby"),
        (dict(sameby="cpd", method="kendall"), ValueError, "method='kendall'"),
        (dict(sameby="cpd", quantile=1.5), ValueError, "quantile must be in"),
        (dict(sameby="cpd", how="up"), ValueError, "how='up'"),
        (dict(sameby="plate", diffby="plate2"), ValueError, "no replicate pairs"),
        (dict(sameby=[]), ValueError, "at least one column"),
    ],
)
def test_bad_arguments_name_the_culprit(kwargs, error, match):
    meta, X = _screen(0)
    meta["plate2"] = meta["plate"]
    with pytest.raises(error, match=match):
        percent_replicating(meta, X, **kwargs)


def test_zero_variance_profiles_are_refused():
    meta, X = _screen(0)
    X[2] = 0.1  # not exactly representable: the mean is rounded, the row is still constant
    with pytest.raises(ValueError, match=r"zero variance \(rows \[2\]"):
        percent_strong(meta, X, "cpd")
    with pytest.raises(ValueError, match="no non-replicate pairs"):
        percent_strong(meta.assign(one=1), X, "one")


# ------------------------------------------------------------ LINCS differential tests
@pytest.fixture(scope="module")
def lincs():
    df = pd.read_csv(data_file(LINCS_FILE))
    meta_cols = [c for c in df.columns if c.startswith("Metadata_")]
    return df, meta_cols


@pytest.fixture(scope="module")
def cytominer_melt(lincs):
    """cytominer-eval 0.1's Pearson melt of the LINCS plate (it needs the numpy aliases that
    NumPy 2 removed: np.float and np.str are restored for the duration of the fixture)."""
    mp = pytest.MonkeyPatch()
    with warnings.catch_warnings():  # reading the missing alias warns on NumPy 2
        warnings.simplefilter("ignore", FutureWarning)
        mp.setattr(np, "float", float, raising=False)
        mp.setattr(np, "str", str, raising=False)
    try:
        transform = pytest.importorskip("cytominer_eval.transform")
        ops = pytest.importorskip("cytominer_eval.operations")
        df, meta_cols = lincs
        features = [c for c in df.columns if c not in meta_cols]
        melt = transform.metric_melt(
            df=df, features=features, metadata_features=meta_cols, similarity_metric="pearson"
        )
        yield melt, ops.replicate_reproducibility
    finally:
        mp.undo()


@pytest.mark.parametrize(
    ("groups", "published_score", "published"),
    [
        # cytominer-eval 0.1 tests/test_operations/test_replicate_reproducibility.py
        (["Metadata_broad_sample", "Metadata_mg_per_ml"], 0.4583, ("mean", 0.5407)),
        (["Metadata_moa"], 0.3074, ("max", 0.9357)),
    ],
)
def test_percent_strong_reproduces_cytominer_eval_published_values(
    lincs, groups, published_score, published
):
    df, meta_cols = lincs
    # cytominer-eval (with the pandas of its time) cast metadata to str: a missing MoA (the
    # 24 DMSO wells) became the string "nan", one replicate group
    meta = df[meta_cols].apply(lambda col: col.map(str))
    res = percent_strong(meta, df.drop(columns=meta_cols), groups, quantile=0.95)
    assert round(res.score, 4) == published_score
    ours = res.groups.set_index(groups)["median_correlation"]
    stat, value = published
    assert round(getattr(ours, stat)(), 4) == value


@pytest.mark.parametrize(
    "groups", [["Metadata_broad_sample", "Metadata_mg_per_ml"], ["Metadata_moa"]]
)
def test_percent_strong_equals_cytominer_eval_run_live_on_lincs(lincs, cytominer_melt, groups):
    df, meta_cols = lincs
    melt, replicate_reproducibility = cytominer_melt
    theirs, med = replicate_reproducibility(melt, groups, 0.95, True)
    # Under pandas >= 3 cytominer-eval's str cast keeps NaN, and NaN != NaN: wells without a
    # MoA are nobody's replicate (0.4164 instead of the published 0.3074). Same rule here:
    # each such well gets a label of its own.
    meta = df[meta_cols].copy()
    lonely = meta["Metadata_moa"].isna()
    meta.loc[lonely, "Metadata_moa"] = [f"no-moa-{i}" for i in np.flatnonzero(lonely)]
    res = percent_strong(meta, df.drop(columns=meta_cols), groups, quantile=0.95)
    assert res.score == pytest.approx(theirs, abs=1e-15)
    ours = res.groups[res.groups["n_pairs"] > 0].set_index(groups)["median_correlation"]
    med = med.set_index(groups)["similarity_metric"]
    for table in (ours, med):  # cytominer-eval's labels are strings (doses included)
        table.index = ["|".join(map(str, k if isinstance(k, tuple) else (k,))) for k in table.index]
    assert len(ours) == len(med)
    np.testing.assert_allclose(ours.loc[med.index].to_numpy(), med.to_numpy(), atol=1e-12)


def test_percent_replicating_agrees_with_copairs_on_lincs(lincs):
    replicating = pytest.importorskip("copairs.replicating")
    df, meta_cols = lincs
    meta, X = df[meta_cols], df.drop(columns=meta_cols).to_numpy()
    same, diff = ["Metadata_broad_sample"], ["Metadata_mg_per_ml"]
    theirs = replicating.correlation_test(X, meta, same, diff, n_samples=1000, progress_bar=False)
    _, their_repl = replicating.corr_between_replicates(X, meta, same, diff, progress_bar=False)
    ours = percent_replicating(meta, X, same, diff, null_size=1000)
    # replicate medians: equal up to copairs' float32 arithmetic
    mine = ours.groups.set_index(same[0])
    mine = mine[mine["n_pairs"] > 0]
    assert sorted(mine.index) == sorted(theirs.corr_df.index)
    np.testing.assert_allclose(
        mine.loc[theirs.corr_df.index, "median_correlation"], theirs.corr_df["median"], atol=1e-6
    )
    np.testing.assert_array_equal(
        mine.loc[theirs.corr_df.index, "n_pairs"], theirs.corr_df["count"]
    )
    assert ours.n_replicates == min(their_repl, 50)
    # nulls: different random pairs from the same law
    assert stats.ks_2samp(ours.null, theirs.null_dist.to_numpy()).pvalue > 1e-3
    # on copairs' own null our scoring gives copairs' score exactly
    same_null = ReplicatingResult(
        ours.groups, theirs.null_dist.to_numpy(np.float64), 0.0, None, None, ours.n_replicates
    )
    for how in ("left", "right", "both"):
        assert same_null.percent_score(how)[0] == pytest.approx(
            theirs.percent_score(how)[0], abs=1e-12
        )
