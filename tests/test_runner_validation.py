"""Config validation (pairmap.runner): every section, key and value is checked with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest

from pairmap.runner import ConfigError, check_config, load_config, validate_config


def _valid(**output):
    return {
        "input": {"path": "x.csv"},
        "average_precision": {
            "params": {
                "pos_sameby": ["Metadata_a"],
                "pos_diffby": [],
                "neg_sameby": [],
                "neg_diffby": ["Metadata_a"],
            }
        },
        "mean_average_precision": {"params": {"sameby": ["Metadata_a"]}},
        "output": output or {"directory": "res", "name": "act"},
    }


def _mutate(keys, value, **output):
    cfg = _valid(**output)
    node = cfg
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return cfg


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        (
            {**_valid(), "outptu": {}},
            r"unknown top-level section 'outptu'; valid sections are: "
            r"input, data",
        ),
        (
            _mutate(["input", "metadata_rgx"], "^M"),
            r"unknown key 'input.metadata_rgx'; valid keys "
            r"in 'input' are: path, metadata_regex",
        ),
        (
            _mutate(["preprocessing"], [{"type": "normalize"}]),
            r"'preprocessing\[0\]': unknown preprocessing step 'normalize'; valid steps are: filter",
        ),
        (
            _mutate(["preprocessing"], {"steps": [{"type": "filter", "params": {"qeury": "a"}}]}),
            r"unknown key 'preprocessing\[0\].params \(filter\).qeury'; valid keys .*: query",
        ),
        (
            _mutate(["preprocessing"], [{"type": "filter", "params": {}}]),
            r"'preprocessing\[0\].params \(filter\).query' is required: pandas query",
        ),
        (
            _mutate(["preprocessing"], [{"type": "filter", "params": {"query": "a"}, "x": 1}]),
            r"unknown key 'preprocessing\[0\].x'",
        ),
        (_mutate(["preprocessing"], {"stesp": []}), r"unknown key 'preprocessing.stesp'"),
        (_mutate(["preprocessing_extra"], 3), r"'preprocessing_extra' must be a list of steps"),
        (
            _mutate(
                ["preprocessing"],
                [
                    {
                        "type": "filter_single_replicates",
                        "params": {"groupby": ["g"], "min_replicates": "two"},
                    }
                ],
            ),
            r"min_replicates' must be an integer, got the string 'two'",
        ),
        (
            _mutate(["average_precision", "params", "distanse"], "cosine"),
            r"unknown key 'average_precision.params.distanse'; valid keys .*pos_sameby",
        ),
        (
            _mutate(["average_precision", "multilabel"], "yes"),
            r"'average_precision.multilabel' must be true or false",
        ),
        (
            _mutate(["mean_average_precision", "params", "nul_size"], 10),
            r"unknown key 'mean_average_precision.params.nul_size'; valid keys .*null_size",
        ),
        (
            _mutate(["mean_average_precision", "params"], {"null_size": 10}),
            r"mean_average_precision.params.sameby' is required",
        ),
        (
            _mutate(["mean_average_precision", "params", "null_size"], "ten thousand"),
            r"null_size' must be an integer, got the string 'ten thousand'; write a number",
        ),
        (
            _mutate(["mean_average_precision", "params", "null_size"], "2.5e-1"),
            r"null_size' must be an integer, got '2.5e-1' \(not a whole number\)",
        ),
        (_mutate(["output", "dir"], "x"), r"unknown key 'output.dir'; valid keys in 'output'"),
        (_mutate(["output"], {"directory": "d"}), r"needs both 'directory' and 'name'"),
        (
            _mutate(["output"], {"path": "a.csv", "directory": "d", "name": "n"}),
            r"either 'path' or 'directory' and 'name', not both",
        ),
        (_mutate(["output"], {"path": "a.xlsx"}), r"output.path': cannot tell the table format"),
        (
            _mutate(["output"], {"directory": "d", "name": "n", "format": "xls"}),
            r"'output.format' must be 'csv' or 'parquet'",
        ),
        (_mutate(["input", "use_lazy_filter"], "true"), r"'input.use_lazy_filter' must be true"),
        (_mutate(["plotting"], {"enabled": True}, path="o.csv"), r"'plotting.path' is required"),
        (_mutate(["plotting"], {"colour": "red"}), r"unknown key 'plotting.colour'"),
        ({k: v for k, v in _valid().items() if k != "output"}, r"needs a 'output' section"),
        (
            _mutate(["average_precision", "params"], {"pos_sameby": []}),
            r"needs \['pos_diffby', 'neg_sameby', 'neg_diffby'\]",
        ),
        ({**_valid(), "data": {"path": "y.csv"}}, r"both 'input' and 'data'"),
        (
            _mutate(["output", "report"], True, path="o.csv"),
            r"'output.report' needs 'output.directory' and 'output.name'",
        ),
    ],
)
def test_invalid_configs_name_the_problem(cfg, match):
    with pytest.raises(ConfigError, match=match):
        validate_config(cfg)


def test_errors_from_a_file_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "input: {path: x.csv}\naverage_precision: {params: {}}\noutput: {directory: r, name: n}\n"
    )
    with pytest.raises(ConfigError, match=r"^.*bad.yaml: 'average_precision.params' needs"):
        check_config(path)


# ------------------------------------------------------------------ numbers written as strings


def test_yaml_exponent_numbers_are_read_as_numbers(tmp_path):
    """YAML 1.1 reads ``1e4`` and ``5e-2`` (no dot) as strings; numeric params accept them."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "input: {path: x.csv}\n"
        "average_precision:\n  params: {pos_sameby: [Metadata_a], pos_diffby: [],\n"
        "    neg_sameby: [], neg_diffby: [Metadata_a], batch_size: 2e4}\n"
        "mean_average_precision:\n  params: {sameby: [Metadata_a], null_size: 1e4,\n"
        "    threshold: 5e-2, seed: 0}\n"
        "output: {directory: r, name: n}\n"
        "preprocessing:\n  steps:\n    - type: filter_single_replicates\n"
        "      params: {groupby: Metadata_a, min_replicates: 3e0}\n"
    )
    raw = load_config(path)
    assert raw["mean_average_precision"]["params"]["null_size"] == "1e4"  # what YAML gives
    cfg = validate_config(raw)
    params = cfg["mean_average_precision"]
    assert params["null_size"] == 10000 and isinstance(params["null_size"], int)
    assert params["threshold"] == pytest.approx(0.05)
    assert cfg["average_precision"]["params"]["batch_size"] == 20000
    assert cfg["preprocessing"] == [
        ("filter_single_replicates", {"groupby": ["Metadata_a"], "min_replicates": 3})
    ]


