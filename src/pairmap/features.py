"""Feature access by row blocks, whatever the input's memory layout (pure array code).

The engine never copies the whole feature matrix. It asks a :class:`FeatureSource`
for the rows it needs, block by block, and always receives a C-ordered array of
``float32`` or ``float64``:

* a C-contiguous, writable in-memory array is read by the compiled kernels as it is
  (:attr:`FeatureSource.direct`), the fastest path;
* Fortran-ordered or strided arrays (``DataFrame.to_numpy()`` of a one-dtype frame,
  ``np.load`` of such an array), memory-mapped ``.npy`` files (a path, or
  ``np.load(path, mmap_mode="r")``), DataFrames with mixed numeric dtypes, integer or
  boolean arrays and Zarr arrays are gathered on demand, a block of rows at a time;
* a row subset (query expressions) and the row centring of ``distance="correlation"``
  are applied to each gathered block, never to a copy of the whole matrix.

Pages of memory-mapped files that were read are handed back to the operating system
every :data:`RELEASE_BYTES` bytes, so a file larger than memory streams through a
bounded resident set.

Every value the kernels see is the same whatever the route (the same rows, converted
the same way), so results do not depend on the input's layout.
"""

from __future__ import annotations

import logging
import mmap
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._ties import projection_matrix
from .feature_files import PARQUET_SUFFIXES, open_parquet

logger = logging.getLogger(__name__)

__all__ = ["FeatureSource", "as_feature_source"]

#: release the pages of a memory-mapped file after this many bytes were read from it
RELEASE_BYTES = 1 << 28
#: rows per block when scanning the whole matrix (norms, finiteness checks)
SCAN_BYTES = 1 << 24


