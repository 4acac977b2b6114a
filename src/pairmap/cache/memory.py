"""In-memory backend: a bounded, thread-safe LRU of null distributions."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from .base import _FORK_AWARE, NullCache, _check_key, parse_size, spot_check
from .keys import NullKey, as_null_array

__all__ = ["MemoryCache"]


class MemoryCache(NullCache):
    """Null cache held in this process's memory (tests, notebooks, one-off runs).

    Parameters
    ----------
    max_bytes : int, str or None
        Bound on the stored payload bytes; least recently used entries are
        dropped first. ``None``: unbounded.

    Examples
    --------
    >>> cache = MemoryCache(max_bytes="1MB")
    >>> key = NullKey("sampled", 0, 2, 10, 2, 1)
    >>> cache.put(key, [0.2, 0.4])
    True
    >>> cache.get(key)
    array([0.2, 0.4])
    """

    def __init__(self, max_bytes=None) -> None:
        self.max_bytes = parse_size(max_bytes)
        self._data: OrderedDict[NullKey, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        _FORK_AWARE.add(self)

    def __repr__(self) -> str:
        return f"MemoryCache(max_bytes={self.max_bytes!r}, entries={len(self._data)})"

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def get(self, key: NullKey) -> np.ndarray | None:
        """Return a copy of the array stored for ``key``, or ``None``.

        Examples
        --------
        >>> MemoryCache().get(NullKey("exact", 0, 0, 3, 1, 1)) is None
        True
        """
        _check_key(key)
        with self._lock:
            values = self._data.get(key)
            if values is None:
                return None
            self._data.move_to_end(key)
        return values.copy()

    def put(self, key: NullKey, array) -> bool:
        """Store a copy of ``array``; ``False`` if it alone exceeds ``max_bytes``.

        Examples
        --------
        >>> MemoryCache(max_bytes=8).put(NullKey("exact", 0, 0, 3, 1, 1), [0.5, 1.0])
        False
        """
        _check_key(key)
        values = np.array(as_null_array(array), dtype=np.float64, copy=True)
        if self.max_bytes is not None and values.nbytes > self.max_bytes:
            return False
        with self._lock:
            self._data[key] = values
            self._data.move_to_end(key)
            if self.max_bytes is not None:
                self._shrink(self.max_bytes)
        return True

    def reject(self, key: NullKey, reason: str) -> None:
        """Drop ``key``'s entry (its values failed a check) and warn.

        Examples
        --------
        >>> import warnings
        >>> cache, key = MemoryCache(), NullKey("exact", 0, 0, 3, 1, 1)
        >>> _ = cache.put(key, [0.5, 1.0])
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     cache.reject(key, "forged")
        >>> cache.get(key) is None
        True
        """
        with self._lock:
            self._data.pop(key, None)
        super().reject(key, reason)

    def _shrink(self, limit: int) -> tuple[int, int]:
        total = sum(v.nbytes for v in self._data.values())
        removed = freed = 0
        while self._data and total > limit:
            _, values = self._data.popitem(last=False)
            total -= values.nbytes
            removed += 1
            freed += values.nbytes
        return removed, freed

    def info(self) -> dict:
        """Summary: ``backend``, ``entries``, ``bytes``, ``max_bytes``.

        Examples
        --------
        >>> MemoryCache().info()["entries"]
        0
        """
        with self._lock:
            return {
                "backend": "memory",
                "entries": len(self._data),
                "bytes": int(sum(v.nbytes for v in self._data.values())),
                "max_bytes": self.max_bytes,
            }

    def verify(self, recompute=None) -> dict:
        """Check that every stored value is a 1-D float64 array (and spot check it).

        ``recompute`` is as for :meth:`FilesystemCache.verify`.

        Examples
        --------
        >>> MemoryCache().verify()["corrupt"]
        0
        """
        with self._lock:
            bad = [
                k
                for k, v in self._data.items()
                if v.ndim != 1
                or v.dtype != np.float64
                or (
                    recompute is not None
                    and recompute(k) is not None
                    and spot_check(v, recompute(k)) is not None
                )
            ]
            for key in bad:
                del self._data[key]
            n = len(self._data) + len(bad)
        return {
            "checked": n,
            "ok": n - len(bad),
            "corrupt": len(bad),
            "corrupt_files": [k.filename() for k in bad],
        }

    def prune(self, max_bytes=None) -> dict:
        """Drop least recently used entries until at most ``max_bytes`` remain.

        Examples
        --------
        >>> cache = MemoryCache()
        >>> _ = cache.put(NullKey("exact", 0, 0, 3, 1, 1), [0.5, 1.0])
        >>> cache.prune(0)["removed"]
        1
        """
        limit = parse_size(max_bytes) if max_bytes is not None else self.max_bytes
        with self._lock:
            removed, freed = self._shrink(limit) if limit is not None else (0, 0)
            remaining = int(sum(v.nbytes for v in self._data.values()))
            return {
                "removed": removed,
                "freed_bytes": freed,
                "remaining_entries": len(self._data),
                "remaining_bytes": remaining,
                "max_bytes": limit,
            }

    def clear(self) -> int:
        """Remove every entry; return how many there were.

        Examples
        --------
        >>> MemoryCache().clear()
        0
        """
        with self._lock:
            n = len(self._data)
            self._data.clear()
        return n
