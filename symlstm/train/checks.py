"""Argument checks shared by the training layers and optimizers."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from symlstm.arrays import SUPPORTED_DTYPES


def float_dtype(dtype) -> np.dtype:
    """``dtype`` as a NumPy dtype, which must be float32 or float64."""
    dtype = np.dtype(dtype)
    if dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"dtype {dtype} is not supported; use float32 or float64")
    return dtype


def positive_int(value, what: str) -> int:
    """``value`` as an int; it must be a positive integer (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def check_arrays(arrays, shapes: Mapping[str, tuple[int, ...]], what: str) -> dict[str, np.ndarray]:
    """``arrays`` must have exactly the keys of ``shapes``, as float arrays of those shapes."""
    if not isinstance(arrays, Mapping):
        raise TypeError(f"{what} must be a dict of arrays, got {type(arrays).__name__}")
    missing = [n for n in shapes if n not in arrays]
    extra = sorted(str(n) for n in arrays if n not in shapes)
    if missing or extra:
        raise ValueError(f"{what}: missing {missing}, unexpected {extra}; expected exactly {list(shapes)}")
    checked = {}
    for name, shape in shapes.items():
        array = arrays[name]
        if not isinstance(array, np.ndarray) or array.dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"{what}[{name!r}] must be a float32 or float64 NumPy array")
        if array.shape != tuple(shape):
            raise ValueError(f"{what}[{name!r}] has shape {array.shape}; expected {tuple(shape)}")
        checked[name] = array
    return checked
