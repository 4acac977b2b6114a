"""Parquet-backed features: streamed once into a memory map, results identical to the array."""

from __future__ import annotations

import gc
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import make_screen

import pairmap
from pairmap import feature_files

ACTIVITY = dict(
    pos_sameby=["Metadata_broad_sample", "Metadata_Reference_Index"],
    pos_diffby=[],
    neg_sameby=["Metadata_Plate"],
    neg_diffby=["Metadata_broad_sample", "Metadata_Reference_Index"],
)


def _write(tmp_path, meta, X, row_group_size=37, name="profiles.parquet"):
    frame = meta.copy()
    for j in range(X.shape[1]):
        frame[f"f{j}"] = X[:, j]
    path = tmp_path / name
    pq.write_table(pa.Table.from_pandas(frame), path, row_group_size=row_group_size)
    return path


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parquet_path_gives_the_array_results_bit_for_bit(tmp_path, monkeypatch, dtype):
    meta, X = make_screen(4, n_plates=3, n_compounds=30, n_reps=2, n_controls=8, dtype=dtype)
    path = _write(tmp_path, meta, X)
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setenv("PAIRMAP_SPILL_DIR", str(spill))
    monkeypatch.setattr(feature_files, "BATCH_BYTES", 256)  # many small batches
    expected = pairmap.average_precision(meta, X, **ACTIVITY, progress_bar=False)
    got = pairmap.average_precision(meta, str(path), **ACTIVITY, progress_bar=False)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    gc.collect()
    assert os.listdir(spill) == []  # the temporary copy is gone with the run


def test_parquet_to_npy_streams_in_batches_and_keeps_column_order(tmp_path, monkeypatch):
    meta, X = make_screen(1, n_plates=2, n_compounds=12, n_reps=2, n_controls=4)
    path = _write(tmp_path, meta, X, row_group_size=5)
    monkeypatch.setattr(feature_files, "BATCH_BYTES", 64)
    arr = feature_files.parquet_to_npy(path, tmp_path / "x.npy")
    np.testing.assert_array_equal(arr, X)
    picked = feature_files.parquet_to_npy(path, tmp_path / "y.npy", columns=["f2", "f0"])
    np.testing.assert_array_equal(picked, X[:, [2, 0]])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profiles.parquet", "x.npy", "y.npy"]


def test_parquet_problems_name_the_column_and_the_fix(tmp_path):
    meta, X = make_screen(2, n_plates=2, n_compounds=6, n_reps=2, n_controls=2)
    X[5, 1] = np.nan
    path = _write(tmp_path, meta, X)
    with pytest.raises(ValueError, match=r"row 5, feature 'f1'"):
        pairmap.average_precision(meta, str(path), **ACTIVITY, progress_bar=False)
    frame = pd.read_parquet(path)
    frame["batch"] = "b1"  # metadata without the Metadata_ prefix
    frame.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(
        ValueError, match=r"column 'batch' has type \w*string.*Metadata_.*parquet_to_npy"
    ):
        pairmap.average_precision(meta, str(tmp_path / "bad.parquet"), **ACTIVITY)
    meta.to_parquet(tmp_path / "meta_only.parquet")
    with pytest.raises(ValueError, match=r"no features; to name the feature columns, convert with"):
        pairmap.average_precision(meta, str(tmp_path / "meta_only.parquet"), **ACTIVITY)
    with pytest.raises(ValueError, match=r"no features; to name the feature columns, pass columns"):
        feature_files.parquet_to_npy(tmp_path / "meta_only.parquet", tmp_path / "m.npy")
    with pytest.raises(ValueError, match="'nope' is not in the file"):
        feature_files.parquet_to_npy(path, tmp_path / "z.npy", columns=["nope"])
    assert not (tmp_path / "z.npy").exists()


def test_failed_conversion_leaves_no_partial_file(tmp_path, monkeypatch):
    meta, X = make_screen(3, n_plates=2, n_compounds=6, n_reps=2, n_controls=2)
    path = _write(tmp_path, meta, X, row_group_size=4)
    real = pq.ParquetFile.read_row_group
    reads = []

    def failing(self, *a, **k):
        reads.append(1)
        if len(reads) == 3:
            raise OSError("disk full")
        return real(self, *a, **k)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", failing)
    monkeypatch.setattr(feature_files, "BATCH_BYTES", 64)
    with pytest.raises(OSError, match="disk full"):
        feature_files.parquet_to_npy(path, tmp_path / "x.npy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profiles.parquet"]


def test_too_little_room_for_the_unpacked_features_is_refused(tmp_path, monkeypatch):
    meta, X = make_screen(3, n_plates=2, n_compounds=6, n_reps=2, n_controls=2)
    path = _write(tmp_path, meta, X)
    monkeypatch.setattr(feature_files, "_free_bytes", lambda folder: 10)
    with pytest.raises(OSError, match="PAIRMAP_SPILL_DIR"):
        pairmap.average_precision(meta, str(path), **ACTIVITY, progress_bar=False)
