"""The preprocessing step functions (registered with :func:`pairmap.runner.steps.step`)."""

from __future__ import annotations

import logging

import pandas as pd

from pairmap.runner.loading import ConfigError
from pairmap.runner.schema import Key
from pairmap.runner.steps import _columns_present, _query_mask, step

logger = logging.getLogger("pairmap.runner.steps")

_COLUMNS = "a column name or a list of column names"


@step(
    "filter",
    'keep rows matching a pandas query, e.g. "Metadata_dose > 0.1"',
    query=Key("str", "pandas query selecting the rows to keep", required=True),
)
def filter_rows(df, params, ctx):
    return df[_query_mask(df, params["query"], "filter")]


@step(
    "dropna",
    "drop rows with NaN in 'columns' (default: all metadata columns)",
    columns=Key("columns", _COLUMNS),
)
def dropna(df, params, ctx):
    columns = params.get("columns") or ctx.metadata_columns(df)
    _columns_present(df, columns, "dropna.columns")
    return df.dropna(subset=columns)


@step(
    "fillna",
    "replace NaN in metadata 'columns' by 'value' (e.g. to pair missing labels)",
    columns=Key("columns", _COLUMNS, required=True),
    value=Key("any", 'the replacement value, e.g. "unknown" or -1', required=True),
)
def fillna(df, params, ctx):
    columns = params["columns"]
    _columns_present(df, columns, "fillna.columns")
    df = df.copy()
    for c in columns:
        df[c] = df[c].astype(object).where(df[c].notna(), params["value"])
        df[c] = df[c].infer_objects()
    return df


@step("remove_nan_features", "drop feature columns that contain NaN")
def remove_nan_features(df, params, ctx):
    feats = ctx.feature_columns(df)
    bad = [c for c in feats if df[c].isna().any()]
    if bad:
        logger.info("removing %d feature columns with NaN: %s", len(bad), bad[:5])
    return df.drop(columns=bad)


@step(
    "split_multilabel",
    "split 'separator'-joined labels of 'column' into lists",
    column=Key("str", "the multi-label column", required=True),
    separator=Key("str", "label separator", default="|"),
)
def split_multilabel(df, params, ctx):
    from pairmap import split_multilabel as split

    _columns_present(df, [params["column"]], "split_multilabel.column")
    try:
        return split(df, params["column"], sep=params["separator"])
    except ValueError as exc:
        raise ConfigError(
            f"{exc}; in a config: add a 'dropna' or 'fillna' step for this "
            f"column before 'split_multilabel'"
        ) from exc


@step(
    "add_column",
    "add a boolean column: the query's value per row",
    column=Key("str", "name of the new column", required=True),
    query=Key("str", "pandas query that is true for the rows to mark", required=True),
)
def add_column(df, params, ctx):
    mask = _query_mask(df, params["query"], "add_column")
    df = df.copy()
    df[params["column"]] = mask
    logger.info("add_column %s: %d rows true", params["column"], int(mask.sum()))
    return df


def _read_side_table(path, where, table=None) -> pd.DataFrame:
    from pairmap.runner.tables import read_side_table

    return read_side_table(path, where, table=table)


@step(
    "filter_active",
    "keep rows whose 'on_columns' value is active in an earlier mAP result",
    activity_file=Key("path", "mAP results (CSV/Parquet) of an activity run", required=True),
    on_columns=Key("str", "the column linking both tables", required=True),
    filter_column=Key("str", "boolean column marking active rows", default="below_corrected_p"),
)
def filter_active(df, params, ctx):
    on, flag = params["on_columns"], params["filter_column"]
    activity = _read_side_table(params["activity_file"], "filter_active.activity_file")
    _columns_present(activity, [on, flag], f"filter_active ({params['activity_file']})")
    _columns_present(df, [on], "filter_active.on_columns")
    if activity[flag].dtype != bool:
        raise ConfigError(
            f"filter_active: column {flag!r} of {params['activity_file']!r} must be "
            f"true/false, got {activity[flag].dtype}"
        )
    active = activity.loc[activity[flag], on].unique()
    logger.info("filter_active: %d active values of %s", len(active), on)
    return df[df[on].isin(active)]


@step(
    "aggregate_replicates",
    "median of the features per group (keeps 'groupby' + features)",
    groupby=Key("columns", "the columns defining a group", required=True),
)
def aggregate_replicates(df, params, ctx):
    groupby = params["groupby"]
    _columns_present(df, groupby, "aggregate_replicates.groupby")
    feats = [c for c in ctx.feature_columns(df) if c not in groupby]
    medians = df.groupby(groupby, observed=True, dropna=False)[feats].median()
    # one concat, not reset_index: inserting into the many-block median frame warns
    keys = medians.index.to_frame(index=False)
    return pd.concat([keys, medians.reset_index(drop=True).copy()], axis=1)


@step(
    "merge_metadata",
    "join metadata from a CSV/Parquet (or DuckDB 'table') file",
    source=Key("path", "the metadata file", required=True),
    on_columns=Key("columns", "join columns", required=True),
    how=Key("str", "'left' (default), 'inner', 'right' or 'outer'", default="left"),
    table=Key("str", "table name, for a .duckdb source"),
)
def merge_metadata(df, params, ctx):
    on, how = params["on_columns"], params["how"]
    if how not in ("left", "inner", "right", "outer"):
        raise ConfigError(f"merge_metadata.how must be left, inner, right or outer, got {how!r}")
    meta = _read_side_table(params["source"], "merge_metadata.source", table=params.get("table"))
    _columns_present(meta, on, f"merge_metadata ({params['source']})")
    _columns_present(df, on, "merge_metadata.on_columns")
    try:
        return df.merge(meta, on=on, how=how)
    except ValueError as exc:
        raise ConfigError(
            f"merge_metadata on {on}: {exc}; make the join columns' types agree"
        ) from exc


@step(
    "filter_single_replicates",
    "drop groups with fewer than 'min_replicates' rows",
    groupby=Key("columns", "the columns defining a group", required=True),
    min_replicates=Key("int", "smallest group size kept", default=2),
)
def filter_single_replicates(df, params, ctx):
    groupby = params["groupby"]
    _columns_present(df, groupby, "filter_single_replicates.groupby")
    sizes = df.groupby(groupby, observed=True, dropna=False)[groupby[0]].transform("size")
    return df[sizes.to_numpy() >= params["min_replicates"]]


@step(
    "apply_assign_reference",
    "give rows matching 'condition' their own reference index "
    "(pairmap.assign_reference_index); alias assign_reference",
    condition=Key(
        "str", "pandas query (or boolean column) selecting the reference rows", required=True
    ),
    reference_col=Key("str", "the new column", default="Metadata_Reference_Index"),
    default_value=Key("int", "value of the other rows", default=-1),
)
def apply_assign_reference(df, params, ctx):
    from pairmap import assign_reference_index

    kwargs = {k: v for k, v in params.items() if k != "condition"}
    try:
        return assign_reference_index(df, params["condition"], **kwargs)
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigError(
            f"apply_assign_reference with condition {params['condition']!r}: {exc}"
        ) from exc
    except Exception as exc:  # a bad pandas expression raises many types
        raise ConfigError(
            f"apply_assign_reference condition {params['condition']!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
