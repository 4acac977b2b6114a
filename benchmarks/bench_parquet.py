"""Parquet-backed features vs the same features in memory (issue 11).

A scenario's metadata and features are written to one Parquet file (pycytominer's
layout: ``Metadata_`` columns plus feature columns; row groups of 100,000 rows).
Each measurement is a fresh process that reads the metadata columns, then times
``average_precision`` on (a) the features loaded into memory as an array and (b)
the Parquet path, which pairmap streams once into a temporary memory-mapped file.
Reported: seconds, the peak resident memory the call added, and the peak of the
anonymous part alone (sampled every 5 ms): for the Parquet path the resident
figure includes mapped file pages, which the operating system writes back and
drops under memory pressure. Results are compared exactly.

Usage::

    python -m benchmarks.bench_parquet --scenario orf72k [--scale 1] [--runs 3]

Examples
--------
>>> sorted(MODES)
['array', 'parquet']
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks import scenarios as sc

MODES = ("array", "parquet")

CHILD = r"""
import json, resource, sys, time
import numpy as np, pandas as pd, pyarrow.parquet as pq
import pairmap
path, mode, kw = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
names = pq.ParquetFile(path).schema_arrow.names
meta = pd.read_parquet(path, columns=[c for c in names if c.startswith("Metadata_")])
feats = path
if mode == "array":
    feats = pd.read_parquet(path, columns=[c for c in names if not c.startswith("Metadata_")])
    feats = np.ascontiguousarray(feats.to_numpy())
small = meta.iloc[:2000].reset_index(drop=True)
pairmap.average_precision(small, np.zeros((2000, 4), np.float32) + np.arange(2000)[:, None] % 7,
                          **kw, progress_bar=False)  # kernels loaded before the clock starts
import threading
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
peak_anon, done = [0], threading.Event()
def sample():  # anonymous memory (not file pages, which the system can drop) every 5 ms
    while not done.wait(0.005):
        peak_anon[0] = max(peak_anon[0], status("RssAnon"))
before, before_anon = status("VmRSS"), status("RssAnon")
sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
t0 = time.perf_counter()
ap = pairmap.average_precision(meta, feats, **kw, progress_bar=False)
seconds = time.perf_counter() - t0
done.set()
sampler.join()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
ap[["average_precision"]].to_parquet(sys.argv[4])
print(json.dumps({"seconds": seconds, "peak_added_mb": max(0, peak - before) / 2**20,
                  "anon_peak_added_mb": max(0, peak_anon[0] - before_anon) / 2**20}))
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="orf72k")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    data = sc.build(args.scenario, scale=args.scale)
    kw = data.ap_kwargs()
    results = {"scenario": args.scenario, "profiles": len(data.meta)}
    with tempfile.TemporaryDirectory(prefix="pairmap-parquet-") as tmp:
        path = Path(tmp) / "profiles.parquet"
        table = pa.Table.from_pandas(data.meta, preserve_index=False)
        for j in range(data.feats.shape[1]):
            table = table.append_column(f"f{j}", pa.array(data.feats[:, j]))
        pq.write_table(table, path, row_group_size=100_000)
        del table, data
        results["parquet_mb"] = round(path.stat().st_size / 2**20)
        runs = {m: [] for m in MODES}
        for _ in range(args.runs):
            for mode in MODES:  # alternate: this machine's speed drifts
                out = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        CHILD,
                        str(path),
                        mode,
                        json.dumps(kw),
                        str(Path(tmp) / f"{mode}.parquet"),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
        a = pq.read_table(Path(tmp) / "array.parquet").column(0).to_numpy()
        b = pq.read_table(Path(tmp) / "parquet.parquet").column(0).to_numpy()
        results["identical"] = bool(np.array_equal(a, b, equal_nan=True))
    for mode in MODES:
        results[f"{mode}_s"] = round(statistics.median(r["seconds"] for r in runs[mode]), 2)
        for key in ("peak_added_mb", "anon_peak_added_mb"):
            results[f"{mode}_{key}"] = round(statistics.median(r[key] for r in runs[mode]))
    results["time_ratio_parquet_vs_array"] = round(results["parquet_s"] / results["array_s"], 2)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
