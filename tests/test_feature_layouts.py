"""Results do not depend on how the features are stored.

The engine reads C-contiguous in-memory arrays in place and gathers every other
layout (Fortran order, strided views, memory maps, DataFrames, integer arrays,
row subsets, correlation's centring) block by block. Both routes must give
bit-identical tables; the gathered route is forced on small inputs by turning
off the small-input copy and, where stated, by shrinking the gathered blocks to
a few rows so that candidate ranges are split across kernel calls.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_screen

import pairmap
from pairmap import _retrieval, similarity
from pairmap.features import FeatureSource, as_feature_source

#: these tests are about the compiled engine (small screens default to NumPy alone)
pytestmark = pytest.mark.usefixtures("compiled_engine")

ACTIVITY = dict(
    pos_sameby=["Metadata_broad_sample", "Metadata_Reference_Index"],
    pos_diffby=[],
    neg_sameby=[],
    neg_diffby=["Metadata_broad_sample", "Metadata_Reference_Index"],
)
PER_PLATE = dict(ACTIVITY, neg_sameby=["Metadata_Plate"])
CONSISTENCY = dict(
    pos_sameby=["Metadata_broad_sample"],
    pos_diffby=["Metadata_Plate"],
    neg_sameby=["Metadata_Plate"],
    neg_diffby=["Metadata_broad_sample"],
)


def _screen(dtype=np.float64, seed=0):
    # plates of 60 x 2 + 16 wells: per-plate buckets >= 128 rows take the matrix-product path
    return make_screen(
        seed, n_plates=3, n_compounds=60, n_reps=2, n_controls=16, n_features=9, dtype=dtype
    )


def _ap(meta, feats, rules, **kw):
    kw.setdefault("progress_bar", False)
    return pairmap.average_precision(meta, feats, **rules, **kw)


@pytest.fixture
def gathered(monkeypatch):
    """Force the gathered route even for small inputs."""
    monkeypatch.setattr(similarity, "COPY_BELOW", 0)


@pytest.fixture
def tiny_blocks(monkeypatch, gathered):
    """Gathered blocks of at most 7 rows: ranges split, many kernel calls per query."""
    monkeypatch.setattr(_retrieval, "_local_cap", lambda source, codes, budget: 7)


def _layouts(X, tmp_path):
    """The same matrix in many storage forms."""
    big = np.zeros((X.shape[0], X.shape[1] + 3), dtype=X.dtype)
    big[:, 1 : 1 + X.shape[1]] = X
    path_c = tmp_path / "c.npy"
    np.save(path_c, X)
    path_f = tmp_path / "f.npy"
    np.save(path_f, np.asfortranarray(X))
    return {
        "fortran": np.asfortranarray(X),
        "strided": big[:, 1 : 1 + X.shape[1]],
        "every_other_row": np.repeat(X, 2, axis=0)[::2],
        "read_only": np.frombuffer(X.tobytes(), dtype=X.dtype).reshape(X.shape),
        "memmap_c": np.load(path_c, mmap_mode="r"),
        "memmap_f": np.load(path_f, mmap_mode="r"),
        "npy_path": str(path_c),
        "frame": pd.DataFrame(np.asfortranarray(X), columns=[f"f{j}" for j in range(X.shape[1])]),
    }


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rules", [ACTIVITY, PER_PLATE, CONSISTENCY], ids=["act", "plate", "cons"])
def test_every_layout_gives_identical_results(tmp_path, gathered, dtype, rules):
    meta, X = _screen(dtype)
    expected = _ap(meta, X, rules)
    assert expected["average_precision"].notna().sum() > 100
    for name, feats in _layouts(X, tmp_path).items():
        got = _ap(meta, feats, rules)
        pd.testing.assert_frame_equal(got, expected, check_exact=True, obj=name)


@pytest.mark.parametrize(
    "distance", ["cosine", "correlation", "euclidean", "manhattan", "chebyshev", "abs_cosine"]
)
def test_split_gathered_blocks_match_in_place_for_every_metric(monkeypatch, distance):
    meta, X = _screen(np.float64, seed=1)
    expected = {
        r: _ap(meta, X, rules, distance=distance)
        for r, rules in (("a", ACTIVITY), ("c", CONSISTENCY))
    }
    monkeypatch.setattr(similarity, "COPY_BELOW", 0)
    monkeypatch.setattr(_retrieval, "_local_cap", lambda source, codes, budget: 7)
    gathered_rows = []
    take = FeatureSource.take
    monkeypatch.setattr(
        FeatureSource,
        "take",
        lambda self, rows: gathered_rows.append(len(rows)) or take(self, rows),
    )
    for r, rules in (("a", ACTIVITY), ("c", CONSISTENCY)):
        got = _ap(meta, np.asfortranarray(X), rules, distance=distance, n_jobs=2, batch_size=50)
        pd.testing.assert_frame_equal(got, expected[r], check_exact=True)
    assert sum(g <= 2 * 7 for g in gathered_rows) > 100  # many small direct-scan pieces


def test_callable_distance_reads_gathered_rows(tiny_blocks):
    meta, X = _screen(np.float64, seed=2)

    def neg_l1(a, b):
        return -np.abs(a - b).sum(axis=1)

    expected = _ap(meta, X, ACTIVITY, distance=neg_l1)
    got = _ap(meta, np.asfortranarray(X), ACTIVITY, distance=neg_l1)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_query_filter_subsets_rows_without_copying(tiny_blocks):
    meta, X = _screen(np.float32, seed=3)
    meta["Metadata_dose"] = np.arange(len(meta)) % 3
    rules = dict(ACTIVITY, pos_sameby=ACTIVITY["pos_sameby"] + ["Metadata_dose > 0"])
    keep = (meta["Metadata_dose"] > 0).to_numpy()
    expected = _ap(meta[keep].reset_index(drop=True), np.ascontiguousarray(X[keep]), ACTIVITY)
    got = _ap(meta, np.asfortranarray(X), rules)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_mixed_dtype_frame_and_integers_convert_blockwise(gathered):
    meta, X = _screen(np.float64, seed=4)
    Xi = np.rint(X * 4).astype(np.int64)
    expected = _ap(meta, Xi.astype(np.float64), ACTIVITY)
    frame = pd.DataFrame({f"f{j}": Xi[:, j] for j in range(Xi.shape[1])})
    frame["f0"] = frame["f0"].astype(np.float32)  # mixed dtypes: read column by column
    for feats in (np.asfortranarray(Xi), frame):
        pd.testing.assert_frame_equal(_ap(meta, feats, ACTIVITY), expected, check_exact=True)


def test_bad_values_in_gathered_layouts_are_located(tmp_path):
    meta, X = _screen(np.float64, seed=5)
    X[17, 4] = np.nan
    path = tmp_path / "x.npy"
    np.save(path, np.asfortranarray(X))
    for feats in (np.asfortranarray(X), str(path)):
        with pytest.raises(ValueError, match="row 17, feature 'column 4'"):
            _ap(meta, feats, ACTIVITY)


def test_paths_other_than_npy_are_rejected_with_the_fix(tmp_path):
    meta, X = _screen()
    csv = tmp_path / "x.csv"
    csv.write_text("a\n1\n")
    with pytest.raises(ValueError, match=r"only \.npy files"):
        _ap(meta, str(csv), ACTIVITY)
    with pytest.raises(FileNotFoundError, match="no such file"):
        _ap(meta, str(tmp_path / "missing.npy"), ACTIVITY)


def test_source_gathers_c_ordered_blocks_in_requested_order():
    X = np.arange(40.0).reshape(10, 4)
    for data in (np.asfortranarray(X), X[:, :]):
        src = FeatureSource(data)
        rows = np.array([7, 2, 2, 9])
        block = src.take(rows)
        assert block.flags.c_contiguous and block.flags.writeable
        np.testing.assert_array_equal(block, X[rows])
    sub = FeatureSource(np.asfortranarray(X)).subset(np.array([1, 3, 5])).centered()
    np.testing.assert_array_equal(sub.take(np.array([2])), X[[5]] - X[5].mean())
    assert FeatureSource(X).direct is X
    assert FeatureSource(np.asfortranarray(X)).direct is None


def test_memory_map_pages_are_released_while_reading(tmp_path, monkeypatch):
    from pairmap import features

    X = np.random.default_rng(0).standard_normal((4096, 64))
    np.save(tmp_path / "x.npy", X)
    src = as_feature_source(str(tmp_path / "x.npy"), len(X))
    calls = []
    monkeypatch.setattr(features, "RELEASE_BYTES", 1 << 16)
    real = src._mmap
    src._mmap = type("Spy", (), {"madvise": lambda self, flag: calls.append(flag)})()
    total = np.zeros(64)
    for _, block in src.blocks(nbytes=1 << 15):
        total += block.sum(axis=0)
    np.testing.assert_allclose(total, X.sum(axis=0))
    assert len(calls) >= 30  # 2 MiB read, released every 64 KiB
    src._mmap = real


class _RowStore:
    """A minimal array-like with NumPy-style orthogonal indexing (what Zarr offers)."""

    def __init__(self, X):
        self._X, self.shape, self.dtype = X, X.shape, X.dtype
        self.reads = []

    @property
    def oindex(self):
        store = self

        class _O:
            def __getitem__(self, key):
                rows, cols = key
                assert np.all(np.diff(rows) > 0), "rows must come sorted and unique"
                store.reads.append(len(rows))
                return store._X[rows][:, cols]

        return _O()

    def __getitem__(self, key):
        return self._X[key]


def test_array_likes_are_read_sorted_by_orthogonal_indexing(tiny_blocks):
    meta, X = _screen(np.float32, seed=6)
    store = _RowStore(X)
    pd.testing.assert_frame_equal(
        _ap(meta, store, ACTIVITY), _ap(meta, X, ACTIVITY), check_exact=True
    )
    assert len(store.reads) > 10 and max(store.reads) < len(X)


def test_zarr_arrays_and_paths(tmp_path, gathered):
    zarr = pytest.importorskip("zarr", reason="zarr is not installed")
    meta, X = _screen(np.float32, seed=7)
    z = zarr.open_array(
        str(tmp_path / "x.zarr"), mode="w", shape=X.shape, chunks=(64, 9), dtype="float32"
    )
    z[:] = X
    expected = _ap(meta, X, ACTIVITY)
    for feats in (z, str(tmp_path / "x.zarr")):
        pd.testing.assert_frame_equal(_ap(meta, feats, ACTIVITY), expected, check_exact=True)


def _sequential_stats(X, R):
    """Oracle: float64 sums with the features added one by one, in column order (Python)."""
    n, d = X.shape
    sq, means, proj = np.zeros(n), np.zeros(n), np.zeros((n, 2))
    for i in range(n):
        a = s = p0 = p1 = 0.0
        for f in range(d):
            v = float(X[i, f])
            a += v * v
            s += v
            p0 += v * float(R[f, 0])
            p1 += v * float(R[f, 1])
        sq[i], means[i], proj[i] = a, s / d, (p0, p1)
    return sq, means, proj


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [1, 3, 4, 13])
def test_one_pass_statistics_are_sequential_sums_in_every_layout(tmp_path, dtype, d):
    """``FeatureSource.scan`` equals the sequential-sum oracle bit for bit, for every layout."""
    from pairmap._ties import projection_matrix

    rng = np.random.default_rng(d)
    X = (rng.standard_normal((700, d)) * rng.choice([1e-3, 1.0, 1e3], size=(700, 1))).astype(dtype)
    sq, means, proj = _sequential_stats(X, projection_matrix(d, dtype))
    for name, feats in _layouts(X, tmp_path).items():
        stats = as_feature_source(feats, len(X)).scan()
        assert (stats.n_bad, stats.first_bad) == (0, None), name
        np.testing.assert_array_equal(stats.sq_norms, sq, err_msg=name)
        np.testing.assert_array_equal(stats.means, means, err_msg=name)
        np.testing.assert_array_equal(stats.proj, proj, err_msg=name)


def test_one_pass_statistics_count_and_locate_non_finite_values():
    X = np.random.default_rng(3).standard_normal((1000, 13))
    X[[4, 4, 900], [2, 5, 7]] = [np.inf, -np.inf, np.nan]
    X[500, 3] = 1e200  # finite, but its square overflows: checked, not counted
    for feats in (X, np.asfortranarray(X), np.repeat(X, 2, axis=0)[::2]):
        stats = FeatureSource(feats).scan()
        assert stats.n_bad == 3
        assert stats.first_bad[:2] == (4, 2) and stats.first_bad[2] == np.inf


def test_gathered_source_is_read_once_for_whole_matrix_statistics(monkeypatch):
    """Finiteness, norms and the tie projection share one pass (each pass is a full gather);
    a Fortran-ordered matrix is read through its transpose, without gathering any row."""
    meta, X = _screen(np.float32, seed=2)
    expected = _ap(meta, X, ACTIVITY)
    calls = []
    original = FeatureSource.slice

    def counting_slice(self, start, stop):
        calls.append(stop - start)
        return original(self, start, stop)

    monkeypatch.setattr(FeatureSource, "slice", counting_slice)
    monkeypatch.setattr(similarity, "COPY_BELOW", 0)
    big = np.zeros((X.shape[0], X.shape[1] + 3), dtype=X.dtype)
    big[:, 1 : 1 + X.shape[1]] = X
    strided = big[:, 1 : 1 + X.shape[1]]
    got = _ap(meta, strided, ACTIVITY)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert sum(calls) == len(X)  # every row sliced once, not once per statistic
    calls.clear()
    _ap(meta, strided, dict(ACTIVITY), distance="correlation")
    # correlation: finiteness + means in the first pass; norms + projection of the centred rows
    # in the second (before this fusion: four passes)
    assert sum(calls) == 2 * len(X)
    calls.clear()
    pd.testing.assert_frame_equal(
        _ap(meta, np.asfortranarray(X), ACTIVITY), expected, check_exact=True
    )
    assert sum(calls) == 0
    _ap(meta, np.asfortranarray(X), dict(ACTIVITY), distance="correlation")
    assert sum(calls) == len(X)  # only the centred rows are gathered


@pytest.mark.parametrize("layout", ["in_place", "fortran_tiny_blocks"])
@pytest.mark.parametrize("rules", [ACTIVITY, PER_PLATE, CONSISTENCY], ids=["act", "plate", "cons"])
def test_positives_prepass_changes_only_the_order_of_work(monkeypatch, layout, rules):
    # rows shuffled (replicates scattered), and enough controls that the DMSO positive
    # bucket of the consistency rules (150 rows) takes the blocks' matrix-product path
    meta, X = make_screen(
        4, n_plates=3, n_compounds=40, n_reps=2, n_controls=50, n_features=9, dtype=np.float32
    )
    order = np.random.default_rng(4).permutation(len(meta))
    meta, X = meta.iloc[order].reset_index(drop=True), np.ascontiguousarray(X[order])
    meta["Metadata_Reference_Index"] = np.where(
        meta["Metadata_broad_sample"] == "DMSO", np.arange(len(meta)), -1
    )
    feats = X
    if layout != "in_place":
        monkeypatch.setattr(similarity, "COPY_BELOW", 0)
        monkeypatch.setattr(_retrieval, "_local_cap", lambda source, codes, budget: 7)
        feats = np.asfortranarray(X)
    kw = dict(n_jobs=2, batch_size=37)
    ran = []
    prepass = _retrieval._positives_prepass
    monkeypatch.setattr(
        _retrieval,
        "_positives_prepass",
        lambda *a: ran.append(prepass(*a)) or ran[-1],
    )
    got = _ap(meta, feats, rules, **kw)
    assert ran and ran[-1] is not None and (ran[-1].slot_of >= 0).sum() > 100
    monkeypatch.setattr(_retrieval, "PREPASS_SHARE", 1 << 62)  # no budget: pre-pass skipped
    ran.clear()
    expected = _ap(meta, feats, rules, **kw)
    assert ran == [None]
    assert expected["average_precision"].notna().sum() > 100
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


@pytest.mark.parametrize("shuffle", [False, True], ids=["plates", "shuffled"])
@pytest.mark.parametrize("rules", [PER_PLATE, CONSISTENCY], ids=["plate", "cons"])
def test_block_copies_of_gathered_rows_give_identical_results(monkeypatch, shuffle, rules):
    """Fortran input: each block copies its plates once; positives whose rows lie in the
    block's copy are scored there (not in the pre-pass), the others in the pre-pass."""
    # three groups of two plates (68 wells each), each group with compounds of its own: a
    # block of up to 150 queries is cut between groups, so replicates lie in the block's copy
    parts = []
    for g in range(3):
        m, x = make_screen(5 + g, n_plates=2, n_compounds=30, n_reps=2, n_controls=8, n_features=9)
        m["Metadata_Plate"] = f"G{g}" + m["Metadata_Plate"]
        treated = m["Metadata_broad_sample"] != "DMSO"
        m.loc[treated, "Metadata_broad_sample"] += f"_g{g}"
        parts.append((m, x.astype(np.float32)))
    meta = pd.concat([m for m, _ in parts], ignore_index=True)
    X = np.concatenate([x for _, x in parts])
    meta["Metadata_Reference_Index"] = np.where(
        meta["Metadata_broad_sample"] == "DMSO", np.arange(len(meta)), -1
    )
    if shuffle:
        order = np.random.default_rng(5).permutation(len(meta))
        meta, X = meta.iloc[order].reset_index(drop=True), np.ascontiguousarray(X[order])
    expected = _ap(meta, X, rules)
    assert expected["average_precision"].notna().sum() > 200
    monkeypatch.setattr(similarity, "COPY_BELOW", 0)
    copies, held = [], []
    init, find_held = _retrieval._BlockRows.__init__, _retrieval._held_positives
    monkeypatch.setattr(
        _retrieval._BlockRows,
        "__init__",
        lambda self, *a: copies.append(len(a[1])) or init(self, *a),
    )
    monkeypatch.setattr(
        _retrieval, "_held_positives", lambda *a: held.append(find_held(*a)) or held[-1]
    )
    for n_jobs in (1, 2):
        got = _ap(meta, np.asfortranarray(X), rules, batch_size=150, n_jobs=n_jobs)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert len(copies) >= 3 and max(copies) < len(X)
    n_held = int(held[-1].sum())
    assert (n_held > 100) if not shuffle else (n_held < 100)
