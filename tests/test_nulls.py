"""Null AP distributions: exactness, sampling law, determinism, caching, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from oracles import null_aps_bruteforce
from scipy import stats

from pairmap._ap_math import expected_random_ap
from pairmap._kernels.nulls import SMALL_K, enumerate_null_aps
from pairmap.nulls import (
    exact_size,
    exact_values,
    key_seed,
    null_distribution,
    null_method,
    sampled_draws,
)


@pytest.mark.parametrize("n,k", [(1, 1), (2, 1), (5, 1), (5, 2), (6, 3), (7, 7), (9, 4), (12, 6)])
def test_exact_enumeration_matches_brute_force(n, k):
    null = null_distribution(k, n, null_size=math.comb(n, k), cache=False)
    np.testing.assert_array_equal(null, null_aps_bruteforce(n, k))
    assert null_method(k, n, math.comb(n, k)) == "exact"


@pytest.mark.parametrize("n,k", [(10, 3), (40, 2), (1003, 3), (50, 25), (7, 0 + 1)])
def test_exact_size_and_method(n, k):
    c = math.comb(n, k)
    assert exact_size(k, n, c) == c
    assert exact_size(k, n, c - 1) is None
    assert null_method(k, n, c - 1 if c > 1 else 1) == ("exact" if c == 1 else "sampled")


def test_sampled_has_null_size_draws_in_float64():
    null = null_distribution(3, 1003, null_size=777, seed=5, cache=False)
    assert null.shape == (777,) and null.dtype == np.float64
    assert null.flags.writeable
    assert np.all((null > 0) & (null <= 1))
    # the values are APs of valid rankings: never below the worst case (ranks n-k+1..n)
    worst = sum((i + 1) / (1000 + i + 1) for i in range(3)) / 3
    assert null.min() >= worst - 1e-15


def _chi2_against_exact(sample: np.ndarray, exact: np.ndarray) -> float:
    values, exact_counts = np.unique(exact, return_counts=True)
    idx = np.searchsorted(values, sample)
    assert np.array_equal(values[idx], sample), "sampled AP outside the exact support"
    observed = np.bincount(idx, minlength=values.size)
    expected = exact_counts / exact.size * sample.size
    # pool rare cells so every expected count is >= 5
    order = np.argsort(expected)
    obs_sorted, exp_sorted = observed[order], expected[order]
    cut = np.searchsorted(np.cumsum(exp_sorted), 5.0) + 1
    obs_p = np.concatenate([[obs_sorted[:cut].sum()], obs_sorted[cut:]])
    exp_p = np.concatenate([[exp_sorted[:cut].sum()], exp_sorted[cut:]])
    return stats.chisquare(obs_p, exp_p).pvalue


def _ks_against_exact(sample: np.ndarray, exact: np.ndarray) -> float:
    """Two-sample KS against an independent resample of the exact law (NumPy's generator)."""
    rng = np.random.default_rng(12345)
    reference = exact[rng.integers(0, exact.size, size=sample.size)]
    return stats.ks_2samp(sample, reference).pvalue


@pytest.mark.parametrize("n,k", [(12, 4), (9, 1), (32, 30), (30, 26)])
def test_sampler_follows_exact_law(n, k):
    """Both sampler paths (small k: sorted insertion; large k: marker array)."""
    exact = null_aps_bruteforce(n, k)
    sample = sampled_draws(k, n, 40000, 11)
    assert _chi2_against_exact(sample, exact) > 1e-4
    assert _ks_against_exact(sample, exact) > 1e-4


def test_sampler_agrees_with_enumeration_ks_large():
    n, k = 30, 5  # C = 142506 subsets, enumerated by the kernel
    exact = enumerate_null_aps(n, k, math.comb(n, k))
    np.testing.assert_array_equal(exact[:50], null_aps_bruteforce(n, k)[:50])
    sample = null_distribution(k, n, null_size=50000, seed=3, cache=False)
    assert null_method(k, n, 50000) == "sampled"
    assert _chi2_against_exact(sample, exact) > 1e-4
    assert _ks_against_exact(sample, exact) > 1e-4


def test_sampler_detects_a_biased_law():
    """The chi-square oracle has power: a shifted sampler (k+1 positives) is rejected."""
    exact = null_aps_bruteforce(12, 4)
    wrong = sampled_draws(4, 13, 40000, 11)  # n=13 instead of 12
    with pytest.raises(AssertionError):
        assert _chi2_against_exact(wrong, exact) > 1e-4


@pytest.mark.parametrize("n,k", [(1003, 3), (200, 40), (100, 1), (60, 59), (5000, 25)])
def test_null_mean_matches_closed_form(n, k):
    draws = 60000
    null = null_distribution(k, n, null_size=draws, seed=1, cache=False)
    mu = float(expected_random_ap(k, n))
    se = null.std() / math.sqrt(draws)
    assert abs(null.mean() - mu) < 5 * se + 1e-12


@pytest.mark.parametrize("n,k", [(10, 3), (16, 8), (20, 1)])
def test_exact_mean_equals_closed_form(n, k):
    null = null_distribution(k, n, null_size=10**6, cache=False)
    assert null.size == math.comb(n, k)
    assert null.mean() == pytest.approx(float(expected_random_ap(k, n)), rel=1e-12)


def test_all_positives_is_one():
    np.testing.assert_array_equal(null_distribution(5, 5, cache=False), [1.0])


def test_same_key_same_bytes_independent_of_context(tmp_path):
    ref = null_distribution(4, 777, null_size=3000, seed=9, cache=False, n_jobs=1)
    # other configurations computed first, different thread count
    for n in (50, 1000, 778):
        null_distribution(4, n, null_size=3000, seed=9, cache=False)
    again = null_distribution(4, 777, null_size=3000, seed=9, cache=False, n_jobs=2)
    assert again.tobytes() == ref.tobytes()
    # partial ranges are slices of the full array (counter-based streams)
    part = sampled_draws(4, 777, 3000, 9, start=1234, stop=1300, n_threads=2)
    assert part.tobytes() == ref[1234:1300].tobytes()
    # cold and warm cache
    pytest.importorskip("pairmap.cache")
    cold = null_distribution(4, 777, null_size=3000, seed=9, cache=tmp_path)
    warm = null_distribution(4, 777, null_size=3000, seed=9, cache=tmp_path)
    assert cold.tobytes() == ref.tobytes() == warm.tobytes()
    assert any(tmp_path.rglob("*sampled*"))


def test_large_k_path_thread_independent():
    assert 40 > SMALL_K
    a = null_distribution(40, 300, null_size=2000, seed=2, cache=False, n_jobs=1)
    b = null_distribution(40, 300, null_size=2000, seed=2, cache=False, n_jobs=2)
    assert a.tobytes() == b.tobytes()


def test_keys_separate_streams():
    base = null_distribution(3, 500, null_size=2000, seed=0, cache=False)
    assert not np.array_equal(base, null_distribution(3, 500, null_size=2000, seed=1, cache=False))
    assert not np.array_equal(base[:1000], null_distribution(3, 500, 1000, seed=0, cache=False))
    member1 = sampled_draws(3, 500, 2000, 0, ordinal=1)
    assert not np.array_equal(base, member1)
    assert key_seed(0, 2000, 500, 3) != key_seed(0, 2000, 500, 3, ordinal=1)
    # draws from different keys are uncorrelated
    assert abs(np.corrcoef(base, member1)[0, 1]) < 0.1


def test_exact_values_cached_roundtrip(tmp_path):
    cache_mod = pytest.importorskip("pairmap.cache")
    cache = cache_mod.open_cache(tmp_path)
    a = exact_values(3, 10, 10000, 0, cache_obj=cache)
    b = exact_values(3, 10, 10000, 0, cache_obj=cache)
    np.testing.assert_array_equal(a, null_aps_bruteforce(10, 3))
    np.testing.assert_array_equal(a, b)
    assert exact_values(3, 1003, 10000, 0) is None


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"n_pos": 0, "n_total": 5}, "n_pos must be >= 1"),
        ({"n_pos": 6, "n_total": 5}, "must not exceed n_total"),
        ({"n_pos": 2, "n_total": 5, "null_size": 0}, "null_size must be >= 1"),
        ({"n_pos": 2, "n_total": 5, "seed": -1}, "seed must be >= 0"),
        ({"n_pos": 2, "n_total": 2**32}, "n_total must be < 2"),
    ],
)
def test_validation_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        null_distribution(cache=False, **kwargs)


