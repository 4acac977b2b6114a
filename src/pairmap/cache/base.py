"""The small interface every null-cache backend implements.

One interface, several backends (as fsspec does for file systems):
:class:`~pairmap.cache.FilesystemCache` for the shared on-disk cache and
:class:`~pairmap.cache.MemoryCache` for tests and one-off sessions.
"""

from __future__ import annotations

import abc
import contextlib
import logging
import os
import secrets
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator

import numpy as np

from .._validation import parse_size as _parse_size
from .keys import NullKey, as_null_array

__all__ = ["SPOT_CHECKS", "CacheWarning", "NullCache", "parse_size", "spot_check"]

logger = logging.getLogger("pairmap.cache")


class CacheWarning(UserWarning):
    """A cache problem that pairmap worked around (results stay correct).

    Emitted when an entry was corrupt and is recomputed, or when the cache
    cannot be written or read (read-only file system, full disk, quota,
    I/O error) and values are computed without caching.
    """


def parse_size(value, name: str = "max_bytes") -> int | None:
    """Parse a cache size bound such as ``500MB``, ``2GiB``, ``1.5G`` or ``1000000``.

    The grammar is pairmap's one size grammar
    (:func:`pairmap._validation.parse_size`, also used by ``max_memory``):
    decimal units (``kB``, ``MB``, ``GB``, ``TB``; the ``B`` is optional) are
    powers of 1000, binary units (``KiB``, ``MiB``, ``GiB``, ``TiB``) powers
    of 1024. A cache bound may be 0 (keep nothing); ``None`` stays ``None``.

    Parameters
    ----------
    value : int, str or None
        The size.
    name : str
        Parameter name used in error messages.

    Returns
    -------
    int or None
        Number of bytes.

    Raises
    ------
    TypeError
        If the value is a boolean or neither a number nor a string.
    ValueError
        If the text is not a size or the size is negative.

    Examples
    --------
    >>> parse_size("500MB"), parse_size("1KiB"), parse_size(42), parse_size(None)
    (500000000, 1024, 42, None)
    """
    if value is None:
        return None
    return _parse_size(value, name, minimum=0)


