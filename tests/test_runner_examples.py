"""The example configs (examples/*.yaml) end to end on the LINCS and nELISA data.

Together they use every preprocessing step type of today's copairs runner (and
``fillna``). Each run is checked against the same analysis written by hand with
pandas and the pairmap API (and, for LINCS activity, against copairs).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import DATA_DIR, LINCS_FILE, NELISA_FILE, data_file

import pairmap
from pairmap.runner import load_config, run_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
NULL_SIZE = 1000


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch):
    """Run from a fresh folder holding a copy of examples/, like a user in the project root."""
    monkeypatch.setenv("PAIRMAP_DATA", str(DATA_DIR))
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_example(name: str):
    cfg = load_config(Path("examples") / f"{name}.yaml")
    cfg["mean_average_precision"]["params"]["null_size"] = NULL_SIZE
    return run_config(cfg, progress_bar=False)


def direct_ap(df: pd.DataFrame, ap_params: dict) -> pd.DataFrame:
    meta = df.filter(regex="^Metadata").reset_index(drop=True)
    feats = df.drop(columns=meta.columns).to_numpy(dtype=float)
    return pairmap.average_precision(meta, feats, progress_bar=False, **ap_params)


def assert_same_ap(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    np.testing.assert_allclose(
        got["average_precision"].to_numpy(dtype=float),
        expected["average_precision"].to_numpy(dtype=float),
        rtol=1e-12,
        equal_nan=True,
    )


def lincs() -> pd.DataFrame:
    return pd.read_csv(data_file(LINCS_FILE))


def nelisa() -> pd.DataFrame:
    return pd.read_parquet(data_file(NELISA_FILE))


def test_activity_lincs_matches_copairs(workdir):
    """apply_assign_reference, remove_nan_features, filter_single_replicates on LINCS."""
    df = lincs()
    result = run_example("activity_lincs")
    out = workdir / "pairmap-results" / "lincs_activity"
    assert sorted(p.name for p in out.iterdir()) == [
        "activity_ap_scores.csv",
        "activity_map_plot.png",
        "activity_map_results.csv",
    ]
    maps = result.map_results
    assert len(maps) == 59 and int(maps["p_value"].notna().sum()) == 58  # DMSO: n_profiles 0
    copairs_map = pytest.importorskip("copairs.map")
    from copairs.matching import assign_reference_index

    ref = assign_reference_index(
        df, "Metadata_broad_sample == 'DMSO'", reference_col="Metadata_reference_index"
    )
    keys = ["Metadata_broad_sample", "Metadata_reference_index"]
    expected = copairs_map.average_precision(
        ref.filter(regex="^Metadata"),
        ref.drop(columns=ref.filter(regex="^Metadata").columns).to_numpy(),
        keys,
        [],
        [],
        keys,
        progress_bar=False,
    )
    assert_same_ap(result.ap_scores, expected)
    tested = maps.dropna(subset=["p_value"]).set_index("Metadata_broad_sample")
    per_cpd = (
        expected.dropna(subset=["average_precision"])
        .groupby("Metadata_broad_sample")["average_precision"]
        .mean()
    )
    np.testing.assert_allclose(
        tested.loc[per_cpd.index, "mean_average_precision"], per_cpd, rtol=1e-9
    )
    assert 20 <= int(tested["below_corrected_p"].sum()) <= 56


def _aggregated(df, active, label):
    df = df[df["Metadata_broad_sample"].isin(active)].dropna(subset=[label])
    feats = [c for c in df.columns if not c.startswith("Metadata")]
    return df.groupby(["Metadata_broad_sample", label])[feats].median().reset_index()


def test_consistency_lincs(workdir):
    """filter_active, dropna, aggregate_replicates on LINCS (reads the activity results)."""
    activity = run_example("activity_lincs").map_results
    result = run_example("consistency_lincs")
    active = activity.loc[activity["below_corrected_p"], "Metadata_broad_sample"]
    expected_df = _aggregated(lincs(), active, "Metadata_target")
    rule = dict(
        pos_sameby=["Metadata_target"], pos_diffby=[], neg_sameby=[], neg_diffby=["Metadata_target"]
    )
    assert (
        len(result.ap_scores)
        == len(expected_df)
        == active.nunique() - len(set(active) - set(expected_df["Metadata_broad_sample"]))
    )  # minus those without target
    assert_same_ap(result.ap_scores, direct_ap(expected_df, rule))
    assert result.ap_scores["average_precision"].notna().sum() >= 2  # a shared target list


def test_dose_lincs_hierarchical(workdir):
    """merge_metadata, filter, add_column, apply_assign_reference (boolean column) on LINCS."""
    result = run_example("dose_lincs")
    df = lincs()
    df = df.merge(pd.read_csv("examples/lincs_plate_info.csv"), on="Metadata_Plate")
    df["Metadata_is_control"] = df["Metadata_broad_sample"] == "DMSO"
    df = pairmap.assign_reference_index(
        df, df["Metadata_is_control"].to_numpy(), reference_col="Metadata_reference_index"
    )
    rule = dict(
        pos_sameby=["Metadata_broad_sample", "Metadata_reference_index"],
        pos_diffby=[],
        neg_sameby=[],
        neg_diffby=["Metadata_is_control", "Metadata_reference_index"],
    )
    assert_same_ap(result.ap_scores, direct_ap(df, rule))
    assert "Metadata_PlateType" in result.ap_scores.columns
    maps = result.map_results
    assert len(maps) == 339 and {"stage1_p_value", "corrected_p_value"} <= set(maps.columns)
    assert sorted(p.name for p in (workdir / "pairmap-results" / "lincs_dose").iterdir()) == [
        "dose_ap_scores.parquet",
        "dose_map_plot.png",
        "dose_map_results.parquet",
    ]


def _nelisa_activity_by_hand() -> pd.DataFrame:
    df = nelisa()
    df = df[df["Metadata_control_type"].isna() | (df["Metadata_control_type"] == "negcon")]
    df = df[df["Metadata_nelisa_sample_pass_qc"] == 1].copy()
    df["Metadata_broad_sample"] = df["Metadata_broad_sample"].fillna("negcon")
    df = df.merge(pd.read_csv("examples/nelisa_plate_info.csv"), on="Metadata_Plate", how="left")
    df["Metadata_negcon"] = (df["Metadata_control_type"] == "negcon").to_numpy()
    df = pairmap.assign_reference_index(
        df, df["Metadata_negcon"].to_numpy(), reference_col="Metadata_reference_index"
    )
    sizes = df.groupby("Metadata_broad_sample")["Metadata_broad_sample"].transform("size")
    return df[sizes >= 2]


def test_activity_nelisa(workdir):
    """Lazy Parquet filter (Parquet input), report, filter, fillna, merge_metadata, add_column, apply_assign_reference,
    filter_single_replicates, remove_nan_features on nELISA (per-plate negatives)."""
    result = run_example("activity_nelisa")
    df = _nelisa_activity_by_hand()
    assert len(result.ap_scores) == len(df) == 1289  # 1525 minus the 236 positive controls
    rule = dict(
        pos_sameby=["Metadata_broad_sample", "Metadata_reference_index"],
        pos_diffby=[],
        neg_sameby=["Metadata_Plate"],
        neg_diffby=["Metadata_negcon", "Metadata_reference_index"],
    )
    assert_same_ap(result.ap_scores, direct_ap(df, rule))
    maps = result.map_results
    assert int(maps["p_value"].notna().sum()) == len(maps) - 1  # negcon: n_profiles 0
    # output.report: true writes pairmap's HTML report with the other outputs
    html = (workdir / "pairmap-results" / "nelisa_activity" / "activity_report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "mean_average_precision" in html


def test_consistency_nelisa(workdir):
    """filter_active, dropna, aggregate_replicates, filter_single_replicates on nELISA."""
    activity = run_example("activity_nelisa").map_results
    result = run_example("consistency_nelisa")
    active = activity.loc[activity["below_corrected_p"], "Metadata_broad_sample"]
    df = _aggregated(nelisa(), active, "Metadata_target")
    df = df[df.groupby("Metadata_target")["Metadata_target"].transform("size") >= 2]
    rule = dict(
        pos_sameby=["Metadata_target"], pos_diffby=[], neg_sameby=[], neg_diffby=["Metadata_target"]
    )
    assert len(result.ap_scores) == len(df) > 10
    assert_same_ap(result.ap_scores, direct_ap(df, rule))


def _multilabel_by_hand(df, active, column):
    df = _aggregated(df, active, column)
    return pairmap.split_multilabel(df, column)


@pytest.mark.parametrize(
    ("dataset", "name", "column"),
    [
        ("lincs", "consistency_lincs_multilabel", "Metadata_target"),
        ("nelisa", "consistency_nelisa_multilabel", "Metadata_target_list"),
    ],
)
def test_consistency_multilabel(workdir, dataset, name, column):
    """split_multilabel and average_precision.multilabel on LINCS and nELISA."""
    activity = run_example(f"activity_{dataset}").map_results
    result = run_example(name)
    active = activity.loc[activity["below_corrected_p"], "Metadata_broad_sample"]
    df = _multilabel_by_hand(lincs() if dataset == "lincs" else nelisa(), active, column)
    meta = df.filter(regex="^Metadata").reset_index(drop=True)
    expected = pairmap.average_precision(
        meta,
        df.drop(columns=meta.columns).to_numpy(dtype=float),
        [column],
        [],
        [],
        [column],
        multilabel_col=column,
        progress_bar=False,
    )
    assert len(result.ap_scores) == len(expected) > len(df)  # one row per (profile, label)
    assert_same_ap(result.ap_scores, expected)
    assert result.map_results["p_value"].notna().sum() >= 5
