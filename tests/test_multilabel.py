"""Multi-label AP (``average_precision(..., multilabel_col=...)``) against the brute-force oracle.

Hypothesis draws 2-30 profiles with 1-4 labels each, other metadata columns in
every rule shape (lists, "all"/"any" dicts, in sameby and diffby of both rules),
integer or continuous features, every built-in metric and both tie modes, and
runs the engine on its compiled-loop path and on its BLAS (dense block) path
with small blocks and two threads. Also: input types of the label column,
every bad input, ``find_pairs`` and ``split_multilabel``, mAP per label.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracles import (
    METRICS,
    OracleError,
    brute_force_multilabel_ap,
    normalize_side,
    pair_satisfies,
)

import pairmap
from pairmap import _retrieval

LABEL = "Metadata_target"
AP_COLS = ["average_precision", "normalized_average_precision"]
COUNT_COLS = ["n_pos_pairs", "n_total_pairs"]
DOT_METRICS = ("cosine", "abs_cosine", "correlation")


# ----------------------------------------------------------------- strategies
def _side(draw, all_cols, any_cols=()):
    """A rule side as a list, or as a dict with an optional "any" part."""
    if not any_cols and draw(st.booleans()):
        return list(all_cols)
    out = {"all": list(all_cols)}
    if any_cols:
        out["any"] = list(any_cols)
    return out


def _pick(draw, cols):
    return [c for c in cols if draw(st.booleans())]


def _features(draw, n, continuous):
    if continuous:
        X = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).normal(size=(n, 4))
    else:
        d = draw(st.integers(1, 4))
        X = np.array(
            draw(
                st.lists(
                    st.lists(st.integers(-2, 2), min_size=d, max_size=d), min_size=n, max_size=n
                )
            ),
            dtype=np.float64,
        )
    for _ in range(draw(st.integers(0, n // 3))):  # duplicated rows: exact ties
        i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        X[i] = X[j]
    return X


@st.composite
def multilabel_cases(draw, continuous=False):
    """(meta, X, rules): 2-30 profiles, 1-4 labels each, the other columns in any rule shape."""
    n = draw(st.integers(2, 30))
    n_labels = draw(st.integers(1, 6))
    as_str = draw(st.booleans())
    lists = []
    for _ in range(n):
        labs = draw(st.lists(st.integers(0, n_labels - 1), min_size=1, max_size=4, unique=True))
        lists.append([f"T{v}" for v in labs] if as_str else labs)
    meta = pd.DataFrame(
        {
            "c0": draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)),
            "c1": [f"p{v}" for v in draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))],
            "c2": draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)),
        }
    )
    meta[LABEL] = pd.Series(lists, dtype=object)
    rest = ["c0", "c1", "c2"]
    pos_same = _pick(draw, rest)
    pos_diff = [c for c in _pick(draw, rest) if c not in pos_same]
    any_pool = [c for c in rest if c not in pos_same + pos_diff]
    pos_same_any = any_pool if len(any_pool) >= 2 and draw(st.booleans()) else []
    neg_same = _pick(draw, rest)
    neg_diff = [c for c in _pick(draw, rest) if c not in neg_same]
    any_pool = [c for c in rest if c not in neg_same + neg_diff]
    neg_diff_any = any_pool if len(any_pool) >= 2 and draw(st.booleans()) else []
    rules = [
        _side(draw, [LABEL] + pos_same, pos_same_any),
        _side(draw, pos_diff),
        _side(draw, neg_same),
        _side(draw, neg_diff + [LABEL], neg_diff_any),
    ]
    return meta, _features(draw, n, continuous), rules


def run(meta, X, rules, **kw):
    kw.setdefault("progress_bar", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return pairmap.average_precision(meta, X, *rules, multilabel_col=LABEL, **kw)


def assert_same(result, expected, atol=1e-9):
    meta_cols = [c for c in expected.columns if c not in AP_COLS + COUNT_COLS]
    assert list(result.columns) == list(expected.columns)
    assert isinstance(result.index, pd.RangeIndex)
    pd.testing.assert_frame_equal(result[meta_cols], expected[meta_cols])
    for col in COUNT_COLS:
        np.testing.assert_array_equal(result[col].to_numpy(), expected[col].to_numpy(), col)
    for col in AP_COLS:
        np.testing.assert_allclose(
            result[col].to_numpy(float),
            expected[col].to_numpy(float),
            rtol=0,
            atol=atol,
            equal_nan=True,
            err_msg=col,
        )


def check(meta, X, rules, distance, ties, **kw):
    try:
        expected = brute_force_multilabel_ap(meta, X, *rules, LABEL, distance=distance, ties=ties)
    except OracleError:
        with pytest.raises(ValueError):
            run(meta, X, rules, distance=distance, ties=ties, **kw)
        return None
    result = run(meta, X, rules, distance=distance, ties=ties, **kw)
    assert_same(result, expected)
    return result


HSETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ------------------------------------------------------------ oracle vs engine
@pytest.mark.parametrize("ties", ["positives_first", "expected"])
@HSETTINGS
@given(data=st.data(), distance=st.sampled_from(METRICS))
def test_engine_matches_oracle(data, distance, ties):
    case = data.draw(multilabel_cases(continuous=distance in DOT_METRICS), label="case")
    check(*case, distance, ties)


@pytest.mark.parametrize("ties", ["positives_first", "expected"])
@HSETTINGS
@given(data=st.data(), distance=st.sampled_from(METRICS))
def test_dense_path_small_blocks_two_threads_match_oracle(data, distance, ties):
    """Every candidate list through the BLAS/dense-block path, 1-3 profiles per block."""
    case = data.draw(multilabel_cases(continuous=distance in DOT_METRICS), label="case")
    batch = data.draw(st.integers(1, 3), label="batch_size")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_retrieval, "DENSE_MIN_BUCKET", 1)
        mp.setattr(_retrieval, "GEMM_MIN_ENTRIES", 0)
        mp.setattr(_retrieval, "GROUP_MIN_QUERIES", 1)
        check(*case, distance, ties, batch_size=batch, n_jobs=2)


def test_paths_blocks_and_threads_agree_exactly():
    """Block size, threads and dense/direct paths change nothing, bit for bit."""
    rng = np.random.default_rng(3)
    n = 400
    lists = [list(rng.choice(40, size=rng.integers(1, 5), replace=False)) for _ in range(n)]
    meta = pd.DataFrame({LABEL: lists, "plate": rng.integers(0, 3, n)})
    X = rng.normal(size=(n, 16))
    rules = ([LABEL], ["plate"], [], [LABEL])
    ref = run(meta, X, rules)
    assert ref["average_precision"].notna().sum() > 500
    for kw in (dict(batch_size=7, n_jobs=2), dict(batch_size=1), dict(max_memory="1MB")):
        pd.testing.assert_frame_equal(run(meta, X, rules, **kw), ref)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_retrieval, "DENSE_MIN_BUCKET", 10**9)  # compiled loops only
        direct = run(meta, X, rules, batch_size=50)
    pd.testing.assert_frame_equal(direct, ref)
    assert_same(ref, brute_force_multilabel_ap(meta, X, *rules, LABEL))
    # float32 input: BLAS blocks and float64-accumulated loops differ by float32 rounding,
    # which can reorder similarities closer than ~1e-7; AP moves by far less than 1e-4
    X32 = X.astype(np.float32)
    ref32 = run(meta, X32, rules)
    for kw in (dict(batch_size=7, n_jobs=2), dict(max_memory="1MB")):
        np.testing.assert_allclose(
            run(meta, X32, rules, **kw)["average_precision"], ref32["average_precision"], atol=1e-4
        )
    np.testing.assert_allclose(ref32["average_precision"], ref["average_precision"], atol=1e-4)


def test_worked_example():
    """Hand-checked: profile 0 = {A, B}, negatives are the profiles sharing neither A nor B."""
    meta = pd.DataFrame({LABEL: [["A", "B"], ["B"], ["A"], ["C"]]})
    X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.8, 0.2]])
    out = run(meta, X, ([LABEL], [], [], [LABEL]))
    assert out[LABEL].tolist() == ["A", "B", "B", "A", "C"]
    # (0, A): positive 2 (cos 0), negative 3 (cos 0.97) -> rank 2 -> AP 1/2
    # (0, B): positive 1 (cos 0.99), negative 3 -> AP 1
    assert out["average_precision"].round(6).tolist()[:2] == [0.5, 1.0]
    assert out["n_total_pairs"].tolist() == [2, 2, 3, 3, 0]  # 1: pos 0, negs 2, 3
    assert np.isnan(out["average_precision"].iloc[4])  # C: no positives


# ------------------------------------------------------------- label column types
def _typed_cases():
    rng = np.random.default_rng(0)
    lists = [
        list(rng.choice(["a", "b", "c", "d"], size=rng.integers(1, 3), replace=False))
        for _ in range(30)
    ]
    return lists, rng.normal(size=(30, 5))


@pytest.mark.parametrize("kind", ["tuple", "ndarray", "arrow"])
def test_label_containers_give_identical_results(kind):
    lists, X = _typed_cases()
    rules = ([LABEL], [], [], [LABEL])
    ref = run(pd.DataFrame({LABEL: lists}), X, rules)
    if kind == "tuple":
        col = pd.Series([tuple(v) for v in lists], dtype=object)
    elif kind == "ndarray":
        col = pd.Series([np.array(v) for v in lists], dtype=object)
    else:
        pa = pytest.importorskip("pyarrow")
        col = pd.Series(lists, dtype=pd.ArrowDtype(pa.list_(pa.string())))
    out = run(pd.DataFrame({LABEL: col}), X, rules)
    pd.testing.assert_frame_equal(out, ref)


def test_integer_labels():
    lists, X = _typed_cases()
    ints = [[ord(x) for x in v] for v in lists]
    a = run(pd.DataFrame({LABEL: lists}), X, ([LABEL], [], [], [LABEL]))
    b = run(pd.DataFrame({LABEL: ints}), X, ([LABEL], [], [], [LABEL]))
    assert b[LABEL].tolist() == [ord(x) for x in a[LABEL]]
    pd.testing.assert_frame_equal(a.drop(columns=LABEL), b.drop(columns=LABEL))


# ------------------------------------------------------------------ bad input
BAD_CELLS = [
    ("A|B", "split_multilabel"),
    (None, "missing value"),
    (np.nan, "missing value"),
    ([], "empty label list"),
    (["A", None], "missing label"),
    (["A", float("nan")], "missing label"),
    (["A", "A"], "more than once"),
    (["A", 3], "mixes label types"),
    (3, "each value must be a list"),
]


@pytest.mark.parametrize("cell,message", BAD_CELLS, ids=[m for _, m in BAD_CELLS])
def test_bad_label_cells_name_the_row(cell, message):
    cells = [["A"], ["A", "B"], ["B"], ["C"]]
    cells[2] = cell
    meta = pd.DataFrame({LABEL: pd.Series(cells, dtype=object)})
    with pytest.raises(ValueError, match=message) as err:
        run(meta, np.eye(4), ([LABEL], [], [], [LABEL]))
    assert LABEL in str(err.value)
    if message not in ("mixes label types",):
        assert "row 2" in str(err.value)


@pytest.mark.parametrize(
    "rules,where",
    [
        (([LABEL], [], [LABEL], ["c"]), "neg_sameby"),
        ((["c"], [LABEL], [], [LABEL]), "pos_diffby"),
        (([LABEL], [], [], ["c"]), "missing from the neg rule"),
        ((["c"], [], [], [LABEL]), "missing from the pos rule"),
        (({"all": [], "any": [LABEL, "c"]}, [], [], [LABEL]), r"pos_sameby\['any'\]"),
        (([LABEL], [], [], {"all": [], "any": [LABEL, "c"]}), r"neg_diffby\['any'\]"),
    ],
)
def test_label_column_in_the_wrong_rule(rules, where):
    meta = pd.DataFrame({LABEL: [["A"], ["A"], ["B"], ["B"]], "c": [0, 1, 0, 1]})
    with pytest.raises(ValueError, match=where):
        run(meta, np.eye(4), rules)


def test_other_errors():
    meta = pd.DataFrame({LABEL: [["A"], ["B"], ["C"], ["D"]]})
    with pytest.raises(ValueError, match="no positive pairs"):
        run(meta, np.eye(4), ([LABEL], [], [], [LABEL]))
    meta = pd.DataFrame({LABEL: [["A"], ["A", "B"], ["A"], ["A", "C"]]})  # all share A
    with pytest.raises(ValueError, match="no negative pairs"):
        run(meta, np.eye(4), ([LABEL], [], [], [LABEL]))
    meta = pd.DataFrame({LABEL: [["A"], ["A"], ["B"], ["B"]]})
    with pytest.raises(ValueError, match="built-in distances"):
        run(meta, np.eye(4), ([LABEL], [], [], [LABEL]), distance=lambda x, y: (x * y).sum(1))
    with pytest.raises(ValueError, match="not in the frame"):
        pairmap.average_precision(
            meta, np.eye(4), [LABEL], [], [], [LABEL], multilabel_col="x", progress_bar=False
        )
    with pytest.raises(ValueError, match="multilabel_col='Metadata_target'"):
        pairmap.average_precision(meta, np.eye(4), [LABEL], [], [], [LABEL], progress_bar=False)


def test_no_profile_with_both_warns():
    # 0 and 1 share A (positives) but have no disjoint profile on their plate; 2 and 3 are
    # negatives of each other on plate 1 but have no positives
    meta = pd.DataFrame({LABEL: [["A", "B"], ["A", "B"], ["C"], ["D"]], "p": [0, 0, 1, 1]})
    with pytest.warns(RuntimeWarning, match="every AP is NaN"):
        out = pairmap.average_precision(
            meta, np.eye(4), [LABEL], [], ["p"], [LABEL], multilabel_col=LABEL, progress_bar=False
        )
    assert out["average_precision"].isna().all()


# ------------------------------------------------------------------ find_pairs
def _brute_pairs(meta, sameby, diffby):
    s_all, s_any = normalize_side(sameby)
    d_all, d_any = normalize_side(diffby)
    rest = meta.drop(columns=LABEL).to_dict("records")
    lists = meta[LABEL].tolist()
    same = LABEL in s_all
    s_all = [c for c in s_all if c != LABEL]
    d_all = [c for c in d_all if c != LABEL]
    out = []
    for i in range(len(meta)):
        for j in range(i + 1, len(meta)):
            if not pair_satisfies(rest, i, j, s_all, s_any, d_all, d_any):
                continue
            shared = sorted(set(lists[i]) & set(lists[j]))
            if same:
                out += [(lab, i, j) for lab in shared]
            elif not shared:
                out.append((None, i, j))
    return sorted(out, key=lambda t: (str(t[0]), t[1], t[2]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=multilabel_cases())
def test_find_pairs_matches_brute_force(case):
    meta, _, (pos_same, pos_diff, neg_same, neg_diff) = case
    pairs, labels = pairmap.find_pairs(meta, pos_same, pos_diff, multilabel_col=LABEL)
    got = sorted(zip(map(str, labels), pairs[:, 0], pairs[:, 1], strict=True))
    assert got == [(str(lab), i, j) for lab, i, j in _brute_pairs(meta, pos_same, pos_diff)]
    neg = pairmap.find_pairs(meta, neg_same, neg_diff, multilabel_col=LABEL)
    assert [tuple(p) for p in neg.tolist()] == [
        (i, j) for _, i, j in _brute_pairs(meta, neg_same, neg_diff)
    ]


# ------------------------------------------------------------ split_multilabel
def test_split_multilabel():
    df = pd.DataFrame({"t": ["A|B", "C"], "x": [1, 2]}, index=[10, 11])
    out = pairmap.split_multilabel(df, "t")
    assert out["t"].tolist() == [["A", "B"], ["C"]]
    assert df["t"].tolist() == ["A|B", "C"]  # input untouched
    assert out.index.tolist() == [10, 11]
    assert pairmap.split_multilabel(df.assign(t=["A;B", "C"]), "t", sep=";")["t"][10] == ["A", "B"]


@pytest.mark.parametrize(
    "values,message",
    [
        (["A|B", np.nan], "missing value at row 1"),
        (["A||B", "C"], "empty label"),
        (["A|A", "C"], "twice"),
        (["A", 3], "int 3 at row 1"),
    ],
)
def test_split_multilabel_errors(values, message):
    with pytest.raises(ValueError, match=message):
        pairmap.split_multilabel(pd.DataFrame({"t": values}), "t")
    with pytest.raises(ValueError, match="not in the frame"):
        pairmap.split_multilabel(pd.DataFrame({"t": values}), "u")


# ---------------------------------------------------------- mAP per label
def test_mean_average_precision_per_label():
    rng = np.random.default_rng(1)
    n = 60
    lists = [list(rng.choice(6, size=rng.integers(1, 3), replace=False)) for _ in range(n)]
    meta = pd.DataFrame({LABEL: [[f"T{v}" for v in x] for x in lists]})
    X = rng.normal(size=(n, 8))
    ap = run(meta, X, ([LABEL], [], [], [LABEL]))
    res = pairmap.mean_average_precision(
        ap, sameby=[LABEL], null_size=2000, seed=0, progress_bar=False
    )
    assert res[LABEL].tolist() == sorted(ap[LABEL].unique())
    means = ap.groupby(LABEL)["average_precision"].mean()
    np.testing.assert_allclose(res.set_index(LABEL)["mean_average_precision"], means)
    assert res["p_value"].between(0, 1).all() and res["corrected_p_value"].notna().all()


# ---------------------------------------------------------------- bounded memory
def test_max_memory_bounds_multilabel_allocations():
    """tracemalloc sees every allocation (block lists, product blocks, the output frame)."""
    import tracemalloc

    rng = np.random.default_rng(0)
    n = 6000
    weights = 1 / (np.arange(200) + 5.0)
    weights /= weights.sum()
    lists = [
        list(rng.choice(200, size=rng.integers(1, 6), replace=False, p=weights)) for _ in range(n)
    ]
    meta = pd.DataFrame({LABEL: lists})
    # float64: block planning may send a query through BLAS or a compiled loop, and float32
    # products differ from float64-accumulated loops by ~1e-7 (see test_paths_...)
    X = rng.standard_normal((n, 32))
    rules = ([LABEL], [], [], [LABEL])
    run(meta.iloc[:300], X[:300], rules)  # compile
    tracemalloc.start()
    try:
        small = run(meta, X, rules, max_memory="16MB")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 6,000 x 6,000 candidate pairs would be 288 MB of float64 similarities
    assert peak <= 16e6 * 1.25 + 2e6, f"peak {peak / 1e6:.1f} MB over 16 MB"
    pd.testing.assert_frame_equal(small, run(meta, X, rules, max_memory="1GB"))
