"""Shared fixtures: real-data location and skip helpers, small screens, private null caches."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:  # make ``import oracles`` work in every import mode
    sys.path.insert(0, str(TESTS_DIR))

#: Real profiling data (read-only, outside the repository): ``<repo>/../shared/data``.
DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LINCS_FILE = "lincs_SQ00015054_normalized_feature_select.csv.gz"
NELISA_FILE = "nelisa_profiles.parquet"


def data_file(name: str) -> Path:
    """Path of a shared data file; skips the calling test when it is absent."""
    path = DATA_DIR / name
    if not path.exists():
        pytest.skip(f"real data not available: {path} is missing (expected ../shared/data)")
    return path


def split_profiles(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Split a profile table into (Metadata_* frame, float64 feature matrix)."""
    meta_cols = [c for c in df.columns if c.startswith("Metadata_")]
    feat_cols = [c for c in df.columns if not c.startswith("Metadata_")]
    return df[meta_cols].reset_index(drop=True), df[feat_cols].to_numpy(dtype=np.float64)


@pytest.fixture(scope="session")
def lincs_plate() -> tuple[pd.DataFrame, np.ndarray]:
    """The LINCS plate as (meta, float64 feats); skipped when the data is absent."""
    return split_profiles(pd.read_csv(data_file(LINCS_FILE)))


@pytest.fixture(scope="session")
def copairs_ap():
    """``copairs.map.average_precision``; skipped when copairs is not installed."""
    mod = pytest.importorskip(
        "copairs.map", reason="copairs is not installed (pip install copairs)"
    )
    return mod.average_precision


def make_screen(
    seed: int,
    *,
    n_plates: int = 3,
    n_compounds: int = 8,
    n_reps: int = 2,
    n_controls: int = 4,
    n_features: int = 12,
    effect: float = 1.0,
    dtype=np.float64,
) -> tuple[pd.DataFrame, np.ndarray]:
    """A small plate-based screen with compounds, DMSO controls and plate effects.

    Each plate holds ``n_reps`` wells of every compound and ``n_controls`` DMSO
    wells. Controls carry their own ``Metadata_Reference_Index`` (row position),
    treatments -1. Features are compound effect + plate effect + noise.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_plates):
        for c in range(n_compounds):
            for r in range(n_reps):
                rows.append((f"P{p}", f"cpd{c}", r))
        for r in range(n_controls):
            rows.append((f"P{p}", "DMSO", r))
    meta = pd.DataFrame(rows, columns=["Metadata_Plate", "Metadata_broad_sample", "Metadata_rep"])
    n = len(meta)
    cpd_effect = {f"cpd{c}": effect * rng.normal(size=n_features) for c in range(n_compounds)}
    cpd_effect["DMSO"] = np.zeros(n_features)
    plate_effect = {f"P{p}": 0.5 * rng.normal(size=n_features) for p in range(n_plates)}
    feats = np.stack(
        [
            cpd_effect[c] + plate_effect[p] + rng.normal(size=n_features)
            for p, c in zip(meta["Metadata_Plate"], meta["Metadata_broad_sample"], strict=True)
        ]
    ).astype(dtype)
    ref = np.where(meta["Metadata_broad_sample"].to_numpy() == "DMSO", np.arange(n), -1)
    meta["Metadata_Reference_Index"] = ref.astype(np.int64)
    return meta, feats


@pytest.fixture
def small_screen():
    """Factory fixture: ``small_screen(seed, **kw)`` -> (meta, feats); see :func:`make_screen`."""
    return make_screen


@pytest.fixture(autouse=True)
def _isolated_null_cache(tmp_path_factory, monkeypatch):
    """Never let a test read or write the user's real null cache."""
    if "PAIRMAP_CACHE_DIR" not in os.environ or not os.environ["PAIRMAP_CACHE_DIR"].startswith(
        str(tmp_path_factory.getbasetemp())
    ):
        monkeypatch.setenv("PAIRMAP_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "null-cache"))


@pytest.fixture
def private_null_cache(tmp_path_factory, monkeypatch):
    """A fresh, empty null cache folder for one test (``PAIRMAP_CACHE_DIR``)."""
    path = tmp_path_factory.mktemp("null-cache")
    monkeypatch.setenv("PAIRMAP_CACHE_DIR", str(path))
    return path


@pytest.fixture(scope="session")
def screen_csv_factory(tmp_path_factory):
    """Factory fixture: ``screen_csv_factory(**simulate_screen_kwargs)`` -> path of a CSV
    profile table (metadata + features ``f0``, ``f1``, ...) of a simulated screen."""
    from pairmap.simulate import simulate_screen

    def make(**kwargs) -> Path:
        meta, feats = simulate_screen(**kwargs)
        cols = [f"f{j}" for j in range(feats.shape[1])]
        df = pd.concat([meta, pd.DataFrame(feats, columns=cols)], axis=1)
        path = tmp_path_factory.mktemp("data") / "screen.csv"
        df.to_csv(path, index=False)
        return path

    return make


@pytest.fixture
def compiled_engine(monkeypatch):
    """Score every screen with the compiled engine (small screens default to NumPy alone)."""
    from pairmap import _small

    monkeypatch.setattr(_small, "MAX_PROFILES", 0)


@pytest.fixture(scope="module", params=["numpy", "compiled"])
def both_engines(request):
    """Run a module's tests twice: small screens by NumPy alone, then by the compiled engine."""
    from pairmap import _small

    with pytest.MonkeyPatch.context() as mp:
        if request.param == "compiled":
            mp.setattr(_small, "MAX_PROFILES", 0)
        yield request.param
