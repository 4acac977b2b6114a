"""pairmap.compat against copairs 0.5.5 itself: same names, columns, exceptions, numbers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from pairmap.compat import Matcher, map, matching

copairs_map = pytest.importorskip("copairs.map", reason="copairs is not installed")
copairs_matching = pytest.importorskip("copairs.matching")


@pytest.fixture(scope="module")
def screen():
    rng = np.random.default_rng(7)
    meta = pd.DataFrame(
        {
            "Metadata_cpd": np.repeat([f"c{i}" for i in range(10)], 4),
            "Metadata_plate": np.tile(["p1", "p2", "p3", "p4"], 10),
        }
    )
    meta.loc[meta["Metadata_cpd"] == "c0", "Metadata_cpd"] = "DMSO"
    feats = rng.normal(size=(40, 16))
    feats[4:24] += rng.normal(size=(5, 1, 16)).repeat(4, axis=0).reshape(20, 16)
    return meta, feats


KEYS = ["Metadata_cpd", "Metadata_ref"]


def _both(screen):
    meta, feats = screen
    ours = matching.assign_reference_index(meta, "Metadata_cpd == 'DMSO'", "Metadata_ref")
    theirs = copairs_matching.assign_reference_index(meta, "Metadata_cpd == 'DMSO'", "Metadata_ref")
    pd.testing.assert_frame_equal(ours, theirs)
    return ours, feats


def test_average_precision_same_columns_and_values(screen):
    meta, feats = _both(screen)
    ours = map.average_precision(meta, feats, KEYS, [], [], KEYS, progress_bar=False)
    theirs = copairs_map.average_precision(meta, feats, KEYS, [], [], KEYS, progress_bar=False)
    assert list(ours.columns) == list(theirs.columns)
    for col in ("average_precision", "normalized_average_precision", "n_pos_pairs"):
        np.testing.assert_allclose(
            ours[col].to_numpy(float), theirs[col].to_numpy(float), rtol=1e-9, equal_nan=True
        )
    # documented difference: unscored profiles (the DMSO wells) get zero counts
    scored = ours["average_precision"].notna().to_numpy()
    assert (ours.loc[~scored, "n_total_pairs"] == 0).all()
    np.testing.assert_array_equal(
        ours.loc[scored, "n_total_pairs"], theirs.loc[scored, "n_total_pairs"]
    )


def test_mean_average_precision_same_columns(screen):
    meta, feats = _both(screen)
    ap = map.average_precision(meta, feats, KEYS, [], [], KEYS, progress_bar=False)
    ours = map.mean_average_precision(ap, ["Metadata_cpd"], 2000, 0.05, 0, progress_bar=False)
    ap_c = copairs_map.average_precision(meta, feats, KEYS, [], [], KEYS, progress_bar=False)
    theirs = copairs_map.mean_average_precision(
        ap_c, ["Metadata_cpd"], 2000, 0.05, 0, progress_bar=False
    )
    assert list(ours.columns) == list(theirs.columns)
    assert ours["Metadata_cpd"].tolist() == theirs["Metadata_cpd"].tolist()  # no DMSO row
    assert ours["indices"].tolist() == theirs["indices"].tolist()
    np.testing.assert_allclose(
        ours["mean_average_precision"], theirs["mean_average_precision"], rtol=1e-9
    )
    # Each compound: 3 positives among 7 (3 replicates + 4 DMSO). Below the top, p-values
    # agree up to copairs' Monte Carlo error; a perfect mAP ties the best of the C(7, 3) = 35
    # rankings: P(null >= 1) = 1/35 exactly (pairmap), copairs counts null > 1: 1/(2000 + 1).
    top = ours["mean_average_precision"].to_numpy() == 1.0
    assert top.sum() == 2
    np.testing.assert_allclose(ours["p_value"][top], 1 / 35, rtol=1e-12)
    np.testing.assert_allclose(theirs["p_value"][top], 1 / 2001, rtol=1e-6)
    np.testing.assert_allclose(ours["p_value"][~top], theirs["p_value"][~top], atol=0.03)


def test_hierarchical_matches_copairs_correction():
    rng = np.random.default_rng(0)
    scores = pd.DataFrame(
        {
            "c": np.repeat(list("abcd"), 3),
            "d": np.tile([1, 2, 3], 4),
            "p_value": rng.uniform(0, 0.2, size=12),
        }
    )
    ours = map.apply_hierarchical_fdr_correction(scores, ["c"], ["c", "d"])
    theirs = copairs_map.apply_hierarchical_fdr_correction(scores, ["c"], ["c", "d"])
    for col in ("stage1_p_value", "stage1_corrected_p_value", "corrected_p_value"):
        np.testing.assert_allclose(ours[col], theirs[col], rtol=1e-12)
    assert ours["stage1_significant"].tolist() == theirs["stage1_significant"].tolist()
    np.testing.assert_allclose(
        map.apply_fdr_correction(scores)["corrected_p_value"],
        copairs_map.apply_fdr_correction(scores)["corrected_p_value"],
    )


def test_unpaired_exception_and_validation(screen):
    meta, feats = _both(screen)
    with pytest.raises(matching.UnpairedException, match="Unable to find positive pairs"):
        map.average_precision(
            meta, feats, ["Metadata_plate", "Metadata_cpd"], [], [], KEYS, progress_bar=False
        )
    bad = meta.astype({"Metadata_cpd": object})
    bad.loc[3, "Metadata_cpd"] = None
    with pytest.raises(ValueError, match="metadata columns should not have null values"):
        map.average_precision(bad, feats, KEYS, [], [], KEYS, progress_bar=False)
    with pytest.warns(DeprecationWarning, match="Passing strings to 'pos_sameby'"):
        map.average_precision(meta, feats, "Metadata_ref", [], [], KEYS, progress_bar=False)


def test_find_pairs_and_matcher_agree_with_copairs(screen):
    meta, _ = screen
    meta = meta.copy()
    meta.loc[[2, 7], "Metadata_plate"] = None
    for sameby, diffby in ((["Metadata_cpd"], ["Metadata_plate"]), ([], ["Metadata_cpd"])):
        ours = matching.find_pairs(meta, sameby, diffby)
        theirs = copairs_matching.find_pairs(meta, sameby, diffby)
        assert ours.dtype == theirs.dtype
        assert sorted(map_tuple(ours)) == sorted(map_tuple(theirs))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ours = Matcher(meta, ["Metadata_cpd", "Metadata_plate"], seed=0).get_all_pairs(
            "Metadata_cpd", ["Metadata_plate"]
        )
        theirs = copairs_matching.Matcher(
            meta, ["Metadata_cpd", "Metadata_plate"], seed=0
        ).get_all_pairs("Metadata_cpd", ["Metadata_plate"])
    assert {k: sorted(v) for k, v in ours.items()} == {
        k: sorted(tuple(int(i) for i in p) for p in v) for k, v in theirs.items()
    }


def map_tuple(pairs):
    return [tuple(int(i) for i in p) for p in pairs]


def test_normalization_follows_pairmap():
    assert map.normalization.expected_ap(3, 7) == pytest.approx(
        copairs_map.normalization.expected_ap(3, 7), rel=1e-12
    )
    assert np.isnan(map.normalization.normalize_ap(1.0, 5, 0))  # documented difference


def test_multilabel_average_precision_matches_copairs():
    copairs_multilabel = pytest.importorskip("copairs.map.multilabel")
    rng = np.random.default_rng(0)
    labels = [["A", "B"], ["A"], ["B"], ["C"], ["A", "C"], ["B", "C"], ["A"], ["C"]] * 3
    meta = pd.DataFrame({"cpd": [f"c{i}" for i in range(24)], "t": labels})
    X = rng.normal(size=(24, 6))
    ours = map.multilabel.average_precision(meta, X, ["t"], [], [], ["t"], "t", progress_bar=False)
    theirs = copairs_multilabel.average_precision(
        meta, X, ["t"], [], [], ["t"], "t", progress_bar=False
    )
    assert list(ours.columns) == list(theirs.columns) and len(ours) == len(theirs) == 33
    both = ours.merge(theirs, on=["cpd", "t"], suffixes=("", "_copairs"))
    assert len(both) == 33
    for col in ("average_precision", "n_pos_pairs", "n_total_pairs"):
        np.testing.assert_allclose(both[col], both[f"{col}_copairs"], rtol=1e-12)
