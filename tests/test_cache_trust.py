"""A shared cache cannot change p-values: entries with wrong values are caught on read.

Checksums catch accidents; a forged entry (well-formed, valid checksum, shifted
values) is caught because every read recomputes a random sample of the entry's
draws (they are counter-based, so any one draw is cheap to redo).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest

from pairmap import mean_average_precision, null_distribution, p_values
from pairmap.cache import CacheWarning, FilesystemCache, MemoryCache, NullKey
from pairmap.cache.base import spot_check
from pairmap.cache.keys import encode_entry
from pairmap.nulls import ALGORITHM_VERSION


def _forge(cache: FilesystemCache, key: NullKey, values) -> None:
    """Overwrite an entry with the package's own encoder: valid header and checksum."""
    header, payload = encode_entry(key, values)
    cache.entry_path(key).write_bytes(header + payload)


def _ap_table():
    return pd.DataFrame(
        {
            "g": ["a", "a", "b", "b"],
            "average_precision": [0.30, 0.25, 0.9, 0.8],
            "n_pos_pairs": [3, 3, 3, 3],
            "n_total_pairs": [200, 200, 200, 200],
        }
    )


def test_forged_entry_with_valid_checksum_is_detected_and_replaced(tmp_path):
    cache = FilesystemCache(tmp_path)
    ap = _ap_table()
    honest = p_values(ap, null_size=2000, cache=cache, progress_bar=False)
    key = NullKey("sampled", 0, 2000, 200, 3, ALGORITHM_VERSION)
    true_null = cache.get(key)
    assert true_null is not None
    # the attack of the issue: every draw shifted down, so every observed AP looks extreme
    _forge(cache, key, true_null - 0.2)
    assert cache.get(key) is not None  # well-formed: the checksum alone accepts it
    with pytest.warns(CacheWarning, match="rejected .*differs from a recomputation"):
        again = p_values(ap, null_size=2000, cache=cache, progress_bar=False)
    np.testing.assert_array_equal(again, honest)
    assert list((tmp_path / "quarantine").glob(key.filename() + ".*.bad"))
    np.testing.assert_array_equal(cache.get(key), true_null)  # a good entry was stored again


def test_forged_entry_cannot_change_map_p_values(tmp_path):
    cache = FilesystemCache(tmp_path)
    ap = _ap_table()
    honest = mean_average_precision(ap, "g", null_size=2000, cache=cache, progress_bar=False)
    key = NullKey("sampled", 0, 2000, 200, 3, ALGORITHM_VERSION)
    _forge(cache, key, np.zeros(2000))
    with pytest.warns(CacheWarning, match="rejected"):
        res = mean_average_precision(ap, "g", null_size=2000, cache=cache, progress_bar=False)
    pd.testing.assert_frame_equal(res, honest)


@pytest.mark.parametrize("share", [1.0, 0.25])
def test_partly_forged_entry_is_detected(tmp_path, share):
    cache = FilesystemCache(tmp_path)
    true_null = null_distribution(3, 500, null_size=5000, cache=cache)
    key = NullKey("sampled", 0, 5000, 500, 3, ALGORITHM_VERSION)
    forged = true_null.copy()
    idx = np.random.default_rng(1).choice(5000, size=int(share * 5000), replace=False)
    forged[idx] = np.nextafter(forged[idx], 2.0)  # the smallest possible change
    _forge(cache, key, forged)
    with pytest.warns(CacheWarning, match="rejected"):
        got = null_distribution(3, 500, null_size=5000, cache=cache)
    np.testing.assert_array_equal(got, true_null)


def test_forged_exact_entry_is_detected(tmp_path):
    cache = FilesystemCache(tmp_path)
    true_null = null_distribution(2, 30, null_size=10000, cache=cache)  # C(30, 2) = 435: exact
    key = NullKey("exact", 0, 10000, 30, 2, ALGORITHM_VERSION)
    assert cache.get(key).shape == (435,)
    _forge(cache, key, true_null[::-1].copy())  # same values, wrong order
    with pytest.warns(CacheWarning, match="rejected"):
        got = null_distribution(2, 30, null_size=10000, cache=cache)
    np.testing.assert_array_equal(got, true_null)


def test_many_positives_exact_entry_is_checked_by_full_recomputation(tmp_path):
    cache = FilesystemCache(tmp_path)
    true_null = null_distribution(70, 72, null_size=10000, cache=cache)  # C(72, 70) = 2556
    key = NullKey("exact", 0, 10000, 72, 70, ALGORITHM_VERSION)
    _forge(cache, key, true_null + 1e-9)
    with pytest.warns(CacheWarning, match="rejected"):
        np.testing.assert_array_equal(
            null_distribution(70, 72, null_size=10000, cache=cache), true_null
        )


