"""Dask LocalCluster on ``activity110k``: 1 vs 2 worker processes of one thread (issue 11).

The scenario's features are saved as a ``.npy`` file that the workers memory-map
(what a cluster with shared storage does). For each cluster size a fresh
``LocalCluster`` is started, warmed up on a one-block version of the scenario
(kernels loaded in every worker), then ``average_precision(..., client=client)``
is timed; APs (and, with ``--map``, mAP p-values from nulls computed as tasks into
a fresh shared cache) are compared with a single-process run, exactly.

Usage::

    python -m benchmarks.bench_dask --workers 1,2 [--scale 0.2] [--map]

Examples
--------
>>> parse_workers("1,2")
[1, 2]
"""

from __future__ import annotations

import argparse
import json
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

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=parse_workers, default=[1, 2])
    parser.add_argument("--scenario", default="activity110k")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--map", action="store_true", help="also mAP with nulls on Dask")
    args = parser.parse_args(argv)

    data = sc.build(args.scenario, scale=args.scale)
    small = sc.build(args.scenario, scale=1e-9, seed=1)
    kw = dict(data.ap_kwargs(), progress_bar=False)
    results = {"scenario": args.scenario, "profiles": len(data.meta)}
    with tempfile.TemporaryDirectory(prefix="pairmap-dask-") as tmp:
        path = str(Path(tmp) / "feats.npy")
        np.save(path, data.feats)
        del data.feats
        pairmap.average_precision(small.meta, small.feats, **kw, n_jobs=1)
        reference, results["single_process_1_thread_s"] = _timed(
            lambda: pairmap.average_precision(data.meta, path, **kw, n_jobs=1)
        )
        map_kw = dict(
            sameby=[sc.PERT], null_size=10_000, threshold=0.05, seed=0, progress_bar=False
        )
        if args.map:
            ref_map = pairmap.mean_average_precision(reference, cache=False, **map_kw)
        for n in args.workers:
            with (
                distributed.LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
                ) as cluster,
                distributed.Client(cluster) as client,
            ):
                pairmap.average_precision(small.meta, small.feats, **kw, client=client)
                # blocks planned as for the 1-thread reference run, so results must be identical
                got, seconds = _timed(
                    lambda c=client: pairmap.average_precision(
                        data.meta, path, **kw, n_jobs=1, client=c
                    )
                )
                pd.testing.assert_frame_equal(got, reference, check_exact=True)
                results[f"dask_{n}_workers_s"] = round(seconds, 2)
                if args.map:
                    cache = Path(tmp) / f"nulls{n}"
                    got_map, results[f"dask_{n}_workers_map_s"] = _timed(
                        lambda c=client, d=cache: pdd.mean_average_precision(
                            reference, client=c, cache=d, **map_kw
                        )
                    )
                    pd.testing.assert_frame_equal(got_map, ref_map, check_exact=True)
        results["identical_to_single_process"] = True
    if 1 in args.workers and 2 in args.workers:
        results["speedup_2_vs_1"] = round(
            results["dask_1_workers_s"] / results["dask_2_workers_s"], 2
        )
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
