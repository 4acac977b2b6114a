"""Bad AP tables get clear errors from p_values / mean_average_precision (never a hang)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pairmap.significance import mean_average_precision, p_values


def _table(**cols):
    base = {"average_precision": [0.5], "n_pos_pairs": [2], "n_total_pairs": [10]}
    base.update(cols)
    return pd.DataFrame(base)


@pytest.mark.parametrize(
    ("cols", "match"),
    [
        ({"n_total_pairs": [2**33]}, "shorter than 2\\*\\*32"),
        ({"average_precision": [np.inf]}, "outside \\[0, 1\\]"),
        ({"average_precision": [1.5]}, "outside \\[0, 1\\]"),
        ({"n_pos_pairs": [1.7]}, "non-integer pair counts"),
        ({"n_total_pairs": [1]}, "n_total_pairs \\(1\\) < n_pos_pairs \\(2\\)"),
    ],
)
def test_bad_rows_are_named(cols, match):
    with pytest.raises(ValueError, match=match):
        p_values(_table(**cols), null_size=10, cache=False, progress_bar=False)


def test_sameby_may_not_reuse_output_names():
    df = pd.DataFrame(
        {
            "p_value": ["a", "a"],
            "average_precision": [1.0, 0.5],
            "n_pos_pairs": [1, 1],
            "n_total_pairs": [4, 4],
        }
    )
    with pytest.raises(ValueError, match="output columns"):
        mean_average_precision(df, "p_value", cache=False, progress_bar=False)
    with pytest.raises(ValueError, match="output columns"):
        mean_average_precision(df, ["average_precision"], cache=False, progress_bar=False)


def test_non_string_column_labels_work():
    df = pd.DataFrame(
        {
            0: ["a", "a", "b", "b"],
            "average_precision": [1.0, 0.5, 0.2, 0.3],
            "n_pos_pairs": [1] * 4,
            "n_total_pairs": [4] * 4,
        }
    )
    res = mean_average_precision(df, 0, cache=False, progress_bar=False)
    assert res[0].tolist() == ["a", "b"]
    with pytest.raises(ValueError, match="not in ap_scores"):
        mean_average_precision(df, 1, cache=False, progress_bar=False)


def test_seed_limit_and_numpy_threshold():
    df = _table()
    with pytest.raises(ValueError, match="seed must be < 2\\*\\*64"):
        p_values(df, seed=2**70, null_size=10, cache=False, progress_bar=False)
    ap = pd.DataFrame(
        {
            "g": ["a", "a"],
            "average_precision": [1.0, 0.5],
            "n_pos_pairs": [1, 1],
            "n_total_pairs": [4, 4],
        }
    )
    with pytest.raises(ValueError, match="seed must be < 2\\*\\*64"):
        mean_average_precision(ap, "g", seed=2**70, cache=False, progress_bar=False)
    res = mean_average_precision(
        ap, "g", threshold=np.float32(0.5), cache=False, progress_bar=False
    )
    assert len(res) == 1
    res = mean_average_precision(ap, "g", threshold=np.int64(1), cache=False, progress_bar=False)
    assert bool(res["below_p"].iloc[0])
