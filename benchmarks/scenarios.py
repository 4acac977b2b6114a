"""Benchmark scenarios: seeded, deterministic screens shared by pairmap and copairs.

Every scenario is a metadata :class:`pandas.DataFrame`, a C-contiguous float32 feature
matrix and the pairing arguments of ``average_precision`` (plus, for ``null1m``, the
arguments of ``mean_average_precision``). The same frame is handed to both tools, so the
generators only use numpy/pandas: the "activity" reference-index trick (each control gets
its own row number in ``Metadata_Reference_Index``, every other row ``-1``) is done here
the same way ``pairmap.assign_reference_index`` / ``copairs.matching.assign_reference_index``
would do it.

Synthetic layouts (all but ``lincs``)
-------------------------------------
Plates come in blocks of four replicate plates. A block holds ``perts_per_plate``
perturbations, each placed once on each of the four plates (so the four replicates of a
perturbation are always on different plates), plus ``ctrl_per_plate`` negative-control
wells (label ``"DMSO"``) on every plate. Wells are shuffled within a plate. ``orf72k``
additionally drops 1% of wells at random (failed-QC wells), so replicate and control counts
vary a little, which gives its AP table several (n_pos, n_total) null configurations.

Profiles are ``noise + plate effect + perturbation effect`` in float32: standard normal
noise, a random per-plate offset (norm ~0.3 sqrt(d)) and, for the 40% "active"
perturbations, a shift of random strength (0.3-1.5 sqrt(d)) along one of 2,048 random unit
directions. Rows are generated in fixed chunks of 65,536 with ``numpy.random.default_rng
([seed, chunk])`` so a million 300-feature profiles take a few seconds and at most one
chunk of temporaries.

Examples
--------
>>> from benchmarks.scenarios import build
>>> data = build("activity9k", scale=0.2)
>>> data.feats.dtype, data.feats.shape[1]
(dtype('float32'), 300)
>>> sorted(data.ap_kwargs())
['neg_diffby', 'neg_sameby', 'pos_diffby', 'pos_sameby']
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "PERT",
    "PLATE",
    "REFIDX",
    "SCENARIOS",
    "Scenario",
    "ScenarioData",
    "build",
    "count_pairs",
    "lincs_path",
    "required_dot_products",
]

PERT = "Metadata_pert"
PLATE = "Metadata_Plate"
TARGET = "Metadata_target"
REFIDX = "Metadata_Reference_Index"
CONTROL = "DMSO"
LINCS_FILE = "lincs_SQ00015054_normalized_feature_select.csv.gz"
LINCS_PERT = "Metadata_broad_sample"

_CHUNK = 65_536
_N_DIRECTIONS = 2_048


@dataclass(frozen=True)
class Scenario:
    """Static description of one benchmark scenario.

    Attributes
    ----------
    name : str
        Scenario key (``--scenarios`` value).
    summary : str
        One-line description for tables and the README.
    pos_sameby, pos_diffby, neg_sameby, neg_diffby : tuple of str
        Pairing rules passed to ``average_precision`` by both tools.
    kind : {"ap", "map", "perm"}
        ``"ap"`` times ``average_precision``; ``"map"`` times ``mean_average_precision`` on
        the AP table of ``base``; ``"perm"`` computes the AP table of ``base`` in the worker
        (untimed) and times ``mean_average_precision`` on it, with ``null="permutation"``
        for pairmap (copairs: its only null).
    base : str or None
        For ``kind="map"`` or ``"perm"``: the scenario whose data (and AP table) is used.
    map_sameby : tuple of str
        Grouping for ``mean_average_precision``.
    null_size : int
        Null draws for ``mean_average_precision``.
    heavy : bool
        True when a run takes minutes or many GB (run once while developing).
    layout : dict
        Parameters of the synthetic layout (empty for ``lincs``).
    multilabel : str or None
        The label-list column for multi-label (consistency) scenarios: both tools get
        ``multilabel_col=multilabel`` (copairs: ``copairs.map.multilabel``).
    """

    name: str
    summary: str
    pos_sameby: tuple[str, ...]
    pos_diffby: tuple[str, ...]
    neg_sameby: tuple[str, ...]
    neg_diffby: tuple[str, ...]
    kind: str = "ap"
    base: str | None = None
    map_sameby: tuple[str, ...] = ()
    null_size: int = 0
    heavy: bool = False
    layout: dict = field(default_factory=dict)
    multilabel: str | None = None

    def ap_kwargs(self) -> dict[str, list[str]]:
        """Pairing keyword arguments for ``average_precision`` (lists, fresh copies).

        Examples
        --------
        >>> SCENARIOS["ctrl100k"].ap_kwargs()["pos_sameby"]
        ['Metadata_pert']
        >>> SCENARIOS["consistency20k"].ap_kwargs()["multilabel_col"]
        'Metadata_target'
        """
        out = {
            "pos_sameby": list(self.pos_sameby),
            "pos_diffby": list(self.pos_diffby),
            "neg_sameby": list(self.neg_sameby),
            "neg_diffby": list(self.neg_diffby),
        }
        if self.multilabel:
            out["multilabel_col"] = self.multilabel
        return out

    def map_kwargs(self) -> dict:
        """Keyword arguments for ``mean_average_precision`` shared by both tools.

        Examples
        --------
        >>> SCENARIOS["null1m"].map_kwargs()["null_size"]
        1000000
        """
        return {
            "sameby": list(self.map_sameby),
            "null_size": self.null_size,
            "threshold": 0.05,
            "seed": 0,
        }


@dataclass
class ScenarioData:
    """A generated scenario: metadata, features and its :class:`Scenario`."""

    spec: Scenario
    meta: pd.DataFrame
    feats: np.ndarray

    def ap_kwargs(self) -> dict[str, list[str]]:
        """Pairing arguments of the scenario (see :meth:`Scenario.ap_kwargs`).

        Examples
        --------
        >>> build("orf72k", scale=0.02).ap_kwargs()["neg_sameby"]
        ['Metadata_Plate']
        """
        return self.spec.ap_kwargs()


_ACTIVITY = {
    "pos_sameby": (PERT, REFIDX),
    "pos_diffby": (),
    "neg_sameby": (),
    "neg_diffby": (PERT, REFIDX),
}
_PER_PLATE = {
    "pos_sameby": (PERT, REFIDX),
    "pos_diffby": (),
    "neg_sameby": (PLATE,),
    "neg_diffby": (PERT, REFIDX),
}

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            "lincs",
            "real LINCS plate (384 x 454), compound activity vs DMSO",
            pos_sameby=(LINCS_PERT, REFIDX),
            pos_diffby=(),
            neg_sameby=(),
            neg_diffby=(LINCS_PERT, REFIDX),
        ),
        Scenario(
            "activity9k",
            "2,000 compounds x 4 + 1,000 controls, 300 features, negatives = all controls",
            **_ACTIVITY,
            layout=dict(n_blocks=5, perts_per_plate=400, ctrl_per_plate=50, n_features=300),
        ),
        Scenario(
            "orf72k",
            "~72k profiles, 700 features, 24 controls/plate, same-plate negatives",
            **_PER_PLATE,
            layout=dict(
                n_blocks=47, perts_per_plate=360, ctrl_per_plate=24, n_features=700, dropout=0.01
            ),
        ),
        Scenario(
            "ctrl100k",
            "~100k profiles, 500 features, 32 same-label controls/plate are positives of "
            "each other, same-plate negatives",
            pos_sameby=(PERT,),
            pos_diffby=(),
            neg_sameby=(PLATE,),
            neg_diffby=(PERT,),
            heavy=True,
            layout=dict(n_blocks=65, perts_per_plate=352, ctrl_per_plate=32, n_features=500),
        ),
        Scenario(
            "activity110k",
            "25,000 compounds x 4 + 10,000 controls, 300 features, negatives = all controls",
            **_ACTIVITY,
            heavy=True,
            layout=dict(n_blocks=100, perts_per_plate=250, ctrl_per_plate=25, n_features=300),
        ),
        Scenario(
            "plates1m",
            "~1M profiles, 300 features, 16 controls/plate, same-plate negatives",
            **_PER_PLATE,
            heavy=True,
            layout=dict(n_blocks=651, perts_per_plate=368, ctrl_per_plate=16, n_features=300),
        ),
        Scenario(
            "lincs_perm",
            "mAP with the permutation null (pairmap) vs copairs' null, null_size=10**4, on the "
            "lincs AP table",
            pos_sameby=(LINCS_PERT, REFIDX),
            pos_diffby=(),
            neg_sameby=(),
            neg_diffby=(LINCS_PERT, REFIDX),
            kind="perm",
            base="lincs",
            map_sameby=(LINCS_PERT,),
            null_size=10**4,
        ),
        Scenario(
            "activity9k_perm",
            "mAP with the permutation null (pairmap) vs copairs' null, null_size=10**4, on the "
            "activity9k AP table",
            **_ACTIVITY,
            kind="perm",
            base="activity9k",
            map_sameby=(PERT,),
            null_size=10**4,
        ),
        Scenario(
            "consistency20k",
            "20,000 consensus profiles, 500 features, 1-5 of 2,000 skewed targets each; "
            "positives share a target, negatives share none",
            pos_sameby=(TARGET,),
            pos_diffby=(PERT,),
            neg_sameby=(),
            neg_diffby=(TARGET,),
            multilabel=TARGET,
            layout=dict(n_compounds=20_000, n_targets=2_000, max_labels=5, n_features=500),
        ),
        Scenario(
            "null1m",
            "mAP p-values, null_size=10**6, on the orf72k AP table",
            **_PER_PLATE,
            kind="map",
            base="orf72k",
            map_sameby=(PERT,),
            null_size=10**6,
            heavy=True,
        ),
    ]
}


#: layout variants of the per-plate scenarios (issue 11): same sizes and rules, screens laid
#: out as a new user's might be
VARIANTS = {
    "random": ("replicates on random plates", dict(placement="random")),
    "shuffled": ("rows in random order", dict(shuffle_rows=True)),
    "fortran": ("Fortran-ordered features", dict(fortran=True)),
}
for _base in ("orf72k", "plates1m"):
    for _suffix, (_what, _extra) in VARIANTS.items():
        _spec = SCENARIOS[_base]
        SCENARIOS[f"{_base}_{_suffix}"] = Scenario(
            f"{_base}_{_suffix}",
            f"{_spec.summary}; {_what}",
            _spec.pos_sameby,
            _spec.pos_diffby,
            _spec.neg_sameby,
            _spec.neg_diffby,
            heavy=_spec.heavy,
            layout={**_spec.layout, **_extra},
        )


def lincs_path() -> Path:
    """Location of the real LINCS plate (``../shared/data`` next to the repository).

    Examples
    --------
    >>> lincs_path().name
    'lincs_SQ00015054_normalized_feature_select.csv.gz'
    """
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / LINCS_FILE


def _reference_index(is_control: np.ndarray) -> np.ndarray:
    """Row number for control rows, -1 elsewhere (the reference-index trick)."""
    return np.where(is_control, np.arange(is_control.size), -1).astype(np.int64)


def _layout(
    n_blocks: int,
    perts_per_plate: int,
    ctrl_per_plate: int,
    rng: np.random.Generator,
    dropout: float = 0.0,
    n_replicates: int = 4,
    placement: str = "block",
) -> tuple[np.ndarray, np.ndarray]:
    """Integer pert codes (-1 = control) and plate codes, shuffled within plates.

    ``placement="random"`` moves every treated well to a random treated slot of any
    plate, so a perturbation's replicates land on random plates (rarely the same one).
    """
    wells = perts_per_plate + ctrl_per_plate
    n_plates = n_blocks * n_replicates
    plate = np.repeat(np.arange(n_plates, dtype=np.int64), wells)
    block = plate // n_replicates
    slot = np.tile(np.arange(wells, dtype=np.int64), n_plates)
    pert = np.where(slot < perts_per_plate, block * perts_per_plate + slot, -1)
    if placement == "random":
        treated = np.flatnonzero(pert >= 0)
        pert[treated] = pert[rng.permutation(treated)]
    # shuffle wells within each plate
    order = np.lexsort((rng.random(plate.size), plate))
    pert, plate = pert[order], plate[order]
    if dropout > 0:
        keep = rng.random(plate.size) >= dropout
        pert, plate = pert[keep], plate[keep]
    return pert, plate


def _features(pert: np.ndarray, plate: np.ndarray, n_features: int, seed: int) -> np.ndarray:
    """Chunked, seeded float32 profiles: noise + plate effect + perturbation effect."""
    d = n_features
    rng = np.random.default_rng([seed, 1])
    n_perts = int(pert.max()) + 1 if pert.size and pert.max() >= 0 else 0
    n_plates = int(plate.max()) + 1 if plate.size else 0
    root_d = np.float32(np.sqrt(d))
    directions = rng.standard_normal((_N_DIRECTIONS, d), dtype=np.float32)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    active = rng.random(n_perts) < 0.4
    strength = np.where(active, rng.uniform(0.3, 1.5, n_perts), 0.0).astype(np.float32)
    strength *= root_d
    which = rng.integers(_N_DIRECTIONS, size=n_perts)
    plate_eff = rng.standard_normal((n_plates, d), dtype=np.float32)
    plate_eff *= np.float32(0.3) * root_d / np.linalg.norm(plate_eff, axis=1, keepdims=True)

    out = np.empty((pert.size, d), dtype=np.float32)
    for k, start in enumerate(range(0, pert.size, _CHUNK)):
        stop = min(start + _CHUNK, pert.size)
        chunk = out[start:stop]
        np.random.default_rng([seed, 2, k]).standard_normal(
            chunk.shape, dtype=np.float32, out=chunk
        )
        chunk += plate_eff[plate[start:stop]]
        p = pert[start:stop]
        treated = np.flatnonzero(p >= 0)
        if treated.size:
            q = p[treated]
            chunk[treated] += strength[q, None] * directions[which[q]]
    return out


def _synthetic(spec: Scenario, scale: float, seed: int) -> ScenarioData:
    lay = dict(spec.layout)
    n_blocks = max(1, round(lay.pop("n_blocks") * scale))
    n_features = lay.pop("n_features")
    shuffle_rows, fortran = lay.pop("shuffle_rows", False), lay.pop("fortran", False)
    rng = np.random.default_rng([seed, 0])
    pert, plate = _layout(n_blocks, rng=rng, **lay)
    if shuffle_rows:
        order = np.random.default_rng([seed, 3]).permutation(pert.size)
        pert, plate = pert[order], plate[order]
    is_control = pert < 0
    pert_labels = np.char.add("pert_", np.char.zfill(pert.astype(str), 6))
    pert_labels[is_control] = CONTROL
    meta = pd.DataFrame(
        {
            PLATE: np.char.add("plate_", np.char.zfill(plate.astype(str), 4)),
            PERT: pert_labels,
        }
    )
    if REFIDX in spec.pos_sameby + spec.neg_diffby:
        meta[REFIDX] = _reference_index(is_control)
    feats = _features(pert, plate, n_features, seed)
    if fortran:  # transposed in row chunks: never two full copies at once
        out = np.empty(feats.shape, dtype=feats.dtype, order="F")
        for start in range(0, len(feats), _CHUNK):
            out[start : start + _CHUNK] = feats[start : start + _CHUNK]
        feats = out
    return ScenarioData(spec, meta, feats)


def _lincs(spec: Scenario) -> ScenarioData:
    path = lincs_path()
    if not path.exists():
        raise FileNotFoundError(
            f"the lincs scenario needs {path} (the shared data directory next to the "
            "repository); run the other scenarios with --scenarios"
        )
    df = pd.read_csv(path)
    is_meta = df.columns.str.startswith("Metadata_")
    meta = df.loc[:, is_meta].reset_index(drop=True)
    feats = np.ascontiguousarray(df.loc[:, ~is_meta].to_numpy(dtype=np.float32))
    meta[REFIDX] = _reference_index((meta[LINCS_PERT] == CONTROL).to_numpy())
    return ScenarioData(spec, meta, feats)


def _target_weights(n_targets: int) -> np.ndarray:
    """Skewed target popularity, p(t) ~ 1 / (t + 20): with 20,000 compounds x 3 labels the
    most popular targets have ~650 compounds, the median ~20, the rarest ~6."""
    w = 1.0 / (np.arange(n_targets) + 20.0)
    return w / w.sum()


def _consistency(spec: Scenario, scale: float, seed: int) -> ScenarioData:
    """Consensus profiles (one per compound) with 1-``max_labels`` targets each.

    Every target has a random unit direction; 40% of the compounds are active and add
    their targets' directions (strength 0.2-1.0 sqrt(d) each) to standard normal noise.
    """
    lay = spec.layout
    n = max(200, round(lay["n_compounds"] * scale))
    n_targets, d = lay["n_targets"], lay["n_features"]
    rng = np.random.default_rng([seed, 3])
    weights = _target_weights(n_targets)
    k = rng.integers(1, lay["max_labels"] + 1, size=n)
    labels = [np.sort(rng.choice(n_targets, size=int(c), replace=False, p=weights)) for c in k]
    names = np.char.add("T", np.char.zfill(np.arange(n_targets).astype(str), 4))
    directions = rng.standard_normal((n_targets, d), dtype=np.float32)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    feats = rng.standard_normal((n, d), dtype=np.float32)
    root_d = np.float32(np.sqrt(d))
    active = rng.random(n) < 0.4
    for i in np.flatnonzero(active):
        strength = rng.uniform(0.2, 1.0, size=len(labels[i])).astype(np.float32) * root_d
        feats[i] += strength @ directions[labels[i]]
    meta = pd.DataFrame(
        {
            PERT: np.char.add("cpd_", np.char.zfill(np.arange(n).astype(str), 6)),
            TARGET: pd.Series([names[x].tolist() for x in labels], dtype=object),
        }
    )
    return ScenarioData(spec, meta, np.ascontiguousarray(feats))


def label_lists(data: ScenarioData) -> ScenarioData:
    """The same data with the label column as Python lists of str (Parquet returns arrays).

    Examples
    --------
    >>> data = label_lists(build("consistency20k", scale=0.01))
    >>> type(data.meta[TARGET][0]).__name__
    'list'
    """
    col = data.spec.multilabel
    if col is None:
        return data
    meta = data.meta.copy()
    meta[col] = pd.Series([[str(x) for x in v] for v in meta[col]], dtype=object)
    return ScenarioData(data.spec, meta, data.feats)


def build(name: str, scale: float = 1.0, seed: int = 0) -> ScenarioData:
    """Generate a scenario's metadata, features and pairing arguments.

    Parameters
    ----------
    name : str
        A key of :data:`SCENARIOS`. ``null1m`` returns its base scenario's data (``orf72k``)
        with the ``null1m`` spec.
    scale : float, default 1.0
        Multiplies the number of four-plate blocks (at least one block), keeping plate
        structure, replicate count and controls per plate. Ignored for ``lincs``.
    seed : int, default 0
        Seed; the same (name, scale, seed) always gives identical data.

    Returns
    -------
    ScenarioData
        ``meta`` (index 0..n-1), ``feats`` (float32, n x d; C-contiguous except for the
        ``*_fortran`` variants) and ``spec``.

    Examples
    --------
    >>> data = build("plates1m", scale=0.002)
    >>> data.meta.groupby("Metadata_Plate").size().iloc[0]
    np.int64(384)
    """
    try:
        spec = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}") from None
    if spec.kind in ("map", "perm"):
        data = build(spec.base, scale=scale, seed=seed)
        return ScenarioData(spec, data.meta, data.feats)
    if name == "lincs":
        return _lincs(spec)
    if spec.multilabel:
        return _consistency(spec, scale, seed)
    return _synthetic(spec, scale, seed)


def _same_pairs(codes: list[np.ndarray]) -> int:
    """Number of unordered row pairs equal in every (non-empty list of) code arrays."""
    key = codes[0]
    for c in codes[1:]:
        key = pd.factorize(key * (int(c.max()) + 1) + c)[0].astype(np.int64)
    sizes = np.bincount(key).astype(np.int64)
    return int((sizes * (sizes - 1) // 2).sum())


def count_pairs(meta: pd.DataFrame, sameby, diffby) -> int:
    """Count unordered pairs equal in all ``sameby`` and different in all ``diffby`` columns.

    Exact, by inclusion-exclusion over subsets of ``diffby`` on group sizes (no pairs are
    materialised), so it is cheap even for a million rows.

    Parameters
    ----------
    meta : DataFrame
        Metadata.
    sameby, diffby : list of str
        Column lists (the "all" form of the pairing rules).

    Returns
    -------
    int
        Number of pairs.

    Examples
    --------
    >>> m = pd.DataFrame({"a": [1, 1, 2, 2], "b": [1, 2, 1, 2]})
    >>> count_pairs(m, ["a"], []), count_pairs(m, [], ["a", "b"])
    (2, 2)
    """
    codes = {c: pd.factorize(meta[c])[0].astype(np.int64) for c in [*sameby, *diffby]}
    const = np.zeros(len(meta), dtype=np.int64)
    total = 0
    for r in range(len(diffby) + 1):
        for subset in itertools.combinations(diffby, r):
            cols = [codes[c] for c in (*sameby, *subset)] or [const]
            total += (-1) ** r * _same_pairs(cols)
    return total


def required_dot_products(data: ScenarioData) -> int:
    """Distinct (unordered) profile pairs whose similarity the pairing rules need.

    Positive and negative pairs of every scenario are disjoint (the negative rule differs in
    the column the positive rule shares), so this is positives plus negatives.

    Examples
    --------
    >>> required_dot_products(build("activity9k", scale=0.2))
    322400
    """
    s = data.spec
    if s.multilabel:
        # one profile per compound: every pair either shares a target (positive for each
        # shared target) or shares none (negative), so every pair is needed once
        return len(data.meta) * (len(data.meta) - 1) // 2
    return count_pairs(data.meta, s.pos_sameby, s.pos_diffby) + count_pairs(
        data.meta, s.neg_sameby, s.neg_diffby
    )
