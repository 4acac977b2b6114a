"""The filesystem operations the cache performs, behind one small seam.

:class:`FilesystemCache` never calls ``os`` directly for I/O on cache files;
it calls an :class:`FsOps` instance. Tests (and anyone debugging a storage
problem) substitute :class:`FaultyOps` to fail the N-th ``write``, ``fsync``,
``replace`` ... call with an ``OSError`` (``EIO``, ``ENOSPC``, ``EROFS`` ...)
or to end the process right there with ``os._exit`` (a crash without any
cleanup), which lets the test suite enumerate every crash point of a write.
"""

from __future__ import annotations

import errno
import os
import threading
from collections import Counter
from collections.abc import Callable

__all__ = ["FaultyOps", "FsOps"]


class FsOps:
    """Plain POSIX implementation of every I/O call the cache makes.

    Examples
    --------
    >>> ops = FsOps()
    >>> ops.fsync_dir(".")
    """

    def open(self, path, flags: int, mode: int = 0o666) -> int:
        return os.open(path, flags, mode)

    def read(self, fd: int, n: int) -> bytes:
        return os.read(fd, n)

    def write(self, fd: int, data) -> int:
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def replace(self, src, dst) -> None:
        os.replace(src, dst)

    def rename(self, src, dst) -> None:
        os.rename(src, dst)

    def unlink(self, path) -> None:
        os.unlink(path)

    def mkdir(self, path) -> None:
        os.makedirs(path, exist_ok=True)

    def utime(self, path) -> None:
        os.utime(path)

    def fsync_dir(self, path) -> None:
        """Flush a directory's entries (makes a rename durable); uses ``open``/``fsync``."""
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = self.open(path, flags)
        try:
            self.fsync(fd)
        finally:
            self.close(fd)


class FaultyOps(FsOps):
    """:class:`FsOps` that fails chosen calls; for tests and fault drills.

    Parameters
    ----------
    fail_at : dict, optional
        ``{op_name: n}``: the ``n``-th call (1-based) of ``op_name`` fails.
    error : int or None
        ``errno`` of the ``OSError`` to raise (default ``EIO``). ``None`` means
        "crash": the process ends immediately with ``os._exit(exit_code)``.
    persistent : bool
        If true, every call from the ``n``-th on fails, not just the ``n``-th.
    fail_ops : iterable of str, optional
        Op names that always fail (e.g. ``{"open_write", "mkdir"}`` for a
        read-only filesystem). ``open_write`` is an ``open`` with ``O_CREAT``;
        ``open_read`` is any other ``open``.
    short_writes : bool
        If true, ``write`` writes at most half of what it is given (at least
        one byte), as a real kernel may do; the cache must loop.
    exit_code : int
        Exit status used when crashing.

    Attributes
    ----------
    calls : collections.Counter
        How often each op was called (failed calls included).

    Examples
    --------
    >>> import errno
    >>> ops = FaultyOps(fail_at={"fsync": 1}, error=errno.ENOSPC)
    >>> try:
    ...     ops.fsync(0)
    ... except OSError as exc:
    ...     print(errno.errorcode[exc.errno])
    ENOSPC
    """

    def __init__(
        self,
        fail_at: dict[str, int] | None = None,
        *,
        error: int | None = errno.EIO,
        persistent: bool = False,
        fail_ops=(),
        short_writes: bool = False,
        exit_code: int = 86,
    ) -> None:
        self.fail_at = dict(fail_at or {})
        self.error = error
        self.persistent = persistent
        self.fail_ops = frozenset(fail_ops)
        self.short_writes = short_writes
        self.exit_code = exit_code
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _tick(self, op: str, path=None) -> None:
        with self._lock:
            self.calls[op] += 1
            n = self.calls[op]
        target = self.fail_at.get(op)
        hit = op in self.fail_ops or (
            target is not None and (n == target or (self.persistent and n > target))
        )
        if not hit:
            return
        if self.error is None:
            os._exit(self.exit_code)
        raise OSError(self.error, os.strerror(self.error), None if path is None else str(path))

    def _wrap(self, op: str, fn: Callable, *args, path=None):
        self._tick(op, path)
        return fn(*args)

    def open(self, path, flags: int, mode: int = 0o666) -> int:
        op = "open_write" if flags & os.O_CREAT else "open_read"
        self._tick(op, path)
        self._tick("open", path)
        return super().open(path, flags, mode)

    def read(self, fd: int, n: int) -> bytes:
        return self._wrap("read", super().read, fd, n)

    def write(self, fd: int, data) -> int:
        self._tick("write")
        if self.short_writes and len(data) > 1:
            data = memoryview(data)[: max(1, len(data) // 2)]
        return super().write(fd, data)

    def fsync(self, fd: int) -> None:
        self._wrap("fsync", super().fsync, fd)

    def close(self, fd: int) -> None:
        # Like a real close(2) that reports EIO: the descriptor is gone either way.
        try:
            self._tick("close")
        finally:
            super().close(fd)

    def replace(self, src, dst) -> None:
        self._wrap("replace", super().replace, src, dst, path=dst)

    def rename(self, src, dst) -> None:
        self._wrap("rename", super().rename, src, dst, path=dst)

    def unlink(self, path) -> None:
        self._wrap("unlink", super().unlink, path, path=path)

    def mkdir(self, path) -> None:
        self._wrap("mkdir", super().mkdir, path, path=path)

    def utime(self, path) -> None:
        self._wrap("utime", super().utime, path, path=path)
