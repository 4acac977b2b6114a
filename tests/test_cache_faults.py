"""Fault injection for the filesystem cache: unwritable/full/failing storage and crash points.

Tests run as root, so permissions cannot make a directory read-only; storage
faults are injected through the cache's filesystem-operations seam
(:class:`pairmap.cache._fsops.FaultyOps`) instead.
"""

from __future__ import annotations

import errno
import logging
import os
import warnings
import zlib

import numpy as np
import pytest

from pairmap.cache import CacheWarning, FilesystemCache, NullKey
from pairmap.cache._fsops import FaultyOps

KEYS = [NullKey("sampled", i, 64 + 16 * i, 200 + i, 2 + i, 1) for i in range(3)]
CRASH_EXIT = 86


def reference(key: NullKey) -> np.ndarray:
    entropy = [
        key.algorithm_version,
        zlib.crc32(key.method.encode()),
        key.seed,
        key.null_size,
        key.n_total,
        key.n_pos,
    ]
    return np.random.default_rng(entropy).random(key.null_size)


def temp_files(path):
    return [p for p in os.listdir(path) if p.startswith(".tmp_")] if path.exists() else []


def assert_only_verified_entries(path):
    """Every entry file present is complete, verified and holds the right values."""
    clean = FilesystemCache(path)
    report = clean.verify()
    assert report["corrupt"] == 0 and report["unreadable"] == 0, report
    for key in KEYS:
        got = clean.get(key)
        assert got is None or np.array_equal(got, reference(key))


def scenario(cache: FilesystemCache) -> list[np.ndarray]:
    """A sequence of public-API calls: put, two get_or_compute, an overwrite, a get."""
    out = []
    cache.put(KEYS[0], reference(KEYS[0]))
    out.append(cache.get_or_compute(KEYS[1], lambda: reference(KEYS[1])))
    out.append(cache.get_or_compute(KEYS[2], lambda: reference(KEYS[2])))
    cache.put(KEYS[0], reference(KEYS[0]))
    out.append(cache.get_or_compute(KEYS[0], lambda: reference(KEYS[0])))
    return out


def check_results(results):
    for key, got in zip([KEYS[1], KEYS[2], KEYS[0]], results, strict=True):
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, reference(key))


# ------------------------------------------------------ unwritable / failing storage

FAIL_OPS = ["mkdir", "open_write", "write", "fsync", "close", "replace"]
ERRNOS = [errno.EROFS, errno.EACCES, errno.ENOSPC, errno.EDQUOT, errno.EIO]


@pytest.mark.parametrize("err", ERRNOS, ids=[errno.errorcode[e] for e in ERRNOS])
@pytest.mark.parametrize("op", FAIL_OPS)
def test_unwritable_cache_never_fails_and_warns_once(tmp_path, op, err, caplog):
    caplog.set_level(logging.DEBUG, logger="pairmap.cache")
    path = tmp_path / "cache"
    ops = FaultyOps(fail_at={op: 1}, error=err, persistent=True)
    cache = FilesystemCache(path, ops=ops)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = [scenario(cache) for _ in range(3)]
        stored = cache.put(KEYS[0], reference(KEYS[0]))
    for r in results:
        check_results(r)
    assert stored is False
    cache_warnings = [w for w in caught if issubclass(w.category, CacheWarning)]
    assert len(cache_warnings) == 1, [str(w.message) for w in cache_warnings]
    assert os.strerror(err) in str(cache_warnings[0].message)
    # reported once, as the CacheWarning; the log has it at DEBUG only (no double report)
    assert any(
        r.levelname == "DEBUG" and os.strerror(err) in r.getMessage()
        for r in caplog.records
        if r.name == "pairmap.cache"
    )
    assert not [r for r in caplog.records if r.name == "pairmap.cache" and r.levelno >= 30]
    assert temp_files(path) == []  # partial temp files were removed
    assert not list(path.glob("*.pmnull")) if path.exists() else True

    # the fault clears (space freed, remounted rw): the same instance caches again
    ops.fail_at.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.put(KEYS[1], reference(KEYS[1])) is True
    np.testing.assert_array_equal(FilesystemCache(path).get(KEYS[1]), reference(KEYS[1]))


