"""End-to-end tests of the ``pairmap`` command line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pairmap import cli
from pairmap.simulate import simulate_screen

SRC = Path(__file__).resolve().parents[1] / "src"
SMALL_DEMO = ["--n-perturbations", "20", "--null-size", "500", "--no-progress", "--n-jobs", "1"]


# keep the on-disk null cache of these runs out of the user's cache folder
pytestmark = pytest.mark.usefixtures("private_null_cache")


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "pairmap.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
    )


def call_main(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(args))
    except SystemExit as exc:  # argparse --help / --version / usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- help


def test_main_help_lists_commands_and_globals(capsys):
    code, out, _ = call_main(capsys, "--help")
    assert code == 0
    for text in (
        "demo",
        "run",
        "--log-level",
        "--version",
        "(default: WARNING)",
        "examples:",
        "pairmap run analysis.yaml",
    ):
        assert text in out


def test_demo_help_is_complete(capsys):
    code, out, _ = call_main(capsys, "demo", "--help")
    assert code == 0
    parser = cli.build_parser()
    demo = parser._subparsers._group_actions[0].choices["demo"]
    for action in demo._actions:
        for flag in action.option_strings:
            assert flag in out, flag
    for text in (
        "(default: 0)",
        "(default: 10000)",
        "(default: all available CPUs)",
        "examples:",
        "pairmap demo --out",
    ):
        assert text in out


def test_run_help_is_complete(capsys):
    code, out, _ = call_main(capsys, "run", "--help")
    assert code == 0
    for text in (
        "CONFIG.yaml",
        "--n-jobs",
        "--no-progress",
        "--check",
        "pos_sameby",
        "mean_average_precision:",
        "assign_reference",
        "pairmap run activity.yaml",
    ):
        assert text in out


def test_version(capsys):
    import pairmap

    code, out, _ = call_main(capsys, "--version")
    assert code == 0 and out.strip() == f"pairmap {pairmap.__version__}"


def test_no_command_prints_help(capsys):
    code, _, err = call_main(capsys)
    assert code == 2 and "usage: pairmap" in err


def test_cache_command_is_wired(capsys):
    pytest.importorskip("pairmap.cache.commands")
    code, out, _ = call_main(capsys, "cache", "--help")
    assert code == 0 and "usage: pairmap cache" in out


# --------------------------------------------------------------------------- demo


def _summary_numbers(out: str) -> dict:
    m = re.search(r"significant:\s+(\d+) of (\d+) perturbations .*; (\d+) are truly active", out)
    r = re.search(r"recall ([\d.]+|n/a), precision ([\d.]+|n/a) \((\d+) true positives\)", out)
    assert m and r, out
    return {
        "significant": int(m[1]),
        "n": int(m[2]),
        "active": int(m[3]),
        "recall": r[1],
        "precision": r[2],
        "tp": int(r[3]),
    }


def test_demo_in_process(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    code, out, err = call_main(capsys, "demo", "--out", str(out_dir), "--seed", "2", *SMALL_DEMO)
    assert code == 0, err
    files = sorted(p.name for p in out_dir.iterdir())
    assert files == [
        "ap_scores.csv",
        "ap_scores.parquet",
        "map_plot.png",
        "map_results.csv",
        "map_results.parquet",
        "profiles.parquet",
        "report.html",
        "report_figures",
        "run_info.json",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["demo"]  # no temp folder left

    maps = pd.read_parquet(out_dir / "map_results.parquet")
    pd.testing.assert_frame_equal(pd.read_csv(out_dir / "map_results.csv"), maps, check_dtype=False)
    ap = pd.read_parquet(out_dir / "ap_scores.parquet")
    assert len(ap) == 20 * 4 + 4 * 16
    assert ap.loc[ap["Metadata_Control"], "average_precision"].isna().all()
    assert len(maps) == 20 and maps["p_value"].notna().all()

    # the printed summary agrees with the written table and the simulated truth
    s = _summary_numbers(out)
    sig, act = maps["below_corrected_p"].to_numpy(bool), maps["Metadata_Active"].to_numpy(bool)
    assert s["significant"] == sig.sum() and s["active"] == act.sum() == 10
    assert s["tp"] == (sig & act).sum()
    assert float(s["recall"]) == pytest.approx((sig & act).sum() / act.sum(), abs=0.005)
    assert str(out_dir) in out
    # the demo's signal is strong: nearly all active perturbations are found, no false ones
    assert s["tp"] >= 8 and s["significant"] - s["tp"] <= 1
    with Image(out_dir / "map_plot.png") as size:
        assert size[0] > 300 and size[1] > 200


class Image:
    """Read a PNG's width and height from its header (no extra dependency)."""

    def __init__(self, path: Path):
        self.data = path.read_bytes()[:24]

    def __enter__(self):
        assert self.data[:8] == b"\x89PNG\r\n\x1a\n"
        return int.from_bytes(self.data[16:20], "big"), int.from_bytes(self.data[20:24], "big")

    def __exit__(self, *exc):
        return False


def test_demo_is_reproducible(tmp_path, capsys):
    for name in ("a", "b"):
        code, _, err = call_main(capsys, "demo", "--out", str(tmp_path / name), *SMALL_DEMO)
        assert code == 0, err
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "a" / "map_results.parquet"),
        pd.read_parquet(tmp_path / "b" / "map_results.parquet"),
    )