# ------------------------------------------------------------------ today's runner layout


def test_preprocessing_sections_are_merged_in_sorted_order():
    cfg = _valid()
    cfg["preprocessing_b"] = {"steps": [{"type": "dropna", "params": {"columns": ["B"]}}]}
    cfg["preprocessing"] = {"steps": [{"type": "remove_nan_features"}]}
    cfg["preprocessing_a"] = [{"type": "dropna", "params": {"columns": "A"}}]
    steps = validate_config(cfg)["preprocessing"]
    assert steps == [
        ("remove_nan_features", {}),
        ("dropna", {"columns": ["A"]}),
        ("dropna", {"columns": ["B"]}),
    ]


def test_older_layouts_are_read():
    cfg = _valid(path="out.csv", save_ap_scores=True)
    cfg["data"] = cfg.pop("input")
    cfg["mean_average_precision"] = {"sameby": ["Metadata_a"], "null_size": 100}
    cfg["preprocessing"] = [{"type": "assign_reference", "condition": "Metadata_a == 1"}]
    out = validate_config(cfg)
    assert out["input_key"] == "data" and out["input"]["metadata_regex"] == "^Metadata"
    assert out["mean_average_precision"] == {"sameby": ["Metadata_a"], "null_size": 100}
    assert out["preprocessing"] == [
        (
            "apply_assign_reference",
            {
                "condition": "Metadata_a == 1",
                "reference_col": "Metadata_Reference_Index",
                "default_value": -1,
            },
        )
    ]


def test_filter_active_older_parameter_name():
    cfg = _mutate(
        ["preprocessing"],
        [
            {
                "type": "filter_active",
                "params": {"activity_csv": "a.csv", "on_columns": "Metadata_a"},
            }
        ],
    )
    ((name, params),) = validate_config(cfg)["preprocessing"]
    assert params == {
        "activity_file": "a.csv",
        "on_columns": "Metadata_a",
        "filter_column": "below_corrected_p",
    }


