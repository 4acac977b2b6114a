"""Unit tests for pairmap.cache: keys, entry format, filesystem and memory backends, CLI."""

from __future__ import annotations

import argparse
import json
import logging
import os
import threading
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pairmap.cache import (
    CacheWarning,
    CorruptEntryError,
    FilesystemCache,
    MemoryCache,
    NullCache,
    NullKey,
    open_cache,
    parse_size,
)
from pairmap.cache import filesystem as fsmod
from pairmap.cache.commands import add_cache_subcommand
from pairmap.cache.keys import HEADER_SIZE, decode_entry, encode_entry


def make_key(i: int = 0, method: str = "sampled", size: int = 50) -> NullKey:
    return NullKey(
        method, seed=i % 3, null_size=size, n_total=100 + i, n_pos=1 + i % 5, algorithm_version=1
    )


def reference(key: NullKey) -> np.ndarray:
    """Deterministic values of a key (independent of the cache)."""
    entropy = [
        key.algorithm_version,
        zlib.crc32(key.method.encode()),
        key.seed,
        key.null_size,
        key.n_total,
        key.n_pos,
    ]
    return np.random.default_rng(entropy).random(key.null_size)


def entry_bytes(key: NullKey, values=None) -> bytes:
    header, payload = encode_entry(key, reference(key) if values is None else values)
    return header + payload


# ----------------------------------------------------------------------------- keys


def test_key_filename_example():
    key = NullKey("sampled", 0, 10000, 1003, 3, 1)
    assert key.filename() == "v1-sampled-s0-ns10000-n1003-k3.pmnull"


def test_key_converts_numpy_ints_and_is_hashable():
    key = NullKey("exact", np.int64(2), np.uint32(5), np.int16(9), np.int8(3), np.int64(4))
    assert type(key.seed) is int and key == NullKey("exact", 2, 5, 9, 3, 4)
    assert len({key, NullKey("exact", 2, 5, 9, 3, 4)}) == 1


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"method": "Sampled"}, ValueError, "method"),
        ({"method": "a-b"}, ValueError, "method"),
        ({"method": "x" * 33}, ValueError, "method"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 2**64}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"seed": True}, TypeError, "seed"),
        ({"n_total": 0, "n_pos": 0}, ValueError, "n_total"),
        ({"n_pos": 11}, ValueError, "n_pos"),
        ({"null_size": -3}, ValueError, "null_size"),
        ({"algorithm_version": 2**32}, ValueError, "algorithm_version"),
    ],
)
def test_key_validation_names_the_field(kwargs, exc, match):
    fields = dict(method="sampled", seed=0, null_size=5, n_total=10, n_pos=2, algorithm_version=1)
    fields.update(kwargs)
    with pytest.raises(exc, match=match):
        NullKey(**fields)


key_strategy = st.builds(
    NullKey,
    method=st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True),
    seed=st.integers(0, 2**64 - 1),
    null_size=st.integers(0, 2**64 - 1),
    n_total=st.integers(1, 2**64 - 1),
    n_pos=st.just(1),
    algorithm_version=st.integers(0, 2**32 - 1),
)


@settings(max_examples=200, deadline=None)
@given(key_strategy, key_strategy)
def test_filename_is_injective_and_safe(a, b):
    assert (a.filename() == b.filename()) == (a == b)
    name = a.filename()
    assert len(name) < 255 and "/" not in name and fsmod._ENTRY_RE.fullmatch(name)


@settings(max_examples=100, deadline=None)
@given(key_strategy, st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=40))
def test_encode_decode_roundtrip(key, values):
    header, payload = encode_entry(key, values)
    assert len(header) == HEADER_SIZE
    got_key, got = decode_entry(header, bytearray(payload))
    assert got_key == key
    np.testing.assert_array_equal(got, np.asarray(values, dtype=np.float64))
    assert got.dtype == np.float64 and got.flags.writeable


def test_every_single_byte_flip_and_truncation_is_detected():
    key = NullKey("exact", 1, 4, 9, 2, 7)
    blob = entry_bytes(key, [0.1, 0.2, 0.3, np.nan])
    for i in range(len(blob)):
        for bit in (0x01, 0x80):
            bad = bytearray(blob)
            bad[i] ^= bit
            with pytest.raises(CorruptEntryError):
                decode_entry(bytes(bad[:HEADER_SIZE]), bad[HEADER_SIZE:])
    for cut in range(len(blob)):
        with pytest.raises(CorruptEntryError):
            decode_entry(blob[:HEADER_SIZE][:cut], blob[HEADER_SIZE:cut])


