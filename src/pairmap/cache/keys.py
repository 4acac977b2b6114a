"""Cache keys for null distributions and their binary on-disk encoding.

A :class:`NullKey` names one null distribution: the sampling method, the base
seed, the number of draws and the list shape ``(n_total, n_pos)``, plus the
version of the algorithm that produced the values. Every field that can change
the stored numbers is part of the key, so a key maps to exactly one array.

The encoding (``encode_entry`` / ``decode_entry``) is a fixed 128-byte
little-endian header followed by the raw little-endian float64 payload; no
pickle and no ``np.load`` are involved. See ``docs/cache.md`` for the layout.
"""

from __future__ import annotations

import hashlib
import operator
import re
import struct
from dataclasses import dataclass

import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "MAGIC",
    "SUFFIX",
    "CorruptEntryError",
    "NullKey",
    "as_null_array",
    "decode_entry",
    "decode_header",
    "encode_entry",
]

#: File-name suffix of cache entries.
SUFFIX = ".pmnull"
#: First 8 bytes of every entry (PNG-style: a high byte and a newline catch
#: text-mode transfers and truncated copies early).
MAGIC = b"\x89PMNULL\n"
#: Version of the binary layout below.
FORMAT_VERSION = 1
#: dtype code 1: little-endian IEEE-754 float64.
DTYPE_F8_LE = 1

# magic, format_version, header_size, method, algorithm_version, dtype_code,
# flags, 6 pad bytes, seed, null_size, n_total, n_pos, length, checksum
_HEADER = struct.Struct("<8sHH32sIBB6xQQQQQ32s")
HEADER_SIZE = _HEADER.size  # 128
_PREFIX_SIZE = HEADER_SIZE - 32  # everything the checksum follows
_U64_MAX = 2**64 - 1
_U32_MAX = 2**32 - 1
_METHOD_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")


class CorruptEntryError(ValueError):
    """A cache entry failed verification (bad magic, header, size or checksum)."""


def _as_count(name: str, value, *, minimum: int, maximum: int = _U64_MAX) -> int:
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"NullKey.{name} must be an integer, got the boolean {value!r}")
    try:
        out = operator.index(value)
    except TypeError:
        raise TypeError(
            f"NullKey.{name} must be an integer, got {type(value).__name__} {value!r}"
        ) from None
    if not minimum <= out <= maximum:
        raise ValueError(f"NullKey.{name} must be between {minimum} and {maximum}, got {out}")
    return int(out)


@dataclass(frozen=True)
class NullKey:
    """Identity of one cached null distribution.

    Parameters
    ----------
    method : str
        How the null was produced, ``"sampled"`` or ``"exact"`` (any lowercase
        identifier of at most 32 characters is accepted for future methods).
    seed : int
        Base seed, ``0 <= seed < 2**64``.
    null_size : int
        Number of requested draws (``>= 0``).
    n_total : int
        Length of the ranked list ``n`` (``>= 1``).
    n_pos : int
        Number of positives ``k`` (``0 <= n_pos <= n_total``).
    algorithm_version : int
        Version of the algorithm that produced the values; bump it whenever
        the numbers a method produces change, so old entries are never reused.

    Notes
    -----
    Stored arrays are always one-dimensional float64. Keys are hashable,
    immutable and compare by value; numpy integers are converted to ``int``.

    Examples
    --------
    >>> key = NullKey("sampled", seed=0, null_size=10000, n_total=1003, n_pos=3,
    ...               algorithm_version=1)
    >>> key.filename()
    'v1-sampled-s0-ns10000-n1003-k3.pmnull'
    """

    method: str
    seed: int
    null_size: int
    n_total: int
    n_pos: int
    algorithm_version: int

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or _METHOD_RE.fullmatch(self.method) is None:
            raise ValueError(
                "NullKey.method must be a lowercase identifier of at most 32 characters "
                f"such as 'sampled' or 'exact', got {self.method!r}"
            )
        fields = {
            "seed": _as_count("seed", self.seed, minimum=0),
            "null_size": _as_count("null_size", self.null_size, minimum=0),
            "n_total": _as_count("n_total", self.n_total, minimum=1),
            "n_pos": _as_count("n_pos", self.n_pos, minimum=0),
            "algorithm_version": _as_count(
                "algorithm_version", self.algorithm_version, minimum=0, maximum=_U32_MAX
            ),
        }
        if fields["n_pos"] > fields["n_total"]:
            raise ValueError(
                f"NullKey.n_pos ({fields['n_pos']}) must not exceed "
                f"NullKey.n_total ({fields['n_total']})"
            )
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def filename(self) -> str:
        """Deterministic, filesystem-safe file name of this key's entry.

        The name is injective: distinct keys never share a name (the method
        cannot contain ``-`` and all numbers are written in decimal).

        Returns
        -------
        str
            For example ``"v1-sampled-s0-ns10000-n1003-k3.pmnull"``.

        Examples
        --------
        >>> NullKey("exact", 7, 0, 10, 2, 3).filename()
        'v3-exact-s7-ns0-n10-k2.pmnull'
        """
        return (
            f"v{self.algorithm_version}-{self.method}-s{self.seed}-ns{self.null_size}"
            f"-n{self.n_total}-k{self.n_pos}{SUFFIX}"
        )


