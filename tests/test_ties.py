"""``tied_profile_mask`` against a direct oracle: rows whose two projection keys both repeat."""

from __future__ import annotations

import numpy as np
import pytest

from pairmap._ties import _GRID_F32, _GRID_F64, projection_matrix, tied_profile_mask


def _oracle(X, inv):
    proj = (X @ projection_matrix(X.shape[1], X.dtype)).astype(np.float64)
    zero = np.zeros(len(X), dtype=bool)
    if inv is not None:
        zero = inv == 0.0
        proj *= inv[:, None]
    else:
        proj /= max(float(np.abs(proj).max(initial=0.0)), 1e-300)
    keys = np.round(proj / (_GRID_F32 if X.dtype == np.float32 else _GRID_F64))
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    return (counts[inverse.reshape(-1)] > 1) | zero


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("angular", [True, False])
@pytest.mark.parametrize("seed", range(6))
def test_mask_equals_the_oracle(dtype, angular, seed):
    rng = np.random.default_rng(seed)
    n, d = int(rng.integers(2, 3000)), int(rng.integers(1, 40))
    X = (rng.integers(-2, 3, (n, d)) if seed % 2 else rng.standard_normal((n, d))).astype(dtype)
    X[rng.integers(0, n, n // 5)] = X[0]  # duplicated rows
    X[rng.integers(0, n, n // 10)] = 0.0  # zero rows
    X[1] = 3 * X[2]  # a positive multiple: ties under angular similarities only
    sq = (X.astype(np.float64) ** 2).sum(axis=1)
    inv = np.where(sq == 0, 0.0, 1 / np.sqrt(np.where(sq == 0, 1.0, sq))) if angular else None
    got = tied_profile_mask(X, inv)
    np.testing.assert_array_equal(got, _oracle(X, inv))
    if angular:  # a positive multiple points the same way (or both rows are zero)
        assert got[1] and got[2]
