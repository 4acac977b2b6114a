"""Built-in data sets (in the spirit of :mod:`sklearn.datasets`), readable with no network.

One real plate ships with the package:

* :func:`load_lincs_plate` -- LINCS Cell Painting plate SQ00015054 (A549 cells,
  384 wells: 58 compounds x 6 doses, 2 compounds with 12 wells, 24 DMSO wells;
  26 ``Metadata_*`` columns and 454 CellProfiler features, normalized and
  feature-selected with pycytominer). Source: cytomining/cytominer-eval
  ``cytominer_eval/example_data/compound/``; the LINCS Cell Painting data are
  released under CC0.

Simulated screens with a known truth come from :func:`pairmap.simulate_screen`.
"""

from __future__ import annotations

import hashlib
import logging
from importlib import resources

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

__all__ = ["LINCS_PLATE_FILE", "LINCS_PLATE_SHA256", "lincs_plate_path", "load_lincs_plate"]

#: File name of the LINCS plate inside ``pairmap/datasets/data``.
LINCS_PLATE_FILE = "lincs_SQ00015054_normalized_feature_select.csv.gz"
#: SHA-256 of that file (the same as ``../shared/data``'s copy).
LINCS_PLATE_SHA256 = "0dab037c26926b143d3d64210bde3aa94943691edd226915dada9db85f5bd1c7"


def lincs_plate_path():
    """Location of the packaged LINCS plate file (a CSV, gzip-compressed).

    Returns
    -------
    importlib.resources.abc.Traversable
        The file inside the installed package; use it with ``open()`` or
        :func:`pandas.read_csv`.

    Examples
    --------
    >>> lincs_plate_path().name
    'lincs_SQ00015054_normalized_feature_select.csv.gz'
    """
    return resources.files(__name__).joinpath("data", LINCS_PLATE_FILE)


def _read_verified() -> bytes:
    data = lincs_plate_path().read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != LINCS_PLATE_SHA256:
        raise OSError(
            f"the packaged LINCS plate {LINCS_PLATE_FILE} is damaged (sha256 {digest}, expected "
            f"{LINCS_PLATE_SHA256}); reinstall pairmap"
        )
    return data


def load_lincs_plate(*, split: bool = False) -> pd.DataFrame | tuple[pd.DataFrame, np.ndarray]:
    """Load the LINCS Cell Painting plate SQ00015054 that ships with pairmap.

    The file's checksum is verified before it is parsed, so a damaged
    installation is an error, never silently different numbers.

    Parameters
    ----------
    split : bool, default False
        If False, return the whole table. If True, return ``(meta, feats)``:
        the ``Metadata_*`` columns as a DataFrame and the features as a
        float64 array, ready for :func:`pairmap.average_precision`.

    Returns
    -------
    pandas.DataFrame or tuple of (pandas.DataFrame, numpy.ndarray)
        384 rows. Useful columns: ``Metadata_broad_sample`` (compound id,
        ``"DMSO"`` for the controls), ``Metadata_mmoles_per_liter`` (dose),
        ``Metadata_moa`` (mechanism of action, ``|``-separated when several),
        ``Metadata_Plate`` and ``Metadata_Well``.

    Examples
    --------
    >>> meta, feats = load_lincs_plate(split=True)
    >>> feats.shape
    (384, 454)
    >>> int((meta["Metadata_broad_sample"] == "DMSO").sum())
    24
    """
    import io

    df = pd.read_csv(io.BytesIO(_read_verified()), compression="gzip")
    logger.debug("loaded the LINCS plate: %d rows x %d columns", *df.shape)
    if not split:
        return df
    meta_cols = [c for c in df.columns if str(c).startswith("Metadata_")]
    meta = df[meta_cols].reset_index(drop=True)
    feats = df.drop(columns=meta_cols).to_numpy(dtype=np.float64)
    return meta, feats
