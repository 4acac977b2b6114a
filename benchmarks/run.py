"""Side-by-side benchmark of pairmap and copairs (see benchmarks/README.md).

Usage::

    python -m benchmarks.run [--scenarios lincs,activity9k,...] [--repeat 3]
        [--tools pairmap,copairs] [--out benchmarks/results] [--memory-limit-gb 20]
        [--timeout SECONDS]

Every measurement runs in its own subprocess (``benchmarks/_worker.py``), one at a time.
The parent polls the worker's resident memory every 20 ms and kills it when it exceeds
``--memory-limit-gb`` (reported as ``OOM (> X GB)``) or when the machine's available
memory drops under 1.5 GB (to protect other processes), and kills it after ``--timeout`` seconds (``timeout``).
Results go to ``<out>/runs.csv`` (one row per run), ``<out>/summary.csv`` and
``<out>/summary.md`` (the table that is also printed).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCENARIOS = [
    "lincs",
    "activity9k",
    "lincs_perm",
    "activity9k_perm",
    "orf72k",
    "ctrl100k",
    "activity110k",
    "plates1m",
    "null1m",
    "consistency20k",
]
POLL_S = 0.02
MIN_AVAILABLE_GB = 1.5


def _out(msg: str = "") -> None:
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def _tool_available(tool: str, env: dict[str, str]) -> bool:
    code = {
        "pairmap": "import pairmap; pairmap.average_precision",
        "copairs": "import copairs.map",
    }[tool]
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, cwd=ROOT)
    return r.returncode == 0


def _worker_env(threads: int, pairmap_src: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    src = str(pairmap_src or ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), src, *filter(None, [env.get("PYTHONPATH")])])
    for var in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "BLIS_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "NUMBA_NUM_THREADS",
    ):
        env[var] = str(threads)
    env.setdefault("TQDM_DISABLE", "1")
    return env


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants, in kB (0 when gone)."""
    total, stack, seen = 0, [pid], set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    stack.extend(int(c) for c in fh.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
            continue
    return total


def _available_gb() -> float:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    return float("inf")


def run_worker(
    args: list[str], env: dict, limit_gb: float, timeout: float | None, result: Path
) -> dict:
    """Run one worker under the memory cap and timeout; return its JSON or a status."""
    result.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "benchmarks._worker", *args, "--result", str(result)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
    )
    limit_kb = limit_gb * 2**20
    sampled_peak_kb, killed = 0, None
    try:
        while proc.poll() is None:
            rss = _tree_rss_kb(proc.pid)
            sampled_peak_kb = max(sampled_peak_kb, rss)
            if rss > limit_kb:
                killed = f"OOM (> {limit_gb:g} GB)"
            elif _available_gb() < MIN_AVAILABLE_GB:
                killed = f"OOM (machine < {MIN_AVAILABLE_GB} GB free at {rss / 2**20:.1f} GB)"
            elif timeout is not None and time.perf_counter() - t0 > timeout:
                killed = f"timeout (> {timeout:g} s)"
            if killed:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    finally:
        _, stderr = proc.communicate()
    elapsed = time.perf_counter() - t0
    base = {"process_s": elapsed, "sampled_peak_gb": sampled_peak_kb / 2**20}
    if killed:
        return {**base, "status": killed}
    if proc.returncode != 0 or not result.exists():
        if proc.returncode == -signal.SIGKILL:
            status = "killed (SIGKILL: kernel OOM?)"
        else:
            status = "error"
        tail = (stderr or "").strip().splitlines()[-3:]
        return {**base, "status": status, "error": " | ".join(tail)}
    return {**base, "status": "ok", **json.loads(result.read_text())}


