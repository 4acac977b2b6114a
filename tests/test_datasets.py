"""The packaged LINCS plate: same bytes as the shared copy, verified, split correctly."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from conftest import LINCS_FILE, data_file, split_profiles

from pairmap import datasets


def test_packaged_file_matches_its_checksum():
    data = datasets.lincs_plate_path().read_bytes()
    assert hashlib.sha256(data).hexdigest() == datasets.LINCS_PLATE_SHA256


def test_load_is_the_shared_plate():
    shared = pd.read_csv(data_file(LINCS_FILE))
    pd.testing.assert_frame_equal(datasets.load_lincs_plate(), shared)
    meta, feats = datasets.load_lincs_plate(split=True)
    ref_meta, ref_feats = split_profiles(shared)
    pd.testing.assert_frame_equal(meta, ref_meta)
    np.testing.assert_array_equal(feats, ref_feats)


def test_split_shapes_and_columns():
    meta, feats = datasets.load_lincs_plate(split=True)
    assert feats.shape == (384, 454) and feats.dtype == np.float64
    assert all(c.startswith("Metadata_") for c in meta.columns) and meta.shape == (384, 26)
    counts = meta["Metadata_broad_sample"].value_counts()
    assert counts["DMSO"] == 24 and len(counts) == 59  # 58 compounds + DMSO
    assert sorted(counts.drop("DMSO").unique().tolist()) == [6, 12]


def test_damaged_file_is_an_error(tmp_path, monkeypatch):
    bad = tmp_path / datasets.LINCS_PLATE_FILE
    bad.write_bytes(datasets.lincs_plate_path().read_bytes()[:-10])
    monkeypatch.setattr(datasets, "lincs_plate_path", lambda: bad)
    with pytest.raises(OSError, match="damaged.*reinstall pairmap"):
        datasets.load_lincs_plate()
