"""Side-by-side benchmark: null AP generation in pairmap vs copairs.

Generates ``--draws`` null AP values for ``--k`` positives among ``--n`` ranked
items with ``pairmap.null_distribution(cache=False)`` and with
``copairs.compute.random_ap``, each in its own child process (so peak memory is
measured cleanly), and prints a Markdown table: wall time (best of
``--repeat``), speed ratio and peak resident memory above the post-import
baseline. numba compilation is excluded (warm-up call on a tiny input first).

Optionally (``--map-groups G``) it also times ``mean_average_precision`` on
``G`` groups of 4 profiles with ``--draws`` null draws in both libraries.

Usage::

    PYTHONPATH=src python benchmarks/bench_nulls.py            # k=3, n=1003, 10**6 draws
    PYTHONPATH=src python benchmarks/bench_nulls.py --map-groups 300
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time
import numpy as np
args = json.loads(sys.argv[1])

def rss_now():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()

tool, k, n, draws, seed = args["tool"], args["k"], args["n"], args["draws"], args["seed"]
if args["what"] == "null":
    if tool == "pairmap":
        from pairmap.nulls import null_distribution
        null_distribution(k, n, null_size=1000, seed=seed + 1, cache=False)  # compile / warm up
        run = lambda: null_distribution(k, n, null_size=draws, seed=seed, cache=False,
                                        n_jobs=args["n_jobs"])
    else:
        from copairs.compute import random_ap
        random_ap(1000, k, n, seed + 1)
        run = lambda: random_ap(draws, k, n, seed)
else:
    import pandas as pd
    rng = np.random.default_rng(0)
    groups = args["groups"]
    ap = pd.DataFrame({
        "grp": np.repeat(np.arange(groups), 4),
        "n_pos_pairs": k,
        "n_total_pairs": rng.choice([n, n - 1, n - 2], size=4 * groups, p=[0.8, 0.15, 0.05]),
        "average_precision": rng.uniform(0, 0.05, 4 * groups),
    })
    ap["normalized_average_precision"] = ap["average_precision"]
    if tool == "pairmap":
        from pairmap.significance import mean_average_precision
        mean_average_precision(ap.head(8), "grp", null_size=1000, cache=False,
                               progress_bar=False)
        run = lambda: mean_average_precision(ap, "grp", null_size=draws, seed=seed,
                                             cache=False, progress_bar=False,
                                             n_jobs=args["n_jobs"])
    else:
        import tempfile
        from copairs.map import mean_average_precision
        tmp = tempfile.mkdtemp()
        mean_average_precision(ap.head(8), ["grp"], 1000, 0.05, seed + 1,
                               progress_bar=False, cache_dir=tmp)
        run = lambda: mean_average_precision(ap, ["grp"], draws, 0.05, seed,
                                             progress_bar=False, cache_dir=tmp)
base = rss_now()
times = []
for _ in range(args["repeat"]):
    t0 = time.perf_counter()
    out = run()
    times.append(time.perf_counter() - t0)
    del out
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": min(times), "peak_bytes": max(0, peak - base)}))
"""


def run_child(spec: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{spec['tool']} run failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(title: str, rows: dict[str, dict]) -> str:
    ref = rows["copairs"]["seconds"]
    lines = [
        f"### {title}",
        "",
        "| tool | wall time (s) | speed-up vs copairs | peak memory (MiB) |",
        "|---|---:|---:|---:|",
    ]
    for tool, r in rows.items():
        lines.append(
            f"| {tool} | {r['seconds']:.3f} | {ref / r['seconds']:.0f}x | "
            f"{r['peak_bytes'] / 2**20:.1f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=3, help="positives per ranked list")
    parser.add_argument("--n", type=int, default=1003, help="ranked list length")
    parser.add_argument("--draws", type=int, default=10**6, help="null draws")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="pairmap repetitions (best kept)")
    parser.add_argument("--n-jobs", type=int, default=None, help="pairmap threads")
    parser.add_argument(
        "--map-groups",
        type=int,
        default=0,
        help="also time mean_average_precision on this many groups of 4",
    )
    args = parser.parse_args(argv)

    spec = {
        "what": "null",
        "k": args.k,
        "n": args.n,
        "draws": args.draws,
        "seed": args.seed,
        "n_jobs": args.n_jobs,
    }
    t0 = time.perf_counter()
    rows = {
        "copairs": run_child({**spec, "tool": "copairs", "repeat": 1}),
        "pairmap": run_child({**spec, "tool": "pairmap", "repeat": args.repeat}),
    }
    print(table(f"Null generation: k={args.k}, n={args.n}, {args.draws:,} draws", rows))
    if args.map_groups:
        spec = {**spec, "what": "map", "groups": args.map_groups}
        rows = {
            "copairs": run_child({**spec, "tool": "copairs", "repeat": 1}),
            "pairmap": run_child({**spec, "tool": "pairmap", "repeat": args.repeat}),
        }
        print()
        print(
            table(f"mAP p-values: {args.map_groups:,} groups of 4, null_size={args.draws:,}", rows)
        )
    print(f"\n(total benchmark time {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
