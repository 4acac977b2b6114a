"""Start-up cost of a fresh process: AP + mAP for 200 profiles (issue 11).

Every measurement is a new Python process that imports numpy and pandas, builds
a 200-profile screen (50 compounds x 4 replicates with 20 control wells among
them), then times ``import pairmap`` + ``average_precision`` +
``mean_average_precision`` (first calls: kernels loaded from the on-disk cache)
and the same two calls again (pure compute). Overhead is the difference; the RSS
added by the first calls (pairmap, numba and its compiled kernels) is reported
too. Run ``pairmap warmup`` (or one run) first so the cache is filled.

Usage::

    python -m benchmarks.bench_startup --runs 5

Examples
--------
>>> sorted(PROBE_KEYS)
['compute_s', 'first_s', 'rss_added_mb']
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PROBE_KEYS = ("first_s", "compute_s", "rss_added_mb")

PROBE = r"""
import json, time
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
import numpy as np, pandas as pd
rng = np.random.default_rng(0)
labels = np.repeat(np.arange(50), 4).astype(str)
labels[:20] = "ctl"
meta = pd.DataFrame({"cpd": labels})
X = rng.standard_normal((200, 50)).astype(np.float32)
r0 = rss()
t0 = time.perf_counter()
import pairmap
meta = pairmap.assign_reference_index(meta, "cpd == 'ctl'")
cols = ["cpd", "Metadata_Reference_Index"]
def calls():
    ap = pairmap.average_precision(meta, X, cols, [], [], cols, progress_bar=False)
    return pairmap.mean_average_precision(ap, "cpd", null_size=1000, threshold=0.05, seed=0,
                                          cache=False, progress_bar=False)
calls()
t1 = time.perf_counter()
r1 = rss()
calls()
t2 = time.perf_counter()
print(json.dumps({"first_s": t1 - t0, "compute_s": t2 - t1, "rss_added_mb": r1 - r0}))
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    rows = []
    for _ in range(args.runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
        )
        rows.append(json.loads(out.stdout))
    med = {k: statistics.median(r[k] for r in rows) for k in PROBE_KEYS}
    print(
        f"{args.runs} fresh processes, medians: first calls {med['first_s']:.3f} s, "
        f"compute {med['compute_s']:.3f} s, overhead {med['first_s'] - med['compute_s']:.3f} s, "
        f"RSS added {med['rss_added_mb']:.0f} MB"
    )
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
