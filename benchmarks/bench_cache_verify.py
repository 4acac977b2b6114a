"""What verifying a cache hit costs: read vs spot check vs computing the null.

Every cache hit recomputes 64 randomly chosen values of the entry
(``pairmap.cache.base.spot_check``) before trusting it. This script measures,
for a few list shapes and null sizes, the median time of a plain verified read
(header, checksum, payload), of the spot check, and of computing the null from
scratch (what a hit saves), all in one process on the same machine, and prints
a Markdown table with the ratios.

Usage::

    PYTHONPATH=src python benchmarks/bench_cache_verify.py
    PYTHONPATH=src python benchmarks/bench_cache_verify.py --repeat 50
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

SHAPES = [
    (3, 1003, 10_000),
    (10, 5_000, 10_000),
    (60, 400, 10_000),
    (3, 1003, 1_000_000),
    (2, 30, 10_000),
]


def _median_time(func, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)

    from pairmap._null_check import recompute_for_key
    from pairmap.cache import FilesystemCache, NullKey
    from pairmap.cache.base import spot_check
    from pairmap.nulls import ALGORITHM_VERSION, exact_size, null_distribution

    print(
        "| k | n | null_size | method | read ms | spot check ms | compute ms "
        "| check / read | check / compute |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        cache = FilesystemCache(folder)
        for k, n, size in SHAPES:
            method = "exact" if exact_size(k, n, size) is not None else "sampled"
            null_distribution(k, n, null_size=size, cache=cache)  # warm up, store
            key = NullKey(method, 0, size, n, k, ALGORITHM_VERSION)
            values, check = cache.get(key), recompute_for_key(key)
            spot_check(values, check)  # compile
            read = _median_time(lambda key=key: cache.get(key), args.repeat)
            spot = _median_time(lambda v=values, c=check: spot_check(v, c), args.repeat)
            compute = _median_time(
                lambda k=k, n=n, size=size: null_distribution(
                    k, n, null_size=size, cache=False, n_jobs=1
                ),
                max(3, args.repeat // 5),
            )
            print(
                f"| {k} | {n} | {size} | {method} | {read * 1e3:.3f} | {spot * 1e3:.3f} "
                f"| {compute * 1e3:.1f} | {spot / read:.2f} | {spot / compute:.4f} |"
            )


if __name__ == "__main__":
    main()
