"""ROC-AUC, precision@k, recall@k and R-precision from average_precision(metrics=...).

Oracles: scikit-learn's ``roc_auc_score`` on random continuous screens
(hypothesis), and pair-by-pair references in ``tests/oracles.py`` (ties counted
1/2 for AUC; top-k by explicit ranking, or by averaging every order of the tied
items for ``ties="expected"``) on screens built to have many ties.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_screen
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles import brute_force_lists, hits_at, roc_auc_from_lists

import pairmap
from pairmap.metrics import parse_metrics

#: the compiled engine's metrics (the NumPy path of small screens equals them bit for bit on
#: the same similarities: tests/test_small_screens.py)
pytestmark = pytest.mark.usefixtures("compiled_engine")

ACTIVITY = dict(
    pos_sameby=["Metadata_broad_sample", "Metadata_Reference_Index"],
    pos_diffby=[],
    neg_sameby=[],
    neg_diffby=["Metadata_broad_sample", "Metadata_Reference_Index"],
)
PER_PLATE = dict(
    pos_sameby=["Metadata_broad_sample"],
    pos_diffby=["Metadata_Plate"],
    neg_sameby=["Metadata_Plate"],
    neg_diffby=["Metadata_broad_sample"],
)
CUTS = (1, 2, 3, 5, 40)
METRICS = ["roc_auc", "precision@R", "recall@R"] + [
    f"{kind}@{c}" for c in CUTS for kind in ("precision", "recall")
]


def _expected(lists, ties):
    """Reference value of every METRICS column for every row (NaN where AP is NaN)."""
    out = {name: np.full(len(lists), np.nan) for name in METRICS}
    for i, (ps, ns) in enumerate(lists):
        if not ps or not ns:
            continue
        k = len(ps)
        out["roc_auc"][i] = roc_auc_from_lists(ps, ns)
        out["precision@R"][i] = out["recall@R"][i] = hits_at(ps, ns, k, ties) / k
        for c in CUTS:
            hits = hits_at(ps, ns, c, ties)
            out[f"precision@{c}"][i] = hits / c
            out[f"recall@{c}"][i] = hits / k
    return out


def _run(meta, feats, rules, **kw):
    return pairmap.average_precision(
        meta, feats, **rules, metrics=METRICS, progress_bar=False, **kw
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    n_plates=st.integers(1, 4),
    n_compounds=st.integers(1, 6),
    n_reps=st.integers(1, 3),
    n_controls=st.integers(1, 5),
    per_plate=st.booleans(),
)
def test_random_screens_match_sklearn_and_brute_force(
    seed, n_plates, n_compounds, n_reps, n_controls, per_plate
):
    from sklearn.metrics import precision_score, recall_score, roc_auc_score

    meta, feats = make_screen(
        seed,
        n_plates=n_plates,
        n_compounds=n_compounds,
        n_reps=n_reps,
        n_controls=n_controls,
        n_features=6,
    )
    rules = PER_PLATE if per_plate else ACTIVITY
    lists = brute_force_lists(meta, feats, **rules)
    if not any(ps and ns for ps, ns in lists):
        return  # no scorable profile: average_precision raises or warns (tested elsewhere)
    res = _run(meta, feats, rules)
    expected = _expected(lists, "positives_first")
    for i, (ps, ns) in enumerate(lists):
        if ps and ns:
            truth = np.r_[np.ones(len(ps)), np.zeros(len(ns))]
            scores = np.r_[ps, ns]
            sk = roc_auc_score(truth, scores)
            assert res["roc_auc"][i] == pytest.approx(sk, abs=1e-12)
            rank = np.argsort(np.argsort(-scores, kind="stable"), kind="stable")
            for c in CUTS:  # top-c as the predicted positives (no ties here)
                if c <= len(scores):
                    predicted = rank < c
                    assert res[f"precision@{c}"][i] == pytest.approx(
                        precision_score(truth, predicted), abs=1e-12
                    )
                    assert res[f"recall@{c}"][i] == pytest.approx(
                        recall_score(truth, predicted), abs=1e-12
                    )
    for name in METRICS:
        np.testing.assert_allclose(res[name], expected[name], atol=1e-12, err_msg=name)
    # continuous similarities have no ties: the tie rule cannot matter
    res_e = _run(meta, feats, rules, ties="expected")
    for name in METRICS:
        np.testing.assert_allclose(res_e[name], res[name], atol=1e-12, err_msg=name)


def _tied_screen(seed):
    """Profiles on a 3-level grid in 3 dimensions: many exactly tied similarities."""
    meta, _ = make_screen(seed, n_plates=2, n_compounds=4, n_reps=2, n_controls=4, n_features=3)
    rng = np.random.default_rng(seed)
    feats = rng.integers(0, 3, size=(len(meta), 3)).astype(np.float64)
    feats[feats.sum(axis=1) == 0, 0] = 1.0  # no zero rows (cosine undefined)
    return meta, feats


TIED = pytest.mark.filterwarnings("ignore:.*similarities tie:RuntimeWarning")  # on purpose


@TIED
@pytest.mark.parametrize("ties", ["positives_first", "expected"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_tied_similarities_follow_the_tie_rule(seed, ties):
    meta, feats = _tied_screen(seed)
    lists = brute_force_lists(meta, feats, **ACTIVITY)
    res = _run(meta, feats, ACTIVITY, ties=ties)
    expected = _expected(lists, ties)
    n_tied = sum(len(set(ps) & set(ns)) > 0 for ps, ns in lists)
    assert n_tied > 5  # the screen really has positive/negative ties
    for name in METRICS:
        np.testing.assert_allclose(res[name], expected[name], atol=1e-12, err_msg=name)


@TIED
def test_ties_rules_differ_where_ties_straddle_the_cut():
    meta, feats = _tied_screen(0)
    first = _run(meta, feats, ACTIVITY)
    expected = _run(meta, feats, ACTIVITY, ties="expected")
    scored = first["precision@1"].notna()
    a, b = first["precision@1"][scored], expected["precision@1"][scored]
    assert ((a - b).abs() > 0).any()
    assert (a >= b - 1e-15).all()  # positives first can only gain
    np.testing.assert_array_equal(first["roc_auc"], expected["roc_auc"])  # 1/2 either way


def test_metrics_leave_ap_unchanged_and_do_not_depend_on_blocks_or_threads():
    meta, feats = make_screen(3, n_plates=3, n_compounds=10, n_reps=3, n_controls=6)
    plain = pairmap.average_precision(meta, feats, **PER_PLATE, progress_bar=False)
    full = _run(meta, feats, PER_PLATE)
    pd.testing.assert_frame_equal(full[plain.columns], plain)
    small = _run(meta, feats, PER_PLATE, batch_size=3, n_jobs=2, max_memory=1 << 22)
    pd.testing.assert_frame_equal(small, full)


def test_callable_distance_path_gives_the_same_metrics():
    meta, feats = make_screen(4, n_plates=2, n_compounds=5, n_reps=2, n_controls=4)

    def cosine(a, b):
        return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    built_in = _run(meta, feats, ACTIVITY)
    custom = _run(meta, feats, ACTIVITY, distance=cosine)
    for name in METRICS:
        np.testing.assert_allclose(custom[name], built_in[name], atol=1e-9, err_msg=name)


def test_known_values_on_a_hand_made_list():
    # query 0: positive 1 ranks 2nd behind negative 3; negative 2 ranks last
    meta = pd.DataFrame({"g": ["a", "a", "c1", "c2"]})
    feats = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.9, 0.1]])
    res = pairmap.average_precision(
        meta,
        feats,
        ["g"],
        [],
        [],
        ["g"],
        progress_bar=False,
        metrics=["roc_auc", "precision@1", "precision@2", "recall@1", "precision@R", "precision@5"],
    )
    row = res.iloc[0]
    assert row["roc_auc"] == 0.5  # one of the two negatives is below the positive
    assert row["precision@1"] == 0.0
    assert row["precision@2"] == 0.5
    assert row["recall@1"] == 0.0
    assert row["precision@R"] == 0.0
    assert row["precision@5"] == pytest.approx(1 / 5)  # divided by K even past the list end
    assert np.isnan(res["roc_auc"][2])  # controls have no positives


@pytest.mark.parametrize(
    ("metrics", "error", "match"),
    [
        (["auc"], ValueError, "unknown metric 'auc'"),
        (["precision@0"], ValueError, "at least 1"),
        (["precision@k"], ValueError, "positive integer or 'R'"),
        (["roc_auc", "roc_auc"], ValueError, "more than once"),
        ([10], TypeError, "must be strings"),
        (5, TypeError, "list of metric names"),
    ],
)
def test_bad_metric_names_are_rejected_with_the_culprit(metrics, error, match):
    with pytest.raises(error, match=match):
        parse_metrics(metrics)
    meta, feats = make_screen(0)
    with pytest.raises(error, match=match):
        pairmap.average_precision(meta, feats, **ACTIVITY, metrics=metrics, progress_bar=False)


def test_single_name_string_is_accepted():
    assert parse_metrics("recall@R").names == ("recall@R",)


def test_multilabel_queries_get_the_same_metrics_as_single_labels():
    meta, feats = make_screen(6, n_plates=2, n_compounds=5, n_reps=2, n_controls=3)
    meta["label"] = meta["Metadata_broad_sample"]
    meta["labels"] = [[v] for v in meta["label"]]
    single = pairmap.average_precision(
        meta, feats, ["label"], [], [], ["label"], metrics=METRICS, progress_bar=False
    )
    multi = pairmap.average_precision(
        meta,
        feats,
        ["labels"],
        [],
        [],
        ["labels"],
        multilabel_col="labels",
        metrics=METRICS,
        progress_bar=False,
    )
    assert len(multi) == len(single)
    for name in METRICS:
        np.testing.assert_allclose(multi[name], single[name], atol=1e-12, err_msg=name)
