"""Benchmark: HTML report of a 100,000-profile screen (``pairmap report``), and of the LINCS plate.

Prepares the result tables once (pairmap activity AP + mAP on a simulated
screen: ``--perturbations`` x 4 replicates on plates of 384 wells with 16
controls each; ~100,000 profiles by default), writes them as Parquet with a
run-info sidecar, then times ``pairmap report DIR`` in a fresh child process
(reading the tables, building every figure, writing report.html and the static
PNG/SVG copies) ``--repeat`` times. The same is done for the packaged LINCS
plate as a reference point: on a shared machine the ratio of the two times is
more stable than either time. copairs has no report, so there is no
side-by-side tool.

Prints wall time (median), CPU time (user + system of the child), peak RSS of
the child, the report size, and the machine's load average.

Usage::

    PYTHONPATH=src python benchmarks/bench_report.py                 # 100k profiles
    PYTHONPATH=src python benchmarks/bench_report.py --perturbations 2000 --repeat 1
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

CHILD = r"""
import resource, sys, time
start = time.perf_counter()
from pairmap.cli import main
code = main(["report", sys.argv[1], "--out", sys.argv[2], "--force"])
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
print(f"RESULT {code} {wall} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}")
"""


def prepare_simulated(folder: Path, n_perturbations: int, seed: int) -> int:
    """Activity AP + mAP of a simulated screen, written as pairmap demo would."""
    import pairmap
    from pairmap.report import make_run_info, run_info_json

    n_plates = max(4, -(-n_perturbations * 4 // (384 - 16)))
    meta, feats = pairmap.simulate_screen(
        n_perturbations=n_perturbations,
        n_replicates=4,
        n_plates=n_plates,
        n_features=50,
        n_active_features=10,
        fraction_active=0.3,
        seed=seed,
    )
    ref = "Metadata_Reference_Index"
    meta = pairmap.assign_reference_index(meta, "Metadata_Control", reference_col=ref)
    keys = ["Metadata_Perturbation", ref]
    rules = {
        "pos_sameby": keys,
        "pos_diffby": [],
        "neg_sameby": ["Metadata_Plate"],
        "neg_diffby": keys,
    }
    ap = pairmap.average_precision(meta, feats, **rules, progress_bar=False)
    treated = ap[~ap["Metadata_Control"].to_numpy(dtype=bool)].reset_index(drop=True)
    params = {"null_size": 1000, "seed": seed, "threshold": 0.05, "null": "shared"}
    maps = pairmap.mean_average_precision(
        treated, ["Metadata_Perturbation"], **params, progress_bar=False
    )
    folder.mkdir(parents=True, exist_ok=True)
    ap.to_parquet(folder / "ap_scores.parquet", index=False)
    maps.to_parquet(folder / "map_results.parquet", index=False)
    info = make_run_info(
        title=f"simulated screen, {len(meta):,} profiles",
        analysis="activity",
        data={"n_profiles": len(meta), "n_features": feats.shape[1]},
        average_precision=rules,
        mean_average_precision={"sameby": ["Metadata_Perturbation"], **params},
    )
    (folder / "run_info.json").write_text(run_info_json(info))
    return len(meta)


def prepare_lincs(folder: Path) -> int:
    from pairmap.demo import run_demo

    run_demo(folder, dataset="lincs", null_size=10000, progress_bar=False)
    for name in ("report.html", "map_plot.png"):
        (folder / name).unlink()
    return 384


def time_report(folder: Path, repeat: int) -> dict:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    out = folder / "bench_report.html"
    runs = []
    for _ in range(repeat):
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(folder), str(out)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT")), None)
        if proc.returncode != 0 or line is None:
            raise RuntimeError(f"report failed:\n{proc.stdout}\n{proc.stderr}")
        _, code, wall, cpu, rss_kb = line.split()
        runs.append((float(wall), float(cpu), int(rss_kb) * 1024))
    return {
        "wall": statistics.median(r[0] for r in runs),
        "cpu": statistics.median(r[1] for r in runs),
        "peak_rss": max(r[2] for r in runs),
        "size": out.stat().st_size,
        "figures": sorted(p.name for p in (folder / "bench_report_figures").iterdir()),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--perturbations",
        type=int,
        default=24_000,
        help="simulated perturbations (x 4 replicates + controls)",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--keep",
        metavar="DIR",
        default=None,
        help="folder for the tables and reports (default: a temporary one)",
    )
    args = parser.parse_args(argv)
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="pairmap-bench-"))
    rows = []
    for name, prepare in (
        ("lincs", lambda d: prepare_lincs(d)),
        ("simulated", lambda d: prepare_simulated(d, args.perturbations, args.seed)),
    ):
        folder = base / name
        t0 = time.perf_counter()
        n = prepare(folder) if not (folder / "ap_scores.parquet").exists() else None
        print(f"prepared {name} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        if n is None:
            import pandas as pd

            n = len(pd.read_parquet(folder / "ap_scores.parquet"))
        stats = time_report(folder, args.repeat)
        rows.append((name, n, stats))
    load = os.getloadavg()
    print(
        f"\nload average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} CPUs; "
        f"median of {args.repeat} runs; each run is a fresh `pairmap report DIR` process "
        "(imports, reading the tables, all figures, HTML + PNG/SVG)\n"
    )
    print("| results | profiles | wall | CPU | peak RSS | report.html | figures |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, n, s in rows:
        print(
            f"| {name} | {n:,} | {s['wall']:.2f} s | {s['cpu']:.2f} s | "
            f"{s['peak_rss'] / 2**20:.0f} MB | {s['size'] / 2**20:.2f} MB | "
            f"{len(s['figures'])} |"
        )
    ratio = rows[1][2]["wall"] / rows[0][2]["wall"]
    print(f"\n100k / LINCS wall-time ratio: {ratio:.2f}")
    json.dump(
        {name: {**s, "profiles": n} for name, n, s in rows},
        open(base / "bench_report.json", "w"),
        indent=1,
    )


if __name__ == "__main__":
    main()
