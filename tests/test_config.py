"""Tests of the config runner (pairmap.config) and atomic output (pairmap._io)."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import DATA_DIR, LINCS_FILE

import pairmap
from pairmap import _io
from pairmap.config import ConfigError, load_config, run_config, validate_config

LINCS = DATA_DIR / LINCS_FILE
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "activity_lincs.yaml"

KEYS = ["Metadata_Perturbation", "Metadata_Reference_Index"]


# keep the on-disk null cache of these runs out of the user's cache folder
pytestmark = pytest.mark.usefixtures("private_null_cache")


@pytest.fixture(scope="module")
def screen_csv(screen_csv_factory) -> Path:
    return screen_csv_factory(n_perturbations=16, n_replicates=3, n_controls_per_plate=6,
                              n_features=24, n_active_features=8, seed=5)


def base_config(data_path: Path, out_dir: Path) -> dict:
    return {
        "data": {"path": str(data_path), "metadata_regex": "^Metadata"},
        "preprocessing": [
            {"type": "assign_reference", "params": {"condition": "Metadata_Control"}},
        ],
        "average_precision": {
            "params": {
                "pos_sameby": KEYS, "pos_diffby": [], "neg_sameby": [], "neg_diffby": KEYS,
                "progress_bar": False,
            }
        },
        "mean_average_precision": {
            "params": {
                "sameby": ["Metadata_Perturbation"], "null_size": 500, "threshold": 0.05,
                "seed": 0, "progress_bar": False,
            }
        },
        "output": {"directory": str(out_dir), "name": "act"},
    }


def direct_results(csv: Path):
    df = pd.read_csv(csv)
    df = pairmap.assign_reference_index(df, "Metadata_Control")
    meta = df.filter(regex="^Metadata").reset_index(drop=True)
    feats = df[[c for c in df.columns if not c.startswith("Metadata")]].to_numpy()
    ap = pairmap.average_precision(meta, feats, KEYS, [], [], KEYS, progress_bar=False)
    maps = pairmap.mean_average_precision(
        ap, ["Metadata_Perturbation"], null_size=500, threshold=0.05, seed=0, progress_bar=False
    )
    return ap, maps


def test_run_matches_direct_api(screen_csv, tmp_path):
    out = tmp_path / "res"
    result = run_config(base_config(screen_csv, out))
    assert sorted(p.name for p in out.iterdir()) == [
        "act_ap_scores.csv", "act_map_plot.png", "act_map_results.csv",
    ]
    assert [p.name for p in result.written] == [
        "act_ap_scores.csv", "act_map_results.csv", "act_map_plot.png",
    ]
    ap, maps = direct_results(screen_csv)
    got_ap = pd.read_csv(out / "act_ap_scores.csv")
    np.testing.assert_allclose(got_ap["average_precision"], ap["average_precision"], rtol=1e-12)
    got_map = pd.read_csv(out / "act_map_results.csv")
    for col in ("mean_average_precision", "p_value", "corrected_p_value"):
        np.testing.assert_allclose(got_map[col], maps[col], rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(
        got_map["-log10(p-value)"], -np.log10(maps["corrected_p_value"]), equal_nan=True
    )
    assert result.n_features == 24


def test_ap_matches_copairs(screen_csv, tmp_path):
    copairs_map = pytest.importorskip("copairs.map")
    from copairs.matching import assign_reference_index

    result = run_config(base_config(screen_csv, tmp_path / "o"))
    df = assign_reference_index(pd.read_csv(screen_csv), "Metadata_Control")
    meta = df.filter(regex="^Metadata")
    feats = df[[c for c in df.columns if not c.startswith("Metadata")]].to_numpy()
    ref = copairs_map.average_precision(meta, feats, KEYS, [], [], KEYS, progress_bar=False)
    np.testing.assert_allclose(
        result.ap_scores["average_precision"].to_numpy(dtype=float),
        ref["average_precision"].to_numpy(dtype=float), rtol=1e-9, atol=1e-12, equal_nan=True,
    )


def test_legacy_layouts_give_same_results(screen_csv, tmp_path):
    new = base_config(screen_csv, tmp_path / "new")
    ref = run_config(new).map_results

    old = copy.deepcopy(new)
    old["input"] = old.pop("data")
    old["preprocessing"] = {
        "steps": [{"type": "apply_assign_reference", "params": {"condition": "Metadata_Control"}}]
    }
    old["mean_average_precision"] = dict(old["mean_average_precision"]["params"])
    old["output"] = {"path": str(tmp_path / "legacy" / "map.parquet"), "save_ap_scores": True}
    old["plotting"] = {"enabled": True, "path": str(tmp_path / "legacy" / "plot.png"),
                       "title": "t", "figsize": [4, 3], "dpi": 50}
    res = run_config(old)
    assert sorted(p.name for p in (tmp_path / "legacy").iterdir()) == [
        "map.parquet", "map_ap_scores.parquet", "plot.png",
    ]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "legacy" / "map.parquet"), ref)
    pd.testing.assert_frame_equal(res.map_results, ref)

    # first runner version: parameters next to 'type'
    inline = copy.deepcopy(new)
    inline["preprocessing"] = [{"type": "assign_reference", "condition": "Metadata_Control"}]
    inline["output"]["directory"] = str(tmp_path / "inline")
    pd.testing.assert_frame_equal(run_config(inline).map_results, ref)


def test_yaml_file_and_env_expansion(screen_csv, tmp_path, monkeypatch):
    cfg = base_config(screen_csv, tmp_path / "out")
    cfg["data"]["path"] = "${oc.env:PAIRMAP_TEST_DATA}/" + screen_csv.name
    cfg["output"]["directory"] = "${oc.env:PAIRMAP_TEST_UNSET,fallback}/out"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("PAIRMAP_TEST_DATA", str(screen_csv.parent))
    monkeypatch.delenv("PAIRMAP_TEST_UNSET", raising=False)
    monkeypatch.chdir(tmp_path)
    loaded = load_config(path)
    assert loaded["data"]["path"] == str(screen_csv)
    assert loaded["output"]["directory"] == "fallback/out"
    run_config(path)
    assert (tmp_path / "fallback" / "out" / "act_map_results.csv").is_file()

    monkeypatch.delenv("PAIRMAP_TEST_DATA")
    with pytest.raises(ConfigError, match="environment variable 'PAIRMAP_TEST_DATA' is not set"):
        load_config(path)


def test_preprocessing_steps(tmp_path):
    df = pd.DataFrame(
        {
            "Metadata_cpd": ["a", "a", "b", "b", "c", "ctrl", "ctrl", None],
            "Metadata_dose": [1, 2, 1, 2, 1, 0, 0, 1],
            "f1": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
            "f2": [1.0, np.nan, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        }
    )
    from pairmap.config import preprocess

    data = {"metadata_regex": "^Metadata"}
    out = preprocess(df, [("dropna", {})], data)
    assert len(out) == 7
    out = preprocess(df, [("remove_nan_features", {})], data)
    assert "f2" not in out.columns and "f1" in out.columns
    out = preprocess(df, [("filter", {"query": "Metadata_dose > 0"})], data)
    assert len(out) == 6
    out = preprocess(df.dropna(subset=["Metadata_cpd"]),
                     [("filter_single_replicates", {"groupby": ["Metadata_cpd"]})], data)
    assert sorted(out["Metadata_cpd"].unique()) == ["a", "b", "ctrl"]
    out = preprocess(df, [("aggregate_replicates", {"groupby": ["Metadata_cpd"]})], data)
    assert out.set_index("Metadata_cpd").loc["a", "f1"] == pytest.approx(0.15)
    out = preprocess(df, [("add_column", {"column": "Metadata_is_ctrl",
                                          "query": "Metadata_cpd == 'ctrl'"})], data)
    assert out["Metadata_is_ctrl"].tolist() == [False] * 5 + [True, True, False]
    with pytest.raises(ConfigError, match="left no rows"):
        preprocess(df, [("filter", {"query": "Metadata_dose > 5"})], data)
    with pytest.raises(ConfigError, match="filter query 'Metadata_nope > 1' failed"):
        preprocess(df, [("filter", {"query": "Metadata_nope > 1"})], data)


def _valid():
    return {
        "data": {"path": "x.csv"},
        "average_precision": {"params": {"pos_sameby": ["Metadata_a"], "pos_diffby": [],
                                         "neg_sameby": [], "neg_diffby": ["Metadata_a"]}},
        "mean_average_precision": {"params": {"sameby": ["Metadata_a"]}},
        "output": {"path": "out.csv"},
    }


def _mutate(path, value):
    cfg = _valid()
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return cfg


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({**_valid(), "outptu": {}}, r"unknown top-level section 'outptu'; valid sections are: "
                                     r"data, input"),
        (_mutate(["data", "metadata_rgx"], "^M"), r"unknown key 'data.metadata_rgx'; valid keys "
                                                   r"in 'data' are: path, metadata_regex"),
        (_mutate(["preprocessing"], [{"type": "normalize"}]),
         r"unknown preprocessing step 'normalize'; valid steps are: filter, assign_reference"),
        (_mutate(["preprocessing"], [{"type": "split_multilabel", "params": {"column": "x"}}]),
         r"step 'split_multilabel' is not supported"),
        (_mutate(["preprocessing"], [{"type": "filter", "params": {"qeury": "a"}}]),
         r"unknown key 'preprocessing\[0\].params \(filter\).qeury'; valid keys .*: query"),
        (_mutate(["preprocessing"], [{"type": "filter", "params": {}}]),
         r"step 'filter' needs the parameter\(s\) \['query'\]"),
        (_mutate(["preprocessing"], [{"type": "filter", "params": {"query": "a"}, "x": 1}]),
         r"unknown key 'preprocessing\[0\].x'"),
        (_mutate(["average_precision", "params", "distanse"], "cosine"),
         r"unknown key 'average_precision.params.distanse'; valid keys .*pos_sameby"),
        (_mutate(["average_precision", "multilabel"], True), r"multilabel: true' is not supported"),
        (_mutate(["mean_average_precision", "params", "nul_size"], 10),
         r"unknown key 'mean_average_precision.params.nul_size'; valid keys .*null_size"),
        (_mutate(["mean_average_precision", "params"], {"null_size": 10}),
         r"mean_average_precision.params.sameby' is required"),
        (_mutate(["output", "dir"], "x"), r"unknown key 'output.dir'; valid keys in 'output'"),
        (_mutate(["output"], {"directory": "d"}), r"needs both 'directory' and 'name'"),
        (_mutate(["output"], {"path": "a.csv", "directory": "d", "name": "n"}),
         r"either 'path' .* or 'directory' and 'name'"),
        (_mutate(["output"], {"path": "a.xlsx"}), r"output.path': cannot tell the table format"),
        (_mutate(["output"], {"directory": "d", "name": "n", "format": "xls"}),
         r"'output.format' must be 'csv' or 'parquet'"),
        (_mutate(["data", "filter_query"], "x"), r"lazy SQL filtering is not supported"),
        (_mutate(["plotting"], {"enabled": True}), r"'plotting.path' is required"),
        (_mutate(["plotting"], {"colour": "red"}), r"unknown key 'plotting.colour'"),
        ({k: v for k, v in _valid().items() if k != "output"}, r"needs a 'output' section"),
        (_mutate(["average_precision", "params"], {"pos_sameby": []}),
         r"needs \['pos_diffby', 'neg_sameby', 'neg_diffby'\]"),
        ({**_valid(), "input": {"path": "y.csv"}}, r"both 'data' and 'input'"),
    ],
)
def test_invalid_configs_name_the_problem(cfg, match):
    with pytest.raises(ConfigError, match=match):
        validate_config(cfg)


def test_copairs_parameter_aliases():
    cfg = _mutate(["mean_average_precision", "params", "max_workers"], 2)
    assert validate_config(cfg)["mean_average_precision"]["n_jobs"] == 2


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot parse config file"):
        load_config(bad)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        load_config(tmp_path / "empty.yaml")


def test_data_errors(screen_csv, tmp_path):
    cfg = base_config(tmp_path / "missing.csv", tmp_path / "o")
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        run_config(cfg)
    df = pd.read_csv(screen_csv)
    df.loc[3, "f2"] = np.nan
    nan_csv = tmp_path / "nan.csv"
    df.to_csv(nan_csv, index=False)
    with pytest.raises(ConfigError, match="remove_nan_features"):
        run_config(base_config(nan_csv, tmp_path / "o"))
    assert not (tmp_path / "o").exists()
    cfg = base_config(nan_csv, tmp_path / "o")
    cfg["preprocessing"].append({"type": "remove_nan_features"})
    assert run_config(cfg).n_features == 23


# --------------------------------------------------------------------------- atomicity


def _fail_on_second_table(monkeypatch):
    calls = {"n": 0}
    real = pd.DataFrame.to_csv

    def flaky(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            buf = args[0] if args else kwargs.get("path_or_buf")
            buf.write(b"partial,content\n")  # bytes hit the temp file, then we crash
            raise OSError("disk full (injected)")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", flaky)


def test_failed_run_leaves_no_files(screen_csv, tmp_path, monkeypatch):
    out = tmp_path / "nested" / "res"
    _fail_on_second_table(monkeypatch)
    with pytest.raises(OSError, match="injected"):
        run_config(base_config(screen_csv, out))
    assert list(tmp_path.iterdir()) == []  # not even the folders it created


def test_failed_run_keeps_previous_results(screen_csv, tmp_path, monkeypatch):
    out = tmp_path / "res"
    run_config(base_config(screen_csv, out))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    cfg = base_config(screen_csv, out)
    cfg["mean_average_precision"]["params"]["seed"] = 1

    def broken_savefig(self, *args, **kwargs):
        raise RuntimeError("renderer crashed (injected)")

    from matplotlib.figure import Figure

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="injected"):
        run_config(cfg)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_overwrite_false_refuses(screen_csv, tmp_path):
    cfg = base_config(screen_csv, tmp_path / "res")
    run_config(cfg)
    cfg["output"]["overwrite"] = False
    with pytest.raises(FileExistsError, match="already exists"):
        run_config(cfg)


def test_atomic_write_failure_keeps_old_file(tmp_path):
    target = tmp_path / "t.csv"
    target.write_text("old\n")

    def writer(fh):
        fh.write(b"new partial")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        _io.atomic_write(target, writer)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_atomic_dataframe_roundtrip(tmp_path):
    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    for name in ("t.parquet", "t.csv", "t.csv.gz", "t.tsv"):
        path = _io.atomic_write_dataframe(df, tmp_path / name)
        if name.endswith("parquet"):
            back = pd.read_parquet(path)
        else:
            back = pd.read_csv(path, sep="\t" if name.endswith("tsv") else ",")
        pd.testing.assert_frame_equal(back, df)
    with pytest.raises(ValueError, match="cannot tell the table format"):
        _io.atomic_write_dataframe(df, tmp_path / "t.xlsx")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _io.atomic_write_dataframe(df, tmp_path / "missing" / "t.csv")


def test_atomic_output_dir(tmp_path):
    target = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with _io.atomic_output_dir(target) as tmp:
            (tmp / "a.csv").write_text("x")
            raise RuntimeError("fail")
    assert list(tmp_path.iterdir()) == []
    with _io.atomic_output_dir(target) as tmp:
        (tmp / "a.csv").write_text("x")
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    with pytest.raises(FileExistsError, match="already exists"):
        with _io.atomic_output_dir(target):
            pass
    assert os.listdir(target) == ["a.csv"]


# --------------------------------------------------------------------------- real data


@pytest.mark.skipif(not LINCS.is_file(), reason="LINCS plate not found in ../shared/data")
def test_example_config_on_lincs(tmp_path, monkeypatch):
    monkeypatch.setenv("PAIRMAP_DATA", str(DATA_DIR))
    monkeypatch.chdir(tmp_path)
    cfg = load_config(EXAMPLE)
    cfg["average_precision"]["params"]["progress_bar"] = False
    cfg["mean_average_precision"]["params"].update(progress_bar=False, null_size=2000)
    result = run_config(cfg)
    out = tmp_path / "pairmap-results" / "lincs_activity"
    assert sorted(p.name for p in out.iterdir()) == [
        "activity_ap_scores.csv", "activity_map_plot.png", "activity_map_results.csv",
    ]
    maps = result.map_results.dropna(subset=["p_value"])
    assert len(maps) == 58  # 58 compounds; DMSO wells have no positives
    # oracle: per-compound mean of the AP the reference implementation computes
    copairs_map = pytest.importorskip("copairs.map")
    from copairs.matching import assign_reference_index

    df = pd.read_csv(LINCS)
    df = assign_reference_index(df, "Metadata_broad_sample == 'DMSO'",
                                reference_col="Metadata_reference_index")
    keys = ["Metadata_broad_sample", "Metadata_reference_index"]
    meta = df.filter(regex="^Metadata")
    feats = df[[c for c in df.columns if not c.startswith("Metadata")]].to_numpy()
    ap = copairs_map.average_precision(meta, feats, keys, [], [], keys, progress_bar=False)
    expected = ap.dropna(subset=["average_precision"]).groupby("Metadata_broad_sample")[
        "average_precision"].mean()
    got = maps.set_index("Metadata_broad_sample")["mean_average_precision"]
    np.testing.assert_allclose(got.loc[expected.index], expected, rtol=1e-9)
    # most compounds on this plate are phenotypically active at this threshold (53 of 58 with
    # the default permutation null at null_size=2000)
    assert 20 <= int(maps["below_corrected_p"].sum()) <= 56
