"""Filesystem backend: one verified binary file per null distribution.

Guarantees (details and rationale in ``docs/cache.md``):

* entries are published atomically (temp file in the same directory, write,
  ``fsync``, ``os.replace``, directory ``fsync``), so readers never see a
  partial file and concurrent writers of one key are harmless;
* every read verifies magic, format, key, size and a BLAKE2b checksum; a bad
  entry is moved to ``quarantine/`` and recomputed, with a :class:`CacheWarning`;
* storage failures (read-only, ``EACCES``, ``ENOSPC``, ``EDQUOT``, ``EIO`` ...)
  never stop an analysis: values are computed without caching and the cache
  warns once;
* no locks: no SQLite, no ``flock``; safe for threads, processes and hosts
  sharing a directory (NFS included).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import socket
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from .._typing import CacheSpec
from ._fsops import FsOps
from .base import (
    _FORK_AWARE,
    CacheWarning,
    NullCache,
    _check_key,
    _WarnOnce,
    parse_size,
    spot_check,
)
from .keys import (
    HEADER_SIZE,
    SUFFIX,
    CorruptEntryError,
    NullKey,
    as_null_array,
    decode_entry,
    decode_header,
    encode_entry,
)

__all__ = ["ENV_CACHE_DIR", "ENV_MAX_BYTES", "FilesystemCache", "default_cache_dir", "open_cache"]

logger = logging.getLogger("pairmap.cache")

#: Environment variable overriding the default cache directory.
ENV_CACHE_DIR = "PAIRMAP_CACHE_DIR"
#: Environment variable giving a default size bound (e.g. ``2GB``).
ENV_MAX_BYTES = "PAIRMAP_CACHE_MAX_BYTES"

TMP_PREFIX = ".tmp_"
QUARANTINE_DIR = "quarantine"
_ENTRY_RE = re.compile(r"v\d+-[a-z][a-z0-9_]{0,31}-s\d+-ns\d+-n\d+-k\d+" + re.escape(SUFFIX))
_CACHEDIR_TAG = (
    b"Signature: 8a477f597d28d172789f06886806bc55\n"
    b"# This file is a cache directory tag created by pairmap (null distributions).\n"
    b"# For information about cache directory tags see https://bford.info/cachedir/\n"
)
# errno values that mean "this entry is not there (any more)", not "storage broken"
_GONE = {errno.ENOENT, errno.ESTALE, errno.ENOTDIR}
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_WRITE_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)
_AUTO_PRUNE_FRACTION = 0.9
#: Size bound of caches opened by :func:`open_cache` without ``max_bytes`` or
#: ``$PAIRMAP_CACHE_MAX_BYTES``: 2 GB hold ~25,000 nulls of 10,000 draws.
DEFAULT_MAX_BYTES = 2 * 10**9
_UNBOUNDED = ("unbounded", "none")
_RESCAN_EVERY = 64
_SWEEP_EVERY = 256


def _host_token() -> str:
    """Host name plus PID-namespace id: PIDs are only comparable within it."""
    host = socket.gethostname() or "localhost"
    try:
        host += f"-{os.stat('/proc/self/ns/pid').st_ino:x}"
    except OSError:
        pass
    return re.sub(r"[^A-Za-z0-9.-]", "-", host)[:64]


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _close_quietly(ops: FsOps, fd: int) -> None:
    try:
        ops.close(fd)
    except OSError:
        pass


def _read_exact(ops: FsOps, fd: int, n: int) -> bytearray:
    buf = bytearray()
    while len(buf) < n:
        chunk = ops.read(fd, min(n - len(buf), 1 << 22))
        if not chunk:
            break
        buf += chunk
    return buf


def _write_all(ops: FsOps, fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = ops.write(fd, view)
        if not written or written < 0:
            raise OSError(errno.EIO, "write made no progress")
        view = view[written:]


def _scan(path: Path):
    try:
        with os.scandir(path) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []


class _Corrupt(Exception):
    def __init__(self, reason: str, ident) -> None:
        super().__init__(reason)
        self.reason = reason
        self.ident = ident


class FilesystemCache(NullCache):
    """Null-distribution cache in a directory (local disk or shared filesystem).

    Parameters
    ----------
    path : str or os.PathLike
        Cache directory; created on first write.
    max_bytes : int, str or None
        Size bound (``500MB``, ``2GiB``, bytes). After a write that takes the
        cache over the bound, the oldest entries (by last use) are removed
        until it holds at most 90% of the bound. ``None``: unbounded.
    stale_temp_seconds : float
        Temporary files older than this are removed as leftovers of crashed
        writers (those of dead processes on this host are removed at once).
    touch_interval : float
        A hit refreshes the entry's modification time (its "last use" for
        pruning) when it is older than this many seconds.
    max_quarantine : int
        Corrupt files kept in ``quarantine/`` for inspection (newest kept).
    ops : FsOps, optional
        Filesystem operations (a seam for fault injection in tests).

    Examples
    --------
    >>> import tempfile
    >>> cache = FilesystemCache(tempfile.mkdtemp(), max_bytes="10MB")
    >>> key = NullKey("sampled", seed=0, null_size=3, n_total=10, n_pos=2,
    ...               algorithm_version=1)
    >>> cache.get(key) is None
    True
    >>> cache.get_or_compute(key, lambda: np.array([0.1, 0.2, 0.3]))
    array([0.1, 0.2, 0.3])
    >>> cache.get(key)
    array([0.1, 0.2, 0.3])
    >>> cache.info()["entries"]
    1
    """

    def __init__(
        self,
        path,
        *,
        max_bytes=None,
        stale_temp_seconds: float = 3600.0,
        touch_interval: float = 600.0,
        max_quarantine: int = 16,
        ops: FsOps | None = None,
    ) -> None:
        try:
            self.path = Path(os.fspath(path)).expanduser()
        except TypeError:
            raise TypeError(
                f"cache path must be a str or os.PathLike, got {type(path).__name__}"
            ) from None
        self.max_bytes = parse_size(max_bytes)
        self.stale_temp_seconds = float(stale_temp_seconds)
        self.touch_interval = float(touch_interval)
        self.max_quarantine = int(max_quarantine)
        self._ops = ops if ops is not None else FsOps()
        self._host = _host_token()
        self._warn = _WarnOnce(scope=str(self.path))
        self._state = threading.Lock()
        self._dir_ready = False
        self._swept = False
        self._approx_bytes: int | None = None
        self._puts_since_scan = 0
        self._puts = 0
        _FORK_AWARE.add(self)

    def __repr__(self) -> str:
        return f"FilesystemCache({str(self.path)!r}, max_bytes={self.max_bytes!r})"

    def _after_fork(self) -> None:
        self._state = threading.Lock()
        self._warn.after_fork()

    # ------------------------------------------------------------------ paths
    def entry_path(self, key: NullKey) -> Path:
        """Path of the file that holds ``key``'s entry.

        Parameters
        ----------
        key : NullKey

        Returns
        -------
        pathlib.Path

        Examples
        --------
        >>> FilesystemCache("/tmp/c").entry_path(NullKey("exact", 0, 0, 3, 1, 1)).name
        'v1-exact-s0-ns0-n3-k1.pmnull'
        """
        return self.path / _check_key(key).filename()

    def _temp_path(self, final: Path) -> Path:
        token = secrets.token_hex(6)
        return self.path / f"{TMP_PREFIX}{self._host}_{os.getpid()}_{token}_{final.name}"

    # ------------------------------------------------------------------ reads
    def _read_entry(self, path: Path):
        """Read and verify one file. Returns (key, values, stat); raises _Corrupt/OSError."""
        ops = self._ops
        fd = ops.open(path, _READ_FLAGS)
        try:
            st = os.fstat(fd)
            ident = (st.st_dev, st.st_ino)
            try:
                header = bytes(_read_exact(ops, fd, HEADER_SIZE))
                key, length = decode_header(header)
                expected = HEADER_SIZE + 8 * length
                if st.st_size != expected:
                    raise CorruptEntryError(
                        f"file has {st.st_size} bytes, its header announces {expected}"
                    )
                payload = _read_exact(ops, fd, 8 * length)
                if ops.read(fd, 1):
                    raise CorruptEntryError("file is longer than its header announces")
                key, values = decode_entry(header, payload)
            except CorruptEntryError as exc:
                raise _Corrupt(str(exc), ident) from None
        finally:
            _close_quietly(ops, fd)
        return key, values, st

    def get(self, key: NullKey) -> np.ndarray | None:
        """Return the verified array stored for ``key``, or ``None``.

        Parameters
        ----------
        key : NullKey

        Returns
        -------
        numpy.ndarray or None
            A fresh, writable 1-D float64 array; ``None`` if the entry is
            missing, unreadable or corrupt (corrupt entries are quarantined).

        Examples
        --------
        >>> import tempfile
        >>> FilesystemCache(tempfile.mkdtemp()).get(NullKey("exact", 0, 0, 3, 1, 1)) is None
        True
        """
        path = self.entry_path(key)
        try:
            found, values, st = self._read_entry(path)
        except _Corrupt as exc:
            self._quarantine(path, exc.reason, exc.ident)
            return None
        except OSError as exc:
            if exc.errno not in _GONE:
                self._warn(
                    "read",
                    f"cannot read the null cache at {self.path} ({exc}); "
                    "null distributions are recomputed",
                )
            return None
        if found != key:
            self._quarantine(
                path,
                f"file holds the entry for {found}, not for the requested {key}",
                (st.st_dev, st.st_ino),
            )
            return None
        if time.time() - st.st_mtime > self.touch_interval:
            try:
                self._ops.utime(path)  # last use, for oldest-first pruning
            except OSError as exc:
                logger.debug("could not refresh %s: %s", path, exc)
        return values

    def reject(self, key: NullKey, reason: str) -> None:
        """Move ``key``'s entry to ``quarantine/`` because its values failed a check.

        A :class:`CacheWarning` names the file and the reason.

        Parameters
        ----------
        key : NullKey
        reason : str

        Examples
        --------
        >>> import tempfile, warnings
        >>> cache = FilesystemCache(tempfile.mkdtemp())
        >>> key = NullKey("exact", 0, 0, 3, 1, 1)
        >>> _ = cache.put(key, [0.5, 1.0])
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     cache.reject(key, "forged")
        >>> cache.get(key) is None
        True
        """
        self._quarantine(self.entry_path(key), reason, None, what="rejected")

    def _quarantine(
        self, path: Path, reason: str, ident, *, warn: bool = True, what: str = "corrupt"
    ) -> bool:
        """Move a corrupt file aside (or delete it); return True if it is gone."""
        ops = self._ops
        gone = False
        where = "moved to quarantine"
        try:
            st = os.stat(path)
            if ident is not None and (st.st_dev, st.st_ino) != ident:
                # Already replaced by a fresh entry from another writer: leave it.
                gone, where = True, "already replaced"
            else:
                qdir = self.path / QUARANTINE_DIR
                ops.mkdir(qdir)
                dest = qdir / f"{path.name}.{time.time_ns()}.{os.getpid()}.bad"
                ops.rename(path, dest)
                gone = True
                try:
                    ops.utime(dest)
                except OSError:
                    pass
                self._trim_quarantine()
        except FileNotFoundError:
            gone, where = True, "already removed"
        except OSError as exc:
            try:
                ops.unlink(path)
                gone, where = True, "deleted"
            except FileNotFoundError:
                gone, where = True, "already removed"
            except OSError:
                where = f"could not be removed ({exc})"
        message = (
            f"null cache entry {path.name} in {self.path} is {what} ({reason}); "
            f"{where}; the values are recomputed"
        )
        if warn:
            logger.debug("%s", message)  # the CacheWarning is the user-facing report
            warnings.warn(message, CacheWarning, stacklevel=4)
        else:
            logger.info("%s", message)
        return gone

    def _trim_quarantine(self) -> None:
        entries = [e for e in _scan(self.path / QUARANTINE_DIR) if e.name.endswith(".bad")]
        if len(entries) <= self.max_quarantine:
            return

        def stamp(entry) -> int:  # time_ns written into the name by _quarantine
            part = entry.name.rsplit(".", 3)[-3]
            return int(part) if part.isdigit() else 0

        entries.sort(key=stamp)
        for entry in entries[: len(entries) - self.max_quarantine]:
            try:
                self._ops.unlink(entry.path)
            except OSError:
                pass

    # ----------------------------------------------------------------- writes
    def _ensure_dir(self) -> bool:
        if self._dir_ready:
            return True
        existed = self.path.is_dir()
        try:
            self._ops.mkdir(self.path)
        except OSError as exc:
            self._warn_unwritable(exc)
            return False
        if not existed:
            self._write_tag()
        self._dir_ready = True
        return True

    def _write_tag(self) -> None:
        ops = self._ops
        try:
            fd = ops.open(self.path / "CACHEDIR.TAG", _WRITE_FLAGS, 0o666)
        except OSError:
            return
        try:
            _write_all(ops, fd, _CACHEDIR_TAG)
        except OSError:
            pass
        finally:
            _close_quietly(ops, fd)

    def _warn_unwritable(self, exc: OSError) -> None:
        self._warn(
            "write",
            f"cannot write to the null cache at {self.path} ({exc}); null distributions "
            "are computed without caching (results are unaffected). Free space, fix "
            f"permissions, set {ENV_CACHE_DIR} or pass cache=False to silence this.",
        )

    def put(self, key: NullKey, array) -> bool:
        """Store ``array`` under ``key`` atomically; ``True`` if stored.

        Never raises on storage failure: a read-only or full file system,
        missing permissions, quota or I/O errors give ``False``, one
        :class:`CacheWarning` per cache instance, and no leftover temp file.

        Parameters
        ----------
        key : NullKey
        array : array_like
            1-D real values, stored as float64.

        Returns
        -------
        bool

        Raises
        ------
        TypeError, ValueError
            For a key that is not a :class:`NullKey` or an array that is not 1-D real.

        Examples
        --------
        >>> import tempfile
        >>> FilesystemCache(tempfile.mkdtemp()).put(NullKey("exact", 0, 0, 3, 1, 1), [1/3, 1.0])
        True
        """
        final = self.entry_path(key)
        header, payload = encode_entry(key, as_null_array(array))
        size = len(header) + len(payload)
        if self.max_bytes is not None and size > self.max_bytes:
            logger.debug(
                "not caching %s: %d bytes exceed max_bytes=%d", final.name, size, self.max_bytes
            )
            return False
        if not self._ensure_dir():
            return False
        ops = self._ops
        for attempt in (1, 2):
            tmp = self._temp_path(final)
            fd = None
            created = False
            try:
                fd = ops.open(tmp, _WRITE_FLAGS, 0o666)
                created = True
                _write_all(ops, fd, header)
                _write_all(ops, fd, payload)
                ops.fsync(fd)
                fd, closing = None, fd
                ops.close(closing)
                ops.replace(tmp, final)
                created = False
                break
            except OSError as exc:
                if fd is not None:
                    _close_quietly(ops, fd)
                if created:
                    try:
                        ops.unlink(tmp)
                    except OSError:
                        pass
                if attempt == 1 and not created and exc.errno == errno.ENOENT:
                    # the cache directory was removed while we ran (e.g. `pairmap cache
                    # clear` elsewhere): create it again and retry once
                    self._dir_ready = False
                    if self._ensure_dir():
                        continue
                    return False
                self._warn_unwritable(exc)
                return False
        try:
            ops.fsync_dir(self.path)
        except OSError as exc:  # entry is visible and verified on read; only durability
            logger.debug("fsync of directory %s failed: %s", self.path, exc)
        logger.debug("cached %s (%d bytes)", final.name, size)
        self._after_put(size)
        return True

    def _after_put(self, size: int) -> None:
        with self._state:
            self._puts += 1
            # sweep crashed writers' temp files on the first write, then now and then
            sweep = not self._swept or self._puts % _SWEEP_EVERY == 0
            self._swept = True
            check = False
            if self.max_bytes is not None:
                self._puts_since_scan += 1
                approx = self._approx_bytes
                if approx is None or self._puts_since_scan >= _RESCAN_EVERY:
                    check = True
                else:
                    self._approx_bytes = approx + size
                    check = self._approx_bytes > self.max_bytes
        if sweep:
            self._sweep_temps()
        if check:
            self._auto_prune()

    def _auto_prune(self) -> None:
        total = sum(size for _, size, _ in self._entries())
        target = total
        if total > self.max_bytes:
            result = self._prune_entries(int(self.max_bytes * _AUTO_PRUNE_FRACTION))
            target = result["remaining_bytes"]
        with self._state:
            self._approx_bytes = target
            self._puts_since_scan = 0

    # ------------------------------------------------------------ maintenance
    def _entries(self):
        """(path, size, last_use) of every entry file currently present."""
        out = []
        for entry in _scan(self.path):
            if not _ENTRY_RE.fullmatch(entry.name):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            out.append((Path(entry.path), st.st_size, max(st.st_mtime, st.st_atime)))
        return out

    def _sweep_temps(self) -> int:
        """Remove temp files of crashed writers; return how many were removed."""
        now = time.time()
        removed = 0
        for entry in _scan(self.path):
            if not entry.name.startswith(TMP_PREFIX):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            stale = now - st.st_mtime > self.stale_temp_seconds
            parts = entry.name.split("_", 4)
            if not stale and len(parts) == 5 and parts[1] == self._host and parts[2].isdigit():
                pid = int(parts[2])
                stale = pid != os.getpid() and not _pid_alive(pid)
            if stale:
                try:
                    self._ops.unlink(entry.path)
                    removed += 1
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    logger.debug("cannot remove stale temp file %s: %s", entry.path, exc)
                    break
        if removed:
            logger.info("removed %d stale temporary file(s) from %s", removed, self.path)
        return removed

    def _quarantined(self):
        out = []
        for entry in _scan(self.path / QUARANTINE_DIR):
            if entry.name.endswith(".bad"):
                try:
                    out.append((Path(entry.path), entry.stat(follow_symlinks=False).st_size))
                except OSError:
                    pass
        return out

    def info(self) -> dict:
        """Summary of the cache directory.

        Returns
        -------
        dict
            ``backend``, ``path``, ``exists``, ``entries``, ``bytes``,
            ``max_bytes``, ``temp_files``, ``quarantined``,
            ``quarantined_bytes``, ``format_version``.

        Examples
        --------
        >>> import tempfile
        >>> FilesystemCache(tempfile.mkdtemp()).info()["entries"]
        0
        """
        from .keys import FORMAT_VERSION

        entries = self._entries()
        quarantined = self._quarantined()
        temps = [e for e in _scan(self.path) if e.name.startswith(TMP_PREFIX)]
        return {
            "backend": "filesystem",
            "path": str(self.path),
            "exists": self.path.is_dir(),
            "entries": len(entries),
            "bytes": int(sum(size for _, size, _ in entries)),
            "max_bytes": self.max_bytes,
            "temp_files": len(temps),
            "quarantined": len(quarantined),
            "quarantined_bytes": int(sum(size for _, size in quarantined)),
            "format_version": FORMAT_VERSION,
        }

    def verify(self, recompute=None) -> dict:
        """Read and verify every entry; quarantine those that fail.

        Also removes stale temp files. Safe while other processes use the cache.

        Parameters
        ----------
        recompute : callable, optional
            ``recompute(key)`` returns ``None`` or a function giving the true
            values of ``key`` at given positions (``pairmap cache verify``
            passes :func:`pairmap._null_check.recompute_for_key`). Entries it
            can recompute are also spot checked (:func:`spot_check`), so
            well-formed entries with wrong values count as corrupt too.

        Returns
        -------
        dict
            ``checked``, ``ok``, ``corrupt``, ``unreadable``, ``vanished``
            (removed by someone else meanwhile), ``corrupt_files`` (names),
            ``spot_checked`` and ``temp_removed``.

        Examples
        --------
        >>> import tempfile
        >>> FilesystemCache(tempfile.mkdtemp()).verify()["corrupt"]
        0
        """
        report = {
            "checked": 0,
            "ok": 0,
            "corrupt": 0,
            "unreadable": 0,
            "vanished": 0,
            "corrupt_files": [],
            "spot_checked": 0,
            "temp_removed": self._sweep_temps(),
        }
        for path, _, _ in self._entries():
            report["checked"] += 1
            try:
                key, values, st = self._read_entry(path)
            except _Corrupt as exc:
                reason, ident = exc.reason, exc.ident
            except OSError as exc:
                report["vanished" if exc.errno in _GONE else "unreadable"] += 1
                continue
            else:
                ident = (st.st_dev, st.st_ino)
                reason = _value_problem(key, values, recompute, report)
                if key.filename() != path.name:
                    reason = f"file holds the entry for {key.filename()}"
                elif reason is None:
                    report["ok"] += 1
                    continue
            self._quarantine(path, reason, ident, warn=False)
            report["corrupt"] += 1
            report["corrupt_files"].append(path.name)
        return report

    def _prune_entries(self, limit: int) -> dict:
        entries = sorted(self._entries(), key=lambda e: e[2])
        total = sum(size for _, size, _ in entries)
        removed = freed = 0
        for path, size, _ in entries:
            if total <= limit:
                break
            try:
                self._ops.unlink(path)
            except FileNotFoundError:
                pass  # pruned by someone else
            except OSError as exc:
                logger.debug("cannot prune %s: %s", path, exc)
                self._warn_unwritable(exc)
                break
            else:
                removed += 1
                freed += size
            total -= size
        if removed:
            logger.info("pruned %d entries (%d bytes) from %s", removed, freed, self.path)
        return {
            "removed": removed,
            "freed_bytes": freed,
            "remaining_entries": len(entries) - removed,
            "remaining_bytes": total,
        }

    def prune(self, max_bytes=None) -> dict:
        """Remove the least recently used entries until at most ``max_bytes`` remain.

        Also removes stale temp files and every quarantined file. Safe while
        other processes read and write: a reader holding an open file keeps
        reading it (POSIX), a reader arriving later finds no entry and
        recomputes.

        Parameters
        ----------
        max_bytes : int, str or None
            Bound (``"500MB"`` ...); ``None`` uses the cache's own
            ``max_bytes``; if both are ``None`` only temp and quarantined files
            are removed.

        Returns
        -------
        dict
            ``removed``, ``freed_bytes``, ``remaining_entries``,
            ``remaining_bytes``, ``temp_removed``, ``quarantine_removed``,
            ``max_bytes``.

        Examples
        --------
        >>> import tempfile
        >>> FilesystemCache(tempfile.mkdtemp()).prune("1MB")["removed"]
        0
        """
        limit = parse_size(max_bytes) if max_bytes is not None else self.max_bytes
        temp_removed = self._sweep_temps()
        q_removed = 0
        for path, _ in self._quarantined():
            try:
                self._ops.unlink(path)
                q_removed += 1
            except OSError:
                pass
        if limit is None:
            entries = self._entries()
            result = {
                "removed": 0,
                "freed_bytes": 0,
                "remaining_entries": len(entries),
                "remaining_bytes": int(sum(size for _, size, _ in entries)),
            }
        else:
            result = self._prune_entries(limit)
        with self._state:
            self._approx_bytes = result["remaining_bytes"]
            self._puts_since_scan = 0
        result.update(temp_removed=temp_removed, quarantine_removed=q_removed, max_bytes=limit)
        return result

    def clear(self) -> int:
        """Remove every entry, quarantined file and stale temp file.

        Only files the cache itself creates are touched (entry names,
        ``quarantine/*.bad``, ``.tmp_*``); temp files of live writers stay.

        Returns
        -------
        int
            Number of files removed.

        Examples
        --------
        >>> import tempfile
        >>> cache = FilesystemCache(tempfile.mkdtemp())
        >>> _ = cache.put(NullKey("exact", 0, 0, 3, 1, 1), [1/3, 1.0])
        >>> cache.clear()
        1
        """
        removed = self._sweep_temps()
        paths = [p for p, _, _ in self._entries()] + [p for p, _ in self._quarantined()]
        for path in paths:
            try:
                self._ops.unlink(path)
                removed += 1
            except FileNotFoundError:
                pass
            except OSError as exc:
                logger.warning("cannot remove %s: %s", path, exc)
        with self._state:
            self._approx_bytes = None
        return removed


def _value_problem(key: NullKey, values, recompute, report: dict) -> str | None:
    """Spot check ``values`` when ``recompute`` knows how to; a reason if they are wrong."""
    check = recompute(key) if recompute is not None else None
    if check is None:
        return None
    report["spot_checked"] += 1
    problem = spot_check(values, check)
    return None if problem is None else f"values disagree with recomputed draws: {problem}"


def default_cache_dir() -> Path:
    """Default cache directory: ``$PAIRMAP_CACHE_DIR`` or the user cache dir.

    Returns
    -------
    pathlib.Path
        ``$PAIRMAP_CACHE_DIR`` if set and non-empty, else
        ``platformdirs.user_cache_dir("pairmap") / "nulls"`` (for example
        ``~/.cache/pairmap/nulls`` on Linux).

    Examples
    --------
    >>> default_cache_dir().name != ""
    True
    """
    env = os.environ.get(ENV_CACHE_DIR, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("pairmap", appauthor=False)) / "nulls"


def _bound(value) -> int | None:
    """A size bound, or ``None`` for the word ``"unbounded"``."""
    if isinstance(value, str) and value.strip().lower() in _UNBOUNDED:
        return None
    return parse_size(value)


def open_cache(
    cache: CacheSpec = None,
    *,
    max_bytes: int | str | None = None,
) -> NullCache | None:
    """Resolve the ``cache=`` argument of pairmap functions to a cache object.

    Parameters
    ----------
    cache : None, True, False, str, os.PathLike or NullCache
        ``None``/``True``: the default directory (:func:`default_cache_dir`);
        a path: a :class:`FilesystemCache` there; ``False``: no caching
        (returns ``None``); a :class:`NullCache`: returned as is.
    max_bytes : int, str or None
        Size bound for a new :class:`FilesystemCache` (``"unbounded"`` for
        none); defaults to ``$PAIRMAP_CACHE_MAX_BYTES`` when that is set, else
        :data:`DEFAULT_MAX_BYTES` (2 GB; the least recently used entries are
        evicted beyond it). Ignored for an existing cache object.

    Returns
    -------
    NullCache or None

    Raises
    ------
    TypeError
        If ``cache`` is none of the accepted types.

    Examples
    --------
    >>> open_cache(False) is None
    True
    >>> import tempfile
    >>> open_cache(tempfile.mkdtemp(), max_bytes="1GB").max_bytes
    1000000000
    """
    if cache is False:
        return None
    if isinstance(cache, NullCache):
        return cache
    if max_bytes is None:
        env = os.environ.get(ENV_MAX_BYTES, "").strip()
        try:
            max_bytes = _bound(env) if env else DEFAULT_MAX_BYTES
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{ENV_MAX_BYTES}: {exc}") from None
    else:
        max_bytes = _bound(max_bytes)
    if cache is None or cache is True:
        return FilesystemCache(default_cache_dir(), max_bytes=max_bytes)
    if isinstance(cache, str | os.PathLike):
        if isinstance(cache, str) and not cache.strip():
            raise ValueError("cache must be a directory path, got an empty string")
        return FilesystemCache(cache, max_bytes=max_bytes)
    raise TypeError(
        "cache must be None (default directory), False (no cache), a directory path "
        f"or a pairmap.cache.NullCache, got {type(cache).__name__}"
    )
