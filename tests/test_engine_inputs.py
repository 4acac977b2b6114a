"""Bad inputs give clear errors naming the culprit; odd-but-valid inputs work."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from oracles import brute_force_ap

import pairmap

RULES = (["cpd"], [], [], ["cpd"])


def _frame(n: int = 8, d: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    meta = pd.DataFrame(
        {"cpd": [f"c{k % 3}" for k in range(n)], "plate": [k % 2 for k in range(n)]}
    )
    return meta, rng.normal(size=(n, d))


def ap(meta, feats, rules=RULES, **kw):
    kw.setdefault("progress_bar", False)
    return pairmap.average_precision(meta, feats, *rules, **kw)


# ------------------------------------------------------------------ features
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_feature_in_array_names_row_and_column(bad):
    meta, X = _frame()
    X[5, 2] = bad
    with pytest.raises(ValueError, match=r"(?i)(nan|inf|finite)") as err:
        ap(meta, X)
    msg = str(err.value)
    assert "5" in msg or "2" in msg, f"message should locate the bad value: {msg}"


def test_non_finite_feature_in_frame_names_column():
    meta, X = _frame()
    feats = pd.DataFrame(X, columns=["f_a", "f_b", "Cells_Bad_Feature", "f_d"])
    feats.iloc[3, 2] = np.nan
    with pytest.raises(ValueError, match="Cells_Bad_Feature"):
        ap(meta, feats)


def test_non_numeric_feature_column_is_named():
    meta, X = _frame()
    feats = pd.DataFrame(X, columns=["f_a", "f_b", "f_c", "f_d"])
    feats["f_text"] = "abc"
    with pytest.raises((ValueError, TypeError), match="f_text"):
        ap(meta, feats)


def test_row_count_mismatch_names_both_counts():
    meta, X = _frame(n=8)
    with pytest.raises(ValueError, match=r"8") as err:
        ap(meta, X[:7])
    assert "7" in str(err.value)


def test_empty_frame_is_an_error():
    meta, X = _frame()
    with pytest.raises(ValueError):
        ap(meta.iloc[:0], X[:0])


def test_feature_matrix_must_be_two_dimensional():
    meta, X = _frame()
    with pytest.raises(ValueError):
        ap(meta, X[:, 0])


# ------------------------------------------------------------------ metadata
def test_nan_in_pairing_column_is_named():
    meta, X = _frame()
    meta["cpd"] = meta["cpd"].astype(object)
    meta.loc[4, "cpd"] = None
    with pytest.raises(ValueError, match="cpd"):
        ap(meta, X)


def test_nan_in_unused_column_is_fine():
    meta, X = _frame()
    meta["notes"] = [None] * len(meta)
    out = ap(meta, X)
    assert out["notes"].isna().all()


@pytest.mark.parametrize(
    "rules",
    [
        (["cpd", "Metadata_missing"], [], [], ["cpd"]),
        (["cpd"], [], ["Metadata_missing"], ["cpd"]),
    ],
)
def test_missing_column_is_named(rules):
    meta, X = _frame()
    with pytest.raises((ValueError, KeyError), match="Metadata_missing"):
        ap(meta, X, rules)


def test_missing_column_in_diffby_is_named():
    meta, X = _frame()
    with pytest.raises((ValueError, KeyError), match="Metadata_missing"):
        ap(meta, X, (["cpd"], [], [], ["cpd", "Metadata_missing"]))


def test_sameby_diffby_overlap_is_named():
    meta, X = _frame()
    with pytest.raises(ValueError, match="plate"):
        ap(meta, X, (["cpd", "plate"], ["plate"], [], ["cpd"]))
    with pytest.raises(ValueError, match="plate"):
        ap(meta, X, (["cpd"], [], ["plate"], {"all": ["cpd"], "any": ["plate", "cpd"]}))


def test_single_column_any_list_is_an_error():
    meta, X = _frame()
    with pytest.raises(ValueError, match="any"):
        ap(meta, X, ({"all": [], "any": ["cpd"]}, [], [], ["cpd"]))


def test_overlapping_positive_and_negative_rules_are_refused():
    meta, X = _frame()
    # same compound -> positive; different plate -> negative: same-compound pairs on
    # different plates are both
    with pytest.raises(ValueError, match=r"(?i)pos") as err:
        ap(meta, X, (["cpd"], [], [], ["plate"]))
    assert "neg" in str(err.value).lower()


def test_no_positive_pairs_at_all():
    meta, X = _frame()
    meta["well"] = np.arange(len(meta))
    with pytest.raises(ValueError, match=r"(?i)positive"):
        ap(meta, X, (["well"], [], [], ["cpd"]))


def test_no_negative_pairs_at_all():
    meta, X = _frame()
    meta["batch"] = 1
    with pytest.raises(ValueError, match=r"(?i)negative"):
        ap(meta, X, (["cpd"], [], [], ["batch"]))


# ------------------------------------------------------------------ options
def test_bad_distance_is_named():
    meta, X = _frame()
    with pytest.raises(ValueError, match="cosinus"):
        ap(meta, X, distance="cosinus")


def test_bad_ties_is_named():
    meta, X = _frame()
    with pytest.raises(ValueError, match="random_order"):
        ap(meta, X, ties="random_order")


# ------------------------------------------------------------- odd but valid
def test_odd_column_names():
    meta, X = _frame()
    odd = meta.rename(columns={"cpd": "my compound (id) #1", "plate": "plate/batch.é"})
    rules = (["my compound (id) #1"], [], ["plate/batch.é"], ["my compound (id) #1"])
    out = ap(odd, X, rules)
    expected = brute_force_ap(odd, X, *rules)
    np.testing.assert_allclose(out["average_precision"], expected["average_precision"], atol=1e-9)
    assert list(out.columns[:2]) == ["my compound (id) #1", "plate/batch.é"]


def test_non_default_index_and_input_untouched():
    meta, X = _frame()
    meta.index = [f"well{k}" for k in range(len(meta))][::-1]
    before_meta, before_X = meta.copy(), X.copy()
    out = ap(meta, X)
    assert isinstance(out.index, pd.RangeIndex)
    pd.testing.assert_frame_equal(meta, before_meta)
    np.testing.assert_array_equal(X, before_X)
    expected = brute_force_ap(meta.reset_index(drop=True), X, *RULES)
    np.testing.assert_allclose(out["average_precision"], expected["average_precision"], atol=1e-9)


def test_integer_features_equal_float_features():
    meta, _ = _frame()
    Xi = np.random.default_rng(3).integers(-5, 6, size=(len(meta), 4))
    a = ap(meta, Xi)
    b = ap(meta, Xi.astype(np.float64))
    pd.testing.assert_frame_equal(a, b)


def test_categorical_and_bool_pairing_columns():
    meta, X = _frame()
    meta["cpd"] = pd.Categorical(meta["cpd"])
    meta["flag"] = meta["plate"] == 1
    rules = (["cpd"], [], ["flag"], ["cpd"])
    out = ap(meta, X, rules)
    expected = brute_force_ap(meta, X, *rules)
    np.testing.assert_allclose(out["average_precision"], expected["average_precision"], atol=1e-9)


# ---------------------------------------------------------- degenerate rows
@pytest.mark.parametrize(
    ("distance", "row"),
    [
        ("cosine", [0.0, 0.0, 0.0, 0.0]),
        ("abs_cosine", [0.0, 0.0, 0.0, 0.0]),
        ("correlation", [2.5, 2.5, 2.5, 2.5]),
    ],
)
def test_degenerate_rows_warn_and_get_zero_similarity(distance, row):
    meta, X = _frame(n=9)
    X[4] = row
    with pytest.warns(Warning) as record:
        out = ap(meta, X, distance=distance)
    assert any("4" in str(w.message) or "1 profile" in str(w.message) for w in record)
    expected = brute_force_ap(meta, X, *RULES, distance=distance)
    assert expected.attrs["degenerate"]
    np.testing.assert_allclose(out["average_precision"], expected["average_precision"], atol=1e-9)
    assert np.isfinite(out["average_precision"]).all()


def test_no_warning_without_degenerate_rows():
    meta, X = _frame()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ap(meta, X, distance="cosine")


# ------------------------------------------------------------------ scan and encoding overlap
@pytest.mark.parametrize("n_jobs", [1, 2])
def test_non_finite_features_are_reported_before_metadata_problems(compiled_engine, n_jobs):
    """The feature scan runs beside the metadata encoding; errors keep their order."""
    meta, X = _frame(n=40)
    X[7, 1] = np.nan
    meta["cpd"] = meta["cpd"].astype(object)
    meta.loc[3, "cpd"] = None
    with pytest.raises(ValueError, match=r"NaN or infinite.*row 7"):
        ap(meta, X, n_jobs=n_jobs)
    X[7, 1] = 0.0
    with pytest.raises(ValueError, match="pairing column 'cpd' has 1 missing"):
        ap(meta, X, n_jobs=n_jobs)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_feature_scan_overlaps_metadata_encoding_only_with_two_threads(
    compiled_engine, monkeypatch, n_jobs
):
    import threading

    from pairmap import engine, features

    seen = {}
    scan, encode = features.FeatureSource.scan, engine.encode_columns

    def spy_scan(self, *a, **k):
        seen.setdefault("scan", threading.current_thread().name)
        return scan(self, *a, **k)

    def spy_encode(*a, **k):
        seen.setdefault("encode", threading.current_thread().name)
        return encode(*a, **k)

    monkeypatch.setattr(features.FeatureSource, "scan", spy_scan)
    monkeypatch.setattr(engine, "encode_columns", spy_encode)
    meta, X = _frame(n=40)
    expected = brute_force_ap(meta, X, *RULES)["average_precision"].to_numpy()
    got = ap(meta, X, n_jobs=n_jobs)["average_precision"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert seen["encode"] == threading.main_thread().name
    if n_jobs == 1:
        assert seen["scan"] == threading.main_thread().name
    else:
        assert seen["scan"].startswith("pairmap-scan")
