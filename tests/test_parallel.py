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


def test_block_plan_and_results_do_not_depend_on_the_thread_count(monkeypatch):
    """Blocks decide which similarities come from a matrix product (last-bit effects), so
    the plan must be the same for every thread count up to ``PLAN_WORKERS``."""
    from conftest import make_screen

    from pairmap import _retrieval

    meta, X = make_screen(1, n_plates=4, n_compounds=300, n_reps=3, n_controls=40, n_features=16)
    plans = _record_block_plans(monkeypatch, _retrieval)
    rules = dict(
        pos_sameby=["Metadata_broad_sample"],
        pos_diffby=[],
        neg_sameby=["Metadata_Plate"],
        neg_diffby=["Metadata_broad_sample"],
    )
    tables = []
    for threads in (1, 2):
        monkeypatch.setattr(pairmap.engine, "thread_limits", _fixed_threads(threads))
        tables.append(
            pairmap.average_precision(meta, X, **rules, max_memory="16MB", progress_bar=False)
        )
    assert len(plans) == 2 and len(plans[0]) > 2 and plans[0] == plans[1]
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)
    # the plan's worker count: fixed up to PLAN_WORKERS threads, the thread count beyond
    assert {_retrieval.plan_workers_for(t) for t in range(1, 17)} == {_retrieval.PLAN_WORKERS}
    assert _retrieval.plan_workers_for(40) == 40


def _record_block_plans(monkeypatch, module) -> list:
    """Every block plan ``module.block_bounds`` returns, in call order."""
    plans = []
    original = module.block_bounds

    def spy(est, buffer_budget, batch_size, workers, *edges):
        plans.append(original(est, buffer_budget, batch_size, workers, *edges))
        return plans[-1]

    monkeypatch.setattr(module, "block_bounds", spy)
    return plans


def _fixed_threads(n):
    """A stand-in for ``thread_limits`` that reports ``n`` threads (as on an n-CPU machine)."""
    import contextlib

    @contextlib.contextmanager
    def limits(_n_jobs):
        yield n

    return limits


def test_multilabel_block_plan_does_not_depend_on_the_thread_count(monkeypatch):
    from pairmap import _retrieval_multilabel

    rng = np.random.default_rng(3)
    n = 1500
    lists = [list(rng.choice(60, size=rng.integers(1, 4), replace=False)) for _ in range(n)]
    meta = pd.DataFrame({"Metadata_target": lists, "Metadata_Plate": rng.integers(0, 4, n)})
    X = rng.normal(size=(n, 12)).astype(np.float32)
    plans = _record_block_plans(monkeypatch, _retrieval_multilabel)
    tables = []
    for threads in (1, 2):
        monkeypatch.setattr(pairmap.engine, "thread_limits", _fixed_threads(threads))
        tables.append(
            pairmap.average_precision(
                meta,
                X,
                pos_sameby=["Metadata_target"],
                pos_diffby=["Metadata_Plate"],
                neg_sameby=[],
                neg_diffby=["Metadata_target"],
                multilabel_col="Metadata_target",
                max_memory="8MB",
                progress_bar=False,
            )
        )
    assert len(plans) == 2 and len(plans[0]) > 2 and plans[0] == plans[1]
    pd.testing.assert_frame_equal(tables[0], tables[1], check_exact=True)