def test_read_only_filesystem_still_serves_existing_entries(tmp_path):
    path = tmp_path / "cache"
    FilesystemCache(path).put(KEYS[0], reference(KEYS[0]))
    ro = FilesystemCache(
        path,
        touch_interval=0,
        ops=FaultyOps(
            fail_ops={"mkdir", "open_write", "utime", "rename", "unlink", "replace"},
            error=errno.EROFS,
        ),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        np.testing.assert_array_equal(ro.get(KEYS[0]), reference(KEYS[0]))  # utime fails: fine
        np.testing.assert_array_equal(
            ro.get_or_compute(KEYS[1], lambda: reference(KEYS[1])), reference(KEYS[1])
        )
        np.testing.assert_array_equal(
            ro.get_or_compute(KEYS[2], lambda: reference(KEYS[2])), reference(KEYS[2])
        )
    assert sum(issubclass(w.category, CacheWarning) for w in caught) == 1


def test_corrupt_entry_on_read_only_filesystem(tmp_path):
    path = tmp_path / "cache"
    path.mkdir()
    (path / KEYS[0].filename()).write_bytes(b"garbage")
    ro = FilesystemCache(
        path, ops=FaultyOps(fail_ops={"mkdir", "open_write", "rename", "unlink"}, error=errno.EROFS)
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = ro.get_or_compute(KEYS[0], lambda: reference(KEYS[0]))
    np.testing.assert_array_equal(got, reference(KEYS[0]))
    messages = [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]
    assert len(messages) == 2  # the corrupt entry, then (once) the unwritable cache
    assert "could not be removed" in messages[0] and "cannot write" in messages[1]


def test_read_errors_recompute_and_warn_once(tmp_path):
    path = tmp_path / "cache"
    FilesystemCache(path).put(KEYS[0], reference(KEYS[0]))
    ops = FaultyOps(fail_at={"read": 1}, error=errno.EIO, persistent=True)
    cache = FilesystemCache(path, ops=ops)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            np.testing.assert_array_equal(
                cache.get_or_compute(KEYS[0], lambda: reference(KEYS[0])), reference(KEYS[0])
            )
    assert sum(issubclass(w.category, CacheWarning) for w in caught) == 1
    assert_only_verified_entries(path)


def test_directory_fsync_failure_keeps_entry(tmp_path):
    # fsync #1 is the file, fsync #2 the directory
    cache = FilesystemCache(tmp_path, ops=FaultyOps(fail_at={"fsync": 2}, error=errno.EINVAL))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.put(KEYS[0], reference(KEYS[0])) is True
    np.testing.assert_array_equal(FilesystemCache(tmp_path).get(KEYS[0]), reference(KEYS[0]))


def test_short_writes_are_completed(tmp_path):
    ops = FaultyOps(short_writes=True)
    cache = FilesystemCache(tmp_path, ops=ops)
    assert cache.put(KEYS[2], reference(KEYS[2]))
    assert ops.calls["write"] > 10  # header and payload each needed many calls
    np.testing.assert_array_equal(FilesystemCache(tmp_path).get(KEYS[2]), reference(KEYS[2]))


# --------------------------------------------------------- crash-point enumeration


def count_ops(tmp_path):
    ops = FaultyOps()
    check_results(scenario(FilesystemCache(tmp_path / "count", ops=ops)))
    return dict(ops.calls)


CRASH_OPS = ["mkdir", "open_write", "write", "fsync", "close", "replace"]


@pytest.mark.parametrize("mode", ["EIO", "ENOSPC", "exit"])
def test_crash_point_enumeration(tmp_path, mode):
    counts = count_ops(tmp_path)
    # 3 entries + the CACHEDIR.TAG: every publication step happens at least 3 times
    assert counts["replace"] == 4 and counts["write"] >= 9 and counts["fsync"] >= 8
    cases = left_behind = 0
    for op in CRASH_OPS:
        for n in range(1, counts[op] + 1):
            path = tmp_path / f"{mode}-{op}-{n}"
            if mode == "exit":
                run_crashing_child(path, op, n)
                left_behind += bool(temp_files(path))
            else:
                err = getattr(errno, mode)
                ops = FaultyOps(fail_at={op: n}, error=err)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", CacheWarning)
                    check_results(scenario(FilesystemCache(path, ops=ops)))
                assert ops.calls[op] >= n  # the fault was really injected
                assert temp_files(path) == []
            # afterwards: only complete, verified entries; the API still returns correct arrays
            assert_only_verified_entries(path)
            recovered = FilesystemCache(path)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                check_results(scenario(recovered))
            assert temp_files(path) == []  # leftovers of the dead writer were swept
            for key in KEYS:
                np.testing.assert_array_equal(recovered.get(key), reference(key))
            cases += 1
    assert cases == sum(counts[op] for op in CRASH_OPS)
    if mode == "exit":  # crashes mid-write really left partial temp files to sweep
        assert left_behind >= counts["write"]


def run_crashing_child(path, op, n):
    pid = os.fork()
    if pid == 0:  # child: crash (os._exit, no cleanup) at the n-th `op` call
        code = 1
        try:
            scenario(
                FilesystemCache(
                    path, ops=FaultyOps(fail_at={op: n}, error=None, exit_code=CRASH_EXIT)
                )
            )
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == CRASH_EXIT, (op, n, status)
