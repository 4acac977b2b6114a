"""``pairmap cache info|verify|prune|clear``: manage the on-disk null cache.

The CLI module calls :func:`add_cache_subcommand` with its subparsers and
dispatches with ``args.func(args)``, which returns the exit code. These are
CLI-layer functions, so they print their report to standard output.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .base import parse_size
from .filesystem import ENV_CACHE_DIR, FilesystemCache, default_cache_dir, open_cache

__all__ = ["add_cache_subcommand", "format_bytes"]


def format_bytes(n: int | None) -> str:
    """Human-readable byte count in decimal units.

    Parameters
    ----------
    n : int or None

    Returns
    -------
    str

    Examples
    --------
    >>> format_bytes(1234567), format_bytes(12), format_bytes(None)
    ('1.2 MB', '12 B', 'unbounded')
    """
    if n is None:
        return "unbounded"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def _size_arg(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _open(args) -> FilesystemCache:
    """The cache the command acts on; ``$PAIRMAP_CACHE_MAX_BYTES`` applies without --max-bytes."""
    path = Path(args.dir).expanduser() if args.dir is not None else default_cache_dir()
    if path.exists() and not path.is_dir():
        where = "--dir" if args.dir is not None else f"${ENV_CACHE_DIR} or the default"
        raise NotADirectoryError(
            f"cache directory {str(path)!r} is not a directory (a file has that name); "
            f"pass another folder with --dir or fix {where}"
        )
    cache = open_cache(path, max_bytes=args.max_bytes)
    assert isinstance(cache, FilesystemCache)
    return cache


def _emit(args, report: dict, lines: list[str]) -> None:
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print("\n".join(lines))


def _cmd_info(args) -> int:
    cache = _open(args)
    r = cache.info()
    lines = [
        f"cache directory: {r['path']}" + ("" if r["exists"] else " (does not exist yet)"),
        f"entries:         {r['entries']} ({format_bytes(r['bytes'])})",
        f"size bound:      {format_bytes(r['max_bytes'])}",
        f"temp files:      {r['temp_files']}",
        f"quarantined:     {r['quarantined']} ({format_bytes(r['quarantined_bytes'])})",
        f"entry format:    version {r['format_version']}",
    ]
    _emit(args, r, lines)
    return 0


def _cmd_verify(args) -> int:
    from pairmap._null_check import recompute_for_key

    cache = _open(args)
    r = cache.verify(recompute=recompute_for_key)
    lines = [
        f"cache directory: {cache.path}",
        f"checked {r['checked']} entries: {r['ok']} ok, {r['corrupt']} corrupt "
        f"(moved to quarantine), {r['unreadable']} unreadable, "
        f"{r['vanished']} removed meanwhile; values of {r['spot_checked']} entries "
        "spot-checked against recomputed draws",
    ]
    lines += [f"  corrupt: {name}" for name in r["corrupt_files"]]
    if r["temp_removed"]:
        lines.append(f"removed {r['temp_removed']} stale temporary file(s)")
    _emit(args, r, lines)
    return 1 if r["corrupt"] or r["unreadable"] else 0


def _cmd_prune(args) -> int:
    cache = _open(args)
    r = cache.prune()
    lines = [f"cache directory: {cache.path}"]
    if r["max_bytes"] is None:
        lines.append(
            "no size bound given (use --max-bytes, e.g. --max-bytes 500MB); "
            "only temporary and quarantined files were removed"
        )
    lines += [
        f"removed {r['removed']} entries ({format_bytes(r['freed_bytes'])}), "
        f"{r['temp_removed']} stale temp file(s), {r['quarantine_removed']} quarantined file(s)",
        f"remaining: {r['remaining_entries']} entries ({format_bytes(r['remaining_bytes'])}, "
        f"bound {format_bytes(r['max_bytes'])})",
    ]
    _emit(args, r, lines)
    return 0


def _cmd_clear(args) -> int:
    cache = _open(args)
    n = cache.clear()
    _emit(args, {"path": str(cache.path), "removed": n}, [f"removed {n} file(s) from {cache.path}"])
    return 0


def add_cache_subcommand(subparsers) -> argparse.ArgumentParser:
    """Add ``cache info|verify|prune|clear`` to an argparse subparsers object.

    Each action sets ``func``; ``args.func(args)`` runs it, prints its
    report to stdout and returns the exit code (``verify``: 1 when corrupt or
    unreadable entries were found, else 0).

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        From ``parser.add_subparsers()``.

    Returns
    -------
    argparse.ArgumentParser
        The ``cache`` parser.

    Examples
    --------
    >>> import argparse, tempfile
    >>> parser = argparse.ArgumentParser(prog="pairmap")
    >>> _ = add_cache_subcommand(parser.add_subparsers(dest="command"))
    >>> args = parser.parse_args(["cache", "prune", "--dir", tempfile.mkdtemp(),
    ...                           "--max-bytes", "500MB"])
    >>> args.max_bytes
    500000000
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dir",
        default=None,
        metavar="DIR",
        help=f"cache directory (default: ${ENV_CACHE_DIR} or the user cache directory, "
        f"currently {default_cache_dir()})",
    )
    common.add_argument(
        "--max-bytes",
        type=_size_arg,
        default=None,
        metavar="SIZE",
        help="size bound, e.g. 500MB or 2GiB (decimal kB/MB/GB, binary KiB/MiB/GiB; "
        "default: $PAIRMAP_CACHE_MAX_BYTES if set, else unbounded)",
    )
    common.add_argument("--json", action="store_true", help="print the report as JSON")

    cache = subparsers.add_parser(
        "cache",
        help="manage the on-disk null distribution cache",
        description=(
            "Inspect and maintain the cache of null AP distributions. All actions are "
            "safe while analyses are running (also on other hosts sharing the directory): "
            "a removed entry is simply recomputed when next needed."
        ),
    )
    actions = cache.add_subparsers(dest="cache_action", metavar="ACTION")
    actions.add_parser(
        "info", parents=[common], help="where the cache is and how much it holds"
    ).set_defaults(func=_cmd_info)
    actions.add_parser(
        "verify",
        parents=[common],
        help="check every entry's checksum; quarantine damaged ones (exit 1 if any)",
    ).set_defaults(func=_cmd_verify)
    actions.add_parser(
        "prune",
        parents=[common],
        help="remove least recently used entries down to --max-bytes; remove leftovers",
    ).set_defaults(func=_cmd_prune)
    actions.add_parser("clear", parents=[common], help="remove every cached entry").set_defaults(
        func=_cmd_clear
    )

    def _no_action(args) -> int:
        cache.print_help()
        return 2

    cache.set_defaults(func=_no_action)
    return cache
