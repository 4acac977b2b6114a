"""write_report on the LINCS plate: sections, figures, table contents, self-containment, errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

import pairmap
from pairmap import datasets
from pairmap.report import build_report, make_run_info, write_report

CPD = "Metadata_broad_sample"
DOSE = "Metadata_mmoles_per_liter"
NULL = {"null_size": 1000, "seed": 0, "null": "shared", "threshold": 0.05}
MAIN_FIGURES = [
    "map_scatter",
    "ap_distributions",
    "null_comparison",
    "plate_ap",
    "plate_layout",
    "dose_response_by_dose",
    "ap_histogram",
]


@pytest.fixture(scope="module")
def lincs():
    meta, feats = datasets.load_lincs_plate(split=True)
    meta = pairmap.assign_reference_index(meta, f"{CPD} == 'DMSO'")
    keys = [CPD, "Metadata_Reference_Index"]
    rules = {"pos_sameby": keys, "pos_diffby": [], "neg_sameby": [], "neg_diffby": keys}
    ap = pairmap.average_precision(meta, feats, **rules, progress_bar=False)
    kw = {**NULL, "cache": False, "progress_bar": False}
    maps = pairmap.mean_average_precision(ap, [CPD], **kw)
    doses = pairmap.mean_average_precision(ap, [CPD, DOSE], hierarchical_by=[CPD], **kw)
    info = make_run_info(
        title="LINCS activity",
        analysis="activity",
        data={"source": "packaged LINCS plate", "n_features": feats.shape[1]},
        average_precision=rules,
        mean_average_precision={"sameby": [CPD], **NULL},
        run_time_s=1.0,
    )
    return ap, maps, doses, info


@pytest.fixture(scope="module")
def built(lincs):
    ap, maps, doses, info = lincs
    return build_report(ap, maps, info=info, extra_results={"by dose": doses})


@pytest.fixture
def small():
    ap = pd.DataFrame(
        {
            "cpd": ["a", "a", "b", "b"],
            "Metadata_Well": ["A01", "A02", "B01", "B02"],
            "average_precision": [1.0, 1.0, 0.5, 0.25],
            "n_pos_pairs": [1, 1, 1, 1],
            "n_total_pairs": [4, 4, 4, 4],
        }
    )
    maps = pairmap.mean_average_precision(ap, "cpd", null_size=100, cache=False, progress_bar=False)
    return ap, maps


def _payloads(text: str) -> list[dict]:
    found = re.findall(
        r'<script type="application/json" class="pm-table-data">(.*?)</script>', text, flags=re.S
    )
    return [json.loads(x) for x in found]


def test_lincs_report_has_every_section_and_figure(lincs, tmp_path):
    ap, maps, doses, info = lincs
    out = write_report(
        ap, maps, tmp_path / "report.html", info=info, extra_results={"by dose": doses}
    )
    text = out.read_text(encoding="utf-8")
    assert out.stat().st_size <= 3 * 2**20
    for section in ("summary", "results", "figures", "extra-0"):
        assert f'<section id="{section}">' in text
    for key in MAIN_FIGURES:
        block = re.search(rf'<figure class="pm-figure" id="fig-{key}">(.*?)</figure>', text, re.S)
        assert block and "<svg" in block[1], key
        for fmt in ("png", "svg"):
            path = tmp_path / "report_figures" / f"{key}.{fmt}"
            assert path.stat().st_size > 1000, path
    assert (tmp_path / "report_figures" / "map_scatter.png").read_bytes()[:4] == b"\x89PNG"
    assert "pm-skipped" not in text.split("<main>")[1].split("<script>")[0].replace(
        ".pm-skipped", ""
    )
    # the summary's group count is the table's and the scatter's
    n_sig = int(maps["below_corrected_p"].sum())
    assert f"59 in the table: 58 scored, {n_sig} significant" in text
    assert f"Significant: {n_sig} of 58 scored groups" in text


def test_report_loads_nothing_from_outside(built):
    text = built.html
    assert "default-src 'none'" in text  # the CSP forbids any fetch
    assert not re.search(r"""\bsrc\s*=\s*["'](?!data:)""", text)
    links = re.findall(r"""(?:xlink:)?href\s*=\s*["']([^"']*)""", text)
    assert links and all(link.startswith(("#", "data:image/png;base64,")) for link in links)
    assert "@import" not in text and "url(http" not in text


def test_table_rows_are_the_results(lincs, built):
    ap, maps, doses, info = lincs
    main, extra = _payloads(built.html)
    assert main["columns"] == [str(c) for c in maps.columns]
    assert len(main["rows"]) == len(maps) and len(extra["rows"]) == len(doses)
    table = pd.DataFrame(main["rows"], columns=main["columns"])
    assert table[CPD].tolist() == maps[CPD].tolist()
    np.testing.assert_allclose(table["p_value"].astype(float), maps["p_value"], rtol=1e-5)
    assert table["below_corrected_p"].tolist() == maps["below_corrected_p"].tolist()
    (dmso,) = [r for r in main["rows"] if r[0] == "DMSO"]
    row = dict(zip(main["columns"], dmso, strict=True))
    assert row["n_profiles"] == 0 and row["p_value"] is None  # NaN -> empty cell


