"""Tests of the simulated screen (pairmap.simulate)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from pairmap.simulate import simulate_screen

COLUMNS = [
    "Metadata_Plate",
    "Metadata_Well",
    "Metadata_Perturbation",
    "Metadata_Replicate",
    "Metadata_Control",
    "Metadata_Active",
]


def test_layout_and_types():
    meta, feats = simulate_screen(
        n_perturbations=30,
        n_replicates=3,
        n_plates=5,
        n_controls_per_plate=7,
        n_features=40,
        n_active_features=6,
        fraction_active=0.4,
        seed=3,
    )
    assert list(meta.columns) == COLUMNS
    assert feats.dtype == np.float32 and feats.shape == (30 * 3 + 5 * 7, 40)
    assert len(meta) == feats.shape[0]
    assert meta["Metadata_Control"].dtype == bool and meta["Metadata_Active"].dtype == bool

    ctrl = meta[meta["Metadata_Control"]]
    assert (ctrl["Metadata_Perturbation"] == "negcon").all()
    assert not ctrl["Metadata_Active"].any()
    assert ctrl.groupby("Metadata_Plate").size().tolist() == [7] * 5

    treated = meta[~meta["Metadata_Control"]]
    assert treated["Metadata_Perturbation"].nunique() == 30
    per_pert = treated.groupby("Metadata_Perturbation")
    # every replicate of a perturbation on a different plate
    assert (per_pert["Metadata_Plate"].nunique() == 3).all()
    assert (per_pert.size() == 3).all()
    assert sorted(treated["Metadata_Replicate"].unique()) == [1, 2, 3]
    # truth is constant within a perturbation and 40% of perturbations are active
    assert (per_pert["Metadata_Active"].nunique() == 1).all()
    assert per_pert["Metadata_Active"].first().sum() == 12

    # wells: valid 384-well names, unique within each plate
    assert (
        meta["Metadata_Well"]
        .map(lambda w: bool(re.fullmatch(r"[A-P](0[1-9]|1\d|2[0-4])", w)))
        .all()
    )
    assert not meta.duplicated(["Metadata_Plate", "Metadata_Well"]).any()


def test_deterministic_by_seed():
    a_meta, a = simulate_screen(n_perturbations=12, n_features=10, n_active_features=3, seed=7)
    b_meta, b = simulate_screen(n_perturbations=12, n_features=10, n_active_features=3, seed=7)
    c_meta, c = simulate_screen(n_perturbations=12, n_features=10, n_active_features=3, seed=8)
    pd.testing.assert_frame_equal(a_meta, b_meta)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_shift_only_on_active_features():
    # Many replicates make each replicate-mean precise: shifted features have mean
    # ~1 (sd 1/sqrt(60) = 0.13), others ~0, so a 0.5 cut separates them.
    k = 7
    meta, feats = simulate_screen(
        n_perturbations=6,
        n_replicates=60,
        n_plates=60,
        n_controls_per_plate=2,
        n_features=50,
        n_active_features=k,
        fraction_active=0.5,
        seed=11,
    )
    treated = ~meta["Metadata_Control"].to_numpy()
    assert feats[~treated].mean() == pytest.approx(0.0, abs=0.1)
    shifted_sets = []
    for pert, rows in meta[treated].groupby("Metadata_Perturbation").groups.items():
        means = feats[np.asarray(meta.index.get_indexer(rows))].mean(axis=0)
        shifted = np.flatnonzero(means > 0.5)
        if meta.loc[rows[0], "Metadata_Active"]:
            assert len(shifted) == k, pert
            assert means[shifted].mean() == pytest.approx(1.0, abs=0.1)
        else:
            assert len(shifted) == 0, pert
        shifted_sets.append(tuple(shifted))
    # each active perturbation gets its own random feature set
    assert len({s for s in shifted_sets if s}) == 3
    # background is standard normal
    background = feats[~treated]
    assert background.std() == pytest.approx(1.0, abs=0.1)


def test_all_or_nothing_active():
    meta, _ = simulate_screen(
        n_perturbations=5, n_features=5, n_active_features=2, fraction_active=0.0
    )
    assert not meta["Metadata_Active"].any()
    meta, _ = simulate_screen(
        n_perturbations=5, n_features=5, n_active_features=2, fraction_active=1.0
    )
    assert meta.loc[~meta["Metadata_Control"], "Metadata_Active"].all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_replicates": 5, "n_plates": 4}, "n_replicates=5 is larger than n_plates=4"),
        ({"n_replicates": 1}, "n_replicates must be >= 2"),
        ({"n_active_features": 300}, "n_active_features=300 is larger than n_features=200"),
        ({"fraction_active": 1.5}, "fraction_active must be between 0 and 1"),
        ({"n_perturbations": 1000, "n_plates": 4}, "more than the 384"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_screen(**kwargs)


def test_type_errors():
    with pytest.raises(TypeError, match="n_features must be an integer"):
        simulate_screen(n_features=2.5)


def test_public_export():
    import pairmap

    assert pairmap.simulate_screen is simulate_screen
