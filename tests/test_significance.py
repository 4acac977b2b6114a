"""p-values and mAP significance: exact oracles, tie rule, determinism, calibration, copairs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from oracles import null_aps_bruteforce

from pairmap import significance as sig
from pairmap.nulls import null_distribution, sampled_draws
from pairmap.significance import mean_average_precision, p_values

OUT_COLS = [
    "mean_average_precision",
    "mean_normalized_average_precision",
    "n_profiles",
    "p_value",
    "corrected_p_value",
    "below_p",
    "below_corrected_p",
]


def sorted_mean(values) -> float:
    """Group mean oracle: ascending order, sequential float64 sum, / m."""
    total = 0.0
    for v in sorted(values):
        total += v
    return total / len(values)


def frame(groups, aps, ks, ns, **extra) -> pd.DataFrame:
    return pd.DataFrame(
        {"grp": groups, "average_precision": aps, "n_pos_pairs": ks, "n_total_pairs": ns, **extra}
    )


# --------------------------------------------------------------------------- per-profile
def test_profile_pvalues_exact_tail_with_ties():
    null = null_aps_bruteforce(5, 2)  # 10 rankings -> exact
    obs = [null[0], null[3], null[9], 0.55, np.nan]
    df = frame(range(5), obs, [2, 2, 2, 2, 0], [5, 5, 5, 5, 0])
    got = p_values(df, null_size=100, cache=False, progress_bar=False)
    want = [sum(x >= o for x in null) / len(null) for o in obs[:4]]
    np.testing.assert_array_equal(got[:4], want)
    assert np.isnan(got[4])


def test_profile_pvalues_sampled_count_ties():
    n, k, size = 200, 3, 5000
    null = null_distribution(k, n, null_size=size, seed=4, cache=False)
    obs = np.concatenate([null[:20], [0.0, 1.0]])  # observed values equal to null draws
    df = frame(range(obs.size), obs, k, n)
    got = p_values(df, null_size=size, seed=4, cache=False, progress_bar=False)
    want = (1 + (null[None, :] >= obs[:, None]).sum(1)) / (1 + size)
    np.testing.assert_array_equal(got, want)
    strict = (1 + (null[None, :] > obs[:, None]).sum(1)) / (1 + size)
    assert np.all(got[:20] > strict[:20])  # the tie is counted
    assert got[-2] == 1.0


# --------------------------------------------------------------------------- group nulls
def _exact_group_p(obs, confs, model):
    """Brute-force p-value of a group mean (each conf listed once per member)."""
    if model == "shared":
        distinct = sorted(set(confs))
        spaces = [null_aps_bruteforce(n, k) for k, n in distinct]
        total = count = 0
        for combo in itertools.product(*spaces):
            value = dict(zip(distinct, combo, strict=True))
            total += 1
            count += sorted_mean([value[c] for c in confs]) >= obs
    else:
        spaces = [null_aps_bruteforce(n, k) for k, n in confs]
        total = count = 0
        for combo in itertools.product(*spaces):
            total += 1
            count += sorted_mean(combo) >= obs
    return count / total


@pytest.mark.parametrize("model", ["shared", "independent"])
def test_group_pvalues_exact_enumeration(model):
    confs_a = [(1, 4), (1, 4), (2, 5)]  # shared: 4*10 outcomes; independent: 4*4*10
    confs_b = [(2, 4), (1, 3)]
    aps_a = [0.5, 1.0, null_aps_bruteforce(5, 2)[4]]
    aps_b = [null_aps_bruteforce(4, 2)[0], 1 / 3]
    df = frame(
        ["a"] * 3 + ["b"] * 2,
        aps_a + aps_b,
        [c[0] for c in confs_a + confs_b],
        [c[1] for c in confs_a + confs_b],
    )
    res = mean_average_precision(
        df, "grp", null_size=1000, null=model, cache=False, progress_bar=False
    )
    assert list(res.columns) == ["grp", *OUT_COLS]
    assert res["mean_average_precision"].tolist() == [sorted_mean(aps_a), sorted_mean(aps_b)]
    want = [
        _exact_group_p(sorted_mean(aps_a), confs_a, model),
        _exact_group_p(sorted_mean(aps_b), confs_b, model),
    ]
    np.testing.assert_array_equal(res["p_value"].to_numpy(), want)


def _manual_group_null(confs, model, size, seed):
    cols = []
    if model == "shared":
        draws = {c: sampled_draws(c[0], c[1], size, seed) for c in set(confs)}
        cols = [draws[c] for c in confs]
    else:
        seen: dict = {}
        for c in confs:
            j = seen.get(c, 0)
            seen[c] = j + 1
            cols.append(sampled_draws(c[0], c[1], size, seed, ordinal=j))
    mat = np.sort(np.stack(cols), axis=0)
    total = np.zeros(size)
    for row in mat:
        total = total + row
    return total / len(confs)


@pytest.mark.parametrize("model", ["shared", "independent"])
def test_group_pvalues_sampled_match_manual_null(model):
    size, seed = 4000, 7
    confs = [(3, 103), (3, 103), (4, 110), (3, 103)]
    null = _manual_group_null(confs, model, size, seed)
    # observed groups: one whose members are exactly a null draw (tie), others arbitrary
    d = 17
    if model == "shared":
        members_d = [sampled_draws(k, n, size, seed)[d] for k, n in confs]
    else:
        members_d = [
            sampled_draws(3, 103, size, seed, ordinal=0)[d],
            sampled_draws(3, 103, size, seed, ordinal=1)[d],
            sampled_draws(4, 110, size, seed)[d],
            sampled_draws(3, 103, size, seed, ordinal=2)[d],
        ]
    rng = np.random.default_rng(0)
    groups, aps = [], []
    for g in range(6):
        vals = members_d if g == 0 else list(rng.uniform(0, 0.3, 4))
        groups += [f"g{g}"] * 4
        aps += list(vals)
    # reversed member order for group 0 must not matter
    aps[:4] = aps[:4][::-1]
    confs_rev = confs[::-1]
    df = frame(
        groups,
        aps,
        [c[0] for c in confs_rev] + [c[0] for c in confs] * 5,
        [c[1] for c in confs_rev] + [c[1] for c in confs] * 5,
    )
    res = mean_average_precision(
        df, "grp", null_size=size, seed=seed, null=model, cache=False, progress_bar=False
    )
    obs = res["mean_average_precision"].to_numpy()
    assert obs[0] == null[d]  # equal multisets -> bit-identical means
    want = (1 + (null[None, :] >= obs[:, None]).sum(1)) / (1 + size)
    np.testing.assert_array_equal(res["p_value"].to_numpy(), want)


def test_singleton_groups_equal_profile_pvalues():
    rng = np.random.default_rng(3)
    ks = rng.integers(1, 5, 40)
    ns = ks + rng.integers(1, 300, 40)
    df = frame(np.arange(40), rng.uniform(0, 1, 40), ks, ns)
    prof = p_values(df, null_size=3000, seed=2, cache=False, progress_bar=False)
    for model in ("shared", "independent"):
        res = mean_average_precision(
            df, "grp", null_size=3000, seed=2, null=model, cache=False, progress_bar=False
        )
        np.testing.assert_array_equal(res["p_value"].to_numpy(), prof)


def _random_table(seed, n_groups=30):
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        for _ in range(rng.integers(1, 6)):
            k = int(rng.choice([2, 3, 5]))
            n = k + int(rng.choice([40, 97, 250]))
            rows.append((f"g{g}", rng.uniform(0, 0.6), k, n))
    return pd.DataFrame(rows, columns=["grp", "average_precision", "n_pos_pairs", "n_total_pairs"])


@pytest.mark.parametrize("model", ["shared", "independent"])
def test_determinism_context_threads_cache(model, tmp_path, monkeypatch):
    df = _random_table(1)
    kw = dict(null_size=2000, seed=3, null=model, progress_bar=False)
    ref = mean_average_precision(df, "grp", cache=False, n_jobs=1, **kw).set_index("grp")
    # other groups / configurations added, rows shuffled, 2 threads
    extra = _random_table(2).assign(grp=lambda d: "x" + d["grp"])
    bigger = pd.concat([extra, df]).sample(frac=1.0, random_state=0)
    res = mean_average_precision(bigger, "grp", cache=False, n_jobs=2, **kw).set_index("grp")
    np.testing.assert_array_equal(res.loc[ref.index, "p_value"], ref["p_value"])
    np.testing.assert_array_equal(
        res.loc[ref.index, "mean_average_precision"], ref["mean_average_precision"]
    )
    # cold / warm on-disk cache
    pytest.importorskip("pairmap.cache")
    for _ in range(2):
        res = mean_average_precision(df, "grp", cache=tmp_path, **kw).set_index("grp")
        np.testing.assert_array_equal(res["p_value"], ref["p_value"])
    # tiny memory budgets: chunked group nulls and LRU eviction give the same numbers
    monkeypatch.setattr(sig, "_GROUP_BUDGET_BYTES", 3 * 8 * 300)
    monkeypatch.setattr(sig, "_LRU_BUDGET_BYTES", 8 * 2000)
    res = mean_average_precision(df, "grp", cache=False, **kw).set_index("grp")
    np.testing.assert_array_equal(res["p_value"], ref["p_value"])


def test_nan_profiles_and_empty_groups():
    df = frame(["a", "a", "b", "c"], [0.5, np.nan, np.nan, 0.2], [1, 0, 3, 2], [10, 0, 50, 60])
    res = mean_average_precision(df, "grp", null_size=500, cache=False, progress_bar=False)
    assert res["n_profiles"].tolist() == [1, 0, 1]
    assert np.isnan(
        res.loc[1, ["mean_average_precision", "p_value", "corrected_p_value"]].astype(float)
    ).all()
    assert not res.loc[1, "below_p"]
    assert res.loc[0, "mean_average_precision"] == 0.5
    # BH over the two tested groups only
    np.testing.assert_allclose(
        res["corrected_p_value"].to_numpy()[[0, 2]],
        sig.benjamini_hochberg(res["p_value"].to_numpy()[[0, 2]]),
    )


def test_normalized_mean_and_multi_column_sameby():
    df = frame(
        ["a", "a", "b", "b"],
        [0.9, 0.7, 0.2, 0.1],
        2,
        30,
        dose=[1, 2, 1, 1],
        normalized_average_precision=[0.8, 0.6, 0.1, np.nan],
    )
    res = mean_average_precision(df, ["grp", "dose"], null_size=500, cache=False, progress_bar=True)
    assert res[["grp", "dose"]].values.tolist() == [["a", 1], ["a", 2], ["b", 1]]
    np.testing.assert_allclose(res["mean_normalized_average_precision"], [0.8, 0.6, 0.1])
    assert res["n_profiles"].tolist() == [1, 1, 2]


def test_hierarchical_columns_and_values():
    rng = np.random.default_rng(5)
    rows = [
        (f"c{c}", d, rng.uniform(0.0, 1.0) if c < 3 else rng.uniform(0, 0.1), 3, 60)
        for c in range(8)
        for d in range(3)
        for _ in range(2)
    ]
    df = pd.DataFrame(
        rows, columns=["cpd", "dose", "average_precision", "n_pos_pairs", "n_total_pairs"]
    )
    res = mean_average_precision(
        df, ["cpd", "dose"], null_size=2000, hierarchical_by="cpd", cache=False, progress_bar=False
    )
    for col in ("stage1_p_value", "stage1_corrected_p_value", "stage1_significant"):
        assert col in res.columns
    want = sig.hierarchical_fdr(res["p_value"], res["cpd"], alpha=0.05)
    np.testing.assert_array_equal(res["corrected_p_value"], want["corrected_p_value"])
    np.testing.assert_array_equal(res["stage1_significant"], want["stage1_significant"])
    assert (res["below_corrected_p"] == (res["corrected_p_value"] < 0.05)).all()
    hfdr = pytest.importorskip("copairs.map.hierarchical_fdr")
    theirs = hfdr.apply_hierarchical_fdr_correction(
        res[["cpd", "dose", "p_value"]], ["cpd"], ["cpd", "dose"]
    )
    np.testing.assert_allclose(res["corrected_p_value"], theirs["corrected_p_value"], rtol=1e-12)
    np.testing.assert_array_equal(res["stage1_significant"], theirs["stage1_significant"])


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"sameby": "missing"}, ValueError, "sameby column"),
        ({"sameby": []}, ValueError, "sameby must name"),
        ({"null": "bogus"}, ValueError, "null=.bogus. is not supported"),
        ({"null_size": 0}, ValueError, "null_size must be >= 1"),
        ({"seed": -3}, ValueError, "seed must be >= 0"),
        ({"threshold": 0.0}, ValueError, "threshold"),
        ({"threshold": "0.05"}, TypeError, "threshold"),
        ({"hierarchical_by": "grp"}, ValueError, "proper subset"),
        ({"hierarchical_by": "nope"}, ValueError, "hierarchical_by column"),
    ],
)
def test_validation(kwargs, exc, match):
    df = frame(["a", "b"], [0.5, 0.5], 1, 10)
    kwargs = {"sameby": "grp", **kwargs}
    with pytest.raises(exc, match=match):
        mean_average_precision(df, cache=False, progress_bar=False, **kwargs)


def test_validation_frame():
    with pytest.raises(ValueError, match="n_total_pairs"):
        p_values(pd.DataFrame({"average_precision": [0.5], "n_pos_pairs": [1]}), cache=False)
    with pytest.raises(TypeError, match="DataFrame"):
        mean_average_precision({"a": 1}, "a")
    bad = frame(["a"], [0.5], 5, 3)
    with pytest.raises(ValueError, match="n_total_pairs"):
        mean_average_precision(bad, "grp", cache=False, progress_bar=False)


# --------------------------------------------------------------------------- calibration
def _null_table(n_groups, members, k, n, seed):
    """Groups of independent profiles whose APs follow the exact null law."""
    support = np.array(null_aps_bruteforce(n, k))
    rng = np.random.default_rng(seed)
    aps = support[rng.integers(0, support.size, n_groups * members)]
    return frame(np.repeat(np.arange(n_groups), members), aps, k, n)


def test_calibration_under_the_null():
    """No real effect: 'independent' rejects at the nominal rate, 'shared' is conservative."""
    n_groups = 3000
    df = _null_table(n_groups, 4, 3, 40, seed=8)
    rate = {}
    for model in ("shared", "independent"):
        res = mean_average_precision(
            df, "grp", null_size=4000, null=model, seed=1, cache=False, progress_bar=False
        )
        rate[model] = float((res["p_value"] <= 0.05).mean())
    sd = math.sqrt(0.05 * 0.95 / n_groups)
    assert abs(rate["independent"] - 0.05) < 4 * sd, rate
    assert rate["shared"] < 0.05 - 4 * sd, rate


# --------------------------------------------------------------------------- copairs
@pytest.fixture(scope="module")
def lincs_ap():
    from conftest import LINCS_FILE, data_file

    path = data_file(LINCS_FILE)
    cp = pytest.importorskip("copairs.map", reason="copairs is not installed")
    df = pd.read_csv(path)
    ref = np.where(df["Metadata_broad_sample"] == "DMSO", np.arange(len(df)), -1)
    meta = df.filter(regex="^Metadata").assign(Metadata_Reference_Index=ref)
    feats = df.filter(regex="^(?!Metadata)").to_numpy()
    by = ["Metadata_broad_sample", "Metadata_Reference_Index"]
    return cp.average_precision(meta, feats, by, [], [], by, progress_bar=False)


def test_lincs_activity_matches_copairs(lincs_ap, tmp_path):
    """Same significant compounds as copairs (shared null) up to Monte-Carlo error.

    copairs counts ``null > score`` on float32 nulls; pairmap counts
    ``null >= score`` in float64. Both are Monte-Carlo estimates of the same
    tail probability, so p-values must agree within a few standard errors and
    calls may differ only where a corrected p-value is that close to 0.05.
    """
    cp = pytest.importorskip("copairs.map")
    size, by = 50000, ["Metadata_broad_sample"]
    theirs = cp.mean_average_precision(
        lincs_ap, by, null_size=size, threshold=0.05, seed=0, progress_bar=False, cache_dir=tmp_path
    )
    ours = mean_average_precision(
        lincs_ap, by, null_size=size, seed=0, null="shared", cache=False, progress_bar=False
    )
    assert ours["n_profiles"].eq(0).sum() == 1  # DMSO: no positives, kept as an untested row
    m = theirs.merge(ours, on=by, suffixes=("_c", "_p"))
    assert len(m) == len(theirs) == len(ours) - 1
    np.testing.assert_allclose(
        m["mean_average_precision_c"], m["mean_average_precision_p"], rtol=1e-12
    )
    p = m["p_value_p"].to_numpy()
    se = np.sqrt(p * (1 - p) / size) + 1 / size
    assert np.all(np.abs(m["p_value_c"] - p) < 5 * np.sqrt(2) * se)
    # a call may flip only within Monte-Carlo error of the threshold (BH scales p by m / rank)
    q = m["corrected_p_value_p"].to_numpy()
    q_se = se * np.where(p > 0, q / p, 1.0)
    near = np.abs(q - 0.05) < 5 * np.sqrt(2) * q_se
    differs = m["below_corrected_p_c"].to_numpy() != m["below_corrected_p_p"].to_numpy()
    assert not np.any(differs & ~near)
    assert m["below_corrected_p_p"].sum() >= 20  # the plate has many active compounds


def test_calibration_feature_level_shared_is_conservative():
    """Random features, replicates vs DMSO: the shared null keeps P(p <= 0.05) below 0.05.

    (Replicate APs are positively correlated through their symmetric
    similarities, so the independent null is anti-conservative here; see
    docs/significance.md.)
    """
    engine = pytest.importorskip("pairmap.engine")
    rng = np.random.default_rng(0)
    n_cpd, n_rep, n_ctl = 300, 4, 48
    cpd = np.concatenate([np.repeat([f"c{i}" for i in range(n_cpd)], n_rep), ["DMSO"] * n_ctl])
    meta = pd.DataFrame({"cpd": cpd})
    meta["ref"] = np.where(meta["cpd"] == "DMSO", np.arange(len(meta)), -1)
    by = ["cpd", "ref"]
    ap = engine.average_precision(
        meta, rng.normal(size=(len(meta), 30)), by, [], [], by, progress_bar=False
    )
    res = mean_average_precision(
        ap, "cpd", null_size=5000, null="shared", cache=False, progress_bar=False
    )
    res = res[res["n_profiles"] > 0]
    assert len(res) == n_cpd
    assert (res["p_value"] <= 0.05).mean() < 0.05
