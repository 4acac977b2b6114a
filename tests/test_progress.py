"""Progress bars appear only for work that takes long enough to need one."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

import pairmap
from pairmap._progress import DELAY_SECONDS, progress


def test_sub_second_work_prints_no_bar(capsys):
    meta = pd.DataFrame({"cpd": ["a", "a", "b", "b", "c", "c"]})
    feats = np.random.default_rng(0).normal(size=(6, 3))
    ap = pairmap.average_precision(meta, feats, ["cpd"], [], [], ["cpd"], progress_bar=True)
    pairmap.mean_average_precision(ap, "cpd", null_size=100, cache=False, progress_bar=True)
    pairmap.p_values(ap, null_size=100, cache=False, progress_bar=True)
    err = capsys.readouterr().err
    assert "average precision" not in err and "nulls" not in err and "%" not in err


def test_a_single_step_never_gets_a_bar():
    bar = progress(range(1), total=1, desc="AP nulls", enabled=True)
    assert bar.disable  # no "0/1 -> 1/1" bar


def test_long_work_shows_a_bar_after_the_delay(capsys):
    for _ in progress(range(3), total=3, desc="slow step", enabled=True):
        time.sleep(DELAY_SECONDS * 0.6)
    err = capsys.readouterr().err
    assert "slow step" in err


def test_disabled_bars_stay_silent(capsys):
    for _ in progress(range(3), total=3, desc="quiet step", enabled=False):
        time.sleep(DELAY_SECONDS * 0.6)
    assert "quiet step" not in capsys.readouterr().err
