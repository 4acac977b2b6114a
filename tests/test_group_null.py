"""group_null gives the very null mean_average_precision tested each group against."""

from __future__ import annotations

import numpy as np
import pytest

import pairmap
from pairmap import datasets
from pairmap.significance import group_null


@pytest.mark.parametrize("null", ["shared", "independent"])
def test_group_null_reproduces_every_p_value(null):
    meta, feats = datasets.load_lincs_plate(split=True)
    meta = pairmap.assign_reference_index(meta, "Metadata_broad_sample == 'DMSO'")
    keys = ["Metadata_broad_sample", "Metadata_Reference_Index"]
    ap = pairmap.average_precision(
        meta,
        feats,
        pos_sameby=keys,
        pos_diffby=[],
        neg_sameby=[],
        neg_diffby=keys,
        progress_bar=False,
    )
    maps = pairmap.mean_average_precision(
        ap,
        ["Metadata_broad_sample"],
        null_size=500,
        seed=3,
        null=null,
        cache=False,
        progress_bar=False,
    )
    valid = ap.dropna(subset=["average_precision"])
    checked = 0
    for _, row in maps.dropna(subset=["p_value"]).iterrows():
        members = valid[valid["Metadata_broad_sample"] == row["Metadata_broad_sample"]]
        values, exact = group_null(
            members["n_pos_pairs"],
            members["n_total_pairs"],
            null_size=500,
            seed=3,
            null=null,
            cache=False,
        )
        count = int((values >= row["mean_average_precision"]).sum())
        p = count / values.size if exact else (1 + count) / (1 + 500)
        assert p == row["p_value"]
        checked += 1
    assert checked == 58


def test_exact_small_null_enumerates_rankings():
    values, exact = group_null([1], [3], null_size=100, cache=False)
    assert exact
    np.testing.assert_allclose(np.sort(values), [1 / 3, 1 / 2, 1.0])


def test_group_null_rejects_bad_input():
    with pytest.raises(ValueError, match="equal length"):
        group_null([1, 2], [4], cache=False)
    with pytest.raises(ValueError, match="null=.nope. is not supported"):
        group_null([1], [4], null="nope", cache=False)
