"""pairmap: how strong and how reproducible are your profiles?

Mean average precision (mAP) for image-based, transcriptomic and proteomic
profiles, as defined by Kalinin et al. (2025, Nature Communications 16:5181):
every profile is a query, profiles sharing chosen metadata are positives,
profiles differing in chosen metadata are negatives; AP ranks them by
similarity, mAP averages per group and a permutation null gives p-values.

Public API
----------
average_precision
    AP per profile for any pairing rule (blocked, bounded memory).
mean_average_precision
    mAP per group with p-values, BH or hierarchical FDR.
p_values
    Per-profile p-values of AP against the permutation null.
find_pairs
    The pairs a rule defines, as an (n, 2) array of row positions.
assign_reference_index
    Give control rows their own label so they never pair with each other.
null_distribution
    Null AP values for k positives among n ranked items (cached, deterministic).
open_cache
    The on-disk null cache (filesystem backend).
split_multilabel
    Turn "A|B" label strings into label lists (for ``multilabel_col``).
simulate_screen
    A simulated plate-based screen (used by ``pairmap demo``).
warmup
    Compile the kernels ahead of the first run (``pairmap warmup``).
roc_auc_p_values, mean_roc_auc
    p-values of ROC-AUC (``average_precision(..., metrics=["roc_auc"])``): exact
    Mann-Whitney distribution per profile, group means through the mAP null machinery.
percent_replicating, percent_strong
    Replicate reproducibility as copairs (``correlation_test``) and cytominer-eval
    (``replicate_reproducibility``) define it, in bounded memory.
load_lincs_plate
    The LINCS Cell Painting plate that ships with pairmap (:mod:`pairmap.datasets`).
write_report
    A self-contained HTML report with figures (:mod:`pairmap.report`,
    figures in :mod:`pairmap.plotting`).
"""

from __future__ import annotations

import importlib
import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

# Public name -> module that defines it. Imported lazily so that ``import pairmap``
# stays cheap (numba kernels compile on first use only).
_API = {
    "average_precision": "pairmap.engine",
    "mean_average_precision": "pairmap.significance",
    "p_values": "pairmap.significance",
    "find_pairs": "pairmap.pairing",
    "assign_reference_index": "pairmap.pairing",
    "null_distribution": "pairmap.nulls",
    "open_cache": "pairmap.cache",
    "simulate_screen": "pairmap.simulate",
    "warmup": "pairmap.startup",
    "split_multilabel": "pairmap.multilabel",
    "roc_auc_p_values": "pairmap.roc_auc",
    "mean_roc_auc": "pairmap.roc_auc",
    "percent_replicating": "pairmap.replicating",
    "percent_strong": "pairmap.replicating",
    "load_lincs_plate": "pairmap.datasets",
    "write_report": "pairmap.report",
}

__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'pairmap' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
