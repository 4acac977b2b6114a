"""Inputs that used to give silently wrong results now align, warn or fail with a clear message.

One test per behaviour of issue 12 ("safe by default"): misaligned meta/feats,
wholesale ties, a reference condition that matches nothing, negative pair
counts, NaN group labels, string rules, strict booleans.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import LINCS_FILE, data_file

import pairmap
from pairmap._ties import TIED_SHARE_WARN, tied_profile_mask

RULES = (["cpd"], [], [], ["cpd"])


def _frame(n=12, d=5, seed=0):
    rng = np.random.default_rng(seed)
    meta = pd.DataFrame(
        {"cpd": [f"c{k % 3}" for k in range(n)]}, index=[f"w{k:02d}" for k in range(n)]
    )
    feats = pd.DataFrame(
        rng.normal(size=(n, d)), index=meta.index, columns=[f"f{j}" for j in range(d)]
    )
    return meta, feats


def _ap(meta, feats, rules=RULES, **kw):
    kw.setdefault("progress_bar", False)
    return pairmap.average_precision(meta, feats, *rules, **kw)


# ------------------------------------------------------------ meta/feats alignment
def test_feats_in_another_row_order_are_aligned_by_label():
    meta, feats = _frame()
    expected = _ap(meta, feats)
    shuffled = feats.sample(frac=1.0, random_state=3)
    assert not shuffled.index.equals(meta.index)
    pd.testing.assert_frame_equal(_ap(meta, shuffled), expected)


def test_feats_with_other_labels_are_refused_with_the_fix():
    meta, feats = _frame()
    with pytest.raises(ValueError, match="different row labels.*feats.to_numpy"):
        _ap(meta, feats.reset_index(drop=True))


def test_duplicate_labels_that_disagree_are_refused():
    meta, feats = _frame()
    feats.index = ["same"] * len(feats)
    with pytest.raises(ValueError, match="duplicate labels"):
        _ap(meta, feats)


def test_numpy_feats_pair_by_position_and_equal_indexes_are_untouched():
    meta, feats = _frame()
    pd.testing.assert_frame_equal(_ap(meta, feats.to_numpy()), _ap(meta, feats))


def test_lincs_plate_with_shuffled_feature_rows_gives_the_aligned_result():
    df = pd.read_csv(data_file(LINCS_FILE))
    df = pairmap.assign_reference_index(df, "Metadata_broad_sample == 'DMSO'")
    meta = df.filter(regex="^Metadata")
    feats = df.drop(columns=meta.columns)
    cols = ["Metadata_broad_sample", "Metadata_Reference_Index"]
    rules = (cols, [], [], cols)
    aligned = _ap(meta, feats, rules)
    shuffled = _ap(meta, feats.sample(frac=1.0, random_state=0), rules)
    pd.testing.assert_frame_equal(shuffled, aligned)
    # by position the shuffled rows gave a near-random mean AP (0.108 in the issue)
    by_position = _ap(meta, feats.sample(frac=1.0, random_state=0).to_numpy(), rules)
    assert by_position["average_precision"].mean() < aligned["average_precision"].mean() - 0.2


# ------------------------------------------------------------------ wholesale ties
@pytest.mark.filterwarnings("ignore:.*zero variance:RuntimeWarning")
@pytest.mark.parametrize("distance", ["cosine", "correlation", "euclidean", "manhattan"])
def test_constant_profiles_warn_and_name_the_tie_policy(distance):
    meta, feats = _frame()
    const = feats * 0 + 1.0
    with pytest.warns(RuntimeWarning, match="constant or identical.*ties='expected'"):
        res = _ap(meta, const, distance=distance)
    if distance in ("euclidean", "manhattan"):  # every list ties: AP = 1 by the default policy
        assert (res["average_precision"] == 1.0).all()


def test_identical_profiles_warn_with_either_tie_policy():
    meta, feats = _frame()
    dup = feats.copy()
    dup.iloc[1::2] = dup.iloc[0::2].to_numpy()  # every odd row copies the row before it
    for ties in ("positives_first", "expected"):
        with pytest.warns(RuntimeWarning, match=r"12 of 12 profiles \(100%"):
            _ap(meta, dup, ties=ties)


def test_distinct_profiles_do_not_warn():
    meta, feats = _frame(n=60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _ap(meta, feats)


def test_tied_share_counts_multiples_only_for_angular_similarities():
    X = np.random.default_rng(0).normal(size=(50, 8))
    X[1] = 3.0 * X[0]
    X[2] = X[3]
    inv = 1.0 / np.linalg.norm(X, axis=1)
    assert np.flatnonzero(tied_profile_mask(X, inv)).tolist() == [0, 1, 2, 3]
    assert np.flatnonzero(tied_profile_mask(X)).tolist() == [2, 3]
    assert 2 / 50 < TIED_SHARE_WARN  # a few duplicates do not warn


def test_lincs_with_constant_features_warns_and_expected_ties_finds_nothing():
    # the case: all-tied similarities made 58 of 58 compounds "significant"
    df = pd.read_csv(data_file(LINCS_FILE))
    df = pairmap.assign_reference_index(df, "Metadata_broad_sample == 'DMSO'")
    meta = df.filter(regex="^Metadata")
    const = df.drop(columns=meta.columns) * 0 + 1.0
    cols = ["Metadata_broad_sample", "Metadata_Reference_Index"]
    significant = {}
    for ties in ("positives_first", "expected"):
        with pytest.warns(RuntimeWarning, match=r"384 of 384 profiles \(100%"):
            ap = _ap(meta, const, (cols, [], [], cols), ties=ties)
        ap = ap[ap["Metadata_broad_sample"] != "DMSO"]
        for null in ("shared", "auto"):  # the null; the default (permutation) null
            res = pairmap.mean_average_precision(
                ap,
                "Metadata_broad_sample",
                null_size=1000,
                null=null,
                cache=False,
                progress_bar=False,
            )
            significant[ties, null] = int(res["below_corrected_p"].sum())
    # the shared null of random rankings calls every all-tied compound significant under
    # positives_first; relabeling the real (tied) similarities does not, nor do neutral ties
    assert significant == {
        ("positives_first", "shared"): 58,
        ("positives_first", "auto"): 0,
        ("expected", "shared"): 0,
        ("expected", "auto"): 0,
    }


# ------------------------------------------------------------ assign_reference_index
@pytest.mark.parametrize(
    "condition", ["cpd == 'dmso'", np.zeros(12, dtype=bool), []], ids=["query", "mask", "labels"]
)
def test_reference_condition_matching_nothing_is_an_error(condition):
    meta, _ = _frame()
    with pytest.raises(ValueError, match="matches none of the 12 rows"):
        pairmap.assign_reference_index(meta, condition)


# --------------------------------------------------------------- AP tables for mAP
def _ap_table(**cols):
    base = {
        "g": ["a", "a", "b", "b"],
        "average_precision": [0.5, 0.4, 0.3, 0.2],
        "n_pos_pairs": [1, 1, 1, 1],
        "n_total_pairs": [4, 4, 4, 4],
    }
    base.update(cols)
    return pd.DataFrame(base)


@pytest.mark.parametrize("col", ["n_pos_pairs", "n_total_pairs"])
def test_negative_pair_counts_are_named_not_dropped(col):
    values = [1, -1, 1, -2] if col == "n_pos_pairs" else [4, 4, -4, 4]
    df = _ap_table(**{col: values})
    with pytest.raises(ValueError, match=r"negative n_pos_pairs or n_total_pairs \(rows \["):
        pairmap.mean_average_precision(df, "g", cache=False, progress_bar=False)
    with pytest.raises(ValueError, match="negative"):
        pairmap.p_values(df, cache=False, progress_bar=False)


def test_nan_group_label_is_an_error_naming_the_column():
    df = _ap_table(g=["a", None, "b", np.nan])
    with pytest.raises(
        ValueError, match=r"sameby column 'g' has 2 missing value\(s\) \(rows \[1, 3\]\).*fillna"
    ):
        pairmap.mean_average_precision(df, "g", cache=False, progress_bar=False)


# ------------------------------------------------------------ one API, one meaning
def test_a_single_column_string_works_in_every_rule():
    meta, feats = _frame()
    as_list = _ap(meta, feats, (["cpd"], [], [], ["cpd"]))
    as_str = _ap(meta, feats, ("cpd", [], [], "cpd"))
    pd.testing.assert_frame_equal(as_str, as_list)
    res = pairmap.mean_average_precision(as_str, "cpd", cache=False, progress_bar=False)
    assert res["cpd"].tolist() == ["c0", "c1", "c2"]


@pytest.mark.parametrize("flag", ["no", "False", 0, None])
def test_progress_bar_must_be_a_boolean(flag):
    meta, feats = _frame()
    with pytest.raises(TypeError, match="progress_bar must be True or False"):
        _ap(meta, feats, progress_bar=flag)
    with pytest.raises(TypeError, match="progress_bar must be True or False"):
        pairmap.mean_average_precision(_ap_table(), "g", cache=False, progress_bar=flag)
    with pytest.raises(TypeError, match="progress_bar must be True or False"):
        pairmap.p_values(_ap_table(), cache=False, progress_bar=flag)


def test_tie_warning_points_at_the_callers_line_on_both_engine_paths():
    meta, feats = _frame()
    const = feats * 0 + 1.0
    with pytest.warns(RuntimeWarning, match="constant or identical") as rec:
        _ap(meta, const)
    assert rec[0].filename == __file__
    meta["labels"] = [[["a"], ["b"], ["a", "c"]][k % 3] for k in range(len(meta))]
    with pytest.warns(RuntimeWarning, match="constant or identical") as rec:
        pairmap.average_precision(
            meta, const, ["labels"], [], [], ["labels"], multilabel_col="labels", progress_bar=False
        )
    assert [w.filename for w in rec if "constant" in str(w.message)] == [__file__]
