"""Block plans cut between negative buckets (plates), where few replicate groups are split.

Oracles: a brute-force count of the positive buckets each cut splits, and a
block-by-block search over all allowed cuts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_screen
from hypothesis import given, settings
from hypothesis import strategies as st

import pairmap
from pairmap import _retrieval, similarity
from pairmap._small import compiled_only
from pairmap.pairing import EncodedRule

_NONE = np.array([], dtype=np.int64)


def _plans(codes):
    """Per-plate negatives (column 0), replicates = same compound (column 1)."""
    pos = _retrieval.RulePlan.build(codes, EncodedRule(np.array([1]), _NONE, _NONE, _NONE))
    neg = _retrieval.RulePlan.build(codes, EncodedRule(np.array([0]), _NONE, _NONE, _NONE))
    return pos, neg


def _edges_brute_force(pos, neg, queries):
    """For every position where the negative bucket changes: the small positive buckets
    (2 <= size < DENSE_MIN_BUCKET, all rows in the query order's buckets) split there."""
    keys = neg.buckets.keys[queries]
    order_of_bucket = {}
    for k in keys:
        order_of_bucket.setdefault(int(k), len(order_of_bucket))
    edges, costs = [], []
    for p in range(1, len(queries)):
        if keys[p] == keys[p - 1]:
            continue
        cut = order_of_bucket[int(keys[p])]  # buckets before the cut have smaller indices
        split = 0
        for b in np.unique(pos.buckets.keys):
            rows = np.flatnonzero(pos.buckets.keys == b)
            if not 2 <= len(rows) < _retrieval.DENSE_MIN_BUCKET:
                continue
            where = [order_of_bucket.get(int(neg.buckets.keys[r]), -1) for r in rows]
            if min(where) < 0:
                continue
            split += min(where) < cut <= max(where)
        edges.append(p)
        costs.append(split)
    return edges, costs


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 7),
    st.integers(1, 40),
    st.integers(20, 150),
    st.integers(0, 2**31 - 1),
)
def test_cut_costs_equal_a_brute_force_count(n_plates, n_compounds, n, seed):
    rng = np.random.default_rng(seed)
    codes = np.stack([rng.integers(0, n_plates, n), rng.integers(0, n_compounds, n)], axis=1)
    pos, neg = _plans(codes.astype(np.int64))
    queries = _retrieval._query_order(pos, neg)
    got = _retrieval._bucket_edges(pos, neg, queries)
    edges, costs = _edges_brute_force(pos, neg, queries)
    if not edges:
        assert got is None
        return
    np.testing.assert_array_equal(got[0], edges)
    np.testing.assert_array_equal(got[1], costs)


