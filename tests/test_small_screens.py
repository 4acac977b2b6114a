"""The NumPy path for small screens (``pairmap._small``) against the compiled kernels.

Differential oracles, exact to the bit:

* AP, counts and every ``metrics=`` column of the NumPy path equal the compiled
  engine's when the engine is handed the very same similarities (a lookup
  callable into the small path's matrix), for random screens with frequent ties,
  every rule shape and both tie rules;
* the permutation null's NumPy backend equals the compiled backend on the same
  context: statistics, p-values, fallbacks and whole null arrays;
* the NumPy relabeling streams equal the kernels' draws.

Plus: the similarity matrix against per-pair float64 formulas, dispatch by size
and distance, and a fresh process that scores a plate without importing numba.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pairmap
from pairmap import _codes as C
from pairmap import _small
from pairmap._small.similarity import similarity_matrix
from pairmap._small.streams import all_relabelings, relabelings
from pairmap.permutation import PermutationTester, choose_backend, context_of, permutation_pvalues

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
METRIC_NAMES = ["roc_auc", "precision@1", "precision@3", "precision@R", "recall@2", "recall@R"]
SCORE_COLUMNS = ["average_precision", "n_pos_pairs", "n_total_pairs", *METRIC_NAMES]


def _screen(seed: int, n: int, discrete: bool, n_plates: int):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 9))
    if discrete:  # small integers: many exact ties between similarities
        X = rng.integers(-2, 3, (n, d)).astype(np.float64)
        X[:, 0] += 3.0  # no zero rows
    else:
        X = rng.standard_normal((n, d))
    n_ctl = max(2, n // 4)
    cpd = np.concatenate([np.full(n_ctl, "ctl"), rng.integers(0, n // 3, n - n_ctl).astype(str)])
    rng.shuffle(cpd)
    meta = pd.DataFrame(
        {"cpd": cpd, "plate": rng.integers(0, n_plates, n), "well": rng.integers(0, 4, n)}
    )
    return pairmap.assign_reference_index(meta, "cpd == 'ctl'"), X


RULES = [
    # phenotypic activity: replicates against controls
    (["cpd", "Metadata_Reference_Index"], [], [], ["cpd", "Metadata_Reference_Index"]),
    # the same within plates
    (["cpd", "Metadata_Reference_Index"], [], "plate", ["cpd", "Metadata_Reference_Index"]),
    # consistency-like: every other compound is a negative
    ("cpd", [], [], "cpd"),
    # an "any" rule: replicates in another plate or well
    ("cpd", {"all": [], "any": ["plate", "well"]}, [], "cpd"),
]


def _lookup(S):
    """A similarity callable returning the small path's own values (rows are indices)."""

    def similarity(A, B):
        return S[A[:, 0].astype(np.int64), B[:, 0].astype(np.int64)]

    return similarity


@SETTINGS
@given(
    seed=st.integers(0, 10**6),
    n=st.integers(8, 120),
    discrete=st.booleans(),
    rule=st.sampled_from(RULES),
    distance=st.sampled_from(_small.DISTANCES),
    ties=st.sampled_from(["positives_first", "expected"]),
)
def test_ap_and_metrics_equal_the_compiled_engine_on_the_same_similarities(
    seed, n, discrete, rule, distance, ties
):
    meta, X = _screen(seed, n, discrete, n_plates=2)
    kw = dict(ties=ties, metrics=METRIC_NAMES, progress_bar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            small = pairmap.average_precision(meta, X, *rule, distance=distance, **kw)
        except ValueError:  # e.g. no positive pairs in this draw
            return
        S = context_of(small).similarity
        assert S is not None  # the NumPy path was taken
        index = np.arange(len(meta), dtype=np.float64)[:, None]
        compiled = pairmap.average_precision(meta, index, *rule, distance=_lookup(S), **kw)
    assert context_of(compiled).similarity is None  # and this one is the compiled engine
    for col in SCORE_COLUMNS:
        np.testing.assert_array_equal(small[col].to_numpy(), compiled[col].to_numpy(), col)


def test_tied_lists_are_exercised():
    """The differential test above meets ties (its discrete screens are built for that)."""
    meta, X = _screen(1, 90, True, 2)
    res = pairmap.average_precision(meta, X, *RULES[2], ties="expected", progress_bar=False)
    S = context_of(res).similarity
    upper = S[np.triu_indices(len(S), 1)]
    assert len(np.unique(upper)) < len(upper) // 2  # most similarities tie with another


def test_overlapping_rules_name_the_rows():
    meta, X = _screen(0, 40, False, 2)
    with pytest.raises(ValueError, match=r"rows \d+ and \d+ satisfy both"):
        pairmap.average_precision(meta, X, "cpd", [], "cpd", [], progress_bar=False)


@pytest.mark.parametrize("distance", _small.DISTANCES)
def test_similarity_matrix_matches_per_pair_formulas(distance):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 7))
    X[5] = X[4] + 1e-9  # a near-cancelling euclidean pair (recomputed directly)
    X[6] = 0.0 if distance != "correlation" else 2.5  # zero norm / zero variance
    S, _, _, zero = similarity_matrix(X, pairmap.similarity.METRICS[distance])
    assert zero[6] == (distance != "euclidean")  # no direction: similarity 0 to all
    np.testing.assert_array_equal(S, S.T)
    for i in range(30):
        for j in range(30):
            if i == j:
                continue
            x, y = X[i], X[j]
            if distance == "euclidean":
                want = 1.0 / (1.0 + np.sqrt(np.sum((x - y) ** 2)))
            else:
                if distance == "correlation":
                    x, y = x - x.mean(), y - y.mean()
                nx, ny = np.sqrt(x @ x), np.sqrt(y @ y)
                want = 0.0 if nx == 0 or ny == 0 else (x @ y) / (nx * ny)
                want = abs(want) if distance == "abs_cosine" else want
            assert abs(S[i, j] - want) < 1e-10, (i, j)
            assert S[i, j] * C.SNAP == np.floor(S[i, j] * C.SNAP)  # on the tie grid


