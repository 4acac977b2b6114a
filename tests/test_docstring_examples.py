"""Every docstring example of the installed package runs and prints what it shows.

(Collected from the imported package, not from src/, so it works the same for
an installed wheel and an editable install.)
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import pairmap

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(pairmap.__path__, prefix="pairmap.")
    if m.name != "pairmap.__main__"
)


def test_every_module_is_checked():
    assert "pairmap.engine" in MODULES and "pairmap.cache.filesystem" in MODULES
    finder = doctest.DocTestFinder()
    examples = sum(
        len(t.examples) for name in MODULES for t in finder.find(importlib.import_module(name))
    )
    assert examples >= 50  # the public API and helpers carry runnable examples


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} failing example(s) in {name}"
