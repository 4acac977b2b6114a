"""Atomic output: a result file either appears complete or not at all.

Every writer puts its bytes in a temporary file in the destination folder,
flushes and fsyncs it, then moves it into place with :func:`os.replace` (atomic
on POSIX and Windows within one filesystem). On any failure the temporary file
is removed and the exception propagates, so no partial output is ever left.

Several files that belong together are written through :class:`StagedOutputs`
(all temporary files are committed only once every one of them was written) or
into a new folder with :func:`atomic_output_dir` (built as a hidden sibling
folder, renamed into place at the end).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pandas as pd

logger = logging.getLogger(__name__)

__all__ = [
    "StagedOutputs",
    "atomic_output_dir",
    "atomic_write",
    "atomic_write_dataframe",
    "atomic_write_figure",
    "table_format",
]

_TABLE_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv"}


def table_format(path: str | os.PathLike) -> str:
    """Return ``"parquet"``, ``"csv"`` or ``"tsv"`` from a file name's extension.

    A trailing ``.gz`` is allowed for CSV/TSV (``results.csv.gz``).

    Examples
    --------
    >>> table_format("out/map.parquet"), table_format("ap.csv.gz")
    ('parquet', 'csv')
    """
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
        if suffixes and _TABLE_FORMATS.get(suffixes[-1]) in ("csv", "tsv"):
            return _TABLE_FORMATS[suffixes[-1]]
    elif suffixes and suffixes[-1] in _TABLE_FORMATS:
        return _TABLE_FORMATS[suffixes[-1]]
    raise ValueError(
        f"cannot tell the table format of {str(path)!r} from its extension; "
        f"use one of .parquet, .csv, .csv.gz, .tsv"
    )


def _fsync_dir(path: Path) -> None:
    """Best-effort fsync of a directory so a rename survives a crash."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:  # pragma: no cover - non-Linux: set and restore at once
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def _temp_path_in(directory: Path, name: str) -> Path:
    """A new empty temp file in ``directory`` with the mode a plain ``open`` would give.

    :func:`tempfile.mkstemp` creates files with mode 0600; results are meant
    to be shared like any other file, so the usual ``0666 & ~umask`` is set.
    """
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    except (AttributeError, OSError):  # pragma: no cover - Windows
        pass
    finally:
        os.close(fd)
    return Path(tmp)


def _check_destination(path: Path) -> None:
    """Refuse a destination that exists but is not a regular file (e.g. a folder)."""
    if path.is_dir():
        raise IsADirectoryError(
            f"output {str(path)!r} is a folder; remove it or choose another output name"
        )
    if os.path.lexists(path) and not path.is_file():
        raise FileExistsError(
            f"output {str(path)!r} exists but is not a regular file; remove it or choose "
            f"another output name"
        )


