"""Type aliases of the public API (for annotations and type checkers only).

Examples
--------
>>> from pairmap._typing import RuleSpec
>>> RuleSpec is not None
True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from pairmap.cache import NullCache

__all__ = [
    "CacheSpec",
    "Columns",
    "Condition",
    "DaskClient",
    "Distance",
    "Features",
    "RuleSpec",
    "Size",
]

#: One side of a pairing rule: a column (or query), a list of them, or {"all": [...], "any": [...]}.
RuleSpec: TypeAlias = str | Sequence[str] | Mapping[str, Sequence[str]] | None
#: Group columns of an AP table: one label or a list of labels.
Columns: TypeAlias = Hashable | Sequence[Hashable]
#: Profiles x features: an array (any memory order, memory-mapped), a DataFrame, or the
#: path of a ``.npy`` file / Zarr array (see :mod:`pairmap.features`).
Features: TypeAlias = "np.ndarray | pd.DataFrame | str | os.PathLike"
#: A ``distributed.Client``, a scheduler address or ``"local"`` (see :mod:`pairmap.distributed`).
DaskClient: TypeAlias = "object | str | None"
#: A built-in similarity name or ``f(X, Y) -> one similarity per row pair``.
Distance: TypeAlias = str | Callable[[np.ndarray, np.ndarray], np.ndarray]
#: Bytes, or a text such as ``"2GB"``.
Size: TypeAlias = int | str
#: ``None``/``True`` (default folder), ``False`` (no cache), a folder or a cache object.
CacheSpec: TypeAlias = "None | bool | str | os.PathLike | NullCache"
#: A pandas query, a boolean mask, or index labels.
Condition: TypeAlias = str | np.ndarray | pd.Series | pd.Index | Sequence
