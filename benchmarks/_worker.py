"""One benchmark measurement in a fresh process (started by :mod:`benchmarks.run`).

Usage (normally only the runner calls this)::

    python -m benchmarks._worker --scenario orf72k --tool copairs --result out.json

Tools
-----
``prepare``
    Generate (or load) the scenario inputs, cache them, count the required dot products,
    time the GEMM floor and, for ``kind="map"`` scenarios, compute and cache the AP table
    of the base scenario (with pairmap when importable, else copairs).
``pairmap`` / ``copairs``
    Load the cached inputs, import the tool and warm it up on a one-block version of the
    scenario (so numba compilation and imports are not timed), record RSS, reset the
    high-water mark (``echo 5 > /proc/self/clear_refs``), run the tool once and record
    wall time, CPU time (all threads), peak RSS and RSS after the inputs were loaded.
``selftest-alloc`` / ``selftest-sleep``
    Allocate ``--selftest-gb`` GB, or sleep; used to exercise the runner's memory cap and
    timeout without running a real tool.

The result is one JSON object written to ``--result``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import scenarios as sc

log = logging.getLogger("benchmarks.worker")

_FLOOR_BLOCK = 4096
_PEAK_RESET_OK: bool | None = None  # None: not attempted


def _status_kb(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    m = re.search(rf"^{field}:\s+(\d+) kB", text, flags=re.MULTILINE)
    return int(m.group(1)) if m else -1


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not permitted."""
    global _PEAK_RESET_OK
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        _PEAK_RESET_OK = False
    else:
        _PEAK_RESET_OK = True
    return _PEAK_RESET_OK


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def cache_key(name: str, scale: float, seed: int) -> str:
    """Cache file stem: scenario, scale, seed and a hash of the generator source."""
    src = Path(sc.__file__).read_bytes()
    digest = hashlib.sha256(src).hexdigest()[:10]
    return f"{name}_x{scale:g}_s{seed}_{digest}"


def load_inputs(name: str, scale: float, seed: int, cache: Path | None):
    """Scenario inputs from ``cache`` (parquet + npy) or freshly generated (then cached)."""
    spec = sc.SCENARIOS[name]
    base = spec.base or name
    if base == "lincs" or cache is None:
        return sc.build(name, scale=scale, seed=seed)
    stem = cache / cache_key(base, scale, seed)
    meta_p, feats_p = stem.with_suffix(".meta.parquet"), stem.with_suffix(".feats.npy")
    if meta_p.exists() and feats_p.exists():
        return sc.ScenarioData(spec, pd.read_parquet(meta_p), np.load(feats_p))
    data = sc.build(name, scale=scale, seed=seed)
    cache.mkdir(parents=True, exist_ok=True)
    tmp_meta, tmp_feats = meta_p.with_suffix(".tmp"), feats_p.with_suffix(".tmp.npy")
    data.meta.to_parquet(tmp_meta)
    np.save(tmp_feats, data.feats)
    os.replace(tmp_meta, meta_p)
    os.replace(tmp_feats, feats_p)
    # return what later runs will load, so every run sees identical dtypes
    return sc.ScenarioData(spec, pd.read_parquet(meta_p), np.load(feats_p))


def ap_table_path(name: str, scale: float, seed: int, cache: Path) -> Path:
    spec = sc.SCENARIOS[name]
    return cache / (cache_key(spec.base, scale, seed) + ".ap.parquet")


