"""One set of scalar checks (``pairmap._validation``) used by every public function."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pairmap._validation import check_bool, check_int, check_option, check_seed, parse_size
from pairmap.cache import parse_size as cache_parse_size
from pairmap.engine import parse_memory


@pytest.mark.parametrize("value", [3, np.int32(3), 3.0, np.float64(3.0)])
def test_check_int_accepts_integral_values(value):
    assert check_int("n", value, minimum=1) == 3


@pytest.mark.parametrize("value", [True, np.bool_(False), 2.5, "3", None])
def test_check_int_refuses_non_integers_with_the_name(value):
    with pytest.raises(TypeError, match="^n must be an integer"):
        check_int("n", value)


def test_check_int_bounds_are_named():
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        check_int("n", 0, minimum=1)
    with pytest.raises(ValueError, match="n must be <= 5, got 6"):
        check_int("n", 6, maximum=5)


def test_check_seed_range():
    assert check_seed(2**64 - 1) == 2**64 - 1
    with pytest.raises(ValueError, match="seed must be < 2\\*\\*64"):
        check_seed(2**64)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        check_seed(-1)


@pytest.mark.parametrize("value", ["no", "false", 0, 1, None, "True"])
def test_check_bool_is_strict(value):
    with pytest.raises(TypeError, match="progress_bar must be True or False"):
        check_bool("progress_bar", value)
    assert check_bool("progress_bar", np.bool_(True)) is True


def test_check_option_lists_the_choices():
    with pytest.raises(ValueError, match="ties='x' is not supported; use one of"):
        check_option("ties", "x", ("a", "b"))
    with pytest.raises(ValueError):
        check_option("ties", ["a"], ("a", "b"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500MB", 500_000_000),
        ("2GiB", 2 * 1024**3),
        ("1.5G", 1_500_000_000),
        ("1e9", 10**9),
        ("10k", 10_000),
        (" 7 B ", 7),
        (4096, 4096),
        (1e6, 10**6),
        ("1KiB", 1024),
        ("1.5GB", 1.5e9),
    ],
)
def test_one_size_grammar_for_memory_and_cache(text, expected):
    # the two public parsers share the grammar: they agree on every positive size
    assert parse_size(text) == expected
    assert parse_memory(text) == expected
    assert cache_parse_size(text) == expected


def test_zero_is_a_cache_bound_but_not_a_memory_budget():
    # the decision: one grammar, a minimum per parameter. A cache bound of 0 keeps
    # nothing (``prune(max_bytes=0)`` empties the cache); a 0-byte budget cannot run.
    assert cache_parse_size(0) == 0 and cache_parse_size("0MB") == 0
    with pytest.raises(ValueError, match="max_memory must be at least 1 byte"):
        parse_memory(0)
    with pytest.raises(ValueError, match="max_memory must be at least 1 byte"):
        parse_memory("0GB")


@pytest.mark.parametrize("bad", ["", "MB", "-1", "5 XB", "1i", "ten", -4, 2.5, "1.5.3GB"])
def test_bad_sizes_are_refused_by_both_parsers(bad):
    for parse in (parse_memory, cache_parse_size):
        with pytest.raises(ValueError):
            parse(bad)


@pytest.mark.parametrize("bad", [True, [1], object()])
def test_non_size_types_are_type_errors(bad):
    for parse in (parse_memory, cache_parse_size):
        with pytest.raises(TypeError, match="must be a size"):
            parse(bad)


def test_public_functions_share_the_checks():
    from pairmap import average_precision, mean_average_precision, null_distribution

    meta = pd.DataFrame({"g": ["a", "a", "b", "b"], "c": [0, 1, 0, 1]})
    feats = np.eye(4)
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        average_precision(meta, feats, ["g"], [], [], ["g"], batch_size=True)
    with pytest.raises(ValueError, match="ties='x' is not supported"):
        average_precision(meta, feats, ["g"], [], [], ["g"], ties="x")
    with pytest.raises(TypeError, match="null_size must be an integer"):
        null_distribution(2, 5, null_size=10.5, cache=False)
    ap = pd.DataFrame(
        {"g": ["a"], "average_precision": [0.5], "n_pos_pairs": [1], "n_total_pairs": [3]}
    )
    with pytest.raises(TypeError, match="seed must be an integer"):
        mean_average_precision(ap, "g", seed="0", cache=False)