def test_scatter_points_carry_hover_names(lincs, built):
    maps = lincs[1]
    svg = built.svgs["map_scatter"]
    titles = re.findall(r"<title>([^<]*)</title>", svg)
    counts = [int(t.split()[0]) if " groups, e.g. " in t else 1 for t in titles]
    assert sum(counts) == 58
    named = {t.split("e.g. ")[-1] for t in titles}
    assert named <= set(maps[CPD])


def test_wrong_null_settings_skip_the_null_figure_with_a_reason(lincs):
    ap, maps, _, info = lincs
    wrong = {**info, "mean_average_precision": {**info["mean_average_precision"], "seed": 1}}
    report = build_report(ap, maps, info=wrong)
    (null,) = [f for f in report.figures if f.key == "null_comparison"]
    assert null.figure is None and "do not reproduce the table's p-values" in null.skipped
    assert 'class="pm-skipped" id="fig-null_comparison"' in report.html


def test_permutation_null_is_not_redrawn(small):
    ap, maps = small
    for model in ("permutation", "auto"):
        report = build_report(ap, maps, info={"mean_average_precision": {"null": model}})
        (null,) = [f for f in report.figures if f.key == "null_comparison"]
        assert null.figure is None and "result tables do not hold" in null.skipped


def test_consistency_and_metrics_figures(lincs):
    ap, maps, _, _ = lincs
    maps = maps.assign(mean_roc_auc=np.linspace(0.4, 1.0, len(maps)))
    report = build_report(ap, maps, info={"analysis": "consistency"})
    drawn = {f.key for f in report.figures if f.figure is not None}
    assert {"label_map", "other_metrics"} <= drawn
    metrics = next(f for f in report.figures if f.key == "other_metrics").figure
    titles = [ax.get_title() for ax in metrics.axes if ax.get_visible()]
    assert titles == [f"mean_roc_auc (mAP results) (n={len(maps)})"]


def test_failed_write_leaves_no_file(small, tmp_path, monkeypatch):
    from pairmap.report import _render

    ap, maps = small

    def broken(fig, dpi=150):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(_render, "figure_png", broken)
    with pytest.raises(OSError, match="disk full"):
        write_report(ap, maps, tmp_path / "r.html")
    assert list(tmp_path.iterdir()) == []


def test_bad_input_is_named(small, tmp_path):
    ap, maps = small
    with pytest.raises(ValueError, match="must end with .html"):
        write_report(ap, maps, tmp_path / "r.pdf")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['nul_size'\]"):
        write_report(ap, maps, tmp_path / "r.html", info={"nul_size": 3})
    with pytest.raises(ValueError, match="formats \\['gif'\\]"):
        write_report(ap, maps, tmp_path / "r.html", formats=("gif",))
    with pytest.raises(ValueError, match="no 'average_precision' column"):
        write_report(maps, None, tmp_path / "r.html")
    with pytest.raises(ValueError, match="needs ap_scores, map_results or both"):
        write_report(None, None, tmp_path / "r.html")
    (tmp_path / "taken.html").write_text("mine")
    with pytest.raises(FileExistsError):
        write_report(ap, maps, tmp_path / "taken.html", overwrite=False, figures_dir=False)
    assert (tmp_path / "taken.html").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.html"]


def test_ap_only_report(small, tmp_path):
    ap = small[0]
    out = write_report(ap, None, tmp_path / "ap.html", figures_dir=False)
    (payload,) = _payloads(out.read_text())
    assert len(payload["rows"]) == len(ap)
    assert list(tmp_path.iterdir()) == [out]


def test_retrieval_metrics_of_average_precision_are_drawn(small_screen):
    meta, feats = small_screen(0)
    keys = ["Metadata_broad_sample", "Metadata_Reference_Index"]
    ap = pairmap.average_precision(
        meta,
        feats,
        pos_sameby=keys,
        pos_diffby=[],
        neg_sameby=[],
        neg_diffby=keys,
        metrics=["roc_auc", "precision@2"],
        progress_bar=False,
    )
    report = build_report(ap, None)
    metrics = next(f for f in report.figures if f.key == "other_metrics").figure
    titles = sorted(ax.get_title() for ax in metrics.axes if ax.get_visible())
    n = int(ap["roc_auc"].notna().sum())
    assert titles == [
        f"precision@2 (AP scores) (n={int(ap['precision@2'].notna().sum())})",
        f"roc_auc (AP scores) (n={n})",
    ]
