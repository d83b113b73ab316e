"""Parameters checked and packed once, for running a trained cell many times: ``cell.prepare(params)``.

``infer`` and ``stream`` check every parameter and pack the weights (stack and transpose each
group of matrices) on every call. A service that answers request after request with the same
weights can do that once: ``prepared = cell.prepare(params)``, then ``cell.infer(x, prepared)``
or ``cell.stream(prepared)``. At small sizes that is a large part of a call (for lstm at
B = 1, H = 32 about half of an ``infer`` of one step).

A ``Prepared`` holds copies: changing ``params`` afterwards does not change it (prepare again).
It computes in the parameters' dtype; ``infer`` with an ``x`` of the other float dtype is a
``TypeError``, as casting the weights would mean packing them again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from symlstm.arrays import SUPPORTED_DTYPES

#: a ``symlstm.runtime.Cell``: this module does not import it (the runtime imports this one)
CellLike = Any


@dataclass(frozen=True)
class Prepared:
    """A cell's parameters ready for forward-only runs (``Cell.prepare``)."""

    cell_name: str
    spec_sha256: str
    dtype: np.dtype
    #: the value of every size name of the cell (D, H, ...), read off the parameters
    sizes: Mapping[str, int]
    packed: Any  # the backend's form of the weights (``Kernels.pack(..., backward=False)``)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={value}" for name, value in self.sizes.items())
        return f"<symlstm parameters of {self.cell_name!r} prepared for inference: {sizes}, {self.dtype}>"

    def check_for(self, cell: CellLike, dtype: np.dtype, D: int | None = None) -> None:
        """That these were prepared by ``cell`` in ``dtype`` (and for input size ``D``)."""
        if self.spec_sha256 != cell.spec.sha256:
            raise TypeError(f"these parameters were prepared for cell {self.cell_name!r}, not for {cell.name!r}")
        if dtype != self.dtype:
            raise TypeError(
                f"the parameters were prepared in {self.dtype} and x is {dtype}: pass x as {self.dtype}, "
                f"or prepare the parameters again from {dtype} arrays"
            )
        if D is not None and D != self.sizes["D"]:
            raise ValueError(f"x has D={D} features; the parameters were prepared for D={self.sizes['D']}")


def prepare(cell: CellLike, params: Mapping, D: int | None = None, state0: Mapping | None = None) -> Prepared:
    """Check ``params`` and pack them once (``Cell.prepare``). ``D``, the input size, is read off
    a matrix that multiplies the input when not given."""
    if isinstance(params, Prepared):
        params.check_for(cell, params.dtype, D)
        return params
    dtype = params_dtype(params)
    D = input_size(cell, params) if D is None else D
    checked, sizes = cell._check_params(params, D, dtype, state0)
    packed = cell.kernels.pack(checked, sizes, backward=False, kept=True)
    return Prepared(cell.name, cell.spec.sha256, dtype, dict(sizes), packed)


def params_dtype(params) -> np.dtype:
    """The dtype parameters compute in on their own (no ``x`` to take it from): theirs, float32
    or float64."""
    if isinstance(params, Mapping):
        for value in params.values():
            dtype = getattr(value, "dtype", None)
            if dtype is not None and np.dtype(dtype) in SUPPORTED_DTYPES:
                return np.dtype(dtype)
    return np.dtype(np.float64)


def input_size(cell: CellLike, params) -> int:
    """D, read off a matrix that multiplies the input."""
    if isinstance(params, Mapping):
        for name, (_, columns) in cell.spec.matrices.items():
            if columns == "D" and name in params and np.ndim(params[name]) == 2:
                return int(np.shape(params[name])[1])
    raise ValueError(
        f"cell {cell.name!r}: the input size D cannot be read from params (no matrix that multiplies the "
        "input is given); give it: cell.prepare(params, D=...)"
    )
