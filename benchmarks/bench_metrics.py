"""Benchmark: retrieval metrics and percent replicating, measured side by side.

Two measurements, each call in a fresh child process (inputs loaded and the tool
warmed up on a small slice first, so imports and numba compilation are not
timed; peak RSS is reset before the call with ``/proc/self/clear_refs``):

* ``metrics`` -- ``pairmap.average_precision`` AP-only vs the same call with
  every extra metric (``roc_auc``, ``precision@1/5/10``, ``recall@10``,
  ``precision@R``, ``recall@R``), runs interleaved; reports the time ratio
  (target: <= 1.5) and peak working memory;
* ``replicating`` -- ``pairmap.percent_replicating`` vs copairs 0.5.5
  ``correlation_test`` + ``percent_score("right")`` (sameby perturbation,
  diffby plate, 1,000 null medians), runs interleaved; reports the speed ratio
  (target: >= 20) and the largest difference of the group medians.

Scenario inputs come from :mod:`benchmarks.scenarios` (cached like the main
suite in ``benchmarks/results/cache``). Medians of ``--repeat`` runs are
reported; the machine may be shared, so compare ratios, not absolute times.

Usage::

    python -m benchmarks.bench_metrics                       # activity9k and orf72k, 3 repeats
    python -m benchmarks.bench_metrics --what replicating --repeat 5
    python -m benchmarks.bench_metrics --scale 0.1 --repeat 1  # smoke test
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALL_METRICS = [
    "roc_auc",
    "precision@1",
    "precision@5",
    "precision@10",
    "recall@10",
    "precision@R",
    "recall@R",
]


def _child(job: dict) -> dict:
    """Run one measurement in this (fresh) process; returns the JSON-able result."""
    import numpy as np

    from benchmarks import _worker as w
    from benchmarks import scenarios as sc

    cache = Path(job["cache"])
    data = w.load_inputs(job["scenario"], job["scale"], job["seed"], cache)
    meta, feats = data.meta, data.feats
    if job["what"] == "metrics":
        import pairmap

        metrics = ALL_METRICS if job["tool"] == "all" else None

        def run(m, f):
            return pairmap.average_precision(
                m, f, **data.ap_kwargs(), metrics=metrics, progress_bar=False
            )
    else:
        same, diff = [sc.PERT], [sc.PLATE]
        if job["tool"] == "pairmap":
            import pairmap

            def run(m, f):
                res = pairmap.percent_replicating(m, f, same, diff, null_size=1000, seed=0)
                return res.groups.set_index(sc.PERT)["median_correlation"], res.score
        else:
            from copairs.replicating import correlation_test

            def run(m, f):
                res = correlation_test(
                    np.asarray(f), m, same, diff, n_samples=1000, progress_bar=False
                )
                return res.corr_df["median"], res.percent_score("right")[0]

    small = min(len(meta), 600)
    run(meta.iloc[:small].reset_index(drop=True), feats[:small])  # imports, numba compilation
    base_kb = w._status_kb("VmRSS")
    w._reset_peak()
    t0, c0 = time.perf_counter(), w._cpu_seconds()
    out = run(meta, feats)
    seconds, cpu = time.perf_counter() - t0, w._cpu_seconds() - c0
    result = {
        "seconds": seconds,
        "cpu": cpu,
        "working_mb": (w._status_kb("VmHWM") - base_kb) / 1024,
        "n": len(meta),
    }
    if job["what"] == "replicating":
        medians, score = out
        result["score"] = float(score)
        path = Path(job["tmp"]) / f"{job['tool']}_medians.json"
        path.write_text(medians.dropna().astype(float).to_json())
    return result


def _spawn(job: dict, timeout: float) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_metrics", "--child", json.dumps(job)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )
    if proc.returncode:
        raise RuntimeError(f"child {job} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pair(job, tools, repeat, timeout):
    runs = {t: [] for t in tools}
    for _ in range(repeat):
        for t in tools:  # interleaved: machine load drifts affect both alike
            runs[t].append(_spawn({**job, "tool": t}, timeout))
    return runs


def _median(runs, key):
    return statistics.median(r[key] for r in runs)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--what", default="metrics,replicating")
    p.add_argument(
        "--scenarios",
        default="activity9k,orf72k",
        help="scenarios for the metrics pass (replicating uses activity9k)",
    )
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--cache", default=str(ROOT / "benchmarks" / "results" / "cache"))
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return
    what = args.what.split(",")
    rows, summary = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        base = dict(scale=args.scale, seed=args.seed, cache=args.cache, tmp=tmp)
        if "metrics" in what:
            for name in args.scenarios.split(","):
                runs = _pair(
                    {**base, "what": "metrics", "scenario": name},
                    ["ap", "all"],
                    args.repeat,
                    args.timeout,
                )
                ap_s, all_s = _median(runs["ap"], "seconds"), _median(runs["all"], "seconds")
                summary[f"metrics/{name}"] = runs
                rows.append(
                    f"| {name} | AP only vs AP + {len(ALL_METRICS)} metrics | "
                    f"{ap_s:.2f} s | {all_s:.2f} s | {all_s / ap_s:.3f} (target <= 1.5) | "
                    f"{_median(runs['ap'], 'working_mb'):.0f} / "
                    f"{_median(runs['all'], 'working_mb'):.0f} MB |"
                )
        if "replicating" in what:
            runs = _pair(
                {**base, "what": "replicating", "scenario": "activity9k"},
                ["pairmap", "copairs"],
                args.repeat,
                args.timeout,
            )
            pm, cp = _median(runs["pairmap"], "seconds"), _median(runs["copairs"], "seconds")
            ours = json.loads((Path(tmp) / "pairmap_medians.json").read_text())
            theirs = json.loads((Path(tmp) / "copairs_medians.json").read_text())
            diff = max(abs(ours[k] - theirs[k]) for k in theirs)
            summary["replicating/activity9k"] = runs
            rows.append(
                f"| activity9k | percent replicating: pairmap vs copairs | {pm:.2f} s | "
                f"{cp:.2f} s | {cp / pm:.1f}x faster (target >= 20) | "
                f"{_median(runs['pairmap'], 'working_mb'):.0f} / "
                f"{_median(runs['copairs'], 'working_mb'):.0f} MB |"
            )
            rows.append(
                f"|  | scores {runs['pairmap'][0]['score']:.4f} (pairmap) vs "
                f"{runs['copairs'][0]['score']:.4f} (copairs, other random null); max "
                f"median diff {diff:.1e} over {len(theirs)} groups | | | | |"
            )
    print(
        f"median of {args.repeat} runs, scale {args.scale}, machine shared; working memory = "
        "peak RSS - RSS before the call\n"
    )
    print("| scenario | comparison | time A | time B | ratio | working A / B |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    out = Path(args.cache).parent / "bench_metrics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
