"""Reading tables in the runner: lazy Parquet row filter (SQL), index columns, headers, errors."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from pairmap.runner import ConfigError
from pairmap.runner.sqlfilter import sql_to_expression
from pairmap.runner.tables import read_input, split_table


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Metadata_Plate": ["P1", "P1", "P2", "P2", "P3", None],
            "Metadata_dose": [0.1, 1.0, 0.1, 1.0, 10.0, 1.0],
            "f1": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        }
    )


@pytest.mark.parametrize(
    ("query", "rows"),
    [
        ("Metadata_Plate = 'P1'", [0, 1]),
        ("Metadata_Plate == 'P1' AND Metadata_dose > 0.5", [1]),
        ("(Metadata_Plate = 'P1' OR Metadata_Plate = 'P3') and not Metadata_dose < 1", [1, 4]),
        ("Metadata_Plate IN ('P2', 'P3')", [2, 3, 4]),
        ("Metadata_Plate NOT IN ('P2', 'P3')", [0, 1]),  # SQL: NULL is in neither
        ("Metadata_Plate IS NULL", [5]),
        ("Metadata_Plate IS NOT NULL AND Metadata_dose BETWEEN 1 AND 10", [1, 3, 4]),
        ("Metadata_Plate LIKE 'P%' AND \"Metadata_dose\" <> 1e-1", [1, 3, 4]),
        ("Metadata_Plate != 'P1'", [2, 3, 4]),
    ],
)
def test_sql_filter_matches_pandas_selection(table, query, rows):
    """Oracle: the rows the condition selects, written by hand."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    got = arrow.filter(sql_to_expression(query, arrow.column_names)).to_pandas()
    pd.testing.assert_frame_equal(got, table.iloc[rows].reset_index(drop=True))


@pytest.mark.parametrize(
    ("query", "match"),
    [
        ("Metadata_Plate = P1", r"column 'P1' is not in the file \(strings need single quotes\)"),
        ("Metadata_Plate = 'P1' AND", r"expected a column name or a value"),
        ("Metadata_Plate = 'P1')", r"unexpected '\)'"),
        ("Metadata_Plate ~ 'P1'", r"cannot read it at \" ~ 'P1'\""),
        ("", r"filter_query must be a non-empty SQL condition"),
    ],
)
def test_sql_filter_errors_name_the_problem(table, query, match):
    with pytest.raises(ConfigError, match=match):
        sql_to_expression(query, list(table.columns))


def test_lazy_filter_reads_only_matching_rows(table, tmp_path):
    path = tmp_path / "t.parquet"
    table.to_parquet(path, row_group_size=2)
    section = {
        "path": str(path),
        "use_lazy_filter": True,
        "filter_query": "Metadata_dose > 0.5",
        "columns": ["Metadata_Plate", "f1"],
    }
    got = read_input(section)
    expected = table[table["Metadata_dose"] > 0.5][["Metadata_Plate", "f1"]]
    pd.testing.assert_frame_equal(got, expected.reset_index(drop=True))
    # the same condition on CSV gives the same rows (filtered after reading)
    table.to_csv(tmp_path / "t.csv", index=False)
    got_csv = read_input({**section, "path": str(tmp_path / "t.csv")})
    pd.testing.assert_frame_equal(got_csv, got)
    # without use_lazy_filter the query is not applied (as in the copairs runner)
    assert len(read_input({**section, "use_lazy_filter": False})) == 6


def test_lazy_filter_skips_row_groups(tmp_path):
    """The filter is pushed into the Parquet scan: excluded row groups are never read."""
    import pyarrow.dataset as ds

    df = pd.DataFrame(
        {"Metadata_Plate": [f"P{i // 1000}" for i in range(10_000)], "f": range(10_000)}
    )
    path = tmp_path / "big.parquet"
    df.to_parquet(path, row_group_size=1000)
    expr = sql_to_expression("Metadata_Plate = 'P3'", df.columns)
    fragment = next(iter(ds.dataset(path).get_fragments()))
    kept = fragment.split_by_row_group(filter=expr)
    assert len(kept) == 1  # 1 of 10 row groups survives the statistics check
    assert read_input(
        {"path": str(path), "use_lazy_filter": True, "filter_query": "Metadata_Plate = 'P3'"}
    )["f"].tolist() == list(range(3000, 4000))


def test_parquet_index_columns_are_kept(table, tmp_path):
    path = tmp_path / "indexed.parquet"
    table.set_index(["Metadata_Plate", "Metadata_dose"]).to_parquet(path)
    got = read_input({"path": str(path)})
    assert list(got.columns) == ["Metadata_Plate", "Metadata_dose", "f1"]
    meta, feats = split_table(got, {})
    assert list(meta.columns) == ["Metadata_Plate", "Metadata_dose"] and feats.shape == (6, 1)


def test_two_level_column_headers_are_refused(table, tmp_path):
    path = tmp_path / "two.parquet"
    two = table.copy()
    two.columns = pd.MultiIndex.from_tuples(
        [("Metadata", "Plate"), ("Metadata", "dose"), ("feat", "f1")]
    )
    two.to_parquet(path)
    with pytest.raises(
        ConfigError,
        match=r"2-level column headers; pairmap needs one header "
        r"row \(join the levels",
    ):
        read_input({"path": str(path)})


def test_data_errors_name_the_file_and_key(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ConfigError, match=r"data.path: .*empty.csv' is empty"):
        read_input({"path": str(empty)}, "data")
    with pytest.raises(IsADirectoryError, match=r"input.path .* is a folder"):
        read_input({"path": str(tmp_path)})
    good = tmp_path / "t.csv"
    good.write_text("Metadata_a,f\n1,2\n")
    with pytest.raises(
        ConfigError,
        match=r"input.columns names columns not in .*t.csv': "
        r"\['nope'\]",
    ):
        read_input({"path": str(good), "columns": ["Metadata_a", "nope"]})
    pq = tmp_path / "t.parquet"
    pd.DataFrame({"Metadata_a": [1], "f": [2.0]}).to_parquet(pq)
    with pytest.raises(
        ConfigError,
        match=r"input.columns names columns not in .*t.parquet': "
        r"\['nope'\]",
    ):
        read_input({"path": str(pq), "columns": ["nope"]})
    with pytest.raises(ConfigError, match=r"input.path: cannot tell the table format"):
        (tmp_path / "t.xlsx").write_text("x")
        read_input({"path": str(tmp_path / "t.xlsx")})


def test_split_errors(table):
    with pytest.raises(ConfigError, match="no metadata column matches input.metadata_regex"):
        split_table(table, {"metadata_regex": "^Meta_"})
    with pytest.raises(ConfigError, match="feature columns must be numeric, but \\['Plate'\\]"):
        split_table(table.rename(columns={"Metadata_Plate": "Plate"}), {})
    with pytest.raises(ConfigError, match="add a 'remove_nan_features' preprocessing step"):
        split_table(table.assign(f2=[1.0, None, 1, 1, 1, 1]), {})
