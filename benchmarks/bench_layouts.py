"""Layout variants against their block layout, in interleaved rounds (issue 11).

``benchmarks.run`` times each scenario's repeats one after the other, so when this
machine's speed drifts (the same block-layout run took 2.1 s in one campaign and
3.1 s in the next, CPU time included) a ratio between two scenarios measured minutes
apart mostly measures the drift. Here every round runs the block layout and each
variant once, one fresh process each (``benchmarks._worker``, the same worker,
warm-up and memory measurement as ``benchmarks.run``), and a variant's ratio is
taken against the block-layout run of its own round. Medians over the rounds are
reported with the range.

Usage::

    python -m benchmarks.bench_layouts [--bases plates1m,orf72k] [--rounds 5]

Examples
--------
>>> variants_of("orf72k")
['orf72k', 'orf72k_random', 'orf72k_shuffled', 'orf72k_fortran']
>>> round_ratios({"a": 2.0, "a_x": 3.0}, "a")
{'a_x': 1.5}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from benchmarks.run import ROOT, _worker_env, run_worker
from benchmarks.scenarios import VARIANTS


def variants_of(base: str) -> list[str]:
    """The block layout first, then its layout variants."""
    return [base, *(f"{base}_{suffix}" for suffix in VARIANTS)]


def round_ratios(times: dict[str, float], base: str) -> dict[str, float]:
    """Each variant's time over the block layout's time of the same round."""
    return {name: t / times[base] for name, t in times.items() if name != base}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bases", default="plates1m,orf72k")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "layouts")
    parser.add_argument("--memory-limit-gb", type=float, default=20.0)
    args = parser.parse_args(argv)
    bases = [b for b in args.bases.split(",") if b]
    env = _worker_env(len(os.sched_getaffinity(0)))
    cache, tmp = args.out / "cache", args.out / "tmp"
    for d in (cache, tmp):
        d.mkdir(parents=True, exist_ok=True)
    common = ["--cache", str(cache), "--scale", "1", "--seed", "0"]

    def run(name: str, tool: str) -> dict:
        job = ["--scenario", name, "--tool", tool, *common]
        r = run_worker(job, env, args.memory_limit_gb, None, tmp / f"{tool}.json")
        if r["status"] != "ok":
            raise SystemExit(f"{name} ({tool}): {r['status']} {r.get('error', '')}")
        return r

    for base in bases:
        for name in variants_of(base):
            run(name, "prepare")  # inputs generated and cached once
    results: dict = {"rounds": args.rounds, "bases": {}}
    for base in bases:
        names = variants_of(base)
        times = {n: [] for n in names}
        working = {n: [] for n in names}
        ratios = {n: [] for n in names[1:]}
        for rnd in range(args.rounds):
            this_round = {}
            for name in names:
                r = run(name, "pairmap")
                this_round[name] = r["wall_s"]
                times[name].append(round(r["wall_s"], 3))
                working[name].append(round(r["working_gb"] * 1024))
            for name, ratio in round_ratios(this_round, base).items():
                ratios[name].append(round(ratio, 2))
            print(f"[{base}] round {rnd + 1}: {this_round}", file=sys.stderr, flush=True)
        results["bases"][base] = {
            name: {
                "median_s": statistics.median(times[name]),
                "runs_s": times[name],
                "working_mb_max": max(working[name]),
                **(
                    {}
                    if name == base
                    else {
                        "median_ratio": statistics.median(ratios[name]),
                        "ratios": ratios[name],
                    }
                ),
            }
            for name in names
        }
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