class FeatureSource:
    """Row-block access to an ``(n, d)`` feature matrix without copying it whole.

    Parameters
    ----------
    data : array-like
        A NumPy array of any memory order (including ``numpy.memmap``), or any
        object with ``shape``, ``dtype`` and NumPy-style row indexing (Zarr arrays;
        orthogonal indexing through ``.oindex`` is used when present).
    names : list of str, optional
        Feature names, for error messages.
    rows : numpy.ndarray, optional
        Row subset (positions into ``data``); default all rows.
    center : bool, default False
        Subtract every row's mean (computed in float64, cast to the working dtype)
        from each gathered block, as for the correlation distance.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.asfortranarray(np.arange(12.0).reshape(4, 3))
    >>> src = FeatureSource(X)
    >>> src.direct is None, src.take(np.array([2, 0])).flags.c_contiguous
    (True, True)
    >>> src.take(np.array([2, 0])).tolist()
    [[6.0, 7.0, 8.0], [0.0, 1.0, 2.0]]
    >>> FeatureSource(np.ones((2, 2))).direct is not None
    True
    """

    def __init__(self, data, names=None, rows=None, center=False, _means=None, _columns=None):
        self.data = data
        self.names = names
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.center = bool(center)
        self._columns = _columns  # per-column arrays (DataFrames with mixed dtypes)
        self._means = _means
        in_dtype = np.dtype(_columns[0].dtype if _columns is not None else data.dtype)
        if _columns is not None:
            kinds = {np.dtype(c.dtype) for c in _columns}
            self.dtype = (
                np.dtype(np.float32) if kinds == {np.dtype(np.float32)} else np.dtype(np.float64)
            )
            self.n_features = len(_columns)
            n_base = len(_columns[0])
        else:
            self.dtype = in_dtype if in_dtype in (np.float32, np.float64) else np.dtype(np.float64)
            n_base, self.n_features = data.shape
        self.n_rows = n_base if self.rows is None else len(self.rows)
        self._mmap = _find_mmap(data) if _columns is None else None
        self._read = 0
        self._lock = threading.Lock()
        self._scan: ScanStats | None = None

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple[int, int]:
        """``(n_rows, n_features)`` after the row subset."""
        return self.n_rows, self.n_features

    @property
    def ndim(self) -> int:
        """Always 2."""
        return 2

    @property
    def itemsize(self) -> int:
        """Bytes per feature value in gathered blocks."""
        return self.dtype.itemsize

    @property
    def direct(self) -> np.ndarray | None:
        """The array itself when kernels may read it in place, else None.

        That is a C-contiguous, aligned, writable in-memory ``float32``/``float64``
        array with no row subset and no centring.
        """
        X = self.data
        if (
            self._columns is None
            and self.rows is None
            and not self.center
            and self._mmap is None
            and type(X) is np.ndarray
            and X.dtype == self.dtype
            and X.flags.c_contiguous
            and X.flags.aligned
            and X.flags.writeable
        ):
            return X
        return None

    # ------------------------------------------------------------------ derived sources
    def subset(self, rows: np.ndarray) -> FeatureSource:
        """The source restricted to ``rows`` (positions in this source)."""
        rows = np.asarray(rows, dtype=np.int64)
        base = rows if self.rows is None else self.rows[rows]
        means = None if self._means is None else self._means[rows]
        out = FeatureSource(self.data, self.names, base, self.center, means, self._columns)
        out._mmap = self._mmap
        return out

    def centered(self) -> FeatureSource:
        """The source with every row centred on its mean (correlation)."""
        if self.center:
            return self
        means = self.scan(means=True).means  # from the one pass over the rows
        out = FeatureSource(self.data, self.names, self.rows, True, means, self._columns)
        out._mmap = self._mmap
        return out

    # ------------------------------------------------------------------ access
    def take(self, rows) -> np.ndarray:
        """C-ordered ``(len(rows), n_features)`` block of the given rows (any order)."""
        rows = np.asarray(rows, dtype=np.int64)
        block = self._gather(rows if self.rows is None else self.rows[rows])
        if self.center:
            block -= self._means[rows].astype(self.dtype)[:, None]
        return block

    def slice(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as a C-ordered block (a view when that is possible)."""
        direct = self.direct
        if direct is not None:
            return direct[start:stop]
        if self.rows is None and not self.center and self._columns is None:
            block = _as_block(self.data[start:stop], self.dtype)
            self._account(block.nbytes)
            return block
        return self.take(np.arange(start, stop, dtype=np.int64))

    def blocks(self, nbytes: int = SCAN_BYTES):
        """Yield ``(start, block)`` over all rows in C-ordered blocks of about ``nbytes``."""
        step = max(1, nbytes // max(1, self.n_features * self.itemsize))
        for start in range(0, self.n_rows, step):
            yield start, self.slice(start, min(self.n_rows, start + step))

    def scan(self, means: bool = False) -> ScanStats:
        """Whole-matrix statistics from one pass over the rows (computed once per source).

        The finiteness check, the squared row norms, the row means and the tie
        projection (:func:`pairmap._ties.projection_matrix`) are taken from the same
        read of every row, by :mod:`pairmap._kernels.rowstats`: float64 sums with the
        features added in column order, so every value is the same whatever the
        memory order. Fortran-ordered arrays and memory maps are read through
        their transpose, in place: no row is gathered or transposed.

        Parameters
        ----------
        means : bool, default False
            Kept for callers that need the row means (``distance="correlation"``);
            they are always computed.

        Returns
        -------
        ScanStats
        """
        if self._scan is None:
            from ._kernels.rowstats import row_stats, row_stats_transposed

            n = self.n_rows
            stats = ScanStats(
                n_bad=0,
                first_bad=None,
                sq_norms=np.empty(n, dtype=np.float64),
                means=np.empty(n, dtype=np.float64),
                proj=np.empty((n, 2), dtype=np.float64),
            )
            sums = stats.means
            R = projection_matrix(self.n_features, self.dtype)
            T = self._transposed()
            step = max(1, SCAN_BYTES // max(1, self.n_features * self.itemsize))
            for start in range(0, n, step):
                stop = min(n, start + step)
                out = stats.sq_norms[start:stop], sums[start:stop], stats.proj[start:stop]
                if T is not None:
                    row_stats_transposed(T, start, stop, R, *out)
                    self._account((stop - start) * self.n_features * self.itemsize)
                else:
                    row_stats(self.slice(start, stop), R, *out)
                # a non-finite value makes its row's sum of squares non-finite (so does
                # overflow of huge finite float64 values: those rows are checked too)
                suspect = np.flatnonzero(~np.isfinite(stats.sq_norms[start:stop]))
                if len(suspect):
                    values = self.take(start + suspect)
                    bad = ~np.isfinite(values)
                    if bad.any() and stats.first_bad is None:
                        r, c = np.argwhere(bad)[0]
                        stats.first_bad = (start + int(suspect[r]), int(c), values[r, c].item())
                    stats.n_bad += int(bad.sum())
            sums /= self.n_features
            self._scan = stats
        return self._scan

    def _transposed(self) -> np.ndarray | None:
        """The C-ordered transpose of a Fortran-ordered matrix read in place, else None."""
        data = self.data
        if (
            self._columns is not None
            or self.rows is not None
            or self.center
            or not isinstance(data, np.ndarray)
            or data.dtype != self.dtype
        ):
            return None
        T = np.asarray(data).T
        return T if T.flags.c_contiguous and T.flags.aligned else None

    def forget_scan(self) -> None:
        """Free the statistics of :meth:`scan` (a later call computes them again)."""
        self._scan = None

    # ------------------------------------------------------------------ internals
    def _gather(self, rows: np.ndarray) -> np.ndarray:
        if self._columns is not None:
            out = np.empty((len(rows), self.n_features), dtype=self.dtype)
            for j, col in enumerate(self._columns):
                out[:, j] = col[rows]
            return out
        data = self.data
        if isinstance(data, np.ndarray) and np.asarray(data).T.flags.c_contiguous:
            # Fortran order: each feature is a contiguous row of the transpose, so gather
            # every feature's values at once, then transpose the (small) block
            block = np.asarray(data).T[:, rows].T
        elif isinstance(data, np.ndarray):
            if self._mmap is None or len(rows) < 2 or np.all(rows[1:] >= rows[:-1]):
                block = data[rows]
            else:  # read a memory map in file order, then restore the requested order
                order = np.argsort(rows, kind="stable")
                block = np.empty((len(rows), self.n_features), dtype=data.dtype)
                block[order] = data[rows[order]]
        else:  # Zarr and other array-likes: sorted unique rows, orthogonal indexing
            uniq, inverse = np.unique(rows, return_inverse=True)
            getter = getattr(data, "oindex", None)
            part = getter[uniq, :] if getter is not None else data[uniq]
            block = np.asarray(part)[inverse.reshape(-1)]
        block = _as_block(block, self.dtype)
        self._account(block.nbytes)
        return block

    def _account(self, nbytes: int) -> None:
        if self._mmap is None:
            return
        with self._lock:
            self._read += nbytes
            if self._read < RELEASE_BYTES:
                return
            self._read = 0
        try:  # read-only file pages: dropping them only costs a re-read from the page cache
            self._mmap.madvise(mmap.MADV_DONTNEED)
        except (AttributeError, OSError, ValueError):  # pragma: no cover - platform dependent
            pass


@dataclass
class ScanStats:
    """What :meth:`FeatureSource.scan` learns in its one pass over the rows.

    Attributes
    ----------
    n_bad : int
        Number of NaN or infinite values.
    first_bad : tuple or None
        ``(row, column, value)`` of the first of them.
    sq_norms : numpy.ndarray
        Squared norm of every row (float64, features added in column order).
    means : numpy.ndarray
        Mean of every row (the float64 sum in column order, divided by the count).
    proj : numpy.ndarray
        ``(n, 2)`` tie projection of the rows, accumulated in float64.
    """

    n_bad: int
    first_bad: tuple | None
    sq_norms: np.ndarray
    means: np.ndarray
    proj: np.ndarray


def _as_block(block, dtype) -> np.ndarray:
    """A C-contiguous, aligned, writable plain ndarray of ``dtype`` (copies only if needed)."""
    block = np.asarray(block)  # a plain ndarray (view) of subclasses such as numpy.memmap
    flags = block.flags
    if block.dtype == dtype and flags.c_contiguous and flags.aligned and flags.writeable:
        return block
    return np.array(block, dtype=dtype, order="C")


def _find_mmap(data):
    """The ``mmap.mmap`` behind a memory-mapped NumPy array, if any."""
    obj = data
    for _ in range(8):
        if obj is None:
            return None
        if isinstance(obj, mmap.mmap):
            return obj
        found = getattr(obj, "_mmap", None)
        if isinstance(found, mmap.mmap):
            return found
        obj = getattr(obj, "base", None)
    return None


def _check_values(X_dtype: np.dtype) -> None:
    if X_dtype.kind == "O" or not (np.issubdtype(X_dtype, np.number) or X_dtype.kind == "b"):
        raise ValueError(f"feats must be numeric, got an array of dtype {X_dtype}")
    if np.issubdtype(X_dtype, np.complexfloating):
        raise ValueError("feats must be real-valued, got complex numbers")


def _open_path(path) -> object:
    """Open a ``.npy`` file memory-mapped, or a Zarr array directory."""
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(
            f"feats={str(path)!r}: no such file; give a .npy file or a Zarr array"
        )
    if p.suffix == ".npy":
        return np.load(p, mmap_mode="r")
    if p.suffix in PARQUET_SUFFIXES:  # streamed once into a temporary memory-mapped file
        return open_parquet(p)
    if p.suffix == ".zarr" or (
        p.is_dir() and any((p / m).exists() for m in ("zarr.json", ".zarray"))
    ):
        try:
            import zarr
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError(
                f"feats={str(path)!r} is a Zarr array; install zarr (pip install zarr) to read it"
            ) from None
        return zarr.open_array(str(p), mode="r")
    raise ValueError(
        f"feats={str(path)!r}: only .npy files (memory-mapped), Parquet files and Zarr arrays can "
        f"be read from a path; load other formats yourself and pass the array"
    )


def as_feature_source(feats, n_meta: int) -> FeatureSource:
    """Validate features (array, DataFrame, memory map, Zarr array or path) as a source.

    Parameters
    ----------
    feats : numpy.ndarray, pandas.DataFrame, array-like, str or os.PathLike
        ``(n_profiles, n_features)`` numeric features; a path names a ``.npy`` file
        (memory-mapped, never read whole), a Parquet file (its non-``Metadata_``
        columns, streamed once into a temporary memory-mapped file: see
        :mod:`pairmap.feature_files`) or a Zarr array.
    n_meta : int
        Number of metadata rows (must match).

    Returns
    -------
    FeatureSource

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> src = as_feature_source(pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}), 2)
    >>> src.shape, src.names
    ((2, 2), ['a', 'b'])
    """
    import pandas as pd

    names, columns = None, None
    if isinstance(feats, (str, os.PathLike)):
        feats = _open_path(feats)
        if isinstance(feats, tuple):  # a Parquet file: (memory-mapped features, column names)
            feats, names = feats
    if isinstance(feats, pd.DataFrame):
        bad = [
            c
            for c in feats.columns
            if not pd.api.types.is_numeric_dtype(feats[c]) or pd.api.types.is_bool_dtype(feats[c])
        ]
        if bad:
            raise ValueError(
                f"feature column {bad[0]!r} is not numeric (dtype {feats[bad[0]].dtype}); "
                f"move it to the metadata or drop it ({len(bad)} non-numeric column(s) in all)"
            )
        names = [str(c) for c in feats.columns]
        if (
            feats.shape[1]
            and len(set(feats.dtypes)) == 1
            and not isinstance(feats.dtypes.iloc[0], pd.api.extensions.ExtensionDtype)
        ):
            data = feats.to_numpy()  # one block: a view (Fortran-ordered) when pandas can
        else:
            data = None
            columns = [
                feats.iloc[:, j].to_numpy(dtype=_column_dtype(feats.dtypes.iloc[j]))
                for j in range(feats.shape[1])
            ]
        shape = (len(feats), feats.shape[1])
    else:
        data = feats if hasattr(feats, "shape") and hasattr(feats, "dtype") else np.asarray(feats)
        _check_values(np.dtype(data.dtype))
        shape = tuple(data.shape)
    if len(shape) != 2:
        raise ValueError(f"feats must be 2-D (profiles x features), got shape {shape}")
    if shape[0] != n_meta:
        raise ValueError(
            f"meta has {n_meta} rows but feats has {shape[0]}; they must describe the same "
            f"profiles in the same order"
        )
    if shape[1] == 0:
        raise ValueError("feats has no feature columns")
    return FeatureSource(data, names, _columns=columns)


def _column_dtype(dtype) -> np.dtype:
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)
