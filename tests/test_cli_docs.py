"""``pairmap --help`` points at documentation that exists, in a checkout and in a wheel."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pairmap.cli import _docs_file, build_parser

ROOT = Path(__file__).resolve().parents[1]


def test_help_names_an_existing_docs_file():
    text = build_parser().format_help()
    match = re.search(r"docs: (\S+) \(commands and config format\)", text)
    assert match, text
    assert Path(match.group(1)).is_file()
    assert Path(match.group(1)).name == "cli.md"


def test_every_docs_page_is_shipped_in_the_wheel():
    """The wheel installs docs/*.md under <prefix>/share/doc/pairmap, where _docs_file looks."""
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shipped = config["tool"]["setuptools"]["data-files"]["share/doc/pairmap"]
    assert "docs/*.md" in shipped and "LICENSE" in shipped
    assert sorted(p.name for p in (ROOT / "docs").glob("*.md"))  # there is something to ship


def test_missing_docs_are_described_not_invented():
    assert _docs_file("no-such-page.md") == (
        "docs/no-such-page.md in the pairmap source distribution"
    )
