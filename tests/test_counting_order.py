"""Counting-sort orders and ranks equal NumPy's comparison sorts (oracles: np.lexsort, np.unique)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pairmap import _retrieval
from pairmap._kernels.order import lex_order, lex_ranks
from pairmap.pairing import EncodedRule, group_keys


def _levels(draw_sizes, n, seed):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, k, size=n) for k in draw_sizes]).astype(np.int64)


def _screens(min_levels, min_rows):
    """(sizes, levels): 1-4 levels of random codes below each size, for min_rows..300 rows."""
    return st.builds(
        lambda sizes, n, seed: (sizes, _levels(sizes, n, seed)),
        st.lists(st.integers(1, 40), min_size=min_levels, max_size=4),
        st.integers(min_rows, 300),
        st.integers(0, 2**32 - 1),
    )


@settings(max_examples=60, deadline=None)
@given(screen=_screens(1, 0))
def test_lex_order_and_ranks_equal_numpy(screen):
    sizes, levels = screen
    n = levels.shape[1]
    n_keys = np.array(sizes, dtype=np.int64)
    np.testing.assert_array_equal(lex_order(levels, n_keys), np.lexsort(levels[::-1]))
    packed = np.zeros(n, dtype=np.int64)
    for level, k in zip(levels, sizes, strict=True):
        packed = packed * k + level
    expected = np.unique(packed, return_inverse=True)[1].reshape(-1)
    np.testing.assert_array_equal(lex_ranks(levels, n_keys), expected)


@settings(max_examples=40, deadline=None)
@given(screen=_screens(2, 1), seed=st.integers(0, 2**32 - 1))
def test_group_keys_by_counting_equal_pairing_group_keys(screen, seed):
    sizes, levels = screen
    codes = levels.T.copy()
    rng = np.random.default_rng(seed)
    for _ in range(3):
        cols = rng.permutation(len(sizes))[: rng.integers(0, len(sizes) + 1)].astype(np.int64)
        np.testing.assert_array_equal(_retrieval._group_keys(codes, cols), group_keys(codes, cols))


@pytest.mark.parametrize("seed", range(5))
def test_rule_plan_and_query_order_match_comparison_sorts(seed):
    """Buckets, signatures and the query order equal their np.argsort/np.lexsort definitions."""
    rng = np.random.default_rng(seed)
    n = 3000
    codes = np.stack(
        [rng.integers(0, 7, n), rng.integers(0, 400, n), rng.integers(0, 3, n)], axis=1
    ).astype(np.int64)
    pos_rule = EncodedRule(np.array([1]), np.array([], int), np.array([], int), np.array([], int))
    neg_rule = EncodedRule(np.array([0]), np.array([], int), np.array([1, 2]), np.array([], int))
    pos = _retrieval.RulePlan.build(codes, pos_rule)
    neg = _retrieval.RulePlan.build(codes, neg_rule)
    for plan, rule in ((pos, pos_rule), (neg, neg_rule)):
        keys = group_keys(codes, rule.all_same)
        np.testing.assert_array_equal(plan.buckets.keys, keys)
        np.testing.assert_array_equal(plan.buckets.order, np.argsort(keys, kind="stable"))
    assert (neg.signature[:, 1] >= 0).all() and (neg.signature[:, 0] == -1).all()
    candidates = np.flatnonzero((pos.bucket_size > 1) & (neg.bucket_size > 1))
    sort_keys = [candidates, pos.buckets.keys[candidates]]
    sort_keys += [neg.signature[candidates, a] for a in range(2)][::-1]
    sort_keys += [neg.buckets.keys[candidates]]
    np.testing.assert_array_equal(
        _retrieval._query_order(pos, neg), candidates[np.lexsort(sort_keys)]
    )