def gemm_floor(n_pairs: int, d: int, repeat: int = 5) -> tuple[float, float]:
    """Seconds one float32 GEMM needs for ``n_pairs`` dot products of length ``d``.

    Times the best of ``repeat`` (4096 x d) @ (d x 4096) products and scales linearly, so
    the output never needs n_pairs floats of memory. Returns (floor seconds, GFLOP/s).
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((_FLOOR_BLOCK, d), dtype=np.float32)
    b = rng.standard_normal((d, _FLOOR_BLOCK), dtype=np.float32)
    out = np.empty((_FLOOR_BLOCK, _FLOOR_BLOCK), dtype=np.float32)
    np.matmul(a, b, out=out)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    per_pair = best / (_FLOOR_BLOCK * _FLOOR_BLOCK)
    return n_pairs * per_pair, 2.0 * d / per_pair / 1e9


def _ap_call(tool: str, multilabel: bool = False):
    if tool == "pairmap":
        import pairmap

        def run(meta, feats, kw):
            return pairmap.average_precision(meta, feats, **kw, progress_bar=False)

    else:
        if multilabel:
            from copairs.map.multilabel import average_precision
        else:
            from copairs.map import average_precision

        def run(meta, feats, kw):
            return average_precision(meta, feats, **kw, progress_bar=False)

    return run


def _map_call(tool: str, tmp: Path):
    """mAP callable; every call gets a fresh, empty on-disk null cache (cold cache for
    both tools: nothing is reused between runs, writing the cache is timed)."""
    counter = iter(range(1_000_000))
    if tool == "pairmap":
        import pairmap

        def run(ap, kw):
            cache_dir = tmp / f"pairmap_null_{next(counter)}"
            return pairmap.mean_average_precision(
                ap, **kw, cache=str(cache_dir), progress_bar=False
            )

    else:
        from copairs.map import mean_average_precision

        def run(ap, kw):
            cache_dir = tmp / f"copairs_null_{next(counter)}"
            return mean_average_precision(ap, **kw, progress_bar=False, cache_dir=cache_dir)

    return run


def _prepare(args, cache: Path) -> dict:
    data = load_inputs(args.scenario, args.scale, args.seed, cache)
    spec = data.spec
    out = {
        "n_profiles": len(data.meta),
        "n_features": int(data.feats.shape[1]),
    }
    if spec.kind == "map":
        path = ap_table_path(args.scenario, args.scale, args.seed, cache)
        if not path.exists():
            try:
                tool, run = "pairmap", _ap_call("pairmap")
            except (ImportError, AttributeError):
                tool, run = "copairs", _ap_call("copairs")
            ap = run(data.meta, data.feats, spec.ap_kwargs())
            ap.attrs = {}
            ap.to_parquet(path.with_suffix(".tmp"))
            os.replace(path.with_suffix(".tmp"), path)
            Path(str(path) + ".tool").write_text(tool)
        ap = pd.read_parquet(path)
        valid = ap["average_precision"].notna() & (ap["n_pos_pairs"] > 0)
        confs = ap.loc[valid, ["n_pos_pairs", "n_total_pairs"]].drop_duplicates()
        out.update(
            n_ap_rows=int(valid.sum()),
            n_null_configs=len(confs),
            n_groups=int(ap.loc[valid, list(spec.map_sameby)].drop_duplicates().shape[0]),
            ap_table_by=Path(str(path) + ".tool").read_text(),
            n_pairs=None,
            floor_s=None,
        )
        return out
    n_pairs = sc.required_dot_products(data)
    del data
    gc.collect()
    floor_s, gflops = gemm_floor(n_pairs, out["n_features"])
    out.update(n_pairs=n_pairs, floor_s=floor_s, gemm_gflops=gflops)
    return out


def _measure(args, cache: Path, tmp: Path) -> dict:
    spec = sc.SCENARIOS[args.scenario]
    if args.tool.startswith("selftest"):
        baseline = _status_kb("VmRSS")
        _reset_peak()
        t0, c0 = time.perf_counter(), _cpu_seconds()
        if args.tool == "selftest-alloc":
            block = np.ones(int(args.selftest_gb * 2**30) // 8)
            del block
        else:
            time.sleep(args.selftest_gb)
        return _result(t0, c0, baseline, None)

    if spec.kind == "perm":
        return _measure_perm(args, spec, cache, tmp)
    if spec.kind == "map":
        ap = pd.read_parquet(ap_table_path(args.scenario, args.scale, args.seed, cache))
        run = _map_call(args.tool, tmp)
        kw = spec.map_kwargs()
        if args.warmup:
            # same null size as the timed call, so the same (parallel) kernels get compiled;
            # the warm-up's null cache directory is not reused by the timed call
            run(ap.iloc[:400].copy(), kw)
        gc.collect()
        baseline = _status_kb("VmRSS")
        _reset_peak()
        t0, c0 = time.perf_counter(), _cpu_seconds()
        res = run(ap, kw)
        out = _result(t0, c0, baseline, len(res))
        if args.save:
            keys = res[list(spec.map_sameby)].astype(str).agg("|".join, axis=1)
            _save(args.save, keys.to_numpy(str), res["p_value"].to_numpy(np.float64))
        return out

    data = sc.label_lists(load_inputs(args.scenario, args.scale, args.seed, cache))
    run = _ap_call(args.tool, spec.multilabel is not None)
    kw = spec.ap_kwargs()
    if args.warmup:
        small = sc.build(args.scenario, scale=1e-9, seed=args.seed + 1)
        run(small.meta, small.feats, kw)
        del small
    gc.collect()
    baseline = _status_kb("VmRSS")
    _reset_peak()
    t0, c0 = time.perf_counter(), _cpu_seconds()
    res = run(data.meta, data.feats, kw)
    out = _result(t0, c0, baseline, len(res))
    if args.save:
        if spec.multilabel:  # long form; copairs leaves out rows without positives
            keys = (res[sc.PERT].astype(str) + "|" + res[spec.multilabel].astype(str)).to_numpy()
        else:
            keys = np.arange(len(res)).astype(str)
        _save(args.save, keys, res["average_precision"].to_numpy(float))
    return out


def _measure_perm(args, spec, cache: Path, tmp: Path) -> dict:
    """Time mAP p-values on an AP table computed in this process (untimed).

    pairmap uses ``null="permutation"`` (it needs the features the AP table was computed
    from, which only an in-process table carries); copairs uses its (only) null model.
    """
    data = load_inputs(args.scenario, args.scale, args.seed, cache)
    ap = _ap_call(args.tool)(data.meta, data.feats, spec.ap_kwargs())
    run = _map_call(args.tool, tmp)
    kw = spec.map_kwargs()
    if args.tool == "pairmap":
        kw["null"] = "permutation"
    if args.warmup:
        run(ap.iloc[: min(len(ap), 400)], kw)
    gc.collect()
    baseline = _status_kb("VmRSS")
    _reset_peak()
    t0, c0 = time.perf_counter(), _cpu_seconds()
    res = run(ap, kw)
    out = _result(t0, c0, baseline, len(res))
    if args.save:
        keys = res[list(spec.map_sameby)].astype(str).agg("|".join, axis=1)
        _save(args.save, keys.to_numpy(str), res["p_value"].to_numpy(np.float64))
    return out


def _save(path: Path, keys: np.ndarray, values: np.ndarray) -> None:
    """Keyed result values (row number or group key) for the runner's cross-check."""
    pd.DataFrame({"key": keys, "value": values}).to_parquet(path)


