"""The public API: lazily exported, fully annotated, documented with examples."""

from __future__ import annotations

import inspect

import pytest

import pairmap

PUBLIC = sorted(name for name in pairmap.__all__ if name != "__version__")


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_function_is_fully_type_hinted(name):
    func = getattr(pairmap, name)
    sig = inspect.signature(func)
    missing = [
        p for p, param in sig.parameters.items() if param.annotation is inspect.Parameter.empty
    ]
    assert not missing, f"{name}: parameters without a type hint: {missing}"
    assert sig.return_annotation is not inspect.Signature.empty, f"{name}: no return type"


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_function_has_a_runnable_example(name):
    doc = inspect.getdoc(getattr(pairmap, name)) or ""
    assert "Examples\n--------" in doc and ">>> " in doc, name
