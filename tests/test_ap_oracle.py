"""pairmap.average_precision against the brute-force oracle in ``oracles.py``.

Randomized small inputs (hypothesis): 2-30 rows, 1-4 metadata columns with few
levels, integer-valued features (exact dot products and distances) with
duplicated rows so that ties are frequent, every rule shape (lists, "all"/"any"
dicts, query filters), every built-in metric plus a callable, both tie modes.

Tolerances: 1e-9 for float64 input (AP is a short float64 sum, the only
difference allowed is summation order); 1e-5 for float32 input.
Block-size and thread-count invariance is asserted *exactly*: AP is computed
from integer ranks by one shared kernel, so any change in the value means the
ranking itself changed.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from oracles import (
    METRICS,
    OracleError,
    ap_expected,
    ap_expected_bruteforce_permutations,
    ap_of_labels,
    ap_positives_first,
    brute_force_ap,
    null_aps_bruteforce,
)

import pairmap
from pairmap._ap_math import expected_random_ap

#: every test runs on both paths: NumPy for small screens, and the compiled engine
pytestmark = pytest.mark.usefixtures("both_engines")

AP_COLS = ["average_precision", "normalized_average_precision"]
COUNT_COLS = ["n_pos_pairs", "n_total_pairs"]
HSETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def neg_sq_euclidean(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """A user similarity (callable): minus the squared Euclidean distance."""
    return -np.sum((np.asarray(X, float) - np.asarray(Y, float)) ** 2, axis=1)


ALL_DISTANCES = list(METRICS) + [neg_sq_euclidean]


# ----------------------------------------------------------------- strategies
def _side(draw, cols: list[str], *, any_cols: list[str] | None = None):
    """Encode one rule side: a list, or a dict with "all" (and maybe "any")."""
    any_cols = any_cols or []
    if not any_cols and draw(st.booleans()):
        return list(cols)
    out = {"all": list(cols)}
    if any_cols or draw(st.booleans()):
        out["any"] = list(any_cols)
    return out


#: Metrics computed from dot products (BLAS): only ties that are exact in floating
#: point (duplicated, 2x-scaled or negated rows, zero/constant rows) are bit-for-bit
#: reproducible, so these get continuous features; see test_mathematical_ties_*.
DOT_METRICS = ("cosine", "abs_cosine", "correlation")


def _integer_features(draw, n: int) -> np.ndarray:
    """Small integers: sums, differences and distances are exact, ties are frequent."""
    d = draw(st.integers(1, 5))
    X = draw(hnp.arrays(np.int64, (n, d), elements=st.integers(-2, 2)))
    for _ in range(draw(st.integers(0, n // 2))):  # duplicated rows
        i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        X[i] = X[j]
    return X.astype(np.float64)


def _continuous_features(draw, n: int) -> np.ndarray:
    """Gaussian features (no accidental ties) plus rows whose ties are exact in float64:
    duplicates, 2x-scaled and negated copies, all-zero and constant rows.

    At least 3 features: with 1 feature every cosine is +-1 and with 2 every
    correlation is +-1 (ties in exact arithmetic only; see the reproducers).
    """
    d = draw(st.integers(3, 6))
    X = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).normal(size=(n, d))
    for _ in range(draw(st.integers(0, n // 2))):
        i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        how = draw(st.sampled_from(["copy", "double", "negate", "zero", "constant"]))
        if how == "copy":
            X[i] = X[j]
        elif how == "double":
            X[i] = 2.0 * X[j]
        elif how == "negate":
            X[i] = -X[j]
        elif how == "zero":
            X[i] = 0.0
        else:
            X[i] = 1.5
    return X


@st.composite
def ap_cases(draw, max_rows: int = 30, continuous: bool = False):
    """(meta, feats, rules) with rule shapes that are usually valid."""
    n = draw(st.integers(2, max_rows))
    n_cols = draw(st.integers(1, 4))
    cols = [f"c{k}" for k in range(n_cols)]
    data = {}
    for c in cols:
        levels = draw(st.integers(1, 3))
        values = draw(st.lists(st.integers(0, levels - 1), min_size=n, max_size=n))
        data[c] = [f"v{v}" for v in values] if draw(st.booleans()) else values
    meta = pd.DataFrame(data)
    X = _continuous_features(draw, n) if continuous else _integer_features(draw, n)

    mode = draw(st.sampled_from(["all", "any", "random"]))
    if mode == "random":  # arbitrary rules; often invalid (overlap, no pairs)

        def pick():
            return draw(st.lists(st.sampled_from(cols), unique=True, max_size=n_cols))

        ps = pick()
        pdf = [c for c in pick() if c not in ps]
        ns = pick()
        ndf = [c for c in pick() if c not in ns]
        rules = [ps, pdf, ns, ndf]
    else:
        key = draw(st.lists(st.sampled_from(cols), unique=True, min_size=1, max_size=n_cols))
        if mode == "any" and len(key) < 2:
            mode = "all"
        rest = [c for c in cols if c not in key]
        extra_pos_same = [c for c in rest if draw(st.booleans())]
        rest2 = [c for c in rest if c not in extra_pos_same]
        pos_diff = [c for c in rest2 if draw(st.booleans())]
        neg_same = [c for c in rest if draw(st.booleans())]
        if mode == "all":
            # positives: every key column equal; negatives: key columns differ
            pos_sameby = _side(draw, key + extra_pos_same)
            if len(key) >= 2 and draw(st.booleans()):
                neg_diffby = {"all": [], "any": list(key)}
            else:
                neg_diffby = _side(draw, key)
        else:
            # positives: at least one key column equal; negatives: all key columns differ
            pos_sameby = {"all": extra_pos_same, "any": list(key)}
            neg_diffby = _side(draw, key)
        pos_diffby = _side(draw, pos_diff)
        neg_sameby = [c for c in neg_same if c not in key]
        rules = [pos_sameby, pos_diffby, neg_sameby, neg_diffby]

    if draw(st.integers(0, 4)) == 0:  # a query filter on an extra numeric column
        meta["dose"] = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
        target = 0 if isinstance(rules[0], list) else 2
        if isinstance(rules[target], list):
            rules[target] = rules[target] + ["dose > 0"]
    return meta, X, rules


def run_engine(meta, X, rules, **kw):
    """Call the engine with warnings recorded; returns (result, warnings)."""
    kw.setdefault("progress_bar", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = pairmap.average_precision(meta, X, *rules, **kw)
    return out, caught


def assert_matches_oracle(result: pd.DataFrame, expected: pd.DataFrame, atol: float) -> None:
    meta_cols = [c for c in expected.columns if c not in AP_COLS + COUNT_COLS]
    assert list(result.columns[: len(meta_cols)]) == meta_cols
    assert set(AP_COLS + COUNT_COLS) <= set(result.columns)
    assert isinstance(result.index, pd.RangeIndex) and result.index.start == 0
    pd.testing.assert_frame_equal(result[meta_cols], expected[meta_cols])
    for col in COUNT_COLS:
        assert result[col].dtype.kind in "iu", f"{col} should be an integer column"
        np.testing.assert_array_equal(result[col].to_numpy(), expected[col].to_numpy(), err_msg=col)
    for col in AP_COLS:
        np.testing.assert_allclose(
            result[col].to_numpy(dtype=float),
            expected[col].to_numpy(dtype=float),
            rtol=0,
            atol=atol,
            equal_nan=True,
            err_msg=col,
        )


def check_case(meta, X, rules, distance, ties, atol=1e-9, feats=None):
    try:
        expected = brute_force_ap(meta, X, *rules, distance=distance, ties=ties)
    except OracleError:
        with pytest.raises(ValueError):
            run_engine(meta, X if feats is None else feats, rules, distance=distance, ties=ties)
        return None
    result, caught = run_engine(
        meta, X if feats is None else feats, rules, distance=distance, ties=ties
    )
    assert_matches_oracle(result, expected, atol)
    if expected.attrs["degenerate"]:
        assert caught, "zero-norm / constant rows were used but no warning was issued"
    return result


# ------------------------------------------------------------ oracle vs engine
@pytest.mark.parametrize("ties", ["positives_first", "expected"])
@HSETTINGS
@given(data=st.data(), distance=st.sampled_from(ALL_DISTANCES))
def test_engine_matches_oracle(data, distance, ties):
    case = data.draw(ap_cases(continuous=distance in DOT_METRICS), label="case")
    check_case(*case, distance, ties)


@pytest.mark.parametrize("distance", ALL_DISTANCES, ids=lambda d: getattr(d, "__name__", d))
@pytest.mark.parametrize("ties", ["positives_first", "expected"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_metric_and_tie_mode(data, distance, ties):
    """Every (metric, ties) combination gets its own share of examples."""
    case = data.draw(ap_cases(max_rows=20, continuous=distance in DOT_METRICS), label="case")
    check_case(*case, distance, ties)


@pytest.mark.parametrize("distance", ["euclidean", "manhattan", "chebyshev", neg_sq_euclidean])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=ap_cases(max_rows=20, continuous=True))
def test_distance_metrics_on_continuous_features(case, distance):
    check_case(*case, distance, "positives_first")


@pytest.mark.parametrize("distance", DOT_METRICS)
@pytest.mark.parametrize("ties", ["positives_first", "expected"])
def test_mathematical_ties_with_integer_features(distance, ties):
    """Similarities equal in exact arithmetic must tie (minimal reproducers).

    Correlation: query row 1 = [2, 0, 2]; its positive row 0 = [0, 2, 2] and its
    negative row 2 = [1, 2, 2] both have correlation exactly -0.5.
    Cosine / abs_cosine: query row 1 = [1, -1, 2]; its negative row 0 = [0, 0, 2]
    and its positive row 2 = [2, -2, 1] both have cosine exactly 2/sqrt(6).
    One tie group of one positive and one negative: positives_first gives AP 1,
    expected gives 0.75.
    """
    if distance == "correlation":
        meta = pd.DataFrame({"c0": [0, 0, 1]})
        X = np.array([[0.0, 2.0, 2.0], [2.0, 0.0, 2.0], [1.0, 2.0, 2.0]])
    else:
        meta = pd.DataFrame({"c0": [1, 0, 0]})
        X = np.array([[0.0, 0.0, 2.0], [1.0, -1.0, 2.0], [2.0, -2.0, 1.0]])
    rules = (["c0"], [], [], ["c0"])
    expected = brute_force_ap(meta, X, *rules, distance=distance, ties=ties)
    out, _ = run_engine(meta, X, rules, distance=distance, ties=ties)
    assert_matches_oracle(out, expected, 1e-9)


@pytest.mark.parametrize("distance", DOT_METRICS)
def test_single_feature_profiles_tie(distance):
    """With one feature every cosine is +-1 (with two, every correlation): all tied.

    Each query has 2 positives and 4 negatives, all with similarity +1 or -1;
    positives_first must give the same AP as the oracle (exact ties).
    """
    X = np.array(
        [
            [0.12573022],
            [-0.13210486],
            [0.64042265],
            [0.10490012],
            [-0.53566937],
            [0.36159505],
            [1.30400005],
            [0.94708096],
            [-0.70373524],
        ]
    )
    if distance == "correlation":
        X = np.hstack([X, 2 * X + 0.3])
    meta = pd.DataFrame({"c0": np.arange(len(X)) % 3})
    rules = (["c0"], [], [], ["c0"])
    expected = brute_force_ap(meta, X, *rules, distance=distance)
    out, _ = run_engine(meta, X, rules, distance=distance)
    assert_matches_oracle(out, expected, 1e-9)


def _continuous_case(seed: int, n: int = 30, d: int = 6, dup: int = 6):
    rng = np.random.default_rng(seed)
    meta = pd.DataFrame(
        {
            "cpd": rng.integers(0, 5, n).astype(str),
            "plate": rng.integers(0, 2, n),
        }
    )
    X = rng.normal(size=(n, d))
    for _ in range(dup):
        X[rng.integers(n)] = X[rng.integers(n)]
    return meta, X


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("distance", METRICS)
@pytest.mark.parametrize("ties", ["positives_first", "expected"])
def test_float32_input(seed, distance, ties):
    """float32 features: same AP as the float64 oracle on the same values (1e-5)."""
    meta, X = _continuous_case(seed)
    X32 = X.astype(np.float32)
    rules = (["cpd"], [], ["plate"], ["cpd"])
    check_case(meta, X32.astype(np.float64), rules, distance, ties, atol=1e-5, feats=X32)


def test_dataframe_features_match_array_features():
    meta, X = _continuous_case(7)
    rules = (["cpd"], [], [], ["cpd"])
    a, _ = run_engine(meta, X, rules)
    b, _ = run_engine(meta, pd.DataFrame(X, columns=[f"f{k}" for k in range(X.shape[1])]), rules)
    pd.testing.assert_frame_equal(a, b)


# ------------------------------------------------------------ invariances
def _invariance_data():
    from conftest import make_screen

    meta, X = make_screen(3, n_plates=3, n_compounds=7, n_reps=3, n_controls=5, n_features=9)
    X[5] = X[40]  # exact ties across blocks
    X[11] = X[2]
    return meta, X


@pytest.mark.parametrize("distance", METRICS)
@pytest.mark.parametrize("ties", ["positives_first", "expected"])
def test_block_size_and_threads_do_not_change_results(distance, ties):
    """batch_size 1 / 7 / default and n_jobs 1 / 2 give exactly the same table."""
    meta, X = _invariance_data()
    rules = (
        ["Metadata_broad_sample", "Metadata_Reference_Index"],
        [],
        ["Metadata_Plate"],
        ["Metadata_broad_sample", "Metadata_Reference_Index"],
    )
    ref, _ = run_engine(meta, X, rules, distance=distance, ties=ties, n_jobs=1)
    assert ref["average_precision"].notna().sum() > 0
    for kw in (
        {"batch_size": 1, "n_jobs": 1},
        {"batch_size": 7, "n_jobs": 1},
        {"batch_size": 7, "n_jobs": 2},
        {"n_jobs": 2},
        {"batch_size": 1, "n_jobs": 2},
    ):
        out, _ = run_engine(meta, X, rules, distance=distance, ties=ties, **kw)
        pd.testing.assert_frame_equal(out, ref, check_exact=True, obj=f"result with {kw}")


def test_tiny_max_memory_does_not_change_results():
    meta, X = _invariance_data()
    rules = (["Metadata_broad_sample"], [], ["Metadata_Plate"], ["Metadata_broad_sample"])
    ref, _ = run_engine(meta, X, rules)
    out, _ = run_engine(meta, X, rules, max_memory=1)
    pd.testing.assert_frame_equal(out, ref, check_exact=True)


def test_row_order_permutation_equivariance():
    """Shuffling the rows shuffles the output rows and nothing else."""
    meta, X = _invariance_data()
    rules = (["Metadata_broad_sample"], [], ["Metadata_Plate"], ["Metadata_broad_sample"])
    ref, _ = run_engine(meta, X, rules)
    perm = np.random.default_rng(0).permutation(len(meta))
    meta_p = meta.iloc[perm].reset_index(drop=True)
    out, _ = run_engine(meta_p, X[perm], rules)
    expected = ref.iloc[perm].reset_index(drop=True)
    pd.testing.assert_frame_equal(out, expected, check_exact=False, atol=1e-12, rtol=0)


# ------------------------------------------------------- hand-worked examples
def test_hand_worked_example():
    """Two compounds x 2 replicates, 1-D features; AP computed by hand."""
    meta = pd.DataFrame({"cpd": ["a", "a", "b", "b"]})
    X = np.array([[1.0], [2.0], [4.0], [8.0]])
    # manhattan similarities 1/(1+|x-y|): for row 0, positive row1 (d=1), negatives
    # row2 (d=3), row3 (d=7) -> positive first -> AP 1.
    # row 2: positive row3 (d=4), negatives row1 (d=2), row0 (d=3) -> rank 3 -> AP 1/3.
    # row 3: positive row2 (d=4), negatives row1 (d=6), row0 (d=7) -> AP 1.
    out, _ = run_engine(meta, X, (["cpd"], [], [], ["cpd"]), distance="manhattan")
    np.testing.assert_allclose(out["average_precision"], [1.0, 1.0, 1 / 3, 1.0], atol=1e-12)
    np.testing.assert_array_equal(out["n_pos_pairs"], [1, 1, 1, 1])
    np.testing.assert_array_equal(out["n_total_pairs"], [3, 3, 3, 3])
    mu = expected_random_ap(1, 3)  # (1 + 1/2 + 1/3) / 3
    np.testing.assert_allclose(mu, (1 + 0.5 + 1 / 3) / 3)
    np.testing.assert_allclose(
        out["normalized_average_precision"], (np.array([1, 1, 1 / 3, 1]) - mu) / (1 - mu)
    )


def test_ties_hand_example():
    """All similarities tied: positives_first gives AP 1, expected gives the random AP."""
    meta = pd.DataFrame({"cpd": ["a", "a", "a", "b", "b", "b"]})
    X = np.ones((6, 3))
    rules = (["cpd"], [], [], ["cpd"])
    first, _ = run_engine(meta, X, rules, distance="euclidean")
    np.testing.assert_array_equal(first["average_precision"], np.ones(6))
    exp, _ = run_engine(meta, X, rules, distance="euclidean", ties="expected")
    np.testing.assert_allclose(exp["average_precision"], expected_random_ap(2, 5), atol=1e-12)
    np.testing.assert_allclose(exp["normalized_average_precision"], 0.0, atol=1e-12)


def test_profiles_without_positives_or_negatives_get_nan_and_zero_counts():
    meta = pd.DataFrame({"cpd": ["a", "a", "b", "c"], "plate": [0, 0, 0, 1]})
    X = np.arange(12, dtype=float).reshape(4, 3) ** 1.5
    # c has no positives; with neg_sameby plate, c (alone on plate 1) has no negatives either
    out, _ = run_engine(meta, X, (["cpd"], [], ["plate"], ["cpd"]))
    assert out["average_precision"].isna().tolist() == [False, False, True, True]
    assert out["normalized_average_precision"].isna().tolist() == [False, False, True, True]
    assert out["n_pos_pairs"].tolist()[2:] == [0, 0]
    assert out["n_total_pairs"].tolist()[2:] == [0, 0]


# ------------------------------------------------------ checks of the oracle
def test_oracle_positives_first_by_hand():
    assert ap_positives_first([0.9, 0.5], [0.7]) == pytest.approx((1 + 2 / 3) / 2)
    assert ap_positives_first([0.5], [0.5, 0.5]) == 1.0  # tied: positive first
    assert ap_of_labels([0, 1, 0, 1]) == pytest.approx((1 / 2 + 2 / 4) / 2)


@settings(max_examples=60, deadline=None)
@given(
    pos=st.lists(st.integers(0, 3), min_size=1, max_size=4),
    neg=st.lists(st.integers(0, 3), min_size=0, max_size=4),
)
def test_oracle_expected_ap_three_ways(pos, neg):
    """Per-group enumeration, order statistics and full permutation enumeration agree."""
    ps, ns = [float(v) for v in pos], [float(v) for v in neg]
    by_perm = ap_expected_bruteforce_permutations(ps, ns)
    assert ap_expected(ps, ns) == pytest.approx(by_perm, abs=1e-12)
    assert ap_expected(ps, ns, enumerate_limit=0) == pytest.approx(by_perm, abs=1e-12)


@pytest.mark.parametrize("L", range(1, 9))
def test_expected_random_ap_matches_enumeration(L):
    """mu0(M, L) equals the mean AP over all placements of M positives among L items."""
    for M in range(1, L + 1):
        aps = null_aps_bruteforce(L, M)
        assert len(aps) == math.comb(L, M)
        np.testing.assert_allclose(expected_random_ap(M, L), np.mean(aps), rtol=0, atol=1e-12)


# deliberate ties (integer features): the tie warning is expected here
@pytest.mark.filterwarnings("ignore:.*constant or identical to another profile:RuntimeWarning")
@pytest.mark.parametrize("ties", ["positives_first", "expected"])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("n_extra", [40, 300])  # 300: plate buckets go the dense (BLAS) way
def test_long_positive_lists_match_oracle(ties, seed, n_extra):
    """Lists with more positives than FEW_POSITIVES take the binary-search tally path."""
    from pairmap._kernels.retrieval import FEW_POSITIVES

    rng = np.random.default_rng(seed)
    n = 2 * FEW_POSITIVES + n_extra
    meta = pd.DataFrame(
        {
            # one big label (long positive lists) and a few small ones
            "Metadata_label": np.where(
                np.arange(n) < FEW_POSITIVES + 10, "big", rng.integers(0, 6, n).astype(str)
            ),
            "Metadata_plate": rng.integers(0, 2, n),
        }
    )
    # integer features + manhattan: similarities are exact, so ties are real ties
    feats = rng.integers(-2, 3, size=(n, 4)).astype(np.float64)
    rules = (["Metadata_label"], [], ["Metadata_plate"], ["Metadata_label"])
    got = pairmap.average_precision(
        meta, feats, *rules, distance="manhattan", ties=ties, progress_bar=False
    )
    want = brute_force_ap(meta, feats, *rules, distance="manhattan", ties=ties)
    assert (got["n_pos_pairs"].to_numpy() > FEW_POSITIVES).any()
    np.testing.assert_allclose(
        got["average_precision"].to_numpy(), want["average_precision"].to_numpy(), rtol=0, atol=1e-9
    )
    np.testing.assert_array_equal(got["n_total_pairs"].to_numpy(), want["n_total_pairs"].to_numpy())


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("force_blas", [False, True])
def test_long_positive_lists_dense_blas_path(seed, force_blas, monkeypatch):
    """More than FEW_POSITIVES positives, with the BLAS block path forced or not (cosine)."""
    import pairmap._retrieval as engine_core
    from pairmap._kernels.retrieval import FEW_POSITIVES

    if force_blas:  # every bucket dense, every dense group through a matrix product
        monkeypatch.setattr(engine_core, "DENSE_MIN_BUCKET", 1)
        monkeypatch.setattr(engine_core, "GEMM_MIN_ENTRIES", 0)

    rng = np.random.default_rng(seed)
    n = 400
    meta = pd.DataFrame(
        {
            "Metadata_label": np.where(
                np.arange(n) < 3 * FEW_POSITIVES, "big", rng.integers(0, 40, n).astype(str)
            ),
            "Metadata_plate": rng.integers(0, 2, n),
        }
    )
    feats = rng.standard_normal((n, 6))
    rules = (["Metadata_label"], [], ["Metadata_plate"], ["Metadata_label"])
    got = pairmap.average_precision(meta, feats, *rules, progress_bar=False)
    want = brute_force_ap(meta, feats, *rules)
    assert (got["n_pos_pairs"].to_numpy() > FEW_POSITIVES).any()
    np.testing.assert_allclose(
        got["average_precision"].to_numpy(), want["average_precision"].to_numpy(), rtol=0, atol=1e-9
    )


@pytest.mark.parametrize("ties", ["positives_first", "expected"])
def test_euclidean_blas_path_keeps_exact_ties_of_duplicated_profiles(ties):
    """|x|^2 + |y|^2 - 2x.y cancels for near-identical rows: the BLAS path must not lose ties."""
    rng = np.random.default_rng(1)
    n = 130
    X = rng.normal(size=(n, 50)) * 10 + 30  # large norms: cancellation is worst
    X[1:4] = X[0]
    meta = pd.DataFrame({"cpd": [0, 0] + [1] * (n - 2), "blk": np.arange(n) // 4})
    args = (meta, X, ["cpd"], [], ["blk"], ["cpd"])
    got = pairmap.average_precision(*args, distance="euclidean", ties=ties, progress_bar=False)
    want = brute_force_ap(*args, distance="euclidean", ties=ties)
    np.testing.assert_allclose(
        got["average_precision"].to_numpy(), want["average_precision"].to_numpy(), rtol=0, atol=1e-9
    )
