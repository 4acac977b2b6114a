"""Regression test: NaN truth in plot_map_scatter(truth_col=...) is not counted as active."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pairmap.plotting import plot_map_scatter


def test_nan_truth_is_its_own_category():
    maps = pd.DataFrame({
        "mean_average_precision": [0.9, 0.8, 0.2, 0.1],
        "corrected_p_value": [0.001, 0.01, 0.5, 0.9],
        "truth": pd.array([True, None, False, None], dtype="boolean"),
    })
    fig = plot_map_scatter(maps, truth_col="truth")
    ax = fig.axes[0]
    sizes = sorted(len(c.get_offsets()) for c in ax.collections)
    assert sizes == [1, 1, 2]  # active, inactive, unknown
    active = ax.collections[0].get_offsets()
    np.testing.assert_allclose(np.asarray(active)[:, 0], [0.9])
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "truth unknown" in labels


def test_object_truth_with_nan():
    maps = pd.DataFrame({
        "mean_average_precision": [0.9, 0.8],
        "corrected_p_value": [0.001, 0.01],
        "truth": [True, np.nan],
    })
    ax = plot_map_scatter(maps, truth_col="truth").axes[0]
    assert sorted(len(c.get_offsets()) for c in ax.collections) == [0, 1, 1]
