"""Simulated plate-based profiling screens with a known ground truth.

Follows the simulation design of Kalinin et al. (2025): every perturbation
has replicate wells spread over several plates (each replicate on a different
plate), every plate also holds negative-control wells, background features are
drawn from N(0, 1) and, for *active* perturbations, a chosen number of features
are drawn from N(1, 1) instead. The returned ``Metadata_Active`` column holds
the truth, so retrieval metrics can be checked against it.
"""

from __future__ import annotations

import logging
import string

import numpy as np
import pandas as pd

from ._validation import check_int

logger = logging.getLogger(__name__)

__all__ = ["simulate_screen"]

#: Rows and columns of a 384-well plate (16 x 24).
_PLATE_ROWS = string.ascii_uppercase[:16]
_PLATE_COLS = 24
_WELLS_PER_PLATE = len(_PLATE_ROWS) * _PLATE_COLS

CONTROL_LABEL = "negcon"


def _check_int(name: str, value, minimum: int) -> int:
    return check_int(name, value, minimum=minimum)


def _well_name(index: int) -> str:
    row, col = divmod(index, _PLATE_COLS)
    return f"{_PLATE_ROWS[row]}{col + 1:02d}"


def simulate_screen(
    n_perturbations: int = 100,
    n_replicates: int = 4,
    n_plates: int | None = None,
    n_controls_per_plate: int = 16,
    n_features: int = 200,
    n_active_features: int = 30,
    fraction_active: float = 0.5,
    seed: int = 0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Simulate a plate-based screen with replicates, controls and a known truth.

    Each perturbation gets ``n_replicates`` wells, each on a different plate
    (replicate ``r`` of perturbation ``p`` goes to plate ``(p + r) % n_plates``
    so perturbations are spread evenly). Every plate also gets
    ``n_controls_per_plate`` negative-control wells. All features are drawn from
    N(0, 1); for the first ``round(fraction_active * n_perturbations)``
    perturbations (after shuffling, so which ones is random) the same
    ``n_active_features`` randomly chosen features of every replicate are drawn
    from N(1, 1) instead. Well positions are shuffled within each plate.

    Parameters
    ----------
    n_perturbations : int, default 100
        Number of distinct (non-control) perturbations.
    n_replicates : int, default 4
        Replicate wells per perturbation (at least 2, at most ``n_plates``).
    n_plates : int or None, default None
        Number of plates; ``None`` means ``n_replicates``.
    n_controls_per_plate : int, default 16
        Negative-control wells on every plate (label ``"negcon"``).
    n_features : int, default 200
        Number of features per profile.
    n_active_features : int, default 30
        Number of features shifted for an active perturbation
        (``0 <= n_active_features <= n_features``).
    fraction_active : float, default 0.5
        Fraction of perturbations that are active (between 0 and 1).
    seed : int, default 0
        Seed of the random generator; the same arguments and seed always give
        the same screen.

    Returns
    -------
    meta : pandas.DataFrame
        One row per well with columns ``Metadata_Plate`` (``"plate_1"``...),
        ``Metadata_Well`` (``"A01"``...), ``Metadata_Perturbation``
        (``"pert_001"``... or ``"negcon"``), ``Metadata_Replicate`` (1-based, 0
        for controls), ``Metadata_Control`` (bool) and ``Metadata_Active``
        (bool, the truth; ``False`` for controls). Rows are sorted by plate and
        well.
    feats : numpy.ndarray
        ``float32`` array of shape ``(len(meta), n_features)``.

    Raises
    ------
    ValueError
        If a count is out of range or a plate would need more than 384 wells.

    Examples
    --------
    >>> meta, feats = simulate_screen(n_perturbations=10, n_features=30,
    ...                               n_active_features=5, seed=1)
    >>> feats.shape
    (104, 30)
    >>> int(meta["Metadata_Control"].sum())
    64
    >>> int(meta.groupby("Metadata_Perturbation")["Metadata_Plate"].nunique().max())
    4
    """
    n_perturbations = _check_int("n_perturbations", n_perturbations, 1)
    n_replicates = _check_int("n_replicates", n_replicates, 2)
    if n_plates is None:
        n_plates = n_replicates
    n_plates = _check_int("n_plates", n_plates, 1)
    if n_replicates > n_plates:
        raise ValueError(
            f"n_replicates={n_replicates} is larger than n_plates={n_plates}: each replicate goes "
            f"to a different plate, so use at least {n_replicates} plates"
        )
    n_controls_per_plate = _check_int("n_controls_per_plate", n_controls_per_plate, 0)
    n_features = _check_int("n_features", n_features, 1)
    n_active_features = _check_int("n_active_features", n_active_features, 0)
    if n_active_features > n_features:
        raise ValueError(
            f"n_active_features={n_active_features} is larger than n_features={n_features}"
        )
    fraction_active = float(fraction_active)
    if not 0.0 <= fraction_active <= 1.0:
        raise ValueError(f"fraction_active must be between 0 and 1, got {fraction_active}")

    rng = np.random.default_rng(seed)

    pert_ids = np.repeat(np.arange(n_perturbations), n_replicates)
    replicate = np.tile(np.arange(n_replicates), n_perturbations)
    plate = (pert_ids + replicate) % n_plates
    n_treated = len(pert_ids)

    ctrl_plate = np.repeat(np.arange(n_plates), n_controls_per_plate)
    plate_all = np.concatenate([plate, ctrl_plate])
    per_plate = np.bincount(plate_all, minlength=n_plates)
    if per_plate.max() > _WELLS_PER_PLATE:
        raise ValueError(
            f"a plate would need {int(per_plate.max())} wells, more than the {_WELLS_PER_PLATE} of "
            f"a 384-well plate; use more plates (n_plates) or fewer perturbations/controls"
        )

    n_active = int(round(fraction_active * n_perturbations))
    active_perts = np.zeros(n_perturbations, dtype=bool)
    active_perts[rng.permutation(n_perturbations)[:n_active]] = True

    n_rows = n_treated + len(ctrl_plate)
    feats = rng.standard_normal((n_rows, n_features))
    active_rows = np.flatnonzero(active_perts[pert_ids])
    for p in np.flatnonzero(active_perts):
        shifted = rng.choice(n_features, size=n_active_features, replace=False)
        rows = active_rows[pert_ids[active_rows] == p]
        feats[np.ix_(rows, shifted)] += 1.0

    # Well positions: a random permutation of the plate's first wells.
    wells = np.empty(n_rows, dtype=object)
    for k in range(n_plates):
        rows = np.flatnonzero(plate_all == k)
        slots = rng.permutation(_WELLS_PER_PLATE)[: len(rows)]
        wells[rows] = [_well_name(int(s)) for s in slots]

    width = max(3, len(str(n_perturbations)))
    pert_labels = np.array(
        [f"pert_{i + 1:0{width}d}" for i in range(n_perturbations)], dtype=object
    )
    meta = pd.DataFrame(
        {
            "Metadata_Plate": [f"plate_{k + 1}" for k in plate_all],
            "Metadata_Well": wells,
            "Metadata_Perturbation": np.concatenate(
                [pert_labels[pert_ids], np.full(len(ctrl_plate), CONTROL_LABEL, dtype=object)]
            ),
            "Metadata_Replicate": np.concatenate(
                [replicate + 1, np.zeros(len(ctrl_plate), dtype=np.int64)]
            ).astype(np.int64),
            "Metadata_Control": np.concatenate(
                [np.zeros(n_treated, dtype=bool), np.ones(len(ctrl_plate), dtype=bool)]
            ),
            "Metadata_Active": np.concatenate(
                [active_perts[pert_ids], np.zeros(len(ctrl_plate), dtype=bool)]
            ),
        }
    )
    order = np.lexsort((meta["Metadata_Well"].to_numpy(), plate_all))
    meta = meta.iloc[order].reset_index(drop=True)
    feats = np.ascontiguousarray(feats[order], dtype=np.float32)
    logger.debug(
        "simulated %d wells (%d perturbations x %d replicates, %d controls), %d active",
        n_rows,
        n_perturbations,
        n_replicates,
        len(ctrl_plate),
        n_active,
    )
    return meta, feats
