"""The engine honours ``max_memory`` and never makes float64 copies of float32 features.

Memory is measured with tracemalloc, which sees every NumPy allocation (block
buffers, matrix-product blocks, masks, gathers); the input arrays themselves
are allocated before tracing starts and are not counted.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

import pairmap


def _activity_screen(n_cpd, n_ctl, d, dtype, seed=0):
    rng = np.random.default_rng(seed)
    meta = pd.DataFrame({"Metadata_cpd": np.r_[np.repeat(np.arange(n_cpd), 4), np.full(n_ctl, -1)]})
    meta = pairmap.assign_reference_index(meta, "Metadata_cpd == -1")
    feats = rng.standard_normal((len(meta), d)).astype(dtype)
    return meta, feats


COLS = ["Metadata_cpd", "Metadata_Reference_Index"]


def _traced_peak(meta, feats, **kw):
    tracemalloc.start()
    try:
        result = pairmap.average_precision(
            meta, feats, COLS, [], [], COLS, progress_bar=False, **kw
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.mark.parametrize("budget_mb", [8, 32])
def test_max_memory_bounds_engine_allocations(budget_mb):
    meta, feats = _activity_screen(n_cpd=1500, n_ctl=3000, d=64, dtype=np.float32)
    pairmap.average_precision(meta, feats, COLS, [], [], COLS, progress_bar=False)  # compile
    small, peak = _traced_peak(meta, feats, max_memory=f"{budget_mb}MB")
    # candidate pairs here: 6,000 queries x 3,000 controls = 18e6 similarities (144 MB as float64)
    assert peak <= budget_mb * 1e6 * 1.25 + 2e6, f"peak {peak / 1e6:.1f} MB over {budget_mb} MB"
    big, _ = _traced_peak(meta, feats, max_memory="1GB")
    np.testing.assert_array_equal(
        small["average_precision"].to_numpy(), big["average_precision"].to_numpy()
    )


def test_float32_features_are_not_copied_to_float64():
    meta, feats = _activity_screen(n_cpd=1000, n_ctl=1000, d=1024, dtype=np.float32)
    pairmap.average_precision(meta, feats, COLS, [], [], COLS, progress_bar=False)  # compile
    _, peak = _traced_peak(meta, feats, max_memory="8MB")
    # a float64 copy of the features alone would take 2 x feats.nbytes
    assert peak < feats.nbytes, (
        f"peak {peak / 1e6:.1f} MB vs float32 features {feats.nbytes / 1e6:.1f} MB"
    )


def test_many_dense_groups_stay_within_max_memory():
    """Negatives defined by several frequent diffby values: thousands of small dense groups."""
    rng = np.random.default_rng(0)
    n = 6000
    idx = rng.permutation(n)
    meta = pd.DataFrame({"cpd": idx // 4, "plate": idx % 60, "well": (idx // 60) % 100})
    feats = rng.standard_normal((n, 16))
    rules = (["cpd"], [], [], ["cpd", "plate", "well"])
    pairmap.average_precision(meta.iloc[:300], feats[:300], *rules, progress_bar=False)  # compile
    tracemalloc.start()
    try:
        small = pairmap.average_precision(
            meta, feats, *rules, max_memory="16MB", n_jobs=1, progress_bar=False
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= 16e6 * 1.25 + 2e6, f"peak {peak / 1e6:.1f} MB over 16 MB"
    big = pairmap.average_precision(meta, feats, *rules, progress_bar=False)
    np.testing.assert_array_equal(
        small["average_precision"].to_numpy(), big["average_precision"].to_numpy()
    )
