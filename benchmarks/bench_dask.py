"""Dask LocalCluster on ``activity110k``: 1 vs 2 worker processes of one thread (issue 11).

The scenario's features are saved as a ``.npy`` file that the workers memory-map
(what a cluster with shared storage does). For each cluster size a fresh
``LocalCluster`` is started, every worker loads the kernels (``pairmap.warmup``), then ``average_precision(..., client=client)``
is timed (rounds alternate between the cluster sizes and medians are reported: this
machine's speed drifts by 10% from one minute to the next). APs (and, with ``--map``,
mAP p-values from nulls computed as tasks into a fresh shared cache) are compared with
single-process runs with 1 and 2 threads, exactly: block plans do not depend on the
number of threads or workers.

Two kinds of cluster (``--clusters``): ``lean`` is :func:`pairmap.distributed.local_cluster`
(what ``--dask local`` starts: Dask's profiler off and its monitoring sampled less often,
``LEAN_SETTINGS``), ``default`` a ``LocalCluster`` with Dask's default settings. The CPU
time of every thread of the calling process and of the workers is reported too
(``cpu_*``: task threads against Dask's event loops).

Usage::

    python -m benchmarks.bench_dask --workers 1,2 [--repeat 3] [--clusters lean,default]
        [--scale 0.2] [--map]

Examples
--------
>>> parse_workers("1,2")
[1, 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import scenarios as sc


def parse_workers(text: str) -> list[int]:
    """Worker counts from a comma list."""
    return [int(t) for t in text.split(",") if t.strip()]


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _cluster(kind: str, n_workers: int):
    import distributed

    from pairmap import distributed as pdd

    if kind == "lean":
        return pdd.local_cluster(n_workers)
    if kind == "default":
        return distributed.LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
    raise ValueError(f"--clusters: unknown kind {kind!r}; use lean and/or default")


def _threads_cpu_here() -> dict[str, float]:
    """CPU seconds of each thread of this process, by thread name."""
    import threading

    import psutil

    names = {t.native_id: t.name for t in threading.enumerate()}
    return {
        names.get(t.id, str(t.id)): t.user_time + t.system_time for t in psutil.Process().threads()
    }


def _thread_cpu(client) -> dict[str, dict[str, float]]:
    """Per-thread CPU seconds of the calling process and of every worker process."""
    out = {"caller": _threads_cpu_here()}
    out.update(client.run(_threads_cpu_here))
    return out


def _cpu_split(before, after) -> dict[str, float]:
    """CPU seconds spent during the run: worker task threads, worker other threads, caller."""
    split = {"tasks": 0.0, "worker_other": 0.0, "caller": 0.0}
    for proc, threads in after.items():
        for name, seconds in threads.items():
            used = seconds - before.get(proc, {}).get(name, 0.0)
            if proc == "caller":
                split["caller"] += used
            elif "Dask-Default-Threads" in name:
                split["tasks"] += used
            else:
                split["worker_other"] += used
    return {k: round(v, 2) for k, v in split.items()}


def main(argv=None) -> int:
    import distributed

    import pairmap
    from pairmap import distributed as pdd
    from pairmap._small import compiled_only

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=parse_workers, default=[1, 2])
    parser.add_argument("--scenario", default="activity110k")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument(
        "--clusters",
        type=lambda t: [k for k in t.split(",") if k],
        default=["lean", "default"],
        help="lean (pairmap.distributed.local_cluster) and/or default (Dask's settings)",
    )
    parser.add_argument("--map", action="store_true", help="also mAP with nulls on Dask")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds over the worker counts (medians reported)"
    )
    args = parser.parse_args(argv)

    data = sc.build(args.scenario, scale=args.scale)
    small = sc.build(args.scenario, scale=1e-9, seed=1)
    kw = dict(data.ap_kwargs(), progress_bar=False)
    results = {"scenario": args.scenario, "profiles": len(data.meta)}
    with tempfile.TemporaryDirectory(prefix="pairmap-dask-") as tmp:
        path = str(Path(tmp) / "feats.npy")
        np.save(path, data.feats)
        del data.feats
        with compiled_only():  # warm-ups load the kernels (a tiny screen would skip them)
            pairmap.average_precision(small.meta, small.feats, **kw, n_jobs=1)
        reference, results["single_process_1_thread_s"] = _timed(
            lambda: pairmap.average_precision(data.meta, path, **kw, n_jobs=1)
        )
        two_threads = pairmap.average_precision(data.meta, path, **kw, n_jobs=2)
        pd.testing.assert_frame_equal(two_threads, reference, check_exact=True)
        map_kw = dict(
            sameby=[sc.PERT], null_size=10_000, threshold=0.05, seed=0, progress_bar=False
        )
        if args.map:
            ref_map = pairmap.mean_average_precision(reference, cache=False, **map_kw)
        times = {(kind, n): [] for kind in args.clusters for n in args.workers}
        cpu = {}
        rounds = [
            (r, k, n) for r in range(args.repeat) for k in args.clusters for n in args.workers
        ]
        for rnd, kind, n in rounds:
            with (
                _cluster(kind, n) as cluster,
                distributed.Client(cluster) as client,
            ):
                client.run(pairmap.warmup)  # kernels loaded in every worker before timing
                before = _thread_cpu(client)
                # plans do not depend on thread or worker counts: results must be identical
                got, seconds = _timed(
                    lambda c=client: pairmap.average_precision(data.meta, path, **kw, client=c)
                )
                after = _thread_cpu(client)
                pd.testing.assert_frame_equal(got, reference, check_exact=True)
                times[kind, n].append(round(seconds, 2))
                cpu.setdefault((kind, n), []).append(_cpu_split(before, after))
                if args.map and rnd == 0:
                    cache = Path(tmp) / f"nulls-{kind}-{n}"
                    got_map, results[f"dask_{kind}_{n}_workers_map_s"] = _timed(
                        lambda c=client, d=cache: pdd.mean_average_precision(
                            reference, client=c, cache=d, **map_kw
                        )
                    )
                    pd.testing.assert_frame_equal(got_map, ref_map, check_exact=True)
        for (kind, n), ts in times.items():
            results[f"dask_{kind}_{n}_workers_s"] = statistics.median(ts)
            results[f"dask_{kind}_{n}_workers_runs_s"] = ts
            split = cpu[kind, n]
            for part in split[0]:
                results[f"cpu_{kind}_{n}_workers_{part}_s"] = round(
                    statistics.median(c[part] for c in split), 2
                )
        results["identical_to_single_process"] = True
    if 1 in args.workers and 2 in args.workers:
        for kind in args.clusters:
            results[f"speedup_{kind}_2_vs_1"] = round(
                results[f"dask_{kind}_1_workers_s"] / results[f"dask_{kind}_2_workers_s"], 2
            )
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