def test_copairs_parameter_aliases():
    cfg = _mutate(["mean_average_precision", "params", "max_workers"], 2)
    assert validate_config(cfg)["mean_average_precision"]["n_jobs"] == 2
    cfg["mean_average_precision"]["params"]["n_jobs"] = 1
    with pytest.raises(ConfigError, match="sets both 'max_workers' and 'n_jobs'"):
        validate_config(cfg)


# ------------------------------------------------------------------ the 'null' parameter


@pytest.mark.parametrize("line", ["null: independent", "'null': independent", "~: independent"])
def test_map_null_parameter_in_yaml(tmp_path, line):
    text = (
        "input: {path: x.csv}\n"
        "average_precision:\n  params: {pos_sameby: [Metadata_a], pos_diffby: [],\n"
        "    neg_sameby: [], neg_diffby: [Metadata_a]}\n"
        "mean_average_precision:\n  params:\n    sameby: [Metadata_a]\n    " + line + "\n"
        "output: {directory: r, name: n}\n"
    )
    path = tmp_path / "c.yaml"
    path.write_text(text)
    cfg = validate_config(load_config(path))
    assert cfg["mean_average_precision"]["null"] == "independent"
    assert None not in cfg["mean_average_precision"]


def test_null_key_outside_map_params_is_still_unknown():
    cfg = _valid()
    cfg["input"][None] = 1
    with pytest.raises(ConfigError, match="unknown key 'input.None'"):
        validate_config(cfg)


# ------------------------------------------------------------------ booleans


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


def test_overwrite_defaults_to_false():
    assert validate_config(_valid())["output"]["overwrite"] is False


# ------------------------------------------------------------------ paths and files


def test_home_is_expanded_in_paths(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    home = Path("~").expanduser()
    cfg = _valid(path="~/res/out.csv")
    cfg["input"]["path"] = "~/data/x.csv"
    cfg["plotting"] = {"path": "~/res/plot.png"}
    out = validate_config(cfg)
    assert Path(out["input"]["path"]) == home / "data" / "x.csv"
    assert Path(out["output"]["path"]) == home / "res" / "out.csv"
    assert Path(out["plotting"]["path"]) == home / "res" / "plot.png"
    out = validate_config(_valid(directory="~/res", name="n"))
    assert Path(out["output"]["directory"]) == home / "res"


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot parse config file"):
        load_config(bad)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        load_config(tmp_path / "empty.yaml")


def test_environment_variables_are_expanded(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text(
        "input: {path: '${oc.env:PAIRMAP_TEST_DATA}/x.csv'}\n"
        "output: {directory: '${oc.env:PAIRMAP_TEST_UNSET,fallback}/out'}\n"
    )
    monkeypatch.setenv("PAIRMAP_TEST_DATA", "/data")
    monkeypatch.delenv("PAIRMAP_TEST_UNSET", raising=False)
    assert load_config(path) == {
        "input": {"path": "/data/x.csv"},
        "output": {"directory": "fallback/out"},
    }
    monkeypatch.delenv("PAIRMAP_TEST_DATA")
    with pytest.raises(
        ConfigError,
        match=r"'input.path': environment variable "
        r"'PAIRMAP_TEST_DATA' is not set",
    ):
        load_config(path)
    path.write_text("input: {path: '${hydra:job.name}/x.csv'}\n")
    with pytest.raises(
        ConfigError,
        match=r"interpolation '\$\{hydra:job.name\}' is not "
        r"supported",
    ):
        load_config(path)


def test_hydra_runtime_paths_of_copairs_runner_configs(tmp_path, monkeypatch):
    """Today's copairs-runner configs write paths with ${hydra:runtime.cwd/output_dir}."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COPAIRS_OUTPUT", "out")
    path = tmp_path / "c.yaml"
    path.write_text(
        "hydra:\n  run:\n    dir: ${oc.env:COPAIRS_OUTPUT}/lincs\n"
        "input: {path: '${hydra:runtime.cwd}/data/x.csv'}\n"
        "output: {directory: '${hydra:runtime.output_dir}', name: act}\n"
    )
    cfg = load_config(path)
    assert cfg["input"]["path"] == f"{tmp_path}/data/x.csv"
    assert cfg["output"]["directory"] == str(tmp_path / "out" / "lincs")
    path.write_text("output: {directory: '${hydra:runtime.output_dir}', name: act}\n")
    with pytest.raises(
        ConfigError,
        match=r"'output.directory': '\$\{hydra:runtime.output_dir\}' "
        r"needs the Hydra run folder: set 'hydra.run.dir'",
    ):
        load_config(path)
