"""Checking the parameters an export binds: every name once, each array of its spec's shape.

The sizes (D, H, P, ...) are read off the parameters themselves (the value most arrays with a
size agree on) and every shape is then checked against them, so an error names the odd array out,
its shape, what was expected and where each size was read. Every problem is a ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from symlstm.lang.sizes import Size
from symlstm.lang.spec import CellSpec


def declared_shape(spec: CellSpec, name: str) -> tuple[Size, ...]:
    """A parameter's shape in size names: (rows, columns) of a matrix, (size,) of a vector."""
    return spec.matrices.get(name) or (spec.sizes[name],)


def check_params(
    spec: CellSpec, params: Mapping, dtype: str, sizes: Mapping[str, int] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """The parameters as C-contiguous arrays of ``dtype``, and the value of every size name.
    ``sizes`` gives sizes no parameter has (rare: a size only a state or an input carries)."""
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a mapping of name -> array, got {type(params).__name__}")
    expected = list(spec.param_names)
    missing = [n for n in expected if n not in params]
    unknown = sorted(str(n) for n in params if n not in spec.param_names)
    if missing or unknown:
        raise ValueError(
            f"params for cell {spec.name!r}: missing {missing}, unknown {unknown}; expected exactly {expected}"
        )
    arrays = {name: _float_array(params[name], f"params[{name!r}]") for name in expected}
    seen: dict[str, list[tuple[int, str]]] = {k: [(v, "sizes=")] for k, v in (sizes or {}).items()}
    for name, array in arrays.items():
        declared = declared_shape(spec, name)
        if array.ndim != len(declared):
            raise ValueError(
                f"params[{name!r}] has shape {array.shape}; expected {len(declared)} dimensions "
                f"({', '.join(map(str, declared))})"
            )
        for size, value in zip(declared, array.shape):
            if isinstance(size, str) and not (sizes and size in sizes):
                seen.setdefault(size, []).append((value, f"params[{name!r}]"))
    found = {size: _most_common(values) for size, values in seen.items()}
    absent = [s for s in spec.size_names if s not in found]
    if absent:
        raise ValueError(f"cell {spec.name!r}: no parameter has the sizes {absent}; give them as sizes={{...}}")
    values = {k: v for k, (v, _) in found.items()}
    try:
        shapes = spec.param_shapes(values.pop("D"), values.pop("H"), **values)
    except ValueError as err:
        raise ValueError(f"params for cell {spec.name!r}: {err}") from None
    where = ", ".join(f"{k}={v} (from {source})" for k, (v, source) in found.items())
    for name, array in arrays.items():
        if array.shape != shapes[name]:
            names = ", ".join(map(str, declared_shape(spec, name)))
            raise ValueError(
                f"params[{name!r}] has shape {array.shape}; expected {shapes[name]} = ({names}) for {where}"
            )
    out = {name: np.ascontiguousarray(array, dtype=dtype) for name, array in arrays.items()}
    return out, {k: v for k, (v, _) in found.items()}


def _most_common(values: list[tuple[int, str]]) -> tuple[int, str]:
    """The value most arrays give (the first one's on a tie), and the first array giving it."""
    counts = [sum(v == value for v, _ in values) for value, _ in values]
    return values[counts.index(max(counts))]


def _float_array(value: object, what: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} is not an array of numbers: {err}") from None
    if array.dtype.kind not in "fiu" or array.dtype == np.bool_:
        raise ValueError(f"{what} has dtype {array.dtype}; expected an array of real numbers")
    return array
