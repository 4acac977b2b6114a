"""The one-time kernel compile is announced, kept out of progress ETAs, and can run ahead."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

import pairmap
from pairmap import startup as W
from pairmap._small import compiled_only
from pairmap.cli import main


@pytest.fixture
def fresh_process(monkeypatch):
    """Pretend nothing was compiled in this process yet."""
    monkeypatch.setattr(W, "_ready", set())


def _ap(**kw):
    meta, X = W._tiny_screen(np.float32)
    cols = ["pert", "ref"]
    with compiled_only():  # a screen beyond the NumPy path of small screens
        return pairmap.average_precision(meta, X, cols, [], [], cols, **kw)


def test_missing_kernels_are_compiled_once_with_an_announcement(fresh_process, monkeypatch, caplog):
    compiled = []
    monkeypatch.setattr(W, "kernels_cached", lambda dtype: False)
    monkeypatch.setattr(W, "_compile", compiled.append)
    started = []
    import tqdm.auto

    real_tqdm = tqdm.auto.tqdm

    def spy_tqdm(*args, **kwargs):  # the bar (and its ETA) starts after the compile
        started.append(list(compiled))
        return real_tqdm(*args, **kwargs)

    monkeypatch.setattr(tqdm.auto, "tqdm", spy_tqdm)
    with caplog.at_level(logging.WARNING, logger="pairmap"):
        _ap(progress_bar=True)
        _ap(progress_bar=False)
    assert compiled == ["float32", None]  # the null kernels in the same go
    assert started and all(s == ["float32", None] for s in started)
    msgs = [r.getMessage() for r in caplog.records if "compiling kernels" in r.getMessage()]
    assert len(msgs) == 1 and "first run only" in msgs[0]


def test_cached_kernels_are_not_announced(fresh_process, monkeypatch, caplog):
    monkeypatch.setattr(W, "kernels_cached", lambda dtype: True)
    monkeypatch.setattr(W, "_compile", lambda dtype: pytest.fail("compiled although cached"))
    with caplog.at_level(logging.WARNING, logger="pairmap"):
        _ap(progress_bar=False)
    assert not [r for r in caplog.records if "compiling" in r.getMessage()]


def test_failed_compile_is_retried_next_time(fresh_process, monkeypatch):
    monkeypatch.setattr(W, "kernels_cached", lambda dtype: False)

    def boom(dtype):
        raise RuntimeError("compiler crashed")

    monkeypatch.setattr(W, "_compile", boom)
    with pytest.raises(RuntimeError, match="compiler crashed"):
        W.ensure_compiled("float64")
    assert "float64" not in W._ready


def test_warmup_leaves_every_kernel_set_cached():
    W.warmup(["float32", "float64"])
    assert all(W.kernels_cached(d) for d in ("float32", "float64", None))
    with pytest.raises(ValueError, match="float32"):
        W.warmup(["int8"])


def test_warmup_command(capsys):
    assert main(["warmup"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("pairmap warmup: kernels") and "cached" in out


def test_tiny_screen_reaches_dense_and_sparse_paths():
    from pairmap import _retrieval

    meta, X = W._tiny_screen(np.float64)
    assert len(meta) >= _retrieval.DENSE_MIN_BUCKET
    assert isinstance(meta, pd.DataFrame) and X.shape == (160, 8)


def test_first_run_in_a_new_environment_announces_one_compile(tmp_path):
    """A real first run (empty kernel cache): AP then mAP log the compile exactly once."""
    import os
    import subprocess
    import sys

    code = (
        "import logging, numpy as np, pairmap, pairmap._small\n"
        "from pairmap import startup\n"
        "logging.basicConfig(level=logging.WARNING, format='%(message)s')\n"
        "pairmap._small.MAX_PROFILES = 0  # a screen beyond the NumPy path of small screens\n"
        "meta, X = startup._tiny_screen(np.float32, seed=3)\n"
        "cols = ['pert', 'ref']\n"
        "ap = pairmap.average_precision(meta, X, cols, [], [], cols, progress_bar=False)\n"
        "pairmap.mean_average_precision(ap, 'pert', null_size=50, threshold=0.05,\n"
        "                               cache=False, progress_bar=False)\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("compiling kernels, first run only") == 1, out.stderr
    assert out.stderr.count("kernels compiled in") == 1, out.stderr
