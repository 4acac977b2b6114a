"""Tables of a run: reading the input (with the lazy Parquet row filter), side
tables of preprocessing steps, and splitting metadata from features."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from pairmap.runner.loading import ConfigError
from pairmap.runner.steps import StepContext

logger = logging.getLogger(__name__)

__all__ = ["read_input", "read_side_table", "split_table"]


def _is_url(path) -> bool:
    return str(path).startswith(("http://", "https://", "s3://"))


def _local_file(path, where: str) -> Path:
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"{where} {str(path)!r} is a folder; give the CSV or Parquet file inside it"
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"{where}: file {str(path)!r} not found (relative paths are "
            f"read from the current folder {os.getcwd()!r})"
        )
    return path


def _format(path, where: str) -> str:
    from pairmap._io import table_format

    try:
        return table_format(path)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _file_columns(path: Path, fmt: str, where: str) -> list[str]:
    """Column names of a table file without reading its data."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    try:
        header = pd.read_csv(path, nrows=0, sep="\t" if fmt == "tsv" else ",")
    except pd.errors.EmptyDataError as exc:
        raise ConfigError(f"{where}.path: {str(path)!r} is empty (no header row)") from exc
    return [str(c) for c in header.columns]


def _read_parquet(path, columns, filter_query) -> pd.DataFrame:
    """Read a Parquet file; with a filter, only matching rows are materialised."""
    import pyarrow.dataset as ds

    from pairmap.runner.sqlfilter import sql_to_expression

    dataset = ds.dataset(path, format="parquet")
    expr = None
    if filter_query:
        expr = sql_to_expression(filter_query, dataset.schema.names)
        logger.info("lazy filter on %s: %s", path, filter_query)
    table = dataset.to_table(columns=columns, filter=expr)
    return table.to_pandas()


def _read_csv(path, fmt, columns, filter_query, where) -> pd.DataFrame:
    try:  # the filter may use columns that are not kept: select them after filtering
        df = pd.read_csv(
            path, usecols=None if filter_query else columns, sep="\t" if fmt == "tsv" else ","
        )
    except pd.errors.EmptyDataError as exc:
        raise ConfigError(f"{where}.path: {str(path)!r} is empty (no header row)") from exc
    if filter_query:  # CSV cannot be filtered while reading; same condition, same language
        import pyarrow as pa

        from pairmap.runner.sqlfilter import sql_to_expression

        mask_table = pa.Table.from_pandas(df, preserve_index=False)
        expr = sql_to_expression(filter_query, mask_table.column_names)
        df = mask_table.filter(expr).to_pandas()
        if columns is not None:
            df = df[columns]
    return df


