"""Regression tests for review findings on the command line (pairmap.cli, cache commands)."""

from __future__ import annotations

import logging
import warnings

import pytest

from pairmap import cli

SMALL_DEMO = ["--n-perturbations", "8", "--null-size", "50", "--no-progress", "--n-jobs", "1"]


def call_main(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(args))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


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


# ------------------------------------------------------------------ 6: one line per cache problem


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
    code, _, err = call_main(capsys, "--log-level", "ERROR", "demo", "--out",
                             str(tmp_path / "d"), *SMALL_DEMO)
    assert code == 0 and "null cache" not in err
