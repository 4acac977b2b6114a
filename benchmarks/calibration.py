"""Calibration study of the mAP null models: false-positive rate and power on simulated screens.

Design (Kalinin et al. 2025, Fig. 2, 100 features): a screen holds 100 perturbations with
``r`` replicates each and ``c`` control wells; every feature is N(0, 1), and for the
perturbation's replicates ``f`` of the 100 features (the same ones for all replicates of a
perturbation, chosen at random per perturbation) are N(1, 1) instead. Phenotypic activity is
scored against the controls (cosine similarity, reference-index rules) and each perturbation's
mAP is tested with every null model. A test is one perturbation; ``--tests`` tests per design
come from ``tests / 100`` independent screens.

* ``f = 0``: perturbations are controls in disguise: the fraction with ``p <= alpha`` is the
  false-positive rate (FPR);
* ``f > 0``: that fraction is the power.

Designs: replicates 2/3/4 x controls 12/24/36, and ``plates``: 4 plates with a plate effect
(N(0, 0.5**2) per plate and feature, added to every well of the plate), 100 perturbations x 4
replicates (one per plate), 12 controls per plate, negatives restricted to the query's plate.

Monte-Carlo standard errors are ``sqrt(q (1 - q) / n)`` for an observed rate ``q`` over ``n``
tests (tests within one screen share controls, so this understates the error somewhat).

Run (seeded; writes ``calibration.csv`` and prints the tables)::

    PYTHONPATH=src python -m benchmarks.calibration --tests 1000 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

import pairmap

logger = logging.getLogger("benchmarks.calibration")

ALPHAS = (0.01, 0.05, 0.1)
SHIFTS = (0, 1, 2, 4, 8, 16, 32, 64)
NULLS = ("permutation", "shared", "independent")
N_PERT = 100
N_FEAT = 100
COLS = ["Metadata_pert", "Metadata_Reference_Index"]


def design_names():
    """All design labels: ``r{reps}c{controls}`` and ``plates``."""
    return [f"r{r}c{c}" for r in (2, 3, 4) for c in (12, 24, 36)] + ["plates"]


def simulate(design: str, shift: int, rng: np.random.Generator):
    """One screen: (meta, features, ap keyword arguments)."""
    if design == "plates":
        reps, n_plates, per_plate = 4, 4, 12
        n_ctrl = n_plates * per_plate
        plate = np.concatenate(
            [np.repeat(np.arange(n_plates), per_plate), np.tile(np.arange(n_plates), N_PERT)]
        )
    else:
        reps, n_ctrl = int(design[1]), int(design.split("c")[1])
        plate = None
    pert = np.concatenate(
        [np.full(n_ctrl, "ctl"), np.repeat([f"p{i}" for i in range(N_PERT)], reps)]
    )
    X = rng.normal(size=(len(pert), N_FEAT))
    if shift:
        for i in range(N_PERT):
            feats = rng.choice(N_FEAT, size=shift, replace=False)
            rows = n_ctrl + i * reps + np.arange(reps)
            X[np.ix_(rows, feats)] += 1.0
    meta = pd.DataFrame({"Metadata_pert": pert})
    kwargs = dict(pos_sameby=COLS, pos_diffby=[], neg_sameby=[], neg_diffby=COLS)
    if plate is not None:
        X += rng.normal(scale=0.5, size=(plate.max() + 1, N_FEAT))[plate]
        meta["Metadata_plate"] = plate
        kwargs["neg_sameby"] = ["Metadata_plate"]
    meta = pairmap.assign_reference_index(meta, "Metadata_pert == 'ctl'")
    return meta, X, kwargs


def run_screen(design, shift, screen, seed, null_size, nulls, use_copairs):
    """p-values of the 100 perturbations of one screen under every null model."""
    ss = np.random.SeedSequence([seed, design_names().index(design), shift, screen])
    meta, X, kwargs = simulate(design, shift, np.random.default_rng(ss))
    ap = pairmap.average_precision(meta, X, **kwargs, progress_bar=False, n_jobs=1)
    out = {}
    for null in nulls:
        res = pairmap.mean_average_precision(
            ap,
            "Metadata_pert",
            null=null,
            null_size=null_size,
            seed=screen,
            cache=False,
            progress_bar=False,
            n_jobs=1,
        )
        res = res[res["Metadata_pert"] != "ctl"]
        assert res.attrs["pairmap_null"] == null
        out[null] = res["p_value"].to_numpy()
    if use_copairs:
        out["copairs"] = _copairs_pvalues(ap, null_size, screen)
    return out


def _copairs_pvalues(ap, null_size, seed):
    from copairs.map import mean_average_precision as copairs_map

    table = pd.DataFrame(ap.to_dict("list"))  # plain frame for copairs
    res = copairs_map(
        table, ["Metadata_pert"], null_size=null_size, threshold=0.05, seed=seed, progress_bar=False
    )
    res = res[res["Metadata_pert"] != "ctl"]
    return res["p_value"].to_numpy()


def study(designs, shifts, tests, seed, null_size, nulls, use_copairs):
    rows = []
    n_screens = max(1, tests // N_PERT)
    for design in designs:
        for shift in shifts:
            t0 = time.perf_counter()
            pvals: dict[str, list] = {}
            for screen in range(n_screens):
                for null, p in run_screen(
                    design, shift, screen, seed, null_size, nulls, use_copairs
                ).items():
                    pvals.setdefault(null, []).append(p)
            for null, ps in pvals.items():
                p = np.concatenate(ps)
                for alpha in ALPHAS:
                    q = float(np.mean(p <= alpha))
                    rows.append(
                        dict(
                            design=design,
                            shift=shift,
                            null=null,
                            alpha=alpha,
                            rate=q,
                            se=float(np.sqrt(q * (1 - q) / len(p))),
                            n_tests=len(p),
                        )
                    )
            logger.info(
                "%s shift=%d: %d tests in %.1f s",
                design,
                shift,
                n_screens * N_PERT,
                time.perf_counter() - t0,
            )
    return pd.DataFrame(rows)


def _markdown(frame: pd.DataFrame) -> str:
    """A pandas frame as a GitHub markdown table (index levels become the first columns)."""
    flat = frame.reset_index()
    head = [" ".join(map(str, c)).strip() if isinstance(c, tuple) else str(c) for c in flat.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in flat.itertuples(index=False):
        lines.append("| " + " | ".join(map(str, row)) + " |")
    return "\n".join(lines)


def tables(df: pd.DataFrame) -> str:
    """Markdown tables: FPR per design and alpha; power per design and shift at alpha=0.05."""
    out = []
    fpr = df[df["shift"] == 0].copy()
    fpr["cell"] = fpr.apply(lambda r: f"{r.rate:.3f} ({r.se:.3f})", axis=1)
    wide = fpr.pivot_table(
        index="design", columns=["alpha", "null"], values="cell", aggfunc="first", sort=False
    )
    out.append("FPR, P(p <= alpha) with no effect (Monte-Carlo SE)\n")
    out.append(_markdown(wide))
    pw = df[(df["shift"] > 0) & (df["alpha"] == 0.05)].copy()
    pw["cell"] = pw["rate"].map(lambda v: f"{v:.2f}")
    wide = pw.pivot_table(
        index=["design", "null"], columns="shift", values="cell", aggfunc="first", sort=False
    )
    out.append("\nPower at alpha = 0.05 (fraction of perturbations with p <= 0.05)\n")
    out.append(_markdown(wide))
    return "\n".join(out)


def check(df: pd.DataFrame) -> list[str]:
    """The issue's acceptance criteria for the permutation null; returns the failures."""
    perm = df[df["null"] == "permutation"]
    fails = []
    for r in perm[perm["shift"] == 0].itertuples():
        se = np.sqrt(r.alpha * (1 - r.alpha) / r.n_tests)
        if r.rate > r.alpha + 3 * se:
            fails.append(f"FPR {r.design} alpha={r.alpha}: {r.rate:.3f} > {r.alpha} + 3 SE")
    for r in perm[(perm["shift"] == 64) & (perm["alpha"] == 0.05)].itertuples():
        if r.rate < 0.95:
            fails.append(f"power {r.design} 64 shifted: {r.rate:.3f} < 0.95")
    return fails


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tests", type=int, default=1000, help="tests per design (x100 per screen)")
    ap.add_argument("--null-size", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--designs", default=",".join(design_names()))
    ap.add_argument("--shifts", default=",".join(map(str, SHIFTS)))
    ap.add_argument("--nulls", default=",".join(NULLS))
    ap.add_argument(
        "--copairs",
        action="store_true",
        help="also run copairs 0.5.5's mean_average_precision on the same AP tables",
    )
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("pairmap").setLevel(logging.WARNING)
    df = study(
        args.designs.split(","),
        [int(s) for s in args.shifts.split(",")],
        args.tests,
        args.seed,
        args.null_size,
        args.nulls.split(","),
        args.copairs,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "calibration.csv", index=False)
    text = tables(df)
    (out / "calibration.md").write_text(text + "\n")
    print(text)
    fails = check(df)
    print("\nacceptance (permutation):", "all met" if not fails else "; ".join(fails))


if __name__ == "__main__":
    main()
