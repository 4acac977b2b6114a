"""Every figure of pairmap.plotting, drawn from real results on the packaged LINCS plate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pairmap
from pairmap import datasets, plotting

CPD = "Metadata_broad_sample"
DOSE = "Metadata_mmoles_per_liter"


@pytest.fixture(scope="module")
def lincs():
    """Activity AP, mAP by compound, hierarchical mAP by compound x dose, MoA consistency."""
    meta, feats = datasets.load_lincs_plate(split=True)
    meta = pairmap.assign_reference_index(meta, f"{CPD} == 'DMSO'")
    keys = [CPD, "Metadata_Reference_Index"]
    ap = pairmap.average_precision(
        meta,
        feats,
        pos_sameby=keys,
        pos_diffby=[],
        neg_sameby=[],
        neg_diffby=keys,
        progress_bar=False,
    )
    kw = {"null_size": 2000, "seed": 0, "null": "shared", "cache": False, "progress_bar": False}
    maps = pairmap.mean_average_precision(ap, [CPD], **kw)
    doses = pairmap.mean_average_precision(ap, [CPD, DOSE], hierarchical_by=[CPD], **kw)
    single = meta["Metadata_moa"].notna() & ~meta["Metadata_moa"].str.contains(
        "|", regex=False, na=True
    )
    moa_ap = pairmap.average_precision(
        meta[single].reset_index(drop=True),
        feats[single.to_numpy()],
        pos_sameby=["Metadata_moa"],
        pos_diffby=[CPD],
        neg_sameby=[],
        neg_diffby=["Metadata_moa"],
        progress_bar=False,
    )
    moa = pairmap.mean_average_precision(moa_ap, ["Metadata_moa"], **kw)
    return {"ap": ap, "maps": maps, "doses": doses, "moa": moa, "kw": kw}


def _points(ax):
    return np.concatenate(
        [np.asarray(c.get_offsets()) for c in ax.collections if hasattr(c, "pairmap_labels")]
    )


def test_map_scatter_counts_every_scored_group(lincs):
    maps = lincs["maps"]
    ax = plotting.plot_map_scatter(maps, null_size=2000).axes[0]
    n_scored = int(maps["p_value"].notna().sum())
    assert n_scored == len(maps) - 1  # DMSO: n_profiles = 0
    counts = [
        int(lab.split()[0]) if " groups, e.g. " in lab else 1
        for c in ax.collections
        for lab in c.pairmap_labels
    ]
    assert sum(counts) == n_scored
    note = next(t.get_text() for t in ax.texts if "scored groups" in t.get_text())
    n_sig = int(maps["below_corrected_p"].sum())
    assert f"{n_sig} of {n_scored} scored groups" in note and "1 group(s) without" in note
    y = _points(ax)[:, 1]
    assert np.isclose(y.max(), -np.log10(maps["corrected_p_value"].min()))
    assert ax.get_ylim()[1] < y.max() * 1.2


def test_ap_distributions_shows_top_and_bottom_members(lincs):
    ap, maps = lincs["ap"], lincs["maps"]
    ax = plotting.plot_ap_distributions(ap, maps, [CPD], n_top=5, n_bottom=3).axes[0]
    ranked = maps.dropna(subset=["mean_average_precision"]).sort_values(
        "mean_average_precision", ascending=False, kind="stable"
    )
    expected = list(ranked[CPD].head(5)) + list(ranked[CPD].tail(3))
    assert [t.get_text() for t in ax.get_yticklabels()] == expected[::-1]
    dots = [c for c in ax.collections if len(c.get_offsets()) > 1 or c.get_label() != "mAP"]
    members = ap[ap[CPD].isin(expected)]["average_precision"].dropna()
    shown = np.sort(np.concatenate([np.asarray(c.get_offsets())[:, 0] for c in dots[:-1]]))
    np.testing.assert_allclose(shown, np.sort(members.to_numpy()))


def test_null_comparison_panels_show_observed_map(lincs):
    ap, maps = lincs["ap"], lincs["maps"]
    fig = plotting.plot_null_comparison(
        ap, maps, [CPD], n_groups=4, null_size=2000, seed=0, cache=False
    )
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 4
    for ax in panels:
        row = maps[maps[CPD] == ax.get_title()].iloc[0]
        assert ax.lines[0].get_xdata()[0] == pytest.approx(row["mean_average_precision"])
        heights = np.array([p.get_height() for p in ax.patches])
        assert heights.sum() == pytest.approx(1.0)  # the whole null is in [0, 1]
        assert f"p = {row['p_value']:.3g}" in ax.texts[0].get_text()


def test_plate_ap_median(lincs):
    ap = lincs["ap"]
    ax = plotting.plot_plate_ap(ap).axes[0]
    assert ax.lines[-1].get_ydata()[0] == pytest.approx(ap["average_precision"].median())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["SQ00015054"]


def test_plate_layout_places_each_well(lincs):
    ap = lincs["ap"]
    image = plotting.plot_plate_layout(ap).axes[0].images[0].get_array()
    assert image.shape == (16, 24)
    for well, value in zip(ap["Metadata_Well"], ap["average_precision"], strict=True):
        r, c = ord(well[0]) - 65, int(well[1:]) - 1
        if np.isnan(value):
            assert np.ma.is_masked(image[r, c])  # DMSO wells have no score
        else:
            assert image[r, c] == pytest.approx(value)


def test_dose_response_one_line_per_compound(lincs):
    doses = lincs["doses"]
    ax = plotting.plot_dose_response(doses, compound_col=CPD, dose_col=DOSE, max_compounds=6).axes[
        0
    ]
    n_compounds = doses.loc[doses[DOSE] > 0, CPD].nunique()
    assert len(ax.lines) == n_compounds == 58
    assert len(ax.get_legend().get_texts()) == 6
    filled = sum(
        (np.asarray(c.get_facecolors())[:, :3] != 1).any(axis=1).sum() for c in ax.collections
    )
    top = doses[doses[CPD].isin([t.get_text() for t in ax.get_legend().get_texts()])]
    assert filled == int(top["below_corrected_p"].sum())


def test_label_map_sorted(lincs):
    moa = lincs["moa"]
    ax = plotting.plot_label_map(moa, label_col="Metadata_moa", n_labels=4).axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()][::-1]
    ranked = moa.dropna(subset=["mean_average_precision"]).sort_values(
        "mean_average_precision", ascending=False, kind="stable"
    )
    assert len(ranked) == 5  # MoAs with replicate compounds on this plate
    expected = list(ranked["Metadata_moa"].head(2)) + list(ranked["Metadata_moa"].tail(2))
    assert [lab.rsplit(" (n=", 1)[0] for lab in labels] == expected
    assert "top and bottom of 5" in ax.get_title()
    assert [t.get_text() for t in ax.texts] == [
        f"{len(moa) - 5} label(s) without a score not shown"
    ]
    x = np.asarray(ax.collections[-1].get_offsets())[:, 0][::-1]
    np.testing.assert_allclose(
        np.sort(x),
        np.sort(ranked.set_index("Metadata_moa").loc[expected, "mean_average_precision"]),
    )


def test_metric_distributions_count_values(lincs):
    ap = lincs["ap"]
    fig = plotting.plot_metric_distributions(ap, ["average_precision", "n_pos_pairs"])
    for ax, col in zip(fig.axes, ["average_precision", "n_pos_pairs"], strict=False):
        assert sum(p.get_height() for p in ax.patches) == ap[col].notna().sum()


def test_missing_column_is_named():
    with pytest.raises(ValueError, match=r"\['dose'\].*missing from the mAP results"):
        plotting.plot_dose_response(
            pd.DataFrame({"cpd": ["a"], "mean_average_precision": [1.0]}),
            compound_col="cpd",
            dose_col="dose",
        )
    with pytest.raises(ValueError, match="well names must look like"):
        plotting.plot_plate_layout(
            pd.DataFrame({"Metadata_Well": ["1A"], "average_precision": [0.5]})
        )