def test_as_null_array_rejects_bad_arrays(tmp_path):
    cache = FilesystemCache(tmp_path)
    with pytest.raises(ValueError, match="one-dimensional"):
        cache.put(make_key(), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="real numbers"):
        cache.put(make_key(), np.array(["a"]))
    with pytest.raises(TypeError, match="NullKey"):
        cache.get(("sampled", 0))
    with pytest.raises(ValueError, match="one-dimensional"):
        cache.get_or_compute(make_key(), lambda: np.zeros((3, 1)))


# ------------------------------------------------------------------- parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500MB", 500_000_000),
        ("500mb", 500_000_000),
        ("2GiB", 2 * 1024**3),
        ("1.5G", 1_500_000_000),
        ("10k", 10_000),
        ("123", 123),
        (" 7 B ", 7),
        (0, 0),
        (None, None),
        ("1KiB", 1024),
    ],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "MB", "-1", "5 XB", "1i", "ten", -4, 2.5])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError):
        parse_size(text)


# ------------------------------------------------------------ filesystem backend


def test_roundtrip_and_file_layout(tmp_path):
    cache = FilesystemCache(tmp_path / "c")
    key = make_key(3)
    assert cache.get(key) is None
    assert cache.put(key, reference(key)) is True
    path = tmp_path / "c" / key.filename()
    assert path.read_bytes() == entry_bytes(key)  # exactly header + raw LE float64
    got = cache.get(key)
    np.testing.assert_array_equal(got, reference(key))
    got[0] = -1.0  # a fresh writable copy; the entry is unaffected
    np.testing.assert_array_equal(cache.get(key), reference(key))
    assert (tmp_path / "c" / "CACHEDIR.TAG").read_bytes().startswith(b"Signature: 8a477f59")
    assert not [p for p in os.listdir(tmp_path / "c") if p.startswith(".tmp_")]


def test_get_or_compute_computes_once_then_reads(tmp_path):
    cache = FilesystemCache(tmp_path)
    key = make_key(1)
    calls = []

    def compute():
        calls.append(1)
        return reference(key).tolist()  # lists are accepted and returned as float64

    first = cache.get_or_compute(key, compute)
    second = FilesystemCache(tmp_path).get_or_compute(key, compute)
    assert len(calls) == 1
    assert first.dtype == second.dtype == np.float64
    np.testing.assert_array_equal(first, second)


def test_empty_array_roundtrip(tmp_path):
    cache = FilesystemCache(tmp_path)
    key = NullKey("exact", 0, 0, 1, 0, 1)
    assert cache.put(key, np.array([], dtype=np.float64))
    got = cache.get(key)
    assert got is not None and got.shape == (0,)