def test_zero_norm_profiles_warn_like_the_compiled_path():
    meta, X = _screen(2, 40, False, 1)
    X[3] = 0.0
    with pytest.warns(RuntimeWarning, match=r"1 profile\(s\) have zero norm \(rows \[3\]"):
        pairmap.average_precision(meta, X, *RULES[0], progress_bar=False)


def test_close_to_the_compiled_engine_on_the_raw_features(monkeypatch):
    """Different similarity arithmetic (one float64 product vs the engine's), same ranking."""
    meta, X = _screen(5, 150, False, 3)
    small = pairmap.average_precision(meta, X, *RULES[1], metrics=["roc_auc"], progress_bar=False)
    monkeypatch.setattr(_small, "MAX_PROFILES", 0)
    compiled = pairmap.average_precision(
        meta, X, *RULES[1], metrics=["roc_auc"], progress_bar=False
    )
    assert context_of(compiled).similarity is None
    for col in ("average_precision", "roc_auc"):
        np.testing.assert_allclose(small[col], compiled[col], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(small["n_total_pairs"], compiled["n_total_pairs"])


def test_dispatch_by_size_and_distance(monkeypatch):
    meta, X = _screen(4, 60, False, 2)
    for distance, small in [("cosine", True), ("euclidean", True), ("manhattan", False)]:
        res = pairmap.average_precision(meta, X, *RULES[0], distance=distance, progress_bar=False)
        assert (context_of(res).similarity is not None) == small, distance
    monkeypatch.setattr(_small, "MAX_PROFILES", 59)
    res = pairmap.average_precision(meta, X, *RULES[0], progress_bar=False)
    assert context_of(res).similarity is None


# ------------------------------------------------------------------ permutation null
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10**6),
    n=st.integers(16, 100),
    discrete=st.booleans(),
    rule=st.sampled_from(RULES[:3]),
    ties=st.sampled_from(["positives_first", "expected"]),
    null_size=st.sampled_from([20, 100, 500]),
    n_plates=st.integers(1, 3),
)
def test_permutation_backends_agree_bit_for_bit(seed, n, discrete, rule, ties, null_size, n_plates):
    meta, X = _screen(seed, n, discrete, n_plates)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            ap = pairmap.average_precision(meta, X, *rule, ties=ties, progress_bar=False)
        except ValueError:
            return
    ctx = context_of(ap)
    rows = np.flatnonzero(np.isfinite(ap["average_precision"].to_numpy()))
    if not len(rows):
        return
    gid = pd.factorize(ap["cpd"].to_numpy()[rows])[0]
    n_groups = int(gid.max()) + 1
    out = {
        b: permutation_pvalues(
            ctx, rows, gid, n_groups, null_size=null_size, seed=seed, n_threads=1, backend=b
        )
        for b in ("numpy", "compiled")
    }
    np.testing.assert_array_equal(out["numpy"][0], out["compiled"][0])
    np.testing.assert_array_equal(out["numpy"][1], out["compiled"][1])
    assert out["numpy"][2] == out["compiled"][2]
    testers = [PermutationTester(ctx, rows, null_size, seed, 1, b) for b in ("numpy", "compiled")]
    for g in range(min(n_groups, 3)):
        members = rows[gid == g]
        if g in out["numpy"][2]:
            continue
        (obs_a, null_a, total_a), (obs_b, null_b, total_b) = (
            t.null_values(members) for t in testers
        )
        assert obs_a == obs_b and total_a == total_b
        np.testing.assert_array_equal(null_a[0], null_b[0])
        np.testing.assert_array_equal(null_a[1], null_b[1])


