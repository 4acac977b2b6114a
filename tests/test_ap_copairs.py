"""Differential tests: pairmap.average_precision vs copairs.map.average_precision.

copairs stores similarities in float32 (and ranks by ``1 - sim`` in float32),
pairmap in float64, so AP agrees to ~1e-7 unless float32 rounding merges two
similarities into a tie that float64 keeps apart; we compare at 1e-6.

copairs differs by design on degenerate profiles: it gives AP 1 to a profile
with positives but no negatives and counts the negatives of a profile without
positives, where pairmap reports NaN and zero counts. Only profiles with both
positives and negatives are compared; for the others we check pairmap's NaN and
zero counts against copairs' counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_screen
from oracles import METRICS, ap_positives_first, pair_satisfies, parse_rule, similarity

import pairmap

ACTIVITY_RULES = dict(
    pos_sameby=["Metadata_broad_sample", "Metadata_Reference_Index"],
    pos_diffby=[],
    neg_sameby=[],
    neg_diffby=["Metadata_broad_sample", "Metadata_Reference_Index"],
)


def compare_with_copairs(copairs_ap, meta, X, rules, distance, atol=1e-6):
    ours = pairmap.average_precision(meta, X, **rules, distance=distance, progress_bar=False)
    theirs = copairs_ap(meta, X, **rules, distance=distance, progress_bar=False)
    theirs = theirs.reset_index(drop=True)
    assert len(ours) == len(theirs) == len(meta)

    t_pos = theirs["n_pos_pairs"].to_numpy()
    t_tot = theirs["n_total_pairs"].to_numpy()
    both = (t_pos > 0) & (t_tot > t_pos)
    assert both.sum() > 0, "the setup must give some profiles with positives and negatives"

    # profiles with positives and negatives: same counts, same AP
    np.testing.assert_array_equal(ours["n_pos_pairs"].to_numpy()[both], t_pos[both])
    np.testing.assert_array_equal(ours["n_total_pairs"].to_numpy()[both], t_tot[both])
    ap_ours = ours["average_precision"].to_numpy(dtype=float)[both]
    ap_theirs = theirs["average_precision"].to_numpy(dtype=float)[both]
    rows = np.flatnonzero(both)
    differ = np.abs(ap_ours - ap_theirs) > atol
    # Every disagreement must be explained by copairs' float32 ranking keys (see
    # explain_float32_tie); and such ties must stay rare.
    for i in rows[differ]:
        explain_float32_tie(meta, X, rules, distance, int(i), ours, theirs)
    assert differ.sum() <= max(1, 0.01 * both.sum()), (
        f"{distance}: {differ.sum()} of {both.sum()} profiles differ from copairs"
    )
    np.testing.assert_allclose(
        ours["normalized_average_precision"].to_numpy(dtype=float)[rows[~differ]],
        theirs["normalized_average_precision"].to_numpy(dtype=float)[rows[~differ]],
        rtol=0,
        atol=atol,
    )
    # the rest: NaN and zero counts in pairmap
    assert ours.loc[~both, "average_precision"].isna().all()
    assert ours.loc[~both, "normalized_average_precision"].isna().all()
    assert (ours.loc[~both, "n_pos_pairs"] == 0).all()
    assert (ours.loc[~both, "n_total_pairs"] == 0).all()
    return ours


def explain_float32_tie(meta, X, rules, distance, i, ours, theirs):
    """Assert that profile ``i``'s AP differs from copairs only through float32 ties.

    copairs ranks by the float32 key ``1 - float32(sim)`` (positives first among
    equal keys); two similarities that differ in float64 can share that key. We
    recompute query ``i`` both ways from float64 similarities: pairmap must equal
    the exact float64 ranking and copairs the float32-key ranking, and the two
    rankings must really differ (some positive/negative pair shares a key).
    """
    m = meta.reset_index(drop=True)
    pos_rule = parse_rule(m, rules["pos_sameby"], rules["pos_diffby"])[:4]
    neg_rule = parse_rule(m, rules["neg_sameby"], rules["neg_diffby"])[:4]
    records = m.to_dict("records")
    pos, neg = [], []
    for j in range(len(m)):
        if j != i and pair_satisfies(records, i, j, *pos_rule):
            pos.append(similarity(X[i], X[j], distance)[0])
        elif j != i and pair_satisfies(records, i, j, *neg_rule):
            neg.append(similarity(X[i], X[j], distance)[0])
    exact = ap_positives_first(pos, neg)

    def f32_key(values):
        one = np.float32(1.0)
        return [-float(one - np.float32(v)) for v in values]  # larger = ranked first

    as_copairs = ap_positives_first(f32_key(pos), f32_key(neg))
    ctx = f"{distance}, profile {i}: pairmap {ours['average_precision'][i]}, copairs "
    ctx += (
        f"{theirs['average_precision'][i]}, float64 oracle {exact}, float32-key oracle {as_copairs}"
    )
    assert abs(ours["average_precision"][i] - exact) <= 1e-9, ctx
    assert abs(theirs["average_precision"][i] - as_copairs) <= 1e-6, ctx
    assert abs(exact - as_copairs) > 1e-6, ctx


@pytest.fixture(scope="module")
def lincs_activity(lincs_plate):
    meta, X = lincs_plate
    meta = pairmap.assign_reference_index(meta, "Metadata_broad_sample == 'DMSO'")
    return meta, X


@pytest.mark.parametrize("distance", METRICS)
def test_lincs_activity_matches_copairs(copairs_ap, lincs_activity, distance):
    meta, X = lincs_activity
    ours = compare_with_copairs(copairs_ap, meta, X, ACTIVITY_RULES, distance)
    dmso = (meta["Metadata_broad_sample"] == "DMSO").to_numpy()
    assert ours.loc[dmso, "average_precision"].isna().all()
    assert ours.loc[~dmso, "average_precision"].notna().all()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("distance", METRICS)
def test_synthetic_activity_per_plate_matches_copairs(copairs_ap, seed, distance):
    meta, X = make_screen(seed, n_plates=3, n_compounds=10, n_reps=2, n_controls=6, effect=0.7)
    rules = dict(ACTIVITY_RULES, neg_sameby=["Metadata_Plate"])
    compare_with_copairs(copairs_ap, meta, X, rules, distance)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("distance", ["cosine", "euclidean"])
def test_synthetic_consistency_across_plates_matches_copairs(copairs_ap, seed, distance):
    """Replicates on other plates are positives; other compounds on the same plate negatives."""
    meta, X = make_screen(seed + 10, n_plates=3, n_compounds=8, n_reps=2, n_controls=3)
    rules = dict(
        pos_sameby=["Metadata_broad_sample"],
        pos_diffby=["Metadata_Plate"],
        neg_sameby=["Metadata_Plate"],
        neg_diffby=["Metadata_broad_sample"],
    )
    compare_with_copairs(copairs_ap, meta, X, rules, distance)


def test_float32_features_give_copairs_answer_too(copairs_ap):
    meta, X = make_screen(5, n_plates=2, n_compounds=8, n_reps=3, n_controls=4)
    X32 = X.astype(np.float32)
    ours = pairmap.average_precision(meta, X32, **ACTIVITY_RULES, progress_bar=False)
    theirs = copairs_ap(meta, X32, **ACTIVITY_RULES, progress_bar=False)
    ok = ours["average_precision"].notna().to_numpy()
    np.testing.assert_allclose(
        ours.loc[ok, "average_precision"], theirs.loc[ok, "average_precision"], atol=1e-5
    )


def test_differential_test_can_fail(copairs_ap):
    """Sanity: the comparison notices a real difference (shuffled features)."""
    meta, X = make_screen(1, n_plates=2, n_compounds=8, n_reps=3, n_controls=4)
    shuffled = X[np.random.default_rng(0).permutation(len(X))]
    ours = pairmap.average_precision(meta, X, **ACTIVITY_RULES, progress_bar=False)
    theirs = copairs_ap(meta, shuffled, **ACTIVITY_RULES, progress_bar=False)
    ok = ours["average_precision"].notna().to_numpy()
    assert not np.allclose(
        ours.loc[ok, "average_precision"].to_numpy(dtype=float),
        pd.to_numeric(theirs.loc[ok, "average_precision"]).to_numpy(dtype=float),
        atol=1e-6,
    )
