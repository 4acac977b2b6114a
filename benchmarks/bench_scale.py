"""Ten million profiles from a memory-mapped file: working memory and time (issue 11).

Writes a ``plates1m``-style screen scaled to ~10^7 profiles (26,042 plates of 368
treated wells + 16 DMSO controls, replicates on the four plates of a block, 300
float32 features: a 12 GB ``.npy`` file), then times, in a fresh process,
``pairmap.average_precision(meta, "<file>.npy", ...)`` with per-plate negatives.
The features are memory-mapped and read block by block, so the process never
holds the file; working memory is peak RSS minus RSS before the call (metadata
loaded, kernels warmed up), as in the suite. The file is deleted afterwards
unless ``--keep``.

Usage::

    python -m benchmarks.bench_scale --dir /work/tmp --plates 26042
    python -m benchmarks.bench_scale --plates 100      # a quick smoke run

Examples
--------
>>> meta = screen_meta(2)
>>> len(meta), int((meta["Metadata_pert"] < 0).sum())
(768, 32)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

PLATE, PERT, REFIDX = "Metadata_Plate", "Metadata_pert", "Metadata_Reference_Index"
TREATED, CONTROLS, FEATURES, CHUNK = 368, 16, 300, 65_536


def screen_meta(n_plates: int, seed: int = 0) -> pd.DataFrame:
    """Integer metadata: plates in blocks of four, each perturbation once per block plate."""
    n_plates -= n_plates % 4 if n_plates >= 4 else 0
    n_plates = max(n_plates, 4)
    wells = TREATED + CONTROLS
    plate = np.repeat(np.arange(n_plates, dtype=np.int32), wells)
    slot = np.tile(np.arange(wells, dtype=np.int64), n_plates)
    pert = np.where(slot < TREATED, (plate // 4).astype(np.int64) * TREATED + slot, -1)
    rng = np.random.default_rng(seed)
    for start in range(0, len(plate), wells * 1024):  # shuffle wells within plates
        stop = start + wells * 1024
        block = pert[start:stop].reshape(-1, wells)
        pert[start:stop] = rng.permuted(block, axis=1).reshape(-1)
    refidx = np.where(pert < 0, np.arange(len(pert)), -1)
    return pd.DataFrame({PLATE: plate, PERT: pert, REFIDX: refidx})


def write_features(path: Path, meta: pd.DataFrame, seed: int = 0) -> None:
    """float32 noise + plate effect + perturbation effect, written chunk by chunk."""
    n = len(meta)
    rng = np.random.default_rng([seed, 1])
    directions = rng.standard_normal((2048, FEATURES), dtype=np.float32)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    root_d = np.float32(np.sqrt(FEATURES))
    plate = meta[PLATE].to_numpy()
    pert = meta[PERT].to_numpy()
    tmp = path.with_suffix(".partial")
    with open(tmp, "wb") as fh:
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f4", "fortran_order": False, "shape": (n, FEATURES)}
        )
        for k, start in enumerate(range(0, n, CHUNK)):
            stop = min(n, start + CHUNK)
            r = np.random.default_rng([seed, 2, k])
            chunk = r.standard_normal((stop - start, FEATURES), dtype=np.float32)
            chunk += np.float32(0.15) * root_d * directions[plate[start:stop] % 2048]  # plate
            p = pert[start:stop]
            active = (p >= 0) & (p % 5 < 2)  # 40% of perturbations active
            strength = np.float32(0.3) + (p[active] % 97).astype(np.float32) / np.float32(80)
            chunk[active] += (strength * root_d)[:, None] * directions[(p[active] * 7) % 2048]
            chunk.tofile(fh)
    os.replace(tmp, path)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return -1


def measure(meta_path: str, feats_path: str, max_memory: str) -> dict:
    """One timed call in this (fresh) process."""
    import pairmap

    meta = pd.read_parquet(meta_path)
    kw = dict(
        pos_sameby=[PERT, REFIDX],
        pos_diffby=[],
        neg_sameby=[PLATE],
        neg_diffby=[PERT, REFIDX],
        progress_bar=False,
        max_memory=max_memory,
    )
    small = meta.iloc[: 8 * (TREATED + CONTROLS)].reset_index(drop=True)
    pairmap.average_precision(small, np.load(feats_path, mmap_mode="r")[: len(small)], **kw)
    baseline = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    t0, c0 = time.perf_counter(), sum(os.times()[:2])
    res = pairmap.average_precision(meta, feats_path, **kw)
    wall, cpu = time.perf_counter() - t0, sum(os.times()[:2]) - c0
    peak = _status_kb("VmHWM")
    return {
        "profiles": len(meta),
        "scored": int(res["average_precision"].notna().sum()),
        "mean_ap": float(res["average_precision"].mean()),
        "seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "baseline_gb": round(baseline / 2**20, 3),
        "peak_gb": round(peak / 2**20, 3),
        "working_gb": round((peak - baseline) / 2**20, 3),
        "max_memory": max_memory,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--plates", type=int, default=26_042)
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--max-memory", default="1GB")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--measure", nargs=2, metavar=("META", "FEATS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(*args.measure, args.max_memory)))
        return 0
    work = Path(args.dir) / f"pairmap_scale_{args.plates}"
    work.mkdir(parents=True, exist_ok=True)
    meta_path, feats_path = work / "meta.parquet", work / "feats.npy"
    try:
        t0 = time.perf_counter()
        meta = screen_meta(args.plates)
        meta.to_parquet(meta_path)
        write_features(feats_path, meta)
        print(
            f"wrote {len(meta):,} x {FEATURES} float32 ({feats_path.stat().st_size / 1e9:.1f} GB)"
            f" in {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        del meta
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.bench_scale",
                "--measure",
                str(meta_path),
                str(feats_path),
                "--max-memory",
                args.max_memory,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode:
            print(out.stderr, file=sys.stderr)
            return out.returncode
        print(out.stdout.strip())
    finally:
        if not args.keep:
            for p in (meta_path, feats_path, feats_path.with_suffix(".partial")):
                p.unlink(missing_ok=True)
            work.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