@pytest.mark.parametrize("blocks", [[(7, 2)], [(5, 1), (9, 3)], [(4, 0), (30, 5), (3, 3)]])
def test_relabeling_streams_are_the_kernels_draws(blocks):
    from pairmap._kernels.nulls import _mix64
    from pairmap._kernels.permutation import _STREAM_GAMMA, _draw_relabeling

    sizes = np.array([b[0] for b in blocks])
    kb = np.array([b[1] for b in blocks], dtype=np.int64)
    bm_start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    bm = np.random.default_rng(0).permutation(int(sizes.sum())).astype(np.int64)
    key = np.uint64(0x1234567890ABCDEF)
    sets = relabelings(key, 5, 300, bm_start, bm, kb)
    k = int(kb.sum())
    buf, S = np.empty(k, dtype=np.int64), np.empty(k, dtype=np.int64)
    for d in range(300):
        start = (int(key) + (5 + d) * int(_STREAM_GAMMA)) % 2**64  # uint64 wrap-around
        state = np.uint64(_mix64(np.uint64(start)))  # numba returns a Python int
        _draw_relabeling(state, bm_start, bm, kb, buf, S)
        np.testing.assert_array_equal(sets[d], S)


def test_all_relabelings_enumerates_each_set_once():
    bm_start, bm, kb = np.array([0, 4, 7]), np.arange(7), np.array([2, 1])
    sets = all_relabelings(bm_start, bm, kb)
    assert len(sets) == 6 * 3 and len({tuple(s) for s in sets}) == 18
    assert sets[:4].tolist() == [[0, 1, 4], [0, 1, 5], [0, 1, 6], [0, 2, 4]]


def test_backend_choice():
    meta, X = _screen(0, 80, False, 1)
    ctx = context_of(pairmap.average_precision(meta, X, *RULES[0], progress_bar=False))
    assert choose_backend(ctx, 20, 1000) == "numpy"
    assert choose_backend(ctx, 20, 10**5) == "compiled"  # heavy nulls: the kernels pay off


def test_small_plate_runs_without_numba_in_a_fresh_process():
    """The start-up promise: AP + mAP of a plate never import numba (issue 11)."""
    code = """
import sys
import numpy as np, pandas as pd
import pairmap
rng = np.random.default_rng(0)
labels = np.repeat(np.arange(50), 4).astype(str)
labels[:20] = "ctl"
meta = pairmap.assign_reference_index(pd.DataFrame({"cpd": labels}), "cpd == 'ctl'")
cols = ["cpd", "Metadata_Reference_Index"]
X = rng.standard_normal((200, 30)).astype(np.float32)
ap = pairmap.average_precision(meta, X, cols, [], [], cols, progress_bar=False,
                               metrics=["roc_auc", "precision@R"])
res = pairmap.mean_average_precision(ap, "cpd", null_size=1000, cache=False, progress_bar=False)
assert res["p_value"].notna().sum() > 40, res
print("numba" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_every_input_layout_gives_the_same_table(tmp_path):
    """Fortran order, a memory-mapped .npy path, a DataFrame and Parquet: as the C array."""
    meta, X = _screen(7, 120, False, 2)
    X = X.astype(np.float32)
    kw = dict(metrics=["roc_auc"], progress_bar=False)
    want = pairmap.average_precision(meta, X, *RULES[1], **kw)
    np.save(tmp_path / "x.npy", X)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    frame.to_parquet(tmp_path / "x.parquet")
    for feats in (np.asfortranarray(X), str(tmp_path / "x.npy"), frame, tmp_path / "x.parquet"):
        got = pairmap.average_precision(meta, feats, *RULES[1], **kw)
        assert context_of(got).similarity is not None
        pd.testing.assert_frame_equal(got, want, check_exact=True)
