"""pairmap.compat.replicating against copairs 0.5.5 copairs.replicating (LINCS plate)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import LINCS_FILE, data_file

from pairmap.compat import replicating as ours

theirs = pytest.importorskip("copairs.replicating", reason="copairs is not installed")

SAME, DIFF = ["Metadata_broad_sample"], ["Metadata_mg_per_ml"]


@pytest.fixture(scope="module")
def lincs():
    df = pd.read_csv(data_file(LINCS_FILE))
    meta_cols = [c for c in df.columns if c.startswith("Metadata_")]
    return df[meta_cols], df.drop(columns=meta_cols).to_numpy()


def _same_frames(a: pd.DataFrame, b: pd.DataFrame):
    assert list(a.index) == list(b.index)
    assert a.index.name == b.index.name
    np.testing.assert_array_equal(a["count"], b["count"])
    np.testing.assert_allclose(a["median"], b["median"], atol=1e-6)  # copairs: float32


@pytest.mark.parametrize("diffby", [[], DIFF])
def test_replicate_correlations_equal_copairs(lincs, diffby):
    meta, X = lincs
    df_o, n_o = ours.corr_between_replicates(X, meta, SAME, diffby)
    df_t, n_t = theirs.corr_between_replicates(X, meta, SAME, diffby, progress_bar=False)
    _same_frames(df_o, df_t)
    assert n_o == n_t


def test_given_pairs_give_copairs_numbers(lincs):
    meta, X = lincs
    rng = np.random.default_rng(0)
    pairs = {
        f"g{g}": [tuple(rng.choice(len(X), 2, replace=False)) for _ in range(g + 1)]
        for g in range(12)
    }
    null_pairs = [tuple(rng.choice(len(X), 2, replace=False)) for _ in range(300)]
    dist_o, n_o = ours.corr_from_pairs(X, pairs, ["grp"])
    dist_t, n_t = theirs.corr_from_pairs(X, pairs, ["grp"], progress_bar=False)
    _same_frames(dist_o, dist_t)
    assert n_o == n_t
    np.testing.assert_allclose(
        ours.corr_from_null_pairs(X, null_pairs, 3),
        theirs.corr_from_null_pairs(X, null_pairs, 3, progress_bar=False),
        atol=1e-6,
    )
    res_o = ours.correlation_test_from_pairs(X, pairs, null_pairs, ["grp"])
    res_t = theirs.correlation_test_from_pairs(X, pairs, null_pairs, ["grp"], progress_bar=False)
    for how in ("left", "right", "both"):
        score_o, *thr_o = res_o.percent_score(how)
        score_t, *thr_t = res_t.percent_score(how)
        assert score_o == score_t
        for a, b in zip(thr_o, thr_t, strict=True):
            assert (a is None and b is None) or a == pytest.approx(b, abs=1e-6)
    assert res_o.wasserstein_distance() == pytest.approx(res_t.wasserstein_distance(), abs=1e-6)
    assert res_o.percent_score_right()[0] == res_t.percent_score_right()[0]
    assert res_o.percent_score_left()[0] == res_t.percent_score_left()[0]


def test_correlation_test_matches_copairs_up_to_the_null_sample(lincs):
    meta, X = lincs
    res_o = ours.correlation_test(X, meta, SAME, DIFF, n_samples=1000)
    res_t = theirs.correlation_test(X, meta, SAME, DIFF, n_samples=1000, progress_bar=False)
    _same_frames(res_o.corr_df, res_t.corr_df)
    assert len(res_o.null_dist) == len(res_t.null_dist) == 1000
    # different random pairs from the same law: thresholds close, scores within a few groups
    assert abs(res_o.percent_score("right")[2] - res_t.percent_score("right")[2]) < 0.03
    assert abs(res_o.percent_score("right")[0] - res_t.percent_score("right")[0]) <= 3 / 56
    with pytest.raises(ValueError, match="Invalid value"):
        res_o.percent_score("middle")
