"""The permutation null (null="permutation"): exactness against full enumeration of relabelings,
sampling, determinism, blocks, consistency pools and the rules for when it is used."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from oracles import exact_permutation_p

import pairmap
from pairmap.permutation import PermutationTester, context_of

COLS = ["cpd", "Metadata_Reference_Index"]


def activity_screen(
    n_controls=8, n_cpds=4, reps=3, shift=(0, 1, 2), n_feat=12, seed=0, plates=None
):
    """Controls plus compounds; compounds in ``shift`` get a shifted mean (varying strength)."""
    rng = np.random.default_rng(seed)
    cpd = ["ctl"] * n_controls + [f"c{i}" for i in range(n_cpds) for _ in range(reps)]
    meta = pd.DataFrame({"cpd": cpd})
    if plates is not None:
        meta["plate"] = [i % plates for i in range(n_controls)] + [
            r % plates for _ in range(n_cpds) for r in range(reps)
        ]
    meta = pairmap.assign_reference_index(meta, "cpd == 'ctl'")
    X = rng.normal(size=(len(meta), n_feat))
    for i in shift:
        rows = np.flatnonzero(meta["cpd"] == f"c{i}")
        X[rows, : 3 * (i + 1)] += 1.0
    return meta, X


def oracle_pvalues(meta, X, groups_col, pool_of, blocks):
    out = {}
    for g, idx in meta.groupby(groups_col).groups.items():
        members = list(idx)
        pool = pool_of(members)
        if pool is None:
            continue
        out[g] = exact_permutation_p(X, members, pool, blocks)
    return out


def test_activity_pvalues_equal_full_enumeration():
    meta, X = activity_screen()
    ap = pairmap.average_precision(meta, X, COLS, [], [], COLS, progress_bar=False)
    res = pairmap.mean_average_precision(
        ap, "cpd", null="permutation", null_size=1000, progress_bar=False, cache=False
    )
    controls = list(np.flatnonzero(meta["cpd"] == "ctl"))
    blocks = dict.fromkeys(range(len(meta)), 0)
    expect = oracle_pvalues(
        meta, X, "cpd", lambda m: None if m[0] in controls else controls + m, blocks
    )
    got = dict(zip(res["cpd"], res["p_value"], strict=True))
    assert set(expect) == {"c0", "c1", "c2", "c3"}
    for g, (p, _) in expect.items():
        assert got[g] == pytest.approx(p, abs=1e-12), g
    assert np.isnan(got["ctl"])
    # C(11, 3) = 165 relabelings: the smallest possible p-value is 1/165
    assert min(got[g] for g in expect) >= 1 / 165
    assert res.attrs["pairmap_null"] == "permutation"


def test_null_distribution_is_the_enumerated_one():
    meta, X = activity_screen(seed=3)
    ap = pairmap.average_precision(meta, X, COLS, [], [], COLS, progress_bar=False)
    ctx = context_of(ap)
    members = np.flatnonzero(meta["cpd"] == "c1")
    tester = PermutationTester(ctx, np.flatnonzero(meta["cpd"] != "ctl"), 1000, 0, 1)
    (obs_map, _), (null_map, _), total = tester.null_values(members)
    controls = list(np.flatnonzero(meta["cpd"] == "ctl"))
    _, oracle_null = exact_permutation_p(
        X, list(members), controls + list(members), dict.fromkeys(range(len(meta)), 0)
    )
    assert total == len(oracle_null) == 165
    np.testing.assert_allclose(np.sort(null_map), oracle_null, atol=1e-12)
    # the observed statistic is the engine's mAP, and it is one of the relabelings
    assert obs_map == pytest.approx(ap.loc[members, "average_precision"].mean(), abs=1e-12)
    assert np.any(np.abs(null_map - obs_map) < 1e-15)


def test_level_holds_by_construction_over_all_relabelings():
    """Treat every relabeling as the observed group: at most alpha of them get p <= alpha."""
    meta, X = activity_screen(seed=5)
    ap = pairmap.average_precision(meta, X, COLS, [], [], COLS, progress_bar=False)
    tester = PermutationTester(context_of(ap), np.flatnonzero(meta["cpd"] != "ctl"), 1000, 0, 1)
    _, (m, c), total = tester.null_values(np.flatnonzero(meta["cpd"] == "c0"))
    p = np.array(
        [
            np.count_nonzero((m > mi) | ((m == mi) & (c >= ci))) / total
            for mi, ci in zip(m, c, strict=True)
        ]
    )
    for alpha in (0.01, 0.05, 0.1, 0.25, 0.5):
        assert np.count_nonzero(p <= alpha) <= alpha * total


def test_plate_blocks_equal_full_enumeration():
    meta, X = activity_screen(n_controls=10, n_cpds=3, reps=2, plates=2, seed=1)
    ap = pairmap.average_precision(meta, X, COLS, ["plate"], ["plate"], COLS, progress_bar=False)
    res = pairmap.mean_average_precision(
        ap, "cpd", null="permutation", null_size=1000, progress_bar=False, cache=False
    )
    controls = list(np.flatnonzero(meta["cpd"] == "ctl"))
    blocks = dict(enumerate(meta["plate"]))
    expect = oracle_pvalues(
        meta, X, "cpd", lambda m: None if m[0] in controls else controls + m, blocks
    )
    got = dict(zip(res["cpd"], res["p_value"], strict=True))
    for g, (p, null) in expect.items():
        assert len(null) == 36  # one of 6 per plate, two plates
        assert got[g] == pytest.approx(p, abs=1e-12), g


def test_consistency_pool_is_every_profile():
    rng = np.random.default_rng(2)
    meta = pd.DataFrame(
        {"target": [t for t in "abcd" for _ in range(3)], "cpd": [f"x{i}" for i in range(12)]}
    )
    X = rng.normal(size=(12, 10))
    X[:3, :4] += 1.5
    ap = pairmap.average_precision(meta, X, ["target"], ["cpd"], [], ["target"], progress_bar=False)
    res = pairmap.mean_average_precision(
        ap, "target", null="permutation", null_size=1000, progress_bar=False, cache=False
    )
    everyone = list(range(12))
    expect = oracle_pvalues(meta, X, "target", lambda m: everyone, dict.fromkeys(everyone, 0))
    got = dict(zip(res["target"], res["p_value"], strict=True))
    for g, (p, null) in expect.items():
        assert len(null) == 220
        assert got[g] == pytest.approx(p, abs=1e-12), g


def test_sampled_pvalue_agrees_with_exact_within_monte_carlo_error():
    meta, X = activity_screen(n_controls=14, n_cpds=3, reps=3, seed=4)  # C(17, 3) = 680
    ap = pairmap.average_precision(meta, X, COLS, [], [], COLS, progress_bar=False)
    res = pairmap.mean_average_precision(
        ap, "cpd", null="permutation", null_size=400, progress_bar=False, cache=False
    )
    controls = list(np.flatnonzero(meta["cpd"] == "ctl"))
    expect = oracle_pvalues(
        meta,
        X,
        "cpd",
        lambda m: None if m[0] in controls else controls + m,
        dict.fromkeys(range(len(meta)), 0),
    )
    got = dict(zip(res["cpd"], res["p_value"], strict=True))
    for g, (p, null) in expect.items():
        assert len(null) == 680
        se = np.sqrt(p * (1 - p) / 400) + 1 / 400
        assert abs(got[g] - p) <= 4 * se, (g, got[g], p)
        assert got[g] * 401 == pytest.approx(round(got[g] * 401))  # (1 + count) / (1 + B)


def test_results_do_not_depend_on_threads_and_follow_the_seed():
    meta, X = activity_screen(n_controls=30, n_cpds=6, reps=4, seed=6, shift=(0,))
    ap = pairmap.average_precision(meta, X, COLS, [], [], COLS, progress_bar=False)
    kw = dict(null="permutation", null_size=3000, progress_bar=False, cache=False)
    one = pairmap.mean_average_precision(ap, "cpd", n_jobs=1, **kw)
    two = pairmap.mean_average_precision(ap, "cpd", n_jobs=2, **kw)
    pd.testing.assert_frame_equal(one, two)
    other = pairmap.mean_average_precision(ap, "cpd", n_jobs=1, seed=1, **kw)
    assert not np.array_equal(one["p_value"].to_numpy()[1:], other["p_value"].to_numpy()[1:])


def test_filtered_table_keeps_the_context_and_the_pvalues():
    meta, X = activity_screen(seed=7)
    ap = pairmap.average_precision(meta, X, COLS, [], [], COLS, progress_bar=False)
    kw = dict(null="permutation", null_size=1000, progress_bar=False, cache=False)
    full = pairmap.mean_average_precision(ap, "cpd", **kw).set_index("cpd")
    sub = pairmap.mean_average_precision(ap[ap["cpd"].isin(["c0", "c2"])], "cpd", **kw)
    for g, p in zip(sub["cpd"], sub["p_value"], strict=True):
        assert p == full.loc[g, "p_value"]


def test_auto_uses_permutation_only_with_the_data(caplog):
    meta, X = activity_screen()
    ap = pairmap.average_precision(meta, X, COLS, [], [], COLS, progress_bar=False)
    kw = dict(null_size=1000, progress_bar=False, cache=False)
    assert pairmap.mean_average_precision(ap, "cpd", **kw).attrs["pairmap_null"] == "permutation"
    plain = pd.DataFrame(ap.to_dict("list"))  # same numbers, no features behind them
    with caplog.at_level("INFO", logger="pairmap"):
        res = pairmap.mean_average_precision(plain, "cpd", **kw)
    assert res.attrs["pairmap_null"] == "shared"
    assert "using the 'shared' null" in caplog.text
    with pytest.raises(ValueError, match="null='shared'"):
        pairmap.mean_average_precision(plain, "cpd", null="permutation", **kw)
    changed = ap.copy()
    changed.loc[changed.index[-1], "average_precision"] = 0.5
    with pytest.raises(ValueError, match="scores differ"):
        pairmap.mean_average_precision(changed, "cpd", null="permutation", **kw)
    with pytest.raises(ValueError, match="index"):
        pairmap.mean_average_precision(
            ap.set_index("cpd", drop=False), "cpd", null="permutation", **kw
        )


def test_context_is_cheap_to_copy_and_serialize(tmp_path):
    meta, X = activity_screen()
    ap = pairmap.average_precision(meta, X, COLS, [], [], COLS, progress_bar=False)
    assert context_of(ap.copy()) is context_of(ap)  # by reference, not a deep copy
    assert len(pickle.dumps(ap)) < len(pickle.dumps(pd.DataFrame(ap.to_dict("list")))) + 500
    ap.to_parquet(tmp_path / "ap.parquet")  # attrs are written as JSON: a plain string
    back = pd.read_parquet(tmp_path / "ap.parquet")
    assert context_of(back) is None


def test_groups_outside_the_pool_model_fall_back_to_shared_with_a_warning():
    # replicates 0 and 2 of each compound share a plate, so with pos_diffby=["plate"] they are
    # not positives of each other: the pool model does not describe these lists
    meta, X = activity_screen(n_controls=8, n_cpds=2, reps=3, plates=2, seed=8)
    ap = pairmap.average_precision(
        meta, X, {"all": COLS}, ["plate"], ["plate"], COLS, progress_bar=False
    )
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = pairmap.mean_average_precision(
            ap, "cpd", null="permutation", null_size=1000, progress_bar=False, cache=False
        )
    msgs = [str(w.message) for w in rec if issubclass(w.category, RuntimeWarning)]
    assert any("cannot use the permutation null" in m and "positives" in m for m in msgs)
    shared = pairmap.mean_average_precision(
        ap, "cpd", null="shared", null_size=1000, progress_bar=False, cache=False
    )
    np.testing.assert_array_equal(res["p_value"], shared["p_value"])


@pytest.mark.parametrize("ties", ["positives_first", "expected"])
def test_observed_statistic_is_the_engine_map_with_ties(ties):
    meta, X = activity_screen(seed=9)
    X = np.round(X)  # many tied similarities
    X[np.all(X == 0, axis=1), 0] = 1.0
    ap = pairmap.average_precision(meta, X, COLS, [], [], COLS, ties=ties, progress_bar=False)
    tester = PermutationTester(context_of(ap), np.flatnonzero(meta["cpd"] != "ctl"), 1000, 0, 1)
    for g in ("c0", "c1", "c2", "c3"):
        members = np.flatnonzero(meta["cpd"] == g)
        (obs, _), _, _ = tester.null_values(members)
        assert obs == pytest.approx(ap.loc[members, "average_precision"].mean(), abs=1e-12)
    assert tester.mismatches == 0


def test_shared_tables_give_the_same_null_as_direct_sampling():
    meta, X = activity_screen(n_controls=40, n_cpds=3, reps=4, seed=10, shift=(0,))
    X[0:9:3] = X[1:10:3]  # a few duplicated controls: ties between base similarities
    ap = pairmap.average_precision(meta, X, COLS, [], [], COLS, progress_bar=False)
    tester = PermutationTester(context_of(ap), np.flatnonzero(meta["cpd"] != "ctl"), 2000, 0, 1)
    from pairmap import permutation as P

    for g in ("c0", "c1"):
        members = np.flatnonzero(meta["cpd"] == g)
        _, via_tables, total = tester.null_values(members)
        assert total is None and tester._table is not None
        budget = P.TABLE_BUDGET_BYTES
        try:
            P.TABLE_BUDGET_BYTES = 0
            _, direct, _ = tester.null_values(members)
        finally:
            P.TABLE_BUDGET_BYTES = budget
        np.testing.assert_array_equal(via_tables[0], direct[0])
        np.testing.assert_array_equal(via_tables[1], direct[1])


def test_pruned_count_equals_the_full_null_count():
    """test() evaluates only relabelings whose base-only bound reaches the observed value."""
    meta, X = activity_screen(n_controls=40, n_cpds=4, reps=3, seed=11, shift=(0, 1))
    ap = pairmap.average_precision(meta, X, COLS, [], [], COLS, progress_bar=False)
    tester = PermutationTester(context_of(ap), np.flatnonzero(meta["cpd"] != "ctl"), 3000, 0, 1)
    for g in ("c0", "c1", "c2", "c3"):
        members = np.flatnonzero(meta["cpd"] == g)
        (obs, coh), (m, c), total = tester.null_values(members)
        assert total is None
        key, ok = np.floor(m * 2.0**40 + 0.5), np.floor(obs * 2.0**40 + 0.5)
        count = np.count_nonzero((key > ok) | ((key == ok) & (c >= coh)))
        assert tester.test(members).p_value == (1 + count) / 3001
