"""Start-up cost of a fresh process: AP + mAP for 200 profiles (issue 11).

Every measurement is a new Python process that imports numpy and pandas, builds
a 200-profile screen (50 compounds x 4 replicates with 20 control wells among
them), then times ``import pairmap`` + ``average_precision`` +
``mean_average_precision`` (first calls) and the same two calls again (pure
compute). Overhead is the difference; the RSS added by the first calls is
reported too, and whether numba was imported.

Both paths run side by side, alternating: ``numpy`` (the default for a screen
this small, :mod:`pairmap._small`: nothing compiled is loaded) and ``compiled``
(the screen forced onto the compiled engine, kernels loaded from the on-disk
cache; run ``pairmap warmup`` first so the cache is filled).

``--breakdown`` splits a fresh process into stages (importing numba, loading the
first cached kernel, which starts LLVM and numba's type registries, the remaining
first calls, then the compute) to show where the overhead lies.

Usage::

    python -m benchmarks.bench_startup --runs 5 [--breakdown]

Examples
--------
>>> sorted(PROBE_KEYS)
['compute_s', 'first_s', 'rss_added_mb']
>>> PATHS
('numpy', 'compiled')
>>> STAGES[0]
'import_numba'
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PROBE_KEYS = ("first_s", "compute_s", "rss_added_mb")
#: the two paths a 200-profile screen can take (see the module docstring)
PATHS = ("numpy", "compiled")
#: stages of ``--breakdown``, in the order a fresh process goes through them
STAGES = ("import_numba", "first_kernel", "first_calls", "compute")

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
import sys
import pairmap
if sys.argv[1] == "compiled":
    import pairmap._small
    pairmap._small.MAX_PROFILES = 0  # force the compiled engine
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
print(json.dumps({"first_s": t1 - t0, "compute_s": t2 - t1, "rss_added_mb": r1 - r0,
                  "numba_loaded": "numba" in sys.modules}))
"""


BREAKDOWN = r"""
import json, time
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
import numpy as np, pandas as pd
rng = np.random.default_rng(0)
labels = np.repeat(np.arange(50), 4).astype(str)
labels[:20] = "ctl"
meta0 = pd.DataFrame({"cpd": labels})
X = rng.standard_normal((200, 50)).astype(np.float32)
out, mark = {}, [time.perf_counter(), rss()]
def stage(name):
    t, r = time.perf_counter(), rss()
    out[name] = {"s": t - mark[0], "mb": r - mark[1]}
    mark[:] = [t, r]
import numba
stage("import_numba")
import pairmap, pairmap._small
pairmap._small.MAX_PROFILES = 0  # the compiled engine (the NumPy path loads no kernel)
from pairmap._kernels.retrieval import row_sq_norms
row_sq_norms(np.ones((2, 2), dtype=np.float32))  # one kernel from the cache: LLVM and registries
stage("first_kernel")
meta = pairmap.assign_reference_index(meta0, "cpd == 'ctl'")
cols = ["cpd", "Metadata_Reference_Index"]
def calls():
    ap = pairmap.average_precision(meta, X, cols, [], [], cols, progress_bar=False)
    return pairmap.mean_average_precision(ap, "cpd", null_size=1000, threshold=0.05, seed=0,
                                          cache=False, progress_bar=False)
calls()
stage("first_calls")
calls()
stage("compute")
print(json.dumps(out))
"""


def breakdown(runs: int) -> dict:
    """Median seconds and RSS added per stage of a fresh process (see :data:`STAGES`)."""
    rows = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", BREAKDOWN], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]
    return {
        st: {k: round(statistics.median(r[st][k] for r in rows), 3) for k in ("s", "mb")}
        for st in STAGES
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time each stage of the compiled path: importing numba, the first cached "
        "kernel (LLVM and numba's registries), the remaining first calls, the compute",
    )
    args = parser.parse_args(argv)
    rows = {path: [] for path in PATHS}
    for _ in range(args.runs):  # alternating, so both paths see the same machine
        for path in PATHS:
            out = subprocess.run(
                [sys.executable, "-c", PROBE, path], capture_output=True, text=True, check=True
            )
            rows[path].append(json.loads(out.stdout))
    for path in PATHS:
        med = {k: statistics.median(r[k] for r in rows[path]) for k in PROBE_KEYS}
        numba = {r["numba_loaded"] for r in rows[path]}
        print(
            f"{path:>8}: {args.runs} fresh processes, medians: first calls "
            f"{med['first_s']:.3f} s, compute {med['compute_s']:.3f} s, overhead "
            f"{med['first_s'] - med['compute_s']:.3f} s, RSS added {med['rss_added_mb']:.0f} MB, "
            f"numba imported: {sorted(numba)}"
        )
    print(json.dumps(rows))
    if args.breakdown:
        print("stages (medians):", json.dumps(breakdown(args.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
