"""find_pairs(..., missing="unmatched"): SQL semantics of missing labels, against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pairmap import find_pairs


def _eq(a, b):
    """SQL ``=``: None when either side is missing."""
    return None if pd.isna(a) or pd.isna(b) else a == b


def brute_force(meta, sameby, diffby):
    """All pairs i < j whose SQL condition is TRUE (a missing comparison is never true)."""

    def rule(side, negate):
        if isinstance(side, dict):
            return side.get("all", []), side.get("any", [])
        return list(side), []

    s_all, s_any = rule(sameby, False)
    d_all, d_any = rule(diffby, True)
    out = []
    for i, j in itertools.combinations(range(len(meta)), 2):
        a, b = meta.iloc[i], meta.iloc[j]
        ok = all(_eq(a[c], b[c]) is True for c in s_all)
        ok &= all(_eq(a[c], b[c]) is False for c in d_all)
        if s_any:
            ok &= any(_eq(a[c], b[c]) is True for c in s_any)
        if d_any:
            ok &= any(_eq(a[c], b[c]) is False for c in d_any)
        if ok:
            out.append([i, j])
    return out


labels = st.one_of(st.none(), st.sampled_from(["a", "b", "c"]))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(st.tuples(labels, labels, labels), min_size=2, max_size=12),
    rule=st.sampled_from(
        [
            (["x"], []),
            (["x"], ["y"]),
            ([], ["x", "y"]),
            (["x", "y"], ["z"]),
            ({"any": ["x", "y"]}, ["z"]),
            (["x"], {"any": ["y", "z"]}),
            ({"all": ["x"], "any": ["y", "z"]}, []),
        ]
    ),
)
def test_missing_values_never_match(rows, rule):
    meta = pd.DataFrame(rows, columns=["x", "y", "z"])
    got = find_pairs(meta, *rule, missing="unmatched").tolist()
    assert got == brute_force(meta, *rule)


def test_missing_values_are_an_error_by_default():
    meta = pd.DataFrame({"x": ["a", None, "a"]})
    with pytest.raises(ValueError, match=r"pairing column 'x' has 1 missing value\(s\)"):
        find_pairs(meta, ["x"], [])
    with pytest.raises(ValueError, match="missing='skip' is not supported"):
        find_pairs(meta, ["x"], [], missing="skip")
    assert find_pairs(meta, ["x"], [], missing="unmatched").tolist() == [[0, 2]]


def test_matches_copairs_find_pairs_with_missing_values():
    matching = pytest.importorskip("copairs.matching")
    rng = np.random.default_rng(3)
    meta = pd.DataFrame(rng.choice(["p", "q", "r"], size=(40, 3)), columns=["x", "y", "z"])
    meta = meta.mask(rng.random(meta.shape) < 0.2)
    for sameby, diffby in ((["x"], ["y"]), (["x", "z"], []), ([], ["y", "z"])):
        ours = find_pairs(meta, sameby, diffby, missing="unmatched")
        theirs = matching.find_pairs(meta, sameby, diffby)
        assert sorted(map(tuple, ours.tolist())) == sorted(map(tuple, theirs.tolist()))
