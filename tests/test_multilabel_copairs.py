"""Differential tests: multi-label AP vs ``copairs.map.multilabel.average_precision`` (0.5.5).

Real data: LINCS consistency by MoA and by target (compound wells, and median
consensus profiles per compound) and nELISA targets after median aggregation
per compound.

AP depends on the ranking only, so when both tools rank a list the same way
their APs agree to rounding (we compare at 1e-9). copairs ranks by the float32
key ``1 - float32(sim)``, which can merge two different float64 similarities
into a tie; every AP that differs by more than 1e-9 must be explained that way
(:func:`explain_float32_tie`): pairmap equals the float64 oracle, copairs the
float32-key oracle, and the two oracles differ.

Rows: copairs leaves out (profile, label) queries without positives, pairmap
keeps them with NaN and zero counts; both are checked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import NELISA_FILE, data_file
from oracles import ap_positives_first, multilabel_list, parse_rule

import pairmap

ROW = "Metadata_row_id"


@pytest.fixture(scope="module")
def copairs_multilabel_ap():
    mod = pytest.importorskip(
        "copairs.map.multilabel", reason="copairs is not installed (pip install copairs)"
    )
    return mod.average_precision


def _rules(label, pos_diffby=()):
    return dict(pos_sameby=[label], pos_diffby=list(pos_diffby), neg_sameby=[], neg_diffby=[label])


def _consensus(meta, X, by, label):
    """Median profile per ``by`` value; the label of its first row."""
    codes, uniques = pd.factorize(meta[by])
    X_med = np.stack([np.median(X[codes == g], axis=0) for g in range(len(uniques))])
    first = meta.groupby(codes, sort=True).head(1).reset_index(drop=True)
    return first[[by, label]], X_med


def _annotated(meta, X, label):
    keep = meta[label].notna().to_numpy()
    meta = pairmap.split_multilabel(meta.loc[keep].reset_index(drop=True), label)
    return meta, X[keep]


def explain_float32_tie(meta, X, rules, label, distance, i, lab, ours_ap, theirs_ap):
    """Assert that (profile i, label lab) differs from copairs only through float32 ties."""
    rest = meta.drop(columns=[label])
    rows = rest.to_dict("records")
    lists = meta[label].tolist()
    pos_rest = parse_rule(rest, [], rules["pos_diffby"])[:4]
    neg_rest = parse_rule(rest, [], [])[:4]
    pos = multilabel_list(X, rows, lists, i, lab, pos_rest, distance)
    neg = multilabel_list(X, rows, lists, i, None, neg_rest, distance)
    exact = ap_positives_first(pos, neg)

    def f32_key(values):
        one = np.float32(1.0)
        return [-float(one - np.float32(v)) for v in values]

    as_copairs = ap_positives_first(f32_key(pos), f32_key(neg))
    ctx = (
        f"{distance}, ({i}, {lab}): pairmap {ours_ap}, copairs {theirs_ap}, float64 oracle "
        f"{exact}, float32-key oracle {as_copairs}"
    )
    assert abs(ours_ap - exact) <= 1e-9, ctx
    assert abs(theirs_ap - as_copairs) <= 1e-6, ctx
    assert abs(exact - as_copairs) > 1e-9, ctx


def compare(copairs_ap, meta, X, label, rules, distance="cosine"):
    meta = meta.reset_index(drop=True).assign(**{ROW: np.arange(len(meta))})
    ours = pairmap.average_precision(
        meta, X, **rules, distance=distance, multilabel_col=label, progress_bar=False
    )
    theirs = copairs_ap(
        meta, X, **rules, multilabel_col=label, distance=distance, progress_bar=False
    )
    key = [ROW, label]
    merged = ours.merge(
        theirs[key + ["average_precision", "n_pos_pairs", "n_total_pairs"]],
        on=key,
        how="left",
        suffixes=("", "_copairs"),
        validate="1:1",
    )
    assert len(theirs) == merged["average_precision_copairs"].notna().sum() >= 10
    in_copairs = merged["average_precision_copairs"].notna().to_numpy()
    # rows copairs leaves out: no positives for that label
    assert (merged.loc[~in_copairs, "n_pos_pairs"] == 0).all()
    assert merged.loc[~in_copairs, "average_precision"].isna().all()
    both = merged[in_copairs]
    assert both["average_precision"].notna().all(), "every copairs row must be scored"
    np.testing.assert_array_equal(both["n_pos_pairs"], both["n_pos_pairs_copairs"])
    np.testing.assert_array_equal(both["n_total_pairs"], both["n_total_pairs_copairs"])
    diff = np.abs(
        both["average_precision"].to_numpy(float)
        - both["average_precision_copairs"].to_numpy(float)
    )
    for idx in np.flatnonzero(diff > 1e-9):
        r = both.iloc[idx]
        explain_float32_tie(
            meta.drop(columns=[ROW]),
            X,
            rules,
            label,
            distance,
            int(r[ROW]),
            r[label],
            r["average_precision"],
            r["average_precision_copairs"],
        )
    assert (diff > 1e-9).sum() <= max(1, 0.01 * len(both)), f"{(diff > 1e-9).sum()} differ"
    return merged


@pytest.fixture(scope="module")
def lincs(lincs_plate):
    return lincs_plate


@pytest.mark.parametrize("label", ["Metadata_moa", "Metadata_target"])
def test_lincs_wells_consistency(copairs_multilabel_ap, lincs, label):
    """Wells: positives share the label and are another compound."""
    meta, X = _annotated(*lincs, label)
    meta = meta[["Metadata_broad_sample", label]]
    compare(copairs_multilabel_ap, meta, X, label, _rules(label, ["Metadata_broad_sample"]))


@pytest.mark.parametrize("distance", ["cosine", "correlation", "euclidean", "manhattan"])
@pytest.mark.parametrize("label", ["Metadata_moa", "Metadata_target"])
def test_lincs_consensus_consistency(copairs_multilabel_ap, lincs, label, distance):
    meta, X = lincs
    meta, X = _consensus(
        meta[meta[label].notna()], X[meta[label].notna().to_numpy()], "Metadata_broad_sample", label
    )
    meta = pairmap.split_multilabel(meta, label)
    compare(copairs_multilabel_ap, meta, X, label, _rules(label), distance)


def test_nelisa_targets_consensus(copairs_multilabel_ap):
    df = pd.read_parquet(data_file(NELISA_FILE))
    label = "Metadata_target_list"
    df = df[df[label].notna()].reset_index(drop=True)
    feats = [c for c in df.columns if not c.startswith("Metadata_")]
    meta, X = _consensus(df, df[feats].to_numpy(np.float64), "Metadata_broad_sample", label)
    meta = pairmap.split_multilabel(meta, label)
    merged = compare(copairs_multilabel_ap, meta, X, label, _rules(label))
    assert merged["average_precision"].notna().sum() > 100


def test_comparison_can_fail(copairs_multilabel_ap, lincs):
    """Sanity: shuffled features on one side are noticed."""
    meta, X = lincs
    meta, X = _consensus(
        meta[meta["Metadata_moa"].notna()],
        X[meta["Metadata_moa"].notna().to_numpy()],
        "Metadata_broad_sample",
        "Metadata_moa",
    )
    meta = pairmap.split_multilabel(meta, "Metadata_moa")
    rules = _rules("Metadata_moa")
    ours = pairmap.average_precision(
        meta, X, **rules, multilabel_col="Metadata_moa", progress_bar=False
    )
    shuffled = X[np.random.default_rng(0).permutation(len(X))]
    theirs = copairs_multilabel_ap(
        meta.assign(**{ROW: np.arange(len(meta))}),
        shuffled,
        **rules,
        multilabel_col="Metadata_moa",
        progress_bar=False,
    )
    assert not np.allclose(
        np.sort(ours["average_precision"].dropna()), np.sort(theirs["average_precision"])
    )
