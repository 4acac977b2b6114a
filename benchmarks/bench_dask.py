"""Dask LocalCluster on ``activity110k``: 1 vs 2 worker processes of one thread (issue 11).

The scenario's features are saved as a ``.npy`` file that the workers memory-map
(what a cluster with shared storage does). For each cluster size a fresh
``LocalCluster`` is started, every worker loads the kernels (``pairmap.warmup``), then ``average_precision(..., client=client)``
is timed (rounds alternate between the cluster sizes and medians are reported: this
machine's speed drifts by 10% from one minute to the next). APs (and, with ``--map``,
mAP p-values from nulls computed as tasks into a fresh shared cache) are compared with
single-process runs with 1 and 2 threads, exactly: block plans do not depend on the
number of threads or workers.

Usage::

    python -m benchmarks.bench_dask --workers 1,2 [--repeat 3] [--scale 0.2] [--map]

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


def main(argv=None) -> int:
    import distributed

    import pairmap
    from pairmap import distributed as pdd
    from pairmap._small import compiled_only

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=parse_workers, default=[1, 2])
    parser.add_argument("--scenario", default="activity110k")
    parser.add_argument("--scale", type=float, default=1.0)
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
        times = {n: [] for n in args.workers}
        for rnd, n in ((r, n) for r in range(args.repeat) for n in args.workers):
            with (
                distributed.LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
                ) as cluster,
                distributed.Client(cluster) as client,
            ):
                client.run(pairmap.warmup)  # kernels loaded in every worker before timing
                # plans do not depend on thread or worker counts: results must be identical
                got, seconds = _timed(
                    lambda c=client: pairmap.average_precision(data.meta, path, **kw, client=c)
                )
                pd.testing.assert_frame_equal(got, reference, check_exact=True)
                times[n].append(round(seconds, 2))
                if args.map and rnd == 0:
                    cache = Path(tmp) / f"nulls{n}"
                    got_map, results[f"dask_{n}_workers_map_s"] = _timed(
                        lambda c=client, d=cache: pdd.mean_average_precision(
                            reference, client=c, cache=d, **map_kw
                        )
                    )
                    pd.testing.assert_frame_equal(got_map, ref_map, check_exact=True)
        for n, ts in times.items():
            results[f"dask_{n}_workers_s"] = statistics.median(ts)
            results[f"dask_{n}_workers_runs_s"] = ts
        results["identical_to_single_process"] = True
    if 1 in args.workers and 2 in args.workers:
        results["speedup_2_vs_1"] = round(
            results["dask_1_workers_s"] / results["dask_2_workers_s"], 2
        )
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
