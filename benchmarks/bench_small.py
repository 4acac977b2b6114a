"""Small screens: the NumPy path against the compiled engine, side by side (issue 11).

For screens of 200 to 2,048 profiles (per-plate activity: 4 replicates per
compound, 16 controls per plate of 384 wells, 300 float32 features), every
measurement is a fresh process that times its first AP + mAP calls (default
permutation null, ``--null-size`` draws) and the same calls again. The two paths
alternate: ``numpy`` (the default for these sizes) and ``compiled`` (the screen
forced onto the compiled engine). The mAP step picks its own backend by the
number of draws (see ``pairmap.permutation.choose_backend``), so it may load the
compiled kernels on either path; whether numba was imported is reported.

Usage::

    python -m benchmarks.bench_small --sizes 200,768,2048 --runs 3 [--null-size 1000]

Examples
--------
>>> PATHS
('numpy', 'compiled')
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PATHS = ("numpy", "compiled")

PROBE = r"""
import json, sys, time
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
import numpy as np, pandas as pd
n, null_size, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
plate = np.arange(n) // 384
cpd = rng.permutation(n) // 4
ctl = (np.arange(n) % 384) < 16
labels = np.where(ctl, "ctl", cpd.astype(str))
meta = pd.DataFrame({"cpd": labels, "plate": plate})
X = rng.standard_normal((n, 300)).astype(np.float32)
X[~ctl] += 0.3 * rng.standard_normal((1, 300)).astype(np.float32)
r0 = rss()
t0 = time.perf_counter()
import pairmap, pairmap._small
if path == "compiled":
    pairmap._small.MAX_PROFILES = 0
meta = pairmap.assign_reference_index(meta, "cpd == 'ctl'")
cols = ["cpd", "Metadata_Reference_Index"]
def calls():
    ap = pairmap.average_precision(meta, X, cols, [], "plate", cols, progress_bar=False)
    t = time.perf_counter()
    res = pairmap.mean_average_precision(ap, "cpd", null_size=null_size, cache=False,
                                         progress_bar=False)
    return ap, res, t
ap, res, ta = calls()
t1 = time.perf_counter()
r1 = rss()
ap2, res2, tb = calls()
t2 = time.perf_counter()
print(json.dumps({"first_s": t1 - t0, "first_ap_s": ta - t0, "warm_s": t2 - t1,
                  "warm_ap_s": tb - t1, "rss_added_mb": r1 - r0,
                  "numba": "numba" in sys.modules,
                  "n_significant": int(res["below_corrected_p"].sum())}))
"""


def run(n: int, null_size: int, path: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(n), str(null_size), path],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="200,768,2048")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--null-size", type=int, default=1000)
    args = parser.parse_args(argv)
    keys = ("first_s", "first_ap_s", "warm_s", "warm_ap_s", "rss_added_mb")
    for n in (int(s) for s in args.sizes.split(",")):
        rows = {p: [] for p in PATHS}
        for _ in range(args.runs):
            for p in PATHS:
                rows[p].append(run(n, args.null_size, p))
        med = {p: {k: statistics.median(r[k] for r in rows[p]) for k in keys} for p in PATHS}
        for p in PATHS:
            m = med[p]
            print(
                f"n={n:5d} {p:>8}: first {m['first_s']:.2f} s (AP {m['first_ap_s']:.2f} s), "
                f"warm {m['warm_s']:.2f} s (AP {m['warm_ap_s']:.2f} s), "
                f"RSS +{m['rss_added_mb']:.0f} MB, numba {sorted({r['numba'] for r in rows[p]})}, "
                f"significant {sorted({r['n_significant'] for r in rows[p]})}"
            )
        ratio = med["compiled"]["first_s"] / med["numpy"]["first_s"]
        print(f"n={n:5d} fresh process: compiled / numpy = {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