def _corruptions(key):
    good = entry_bytes(key)
    other = make_key(99)
    return {
        "truncated": good[: len(good) // 2],
        "empty": b"",
        "header only": good[:HEADER_SIZE],
        "flipped payload byte": good[:-3] + bytes([good[-3] ^ 0x10]) + good[-2:],
        "flipped header byte": good[:20] + bytes([good[20] ^ 0x01]) + good[21:],
        "trailing garbage": good + b"\0",
        "foreign entry": entry_bytes(other),
        "npy file": b"\x93NUMPY" + b"\0" * 200,
        "text": b"hello\n" * 40,
    }


@pytest.mark.parametrize("kind", list(_corruptions(make_key(0))))
def test_corrupt_entry_is_quarantined_and_recomputed(tmp_path, kind, caplog):
    caplog.set_level(logging.DEBUG, logger="pairmap.cache")
    key = make_key(0)
    cache = FilesystemCache(tmp_path)
    path = tmp_path / key.filename()
    path.write_bytes(_corruptions(key)[kind])
    with pytest.warns(CacheWarning, match="corrupt"):
        got = cache.get_or_compute(key, lambda: reference(key))
    np.testing.assert_array_equal(got, reference(key))
    assert path.read_bytes() == entry_bytes(key)  # replaced by a verified entry
    quarantined = list((tmp_path / "quarantine").iterdir())
    assert len(quarantined) == 1 and quarantined[0].read_bytes() == _corruptions(key)[kind]
    corrupt = [
        r for r in caplog.records if r.name == "pairmap.cache" and "corrupt" in r.getMessage()
    ]
    assert corrupt and all(r.levelname == "DEBUG" for r in corrupt)  # the warning is the report
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(cache.get(key), reference(key))


def test_quarantine_is_bounded(tmp_path):
    cache = FilesystemCache(tmp_path, max_quarantine=3)
    key = make_key(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheWarning)
        for i in range(6):
            (tmp_path / key.filename()).write_bytes(b"junk%d" % i)
            assert cache.get(key) is None
    names = sorted(p.read_bytes() for p in (tmp_path / "quarantine").iterdir())
    assert names == [b"junk3", b"junk4", b"junk5"]


def test_stale_temp_files_are_swept(tmp_path):
    cache = FilesystemCache(tmp_path, stale_temp_seconds=3600)
    host = cache._host
    dead = tmp_path / f".tmp_{host}_999999999_abc_{make_key().filename()}"
    live_mine = tmp_path / f".tmp_{host}_{os.getpid()}_abc_{make_key().filename()}"
    other_host_new = tmp_path / f".tmp_otherhost_1_abc_{make_key().filename()}"
    other_host_old = tmp_path / f".tmp_otherhost_2_abc_{make_key().filename()}"
    unrelated = tmp_path / "notes.txt"
    for p in (dead, live_mine, other_host_new, other_host_old, unrelated):
        p.write_bytes(b"partial")
    old = time.time() - 7200
    os.utime(other_host_old, (old, old))
    assert cache.put(make_key(), reference(make_key()))  # first put sweeps
    left = set(os.listdir(tmp_path))
    assert dead.name not in left and other_host_old.name not in left
    assert {live_mine.name, other_host_new.name, unrelated.name} <= left
    assert cache.info()["temp_files"] == 2


def test_prune_removes_least_recently_used_first(tmp_path):
    cache = FilesystemCache(tmp_path, touch_interval=60)
    keys = [make_key(i, size=100) for i in range(5)]  # 928 bytes each
    for i, key in enumerate(keys):
        assert cache.put(key, reference(key))
        t = time.time() - 10_000 + 100 * i  # key 0 oldest
        os.utime(tmp_path / key.filename(), (t, t))
    assert cache.get(keys[0]) is not None  # a hit makes key 0 most recently used
    size = (tmp_path / keys[0].filename()).stat().st_size
    result = cache.prune(max_bytes=3 * size)
    assert result["removed"] == 2 and result["remaining_bytes"] == 3 * size
    left = {p.name for p in tmp_path.glob("*.pmnull")}
    assert left == {keys[0].filename(), keys[3].filename(), keys[4].filename()}
    assert cache.prune(max_bytes=0)["remaining_entries"] == 0


def test_max_bytes_bounds_the_cache_on_put(tmp_path):
    size = HEADER_SIZE + 8 * 100
    cache = FilesystemCache(tmp_path, max_bytes=10 * size)
    for i in range(40):
        key = make_key(i, size=100)
        cache.put(key, reference(key))
        assert cache.info()["bytes"] <= 10 * size
    assert cache.info()["entries"] >= 8
    np.testing.assert_array_equal(
        cache.get(make_key(39, size=100)), reference(make_key(39, size=100))
    )
    # an entry larger than the bound is not stored at all
    assert (
        FilesystemCache(tmp_path, max_bytes=100).put(make_key(50), reference(make_key(50))) is False
    )


def test_info_verify_clear(tmp_path):
    cache = FilesystemCache(tmp_path)
    for i in range(4):
        cache.put(make_key(i), reference(make_key(i)))
    (tmp_path / make_key(1).filename()).write_bytes(entry_bytes(make_key(2)))  # foreign
    p3 = tmp_path / make_key(3).filename()
    p3.write_bytes(p3.read_bytes()[:-1])  # truncated
    (tmp_path / "keep-me.txt").write_text("not ours")
    info = cache.info()
    assert info["entries"] == 4 and info["exists"] and info["max_bytes"] is None
    report = cache.verify()
    assert report["checked"] == 4 and report["ok"] == 2 and report["corrupt"] == 2
    assert sorted(report["corrupt_files"]) == sorted([make_key(1).filename(), p3.name])
    assert cache.info()["quarantined"] == 2
    assert cache.verify()["corrupt"] == 0
    assert cache.clear() == 4  # 2 entries + 2 quarantined files
    assert cache.info()["entries"] == 0
    assert (tmp_path / "keep-me.txt").exists()


def test_cache_path_that_is_a_file(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("x")
    cache = FilesystemCache(path)
    assert cache.info()["entries"] == 0 and cache.verify()["checked"] == 0
    with pytest.warns(CacheWarning, match="cannot write"):
        got = cache.get_or_compute(make_key(), lambda: reference(make_key()))
    np.testing.assert_array_equal(got, reference(make_key()))
    assert path.read_text() == "x"


def test_threads_share_one_computation_per_key(tmp_path):
    cache = FilesystemCache(tmp_path)
    keys = [make_key(i) for i in range(4)]
    counts = {k: 0 for k in keys}
    lock = threading.Lock()
    errors = []

    def compute_for(key):
        def compute():
            with lock:
                counts[key] += 1
            time.sleep(0.01)
            return reference(key)

        return compute

    def worker(seed):
        rng = np.random.default_rng(seed)
        for _ in range(40):
            key = keys[rng.integers(len(keys))]
            got = cache.get_or_compute(key, compute_for(key))
            if not np.array_equal(got, reference(key)):
                errors.append(key)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(c == 1 for c in counts.values()), counts


# ------------------------------------------------------------------- open_cache


def test_open_cache_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("PAIRMAP_CACHE_DIR", str(tmp_path / "env"))
    monkeypatch.delenv("PAIRMAP_CACHE_MAX_BYTES", raising=False)
    default = open_cache()
    assert isinstance(default, FilesystemCache) and default.path == tmp_path / "env"
    assert open_cache(True).path == tmp_path / "env"
    assert open_cache(False) is None
    assert open_cache(tmp_path / "p", max_bytes="1MB").max_bytes == 1_000_000
    assert open_cache(str(tmp_path / "s")).path == tmp_path / "s"
    mem = MemoryCache()
    assert open_cache(mem) is mem
    monkeypatch.setenv("PAIRMAP_CACHE_MAX_BYTES", "2GB")
    assert open_cache(tmp_path).max_bytes == 2_000_000_000
    with pytest.raises(TypeError, match="cache must be"):
        open_cache(3)
    with pytest.raises(ValueError, match="empty"):
        open_cache("  ")


def test_open_cache_default_uses_platformdirs(monkeypatch):
    import platformdirs

    monkeypatch.delenv("PAIRMAP_CACHE_DIR", raising=False)
    expected = Path(platformdirs.user_cache_dir("pairmap", appauthor=False)) / "nulls"
    assert open_cache().path == expected


# ------------------------------------------------------------------ memory cache


def test_memory_cache_lru_and_interface():
    cache = MemoryCache(max_bytes=3 * 8 * 50)
    assert isinstance(cache, NullCache)
    keys = [make_key(i) for i in range(4)]
    for key in keys[:3]:
        assert cache.put(key, reference(key))
    assert cache.get(keys[0]) is not None  # refresh key 0
    cache.put(keys[3], reference(keys[3]))  # evicts key 1 (least recently used)
    assert cache.get(keys[1]) is None
    np.testing.assert_array_equal(cache.get(keys[0]), reference(keys[0]))
    got = cache.get(keys[0])
    got[:] = 0
    np.testing.assert_array_equal(cache.get(keys[0]), reference(keys[0]))
    assert cache.info()["entries"] == 3 and cache.verify()["corrupt"] == 0
    assert cache.prune(8 * 50)["remaining_entries"] == 1
    assert cache.clear() == 1 and cache.info()["entries"] == 0


# -------------------------------------------------------------------------- CLI


def run_cli(argv):
    parser = argparse.ArgumentParser(prog="pairmap")
    add_cache_subcommand(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_actions(tmp_path, capsys):
    # synthetic values under a method pairmap never samples: `verify` cannot recompute them,
    # so only headers and checksums are checked here (spot checks: test_cache_trust.py)
    cache = FilesystemCache(tmp_path)
    keys = [make_key(i, method="synthetic") for i in range(3)]
    for key in keys:
        cache.put(key, reference(key))
    assert run_cli(["cache", "info", "--dir", str(tmp_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["entries"] == 3

    assert run_cli(["cache", "verify", "--dir", str(tmp_path)]) == 0
    assert "3 ok" in capsys.readouterr().out
    (tmp_path / keys[0].filename()).write_bytes(b"broken")
    assert run_cli(["cache", "verify", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "1 corrupt" in out and keys[0].filename() in out

    size = (tmp_path / keys[1].filename()).stat().st_size
    assert run_cli(["cache", "prune", "--dir", str(tmp_path), "--max-bytes", str(size)]) == 0
    assert "removed 1 entries" in capsys.readouterr().out
    assert run_cli(["cache", "clear", "--dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == 1
    assert run_cli(["cache"]) == 2


def test_cli_rejects_bad_size(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        run_cli(["cache", "prune", "--dir", str(tmp_path), "--max-bytes", "lots"])
    assert exc.value.code == 2
    assert "max_bytes='lots' is not a size" in capsys.readouterr().err


def test_cache_directory_removed_while_running_is_recreated(tmp_path):
    import shutil
    import warnings as _warnings

    from pairmap.cache import FilesystemCache, NullKey

    root = tmp_path / "c"
    cache = FilesystemCache(root)
    k1 = NullKey("exact", 0, 0, 3, 1, 1)
    k2 = NullKey("exact", 0, 0, 4, 1, 1)
    assert cache.put(k1, [0.5, 1.0])
    shutil.rmtree(root)  # e.g. `pairmap cache clear` run by another process
    with _warnings.catch_warnings():
        _warnings.simplefilter("error")  # no "cannot write" warning may be raised
        assert cache.put(k2, [0.25, 1.0])
    assert cache.get(k2).tolist() == [0.25, 1.0]
