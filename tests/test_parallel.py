"""Thread counts: n_jobs resolution, CPU affinity, and no BLAS oversubscription."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_info

import pairmap
from pairmap._parallel import available_cpus, resolve_n_jobs


def test_resolve_n_jobs_follows_scikit_learn_conventions():
    cpus = available_cpus()
    assert resolve_n_jobs(None) == cpus
    assert resolve_n_jobs(-1) == cpus
    assert resolve_n_jobs(1) == 1
    assert resolve_n_jobs(10_000) == cpus  # never more threads than CPUs
    assert resolve_n_jobs(-10_000) == 1
    with pytest.raises(ValueError, match="n_jobs=0"):
        resolve_n_jobs(0)
    with pytest.raises(TypeError, match="n_jobs"):
        resolve_n_jobs(1.5)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs Linux CPU affinity")
def test_cpu_affinity_mask_is_honoured():
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))});"
        "from pairmap._parallel import resolve_n_jobs, thread_limits;"
        "import numba;"
        "from threadpoolctl import threadpool_info;"
        "ctx = thread_limits(None); n = ctx.__enter__();"
        "blas = {i['num_threads'] for i in threadpool_info()};"
        "print(resolve_n_jobs(None), n, numba.get_num_threads(), max(blas) if blas else 1)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1", "1", "1"]


def test_blas_is_single_threaded_inside_the_engine():
    """Blocks run on n_jobs threads; BLAS inside them must not add its own threads."""
    seen = []

    def numpy_blas_threads():
        # the BLAS that NumPy's matmul calls (SciPy may bundle another one, unused here)
        libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        mine = [i for i in libs if "numpy" in i["filepath"]] or libs
        return max((i["num_threads"] for i in mine), default=1)

    def cosine(a, b):
        seen.append(numpy_blas_threads())
        return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)

    rng = np.random.default_rng(0)
    meta = pd.DataFrame({"Metadata_cpd": np.repeat(np.arange(20), 3)})
    meta["Metadata_plate"] = np.tile(np.arange(3), 20)
    feats = rng.standard_normal((60, 8))
    pairmap.average_precision(
        meta,
        feats,
        ["Metadata_cpd"],
        [],
        ["Metadata_plate"],
        ["Metadata_cpd"],
        distance=cosine,
        n_jobs=2,
        progress_bar=False,
    )
    assert seen and set(seen) == {1}
