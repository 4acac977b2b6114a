"""Fast checks of the benchmark scenario generators (tiny scale) and runner plumbing."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DATA_DIR
from oracles import brute_force_pairs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import scenarios as sc  # noqa: E402
from benchmarks.run import _worker_env, markdown, run_worker, summarize  # noqa: E402

SYNTHETIC = [
    n
    for n, s in sc.SCENARIOS.items()
    if s.kind == "ap"
    and n != "lincs"
    and not s.multilabel
    and not set(s.layout) & {"placement", "shuffle_rows", "fortran"}
]
VARIANTS = [
    n for n, s in sc.SCENARIOS.items() if set(s.layout) & {"placement", "shuffle_rows", "fortran"}
]


def tiny(name: str, seed: int = 0) -> sc.ScenarioData:
    return sc.build(name, scale=1e-9, seed=seed)  # one block of four plates


@pytest.mark.parametrize("name", SYNTHETIC)
def test_deterministic_and_seeded(name):
    a, b, c = tiny(name), tiny(name), tiny(name, seed=1)
    pd.testing.assert_frame_equal(a.meta, b.meta)
    np.testing.assert_array_equal(a.feats, b.feats)
    assert not np.array_equal(a.feats[:50], c.feats[:50])


@pytest.mark.parametrize("name", SYNTHETIC)
def test_layout(name):
    data = tiny(name)
    spec, meta, feats = data.spec, data.meta, data.feats
    lay = spec.layout
    assert feats.dtype == np.float32 and feats.flags.c_contiguous
    assert feats.shape == (len(meta), lay["n_features"])
    assert np.isfinite(feats).all()
    assert list(meta.index) == list(range(len(meta)))
    is_ctrl = meta[sc.PERT] == sc.CONTROL
    treated = meta[~is_ctrl]
    reps = treated.groupby(sc.PERT)[sc.PLATE].agg(["size", "nunique"])
    # replicates always on different plates
    assert (reps["size"] == reps["nunique"]).all()
    ctrl_per_plate = meta[is_ctrl].groupby(sc.PLATE).size()
    if lay.get("dropout"):
        assert reps["size"].between(1, 4).all() and (reps["size"] == 4).mean() > 0.9
        assert ctrl_per_plate.max() <= lay["ctrl_per_plate"]
    else:
        assert (reps["size"] == 4).all()
        assert len(reps) == lay["perts_per_plate"]
        assert (ctrl_per_plate == lay["ctrl_per_plate"]).all()
    assert meta[sc.PLATE].nunique() == 4


@pytest.mark.parametrize("name", [n for n in SYNTHETIC if sc.REFIDX in sc.SCENARIOS[n].neg_diffby])
def test_reference_index_matches_copairs(name):
    copairs_matching = pytest.importorskip("copairs.matching")
    meta = tiny(name).meta
    ref = copairs_matching.assign_reference_index(
        meta.drop(columns=sc.REFIDX), f"{sc.PERT} == '{sc.CONTROL}'"
    )
    np.testing.assert_array_equal(
        meta[sc.REFIDX].to_numpy(), ref["Metadata_Reference_Index"].to_numpy()
    )


def test_scale_keeps_plate_structure():
    small = sc.build("plates1m", scale=2 / 651)
    assert len(small.meta) == 2 * 4 * 384
    assert (small.meta.groupby(sc.PLATE).size() == 384).all()


def test_full_scale_sizes_documented():
    # sizes from the layouts, without generating the data
    sizes = {}
    for name in SYNTHETIC:
        lay = sc.SCENARIOS[name].layout
        sizes[name] = lay["n_blocks"] * 4 * (lay["perts_per_plate"] + lay["ctrl_per_plate"])
    assert sizes["activity9k"] == 9_000
    assert sizes["activity110k"] == 110_000
    assert abs(sizes["orf72k"] - 72_000) < 500
    assert abs(sizes["ctrl100k"] - 100_000) < 500
    assert abs(sizes["plates1m"] - 1_000_000) < 500


def test_count_pairs_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(20):
        n = int(rng.integers(2, 25))
        meta = pd.DataFrame({c: rng.integers(0, 3, n) for c in "abc"})
        cols = list("abc")
        for k in range(4):
            for sameby in itertools.combinations(cols, k):
                rest = [c for c in cols if c not in sameby]
                for j in range(len(rest) + 1):
                    for diffby in itertools.combinations(rest, j):
                        assert sc.count_pairs(meta, list(sameby), list(diffby)) == len(
                            brute_force_pairs(meta, list(sameby), list(diffby))
                        )


@pytest.mark.parametrize("name", SYNTHETIC)
def test_required_dot_products_match_copairs_pairs(name):
    matching = pytest.importorskip("copairs.matching")
    data = tiny(name)
    s = data.spec
    pos = matching.find_pairs(data.meta, sameby=list(s.pos_sameby), diffby=list(s.pos_diffby))
    neg = matching.find_pairs(data.meta, sameby=list(s.neg_sameby), diffby=list(s.neg_diffby))
    assert sc.required_dot_products(data) == len(pos) + len(neg)


def test_unknown_scenario_message():
    with pytest.raises(ValueError, match="unknown scenario 'nope'.*activity9k"):
        sc.build("nope")


def test_null1m_uses_orf72k_data():
    a, b = sc.build("null1m", scale=1e-9), tiny("orf72k")
    np.testing.assert_array_equal(a.feats, b.feats)
    assert a.spec.map_kwargs()["null_size"] == 10**6


@pytest.mark.skipif(not (DATA_DIR / sc.LINCS_FILE).exists(), reason="../shared/data is absent")
def test_lincs():
    data = sc.build("lincs")
    assert data.feats.shape == (384, 454) and data.feats.dtype == np.float32
    ctrl = data.meta[sc.LINCS_PERT] == "DMSO"
    assert ctrl.sum() == 24
    assert (data.meta.loc[ctrl, sc.REFIDX] == data.meta.index[ctrl]).all()
    assert (data.meta.loc[~ctrl, sc.REFIDX] == -1).all()


def test_runner_reports_oom_and_timeout(tmp_path):
    env = _worker_env(1)
    common = ["--scenario", "activity9k", "--cache", str(tmp_path)]
    oom = run_worker(
        [*common, "--tool", "selftest-alloc", "--selftest-gb", "1.0"],
        env,
        0.6,
        None,
        tmp_path / "a.json",
    )
    assert oom["status"] == "OOM (> 0.6 GB)"
    slow = run_worker(
        [*common, "--tool", "selftest-sleep", "--selftest-gb", "30"],
        env,
        4.0,
        1.0,
        tmp_path / "b.json",
    )
    assert slow["status"].startswith("timeout")
    ok = run_worker(
        [*common, "--tool", "selftest-alloc", "--selftest-gb", "0.2"],
        env,
        4.0,
        None,
        tmp_path / "c.json",
    )
    assert ok["status"] == "ok"
    # working memory excludes what was resident before the run
    assert 0.15 < ok["working_gb"] < 0.35


def test_summary_table_marks_failed_runs():
    prep = {"x": {"n_profiles": 10, "n_features": 3, "n_pairs": 45, "floor_s": 1e-6}}
    runs = {
        ("x", "pairmap"): [
            {"status": "ok", "wall_s": 1.0, "cpu_s": 2.0, "peak_rss_gb": 1.0, "working_gb": 0.5},
            {"status": "ok", "wall_s": 3.0, "cpu_s": 2.0, "peak_rss_gb": 1.0, "working_gb": 0.5},
        ],
        ("x", "copairs"): [{"status": "OOM (> 20 GB)"}],
    }
    rows = summarize(prep, runs, {}, ["pairmap", "copairs"])
    assert rows[0]["pairmap_wall_s"] == 2.0
    table = markdown(rows, ["pairmap", "copairs"], 20)
    assert "OOM (> 20 GB)" in table and "| 2 s |" in table


@pytest.mark.parametrize("name", VARIANTS)
def test_layout_variants_keep_sizes_and_change_only_the_layout(name):
    base = name.split("_")[0]
    scale = 3 / sc.SCENARIOS[base].layout["n_blocks"]  # three blocks of four plates
    var, ref = sc.build(name, scale=scale), sc.build(base, scale=scale)
    lay = sc.SCENARIOS[name].layout
    assert var.feats.shape[1] == ref.feats.shape[1] and len(var.feats) == len(var.meta)
    assert abs(len(var.meta) - len(ref.meta)) <= 0.01 * len(ref.meta)  # dropout redrawn
    assert var.feats.flags.f_contiguous == bool(lay.get("fortran"))
    reps = var.meta[var.meta[sc.PERT] != sc.CONTROL].groupby(sc.PERT)[sc.PLATE]
    ref_reps = ref.meta[ref.meta[sc.PERT] != sc.CONTROL].groupby(sc.PERT)[sc.PLATE]
    if lay.get("placement") == "random":
        # replicates leave their block of four plates
        blocks = reps.agg(lambda p: p.str[-4:].astype(int).floordiv(4).nunique())
        assert (blocks > 1).mean() > 0.5
    elif not lay.get("dropout"):
        pd.testing.assert_series_equal(reps.size(), ref_reps.size())
    if lay.get("shuffle_rows"):
        assert not var.meta[sc.PLATE].is_monotonic_increasing
    if lay.get("fortran"):
        np.testing.assert_array_equal(var.feats, ref.feats)


def test_consistency20k_layout():
    data = sc.build("consistency20k", scale=0.05)
    meta, lay = data.meta, data.spec.layout
    assert len(meta) == 1000 and meta[sc.PERT].is_unique
    assert data.feats.shape == (1000, lay["n_features"]) and data.feats.dtype == np.float32
    sizes = meta[sc.TARGET].map(len)
    assert sizes.between(1, lay["max_labels"]).all() and set(sizes) == {1, 2, 3, 4, 5}
    assert all(len(set(v)) == len(v) for v in meta[sc.TARGET])
    counts = meta[sc.TARGET].explode().value_counts()
    assert counts.index.str.fullmatch(r"T\d{4}").all()
    # skewed: the most popular target is far above the median
    assert counts.iloc[0] > 10 * counts.median()
    b = sc.build("consistency20k", scale=0.05)
    pd.testing.assert_frame_equal(meta, b.meta)
    np.testing.assert_array_equal(data.feats, b.feats)


def test_consistency20k_full_scale_skew():
    """At full scale the weights give a few targets with hundreds of compounds."""
    w = sc._target_weights(2000)
    expected = w * 20_000 * 3  # 1-5 labels, mean 3
    assert 500 < expected[0] < 800 and 10 < np.median(expected) < 40 and expected[-1] > 3


def test_consistency20k_pairs_match_copairs():
    matching = pytest.importorskip("copairs.matching")
    data = sc.build("consistency20k", scale=0.01)
    kw = data.spec.ap_kwargs()
    col = kw["multilabel_col"]
    pos, _, counts = matching.find_pairs_multilabel(
        data.meta, sameby=kw["pos_sameby"], diffby=kw["pos_diffby"], multilabel_col=col
    )
    neg = matching.find_pairs_multilabel(
        data.meta, sameby=kw["neg_sameby"], diffby=kw["neg_diffby"], multilabel_col=col
    )
    distinct_pos = len(np.unique(pos, axis=0))
    assert sc.required_dot_products(data) == distinct_pos + len(neg)