def _check_parent(path: Path) -> None:
    """Refuse when an existing ancestor of ``path`` is a file, not a folder."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise NotADirectoryError(
            f"output folder {str(parent)!r} is not a folder (a file has that name); "
            f"remove it or choose another output location for {str(path)!r}"
        )


def _write_to(tmp: Path, writer: Callable[[IO[bytes]], None]) -> None:
    with open(tmp, "wb") as fh:
        writer(fh)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write(path: str | os.PathLike, writer: Callable[[IO[bytes]], None]) -> Path:
    """Write a file atomically with ``writer(binary_file_handle)``.

    The parent folder must exist. The bytes go to a temporary file next to
    ``path`` which replaces ``path`` only once it is complete and synced.

    Parameters
    ----------
    path : str or os.PathLike
        Final location.
    writer : callable
        Called with an open binary file handle; writes the content.

    Returns
    -------
    pathlib.Path
        The final path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write(d / "x.txt", lambda fh: fh.write(b"hello")).read_text()
    'hello'
    """
    path = Path(path)
    parent = path.parent
    _check_parent(path)
    if not parent.is_dir():
        raise FileNotFoundError(f"output folder {str(parent)!r} does not exist")
    _check_destination(path)
    tmp = _temp_path_in(parent, path.name)
    try:
        _write_to(tmp, writer)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(parent)
    logger.debug("wrote %s", path)
    return path


def _dataframe_writer(df: pd.DataFrame, fmt: str, compress: bool) -> Callable[[IO[bytes]], None]:
    def write(fh: IO[bytes]) -> None:
        if fmt == "parquet":
            df.to_parquet(fh, index=False)
        else:
            sep = "\t" if fmt == "tsv" else ","
            df.to_csv(fh, index=False, sep=sep, compression="gzip" if compress else None)

    return write


def atomic_write_dataframe(
    df: pd.DataFrame, path: str | os.PathLike, *, fmt: str | None = None
) -> Path:
    """Write a DataFrame to Parquet or CSV atomically (no index column).

    Parameters
    ----------
    df : pandas.DataFrame
        The table to write.
    path : str or os.PathLike
        Destination; its parent folder must exist.
    fmt : {"parquet", "csv", "tsv"} or None
        Format; ``None`` infers it from the extension (see :func:`table_format`).

    Returns
    -------
    pathlib.Path
        The final path.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> p = atomic_write_dataframe(pd.DataFrame({"a": [1, 2]}), d / "t.csv")
    >>> pd.read_csv(p)["a"].tolist()
    [1, 2]
    """
    fmt = table_format(path) if fmt is None else fmt
    if fmt not in ("parquet", "csv", "tsv"):
        raise ValueError(f"fmt must be 'parquet', 'csv' or 'tsv', got {fmt!r}")
    compress = str(path).lower().endswith(".gz")
    return atomic_write(path, _dataframe_writer(df, fmt, compress))


def atomic_write_figure(fig, path: str | os.PathLike, **savefig_kwargs) -> Path:
    """Save a matplotlib figure atomically.

    The image format follows the extension (``.png``, ``.pdf``, ``.svg``...)
    unless ``format=`` is given.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path : str or os.PathLike
        Destination; its parent folder must exist.
    **savefig_kwargs
        Passed to :meth:`matplotlib.figure.Figure.savefig` (``dpi``...).

    Returns
    -------
    pathlib.Path
        The final path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from matplotlib.figure import Figure
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write_figure(Figure(), d / "f.png").stat().st_size > 0
    True
    """
    path = Path(path)
    kwargs = dict(savefig_kwargs)
    if "format" not in kwargs:
        ext = path.suffix.lstrip(".").lower()
        if not ext:
            raise ValueError(f"figure path {str(path)!r} has no extension; use e.g. .png or .pdf")
        kwargs["format"] = ext
    return atomic_write(path, lambda fh: fig.savefig(fh, **kwargs))


class StagedOutputs:
    """Write several files so that either all appear or none does.

    Use as a context manager. Each ``write_*`` call writes a complete, synced
    temporary file next to its destination; when the block ends without error
    the temporary files are moved into place, otherwise they are deleted (and
    any folder this object created is removed again if empty).

    A destination that exists but is not a regular file (a folder, say) is
    refused when it is staged and again before the first file is moved. If
    moving a later file fails anyway, the files already moved are rolled back:
    earlier versions are restored and new files removed.

    Parameters
    ----------
    overwrite : bool, default True
        If False, refuse (``FileExistsError``) to stage a destination that
        already exists.

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with StagedOutputs() as out:
    ...     _ = out.write_dataframe(pd.DataFrame({"a": [1]}), d / "sub" / "a.parquet")
    ...     _ = out.write_dataframe(pd.DataFrame({"b": [2]}), d / "sub" / "b.csv")
    >>> sorted(p.name for p in (d / "sub").iterdir())
    ['a.parquet', 'b.csv']
    """

    def __init__(self, *, overwrite: bool = True) -> None:
        self.overwrite = overwrite
        self._staged: list[tuple[Path, Path]] = []
        self._created_dirs: list[Path] = []
        self.written: list[Path] = []

    def __enter__(self) -> StagedOutputs:
        return self

    def _prepare(self, path: str | os.PathLike) -> tuple[Path, Path]:
        path = Path(path)
        if any(path == final for final, _ in self._staged):
            raise ValueError(
                f"output {str(path)!r} is written twice; give each output its own path"
            )
        if not self.overwrite and os.path.lexists(path):
            raise FileExistsError(f"output {str(path)!r} already exists; refusing to overwrite")
        _check_destination(path)
        _check_parent(path)
        missing = []
        parent = path.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for d in reversed(missing):
            d.mkdir()
            self._created_dirs.append(d)
        tmp = _temp_path_in(path.parent, path.name)
        self._staged.append((path, tmp))
        return path, tmp

    def write(self, path: str | os.PathLike, writer: Callable[[IO[bytes]], None]) -> Path:
        """Stage ``path`` with the bytes ``writer(file_handle)`` writes."""
        final, tmp = self._prepare(path)
        _write_to(tmp, writer)
        return final

    def write_dataframe(
        self, df: pd.DataFrame, path: str | os.PathLike, *, fmt: str | None = None
    ) -> Path:
        """Stage a DataFrame as Parquet/CSV (see :func:`atomic_write_dataframe`)."""
        fmt = table_format(path) if fmt is None else fmt
        compress = str(path).lower().endswith(".gz")
        return self.write(path, _dataframe_writer(df, fmt, compress))

    def write_figure(self, fig, path: str | os.PathLike, **savefig_kwargs) -> Path:
        """Stage a matplotlib figure (see :func:`atomic_write_figure`)."""
        path = Path(path)
        kwargs = dict(savefig_kwargs)
        kwargs.setdefault("format", path.suffix.lstrip(".").lower() or "png")
        return self.write(path, lambda fh: fig.savefig(fh, **kwargs))

    def _discard(self) -> None:
        for _, tmp in self._staged:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        for d in reversed(self._created_dirs):
            with contextlib.suppress(OSError):
                d.rmdir()
        self._staged.clear()

    def _backup(self, final: Path) -> Path | None:
        """Keep the current content of ``final`` under a hidden name (None if absent)."""
        if not os.path.lexists(final):
            return None
        backup = _temp_path_in(final.parent, final.name + ".old")
        try:
            backup.unlink()
            os.link(final, backup)  # same inode: ``final`` never goes missing
        except OSError:
            shutil.copy2(final, backup)  # no hard links on this filesystem
        return backup

    def commit(self) -> list[Path]:
        """Move every staged file into place (called on a clean exit).

        Every destination is checked first; if a move fails after others
        succeeded, those are rolled back before the error propagates.
        """
        done: list[tuple[Path, Path | None]] = []
        backups: list[Path] = []
        try:
            for final, _ in self._staged:
                if not self.overwrite and os.path.lexists(final):
                    raise FileExistsError(
                        f"output {str(final)!r} appeared while pairmap was writing; "
                        f"refusing to overwrite"
                    )
                _check_destination(final)
            for final, tmp in self._staged:
                backup = self._backup(final)
                if backup is not None:
                    backups.append(backup)
                os.replace(tmp, final)
                done.append((final, backup))
        except BaseException:
            self._rollback(done)
            for backup in backups:
                with contextlib.suppress(OSError):
                    backup.unlink()
            self._discard()
            raise
        for backup in backups:
            with contextlib.suppress(OSError):
                backup.unlink()
        for parent in {final.parent for final, _ in self._staged}:
            _fsync_dir(parent)
        self.written.extend(final for final, _ in done)
        self._staged.clear()
        return list(self.written)

    @staticmethod
    def _rollback(done: list[tuple[Path, Path | None]]) -> None:
        for final, backup in reversed(done):
            try:
                if backup is None:
                    final.unlink()
                else:
                    os.replace(backup, final)
            except OSError as exc:  # pragma: no cover - nothing more can be done
                logger.error("could not restore %s after a failed write: %s", final, exc)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self._discard()


@contextlib.contextmanager
def atomic_output_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a new output folder atomically.

    Yields a temporary sibling folder to write into; when the block ends
    without error it is renamed to ``path``, otherwise it is deleted with its
    content. An existing ``path`` is never overwritten.

    Parameters
    ----------
    path : str or os.PathLike
        The folder to create; must not exist yet. Its parent is created if
        missing.

    Yields
    ------
    pathlib.Path
        The temporary folder to write files into.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> base = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_output_dir(base / "run1") as tmp:
    ...     _ = (tmp / "a.txt").write_text("x")
    >>> [p.name for p in (base / "run1").iterdir()]
    ['a.txt']
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"output folder {str(path)!r} already exists; choose a new one")
    _check_parent(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    with contextlib.suppress(OSError):  # mkdtemp gives 0700; use the usual mode
        os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        for child in tmp.rglob("*"):
            if child.is_file():
                with open(child, "rb") as fh:
                    os.fsync(fh.fileno())
        if path.exists():
            raise FileExistsError(
                f"output folder {str(path)!r} appeared while pairmap was writing; not overwriting"
            )
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(path.parent)
    logger.debug("created output folder %s", path)
