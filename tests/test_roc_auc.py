"""ROC-AUC p-values: exact Mann-Whitney distribution, normal approximation, group nulls.

Oracles: full enumeration of rankings (tests/oracles.py), scipy.stats.mannwhitneyu
(exact and asymptotic), brute-force group nulls over every joint ranking.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from conftest import make_screen
from oracles import mann_whitney_null_counts

import pairmap
from pairmap._kernels.roc_auc import auc_from_ranks, sample_null_aucs
from pairmap.nulls import key_seed
from pairmap.roc_auc import mann_whitney_counts, mean_roc_auc, roc_auc_p_values

stats = pytest.importorskip("scipy.stats")


@pytest.mark.parametrize(("k", "n"), [(k, n) for n in range(2, 11) for k in range(1, n)])
def test_exact_counts_equal_full_enumeration(k, n):
    counts = mann_whitney_counts(k, n - k)
    enumerated = mann_whitney_null_counts(k, n)
    assert counts.sum() == math.comb(n, k)
    assert {u: int(c) for u, c in enumerate(counts) if c} == enumerated


def test_exact_counts_stay_exact_near_the_int64_limit():
    counts = mann_whitney_counts(30, 31)  # C(61, 30) ~ 2.3e17 < 2**62
    assert int(counts.sum()) == math.comb(61, 30)
    assert (counts >= 0).all()
    assert (counts == counts[::-1]).all()  # U and k m - U are equally likely
    assert mann_whitney_counts(40, 60) is None  # C(100, 40) > 2**62: normal approximation


def _frame(auc, k, n):
    return pd.DataFrame({"roc_auc": auc, "n_pos_pairs": k, "n_total_pairs": n})


@pytest.mark.parametrize("seed", range(6))
def test_exact_p_values_equal_scipy_exact(seed):
    rng = np.random.default_rng(seed)
    k, m = int(rng.integers(1, 8)), int(rng.integers(1, 30))
    rows = []
    for _ in range(20):
        x, y = rng.normal(0.3, 1, k), rng.normal(0, 1, m)
        u = sum((xi > y).sum() for xi in x)
        expected = stats.mannwhitneyu(x, y, alternative="greater", method="exact").pvalue
        rows.append((u / (k * m), expected))
    auc, expected = map(np.array, zip(*rows, strict=True))
    got = roc_auc_p_values(_frame(auc, k, k + m))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


def test_exact_p_value_is_the_enumerated_fraction():
    k, n = 4, 11
    enumerated = mann_whitney_null_counts(k, n)
    total = math.comb(n, k)
    for u in range(k * (n - k) + 1):
        tail = Fraction(sum(c for v, c in enumerated.items() if v >= u), total)
        got = roc_auc_p_values(_frame([u / (k * (n - k))], [k], [n]))[0]
        assert got == pytest.approx(float(tail), rel=1e-15)


def test_half_integer_u_from_ties_is_rounded_up():
    # U = 2.5 (a tie): P(U >= 2.5) = P(U >= 3) under untied random rankings
    k, n = 2, 5
    counts = mann_whitney_counts(k, n - k)
    p = roc_auc_p_values(_frame([2.5 / 6], [k], [n]))[0]
    assert p == pytest.approx(counts[3:].sum() / counts.sum())


def test_normal_approximation_equals_scipy_asymptotic_without_ties():
    rng = np.random.default_rng(1)
    k, m = 40, 60  # C(100, 40) > 2**62: normal branch
    aucs, expected = [], []
    for shift in np.linspace(-0.5, 1.0, 12):
        x, y = rng.normal(shift, 1, k), rng.normal(0, 1, m)
        aucs.append(sum((xi > y).sum() for xi in x) / (k * m))
        expected.append(
            stats.mannwhitneyu(
                x, y, alternative="greater", method="asymptotic", use_continuity=True
            ).pvalue
        )
    got = roc_auc_p_values(_frame(aucs, k, k + m))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-15)


def test_normal_approximation_is_close_to_exact_where_both_apply():
    from pairmap.roc_auc import _normal_tail

    k, m = 12, 40
    counts = mann_whitney_counts(k, m)
    tail = np.cumsum(counts[::-1])[::-1] / counts.sum()
    u = np.arange(k * m + 1, dtype=np.float64)
    assert np.max(np.abs(_normal_tail(u, k, m) - tail)) < 5e-3  # 2.5e-3 seen


def test_sampled_auc_null_is_deterministic_and_follows_the_exact_law():
    k, n, size = 3, 40, 200_000
    key = key_seed(0, size, n, k)
    draws = sample_null_aucs(key, n, k, 0, size, 8)
    np.testing.assert_array_equal(draws, sample_null_aucs(key, n, k, 0, size, 1))
    np.testing.assert_array_equal(draws[500:900], sample_null_aucs(key, n, k, 500, 400, 3))
    counts = mann_whitney_counts(k, n - k)
    freq = np.bincount(np.rint(draws * k * (n - k)).astype(np.int64), minlength=len(counts))
    expected = counts / counts.sum() * size
    chi2 = float(((freq - expected) ** 2 / expected).sum())
    assert stats.chi2.sf(chi2, len(counts) - 1) > 1e-4


def test_observed_and_null_auc_are_bit_identical_on_equal_rankings():
    # a hand-made list: query 0, positives 1 and 2, negatives 3..6 with known ranks
    meta = pd.DataFrame({"g": ["a", "a", "a", "c3", "c4", "c5", "c6"]})
    angles = [0.0, 0.3, 1.1, 0.1, 0.7, 0.9, 1.4]  # similarity to row 0 falls with the angle
    feats = np.array([[np.cos(t), np.sin(t)] for t in angles])
    res = pairmap.average_precision(
        meta, feats, ["g"], [], [], ["g"], metrics=["roc_auc"], progress_bar=False
    )
    # ranking of query 0: c3 (0.1), a1 (0.3), c4, c5, a2 (1.1), c6 -> positive ranks 2 and 5
    assert res["roc_auc"][0] == auc_from_ranks(np.array([2, 5]), 6, 2)


def _brute_force_group_p(members, observed_mean):
    """Exact shared-null p-value: members of equal shape share one random ranking."""
    shapes = sorted(set(members))
    per_shape = []
    for k, n in shapes:
        per_shape.append(
            [auc_from_ranks(np.array(c) + 1, n, k) for c in itertools.combinations(range(n), k)]
        )
    hits = total = 0
    for combo in itertools.product(*per_shape):
        vals = sorted(
            v for (shape, v) in zip(shapes, combo, strict=True) for _ in range(members.count(shape))
        )
        total += 1
        hits += math.fsum(vals) / len(vals) >= observed_mean - 1e-12
    return hits / total


def test_group_p_values_equal_brute_force_enumeration():
    df = pd.DataFrame(
        {
            "cpd": ["a", "a", "a", "b", "b", "c"],
            "roc_auc": [1.0, 0.75, 2 / 3, 0.5, 0.25, 1.0],
            "n_pos_pairs": [1, 1, 1, 1, 1, 2],
            "n_total_pairs": [5, 5, 4, 5, 5, 5],
        }
    )
    res = mean_roc_auc(df, "cpd", null_size=10_000, cache=False, progress_bar=False)
    for _, row in res.iterrows():
        part = df[df["cpd"] == row["cpd"]]
        members = list(zip(part["n_pos_pairs"], part["n_total_pairs"], strict=True))
        assert row["p_value"] == pytest.approx(
            _brute_force_group_p(members, part["roc_auc"].mean()), abs=1e-12
        )


def test_sampled_group_nulls_use_the_cache_and_are_reproducible(tmp_path):
    meta, feats = make_screen(2, n_plates=4, n_compounds=6, n_reps=3, n_controls=8)
    cols = ["Metadata_broad_sample", "Metadata_Reference_Index"]
    scores = pairmap.average_precision(
        meta, feats, cols, [], [], cols, metrics=["roc_auc"], progress_bar=False
    )
    kw = dict(null_size=500, seed=3, progress_bar=False)
    first = mean_roc_auc(scores, "Metadata_broad_sample", cache=tmp_path, **kw)
    assert list(tmp_path.rglob("*-auc_sampled-*"))  # the draws went to the null cache
    from pairmap._null_check import recompute_for_key

    report = pairmap.open_cache(tmp_path).verify(recompute=recompute_for_key)
    assert report["corrupt"] == 0
    assert report["spot_checked"] == report["checked"] > 0  # ROC-AUC entries recomputable too
    again = mean_roc_auc(scores, "Metadata_broad_sample", cache=tmp_path, **kw)
    uncached = mean_roc_auc(scores, "Metadata_broad_sample", cache=False, n_jobs=1, **kw)
    pd.testing.assert_frame_equal(first, again)
    pd.testing.assert_frame_equal(first, uncached)
    treated = first[first["Metadata_broad_sample"] != "DMSO"]
    assert (treated["n_profiles"] == 12).all()
    assert treated["below_corrected_p"].sum() >= 4  # make_screen compounds are strong
    assert first.loc[first["Metadata_broad_sample"] == "DMSO", "p_value"].isna().all()


def test_group_null_is_calibrated_under_the_null():
    rng = np.random.default_rng(5)
    k, n, n_groups = 2, 30, 400
    rows = []
    for g in range(n_groups):
        for _ in range(3):  # independent members: use the independent model
            ranks = np.sort(rng.choice(n, k, replace=False) + 1)
            rows.append((g, auc_from_ranks(ranks, n, k), k, n))
    df = pd.DataFrame(rows, columns=["g", "roc_auc", "n_pos_pairs", "n_total_pairs"])
    res = mean_roc_auc(df, "g", null="independent", null_size=2000, cache=False, progress_bar=False)
    frac = float((res["p_value"] <= 0.1).mean())
    assert 0.05 < frac < 0.15


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (pd.DataFrame({"roc_auc": [0.5]}), "missing column"),
        (_frame([1.5], [1], [3]), "must be in"),
        (_frame([0.5], [3], [3]), "n_pos_pairs < n_total_pairs"),
    ],
)
def test_bad_tables_are_rejected(frame, match):
    with pytest.raises(ValueError, match=match):
        roc_auc_p_values(frame)


def test_bad_group_arguments_are_rejected():
    df = _frame([0.5, 0.7], [1, 1], [3, 3]).assign(g=["a", "b"])
    with pytest.raises(ValueError, match="not in ap_scores"):
        mean_roc_auc(df, "nope", cache=False)
    with pytest.raises(ValueError, match="null=.exact. is not supported"):
        mean_roc_auc(df, "g", null="exact", cache=False)
    with pytest.raises(ValueError, match="threshold"):
        mean_roc_auc(df, "g", threshold=0, cache=False)
    with pytest.raises(TypeError, match="DataFrame"):
        roc_auc_p_values([0.5])