def test_demo_default_folder_subprocess(tmp_path):
    proc = run_cli("demo", *SMALL_DEMO, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    folders = list(tmp_path.iterdir())
    assert len(folders) == 1 and re.fullmatch(r"pairmap-demo-\d{8}-\d{6}", folders[0].name)
    assert "Traceback" not in proc.stderr
    assert f"results in:     {folders[0]}" in proc.stdout


def test_demo_default_folder_is_never_reused(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli.time, "strftime", lambda fmt: "20250101-000000")
    for _ in range(2):
        code, _, err = call_main(capsys, "demo", *SMALL_DEMO)
        assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "pairmap-demo-20250101-000000",
        "pairmap-demo-20250101-000000-1",
    ]


def test_demo_refuses_existing_folder(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    code, out, err = call_main(capsys, "demo", "--out", str(tmp_path / "taken"), *SMALL_DEMO)
    assert code == 2
    assert err.strip().count("\n") == 0 and "already exists" in err
    assert os.listdir(tmp_path / "taken") == ["keep.txt"]


def test_demo_failure_leaves_nothing(tmp_path, capsys, monkeypatch):
    from matplotlib.figure import Figure

    def broken(self, *args, **kwargs):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(Figure, "savefig", broken)
    code, _, err = call_main(capsys, "demo", "--out", str(tmp_path / "d"), *SMALL_DEMO)
    assert code == 2 and "disk full (injected)" in err
    assert list(tmp_path.iterdir()) == []


def test_demo_bad_option_values(capsys):
    code, _, err = call_main(capsys, "demo", "--n-jobs", "0")
    assert code == 2 and "0 is not valid" in err
    code, _, err = call_main(capsys, "demo", "--null-size", "-3")
    assert code == 2 and "must be at least 1" in err


# --------------------------------------------------------------------------- run


def _write_inputs(tmp_path: Path) -> Path:
    meta, feats = simulate_screen(
        n_perturbations=12,
        n_replicates=3,
        n_controls_per_plate=6,
        n_features=16,
        n_active_features=8,
        seed=4,
    )
    df = pd.concat([meta, pd.DataFrame(feats, columns=[f"x{j}" for j in range(16)])], axis=1)
    df.to_parquet(tmp_path / "profiles.parquet", index=False)
    keys = ["Metadata_Perturbation", "Metadata_ref"]
    cfg = {
        "data": {"path": "profiles.parquet"},
        "preprocessing": {
            "steps": [
                {
                    "type": "assign_reference",
                    "params": {"condition": "Metadata_Control", "reference_col": "Metadata_ref"},
                },
            ]
        },
        "average_precision": {
            "params": {"pos_sameby": keys, "pos_diffby": [], "neg_sameby": [], "neg_diffby": keys}
        },
        "mean_average_precision": {
            "params": {
                "sameby": ["Metadata_Perturbation"],
                "null_size": 300,
                "threshold": 0.05,
                "seed": 0,
            }
        },
        "output": {"directory": "results", "name": "act", "format": "parquet"},
    }
    path = tmp_path / "analysis.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_run_subprocess(tmp_path):
    config = _write_inputs(tmp_path)
    proc = run_cli("run", config.name, "--no-progress", "--n-jobs", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    files = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert files == ["act_ap_scores.parquet", "act_map_plot.png", "act_map_results.parquet"]
    maps = pd.read_parquet(tmp_path / "results" / "act_map_results.parquet")
    sig = int(maps["below_corrected_p"].sum())
    n_tested = int(maps["p_value"].notna().sum())
    assert n_tested == 12  # the negcon group has no AP scores
    # the summary's counts are those of the written table (13 groups, 1 without scores)
    assert (
        f"groups:         {len(maps)} in the table: {n_tested} tested, "
        f"{len(maps) - n_tested} without a scored profile"
    ) in proc.stdout
    assert f"significant (corrected p): {sig} of {n_tested}" in proc.stdout
    assert "results/act_map_results.parquet" in proc.stdout
    ap = pd.read_parquet(tmp_path / "results" / "act_ap_scores.parquet")
    per_group = (
        ap.dropna(subset=["average_precision"])
        .groupby("Metadata_Perturbation")["average_precision"]
        .mean()
    )
    np.testing.assert_allclose(
        maps.set_index("Metadata_Perturbation").loc[per_group.index, "mean_average_precision"],
        per_group,
        rtol=1e-12,
    )


def test_run_check_only(tmp_path, capsys, monkeypatch):
    config = _write_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, out, err = call_main(capsys, "run", str(config), "--check")
    assert code == 0, err
    assert "config is valid" in out and not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.update(outptu={}), "unknown top-level section 'outptu'"),
        (
            lambda c: c["preprocessing"]["steps"].append({"type": "normalise"}),
            "unknown preprocessing step 'normalise'; valid steps are: filter",
        ),
        (
            lambda c: c["average_precision"]["params"].update(neg_diffby=["Metadata_Nope"]),
            "neg_diffby entry 'Metadata_Nope' is not a metadata column",
        ),
        (
            lambda c: c["data"].update(path="missing.parquet"),
            "data.path: file 'missing.parquet' not found",
        ),
    ],
)
def test_run_errors_are_one_line_exit_2(tmp_path, capsys, monkeypatch, edit, message):
    config = _write_inputs(tmp_path)
    cfg = yaml.safe_load(config.read_text())
    edit(cfg)
    config.write_text(yaml.safe_dump(cfg))
    monkeypatch.chdir(tmp_path)
    code, out, err = call_main(capsys, "run", str(config), "--no-progress")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pairmap: error: "), err
    assert message in lines[0]
    assert not (tmp_path / "results").exists()


def test_missing_config_subprocess_and_debug_traceback(tmp_path):
    proc = run_cli("run", "nope.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "pairmap: error: config file 'nope.yaml' not found"
    proc = run_cli("--log-level", "DEBUG", "run", "nope.yaml", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" in proc.stderr
    assert proc.stderr.strip().endswith("pairmap: error: config file 'nope.yaml' not found")
