"""Features stored in Parquet files, streamed into a memory-mapped array.

Parquet stores columns compressed in row groups, so reading one profile means
decoding a whole row group of every feature column. The engine reads rows in the
order its blocks need them (a plate's wells, a compound's replicates on other
plates), which would decode the same row groups again and again. A Parquet file
is therefore read once, row group by row group, into an uncompressed ``.npy``
file that is memory-mapped like any other (:mod:`pairmap.features`): memory stays
bounded by one batch of rows whatever the file's size, and the work after that
is the memory-mapped path's.

``average_precision(meta, "profiles.parquet", ...)`` does this into a temporary
file (in ``$PAIRMAP_SPILL_DIR`` or the system's temporary folder) that is removed
when the run no longer needs it. :func:`parquet_to_npy` writes a lasting copy,
e.g. once on shared storage for the workers of a Dask cluster.

Feature columns follow pycytominer's convention: every column whose name does not
start with ``Metadata_``, unless ``columns`` names them.
"""

from __future__ import annotations

import logging
import mmap
import os
import tempfile
import weakref
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["parquet_to_npy", "PARQUET_SUFFIXES"]

#: file names read as Parquet
PARQUET_SUFFIXES = (".parquet", ".pq")
#: rows converted per batch: at most this many bytes of features in memory at once
BATCH_BYTES = 8 << 20
#: written pages are flushed and dropped from the process after this many bytes
RELEASE_BYTES = 64 << 20


#: how to name the feature columns, from a feats= path (no columns argument there)
_NAME_THEM = (
    "convert with pairmap.feature_files.parquet_to_npy(path, out, columns=[...]) and pass the "
    ".npy file"
)


def _feature_columns(schema, columns, path, how="pass columns=[...]") -> tuple[list[str], np.dtype]:
    """Feature column names and the array dtype (float32 if every column is float32).

    ``how`` says how the caller can name the feature columns (for error messages).
    """
    import pyarrow as pa

    names = list(schema.names)
    if columns is None:
        chosen = [c for c in names if not c.startswith("Metadata_") and c != "__index_level_0__"]
        if not chosen:
            raise ValueError(
                f"{path}: every column starts with 'Metadata_', so there are no features; "
                f"to name the feature columns, {how}"
            )
    else:
        chosen = [str(c) for c in columns]
        missing = [c for c in chosen if c not in names]
        if missing:
            raise ValueError(
                f"{path}: feature column {missing[0]!r} is not in the file "
                f"({len(missing)} missing); its columns start {names[:5]}"
            )
    kinds = {}
    for c in chosen:
        t = schema.field(c).type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t)):
            raise ValueError(
                f"{path}: column {c!r} has type {t} and is not a feature; prefix metadata "
                f"columns with 'Metadata_', or, to name the feature columns, {how}"
            )
        kinds[c] = t
    dtype = np.float32 if all(t == pa.float32() for t in kinds.values()) else np.float64
    return chosen, np.dtype(dtype)


def parquet_to_npy(path, out, columns=None) -> np.memmap:
    """Stream the feature columns of a Parquet file into a ``.npy`` file.

    Parameters
    ----------
    path : str or os.PathLike
        Parquet file, rows in the order of the metadata you will pass along.
    out : str or os.PathLike
        The ``.npy`` file to write (replaced only once it is complete).
    columns : list of str, optional
        Feature columns, in order. Default: every column whose name does not
        start with ``Metadata_``.

    Returns
    -------
    numpy.memmap
        The written array, memory-mapped read-only: ``float32`` when every feature
        column is ``float32``, else ``float64``.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"Metadata_well": ["A1", "A2"], "f1": [1.0, 2.0], "f2": [3.0, 4.0]}).to_parquet(
    ...     folder / "p.parquet")
    >>> parquet_to_npy(folder / "p.parquet", folder / "p.npy").tolist()
    [[1.0, 3.0], [2.0, 4.0]]
    """
    import pyarrow.parquet as pq

    path, out = Path(path), Path(out)
    if out.suffix != ".npy":
        raise ValueError(f"out={str(out)!r} must end in .npy")
    with pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20) as handle:
        names, dtype = _feature_columns(handle.schema_arrow, columns, path)
        n = handle.metadata.num_rows
        partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
        arr = np.lib.format.open_memmap(partial, mode="w+", dtype=dtype, shape=(n, len(names)))
        try:
            # one row group at a time, a slice of its columns at a time: Parquet decodes
            # column chunks, so this bounds the decoded data by BATCH_BYTES
            start = written = 0
            for group in range(handle.num_row_groups):
                rows = handle.metadata.row_group(group).num_rows
                step = max(1, BATCH_BYTES // max(1, rows * dtype.itemsize))
                for c0 in range(0, len(names), step):
                    part = handle.read_row_group(
                        group, columns=names[c0 : c0 + step], use_threads=False
                    )
                    for j, col in enumerate(part.columns):
                        # nulls become NaN, which the finiteness check names by row and column
                        arr[start : start + rows, c0 + j] = col.to_numpy(
                            zero_copy_only=False
                        ).astype(dtype, copy=False)
                    del part
                start += rows
                written += rows * len(names) * dtype.itemsize
                if written >= RELEASE_BYTES:  # files larger than memory: written pages go
                    _release(arr)
                    written = 0
            arr.flush()
            arr = None  # unmapped before the rename
            os.replace(partial, out)
        except BaseException:
            arr = None
            partial.unlink(missing_ok=True)
            raise
    logger.info("features of %s (%d x %d %s) written to %s", path, n, len(names), dtype, out)
    return np.load(out, mmap_mode="r")


def open_parquet(path) -> tuple[np.memmap, list[str]]:
    """Features of a Parquet file as a temporary memory-mapped array, and their names.

    The temporary file lives in ``$PAIRMAP_SPILL_DIR`` (default: the system's
    temporary folder) and is deleted once the array is no longer referenced.
    """
    import pyarrow.parquet as pq

    folder = os.environ.get("PAIRMAP_SPILL_DIR") or tempfile.gettempdir()
    with pq.ParquetFile(path) as handle:
        names, dtype = _feature_columns(handle.schema_arrow, None, path, _NAME_THEM)
        need = handle.metadata.num_rows * len(names) * dtype.itemsize
    free = _free_bytes(folder)
    if free is not None and free < need:
        raise OSError(
            f"{path}: its features need {need / 1e9:.1f} GB unpacked in {folder} "
            f"({free / 1e9:.1f} GB free); set PAIRMAP_SPILL_DIR to a folder with room, or "
            f"convert once with pairmap.feature_files.parquet_to_npy and pass the .npy file"
        )
    fd, tmp = tempfile.mkstemp(prefix="pairmap-features-", suffix=".npy", dir=folder)
    os.close(fd)
    try:
        arr = parquet_to_npy(path, tmp)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    weakref.finalize(arr._mmap if arr._mmap is not None else arr, _unlink, tmp)
    return arr, names


def _release(arr: np.memmap) -> None:
    """Write the mapped pages out and drop them from this process (they are clean now)."""
    arr.flush()
    try:
        arr._mmap.madvise(mmap.MADV_DONTNEED)
    except (AttributeError, OSError, ValueError):  # pragma: no cover - platform dependent
        pass


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:  # already gone
        pass


def _free_bytes(folder) -> int | None:
    try:
        st = os.statvfs(folder)
    except (AttributeError, OSError):  # pragma: no cover - platform dependent
        return None
    return st.f_bavail * st.f_frsize
