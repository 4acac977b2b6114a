"""Preprocessing steps of the runner (pairmap.runner.steps): each step's effect and its errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pairmap.runner import STEPS, ConfigError, preprocess
from pairmap.runner.steps import parse_steps

DATA = {"metadata_regex": "^Metadata"}


@pytest.fixture
def df() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Metadata_cpd": ["a", "a", "b", "b", "c", "ctrl", "ctrl", None],
            "Metadata_dose": [1, 2, 1, 2, 1, 0, 0, 1],
            "Metadata_moa": ["x|y", "x|y", "y", "y", "z", None, None, "x"],
            "f1": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
            "f2": [1.0, np.nan, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        }
    )


def run(df, name, **params):
    (step,) = parse_steps([{"type": name, "params": params}])
    return preprocess(df, [step], DATA)


def test_filter(df):
    assert len(run(df, "filter", query="Metadata_dose > 0")) == 6
    with pytest.raises(ConfigError, match="filter query 'Metadata_nope > 1' failed"):
        run(df, "filter", query="Metadata_nope > 1")
    with pytest.raises(ConfigError, match="left no rows"):
        run(df, "filter", query="Metadata_dose > 5")
    with pytest.raises(ConfigError, match="one true/false value per row"):
        run(df, "filter", query="Metadata_dose + 1")


def test_dropna_defaults_to_metadata_columns(df):
    assert len(run(df, "dropna")) == 5  # rows with a missing cpd or moa
    assert len(run(df, "dropna", columns="Metadata_cpd")) == 7
    with pytest.raises(
        ConfigError,
        match=r"dropna.columns': columns not in the table: "
        r"\['Metadata_x'\]",
    ):
        run(df, "dropna", columns=["Metadata_x"])


def test_fillna_fills_only_the_named_columns(df):
    out = run(df, "fillna", columns=["Metadata_cpd"], value="unknown")
    assert out["Metadata_cpd"].tolist()[-1] == "unknown"
    assert out["Metadata_moa"].isna().sum() == 2
    out = run(df, "fillna", columns="Metadata_moa", value=-1)
    assert out["Metadata_moa"].tolist()[5:7] == [-1, -1]
    with pytest.raises(
        ConfigError,
        match=r"'preprocessing\[0\].params \(fillna\).value' is "
        r"required",
    ):
        run(df, "fillna", columns=["Metadata_cpd"])


def test_remove_nan_features(df):
    out = run(df, "remove_nan_features")
    assert "f2" not in out.columns and "f1" in out.columns
    assert "Metadata_moa" in out.columns  # metadata with NaN is not a feature


def test_split_multilabel(df):
    out = run(df.dropna(subset=["Metadata_moa"]), "split_multilabel", column="Metadata_moa")
    assert out["Metadata_moa"].tolist() == [["x", "y"], ["x", "y"], ["y"], ["y"], ["z"], ["x"]]
    with pytest.raises(
        ConfigError,
        match=r"missing value at row 5.*add a 'dropna' or 'fillna' "
        r"step for this column before 'split_multilabel'",
    ):
        run(df, "split_multilabel", column="Metadata_moa")
    out = run(
        df.assign(Metadata_moa="p;q"), "split_multilabel", column="Metadata_moa", separator=";"
    )
    assert out["Metadata_moa"][0] == ["p", "q"]


def test_add_column(df):
    out = run(df, "add_column", column="Metadata_is_ctrl", query="Metadata_cpd == 'ctrl'")
    assert out["Metadata_is_ctrl"].tolist() == [False] * 5 + [True, True, False]


def test_aggregate_replicates_takes_the_median(df):
    out = run(df.dropna(subset=["Metadata_cpd"]), "aggregate_replicates", groupby=["Metadata_cpd"])
    assert list(out.columns) == ["Metadata_cpd", "f1", "f2"]
    assert out.set_index("Metadata_cpd").loc["a", "f1"] == pytest.approx(0.15)


def test_filter_single_replicates(df):
    out = run(
        df.dropna(subset=["Metadata_cpd"]), "filter_single_replicates", groupby="Metadata_cpd"
    )
    assert sorted(out["Metadata_cpd"].unique()) == ["a", "b", "ctrl"]
    out = run(df, "filter_single_replicates", groupby=["Metadata_cpd"], min_replicates=1)
    assert len(out) == len(df)


def test_apply_assign_reference(df):
    out = run(
        df,
        "apply_assign_reference",
        condition="Metadata_cpd == 'ctrl'",
        reference_col="Metadata_ref",
    )
    assert out["Metadata_ref"].tolist() == [-1] * 5 + [5, 6, -1]
    with pytest.raises(ConfigError, match="condition 'Metadata_nope == 1'"):
        run(df, "apply_assign_reference", condition="Metadata_nope == 1")


def test_filter_active_keeps_active_values(df, tmp_path):
    activity = pd.DataFrame(
        {"Metadata_cpd": ["a", "b", "c"], "below_corrected_p": [True, False, True]}
    )
    activity.to_csv(tmp_path / "act.csv", index=False)
    activity.to_parquet(tmp_path / "act.parquet")
    for name in ("act.csv", "act.parquet"):
        out = run(
            df, "filter_active", activity_file=str(tmp_path / name), on_columns="Metadata_cpd"
        )
        assert sorted(out["Metadata_cpd"].unique()) == ["a", "c"]
    with pytest.raises(ConfigError, match=r"columns not in the table: \['Metadata_x'\]"):
        run(df, "filter_active", activity_file=str(tmp_path / "act.csv"), on_columns="Metadata_x")
    with pytest.raises(FileNotFoundError, match="filter_active.activity_file: file .*nope.csv"):
        run(
            df, "filter_active", activity_file=str(tmp_path / "nope.csv"), on_columns="Metadata_cpd"
        )


def test_merge_metadata(df, tmp_path):
    extra = pd.DataFrame({"Metadata_cpd": ["a", "b"], "Metadata_target": ["T1", "T2"]})
    extra.to_csv(tmp_path / "extra.csv.gz", index=False)
    out = run(
        df, "merge_metadata", source=str(tmp_path / "extra.csv.gz"), on_columns="Metadata_cpd"
    )
    assert len(out) == len(df) and out["Metadata_target"].notna().sum() == 4
    out = run(
        df,
        "merge_metadata",
        source=str(tmp_path / "extra.csv.gz"),
        on_columns=["Metadata_cpd"],
        how="inner",
    )
    assert len(out) == 4
    with pytest.raises(ConfigError, match="merge_metadata.how must be left, inner"):
        run(
            df,
            "merge_metadata",
            source=str(tmp_path / "extra.csv.gz"),
            on_columns="Metadata_cpd",
            how="cross",
        )


def test_merge_metadata_from_duckdb(df, tmp_path):
    duckdb = pytest.importorskip("duckdb")
    path = tmp_path / "meta.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE cpds AS SELECT 'a' AS Metadata_cpd, 'T1' AS Metadata_target")
    out = run(
        df, "merge_metadata", source=str(path), on_columns="Metadata_cpd", table="cpds", how="inner"
    )
    assert out["Metadata_target"].tolist() == ["T1", "T1"]
    with pytest.raises(ConfigError, match="a .duckdb source needs 'table'"):
        run(df, "merge_metadata", source=str(path), on_columns="Metadata_cpd")


def test_every_step_declares_documented_parameters():
    for name, step in STEPS.items():
        assert step.doc and step.func.__name__, name
        for key, spec in step.params.items():
            assert spec.doc, (name, key)
