"""Dask runs (LocalCluster, worker processes) give exactly the single-machine results."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
from conftest import make_screen

distributed = pytest.importorskip(
    "distributed", reason="Dask is not installed (pip install 'pairmap[dask]')"
)

import pairmap  # noqa: E402
from pairmap import distributed as pd_dask  # noqa: E402

#: these tests are about the compiled engine (small screens default to NumPy alone)
pytestmark = pytest.mark.usefixtures("compiled_engine")

ACTIVITY = dict(
    pos_sameby=["Metadata_broad_sample", "Metadata_Reference_Index"],
    pos_diffby=[],
    neg_sameby=[],
    neg_diffby=["Metadata_broad_sample", "Metadata_Reference_Index"],
)
CONSISTENCY = dict(
    pos_sameby=["Metadata_broad_sample"],
    pos_diffby=["Metadata_Plate"],
    neg_sameby=["Metadata_Plate"],
    neg_diffby=["Metadata_broad_sample"],
)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    # workers inherit the environment: keep them away from the user's real null cache
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PAIRMAP_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "null-cache"))
        cluster = pd_dask.local_cluster(2)
    with cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture
def many_tasks(monkeypatch):
    monkeypatch.setattr(pd_dask, "MIN_TASK_QUERIES", 16)


def _screen(dtype=np.float64, seed=0):
    return make_screen(
        seed, n_plates=3, n_compounds=60, n_reps=2, n_controls=16, n_features=9, dtype=dtype
    )


def _ap(meta, feats, rules, **kw):
    kw.setdefault("batch_size", 24)  # many blocks, hence many tasks (same plan on both sides)
    return pairmap.average_precision(meta, feats, **rules, progress_bar=False, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dask_matches_single_machine_for_every_input_form(client, many_tasks, tmp_path, dtype):
    meta, X = _screen(dtype)
    np.save(tmp_path / "x.npy", X)
    for rules in (ACTIVITY, CONSISTENCY):
        expected = _ap(meta, X, rules)
        assert expected["average_precision"].notna().sum() > 100
        for feats in (
            X,
            np.asfortranarray(X),
            str(tmp_path / "x.npy"),
            np.load(tmp_path / "x.npy", mmap_mode="r"),
        ):
            got = _ap(meta, feats, rules, client=client)
            pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_metrics_columns_on_dask_equal_the_single_machine_run(client, many_tasks, tmp_path):
    meta, X = _screen(seed=3)
    np.save(tmp_path / "x.npy", X)
    kw = dict(metrics=["roc_auc", "precision@5", "recall@5", "precision@R"])
    for rules in (ACTIVITY, CONSISTENCY):
        expected = _ap(meta, X, rules, **kw)
        assert expected["roc_auc"].notna().sum() > 100
        got = _ap(meta, str(tmp_path / "x.npy"), rules, client=client, **kw)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_memory_mapped_file_is_opened_by_workers_not_shipped(client, tmp_path):
    meta, X = _screen()
    np.save(tmp_path / "x.npy", X)
    source = pairmap.features.as_feature_source(str(tmp_path / "x.npy"), len(meta))
    assert pd_dask._recipe(source, client) == ("npy", str(tmp_path / "x.npy"))
    kind, _ = pd_dask._recipe(pairmap.features.as_feature_source(X, len(meta)), client)
    assert kind == "scattered"


def test_correlation_query_filter_and_expected_ties_on_dask(client, many_tasks):
    meta, X = _screen(seed=1)
    meta["Metadata_dose"] = np.arange(len(meta)) % 3
    rules = dict(ACTIVITY, pos_sameby=ACTIVITY["pos_sameby"] + ["Metadata_dose > 0"])
    kw = dict(distance="correlation", ties="expected")
    expected = _ap(meta, X, rules, **kw)
    got = _ap(meta, np.asfortranarray(X), rules, client=client, **kw)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_use_sets_the_default_client(client, many_tasks):
    meta, X = _screen(seed=2)
    expected = _ap(meta, X, ACTIVITY)
    seen = []
    real = pd_dask.compute_on_dask

    def spy(c, *args, **kwargs):
        seen.append(c)
        return real(c, *args, **kwargs)

    import pairmap.distributed

    old = pairmap.distributed.compute_on_dask
    pairmap.distributed.compute_on_dask = spy
    try:
        with pd_dask.use(client):
            got = _ap(meta, X, ACTIVITY)
    finally:
        pairmap.distributed.compute_on_dask = old
    assert seen == [client] and pd_dask.current_client() is None
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_nulls_are_computed_once_each_into_the_shared_cache(client, tmp_path):
    meta, X = _screen(seed=3)
    keep = np.random.default_rng(0).random(len(meta)) > 0.2  # varied list shapes
    ap = _ap(meta[keep].reset_index(drop=True), X[keep], ACTIVITY)
    kw = dict(null_size=2000, threshold=0.05, seed=7, progress_bar=False)
    expected = pairmap.mean_average_precision(ap, "Metadata_broad_sample", cache=False, **kw)
    cache = tmp_path / "shared-cache"
    n = pd_dask.precompute_nulls(ap, client=client, cache=cache, null_size=2000, seed=7)
    confs = ap.loc[ap["average_precision"].notna(), ["n_pos_pairs", "n_total_pairs"]]
    assert n == len(confs.drop_duplicates()) >= 2
    stored = pairmap.open_cache(cache).info()
    got = pd_dask.mean_average_precision(
        ap, "Metadata_broad_sample", client=client, cache=cache, **kw
    )
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert pairmap.open_cache(cache).info() == stored  # the second pass only read the cache


def _slow_l1(a, b):
    time.sleep(0.15)
    return -np.abs(a - b).sum(axis=1)


def test_worker_killed_mid_run_the_run_completes_with_identical_results(client, many_tasks):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    meta, X = _screen(seed=4)
    expected = _ap(meta, X, ACTIVITY, distance=_slow_l1)
    before = client.run(os.getpid)
    result = {}

    def run():
        result["ap"] = _ap(meta, X, ACTIVITY, distance=_slow_l1, client=client)

    thread = threading.Thread(target=run)
    thread.start()
    victim = None
    deadline = time.time() + 60
    while victim is None and time.time() < deadline:
        busy = [
            w
            for w, tasks in client.processing().items()
            if any("pairmap-ap" in str(t) for t in tasks)
        ]
        if busy:
            victim = before[busy[0]]
        else:
            time.sleep(0.02)
    assert victim is not None, "no AP task was ever seen running"
    os.kill(victim, signal.SIGKILL)  # a worker process this test's cluster started
    thread.join(timeout=120)
    assert not thread.is_alive()
    pd.testing.assert_frame_equal(result["ap"], expected, check_exact=True)
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.run(os.getpid).values()


def test_local_cluster_workers_run_with_the_lean_dask_settings(client):
    import dask

    def settings():
        return {key: dask.config.get(key) for key in pd_dask.LEAN_SETTINGS}

    # runs after the worker-killed test: the replacement worker took them too
    seen = client.run(settings)
    assert len(seen) == 2
    for worker_settings in seen.values():
        assert worker_settings == pd_dask.LEAN_SETTINGS
        assert worker_settings != {key: dask.config.get(key) for key in pd_dask.LEAN_SETTINGS}

    def state(dask_worker):
        return "profile" in dask_worker.periodic_callbacks, dask_worker._tick_interval

    # the running workers took them: no stack sampling, event-loop ticks each second
    assert set(client.run(state).values()) == {(False, 1.0)}
    assert client.scheduler_info()["workers"]  # the scheduler is up with them
    # the settings were scoped to the cluster's start: this process keeps its own
    assert dask.config.get("distributed.worker.profile.enabled") is True


def test_lean_environment_gives_dask_the_lean_settings_in_a_new_process():
    import json
    import subprocess

    code = (
        "import dask, distributed, json, sys; "
        "print(json.dumps({k: dask.config.get(k) for k in json.loads(sys.argv[1])}))"
    )
    env = {**os.environ, **pd_dask.lean_environment()}
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(list(pd_dask.LEAN_SETTINGS))],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == pd_dask.LEAN_SETTINGS


def test_local_cluster_of_threads_also_takes_the_lean_settings():
    with (
        pd_dask.local_cluster(1, processes=False) as cluster,
        distributed.Client(cluster) as c,
    ):
        state = c.run(lambda dask_worker: "profile" in dask_worker.periodic_callbacks)
        assert list(state.values()) == [False]


def test_local_cluster_rejects_a_bad_worker_count():
    with pytest.raises(ValueError, match="n_workers must be a positive number"):
        pd_dask.local_cluster(-1)


def test_bad_client_argument_is_named():
    meta, X = _screen()
    with pytest.raises(TypeError, match="client must be"):
        _ap(meta, X, ACTIVITY, client=42)


def test_cli_run_with_dask_writes_the_same_tables(client, tmp_path, capsys, monkeypatch):
    from test_cli import _write_inputs

    from pairmap.cli import main

    config = _write_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["run", config.name, "--no-progress"]) == 0
    single = {p.name: p.read_bytes() for p in (tmp_path / "results").glob("*.parquet")}
    for p in (tmp_path / "results").iterdir():
        p.unlink()
    (tmp_path / "results").rmdir()
    assert main(["run", config.name, "--no-progress", "--dask", client.scheduler.address]) == 0
    for name, data in single.items():
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "results" / name),
            pd.read_parquet(__import__("io").BytesIO(data)),
            check_exact=True,
        )


def test_tasks_are_runs_of_whole_blocks_of_the_single_machine_plan(client, many_tasks):
    from pairmap._retrieval import plan_blocks
    from pairmap.pairing import EncodedRule, encode_columns, parse_rule
    from pairmap.similarity import prepare_features

    meta, X = _screen(seed=5)
    pos, _ = parse_rule(ACTIVITY["pos_sameby"], [], meta.columns, name="pos")
    neg, _ = parse_rule([], ACTIVITY["neg_diffby"], meta.columns, name="neg")
    cols = list(dict.fromkeys(pos.columns + neg.columns))
    codes = encode_columns(meta, cols)
    rules = (EncodedRule.from_rule(pos, cols), EncodedRule.from_rule(neg, cols))
    blocks = plan_blocks(
        prepare_features(X, "cosine"), codes, *rules, max_memory=1 << 30, batch_size=24, n_workers=2
    )
    groups = pd_dask._task_groups(blocks, 2)
    assert len(groups) > 2
    flat = [b for g in groups for b in g]
    assert len(flat) == len(blocks) and all(a is b for a, b in zip(flat, blocks, strict=True))


def test_freed_memory_is_kept_for_reuse_during_tasks_then_handed_back(monkeypatch):
    """Under Dask's MALLOC_TRIM_THRESHOLD_ the allocator settings are relaxed while any task
    runs (nested or concurrent) and restored, with a trim, when the last one ends."""
    import threading

    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append(("mallopt", param, value))
            return 1

        def malloc_trim(self, pad):
            calls.append(("trim", pad))
            return 1

    monkeypatch.setattr(pd_dask, "_libc", FakeLibc)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    inside = threading.Barrier(2)

    def task():
        with pd_dask.reuse_freed_memory():
            inside.wait(timeout=10)  # both tasks are inside at once

    threads = [threading.Thread(target=task) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    trim, mmap_ = pd_dask._M_TRIM_THRESHOLD, pd_dask._M_MMAP_THRESHOLD
    assert calls == [
        ("mallopt", trim, 1 << 30),
        ("mallopt", mmap_, 32 << 20),
        ("mallopt", trim, 65536),
        ("mallopt", mmap_, 128 << 10),
        ("trim", 0),
    ]
    calls.clear()
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    with pd_dask.reuse_freed_memory():  # a process Dask did not start: left alone
        pass
    assert calls == []


def test_parquet_features_on_dask_equal_the_single_machine_run(client, many_tasks, tmp_path):
    """The temporary memory map of a Parquet file is opened by the workers by its path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta, X = _screen(np.float32, seed=4)
    frame = meta.copy()
    for j in range(X.shape[1]):
        frame[f"f{j}"] = X[:, j]
    path = tmp_path / "profiles.parquet"
    pq.write_table(pa.Table.from_pandas(frame), path, row_group_size=50)
    expected = _ap(meta, X, ACTIVITY)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PAIRMAP_SPILL_DIR", str(tmp_path))  # storage the workers see
        got = _ap(meta, str(path), ACTIVITY, client=client)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_dask_precomputes_only_the_nulls_the_chosen_model_reads(client, tmp_path):
    """The permutation null (default for in-session tables) is not cached, so nothing is
    precomputed for it; the shared null's configurations are, as tasks."""
    meta, X = _screen(seed=6)
    ap = _ap(meta, X, ACTIVITY)
    kw = dict(null_size=500, threshold=0.05, seed=1, progress_bar=False)
    perm = pd_dask.mean_average_precision(
        ap, "Metadata_broad_sample", client=client, cache=tmp_path / "perm", **kw
    )
    assert perm.attrs["pairmap_null"] == "permutation"
    assert pairmap.open_cache(tmp_path / "perm").info()["entries"] == 0
    shared = pd_dask.mean_average_precision(
        ap, "Metadata_broad_sample", client=client, cache=tmp_path / "shared", null="shared", **kw
    )
    assert shared.attrs["pairmap_null"] == "shared"
    assert pairmap.open_cache(tmp_path / "shared").info()["entries"] >= 1
