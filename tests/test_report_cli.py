"""``pairmap demo`` writes a report; ``pairmap report`` rebuilds it from result files on disk."""

from __future__ import annotations

import contextlib
import io
import json
import re

import pandas as pd
import pytest
import yaml

from pairmap import cli, datasets

SMALL = ["--null-size", "500", "--no-progress", "--n-jobs", "1"]


def call_main(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(args))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _figure_ids(html: str) -> list[str]:
    return re.findall(r'<figure class="pm-figure" id="fig-([^"]+)">', html)


@pytest.fixture(scope="module")
def lincs_run(tmp_path_factory):
    """One ``pairmap demo --dataset lincs`` run: (output folder, printed summary)."""
    out = tmp_path_factory.mktemp("demo") / "lincs"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main(["demo", "--dataset", "lincs", "--out", str(out), *SMALL])
    assert code == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def lincs_demo(lincs_run):
    return lincs_run[0]


def test_lincs_demo_writes_tables_run_info_and_report(lincs_demo):
    names = sorted(p.name for p in lincs_demo.iterdir())
    assert names == [
        "ap_scores.csv",
        "ap_scores.parquet",
        "consistency_ap_scores.csv",
        "consistency_ap_scores.parquet",
        "consistency_map_results.csv",
        "consistency_map_results.parquet",
        "map_plot.png",
        "map_results.csv",
        "map_results.parquet",
        "map_results_by_dose.csv",
        "map_results_by_dose.parquet",
        "report.html",
        "report_figures",
        "run_info.json",
    ]
    info = json.loads((lincs_demo / "run_info.json").read_text())
    assert info["mean_average_precision"]["null_size"] == 500
    assert info["data"]["n_profiles"] == 384 and info["versions"]["pairmap"]
    html = (lincs_demo / "report.html").read_text()
    assert _figure_ids(html) == [
        "map_scatter",
        "ap_distributions",
        "null_comparison",
        "plate_ap",
        "plate_layout",
        "label_map_consistency_map_results",
        "dose_response_map_results_by_dose",
        "ap_histogram",
    ]
    assert (lincs_demo / "report.html").stat().st_size <= 3 * 2**20
    figures = sorted(p.name for p in (lincs_demo / "report_figures").iterdir())
    assert len(figures) == 2 * 8 and all(f.endswith((".png", ".svg")) for f in figures)
    maps = pd.read_parquet(lincs_demo / "map_results.parquet")
    assert len(maps) == 59 and int(maps["p_value"].notna().sum()) == 58
    moa = pd.read_parquet(lincs_demo / "consistency_map_results.parquet")
    assert moa["Metadata_moa"].is_unique and moa["p_value"].notna().sum() >= 5
    assert "|" not in "".join(moa["Metadata_moa"])  # multi-label MoAs were split


def test_lincs_demo_summary_agrees_with_table(lincs_run):
    folder, out = lincs_run
    maps = pd.read_parquet(folder / "map_results.parquet")
    m = re.search(r"significant:\s+(\d+) of (\d+) compounds", out)
    assert m and int(m[1]) == maps["below_corrected_p"].sum() and int(m[2]) == 58
    assert "1 group without a score (DMSO)" in out and "report.html" in out


def test_report_command_rebuilds_the_demo_report(lincs_demo, tmp_path, capsys):
    out = tmp_path / "again.html"
    code, stdout, err = call_main(capsys, "report", str(lincs_demo), "--out", str(out))
    assert code == 0, err
    original = (lincs_demo / "report.html").read_text()
    again = out.read_text()
    assert _figure_ids(again) == _figure_ids(original)
    assert "run_info.json" in stdout and "+ 2 more mAP table(s)" in stdout
    assert "not used (other AP tables):" in stdout and "consistency_ap_scores" in stdout
    assert sorted(p.name for p in (tmp_path / "again_figures").iterdir()) == sorted(
        p.name for p in (lincs_demo / "report_figures").iterdir()
    )


def test_report_of_a_run_without_run_info(tmp_path, capsys):
    config = {
        "data": {"path": str(datasets.lincs_plate_path())},
        "preprocessing": [
            {
                "type": "assign_reference",
                "params": {
                    "condition": "Metadata_broad_sample == 'DMSO'",
                    "reference_col": "Metadata_reference_index",
                    "default_value": -1,
                },
            }
        ],
        "average_precision": {
            "params": {
                "pos_sameby": ["Metadata_broad_sample", "Metadata_reference_index"],
                "pos_diffby": [],
                "neg_sameby": [],
                "neg_diffby": ["Metadata_broad_sample", "Metadata_reference_index"],
                "progress_bar": False,
            }
        },
        "mean_average_precision": {
            "params": {
                "sameby": ["Metadata_broad_sample"],
                "null_size": 300,
                "seed": 0,
                "progress_bar": False,
            }
        },
        "output": {"directory": str(tmp_path / "res"), "name": "act", "format": "csv"},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    code, _, err = call_main(capsys, "run", str(tmp_path / "c.yaml"))
    assert code == 0, err
    code, stdout, err = call_main(capsys, "report", str(tmp_path / "res"), "--no-figures")
    assert code == 0, err
    html = (tmp_path / "res" / "report.html").read_text()
    # without run info the null settings are unknown: the default (10000) does not reproduce
    # the p-values of null_size=300, so that figure says why it is missing
    assert 'id="fig-null_comparison"' in html and "do not reproduce" in html
    assert "map_scatter" in _figure_ids(html) and "plate_layout" in _figure_ids(html)
    assert not (tmp_path / "res" / "report_figures").exists()
    # a second run needs --force
    code, _, err = call_main(capsys, "report", str(tmp_path / "res"), "--no-figures")
    assert code == 2 and "--force" in err and err.count("\n") == 1


def test_report_command_input_errors(tmp_path, capsys):
    code, _, err = call_main(capsys, "report", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err
    (tmp_path / "empty").mkdir()
    code, _, err = call_main(capsys, "report", str(tmp_path / "empty"))
    assert code == 2 and "holds no result table" in err
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "other.csv", index=False)
    code, _, err = call_main(capsys, "report", str(tmp_path / "other.csv"))
    assert code == 2 and "neither an AP table" in err
    (tmp_path / "bad_run_info.json").write_text("{not json")
    pd.DataFrame({"cpd": ["a"], "mean_average_precision": [1.0]}).to_csv(
        tmp_path / "m_map_results.csv", index=False
    )
    code, _, err = call_main(
        capsys,
        "report",
        str(tmp_path / "m_map_results.csv"),
        "--info",
        str(tmp_path / "bad_run_info.json"),
    )
    assert code == 2 and "not valid JSON" in err
    assert not (tmp_path / "report.html").exists()