def _fmt_s(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "-"
    if x < 0.01:
        return f"{x * 1000:.2g} ms"
    if x < 100:
        return f"{x:.3g} s"
    return f"{x:.0f} s"


def _fmt_gb(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "-"
    if x < 1:
        return f"{x * 1024:.0f} MB"
    return f"{x:.2f} GB"


def _fmt_ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or not b:
        return "-"
    return f"{a / b:.2g}"


def _median(runs: list[dict], key: str) -> float | None:
    vals = [r[key] for r in runs if r.get("status") == "ok" and r.get(key) is not None]
    return statistics.median(vals) if vals else None


def _tool_cells(runs: list[dict]) -> tuple[str, dict]:
    """Status text (or '') and medians of one tool's runs on one scenario."""
    ok = [r for r in runs if r["status"] == "ok"]
    med = {k: _median(runs, k) for k in ("wall_s", "cpu_s", "peak_rss_gb", "working_gb")}
    if not runs:
        return "not run", med
    if not ok:
        return runs[0]["status"], med
    return "", med


def _compare(saved: dict[str, Path]) -> str:
    """Max |difference| between the two tools' saved AP (or group p-value) values."""
    if len(saved) < 2 or not all(p.exists() for p in saved.values()):
        return "-"
    a, b = (pd.read_parquet(p).set_index("key")["value"] for p in saved.values())
    a, b = a[a.notna()], b[b.notna()]
    common = a.index.intersection(b.index)
    only = len(a) + len(b) - 2 * len(common)
    diff = float((a[common] - b[common]).abs().max()) if len(common) else float("nan")
    text = f"{diff:.1e}"
    return text + (f" ({only} non-NaN rows in one tool only)" if only else "")


def summarize(prep: dict, runs: dict, diffs: dict, tools: list[str]) -> list[dict]:
    rows = []
    for name, info in prep.items():
        row = {
            "scenario": name,
            "profiles": info.get("n_profiles"),
            "features": info.get("n_features"),
            "dot_products": info.get("n_pairs"),
            "gemm_floor_s": info.get("floor_s"),
        }
        meds = {}
        for tool in tools:
            status, med = _tool_cells(runs.get((name, tool), []))
            meds[tool] = med
            row[f"{tool}_status"] = status or "ok"
            for k, v in med.items():
                row[f"{tool}_{k}"] = v
        if "pairmap" in meds and "copairs" in meds:
            p, c = meds["pairmap"], meds["copairs"]
            row["time_ratio"] = p["wall_s"] / c["wall_s"] if p["wall_s"] and c["wall_s"] else None
            row["working_ratio"] = (
                p["working_gb"] / c["working_gb"] if p["working_gb"] and c["working_gb"] else None
            )
        row["max_abs_diff"] = diffs.get(name, "-")
        if "n_null_configs" in info:
            row["dot_products"] = None
            row["note"] = (
                f"{info['n_ap_rows']} APs, {info['n_groups']} groups, "
                f"{info['n_null_configs']} null configs (AP table by {info['ap_table_by']})"
            )
        rows.append(row)
    return rows


def markdown(rows: list[dict], tools: list[str], limit_gb: float) -> str:
    head = ["scenario", "profiles", "dot products", "GEMM floor"]
    for t in tools:
        head += [f"{t} time", f"{t} CPU", f"{t} peak RSS", f"{t} working"]
    both = "pairmap" in tools and "copairs" in tools
    if both:
        head += ["time ratio p/c", "working ratio p/c", "max abs diff"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r["scenario"],
            f"{r['profiles']:,}" if r["profiles"] else "-",
            f"{r['dot_products']:,}" if r.get("dot_products") else "-",
            _fmt_s(r.get("gemm_floor_s")),
        ]
        for t in tools:
            status = r[f"{t}_status"]
            if status != "ok":
                cells += [status, "-", "-", "-"]
            else:
                cells += [
                    _fmt_s(r[f"{t}_wall_s"]),
                    _fmt_s(r[f"{t}_cpu_s"]),
                    _fmt_gb(r[f"{t}_peak_rss_gb"]),
                    _fmt_gb(r[f"{t}_working_gb"]),
                ]
        if both:
            tr, wr = r.get("time_ratio"), r.get("working_ratio")
            cells += [
                f"{tr:.2g}" if tr else "-",
                f"{wr:.2g}" if wr else "-",
                r.get("max_abs_diff", "-"),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {r['scenario']}: {r['note']}" for r in rows if r.get("note")]
    return "\n".join(lines + ([""] + notes if notes else []))


def _environment(threads: int, limit_gb: float, repeat: str) -> str:
    import importlib.metadata as md

    def ver(pkg):
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return "not installed"

    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        rev = "?"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.0f} GB"
    except OSError:
        pass
    return (
        f"{dt.datetime.now().isoformat(timespec='seconds')}; {cpu}; {threads} threads; "
        f"{mem} RAM; memory cap {limit_gb:g} GB; median of up to {repeat} runs; "
        f"repository HEAD {rev}; copairs {ver('copairs')}; numpy {ver('numpy')}; "
        f"pandas {ver('pandas')}; python {platform.python_version()}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="pairmap vs copairs benchmark")
    p.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS))
    p.add_argument("--tools", default="pairmap,copairs")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument(
        "--repeat-heavy",
        type=int,
        default=None,
        help="repeats for heavy scenarios (ctrl100k, activity110k, plates1m, null1m); "
        "default: --repeat",
    )
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--memory-limit-gb", type=float, default=20.0)
    p.add_argument("--timeout", type=float, default=None, help="seconds per worker run")
    p.add_argument("--threads", type=int, default=None, help="default: all available CPUs")
    p.add_argument("--scale", type=float, default=1.0, help="shrink synthetic scenarios")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-warmup", action="store_true", help="time first calls (JIT) too")
    p.add_argument(
        "--pairmap-src",
        type=Path,
        default=None,
        help="directory holding the pairmap package to time (default: <repo>/src); e.g. a "
        "'git archive <rev> src' export, to benchmark a fixed revision",
    )
    p.add_argument(
        "--merge-previous",
        action="store_true",
        help="keep the runs of tools not in --tools from <out>/runs.csv in the table",
    )
    args = p.parse_args(argv)

    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    bad = [t for t in tools if t not in ("pairmap", "copairs")]
    if bad:
        p.error(f"unknown tool(s) {bad}; use pairmap and/or copairs")
    if args.repeat < 1 or (args.repeat_heavy is not None and args.repeat_heavy < 1):
        p.error("--repeat and --repeat-heavy must be at least 1")

    threads = args.threads or len(os.sched_getaffinity(0))
    env = _worker_env(threads, args.pairmap_src)
    out = args.out.resolve()
    cache = out / "cache"
    tmp = out / "tmp"
    for d in (out, cache, tmp):
        d.mkdir(parents=True, exist_ok=True)

    available = [t for t in tools if _tool_available(t, env)]
    for t in set(tools) - set(available):
        _out(f"[skip] {t} is not importable; its columns will read 'not installed'")
    common = ["--cache", str(cache), "--scale", f"{args.scale:g}", "--seed", str(args.seed)]
    if args.no_warmup:
        common.append("--no-warmup")

    prep: dict[str, dict] = {}
    runs: dict[tuple[str, str], list[dict]] = {}
    diffs: dict[str, str] = {}
    runs_csv = out / "runs.csv"
    run_rows: list[dict] = []
    if args.merge_previous and runs_csv.exists():
        for r in pd.read_csv(runs_csv).to_dict("records"):
            if r["tool"] not in tools and r["scenario"] in names:
                r = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
                run_rows.append(r)
                runs.setdefault((r["scenario"], r["tool"]), []).append(r)
    requested = list(tools)
    merged = {t for (_, t) in runs} - set(requested)
    tools = [t for t in ("pairmap", "copairs") if t in requested or t in merged]
    for name in names:
        _out(f"[{name}] preparing inputs")
        info = run_worker(
            ["--scenario", name, "--tool", "prepare", *common],
            env,
            args.memory_limit_gb,
            None,
            tmp / "prepare.json",
        )
        if info["status"] != "ok":
            _out(f"[{name}] preparation failed: {info['status']} {info.get('error', '')}")
            prep[name] = {"n_profiles": None}
            continue
        prep[name] = info
        saved: dict[str, Path] = {
            t: tmp / f"{name}_{t}.parquet" for t in merged if (tmp / f"{name}_{t}.parquet").exists()
        }
        n_rep = args.repeat
        if SCENARIOS[name].heavy and args.repeat_heavy is not None:
            n_rep = args.repeat_heavy
        for rep in range(n_rep):
            for tool in tools:
                key = (name, tool)
                done = runs.setdefault(key, [])
                if tool not in available:
                    continue
                if done and done[-1]["status"] != "ok":
                    continue  # OOM/timeout/error once: do not repeat
                wargs = ["--scenario", name, "--tool", tool, *common]
                if rep == 0:
                    saved[tool] = tmp / f"{name}_{tool}.parquet"
                    saved[tool].unlink(missing_ok=True)
                    wargs += ["--save", str(saved[tool])]
                r = run_worker(wargs, env, args.memory_limit_gb, args.timeout, tmp / "run.json")
                r.update(scenario=name, tool=tool, repeat=rep)
                done.append(r)
                run_rows.append(r)
                msg = (
                    f"{r['wall_s']:.2f} s, working {r['working_gb']:.2f} GB"
                    if r["status"] == "ok"
                    else f"{r['status']} {r.get('error', '')}"
                )
                _out(f"[{name}] {tool} run {rep + 1}/{n_rep}: {msg}")
        diffs[name] = _compare(saved)
        _write_runs(runs_csv, run_rows)

    for t in requested:
        if t not in available:
            for name in names:
                runs[(name, t)] = [{"status": "not installed"}]
    rows = summarize(prep, runs, diffs, tools)
    table = markdown(rows, tools, args.memory_limit_gb)
    reps = f"{args.repeat}" + (
        f" ({args.repeat_heavy} for heavy scenarios)" if args.repeat_heavy is not None else ""
    )
    header = _environment(threads, args.memory_limit_gb, reps)
    if args.pairmap_src:
        header += f"; pairmap imported from {args.pairmap_src} (not the working tree)"
    if merged:
        header += f"; {', '.join(sorted(merged))} runs merged from an earlier invocation"
    text = f"# pairmap vs copairs\n\n{header}\n\n{table}\n"
    (out / "summary.md").write_text(text)
    _write_runs(out / "summary.csv", rows)
    _out("")
    _out(text)
    _out(f"written: {out / 'summary.md'}, {out / 'summary.csv'}, {runs_csv}")
    return 0


def _write_runs(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    sys.exit(main())
