"""Huge requests are refused before any work, and the default cache cannot grow without bound."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pairmap
from pairmap.cache import NullKey, open_cache
from pairmap.cache.filesystem import DEFAULT_MAX_BYTES
from pairmap.cache.keys import encode_entry
from pairmap.nulls import NULL_COPIES, check_null_memory, null_memory_limit

AP = pd.DataFrame(
    {
        "g": ["a", "a"],
        "average_precision": [0.5, 0.4],
        "n_pos_pairs": [3, 3],
        "n_total_pairs": [500, 500],
    }
)


@pytest.mark.parametrize(
    "call",
    [
        lambda n: pairmap.null_distribution(3, 500, null_size=n, cache=False),
        lambda n: pairmap.p_values(AP, null_size=n, cache=False, progress_bar=False),
        lambda n: pairmap.mean_average_precision(
            AP, "g", null_size=n, cache=False, progress_bar=False
        ),
    ],
    ids=["null_distribution", "p_values", "mean_average_precision"],
)
def test_null_too_big_for_memory_is_refused_naming_null_size(call, monkeypatch, tmp_path):
    monkeypatch.setenv("PAIRMAP_MAX_NULL_MEMORY", "1MB")
    with pytest.raises(
        ValueError, match=r"null_size=100000 needs about 0.0032 GB.*lower null_size"
    ):
        call(100_000)
    call(1000)  # within the limit: computed


def test_issue_example_null_size_1e9_fails_fast_with_default_limit(monkeypatch):
    monkeypatch.delenv("PAIRMAP_MAX_NULL_MEMORY", raising=False)
    if NULL_COPIES * 8 * 10**9 <= null_memory_limit():
        pytest.skip("this machine has more than 64 GB of RAM")
    with pytest.raises(ValueError, match="null_size=1000000000 needs about 32 GB"):
        pairmap.mean_average_precision(AP, "g", null_size=10**9, progress_bar=False)


def test_bad_memory_limit_variable_is_named(monkeypatch):
    monkeypatch.setenv("PAIRMAP_MAX_NULL_MEMORY", "lots")
    with pytest.raises(ValueError, match="PAIRMAP_MAX_NULL_MEMORY"):
        check_null_memory(10)


def test_default_cache_has_a_size_bound(monkeypatch, tmp_path):
    monkeypatch.delenv("PAIRMAP_CACHE_MAX_BYTES", raising=False)
    assert open_cache(tmp_path).max_bytes == DEFAULT_MAX_BYTES == 2 * 10**9
    assert open_cache().max_bytes == DEFAULT_MAX_BYTES
    monkeypatch.setenv("PAIRMAP_CACHE_MAX_BYTES", "unbounded")
    assert open_cache(tmp_path).max_bytes is None
    monkeypatch.setenv("PAIRMAP_CACHE_MAX_BYTES", "10MB")
    assert open_cache(tmp_path).max_bytes == 10**7
    assert open_cache(tmp_path, max_bytes="unbounded").max_bytes is None
    assert open_cache(tmp_path, max_bytes="1GB").max_bytes == 10**9


def test_default_bound_evicts_least_recently_used(monkeypatch, tmp_path):
    monkeypatch.setenv("PAIRMAP_CACHE_MAX_BYTES", "100kB")  # room for ~ one 10,000-draw null
    cache = open_cache(tmp_path)
    for n_total in (100, 200, 300, 400):
        pairmap.null_distribution(3, n_total, null_size=10_000, cache=cache)
    assert cache.info()["bytes"] <= 100_000
    assert cache.info()["entries"] == 1


def test_entry_encoding_makes_no_copy_of_the_values():
    values = np.linspace(0, 1, 1000)
    header, payload = encode_entry(NullKey("sampled", 0, 1000, 10, 2, 1), values)
    assert np.shares_memory(np.frombuffer(payload, dtype="<f8"), values)
    assert len(payload) == 8000