class _KeyLocks:
    """Per-key locks so threads of one process compute each key once."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[NullKey, list] = {}

    @contextlib.contextmanager
    def hold(self, key: NullKey) -> Iterator[None]:
        with self._guard:
            entry = self._locks.get(key)
            if entry is None:
                entry = self._locks[key] = [threading.Lock(), 0]
            entry[1] += 1
        entry[0].acquire()
        try:
            yield
        finally:
            entry[0].release()
            with self._guard:
                entry[1] -= 1
                if entry[1] == 0:
                    del self._locks[key]


_LOCKS_GUARD = threading.Lock()
_FORK_AWARE: weakref.WeakSet = weakref.WeakSet()


def _reinit_after_fork() -> None:
    # A lock held by another thread at fork time would stay held forever in the
    # child; give every live cache fresh locks there.
    global _LOCKS_GUARD
    _LOCKS_GUARD = threading.Lock()
    for cache in list(_FORK_AWARE):
        cache.__dict__.pop("_pm_key_locks", None)
        cache._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)


#: Values of an entry recomputed on every read when the caller can recompute them.
SPOT_CHECKS = 64


def spot_check(
    values: np.ndarray, recompute: Callable[[np.ndarray], np.ndarray], n_checks: int = SPOT_CHECKS
) -> str | None:
    """Compare a random sample of ``values`` with a recomputation; ``None`` if all agree.

    Positions are drawn from the operating system's entropy source, so whoever
    wrote the entry cannot know which values will be checked. An entry whose
    values differ from the true ones at a share ``f`` of positions passes with
    probability at most ``(1 - f) ** n_checks`` (``n_checks=64``: below 0.2%
    for ``f = 10%``).

    Parameters
    ----------
    values : numpy.ndarray
        The values read from the cache.
    recompute : callable
        ``recompute(positions)`` returns the true values at the int64
        ``positions`` (bit-identical to what ``compute()`` would give there).
    n_checks : int
        Number of positions (all of them for shorter arrays).

    Returns
    -------
    str or None
        A description of the first disagreement, or ``None``.

    Examples
    --------
    >>> true = np.linspace(0, 1, 100)
    >>> spot_check(true.copy(), lambda pos: true[pos]) is None
    True
    >>> spot_check(true + 0.5, lambda pos: true[pos]).startswith("value 0 of 64 checked differs")
    True
    """
    n = values.shape[0]
    if n == 0:
        return None
    if n <= n_checks:
        positions = np.arange(n, dtype=np.int64)
    else:
        rng = np.random.default_rng(secrets.randbits(128))
        positions = np.sort(rng.choice(n, size=n_checks, replace=False)).astype(np.int64)
    expected = np.asarray(recompute(positions), dtype=np.float64)
    got = values[positions]
    bad = np.flatnonzero(got.view(np.int64) != expected.view(np.int64))
    if bad.size == 0:
        return None
    i = int(bad[0])
    return (
        f"value {i} of {positions.size} checked differs from a recomputation "
        f"(position {int(positions[i])}: stored {got[i]!r}, recomputed {expected[i]!r}; "
        f"{bad.size} of {positions.size} differ)"
    )


def _check_key(key) -> NullKey:
    if not isinstance(key, NullKey):
        raise TypeError(f"cache key must be a pairmap.cache.NullKey, got {type(key).__name__}")
    return key


class NullCache(abc.ABC):
    """Where null distributions are kept between runs.

    Backends implement :meth:`get`, :meth:`put`, :meth:`info`,
    :meth:`verify`, :meth:`prune` and :meth:`clear`; :meth:`get_or_compute`
    is shared. No method raises because of a storage problem: the worst case
    is a recomputation and a :class:`CacheWarning`.

    Examples
    --------
    >>> from pairmap.cache import MemoryCache, NullKey
    >>> cache = MemoryCache()
    >>> key = NullKey("sampled", 0, 3, 10, 2, 1)
    >>> cache.get_or_compute(key, lambda: np.array([0.1, 0.2, 0.3]))
    array([0.1, 0.2, 0.3])
    >>> cache.get(key)
    array([0.1, 0.2, 0.3])
    """

    @abc.abstractmethod
    def get(self, key: NullKey) -> np.ndarray | None:
        """Return the verified array stored for ``key``, or ``None``.

        A missing, unreadable or corrupt entry gives ``None``; a corrupt entry
        is also removed from use (and reported with a :class:`CacheWarning`).
        """

    @abc.abstractmethod
    def put(self, key: NullKey, array) -> bool:
        """Store ``array`` (1-D, float64) under ``key``; ``True`` if stored.

        Never raises because of storage failure (warns once per cache
        instance instead); raises ``ValueError``/``TypeError`` for a bad key
        or array.
        """

    @abc.abstractmethod
    def info(self) -> dict:
        """Summary: location, number of entries, bytes used, bound."""

    @abc.abstractmethod
    def verify(self, recompute=None) -> dict:
        """Check every entry; remove from use those that fail. Returns counts.

        ``recompute(key)`` may return a ``recompute(positions)`` function (or
        ``None``); entries with one are also spot checked (:func:`spot_check`).
        """

    @abc.abstractmethod
    def prune(self, max_bytes=None) -> dict:
        """Remove oldest entries until the cache holds at most ``max_bytes``."""

    @abc.abstractmethod
    def clear(self) -> int:
        """Remove every entry; return how many files/entries were removed."""

    def _key_locks(self) -> _KeyLocks:
        locks = self.__dict__.get("_pm_key_locks")
        if locks is None:
            with _LOCKS_GUARD:
                locks = self.__dict__.setdefault("_pm_key_locks", _KeyLocks())
                _FORK_AWARE.add(self)
        return locks

    def _after_fork(self) -> None:
        """Recreate process-local locks in a forked child (backends extend this)."""
        return None

    def reject(self, key: NullKey, reason: str) -> None:
        """Remove ``key``'s entry from use because its values failed a check.

        Called by :meth:`get_or_compute` when a spot check disagrees. The base
        implementation only warns; backends also remove the entry (the
        filesystem backend moves the file to ``quarantine/``).

        Parameters
        ----------
        key : NullKey
        reason : str
            What was wrong (shown in the :class:`CacheWarning`).
        """
        _check_key(key)
        message = f"null cache entry for {key} rejected ({reason}); the values are recomputed"
        logger.debug("%s", message)
        warnings.warn(message, CacheWarning, stacklevel=3)

    def get_or_compute(
        self,
        key: NullKey,
        compute: Callable[[], np.ndarray],
        *,
        recompute: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> np.ndarray:
        """Return the cached array for ``key``, computing and storing it if needed.

        Within one process, threads asking for the same key wait for a single
        computation. Across processes and hosts two computations of one key
        may happen; both publish identical bytes, so this is harmless.

        Parameters
        ----------
        key : NullKey
            Identity of the null distribution.
        compute : callable
            ``compute()`` returns the 1-D array for ``key``; it must be
            deterministic in ``key``.
        recompute : callable, optional
            ``recompute(positions)`` returns the values ``compute()`` gives at
            the int64 ``positions``. When given, every cached array is spot
            checked (:func:`spot_check`) before it is returned; an entry that
            disagrees is rejected (:meth:`reject`, a :class:`CacheWarning`)
            and the values are computed and stored again. Checksums catch
            damage; this catches well-formed entries with wrong values
            (planted in a shared folder, or written by a buggy sampler).

        Returns
        -------
        numpy.ndarray
            1-D float64 array: the verified cached copy, or ``compute()``'s
            result as float64.

        Examples
        --------
        >>> from pairmap.cache import MemoryCache, NullKey
        >>> key = NullKey("exact", 0, 0, 4, 1, 1)
        >>> MemoryCache().get_or_compute(key, lambda: [0.25, 0.5, 0.75, 1.0])
        array([0.25, 0.5 , 0.75, 1.  ])
        """
        _check_key(key)
        with self._key_locks().hold(key):
            cached = self.get(key)
            if cached is not None:
                problem = None if recompute is None else spot_check(cached, recompute)
                if problem is None:
                    return cached
                self.reject(key, problem)
            values = as_null_array(compute(), name="compute() result")
            self.put(key, values)
            return values


class _WarnOnce:
    """Emit a CacheWarning the first time per (cache location, kind) in a process; log afterwards.

    The warning is the one report a user sees (the CLI prints it as one line);
    the log gets every occurrence at DEBUG only, so nothing is reported twice,
    even when a run opens the same cache folder several times.
    """

    _seen_in_process: set[tuple[str, str]] = set()
    _process_lock = threading.Lock()

    def __init__(self, scope: str | None = None) -> None:
        self._lock = threading.Lock()
        self._scope = scope if scope is not None else f"instance-{id(self)}"

    def __call__(self, kind: str, message: str) -> None:
        with _WarnOnce._process_lock:
            first = (self._scope, kind) not in _WarnOnce._seen_in_process
            _WarnOnce._seen_in_process.add((self._scope, kind))
        if first:
            logger.debug("%s", message)
            warnings.warn(message, CacheWarning, stacklevel=4)
        else:
            logger.debug("%s (repeat; warned once already)", message)

    def after_fork(self) -> None:
        self._lock = threading.Lock()
        _WarnOnce._process_lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()
