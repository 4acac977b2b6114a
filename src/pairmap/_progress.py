"""Progress bars shown only for work long enough to need one.

A bar appears once the work has run for :data:`DELAY_SECONDS` (tqdm's
``delay``), so sub-second steps print nothing, and never for a single step
(a ``0/1 -> 1/1`` bar says nothing). ``enabled=False`` turns bars off.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["DELAY_SECONDS", "progress"]

#: Seconds of work before a bar is drawn.
DELAY_SECONDS = 1.0


def progress(
    iterable: Iterable | None = None, *, total: int, desc: str, enabled: bool, unit: str = "it"
):
    """A tqdm bar over ``iterable`` (or a bar to ``update`` by hand when it is ``None``).

    Parameters
    ----------
    iterable : iterable, optional
        Items to iterate over.
    total : int
        Number of items (or units of work).
    desc : str
        Label of the bar.
    enabled : bool
        ``False`` hides the bar.
    unit : str, default "it"
        Unit shown in the rate.

    Returns
    -------
    tqdm.tqdm
        Disabled (prints nothing) when ``enabled`` is false or ``total <= 1``.

    Examples
    --------
    >>> sum(progress(range(3), total=3, desc="demo", enabled=False))
    3
    """
    from tqdm.auto import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        leave=False,
        delay=DELAY_SECONDS,
        disable=not enabled or total <= 1,
    )
