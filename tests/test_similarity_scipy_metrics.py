"""SciPy cdist metric names as ``distance=`` (1 - d for jaccard/hamming, else 1 / (1 + d))."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pairmap
from pairmap.similarity import similarity_matrix

scipy_distance = pytest.importorskip("scipy.spatial.distance")


@pytest.mark.parametrize(
    "metric",
    ["jaccard", "hamming", "braycurtis", "canberra", "sqeuclidean", "cityblock", "minkowski"],
)
def test_similarity_is_the_transformed_scipy_distance(metric):
    rng = np.random.default_rng(0)
    X = rng.random((5, 7))
    if metric in ("jaccard", "hamming"):
        X = (X > 0.5).astype(float)
    d = scipy_distance.cdist(X, X, metric=metric)
    expected = 1 - d if metric in ("jaccard", "hamming") else 1 / (1 + d)
    np.testing.assert_allclose(similarity_matrix(X, distance=metric), expected, rtol=1e-12)


@pytest.mark.parametrize("metric", ["jaccard", "braycurtis"])
def test_average_precision_matches_copairs(metric, copairs_ap):
    rng = np.random.default_rng(1)
    meta = pd.DataFrame(
        {"Metadata_g": np.repeat(np.arange(8), 3), "Metadata_b": np.tile([0, 1, 2], 8)}
    )
    X = rng.random((24, 10))
    if metric == "jaccard":
        X = (X > 0.5).astype(float)
    ours = pairmap.average_precision(
        meta, X, ["Metadata_g"], [], [], ["Metadata_g"], distance=metric, progress_bar=False
    )
    theirs = copairs_ap(
        meta, X, ["Metadata_g"], [], [], ["Metadata_g"], distance=metric, progress_bar=False
    )
    np.testing.assert_allclose(ours["average_precision"], theirs["average_precision"], rtol=1e-12)


def test_unknown_metric_names_the_choices():
    with pytest.raises(
        ValueError,
        match=r"distance='cosinus' is not supported; use one of "
        r"\['abs_cosine'.*scipy.spatial.distance.cdist",
    ):
        similarity_matrix(np.eye(2), distance="cosinus")
