"""Benjamini-Hochberg and hierarchical FDR against scipy/brute-force oracles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import false_discovery_control

from pairmap.fdr import benjamini_hochberg, hierarchical_fdr

pvals = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=1, max_size=60)


@given(pvals)
@settings(max_examples=200, deadline=None)
def test_bh_matches_scipy(p):
    np.testing.assert_allclose(benjamini_hochberg(p), false_discovery_control(p), rtol=1e-12)


@given(pvals)
@settings(max_examples=100, deadline=None)
def test_bh_monotone_capped_and_above_raw(p):
    q = benjamini_hochberg(p)
    p = np.asarray(p)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(q[order]) >= 0)
    assert np.all(q <= 1.0) and np.all(q >= p)


def test_bh_nan_aware():
    p = np.array([0.01, np.nan, 0.04, 0.03, np.nan])
    q = benjamini_hochberg(p)
    assert np.isnan(q[[1, 4]]).all()
    np.testing.assert_allclose(q[[0, 2, 3]], false_discovery_control([0.01, 0.04, 0.03]))
    assert np.isnan(benjamini_hochberg([np.nan, np.nan])).all()
    assert benjamini_hochberg([]).shape == (0,)


@pytest.mark.parametrize("bad", [[-0.1, 0.5], [0.2, 1.5], [[0.1, 0.2]]])
def test_bh_rejects_invalid(bad):
    with pytest.raises(ValueError, match="p_values"):
        benjamini_hochberg(bad)


def _hier_oracle(p, groups, alpha):
    """Direct transcription of the two-stage procedure, group by group."""
    p = np.asarray(p, float)
    groups = np.asarray(groups)
    labels = sorted(set(groups.tolist()))
    mins = {g: np.nanmin(p[groups == g]) for g in labels}
    q1 = dict(zip(labels, false_discovery_control([mins[g] for g in labels]), strict=True))
    corrected = np.ones_like(p)
    for g in labels:
        idx = np.flatnonzero(groups == g)
        if q1[g] <= alpha:
            corrected[idx] = false_discovery_control(p[idx]) if idx.size > 1 else p[idx]
    return corrected, np.array([mins[g] for g in groups]), np.array([q1[g] for g in groups])


@given(
    st.lists(
        st.tuples(st.floats(0.0, 1.0, allow_nan=False), st.integers(0, 6)), min_size=1, max_size=40
    ),
    st.sampled_from([0.05, 0.1, 0.5]),
)
@settings(max_examples=150, deadline=None)
def test_hierarchical_matches_oracle(rows, alpha):
    p = [r[0] for r in rows]
    g = [r[1] for r in rows]
    out = hierarchical_fdr(p, g, alpha=alpha)
    corrected, s1, q1 = _hier_oracle(p, g, alpha)
    np.testing.assert_allclose(out["corrected_p_value"], corrected, rtol=1e-12)
    np.testing.assert_array_equal(out["stage1_p_value"], s1)
    np.testing.assert_allclose(out["stage1_corrected_p_value"], q1, rtol=1e-12)
    np.testing.assert_array_equal(out["stage1_significant"], q1 <= alpha)


def test_hierarchical_nan_and_failing_groups():
    p = [0.001, np.nan, 0.9, 0.8, np.nan]
    g = ["a", "a", "b", "b", "c"]
    out = hierarchical_fdr(p, g, alpha=0.05)
    assert out["stage1_significant"].tolist() == [True, True, False, False, False]
    np.testing.assert_array_equal(out["corrected_p_value"][[0, 2, 3]], [0.001, 1.0, 1.0])
    assert np.isnan(out["corrected_p_value"][[1, 4]]).all()
    assert np.isnan(out["stage1_p_value"][4]) and np.isnan(out["stage1_corrected_p_value"][4])


def test_hierarchical_validates():
    with pytest.raises(ValueError, match="groups"):
        hierarchical_fdr([0.1, 0.2], ["a"])
    with pytest.raises(ValueError, match="alpha"):
        hierarchical_fdr([0.1], ["a"], alpha=0.0)


def test_hierarchical_fdr_accepts_mixed_label_types():
    from pairmap.fdr import hierarchical_fdr

    p = np.array([0.001, 0.2, 0.03, 0.5, 0.04])
    mixed = hierarchical_fdr(p, np.array(["a", None, "a", 3, None], dtype=object))
    coded = hierarchical_fdr(p, np.array([0, 1, 0, 2, 1]))
    for key in coded:
        np.testing.assert_array_equal(mixed[key], coded[key])
