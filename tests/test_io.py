"""pairmap._io: result files appear complete or not at all, and follow the user's umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from pairmap import _io
from pairmap.runner import run_config

KEYS = ["Metadata_Perturbation", "Metadata_Reference_Index"]


pytestmark = pytest.mark.usefixtures("private_null_cache")


@pytest.fixture(scope="module")
def screen_csv(screen_csv_factory) -> Path:
    return screen_csv_factory(
        n_perturbations=8,
        n_replicates=3,
        n_controls_per_plate=4,
        n_features=12,
        n_active_features=4,
        seed=2,
    )


def config(data_path, out_dir) -> dict:
    return {
        "data": {"path": str(data_path)},
        "preprocessing": [
            {"type": "assign_reference", "params": {"condition": "Metadata_Control"}}
        ],
        "average_precision": {
            "params": {
                "pos_sameby": KEYS,
                "pos_diffby": [],
                "neg_sameby": [],
                "neg_diffby": KEYS,
                "progress_bar": False,
            }
        },
        "mean_average_precision": {
            "params": {"sameby": ["Metadata_Perturbation"], "null_size": 100, "progress_bar": False}
        },
        "output": {"directory": str(out_dir), "name": "act"},
    }


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


# ------------------------------------------------------------------ all-or-nothing output


def test_destination_that_is_a_folder_leaves_other_outputs_untouched(screen_csv, tmp_path):
    out = tmp_path / "out2"
    (out / "act_map_results.csv").mkdir(parents=True)
    (out / "act_ap_scores.csv").write_text("old\n")
    with pytest.raises(IsADirectoryError, match="act_map_results.csv"):
        run_config(config(screen_csv, out))
    assert (out / "act_ap_scores.csv").read_text() == "old\n"
    assert sorted(p.name for p in out.iterdir()) == ["act_ap_scores.csv", "act_map_results.csv"]


def test_staged_rejects_folder_destination_before_writing(tmp_path):
    (tmp_path / "b.csv").mkdir()
    with pytest.raises(IsADirectoryError, match="b.csv"), _io.StagedOutputs() as out:
        out.write(tmp_path / "a.csv", lambda fh: fh.write(b"new"))
        out.write(tmp_path / "b.csv", lambda fh: fh.write(b"new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.csv"]


def test_commit_checks_every_destination_before_replacing(tmp_path):
    (tmp_path / "a.csv").write_text("old")
    out = _io.StagedOutputs()
    out.write(tmp_path / "a.csv", lambda fh: fh.write(b"new"))
    out.write(tmp_path / "b.csv", lambda fh: fh.write(b"new"))
    (tmp_path / "b.csv").mkdir()  # appears after staging
    with pytest.raises(IsADirectoryError, match="b.csv"):
        out.commit()
    assert (tmp_path / "a.csv").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv"]


def test_commit_rolls_back_when_a_later_replace_fails(tmp_path, monkeypatch):
    (tmp_path / "a.csv").write_text("old a")
    (tmp_path / "c.csv").write_text("old c")
    real_replace = os.replace
    calls = []

    def flaky(src, dst):
        if Path(src).name.endswith(".tmp") and Path(src).name.startswith(".c.csv"):
            raise OSError(28, "No space left on device")
        calls.append((src, dst))
        return real_replace(src, dst)

    monkeypatch.setattr(_io.os, "replace", flaky)
    out = _io.StagedOutputs()
    for name in ("a.csv", "b.csv", "c.csv"):
        out.write(tmp_path / name, lambda fh: fh.write(b"new"))
    with pytest.raises(OSError, match="No space"):
        out.commit()
    assert any(Path(d).name == "a.csv" for _, d in calls)  # a was replaced, then restored
    assert (tmp_path / "a.csv").read_text() == "old a"
    assert (tmp_path / "c.csv").read_text() == "old c"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "c.csv"]


def test_commit_success_leaves_no_backup_files(tmp_path):
    (tmp_path / "a.csv").write_text("old")
    with _io.StagedOutputs() as out:
        out.write(tmp_path / "a.csv", lambda fh: fh.write(b"new"))
        out.write(tmp_path / "b.csv", lambda fh: fh.write(b"new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv"]
    assert (tmp_path / "a.csv").read_text() == "new"


def test_parent_that_is_a_file_is_named(tmp_path):
    (tmp_path / "res").write_text("x")
    with (
        pytest.raises(NotADirectoryError, match=r"res' is not a folder"),
        _io.StagedOutputs() as out,
    ):
        out.write(tmp_path / "res" / "a.csv", lambda fh: fh.write(b"new"))


# ------------------------------------------------------------------ permissions follow umask


def test_output_files_and_folders_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        p = _io.atomic_write(tmp_path / "x.txt", lambda fh: fh.write(b"x"))
        assert stat.S_IMODE(p.stat().st_mode) == 0o644
        with _io.StagedOutputs() as out:
            out.write(tmp_path / "sub" / "y.txt", lambda fh: fh.write(b"y"))
        assert stat.S_IMODE((tmp_path / "sub" / "y.txt").stat().st_mode) == 0o644
        with _io.atomic_output_dir(tmp_path / "run") as d:
            (d / "z.txt").write_text("z")
        assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o755
        os.umask(0o077)
        q = _io.atomic_write(tmp_path / "private.txt", lambda fh: fh.write(b"x"))
        assert stat.S_IMODE(q.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert _umask() == old


# ------------------------------------------------------------------ single files


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.parquet", "parquet"),
        ("a.PQ", "parquet"),
        ("a.csv", "csv"),
        ("a.csv.gz", "csv"),
        ("a.tsv", "tsv"),
        ("a.tsv.gz", "tsv"),
        ("dir.v2/a.csv", "csv"),
    ],
)
def test_table_format_from_extension(name, fmt):
    assert _io.table_format(name) == fmt


@pytest.mark.parametrize("name", ["a.xlsx", "a", "a.parquet.gz", "a.gz", "a.csv.zip"])
def test_unknown_table_format_lists_the_choices(name):
    with pytest.raises(ValueError, match=r"\.parquet, \.csv, \.csv\.gz, \.tsv"):
        _io.table_format(name)


@pytest.mark.parametrize("name", ["t.parquet", "t.csv", "t.csv.gz", "t.tsv"])
def test_dataframe_round_trip_in_every_format(tmp_path, name):
    df = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}, index=[7, 8, 9])
    path = _io.atomic_write_dataframe(df, tmp_path / name)
    if name.endswith(".parquet"):
        back = pd.read_parquet(path)
    else:
        back = pd.read_csv(path, sep="\t" if ".tsv" in name else ",")
    pd.testing.assert_frame_equal(back, df.reset_index(drop=True))  # no index column written
    if name.endswith(".gz"):
        assert path.read_bytes()[:2] == b"\x1f\x8b"  # really gzip-compressed


def test_failing_writer_leaves_the_old_file_and_no_temp_file(tmp_path):
    (tmp_path / "a.csv").write_text("old")

    def boom(fh):
        fh.write(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        _io.atomic_write(tmp_path / "a.csv", boom)
    assert (tmp_path / "a.csv").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]


def test_atomic_write_needs_an_existing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _io.atomic_write(tmp_path / "missing" / "a.csv", lambda fh: fh.write(b"x"))


def test_staged_outputs_refuse_to_overwrite_when_asked(tmp_path):
    (tmp_path / "a.csv").write_text("old")
    with pytest.raises(FileExistsError, match="a.csv"), _io.StagedOutputs(overwrite=False) as out:
        out.write(tmp_path / "a.csv", lambda fh: fh.write(b"new"))
    assert (tmp_path / "a.csv").read_text() == "old"


def test_staged_outputs_refuse_the_same_path_twice(tmp_path):
    with pytest.raises(ValueError, match="written twice"), _io.StagedOutputs() as out:
        out.write(tmp_path / "a.csv", lambda fh: fh.write(b"1"))
        out.write(tmp_path / "a.csv", lambda fh: fh.write(b"2"))
    assert list(tmp_path.iterdir()) == []


def test_staged_outputs_discard_created_folders_on_error(tmp_path):
    with pytest.raises(RuntimeError), _io.StagedOutputs() as out:
        out.write(tmp_path / "new" / "deep" / "a.csv", lambda fh: fh.write(b"x"))
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ output folders


def test_output_dir_is_removed_when_the_block_fails(tmp_path):
    with pytest.raises(RuntimeError), _io.atomic_output_dir(tmp_path / "run") as d:
        (d / "a.txt").write_text("x")
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_output_dir_never_overwrites(tmp_path):
    (tmp_path / "run").mkdir()
    with (
        pytest.raises(FileExistsError, match="already exists"),
        _io.atomic_output_dir(tmp_path / "run"),
    ):
        pass
    with (
        pytest.raises(FileExistsError, match="appeared while"),
        _io.atomic_output_dir(tmp_path / "run2") as d,
    ):
        (d / "a.txt").write_text("x")
        (tmp_path / "run2").mkdir()
    assert list((tmp_path / "run2").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "run2"]
