"""The LINCS report opened in a real browser (headless Chromium via Playwright).

Checks what a reader sees: every figure and the table render, sorting and
search work, hover names exist, the console stays free of errors and no
network request is attempted. A full-page screenshot is kept as a test
artifact in ``test-artifacts/`` (or ``$PAIRMAP_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from pairmap.demo import run_demo

INSTALL = "apt-get update && apt-get install -y chromium"
ARTIFACTS = Path(
    os.environ.get("PAIRMAP_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts")
)
FIGURES = [
    "map_scatter",
    "ap_distributions",
    "null_comparison",
    "plate_ap",
    "plate_layout",
    "label_map_consistency_map_results",
    "dose_response_map_results_by_dose",
    "ap_histogram",
]


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip(f"headless Chromium is not installed (Debian: {INSTALL})")
    return path


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    executable = _chromium()
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install '.[test]')"
    )
    out = tmp_path_factory.mktemp("browser") / "lincs"
    run_demo(out, dataset="lincs", null_size=500, n_jobs=1, progress_bar=False)
    report = (out / "report.html").resolve()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            events = {"console": [], "requests": [], "blocked": []}
            page.on("console", lambda m: events["console"].append((m.type, m.text)))
            page.on("pageerror", lambda e: events["console"].append(("pageerror", str(e))))
            page.on("request", lambda r: events["requests"].append(r.url))

            def guard(route):
                if route.request.url == report.as_uri():
                    route.continue_()
                else:  # never let a request leave the machine
                    events["blocked"].append(route.request.url)
                    route.abort()

            page.route("**/*", guard)
            page.goto(report.as_uri(), wait_until="load", timeout=120_000)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report-lincs.png"), full_page=True)
            yield page, events
        finally:
            browser.close()


def test_every_figure_and_the_table_render(browser_page):
    page, _ = browser_page
    for key in FIGURES:
        svg = page.locator(f"figure#fig-{key} svg")
        assert svg.count() == 1, key
        box = svg.bounding_box()
        assert box and box["width"] > 300 and box["height"] > 150, (key, box)
    assert page.locator(".pm-skipped").count() == 0
    assert page.locator("#table-main tbody tr").count() == 25  # first page of 59 rows
    assert (
        page.locator("#table-main .pm-info, #table-main .note").first.inner_text()
        == "1–25 of 59 rows"
    )
    assert page.locator("#summary table tr").count() >= 10


def test_no_console_errors_and_no_network(browser_page):
    page, events = browser_page
    problems = [
        (kind, text)
        for kind, text in events["console"]
        if kind in ("error", "pageerror", "warning")
    ]
    assert problems == []
    assert events["blocked"] == []
    assert {Path(u).name for u in events["requests"]} == {"report.html"}


def test_table_sorts_and_searches(browser_page):
    page, _ = browser_page
    header = page.locator("#table-main th", has_text=re.compile(r"^mean_average_precision$"))
    header.click()
    header.click()  # descending
    assert header.get_attribute("aria-sort") == "descending"
    col = [t.strip() for t in page.locator("#table-main thead th").all_inner_texts()].index(
        "mean_average_precision"
    )
    values = page.locator(f"#table-main tbody tr td:nth-child({col + 1})").all_inner_texts()
    numbers = [float(v) for v in values]
    assert numbers == sorted(numbers, reverse=True) and numbers[0] == 1.0
    search = page.locator("#table-main input.pm-search")
    search.fill("dmso")
    assert page.locator("#table-main tbody tr").count() == 1
    assert "1 rows (filtered)" in page.locator("#table-main .note").first.inner_text()
    search.fill("")
    assert page.locator("#table-main tbody tr").count() == 25


def test_scatter_points_have_hover_names(browser_page):
    page, _ = browser_page
    titles = page.locator("figure#fig-map_scatter svg title").all_text_contents()
    assert len(titles) >= 40 and any(t.startswith("BRD-") for t in titles)
