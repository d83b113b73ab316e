"""Checking and converting the arrays a caller hands to symlstm, before any kernel sees them.

Every public entry point goes through these, so bad input ends in a ``ValueError``/``TypeError``
that names the argument. The kernels see C-contiguous, aligned, writable, native-order float32 or
float64 arrays only: one type per dtype, so they never recompile.
"""

from __future__ import annotations

import numpy as np

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_array(value, what: str, dtype: np.dtype | None = None) -> np.ndarray:
    """``value`` as a C-contiguous, aligned, writable, native-order float32/float64 array."""
    if type(value) is np.ndarray and value.dtype in SUPPORTED_DTYPES and (dtype is None or value.dtype == dtype):
        flags = value.flags  # the common case, already right: checked once per call per array
        if flags.c_contiguous and flags.writeable and flags.aligned and value.ndim:
            return value
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value)
        except Exception as err:  # noqa: BLE001 - anything that is not array-like
            raise TypeError(f"{what} must be a NumPy array, got {type(value).__name__}") from err
    native = array.dtype.newbyteorder("=") if array.dtype.kind == "f" else array.dtype
    if native not in SUPPORTED_DTYPES:
        raise TypeError(f"{what} has dtype {array.dtype}; use float32 or float64")
    target = dtype if dtype is not None else native
    out = np.asarray(array, dtype=target, order="C")  # keeps a 0-d array 0-d, for the messages
    if not (out.flags.writeable and out.flags.aligned) or out.dtype.byteorder not in "=|":
        out = np.array(out, dtype=target, order="C", copy=True)  # a read-only array is its own type
    return out


def owned(array: np.ndarray, original) -> np.ndarray:
    """``array``, copied unless it is a fresh array made from the caller's ``original`` (it may
    be the caller's own array, or a view of its memory: an ndarray, a buffer, a tensor)."""
    if array is original or array.base is not None:
        return array.copy()
    return array


def check_shape(array: np.ndarray, expected: tuple[int, ...], what: str, meaning: str) -> None:
    if array.shape != expected:
        raise ValueError(f"{what} has shape {array.shape}; expected {expected} {meaning}")


def check_lengths(lengths, T: int, B: int) -> np.ndarray:
    """``lengths`` as a fresh (B,) int64 array, each in 1..T (T for every row when None)."""
    if lengths is None:
        return np.full(B, T, np.int64)
    what = "lengths (the number of steps of each batch row)"
    try:
        array = np.asarray(lengths)
    except Exception as err:  # noqa: BLE001 - anything that is not array-like
        raise TypeError(f"{what} must be an array of integers, got {type(lengths).__name__}") from err
    if array.dtype == bool or array.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integers, got dtype {array.dtype}")
    if array.shape != (B,):
        raise ValueError(f"{what} has shape {array.shape}; expected ({B},), one per batch row")
    if B and (array.min() < 1 or array.max() > T):
        bad = int(array.min()) if array.min() < 1 else int(array.max())
        raise ValueError(f"{what} must each be in 1..T = 1..{T}, got {bad}")
    return array.astype(np.int64)