def _result(t0: float, c0: float, baseline_kb: int, n_rows: int | None) -> dict:
    wall = time.perf_counter() - t0
    cpu = _cpu_seconds() - c0
    peak_kb = _status_kb("VmHWM")
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "rss_inputs_gb": baseline_kb / 2**20,
        "peak_rss_gb": peak_kb / 2**20,
        "working_gb": max(0, peak_kb - baseline_kb) / 2**20,
        "n_result_rows": n_rows,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", required=True, choices=sorted(sc.SCENARIOS))
    p.add_argument(
        "--tool",
        required=True,
        choices=["prepare", "pairmap", "copairs", "selftest-alloc", "selftest-sleep"],
    )
    p.add_argument("--result", required=True, type=Path)
    p.add_argument("--cache", type=Path, default=None)
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", type=Path, default=None, help="save AP (or group p-values) as parquet")
    p.add_argument("--no-warmup", dest="warmup", action="store_false")
    p.add_argument("--selftest-gb", type=float, default=1.0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    cache = args.cache
    with tempfile.TemporaryDirectory(prefix="pairmap-bench-") as tmp:
        if args.tool == "prepare":
            out = _prepare(args, cache)
        else:
            out = _measure(args, cache, Path(tmp))
    out.update(scenario=args.scenario, tool=args.tool, peak_reset=_PEAK_RESET_OK)
    args.result.write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
