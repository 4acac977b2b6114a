"""Regression tests for plot_map_scatter: truth categories, axis range, labels, coincident points."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pairmap.plotting import plot_map_scatter


def _note(ax):
    return next(t.get_text() for t in ax.texts if "scored groups" in t.get_text())


def _sizes(ax):
    return sorted(len(c.get_offsets()) for c in ax.collections)


def test_nan_truth_is_its_own_category():
    maps = pd.DataFrame(
        {
            "mean_average_precision": [0.9, 0.8, 0.2, 0.1],
            "corrected_p_value": [0.001, 0.01, 0.5, 0.9],
            "truth": pd.array([True, None, False, None], dtype="boolean"),
        }
    )
    ax = plot_map_scatter(maps, truth_col="truth").axes[0]
    # (active, significant), (inactive, not), (unknown, significant), (unknown, not)
    assert _sizes(ax) == [1, 1, 1, 1]
    shapes = {len(c.get_paths()[0].vertices) for c in ax.collections}
    assert len(shapes) == 3  # circles, crosses and squares
    (circle,) = [c for c in ax.collections if np.asarray(c.get_offsets())[0, 0] == 0.9]
    assert circle.pairmap_labels == ["True"] and len(circle.get_offsets()) == 1
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "truth unknown" in labels and "truly active" in labels


def test_object_truth_with_nan():
    maps = pd.DataFrame(
        {
            "mean_average_precision": [0.9, 0.8],
            "corrected_p_value": [0.001, 0.01],
            "truth": [True, np.nan],
        }
    )
    ax = plot_map_scatter(maps, truth_col="truth").axes[0]
    assert _sizes(ax) == [1, 1]


def test_y_axis_ends_near_the_data_not_at_the_null_floor():
    maps = pd.DataFrame({"mean_average_precision": [0.9, 0.3], "corrected_p_value": [0.01, 0.5]})
    ax = plot_map_scatter(maps, null_size=1_000_000).axes[0]
    top = ax.get_ylim()[1]
    assert 2.0 < top <= 2.0 * 1.12 + 0.05 + 1e-9  # highest point is -log10(0.01) = 2
    note = _note(ax)
    assert "1/(1,000,000 + 1)" in note


def test_threshold_line_is_labelled_and_axis_says_corrected():
    maps = pd.DataFrame({"mean_average_precision": [0.9], "corrected_p_value": [0.01]})
    ax = plot_map_scatter(maps, threshold=0.1).axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert "corrected p = 0.1" in texts
    assert "corrected" in ax.get_ylabel()
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0, 1.0])


def test_coincident_points_are_counted():
    maps = pd.DataFrame(
        {
            "cpd": [f"c{i}" for i in range(8)],
            "mean_average_precision": [1.0] * 6 + [0.5, 0.2],
            "corrected_p_value": [0.001] * 6 + [0.04, 0.5],
            "below_corrected_p": [True] * 7 + [False],
        }
    )
    ax = plot_map_scatter(maps).axes[0]
    offsets = np.concatenate([np.asarray(c.get_offsets()) for c in ax.collections])
    assert len(offsets) == 3  # six groups share one position
    assert "×6" in [t.get_text() for t in ax.texts]
    labels = [lab for c in ax.collections for lab in c.pairmap_labels]
    assert "6 groups, e.g. c0" in labels and "c7" in labels


def test_group_count_agrees_with_the_table():
    maps = pd.DataFrame(
        {
            "cpd": ["a", "b", "DMSO"],
            "mean_average_precision": [0.9, 0.3, np.nan],
            "n_profiles": [3, 3, 0],
            "corrected_p_value": [0.01, 0.5, np.nan],
            "below_corrected_p": [True, False, False],
        }
    )
    note = _note(plot_map_scatter(maps).axes[0])
    assert "1 of 2 scored groups" in note
    assert "1 group(s) without a score (n_profiles = 0)" in note


def test_many_points_are_sampled_and_say_so():
    rng = np.random.default_rng(0)
    n = 3000
    maps = pd.DataFrame(
        {
            "mean_average_precision": rng.uniform(size=n),
            "corrected_p_value": rng.uniform(1e-4, 1, size=n),
        }
    )
    ax = plot_map_scatter(maps, max_points=500).axes[0]
    drawn = sum(len(c.get_offsets()) for c in ax.collections)
    assert drawn == 500
    assert "showing 500 of 3,000" in _note(ax)
    # the most significant points are always kept
    best = -np.log10(maps["corrected_p_value"].min())
    ys = np.concatenate([np.asarray(c.get_offsets())[:, 1] for c in ax.collections])
    assert np.isclose(ys.max(), best)