def as_null_array(values, *, name: str = "array") -> np.ndarray:
    """Coerce ``values`` to a one-dimensional native float64 array.

    Parameters
    ----------
    values : array_like
        Real numbers.
    name : str
        How to refer to ``values`` in error messages.

    Returns
    -------
    numpy.ndarray
        1-D float64 array (a view when no conversion was needed).

    Raises
    ------
    ValueError
        If ``values`` is not one-dimensional or not real-valued.

    Examples
    --------
    >>> as_null_array([0.5, 1]).dtype
    dtype('float64')
    """
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must hold real numbers to be cached, got dtype {arr.dtype}; "
            "null distributions are stored as float64"
        )
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional to be cached, got shape {arr.shape}")
    return arr.astype(np.float64, copy=False)


def _checksum(prefix: bytes, payload) -> bytes:
    h = hashlib.blake2b(digest_size=32, person=b"pairmap-null")
    h.update(prefix)
    h.update(payload)
    return h.digest()


def encode_entry(key: NullKey, values) -> tuple[bytes, memoryview]:
    """Encode ``values`` for ``key`` as ``(header, payload)``.

    Parameters
    ----------
    key : NullKey
        The key the values belong to (stored in the header).
    values : array_like
        1-D real values, stored as little-endian float64.

    Returns
    -------
    tuple
        The 128-byte header (``bytes``) and the raw payload (a byte
        ``memoryview`` of the values, without a copy when they already are
        contiguous little-endian float64).

    Examples
    --------
    >>> header, payload = encode_entry(NullKey("exact", 0, 2, 5, 1, 1), [0.2, 1.0])
    >>> len(header), len(payload)
    (128, 16)
    """
    arr = as_null_array(values)
    # a view, not a copy: a null of 10**9 draws is 8 GB, a second copy would double it
    payload = memoryview(np.ascontiguousarray(arr, dtype="<f8")).cast("B")
    prefix = _HEADER.pack(
        MAGIC,
        FORMAT_VERSION,
        HEADER_SIZE,
        key.method.encode("ascii"),
        key.algorithm_version,
        DTYPE_F8_LE,
        0,
        key.seed,
        key.null_size,
        key.n_total,
        key.n_pos,
        arr.shape[0],
        b"\0" * 32,
    )[:_PREFIX_SIZE]
    return prefix + _checksum(prefix, payload), payload


def decode_header(header: bytes) -> tuple[NullKey, int]:
    """Parse and check a header; return the key it names and the payload length.

    Parameters
    ----------
    header : bytes
        At least :data:`HEADER_SIZE` bytes from the start of an entry.

    Returns
    -------
    key : NullKey
    length : int
        Number of float64 values in the payload.

    Raises
    ------
    CorruptEntryError
        On a short header, wrong magic, unknown format version, header size,
        dtype code or flags, or key fields that do not form a valid key.

    Examples
    --------
    >>> header, _ = encode_entry(NullKey("exact", 0, 2, 5, 1, 1), [0.2, 1.0])
    >>> decode_header(header)[1]
    2
    """
    if len(header) < HEADER_SIZE:
        raise CorruptEntryError(f"truncated header ({len(header)} of {HEADER_SIZE} bytes)")
    (
        magic,
        fmt,
        hsize,
        method,
        algo,
        dtype_code,
        flags,
        seed,
        null_size,
        n_total,
        n_pos,
        length,
        _digest,
    ) = _HEADER.unpack_from(header)
    if magic != MAGIC:
        raise CorruptEntryError("not a pairmap null-cache entry (bad magic bytes)")
    if fmt != FORMAT_VERSION or hsize != HEADER_SIZE:
        raise CorruptEntryError(
            f"unsupported entry format version {fmt} (header size {hsize}); "
            f"this pairmap reads version {FORMAT_VERSION}"
        )
    if dtype_code != DTYPE_F8_LE or flags != 0:
        raise CorruptEntryError(f"unsupported dtype code {dtype_code} / flags {flags}")
    try:
        key = NullKey(method.rstrip(b"\0").decode("ascii"), seed, null_size, n_total, n_pos, algo)
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise CorruptEntryError(f"invalid key fields in header: {exc}") from None
    if length > (_U64_MAX - HEADER_SIZE) // 8:
        raise CorruptEntryError(f"implausible payload length {length}")
    return key, length


def decode_entry(header: bytes, payload) -> tuple[NullKey, np.ndarray]:
    """Verify a whole entry and return its key and values.

    Parameters
    ----------
    header : bytes
        The :data:`HEADER_SIZE`-byte header.
    payload : bytes or bytearray
        Exactly the payload bytes (``8 * length``). A ``bytearray`` payload
        gives a writable result without another copy.

    Returns
    -------
    key : NullKey
    values : numpy.ndarray
        1-D native float64 array.

    Raises
    ------
    CorruptEntryError
        If the header is invalid, the payload has the wrong size or the
        checksum does not match.

    Examples
    --------
    >>> key = NullKey("exact", 0, 2, 5, 1, 1)
    >>> decode_entry(*encode_entry(key, [0.2, 1.0]))[1]
    array([0.2, 1. ])
    """
    key, length = decode_header(header)
    if len(payload) != 8 * length:
        raise CorruptEntryError(f"payload has {len(payload)} bytes, header announces {8 * length}")
    if _checksum(bytes(header[:_PREFIX_SIZE]), payload) != bytes(header[_PREFIX_SIZE:HEADER_SIZE]):
        raise CorruptEntryError("checksum mismatch (entry damaged)")
    values = np.frombuffer(payload, dtype="<f8").astype(np.float64, copy=False)
    return key, values
