"""The demo: a complete analysis on built-in data, with tables, run info and an HTML report.

Two data sets, both without network:

* ``"simulation"`` -- :func:`pairmap.simulate_screen` (known truth: recall and
  precision of the significant perturbations are reported);
* ``"lincs"`` -- the LINCS plate shipped in :mod:`pairmap.datasets`: phenotypic
  activity of each compound against the DMSO wells, and the same APs grouped
  by compound and dose with hierarchical FDR (compound, then dose), and
  phenotypic consistency by mechanism of action (multi-label ``Metadata_moa``:
  compounds sharing a MoA retrieve each other rather than compounds without one).
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["DATASETS", "run_demo"]

#: Data sets the demo can run on.
DATASETS = ("simulation", "lincs")
_THRESHOLD = 0.05
_REF = "Metadata_Reference_Index"


def _default_demo_dir() -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path.cwd() / f"pairmap-demo-{stamp}"
    candidate, k = base, 1
    while candidate.exists():
        candidate = base.with_name(f"{base.name}-{k}")
        k += 1
    return candidate


def _demo_plates(n_perturbations: int, n_replicates: int, controls: int = 16) -> int:
    """Fewest plates (at least one per replicate) on which the demo screen fits.

    Replicate ``r`` of perturbation ``p`` goes to plate ``(p + r) % n_plates``, so a
    plate holds at most ``n_replicates * ceil(n_perturbations / n_plates)`` treated
    wells plus ``controls`` control wells, out of 384.
    """
    n_plates = max(n_replicates, 1)
    while n_plates < n_perturbations and (
        n_replicates * -(-n_perturbations // n_plates) + controls > 384
    ):
        n_plates += 1
    return n_plates


def _activity_rules(keys: list) -> dict:
    return {"pos_sameby": keys, "pos_diffby": [], "neg_sameby": [], "neg_diffby": keys}


def _simulation(settings: dict, run: dict) -> dict:
    """Activity analysis of a simulated screen; adds truth and recall/precision."""
    import pandas as pd

    import pairmap

    n_plates = _demo_plates(settings["n_perturbations"], settings["n_replicates"])
    meta, feats = pairmap.simulate_screen(**settings, n_plates=n_plates, seed=run["seed"])
    meta = pairmap.assign_reference_index(meta, "Metadata_Control", reference_col=_REF)
    rules = _activity_rules(["Metadata_Perturbation", _REF])
    ap = pairmap.average_precision(
        meta, feats, **rules, n_jobs=run["n_jobs"], progress_bar=run["progress_bar"]
    )
    treated = ap[~ap["Metadata_Control"].to_numpy(dtype=bool)].reset_index(drop=True)
    maps = pairmap.mean_average_precision(treated, ["Metadata_Perturbation"], **run["map"])
    truth = meta.loc[~meta["Metadata_Control"], ["Metadata_Perturbation", "Metadata_Active"]]
    maps = maps.merge(
        truth.drop_duplicates("Metadata_Perturbation"),
        on="Metadata_Perturbation",
        how="left",
        validate="one_to_one",
    )
    significant = maps["below_corrected_p"].to_numpy(dtype=bool)
    active = maps["Metadata_Active"].to_numpy(dtype=bool)
    tp = int((significant & active).sum())
    names = [f"feature_{j:03d}" for j in range(feats.shape[1])]
    return {
        "ap": ap,
        "maps": maps,
        "extra": {},
        "rules": rules,
        "sameby": ["Metadata_Perturbation"],
        "hierarchical_by": None,
        "profiles": pd.concat([meta, pd.DataFrame(feats, columns=names)], axis=1),
        "source": f"simulate_screen({', '.join(f'{k}={v}' for k, v in settings.items())})",
        "n_features": feats.shape[1],
        "n_controls": int(meta["Metadata_Control"].sum()),
        "columns": {"truth": "Metadata_Active"},
        "truth": {
            "n_active": int(active.sum()),
            "true_positives": tp,
            "recall": tp / active.sum() if active.any() else math.nan,
            "precision": tp / significant.sum() if significant.any() else math.nan,
        },
        "title": f"pairmap demo: {len(maps)} simulated perturbations (seed {run['seed']})",
    }


def _lincs(run: dict) -> dict:
    """Activity of each LINCS compound vs DMSO, by compound and by compound x dose."""
    import pairmap
    from pairmap.datasets import LINCS_PLATE_FILE, load_lincs_plate

    meta, feats = load_lincs_plate(split=True)
    cpd, dose = "Metadata_broad_sample", "Metadata_mmoles_per_liter"
    meta = pairmap.assign_reference_index(meta, f"{cpd} == 'DMSO'", reference_col=_REF)
    rules = _activity_rules([cpd, _REF])
    ap = pairmap.average_precision(
        meta, feats, **rules, n_jobs=run["n_jobs"], progress_bar=run["progress_bar"]
    )
    maps = pairmap.mean_average_precision(ap, [cpd], **run["map"])
    by_dose = pairmap.mean_average_precision(ap, [cpd, dose], hierarchical_by=[cpd], **run["map"])
    moa_ap, by_moa = _lincs_consistency(meta, feats, run)
    extra = {"map_results_by_dose": by_dose, "consistency_map_results": by_moa}
    return {
        "ap": ap,
        "maps": maps,
        "extra": extra,
        "extra_ap": {"consistency_ap_scores": moa_ap},
        "rules": rules,
        "sameby": [cpd],
        "hierarchical_by": None,
        "profiles": None,
        "source": f"LINCS Cell Painting plate SQ00015054 (pairmap.datasets, {LINCS_PLATE_FILE})",
        "n_features": feats.shape[1],
        "n_controls": int((meta[cpd] == "DMSO").sum()),
        "columns": {
            "plate": "Metadata_Plate",
            "well": "Metadata_Well",
            "compound": cpd,
            "dose": dose,
            "label": "Metadata_moa",
        },
        "truth": None,
        "title": "pairmap demo: LINCS plate SQ00015054, phenotypic activity vs DMSO",
    }


def _lincs_consistency(meta, feats, run: dict):
    """Phenotypic consistency by MoA: compounds sharing a mechanism (multi-label) vs others."""
    import pairmap

    moa, cpd = "Metadata_moa", "Metadata_broad_sample"
    keep = ((meta[cpd] != "DMSO") & meta[moa].notna()).to_numpy()
    treated = pairmap.split_multilabel(meta[keep].reset_index(drop=True), moa, sep="|")
    ap = pairmap.average_precision(
        treated,
        feats[keep],
        pos_sameby=[moa],
        pos_diffby=[cpd],
        neg_sameby=[],
        neg_diffby=[moa],
        multilabel_col=moa,
        n_jobs=run["n_jobs"],
        progress_bar=run["progress_bar"],
    )
    return ap, pairmap.mean_average_precision(ap, [moa], **run["map"])


def _run_info(result: dict, run: dict, dataset: str, elapsed: float) -> dict:
    from pairmap.report import make_run_info

    map_params = {
        "sameby": result["sameby"],
        **{k: run["map"][k] for k in ("null_size", "threshold", "seed", "null")},
    }
    return make_run_info(
        title=result["title"],
        analysis="activity",
        data={
            "source": result["source"],
            "n_profiles": len(result["ap"]),
            "n_features": result["n_features"],
            "controls": result["n_controls"],
        },
        average_precision={**result["rules"], "distance": "cosine"},
        mean_average_precision=map_params,
        columns=result["columns"],
        run_time_s=elapsed,
        notes=f"pairmap demo --dataset {dataset}",
    )


def _write_outputs(tmp: Path, result: dict, info: dict) -> list[str]:
    from pairmap.plotting import plot_map_scatter
    from pairmap.report import run_info_json, write_report

    names = []
    tables = {
        "ap_scores": result["ap"],
        "map_results": result["maps"],
        **result["extra"],
        **result.get("extra_ap", {}),
    }
    for stem, table in tables.items():
        table.to_parquet(tmp / f"{stem}.parquet", index=False)
        table.to_csv(tmp / f"{stem}.csv", index=False)
        names += [f"{stem}.parquet", f"{stem}.csv"]
    if result["profiles"] is not None:
        result["profiles"].to_parquet(tmp / "profiles.parquet", index=False)
        names.append("profiles.parquet")
    fig = plot_map_scatter(
        result["maps"],
        threshold=_THRESHOLD,
        truth_col=result["columns"].get("truth"),
        null_size=info["mean_average_precision"]["null_size"],
        title=result["title"],
    )
    fig.savefig(tmp / "map_plot.png", dpi=110, bbox_inches="tight")
    (tmp / "run_info.json").write_text(run_info_json(info) + "\n", encoding="utf-8")
    write_report(
        result["ap"], result["maps"], tmp / "report.html", info=info, extra_results=result["extra"]
    )
    return names + ["map_plot.png", "run_info.json", "report.html", "report_figures/"]


def run_demo(
    out: str | os.PathLike | None = None,
    *,
    dataset: str = "simulation",
    seed: int = 0,
    null_size: int = 10000,
    n_jobs: int | None = None,
    progress_bar: bool = True,
    n_perturbations: int = 100,
    n_replicates: int = 4,
    n_features: int = 200,
    n_active_features: int = 30,
    fraction_active: float = 0.5,
) -> dict:
    """Analyze built-in data (activity AP/mAP) and write tables, run info and a report.

    Parameters
    ----------
    out : path or None
        Output folder to create (must not exist); None makes
        ``./pairmap-demo-YYYYmmdd-HHMMSS``.
    dataset : {"simulation", "lincs"}, default "simulation"
        A simulated screen with known truth, or the packaged LINCS plate.
    seed : int, default 0
        Seed of the simulation and of the null distribution.
    null_size : int, default 10000
        Null draws per p-value.
    n_jobs : int or None
        Threads (None = all available CPUs).
    progress_bar : bool, default True
        Show progress bars.
    n_perturbations, n_replicates, n_features, n_active_features, fraction_active
        Simulation settings (see :func:`pairmap.simulate_screen`); ignored for
        ``"lincs"``.

    Returns
    -------
    dict
        Summary: ``out`` (Path), ``dataset``, ``n_profiles``, ``n_controls``,
        ``n_groups``, ``n_scored_groups``, ``n_significant``, ``files`` (list
        of Path) and, for the simulation, ``n_active`` (truth),
        ``true_positives``, ``recall``, ``precision``.

    Examples
    --------
    >>> summary = run_demo("demo-out", dataset="lincs", null_size=1000)  # doctest: +SKIP
    >>> summary["n_significant"]  # doctest: +SKIP
    33
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    out = _default_demo_dir() if out is None else Path(out)
    if out.exists():
        raise FileExistsError(f"output folder {str(out)!r} already exists; choose a new --out")
    start = time.perf_counter()
    run = {
        "seed": seed,
        "n_jobs": n_jobs,
        "progress_bar": progress_bar,
        "map": {
            "null_size": null_size,
            "threshold": _THRESHOLD,
            "seed": seed,
            "null": "shared",
            "n_jobs": n_jobs,
            "progress_bar": progress_bar,
        },
    }
    if dataset == "simulation":
        settings = {
            "n_perturbations": n_perturbations,
            "n_replicates": n_replicates,
            "n_features": n_features,
            "n_active_features": n_active_features,
            "fraction_active": fraction_active,
        }
        result = _simulation(settings, run)
    else:
        result = _lincs(run)
    info = _run_info(result, run, dataset, time.perf_counter() - start)

    from pairmap._io import atomic_output_dir

    with atomic_output_dir(out) as tmp:
        names = _write_outputs(tmp, result, info)
    maps = result["maps"]
    summary = {
        "out": out,
        "dataset": dataset,
        "n_profiles": len(result["ap"]),
        "n_controls": result["n_controls"],
        "n_groups": len(maps),
        "n_scored_groups": int(maps["p_value"].notna().sum()),
        "n_significant": int(maps["below_corrected_p"].sum()),
        "files": [out / n for n in names],
    }
    if result["truth"] is not None:
        summary.update(result["truth"])
        summary["n_perturbations"] = len(maps)
    return summary
