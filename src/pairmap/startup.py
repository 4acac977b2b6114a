"""Compile the kernels ahead of time, and announce the one-time compile.

pairmap's kernels are compiled by numba on first use and cached on disk
(``__pycache__`` next to the kernels, or ``$NUMBA_CACHE_DIR``), so only the very
first run in a new environment pays the compile (tens of seconds); later
processes load the cached machine code. :func:`warmup` (``pairmap warmup`` on
the command line) does that compile up front, e.g. right after installation or
in a container build. :func:`ensure_compiled` is called by the public entry
points before their progress bars start: when the kernels for the input's
dtype are not in the cache it logs ``compiling kernels, first run only`` and
compiles them on a tiny input, so the compile never counts in an ETA.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["ensure_compiled", "kernels_cached", "warmup"]

_lock = threading.RLock()
_ready: set[str] = set()
_compiling = False  # True while this module compiles (its own calls announce nothing)


def _dispatchers(dtype: str | None):
    """(dispatcher, needle) pairs whose cached signatures show a kernel set is compiled."""
    from ._kernels import nulls as N
    from ._kernels import permutation as P
    from ._kernels import retrieval as R
    from ._kernels import rowstats as RS

    if dtype is None:
        return [(N.sorted_mean, None), (N.enumerate_null_aps, None), (P.member_scores, None)]
    needle = f"Array({dtype}, 2, 'C'"
    return [
        (R.collect_direct, needle),
        (R.rank_dense, needle),
        (R.score_block, None),
        (RS.row_stats, needle),
        (RS.row_stats_transposed, needle),
    ]


def kernels_cached(dtype: str | None = "float64") -> bool:
    """Whether the on-disk cache holds the kernels for ``dtype`` features.

    Parameters
    ----------
    dtype : {"float32", "float64"} or None
        Feature dtype of the AP kernels; None asks about the null kernels.

    Returns
    -------
    bool
        True also when the cache cannot be inspected (nothing is announced then).

    Examples
    --------
    >>> isinstance(kernels_cached("float32"), bool)
    True
    """
    for disp, needle in _dispatchers(dtype):
        if disp.signatures and (needle is None or any(needle in str(s) for s in disp.signatures)):
            continue  # already loaded in this process
        try:
            index = disp._cache._cache_file._load_index()
        except Exception:  # noqa: BLE001 - numba internals: never fail because of them
            return True
        if not any(needle is None or needle in str(key[0]) for key in index):
            return False
    return True


def _tiny_screen(dtype, seed: int = 0):
    """160 profiles: 75 pairs of replicates and 10 controls, big enough for every path."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.repeat(np.arange(75), 2).astype(str), np.full(10, "ctl")])
    meta = pd.DataFrame({"pert": labels, "plate": np.arange(160) % 2})
    meta["ref"] = np.where(labels == "ctl", np.arange(160), -1)
    X = rng.standard_normal((160, 8)).astype(dtype)
    return meta, X


def _compile(dtype: str | None) -> None:
    from ._small import compiled_only
    from .engine import average_precision
    from .features import FeatureSource
    from .significance import mean_average_precision

    meta, X = _tiny_screen(np.float64 if dtype is None else dtype)
    FeatureSource(np.asfortranarray(X)).scan()  # row statistics read through the transpose
    cols = ["pert", "ref"]
    with compiled_only():  # a tiny screen would otherwise take the NumPy path
        ap = average_precision(meta, X, cols, [], [], cols, progress_bar=False)
        average_precision(meta, X, cols, [], ["plate"], cols, progress_bar=False)  # sparse scans
        if dtype is None or dtype == "float64":
            mean_average_precision(
                ap, ["pert"], null_size=100, threshold=0.05, seed=0, cache=False, progress_bar=False
            )


def ensure_compiled(dtype: str | None) -> None:
    """Compile the kernels for ``dtype`` now (announced) if the cache lacks them.

    The null kernels are compiled in the same go (the next step of almost every
    run), so a first run announces its compile once, whatever it calls next.

    Parameters
    ----------
    dtype : {"float32", "float64"} or None
        Feature dtype of the AP kernels; None for the null kernels only.

    Examples
    --------
    >>> ensure_compiled("float64")  # a no-op once the kernels are cached
    """
    global _compiling
    if str(dtype) in _ready:
        return
    with _lock:
        if str(dtype) in _ready or _compiling:  # _compile calls back into the entry points
            return
        wanted = [dtype] if dtype is None else [dtype, None]
        missing = [d for d in wanted if str(d) not in _ready and not kernels_cached(d)]
        _ready.update(str(d) for d in wanted)
        if not missing:
            return
        logger.warning(
            "compiling kernels, first run only (about half a minute; cached on disk "
            "afterwards; `pairmap warmup` compiles ahead)"
        )
        start = time.perf_counter()
        _compiling = True
        try:
            for d in missing:
                _compile(d)
        except Exception:
            _ready.difference_update(str(d) for d in missing)
            raise
        finally:
            _compiling = False
        logger.warning("kernels compiled in %.0f s", time.perf_counter() - start)


def warmup(dtypes: Sequence[str] = ("float32", "float64")) -> float:
    """Compile (or load) every kernel for the given feature dtypes; seconds taken.

    Parameters
    ----------
    dtypes : sequence of {"float32", "float64"}
        Feature dtypes to prepare.

    Returns
    -------
    float
        Wall-clock seconds (a fraction of a second when the cache was complete).

    Examples
    --------
    >>> warmup(["float64"]) >= 0
    True
    """
    bad = [d for d in dtypes if d not in ("float32", "float64")]
    if bad:
        raise ValueError(f"dtypes must be 'float32' and/or 'float64', got {bad}")
    start = time.perf_counter()
    with _lock:
        _ready.update(str(d) for d in (*dtypes, None))
        for dtype in (*dtypes, None):
            _compile(dtype)
    return time.perf_counter() - start
