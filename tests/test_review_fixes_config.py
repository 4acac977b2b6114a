"""Regression tests for review findings on config validation (pairmap.config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pairmap.config import ConfigError, load_config, validate_config


def _valid(**output):
    return {
        "data": {"path": "x.csv"},
        "average_precision": {"params": {"pos_sameby": ["Metadata_a"], "pos_diffby": [],
                                         "neg_sameby": [], "neg_diffby": ["Metadata_a"]}},
        "mean_average_precision": {"params": {"sameby": ["Metadata_a"]}},
        "output": output or {"path": "out.csv"},
    }


# ------------------------------------------------------------------ 2: the 'null' parameter


@pytest.mark.parametrize("line", ["null: independent", "'null': independent", "~: independent"])
def test_map_null_parameter_in_yaml(tmp_path, line):
    text = (
        "data: {path: x.csv}\n"
        "average_precision:\n  params: {pos_sameby: [Metadata_a], pos_diffby: [],\n"
        "    neg_sameby: [], neg_diffby: [Metadata_a]}\n"
        "mean_average_precision:\n  params:\n    sameby: [Metadata_a]\n    " + line + "\n"
        "output: {path: out.csv}\n"
    )
    path = tmp_path / "c.yaml"
    path.write_text(text)
    cfg = validate_config(load_config(path))
    assert cfg["mean_average_precision"]["null"] == "independent"
    assert None not in cfg["mean_average_precision"]


def test_null_key_outside_map_params_is_still_unknown():
    cfg = _valid()
    cfg["data"][None] = 1
    with pytest.raises(ConfigError, match="unknown key 'data.None'"):
        validate_config(cfg)


# ------------------------------------------------------------------ 4: booleans


@pytest.mark.parametrize(
    ("section", "key", "output"),
    [
        ("output", "overwrite", {"path": "out.csv"}),
        ("output", "save_ap_scores", {"path": "out.csv"}),
        ("plotting", "enabled", {"directory": "d", "name": "n"}),
    ],
)
@pytest.mark.parametrize("value", ["no", "false", "False", 0, 1, "yes"])
def test_boolean_keys_need_real_booleans(section, key, output, value):
    cfg = _valid(**output)
    if section == "output":
        cfg["output"][key] = value
    else:
        cfg["plotting"] = {key: value}
    with pytest.raises(ConfigError, match=rf"'{section}.{key}' must be true or false"):
        validate_config(cfg)


@pytest.mark.parametrize("value", [True, False])
def test_boolean_keys_accept_booleans(value):
    cfg = _valid(path="out.csv", overwrite=value, save_ap_scores=value)
    cfg["plotting"] = {"enabled": value, "path": "p.png"}
    out = validate_config(cfg)
    assert out["output"]["overwrite"] is value
    assert out["plotting"]["enabled"] is value


# ------------------------------------------------------------------ 5: '~' in paths


def test_home_is_expanded_in_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    home = Path("~").expanduser()
    cfg = _valid(path="~/res/out.csv")
    cfg["data"]["path"] = "~/data/x.csv"
    cfg["plotting"] = {"path": "~/res/plot.png"}
    out = validate_config(cfg)
    assert Path(out["data"]["path"]) == home / "data" / "x.csv"
    assert Path(out["output"]["path"]) == home / "res" / "out.csv"
    assert Path(out["plotting"]["path"]) == home / "res" / "plot.png"
    out = validate_config(_valid(directory="~/res", name="n"))
    assert Path(out["output"]["directory"]) == home / "res"


def test_missing_data_file_with_home_names_expanded_path(monkeypatch, tmp_path):
    from pairmap.config import run_config

    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = _valid()
    cfg["data"]["path"] = "~/nope.csv"
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope.csv")):
        run_config(cfg)


# ------------------------------------------------------------------ data errors name the file/key


def test_data_errors_name_the_file_and_key(tmp_path):
    from pairmap.config import _read_table

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ConfigError, match=r"data.path: .*empty.csv' is empty"):
        _read_table({"path": str(empty)})
    with pytest.raises(IsADirectoryError, match=r"data.path .* is a folder"):
        _read_table({"path": str(tmp_path)})
    good = tmp_path / "t.csv"
    good.write_text("Metadata_a,f\n1,2\n")
    with pytest.raises(ConfigError, match=r"data.columns names columns not in .*t.csv': \['nope'\]"):
        _read_table({"path": str(good), "columns": ["Metadata_a", "nope"]})
    import pandas as pd

    pq = tmp_path / "t.parquet"
    pd.DataFrame({"Metadata_a": [1], "f": [2.0]}).to_parquet(pq)
    with pytest.raises(ConfigError, match=r"data.columns names columns not in .*t.parquet': "
                                          r"\['nope'\]"):
        _read_table({"path": str(pq), "columns": ["nope"]})
