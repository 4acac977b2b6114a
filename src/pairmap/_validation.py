"""Checks of scalar arguments, written once: integers, seeds, sizes, flags and options.

Every public function validates its scalar parameters with these helpers, so
the same kind of value is accepted (and refused, with the same wording)
everywhere:

* :func:`check_int` -- an integer (``numpy`` integers and integral floats such
  as ``1e4`` included; booleans, fractions and strings refused) within bounds;
* :func:`check_seed` -- an integer in ``[0, 2**64)``;
* :func:`check_bool` -- ``True``/``False`` only (``"no"`` is not ``True``);
* :func:`check_option` -- one of a fixed set of strings;
* :func:`parse_size` -- a byte count from an integer or a text such as
  ``"500MB"`` or ``"2GiB"``, at least a parameter-specific minimum.

Messages name the parameter, the value received and what to write instead.
"""

from __future__ import annotations

import numbers
import operator
import re
from collections.abc import Iterable

import numpy as np

__all__ = ["check_bool", "check_int", "check_option", "check_seed", "parse_size"]

#: Largest seed + 1 (seeds feed 64-bit counter-based streams).
SEED_LIMIT = 2**64

_SIZE_RE = re.compile(
    r"\s*(\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?)\s*([kmgtp]?)(i?)(b?)\s*",
    re.IGNORECASE,
)
_SIZE_POW = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def check_int(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as a Python ``int`` after checking type and bounds.

    Parameters
    ----------
    name : str
        Parameter name used in error messages.
    value : int, numpy integer or integral float
        The value to check. ``True``/``False`` and non-integral numbers are refused.
    minimum, maximum : int, optional
        Inclusive bounds.

    Returns
    -------
    int

    Raises
    ------
    TypeError
        If ``value`` is not an integer (a boolean, a string, ``2.5``...).
    ValueError
        If ``value`` is out of bounds.

    Examples
    --------
    >>> check_int("null_size", 1e4, minimum=1)
    10000
    >>> check_int("null_size", 0, minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: null_size must be >= 1, got 0
    """
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be an integer, got the boolean {value!r}")
    try:
        out = operator.index(value)
    except TypeError:
        if isinstance(value, float | np.floating) and float(value).is_integer():
            out = int(value)
        else:
            raise TypeError(
                f"{name} must be an integer, got {type(value).__name__} {value!r}"
            ) from None
    if minimum is not None and out < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {out}")
    if maximum is not None and out > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {out}")
    return int(out)


def check_seed(value, name: str = "seed") -> int:
    """A seed: an integer with ``0 <= seed < 2**64``.

    Parameters
    ----------
    value : int
    name : str
        Parameter name used in error messages.

    Returns
    -------
    int

    Examples
    --------
    >>> check_seed(np.int64(3))
    3
    >>> check_seed(2**70)
    Traceback (most recent call last):
    ...
    ValueError: seed must be < 2**64, got 1180591620717411303424
    """
    out = check_int(name, value, minimum=0)
    if out >= SEED_LIMIT:
        raise ValueError(f"{name} must be < 2**64, got {out}")
    return out


def check_bool(name: str, value) -> bool:
    """``value`` if it is ``True`` or ``False`` (numpy booleans included), else ``TypeError``.

    Strings such as ``"no"`` or ``"false"`` are refused rather than read as
    ``True`` (every non-empty string is truthy in Python).

    Parameters
    ----------
    name : str
        Parameter name used in error messages.
    value : bool

    Returns
    -------
    bool

    Examples
    --------
    >>> check_bool("progress_bar", False)
    False
    >>> check_bool("progress_bar", "no")
    Traceback (most recent call last):
    ...
    TypeError: progress_bar must be True or False, got str 'no'
    """
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")


def check_option(name: str, value, options: Iterable[str]) -> str:
    """``value`` if it is one of ``options``, else ``ValueError`` listing them.

    Parameters
    ----------
    name : str
        Parameter name used in error messages.
    value : str
    options : iterable of str

    Returns
    -------
    str

    Examples
    --------
    >>> check_option("ties", "expected", ("positives_first", "expected"))
    'expected'
    >>> check_option("ties", "mean", ("positives_first", "expected"))
    Traceback (most recent call last):
    ...
    ValueError: ties='mean' is not supported; use one of ('positives_first', 'expected')
    """
    options = tuple(options)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name}={value!r} is not supported; use one of {options}")
    return value


def parse_size(value, name: str = "size", *, minimum: int = 0) -> int:
    """Bytes from an integer or a text such as ``"500MB"``, ``"2GiB"``, ``"1.5G"``, ``"1e9"``.

    Decimal units (``kB``, ``MB``, ``GB``, ``TB``, ``PB``; the ``B`` is
    optional, case is ignored) are powers of 1000; binary units (``KiB``,
    ``MiB``, ``GiB``, ``TiB``, ``PiB``) are powers of 1024. This is the one size
    grammar of pairmap: ``max_memory`` and the cache's ``max_bytes`` both use it.

    Parameters
    ----------
    value : int, float or str
        The size (an integral float such as ``1e9`` is accepted).
    name : str
        Parameter name used in error messages.
    minimum : int, default 0
        Smallest accepted number of bytes (``max_memory`` needs at least 1;
        a cache bound of 0 means "keep nothing").

    Returns
    -------
    int
        Number of bytes.

    Raises
    ------
    TypeError
        If ``value`` is a boolean or neither a number nor a string.
    ValueError
        If the text is not a size or the size is below ``minimum``.

    Examples
    --------
    >>> parse_size("500MB"), parse_size("1KiB"), parse_size(42), parse_size("1e3")
    (500000000, 1024, 42, 1000)
    >>> parse_size(0, "max_memory", minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: max_memory must be at least 1 byte(s), got 0
    """
    hint = "write a number of bytes or a size such as '500MB', '2GB' or '1GiB'"
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a size, got the boolean {value!r}; {hint}")
    if isinstance(value, numbers.Integral):
        out = int(value)
    elif isinstance(value, numbers.Real):
        if not float(value).is_integer():
            raise ValueError(f"{name}={value!r} is not a whole number of bytes; {hint}")
        out = int(value)
    elif isinstance(value, str):
        match = _SIZE_RE.fullmatch(value)
        if match is None or (match.group(3) and not match.group(2)):
            raise ValueError(f"{name}={value!r} is not a size; {hint}")
        number, unit, binary, _ = match.groups()
        base = 1024 if binary else 1000
        out = int(float(number) * base ** _SIZE_POW[unit.lower()])
    else:
        raise TypeError(f"{name} must be a size, got {type(value).__name__} {value!r}; {hint}")
    if out < minimum:
        raise ValueError(f"{name} must be at least {minimum} byte(s), got {value!r}")
    return out
