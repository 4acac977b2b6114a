"""Cache of null distributions, shared between runs, processes and hosts.

Null AP distributions depend only on ``(method, seed, null_size, n_total,
n_pos, algorithm_version)``, a :class:`NullKey`. They are expensive to draw and
reused across analyses, so pairmap keeps them in a cache:

* :class:`FilesystemCache` -- one verified binary file per key in a directory
  (default ``$PAIRMAP_CACHE_DIR`` or the user cache directory); atomic,
  lock-free, safe for concurrent processes and hosts, self-healing on
  corruption, never fatal when the disk is read-only or full;
* :class:`MemoryCache` -- a bounded in-process LRU;
* :func:`open_cache` -- turn a user's ``cache=`` argument into one of these.

The guarantees are documented in ``docs/cache.md``.

Examples
--------
>>> import tempfile, numpy as np
>>> from pairmap.cache import NullKey, open_cache
>>> cache = open_cache(tempfile.mkdtemp())
>>> key = NullKey("sampled", seed=0, null_size=4, n_total=20, n_pos=3, algorithm_version=1)
>>> cache.get_or_compute(key, lambda: np.linspace(0, 1, 4)).shape
(4,)
"""

from .base import CacheWarning, NullCache, parse_size
from .filesystem import FilesystemCache, default_cache_dir, open_cache
from .keys import CorruptEntryError, NullKey
from .memory import MemoryCache

__all__ = [
    "CacheWarning",
    "CorruptEntryError",
    "FilesystemCache",
    "MemoryCache",
    "NullCache",
    "NullKey",
    "default_cache_dir",
    "open_cache",
    "parse_size",
]
