"""find_pairs against brute force, assign_reference_index, query filters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles import brute_force_ap, brute_force_pairs

import pairmap
from pairmap import assign_reference_index, find_pairs


# --------------------------------------------------------------- find_pairs
@st.composite
def pairing_cases(draw):
    n = draw(st.integers(1, 40))
    n_cols = draw(st.integers(1, 5))
    cols = [f"Metadata_{k}" for k in range(n_cols)]
    data = {}
    for c in cols:
        levels = draw(st.integers(1, 4))
        vals = draw(st.lists(st.integers(0, levels - 1), min_size=n, max_size=n))
        kind = draw(st.sampled_from(["int", "str", "float", "category", "bool"]))
        if kind == "str":
            vals = [f"v{v}" for v in vals]
        elif kind == "float":
            vals = [v / 3 for v in vals]
        elif kind == "bool":
            vals = [bool(v % 2) for v in vals]
        data[c] = pd.Categorical(vals) if kind == "category" else vals
    meta = pd.DataFrame(data)

    # Assign every column to at most one of four slots; "any" slots need >= 2 columns.
    slots = {c: draw(st.sampled_from(["s_all", "s_any", "d_all", "d_any", None])) for c in cols}
    picked = {k: [c for c in cols if slots[c] == k] for k in ("s_all", "s_any", "d_all", "d_any")}
    for k in ("s_any", "d_any"):
        if len(picked[k]) == 1:
            picked[k.replace("any", "all")].append(picked[k].pop())
    if not any(picked.values()):
        picked["s_all"].append(cols[0])
    sameby = (
        picked["s_all"]
        if not picked["s_any"] and draw(st.booleans())
        else {"all": picked["s_all"], "any": picked["s_any"]}
    )
    diffby = (
        picked["d_all"]
        if not picked["d_any"] and draw(st.booleans())
        else {"all": picked["d_all"], "any": picked["d_any"]}
    )
    return meta, sameby, diffby


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=pairing_cases())
def test_find_pairs_matches_brute_force(case):
    meta, sameby, diffby = case
    got = find_pairs(meta, sameby, diffby)
    expected = brute_force_pairs(meta, sameby, diffby)
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.int64
    assert got.ndim == 2 and got.shape[1] == 2
    np.testing.assert_array_equal(got, expected)


@settings(max_examples=60, deadline=None)
@given(case=pairing_cases(), seed=st.integers(0, 2**16))
def test_find_pairs_ignores_index_labels(case, seed):
    """Pairs are row positions whatever the index labels are."""
    meta, sameby, diffby = case
    shuffled_index = np.random.default_rng(seed).permutation(len(meta)) * 10 + 5
    relabeled = meta.set_axis(shuffled_index, axis=0)
    np.testing.assert_array_equal(
        find_pairs(relabeled, sameby, diffby), brute_force_pairs(meta, sameby, diffby)
    )


def test_find_pairs_small_example():
    meta = pd.DataFrame(
        {"cpd": ["a", "a", "b", "b", "a"], "plate": [1, 2, 1, 1, 1], "well": [0, 1, 2, 3, 4]}
    )
    assert find_pairs(meta, ["cpd"], ["plate"]).tolist() == [[0, 1], [1, 4]]
    assert find_pairs(meta, ["cpd", "plate"], []).tolist() == [[0, 4], [2, 3]]
    assert find_pairs(meta, {"all": [], "any": ["cpd", "plate"]}, ["well"]).tolist() == [
        [0, 1],
        [0, 2],
        [0, 3],
        [0, 4],
        [1, 4],
        [2, 3],
        [2, 4],
        [3, 4],
    ]


@pytest.mark.parametrize(
    ("sameby", "diffby", "culprit"),
    [
        (["cpd"], ["cpd"], "cpd"),
        ({"all": ["cpd"], "any": []}, {"all": [], "any": ["cpd", "plate"]}, "cpd"),
        ({"all": [], "any": ["cpd"]}, [], "any"),
        ([], {"all": [], "any": ["plate"]}, "any"),
    ],
)
def test_find_pairs_bad_rules(sameby, diffby, culprit):
    meta = pd.DataFrame({"cpd": ["a", "a", "b"], "plate": [1, 2, 1]})
    with pytest.raises(ValueError, match=culprit):
        find_pairs(meta, sameby, diffby)


def test_find_pairs_missing_column_is_named():
    meta = pd.DataFrame({"cpd": ["a", "a", "b"]})
    with pytest.raises((ValueError, KeyError), match="Metadata_nope"):
        find_pairs(meta, ["cpd"], ["Metadata_nope"])


def test_find_pairs_nan_in_column_is_named():
    meta = pd.DataFrame({"cpd": ["a", None, "b"], "plate": [1, 1, 2]})
    with pytest.raises(ValueError, match="cpd"):
        find_pairs(meta, ["cpd"], [])


def test_find_pairs_odd_column_names():
    meta = pd.DataFrame({"my cpd (id)": ["a", "a", "b"], "plate#1": [1, 2, 2]})
    assert find_pairs(meta, ["my cpd (id)"], ["plate#1"]).tolist() == [[0, 1]]


# -------------------------------------------------------- assign_reference_index
@pytest.fixture
def controls_frame():
    return pd.DataFrame(
        {"Metadata_cpd": ["DMSO", "x", "DMSO", "y", "DMSO"], "v": [1.0, 2.0, 3.0, 4.0, 5.0]},
        index=[10, 11, 12, 13, 14],
    )


def test_assign_reference_index_query_string(controls_frame):
    before = controls_frame.copy()
    out = assign_reference_index(controls_frame, "Metadata_cpd == 'DMSO'")
    assert out["Metadata_Reference_Index"].tolist() == [0, -1, 2, -1, 4]
    pd.testing.assert_frame_equal(controls_frame, before)  # input untouched (a copy)
    assert out is not controls_frame
    pd.testing.assert_frame_equal(out.drop(columns="Metadata_Reference_Index"), before)


def test_assign_reference_index_boolean_mask(controls_frame):
    mask = (controls_frame["Metadata_cpd"] == "DMSO").to_numpy()
    out = assign_reference_index(controls_frame, mask, reference_col="ref", default_value=-7)
    assert out["ref"].tolist() == [0, -7, 2, -7, 4]
    out2 = assign_reference_index(controls_frame, pd.Series(mask, index=controls_frame.index))
    assert out2["Metadata_Reference_Index"].tolist() == [0, -1, 2, -1, 4]


def test_assign_reference_index_index_labels(controls_frame):
    out = assign_reference_index(controls_frame, [12, 14])
    assert out["Metadata_Reference_Index"].tolist() == [-1, -1, 2, -1, 4]
    out = assign_reference_index(controls_frame, pd.Index([10]))
    assert out["Metadata_Reference_Index"].tolist() == [0, -1, -1, -1, -1]


def test_assign_reference_index_unknown_label_is_an_error(controls_frame):
    with pytest.raises((ValueError, KeyError), match="99"):
        assign_reference_index(controls_frame, [99])


def test_assign_reference_index_matches_copairs():
    copairs_matching = pytest.importorskip("copairs.matching", reason="copairs is not installed")
    df = pd.DataFrame({"Metadata_cpd": ["DMSO", "x", "DMSO", "y", "DMSO", "x"]})
    ours = assign_reference_index(df, "Metadata_cpd == 'DMSO'")
    theirs = copairs_matching.assign_reference_index(df, "Metadata_cpd == 'DMSO'")
    np.testing.assert_array_equal(
        ours["Metadata_Reference_Index"].to_numpy(), theirs["Metadata_Reference_Index"].to_numpy()
    )


def test_reference_index_keeps_controls_apart():
    """With the reference column in pos_sameby, controls never pair with each other."""
    df = pd.DataFrame({"cpd": ["DMSO", "a", "DMSO", "a", "DMSO"]})
    df = assign_reference_index(df, "cpd == 'DMSO'")
    pairs = find_pairs(df, ["cpd", "Metadata_Reference_Index"], [])
    assert pairs.tolist() == [[1, 3]]


# ------------------------------------------------------------- query filters
def _filter_case():
    """Rows with dose 0 are interleaved; features make every row distinctive."""
    meta = pd.DataFrame(
        {
            "cpd": ["a", "a", "b", "b", "a", "b", "c", "c", "a", "c"],
            "dose": [0, 1, 2, 0, 1, 2, 1, 0, 2, 2],
        }
    )
    rng = np.random.default_rng(42)
    X = rng.normal(size=(len(meta), 5)) + 3 * np.eye(5)[[0, 0, 1, 1, 0, 1, 2, 2, 0, 2]]
    return meta, X


def test_query_filter_drops_rows_from_meta_and_features():
    meta, X = _filter_case()
    rules = (["cpd", "dose > 0"], [], [], ["cpd"])
    out = pairmap.average_precision(meta, X, *rules, progress_bar=False)
    keep = (meta["dose"] > 0).to_numpy()
    assert len(out) == keep.sum()
    assert isinstance(out.index, pd.RangeIndex)
    pd.testing.assert_frame_equal(
        out[["cpd", "dose"]], meta[keep].reset_index(drop=True), check_dtype=False
    )
    # same as filtering by hand first
    by_hand = pairmap.average_precision(
        meta[keep].reset_index(drop=True), X[keep], ["cpd"], [], [], ["cpd"], progress_bar=False
    )
    pd.testing.assert_frame_equal(out, by_hand)
    # and as the oracle
    expected = brute_force_ap(meta, X, *rules)
    np.testing.assert_allclose(out["average_precision"], expected["average_precision"], atol=1e-9)
    # the copairs-style bug (filtered meta, unfiltered features) would give another answer,
    # so the comparison above can fail
    misaligned = brute_force_ap(
        meta[keep].reset_index(drop=True), X[: keep.sum()], ["cpd"], [], [], ["cpd"]
    )
    assert not np.allclose(misaligned["average_precision"], expected["average_precision"])


def test_query_filter_with_dataframe_features_and_custom_index():
    meta, X = _filter_case()
    meta = meta.set_axis(np.arange(len(meta))[::-1] + 100, axis=0)
    feats = pd.DataFrame(X, index=meta.index, columns=list("abcde"))
    out = pairmap.average_precision(
        meta, feats, ["cpd"], [], ["dose != 0"], ["cpd"], progress_bar=False
    )
    expected = brute_force_ap(meta.reset_index(drop=True), X, ["cpd"], [], ["dose != 0"], ["cpd"])
    assert len(out) == len(expected)
    np.testing.assert_allclose(out["average_precision"], expected["average_precision"], atol=1e-9)
    np.testing.assert_array_equal(out["n_total_pairs"], expected["n_total_pairs"])


def test_query_filter_on_odd_column_name():
    meta, X = _filter_case()
    meta = meta.rename(columns={"dose": "dose (uM)"})
    out = pairmap.average_precision(
        meta, X, ["cpd", "`dose (uM)` > 0"], [], [], ["cpd"], progress_bar=False
    )
    assert len(out) == int((meta["dose (uM)"] > 0).sum())


def test_query_filters_in_several_rules_combine_with_and():
    meta, X = _filter_case()
    out = pairmap.average_precision(
        meta, X, ["cpd", "dose > 0"], [], ["dose < 2"], ["cpd"], progress_bar=False
    )
    assert sorted(out["dose"].unique().tolist()) == [1]


def test_query_in_diffby_is_an_error():
    meta, X = _filter_case()
    with pytest.raises(ValueError, match="dose > 0"):
        pairmap.average_precision(meta, X, ["cpd"], [], [], ["cpd", "dose > 0"], progress_bar=False)


def test_query_filter_removing_everything_is_an_error():
    meta, X = _filter_case()
    with pytest.raises(ValueError):
        pairmap.average_precision(meta, X, ["cpd", "dose > 5"], [], [], ["cpd"], progress_bar=False)