def test_memory_backend_rejects_wrong_values_too():
    cache = MemoryCache()
    true_null = null_distribution(3, 400, null_size=1000, cache=cache)
    key = NullKey("sampled", 0, 1000, 400, 3, ALGORITHM_VERSION)
    cache.put(key, true_null * 0.5)
    with pytest.warns(CacheWarning, match="rejected"):
        np.testing.assert_array_equal(
            null_distribution(3, 400, null_size=1000, cache=cache), true_null
        )


def test_honest_entries_pass_silently(tmp_path):
    cache = FilesystemCache(tmp_path)
    first = null_distribution(3, 1003, null_size=3000, cache=cache)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(20):  # positions are random on every read
            np.testing.assert_array_equal(
                null_distribution(3, 1003, null_size=3000, cache=cache), first
            )


def test_spot_check_positions_are_unpredictable():
    seen = []
    values = np.arange(10_000, dtype=np.float64)

    def record(pos):
        seen.append(pos.copy())
        return values[pos]

    assert spot_check(values, record) is None
    assert spot_check(values, record) is None
    assert seen[0].size == 64 and not np.array_equal(seen[0], seen[1])


def test_spot_check_read_overhead_is_measured(tmp_path):
    """Report what verification adds to a cache hit (printed with ``-s``; no timing assert:
    wall-clock limits belong in benchmarks, the machine may be loaded)."""
    from pairmap._kernels.nulls import sample_null_aps_at
    from pairmap.nulls import key_seed

    cache = FilesystemCache(tmp_path)
    n_pos, n_total, size = 3, 1003, 10_000
    values = null_distribution(n_pos, n_total, null_size=size, cache=cache)
    key = NullKey("sampled", 0, size, n_total, n_pos, ALGORITHM_VERSION)
    stream = key_seed(0, size, n_total, n_pos)

    def recompute(pos):
        return sample_null_aps_at(stream, n_total, n_pos, pos)

    reads, checks = [], []
    for _ in range(20):
        t0 = time.perf_counter()
        got = cache.get(key)
        t1 = time.perf_counter()
        assert spot_check(got, recompute) is None
        t2 = time.perf_counter()
        reads.append(t1 - t0)
        checks.append(t2 - t1)
    np.testing.assert_array_equal(got, values)
    print(
        f"\ncache hit of {size} draws: read {np.median(reads) * 1e3:.3f} ms, "
        f"spot check {np.median(checks) * 1e3:.3f} ms"
    )


def test_cache_verify_command_finds_forged_entries(tmp_path, capsys):
    from pairmap.cli import main

    cache = FilesystemCache(tmp_path)
    null_distribution(3, 300, null_size=2000, cache=cache)  # sampled
    null_distribution(2, 30, null_size=2000, cache=cache)  # exact (435 values)
    null_distribution(4, 300, null_size=2000, cache=cache)
    assert main(["cache", "verify", "--dir", str(tmp_path)]) == 0
    assert "values of 3 entries spot-checked" in capsys.readouterr().out
    forged = NullKey("sampled", 0, 2000, 300, 4, ALGORITHM_VERSION)
    _forge(cache, forged, cache.get(forged)[::-1].copy())
    exact = NullKey("exact", 0, 2000, 30, 2, ALGORITHM_VERSION)
    _forge(cache, exact, np.sort(cache.get(exact)))
    assert main(["cache", "verify", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"corrupt: {forged.filename()}" in out and f"corrupt: {exact.filename()}" in out
    assert cache.info()["entries"] == 1 and cache.info()["quarantined"] == 2


def test_verify_skips_values_it_cannot_recompute(tmp_path):
    from pairmap._null_check import recompute_for_key

    cache = FilesystemCache(tmp_path)
    other_version = NullKey("sampled", 0, 10, 50, 2, ALGORITHM_VERSION + 1)
    unknown_method = NullKey("future_method", 0, 10, 50, 2, ALGORITHM_VERSION)
    for key in (other_version, unknown_method):
        cache.put(key, np.zeros(10))
        assert recompute_for_key(key) is None
    report = cache.verify(recompute=recompute_for_key)
    assert report["ok"] == 2 and report["spot_checked"] == 0


def test_memory_cache_verify_spot_checks_too():
    from pairmap._null_check import recompute_for_key

    cache = MemoryCache()
    null_distribution(3, 300, null_size=500, cache=cache)
    key = NullKey("sampled", 0, 500, 300, 3, ALGORITHM_VERSION)
    assert cache.verify(recompute=recompute_for_key)["corrupt"] == 0
    cache.put(key, cache.get(key) + 1e-12)
    assert cache.verify(recompute=recompute_for_key)["corrupt"] == 1
    assert cache.get(key) is None
