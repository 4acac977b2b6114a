"""Reliability under concurrency: racing processes, SIGKILL, corruption, pruning.

Workers are forked processes using only the public cache API. Each logs one
line per operation (key index, op, and a digest of the returned array); the
parent compares every digest with an in-process reference. Bounded: the run
stops after a fixed number of logged operations.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
import warnings
import zlib

import numpy as np
import pytest

from pairmap.cache import CacheWarning, FilesystemCache, NullKey
from pairmap.cache._fsops import FsOps

KEYS = [
    NullKey("sampled" if i % 2 else "exact", i % 3, 200 + 350 * i, 50 + i, 1 + i % 4, 1)
    for i in range(10)
]
ENTRY_BYTES = [128 + 8 * k.null_size for k in KEYS]


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


def digest(arr: np.ndarray) -> str:
    return hashlib.sha256(
        arr.dtype.str.encode() + repr(arr.shape).encode() + arr.tobytes()
    ).hexdigest()[:32]


REF_DIGESTS = [digest(reference(k)) for k in KEYS]


def fork(target, *args) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            target(*args)
            code = 0
        finally:
            os._exit(code)
    return pid


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def worker(cache_dir, log_path, seed, max_bytes):
    cache = FilesystemCache(cache_dir, max_bytes=max_bytes, touch_interval=0.05)
    rng = np.random.default_rng(seed)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def log_warning(message, category, *args, **kwargs):
        if issubclass(category, CacheWarning) and "corrupt" in str(message):
            os.write(fd, b"W corrupt\n")

    warnings.showwarning = log_warning
    warnings.simplefilter("always")
    while True:
        i = int(rng.integers(len(KEYS)))
        key = KEYS[i]
        r = rng.random()
        if r < 0.70:
            op, arr = "goc", cache.get_or_compute(key, lambda key=key: reference(key))
        elif r < 0.90:
            op, arr = "get", cache.get(key)
        elif r < 0.97:
            op, arr = "put", None
            cache.put(key, reference(key))
        else:
            op, arr = "prune", None
            cache.prune(max_bytes=int(rng.integers(0, sum(ENTRY_BYTES))))
        line = f"{i} {op} {'-' if arr is None else digest(arr)}\n"
        os.write(fd, line.encode())


def corruptor(cache_dir, log_path, seed):
    rng = np.random.default_rng(seed)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    while True:
        time.sleep(float(rng.uniform(0.001, 0.01)))
        try:
            names = [n for n in os.listdir(cache_dir) if n.endswith(".pmnull")]
        except FileNotFoundError:
            continue
        if not names:
            continue
        name = names[int(rng.integers(len(names)))]
        path = os.path.join(cache_dir, name)
        action = int(rng.integers(5))
        try:
            if action == 0:  # truncate in place
                size = os.path.getsize(path)
                os.truncate(path, int(rng.integers(0, max(size, 1))))
            elif action == 1:  # flip one byte in place (header or payload)
                with open(path, "r+b") as f:
                    size = f.seek(0, os.SEEK_END)
                    pos = int(rng.integers(0, max(size, 1)))
                    f.seek(pos)
                    b = f.read(1) or b"\0"
                    f.seek(pos)
                    f.write(bytes([b[0] ^ (1 << int(rng.integers(8)))]))
            elif action == 2:  # a valid entry of another key under this name (foreign)
                other = os.path.join(cache_dir, names[int(rng.integers(len(names)))])
                with open(other, "rb") as f:
                    data = f.read()
                with open(path, "wb") as f:
                    f.write(data)
            elif action == 3:  # garbage
                with open(path, "wb") as f:
                    f.write(rng.bytes(int(rng.integers(0, 4000))))
            else:  # corrupt an in-flight temp file, if any
                temps = [n for n in os.listdir(cache_dir) if n.startswith(".tmp_")]
                if not temps:
                    continue
                with open(os.path.join(cache_dir, temps[0]), "r+b") as f:
                    f.seek(200)
                    f.write(b"\xff")
        except OSError:
            continue
        os.write(fd, f"C {action}\n".encode())


def read_log(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    return [line for line in data.decode(errors="replace").split("\n")[:-1] if line]


def count_ops(paths):
    return sum(
        1 for p in paths for line in read_log(p) if line[:1].isdigit() and line.count(" ") == 2
    )


def count_detected(paths):
    return sum(1 for p in paths for line in read_log(p) if line == "W corrupt")


@pytest.mark.slow
def test_racing_processes_with_sigkill_and_corruption(tmp_path):
    n_workers, target_ops = 16, 4000
    cache_dir = tmp_path / "cache"
    logs = tmp_path / "logs"
    logs.mkdir()
    rng = np.random.default_rng(2025)
    max_bytes = int(0.6 * sum(ENTRY_BYTES))  # forces concurrent auto-pruning
    log_paths, workers, spawned, kills = [], {}, 0, 0

    def spawn(slot):
        nonlocal spawned
        spawned += 1
        log = logs / f"w{spawned}.log"
        log_paths.append(log)
        # half the workers bound the cache size, half do not
        workers[slot] = fork(worker, cache_dir, log, spawned, max_bytes if slot % 2 else None)

    corruptor_log = logs / "corruptor.log"
    corruptor_pid = fork(corruptor, str(cache_dir), corruptor_log, 7)
    try:
        for slot in range(n_workers):
            spawn(slot)
        deadline = time.monotonic() + 240  # safety net against a hang, not a timing assertion
        # run until enough operations, kills, corruptions and detections happened
        while (
            count_ops(log_paths) < target_ops
            or kills < 40
            or len(read_log(corruptor_log)) < 40
            or count_detected(log_paths) < 10
        ):
            assert time.monotonic() < deadline, f"only {count_ops(log_paths)} ops logged"
            time.sleep(float(rng.uniform(0.001, 0.01)))
            slot = int(rng.integers(n_workers))
            kill(workers[slot])  # SIGKILL at an arbitrary point, then respawn
            kills += 1
            spawn(slot)
    finally:
        for pid in workers.values():
            kill(pid)
        kill(corruptor_pid)

    ops = wrong = returned = detected = 0
    for path in log_paths:
        for line in read_log(path):
            if line == "W corrupt":
                detected += 1
                continue
            parts = line.split(" ")
            if len(parts) != 3 or not parts[0].isdigit():
                continue  # torn by SIGKILL: not a completed operation
            ops += 1
            i, op, dig = int(parts[0]), parts[1], parts[2]
            if dig != "-":
                returned += 1
                wrong += dig != REF_DIGESTS[i]
            elif op == "goc":
                wrong += 1  # get_or_compute must always return an array
    corruptions = len(read_log(corruptor_log))
    print(
        f"ops={ops} returned={returned} wrong={wrong} kills={kills} "
        f"corruptions={corruptions} detected={detected}"
    )
    assert ops >= 1000 and returned >= 700, (ops, returned)
    assert wrong == 0, f"{wrong} wrong results out of {ops} operations"
    assert kills >= 40 and corruptions >= 40 and detected >= 10, (kills, corruptions, detected)

    # quiescent: leftovers of killed writers are swept, damaged entries quarantined,
    # and every key reads back correctly
    cache = FilesystemCache(cache_dir)
    cache.verify()
    cache.prune()
    assert cache.info()["temp_files"] == 0
    for key in KEYS:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            np.testing.assert_array_equal(
                cache.get_or_compute(key, lambda key=key: reference(key)), reference(key)
            )
    report = cache.verify()
    assert report["ok"] == len(KEYS) and report["corrupt"] == 0


def _reader(cache_dir, log_path, seed):
    cache = FilesystemCache(cache_dir)
    rng = np.random.default_rng(seed)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    warnings.simplefilter("ignore")
    for _ in range(150):
        i = int(rng.integers(len(KEYS)))
        if rng.random() < 0.5:
            op, arr = "get", cache.get(KEYS[i])
        else:
            op, arr = "goc", cache.get_or_compute(KEYS[i], lambda i=i: reference(KEYS[i]))
        os.write(fd, f"{i} {op} {'-' if arr is None else digest(arr)}\n".encode())


def _pruner(cache_dir, seed):
    cache = FilesystemCache(cache_dir)
    rng = np.random.default_rng(seed)
    while True:
        cache.prune(max_bytes=int(rng.integers(0, sum(ENTRY_BYTES))))
        time.sleep(0.001)


def test_pruning_concurrent_with_reader_processes(tmp_path):
    cache_dir = tmp_path / "cache"
    seed_cache = FilesystemCache(cache_dir)
    for key in KEYS:
        seed_cache.put(key, reference(key))
    pruners = [fork(_pruner, cache_dir, s) for s in range(2)]
    readers = [fork(_reader, cache_dir, tmp_path / f"r{s}.log", s) for s in range(4)]
    try:
        for pid in readers:
            _, status = os.waitpid(pid, 0)
            assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        for pid in pruners:
            kill(pid)
    lines = [line.split(" ") for s in range(4) for line in read_log(tmp_path / f"r{s}.log")]
    assert len(lines) == 600
    assert all(d != "-" for _, op, d in lines if op == "goc")  # get_or_compute always returns
    hits = [(int(i), d) for i, _, d in lines if d != "-"]  # plain get may miss after a prune
    assert len(hits) >= sum(op == "goc" for _, op, _ in lines)
    assert all(d == REF_DIGESTS[i] for i, d in hits)
    assert FilesystemCache(cache_dir).verify()["corrupt"] == 0


class _PruneWhileReading(FsOps):
    """Prunes the whole cache right after the first read syscall of an entry."""

    def __init__(self):
        self.cache = None
        self.fired = False

    def read(self, fd, n):
        data = super().read(fd, n)
        if not self.fired:
            self.fired = True
            assert FilesystemCache(self.cache.path).prune(max_bytes=0)["removed"] == 1
        return data


def test_reader_with_open_file_survives_prune(tmp_path):
    key = KEYS[5]
    FilesystemCache(tmp_path).put(key, reference(key))
    ops = _PruneWhileReading()
    cache = ops.cache = FilesystemCache(tmp_path, ops=ops)
    np.testing.assert_array_equal(cache.get(key), reference(key))  # read via the open fd
    assert ops.fired and not (tmp_path / key.filename()).exists()
    assert cache.get(key) is None  # the next reader simply misses and recomputes
    np.testing.assert_array_equal(cache.get_or_compute(key, lambda: reference(key)), reference(key))


def test_threads_and_processes_share_a_directory(tmp_path):
    """4 processes x 4 threads through get_or_compute on the same keys."""
    cache_dir = tmp_path / "cache"

    def run_process(log_path, seed):
        cache = FilesystemCache(cache_dir)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

        def thread_main(tseed):
            rng = np.random.default_rng(tseed)
            for _ in range(30):
                i = int(rng.integers(len(KEYS)))
                arr = cache.get_or_compute(KEYS[i], lambda i=i: reference(KEYS[i]))
                os.write(fd, f"{i} t {digest(arr)}\n".encode())

        threads = [threading.Thread(target=thread_main, args=(seed * 10 + t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    pids = [fork(run_process, tmp_path / f"p{s}.log", s) for s in range(4)]
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    lines = [line.split(" ") for s in range(4) for line in read_log(tmp_path / f"p{s}.log")]
    assert len(lines) == 4 * 4 * 30
    assert all(d == REF_DIGESTS[int(i)] for i, _, d in lines)
    report = FilesystemCache(cache_dir).verify()
    assert report["ok"] == len(KEYS) and report["corrupt"] == 0
