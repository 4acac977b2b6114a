"""Atomic output files (pairmap._io): a result file appears complete or not at all."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from pairmap import _io


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