def _bounds_brute_force(est, budget, batch_size, workers, edges):
    """Block by block: the cheapest allowed edge, nearest the nominal cut (else the nominal).

    ``edges=None``: always the nominal cut (no preferred cuts, not even the end)."""
    n = len(est)
    per = batch_size or int(
        min(
            _retrieval.DEFAULT_BLOCK_QUERIES,
            max(_retrieval.MIN_BLOCK_QUERIES, -(-n // (4 * workers))),
        )
    )
    longest = per if batch_size else 2 * per
    at, cost = ([], []) if edges is None else ([*edges[0], n], [*edges[1], 0])
    bounds = [0]
    while bounds[-1] < n:
        start = bounds[-1]
        fits = start + 1
        while fits < n and sum(est[start : fits + 1]) <= budget:
            fits += 1
        nominal = min(fits, start + per)
        allowed = [
            (c, abs(e - nominal), e)
            for e, c in zip(at, cost, strict=True)
            if start + max(1, per // 2) <= e <= min(fits, start + longest)
        ]
        bounds.append(min(allowed)[2] if allowed else nominal)
    return bounds


@settings(max_examples=80, deadline=None)
@given(
    st.integers(300, 1500),
    st.sampled_from([None, 300, 500]),
    st.integers(0, 2**31 - 1),
)
def test_block_bounds_take_the_cheapest_allowed_cut(n, batch_size, seed):
    rng = np.random.default_rng(seed)
    est = rng.integers(64, 200, n)
    budget = int(rng.integers(200, 400) * 64 * 8)
    at = np.unique(rng.integers(1, n, rng.integers(0, n // 20 + 1)))
    cost = rng.integers(0, 4, len(at))
    got = _retrieval.block_bounds(est, budget, batch_size, 1, (at, cost))
    assert got == _bounds_brute_force(est.tolist(), budget, batch_size, 1, (at, cost))
    sizes = np.diff(got)
    assert got[0] == 0 and got[-1] == n and (sizes > 0).all()
    if batch_size:
        assert sizes.max() <= batch_size
    # without preferred cuts: the plan of old (nominal cuts)
    plain = _retrieval.block_bounds(est, budget, batch_size, 1)
    assert plain == _bounds_brute_force(est.tolist(), budget, batch_size, 1, None)


def _grouped_screen(n_groups=4, plates_per_group=4, seed=0):
    """Replicates of each compound on the plates of its own group (orf72k's layout)."""
    parts = []
    for g in range(n_groups):
        m, x = make_screen(
            seed + g,
            n_plates=plates_per_group,
            n_compounds=40,
            n_reps=4,
            n_controls=6,
            n_features=7,
        )
        m["Metadata_Plate"] = f"G{g}" + m["Metadata_Plate"].astype(str)
        treated = m["Metadata_broad_sample"] != "DMSO"
        m.loc[treated, "Metadata_broad_sample"] += f"_g{g}"
        parts.append((m, x.astype(np.float32)))
    meta = pd.concat([m for m, _ in parts], ignore_index=True)
    return meta, np.concatenate([x for _, x in parts])


PER_PLATE = dict(
    pos_sameby=["Metadata_broad_sample"],
    pos_diffby=["Metadata_Plate"],
    neg_sameby=["Metadata_Plate"],
    neg_diffby=["Metadata_broad_sample"],
)


def test_blocks_end_between_replicate_groups_and_hold_their_positives(monkeypatch):
    """Plates of a group share compounds: blocks end only between groups, so with Fortran
    input every treated query's replicates are in its block's copy, not in the pre-pass."""
    meta, X = _grouped_screen()
    plate_of = meta["Metadata_Plate"].to_numpy()
    with compiled_only():
        expected = pairmap.average_precision(meta, X, **PER_PLATE, progress_bar=False)
    plans, prepass = [], []
    original, run_prepass = _retrieval.block_bounds, _retrieval._positives_prepass
    monkeypatch.setattr(
        _retrieval, "block_bounds", lambda *a: plans.append(original(*a)) or plans[-1]
    )
    monkeypatch.setattr(
        _retrieval, "_positives_prepass", lambda *a: prepass.append(run_prepass(*a)) or None
    )
    monkeypatch.setattr(similarity, "COPY_BELOW", 0)
    queries = []
    monkeypatch.setattr(
        _retrieval,
        "_query_order",
        lambda *a, f=_retrieval._query_order: queries.append(f(*a)) or queries[-1],
    )
    with compiled_only():
        got = pairmap.average_precision(
            meta, np.asfortranarray(X), **PER_PLATE, batch_size=700, progress_bar=False
        )
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    bounds, order = plans[-1], queries[-1]
    assert len(bounds) - 1 >= 2
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        groups = {p[:2] for p in plate_of[order[a:b]]}
        assert len(groups) == 1, f"block {a}:{b} mixes groups {groups}"
    # every compound's replicates lie in one block's copy: the pre-pass is left with the
    # controls only (their positives, the other plates' controls, span every group)
    (known,) = prepass
    in_prepass = np.flatnonzero(known.slot_of >= 0)
    controls = np.flatnonzero(meta["Metadata_broad_sample"].to_numpy() == "DMSO")
    np.testing.assert_array_equal(in_prepass, controls)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_plans_with_preferred_cuts_match_for_every_layout(n_jobs):
    """C order, Fortran order and a DataFrame give identical tables with the new cuts."""
    meta, X = _grouped_screen(seed=3)
    with compiled_only():
        tables = [
            pairmap.average_precision(
                meta, feats, **PER_PLATE, batch_size=500, n_jobs=n_jobs, progress_bar=False
            )
            for feats in (X, np.asfortranarray(X), pd.DataFrame(X))
        ]
    for table in tables[1:]:
        pd.testing.assert_frame_equal(table, tables[0], check_exact=True)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=0, max_size=200))
def test_prepass_order_groups_buckets_by_first_use(key_list):
    """Buckets in the order the query order first reaches them; rows in query order within."""
    keys = np.asarray(key_list, dtype=np.int64)
    rows = np.arange(100, 100 + len(keys), dtype=np.int64)  # stand-ins for row numbers
    got = _retrieval._by_first_use(rows, keys, 13)
    firsts = list(dict.fromkeys(key_list))
    expected = [100 + i for k in firsts for i, key in enumerate(key_list) if key == k]
    assert got.tolist() == expected


def test_dense_group_queries_are_copied_from_their_gathered_plate(monkeypatch):
    """Per-plate negatives: a plate's queries are taken from the plate's gathered rows
    (not read again from the matrix), with identical results."""
    rng = np.random.default_rng(0)
    Xc = rng.normal(size=(6, 3))
    cols = np.array([2, 5, 7, 11, 12, 20])
    np.testing.assert_array_equal(
        _retrieval._rows_of(Xc, cols, np.array([20, 5, 5])), Xc[[5, 1, 1]]
    )
    assert _retrieval._rows_of(Xc, cols, np.array([5, 6])) is None  # 6 is not gathered
    assert _retrieval._rows_of(Xc, cols, np.array([21])) is None
    assert _retrieval._rows_of(Xc[:0], cols[:0], np.array([1])) is None

    meta, X = _grouped_screen(n_groups=2, seed=5)
    rows_of = _retrieval._rows_of
    monkeypatch.setattr(_retrieval, "_rows_of", lambda *a: None)  # always read the matrix
    with compiled_only():
        expected = pairmap.average_precision(meta, X, **PER_PLATE, progress_bar=False)
    found = []
    monkeypatch.setattr(
        _retrieval, "_rows_of", lambda *a: found.append(rows_of(*a) is not None) or rows_of(*a)
    )
    with compiled_only():
        got = pairmap.average_precision(meta, X, **PER_PLATE, progress_bar=False)
    assert found and all(found)  # plates of 166 rows: dense groups, queries found in them
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