def test_type_errors():
    with pytest.raises(TypeError, match="n_pos"):
        null_distribution(True, 5, cache=False)
    with pytest.raises(TypeError, match="null_size"):
        null_distribution(2, 5, null_size=10.5, cache=False)


def test_parallel_and_serial_kernels_identical():
    from pairmap._kernels import nulls as kern

    key = key_seed(0, 50000, 1003, 3)
    serial = kern.sample_null_aps_serial(key, 1003, 3, 0, 50000, 1)
    for blocks in (1, 3, 7, 64):
        assert kern.sample_null_aps(key, 1003, 3, 0, 50000, blocks).tobytes() == serial.tobytes()
    big = null_distribution(3, 1003, null_size=50000, seed=0, cache=False, n_jobs=2)
    assert big.tobytes() == serial.tobytes()
    key = key_seed(0, 3000, 400, 60)  # marker-array path
    serial = kern.sample_null_aps_serial(key, 400, 60, 0, 3000, 1)
    assert kern.sample_null_aps(key, 400, 60, 0, 3000, 5).tobytes() == serial.tobytes()
    mat = np.stack([serial, serial[::-1], serial[::2].repeat(2)])
    mult = np.array([2, 1, 3])
    assert (
        kern.group_null_means(mat, mult, 6).tobytes()
        == kern.group_null_means_serial(mat, mult, 1).tobytes()
    )
