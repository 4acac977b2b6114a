"""Running configs end to end (pairmap.runner.run): results, layouts, outputs, overwrite, atomicity."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import pairmap
from pairmap.runner import ConfigError, run_config

KEYS = ["Metadata_Perturbation", "Metadata_Reference_Index"]


@pytest.fixture(scope="module")
def screen_csv(screen_csv_factory) -> Path:
    return screen_csv_factory(
        n_perturbations=16,
        n_replicates=3,
        n_controls_per_plate=6,
        n_features=24,
        n_active_features=8,
        seed=5,
    )


def base_config(data_path: Path, out_dir: Path) -> dict:
    return {
        "input": {"path": str(data_path)},
        "preprocessing": {
            "steps": [
                {"type": "apply_assign_reference", "params": {"condition": "Metadata_Control"}},
            ]
        },
        "average_precision": {
            "params": {
                "pos_sameby": KEYS,
                "pos_diffby": [],
                "neg_sameby": [],
                "neg_diffby": KEYS,
                "progress_bar": False,
            }
        },
        "mean_average_precision": {
            "params": {
                "sameby": ["Metadata_Perturbation"],
                "null_size": 500,
                "threshold": 0.05,
                "seed": 0,
                "progress_bar": False,
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
    assert [p.name for p in result.written] == [
        "act_ap_scores.csv",
        "act_map_results.csv",
        "act_map_plot.png",
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in result.written)
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
        ref["average_precision"].to_numpy(dtype=float),
        rtol=1e-9,
        atol=1e-12,
        equal_nan=True,
    )


def test_older_layouts_give_same_results(screen_csv, tmp_path):
    new = base_config(screen_csv, tmp_path / "new")
    ref = run_config(new).map_results

    old = copy.deepcopy(new)
    old["data"] = old.pop("input")
    old["preprocessing"] = [
        {"type": "assign_reference", "params": {"condition": "Metadata_Control"}}
    ]
    old["mean_average_precision"] = dict(old["mean_average_precision"]["params"])
    old["output"] = {"path": str(tmp_path / "legacy" / "map.parquet"), "save_ap_scores": True}
    old["plotting"] = {
        "enabled": True,
        "path": str(tmp_path / "legacy" / "plot.png"),
        "title": "t",
        "figsize": [4, 3],
        "dpi": 50,
    }
    res = run_config(old)
    assert sorted(p.name for p in (tmp_path / "legacy").iterdir()) == [
        "map.parquet",
        "map_ap_scores.parquet",
        "plot.png",
    ]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "legacy" / "map.parquet"), ref)
    pd.testing.assert_frame_equal(res.map_results, ref)

    # first runner version: parameters next to 'type'
    inline = copy.deepcopy(new)
    inline["preprocessing"] = [{"type": "assign_reference", "condition": "Metadata_Control"}]
    inline["output"]["directory"] = str(tmp_path / "inline")
    pd.testing.assert_frame_equal(run_config(inline).map_results, ref)


def test_ap_only_run_and_parquet_format(screen_csv, tmp_path):
    cfg = base_config(screen_csv, tmp_path / "o")
    del cfg["mean_average_precision"]
    cfg["output"]["format"] = "parquet"
    result = run_config(cfg)
    assert result.map_results is None
    assert [p.name for p in result.written] == ["act_ap_scores.parquet"]


def test_yaml_file_with_env_expansion(screen_csv, tmp_path, monkeypatch):
    cfg = base_config(screen_csv, tmp_path / "out")
    cfg["input"]["path"] = "${oc.env:PAIRMAP_TEST_DATA}/" + screen_csv.name
    cfg["output"]["directory"] = "${oc.env:PAIRMAP_TEST_UNSET,fallback}/out"
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("PAIRMAP_TEST_DATA", str(screen_csv.parent))
    monkeypatch.delenv("PAIRMAP_TEST_UNSET", raising=False)
    monkeypatch.chdir(tmp_path)
    run_config(path)
    assert (tmp_path / "fallback" / "out" / "act_map_results.csv").is_file()


def test_missing_data_file_names_the_expanded_path(monkeypatch, tmp_path, screen_csv):
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = base_config(screen_csv, tmp_path / "o")
    cfg["input"]["path"] = "~/nope.csv"
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope.csv")):
        run_config(cfg)


def test_nan_features_need_a_step(screen_csv, tmp_path):
    df = pd.read_csv(screen_csv)
    df.loc[3, "f2"] = np.nan
    nan_csv = tmp_path / "nan.csv"
    df.to_csv(nan_csv, index=False)
    with pytest.raises(ConfigError, match="remove_nan_features"):
        run_config(base_config(nan_csv, tmp_path / "o"))
    assert not (tmp_path / "o").exists()
    cfg = base_config(nan_csv, tmp_path / "o")
    cfg["preprocessing"]["steps"].append({"type": "remove_nan_features"})
    assert run_config(cfg).n_features == 23


def test_nan_in_a_pairing_column_points_to_fillna(screen_csv, tmp_path):
    df = pd.read_csv(screen_csv)
    df.loc[5, "Metadata_Perturbation"] = np.nan
    csv = tmp_path / "nan_label.csv"
    df.to_csv(csv, index=False)
    with pytest.raises(
        ConfigError,
        match=r"pairing column 'Metadata_Perturbation' has 1 missing "
        r"value.*add a 'fillna' preprocessing step",
    ):
        run_config(base_config(csv, tmp_path / "o"))
    cfg = base_config(csv, tmp_path / "o")
    cfg["preprocessing"]["steps"].insert(
        0, {"type": "fillna", "params": {"columns": ["Metadata_Perturbation"], "value": "unknown"}}
    )
    assert len(run_config(cfg).ap_scores) == len(df)


# ------------------------------------------------------------------ outputs: overwrite policy


def test_existing_outputs_are_not_replaced_by_default(screen_csv, tmp_path):
    cfg = base_config(screen_csv, tmp_path / "res")
    run_config(cfg)
    before = {p.name: p.read_bytes() for p in (tmp_path / "res").iterdir()}
    with pytest.raises(
        ConfigError,
        match=r"act_ap_scores.csv' already exists; pass --overwrite "
        r"\(or set output.overwrite: true\)",
    ):
        run_config(cfg)
    assert {p.name: p.read_bytes() for p in (tmp_path / "res").iterdir()} == before
    for how in ({"overwrite": True}, {}):  # the CLI's --overwrite, then output.overwrite
        for p in (tmp_path / "res").iterdir():
            p.write_text("old")
        cfg["output"]["overwrite"] = not how
        run_config(cfg, **how)
        assert {p.name: p.read_bytes() for p in (tmp_path / "res").iterdir()} == before


def test_output_location_is_checked_before_computing(screen_csv, tmp_path, monkeypatch):
    """A run that cannot write its results fails before reading data or computing anything."""

    def never(*args, **kwargs):
        raise AssertionError("computed although the output location is unusable")

    monkeypatch.setattr("pairmap.runner.run.read_input", never)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match=r"cannot create output folder .*afile' is a file"):
        run_config(base_config(screen_csv, tmp_path / "afile" / "res"))
    (tmp_path / "res").mkdir()
    (tmp_path / "res" / "act_map_plot.png").mkdir()
    with pytest.raises(IsADirectoryError, match=r"act_map_plot.png' is a folder"):
        run_config(base_config(screen_csv, tmp_path / "res"))
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ConfigError, match=r"no write permission in .*locked'"):
            run_config(base_config(screen_csv, locked / "res"))


def test_group_counts_agree_with_the_table(screen_csv, tmp_path, caplog):
    """The control group (n_profiles = 0) stays in the table; logs and summary count it so."""
    import logging

    with caplog.at_level(logging.INFO, logger="pairmap.runner"):
        result = run_config(base_config(screen_csv, tmp_path / "o"))
    m = result.map_results
    n_tested = int(m["p_value"].notna().sum())
    assert len(m) == 17 and n_tested == 16
    assert (m.loc[m["p_value"].isna(), "n_profiles"] == 0).all()
    assert (
        f"17 groups: 16 tested, 1 without a scored profile (n_profiles = 0), "
        f"{int(m['below_corrected_p'].sum())} significant"
    ) in caplog.text


# ------------------------------------------------------------------ atomicity


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
    cfg["output"]["overwrite"] = True

    def broken_savefig(self, *args, **kwargs):
        raise RuntimeError("renderer crashed (injected)")

    from matplotlib.figure import Figure

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="injected"):
        run_config(cfg)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_multilabel_needs_the_label_column(screen_csv, tmp_path):
    cfg = base_config(screen_csv, tmp_path / "o")
    cfg["average_precision"]["multilabel"] = True
    with pytest.raises(
        ConfigError,
        match=r"multilabel: true' needs "
        r"'average_precision.params.multilabel_col'",
    ):
        run_config(cfg)