def _tidy(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """Keep index columns (Parquet files written from an indexed frame); refuse 2-level headers."""
    if isinstance(df.columns, pd.MultiIndex):
        raise ConfigError(
            f"{where} has {df.columns.nlevels}-level column headers; pairmap needs "
            f"one header row (join the levels, e.g. 'Metadata_plate', and save "
            f"the table again)"
        )
    if not isinstance(df.index, pd.RangeIndex) or any(n is not None for n in df.index.names):
        logger.info("%s: index column(s) %s kept as columns", where, list(df.index.names))
        df = df.reset_index()
    return df


def read_input(section: Mapping, where: str = "input") -> pd.DataFrame:
    """Read the ``input`` table: CSV/TSV (optionally gzipped) or Parquet.

    ``columns`` loads only those columns; with ``use_lazy_filter: true`` the
    SQL condition ``filter_query`` is applied while a Parquet file is read.

    Examples
    --------
    >>> import pandas as pd, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "t.parquet")
    >>> pd.DataFrame({"Metadata_p": ["a", "b"], "f": [1.0, 2.0]}).to_parquet(path)
    >>> read_input({"path": path, "use_lazy_filter": True, "filter_query": "Metadata_p = 'b'"})
      Metadata_p    f
    0          b  2.0
    """
    path = section["path"]
    if not _is_url(path):
        path = _local_file(path, f"{where}.path")
    fmt = _format(path, f"{where}.path")
    columns = section.get("columns")
    if columns is not None and not _is_url(path):
        available = _file_columns(path, fmt, where)
        missing = [c for c in columns if c not in set(available)]
        if missing:
            raise ConfigError(
                f"{where}.columns names columns not in {str(path)!r}: {missing[:5]}; "
                f"the file has {len(available)} columns, e.g. {available[:5]}"
            )
    query = section.get("filter_query") if section.get("use_lazy_filter") else None
    if fmt == "parquet":
        df = _read_parquet(path, columns, query)
    else:
        df = _read_csv(path, fmt, columns, query, where)
    logger.info("loaded %s: %d rows x %d columns", path, len(df), df.shape[1])
    return _tidy(df, f"{where}.path {str(path)!r}")


def read_side_table(path, where: str, *, table: str | None = None) -> pd.DataFrame:
    """Read a table a preprocessing step refers to (CSV/TSV/Parquet, or a DuckDB table)."""
    if str(path).endswith(".duckdb"):
        if not table:
            raise ConfigError(f"{where}: a .duckdb source needs 'table' (the table to read)")
        try:
            import duckdb
        except ImportError:
            raise ConfigError(
                f"{where}: reading {str(path)!r} needs the duckdb package "
                f"(pip install duckdb), or export the table to CSV"
            ) from None
        with duckdb.connect(str(_local_file(path, where)), read_only=True) as con:
            return con.execute(f'SELECT * FROM "{table}"').df()
    if not _is_url(path):
        path = _local_file(path, where)
    fmt = _format(path, where)
    if fmt == "parquet":
        return _tidy(pd.read_parquet(path), f"{where} {str(path)!r}")
    return pd.read_csv(path, sep="\t" if fmt == "tsv" else ",")


def split_table(
    df: pd.DataFrame, section: Mapping, where: str = "input"
) -> tuple[pd.DataFrame, np.ndarray]:
    """Split the table into metadata (``metadata_regex``) and a float feature matrix.

    Examples
    --------
    >>> import pandas as pd
    >>> meta, X = split_table(pd.DataFrame({"Metadata_a": [1], "f": [2.0]}), {})
    >>> list(meta.columns), X.shape
    (['Metadata_a'], (1, 1))
    """
    ctx = StepContext(section)
    meta_re = section.get("metadata_regex", "^Metadata")
    meta_cols = ctx.metadata_columns(df)
    feat_cols = [c for c in ctx.feature_columns(df) if c not in set(meta_cols)]
    if section.get("feature_columns") is not None:
        missing = [c for c in section["feature_columns"] if c not in df.columns]
        if missing:
            raise ConfigError(
                f"{where}.feature_columns names columns not in the table: {missing[:5]}"
            )
    if not meta_cols:
        raise ConfigError(f"no metadata column matches {where}.metadata_regex {meta_re!r}")
    if not feat_cols:
        raise ConfigError(f"no feature columns left (check {where}.metadata_regex / feature_regex)")
    nonnum = [c for c in feat_cols if not pd.api.types.is_numeric_dtype(df[c])]
    if nonnum:
        raise ConfigError(
            f"feature columns must be numeric, but {nonnum[:5]} are not; name "
            f"metadata columns so {where}.metadata_regex ({meta_re!r}) matches them"
        )
    feats = df[feat_cols].to_numpy(dtype=np.float64)
    if not np.isfinite(feats).all():
        bad = [c for c in feat_cols if not np.isfinite(df[c].to_numpy(dtype=float)).all()]
        raise ConfigError(
            f"{len(bad)} feature columns hold NaN or infinite values (e.g. "
            f"{bad[:3]}); add a 'remove_nan_features' preprocessing step or clean "
            f"the data"
        )
    logger.info("%d metadata columns, %d features", len(meta_cols), len(feat_cols))
    return df[meta_cols].reset_index(drop=True), feats
