"""The command line's logging, warnings and cache-command options (levels, one line per warning)."""

from __future__ import annotations

import logging
import warnings

import pytest
from test_cli import call_main

SMALL_DEMO = ["--n-perturbations", "8", "--null-size", "50", "--no-progress", "--n-jobs", "1"]


@pytest.fixture(autouse=True)
def _restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    show = warnings.showwarning
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)
    warnings.showwarning = show


# ------------------------------------------------------------------ one line per cache problem


def test_cache_problem_is_reported_once_on_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("PAIRMAP_CACHE_DIR", str(tmp_path / "file" / "cache"))
    code, out, err = call_main(capsys, "demo", "--out", str(tmp_path / "d"), *SMALL_DEMO)
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.strip()]
    cache_lines = [line for line in lines if "null cache" in line]
    assert len(cache_lines) == 1, err
    assert "CacheWarning" in cache_lines[0] and "filesystem.py" not in err
    assert not [line for line in lines if line.startswith("  ")], err  # no source-line echo


def test_warnings_hook_is_restored_after_main(tmp_path, monkeypatch, capsys):
    before = warnings.showwarning
    call_main(capsys, "run", str(tmp_path / "missing.yaml"))
    assert warnings.showwarning is before


def test_log_level_error_hides_warnings(tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("PAIRMAP_CACHE_DIR", str(tmp_path / "file" / "cache"))
    code, _, err = call_main(
        capsys, "--log-level", "ERROR", "demo", "--out", str(tmp_path / "d"), *SMALL_DEMO
    )
    assert code == 0 and "null cache" not in err


# ------------------------------------------------------------------ cache commands


def test_cache_info_and_prune_honor_max_bytes_env(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PAIRMAP_CACHE_MAX_BYTES", "2MB")
    code, out, _ = call_main(capsys, "cache", "info", "--dir", str(tmp_path), "--json")
    assert code == 0 and '"max_bytes": 2000000' in out
    code, out, _ = call_main(capsys, "cache", "prune", "--dir", str(tmp_path))
    assert code == 0 and "no size bound" not in out and "bound 2.0 MB" in out
    code, out, _ = call_main(capsys, "cache", "prune", "--dir", str(tmp_path), "--max-bytes", "1MB")
    assert code == 0 and "bound 1.0 MB" in out  # the option wins over the variable


@pytest.mark.parametrize("action", ["info", "verify", "prune", "clear"])
def test_cache_dir_that_is_a_file(tmp_path, capsys, action):
    f = tmp_path / "afile"
    f.write_text("x")
    code, _, err = call_main(capsys, "cache", action, "--dir", str(f))
    assert code == 2
    assert f"pairmap: error: cache directory '{f}' is not a directory" in err
    assert f.read_text() == "x"


# ------------------------------------------------------------------ --log-level position


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "MISSING.yaml", "--log-level", "DEBUG"],
        ["--log-level", "DEBUG", "run", "MISSING.yaml"],
    ],
)
def test_log_level_before_or_after_the_subcommand(tmp_path, capsys, argv):
    argv = [a.replace("MISSING.yaml", str(tmp_path / "missing.yaml")) for a in argv]
    code, _, err = call_main(capsys, *argv)
    assert code == 2
    assert "Traceback" in err  # DEBUG shows the traceback


def test_log_level_after_cache_action(tmp_path, capsys):
    code, out, _ = call_main(capsys, "cache", "info", "--dir", str(tmp_path), "--log-level", "INFO")
    assert code == 0 and "cache directory" in out


def test_subcommand_log_level_does_not_reset_global(tmp_path, capsys):
    code, _, err = call_main(capsys, "--log-level", "DEBUG", "run", str(tmp_path / "x.yaml"))
    assert code == 2 and "Traceback" in err
