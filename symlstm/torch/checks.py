"""Argument checks of ``symlstm.torch.Recurrent``: every one runs before any kernel does and raises
a ``TypeError`` (wrong kind or dtype) or ``ValueError`` (wrong device, shape or value) that names
the argument. Only tensor metadata is read, except for the values of ``lengths``."""

from __future__ import annotations

from collections.abc import Sequence

import torch

DTYPES = (torch.float32, torch.float64)

CPU_ONLY = (
    "symlstm's kernels are Numba code for the CPU and have no GPU version: "
    "move the module and its inputs to the CPU (.cpu())"
)


def float_dtype(dtype) -> torch.dtype:
    """The module's dtype: ``dtype``, or torch's default when None; float32 or float64."""
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if dtype not in DTYPES:
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    return dtype


def dropout_probability(p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout must be a probability in [0, 1], got {p!r}")
    return float(p)


def tensor(value, what: str, dtype: torch.dtype):
    """``value`` must be a CPU tensor of ``dtype`` (the module's)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(value).__name__}")
    if value.device.type != "cpu":
        raise ValueError(f"{what} is on {value.device}; {CPU_ONLY}")
    if value.dtype != dtype:
        raise TypeError(
            f"{what} has dtype {value.dtype} but the module's parameters are {dtype}; convert one of "
            f"them (.to({dtype}), or the module's .float() / .double())"
        )
    return value


def module_dtype(parameter) -> torch.dtype:
    """The dtype the module runs in, read off one of its parameters (after ``.to``, ``.cuda``, ...)."""
    if parameter.device.type != "cpu":
        raise ValueError(f"the module's parameters are on {parameter.device}; {CPU_ONLY}")
    if parameter.dtype not in DTYPES:
        raise TypeError(
            f"the module's parameters are {parameter.dtype}; the kernels run float32 or float64: "
            "call the module's .float() or .double()"
        )
    return parameter.dtype


def sequence(value, what: str, dtype: torch.dtype, features: int, batch_first: bool):
    """A (T, B, features) sequence, or (B, T, features) when ``batch_first``; returns it time-major."""
    tensor(value, what, dtype)
    layout = "(B, T, features), batch first" if batch_first else "(T, B, features), time-major"
    if value.dim() != 3:
        raise ValueError(f"{what} has shape {tuple(value.shape)}; expected {layout} with {features} features")
    if value.shape[2] != features:
        raise ValueError(f"{what} has {value.shape[2]} features (last axis); expected {features}")
    x = value.transpose(0, 1) if batch_first else value
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{what} has shape {tuple(value.shape)}; it needs at least one time step and one batch row")
    return x


def states(value, names: Sequence[str], shapes: Sequence[tuple[int, ...]], dtype: torch.dtype) -> list:
    """The initial states: a tensor for a cell of one state (as nn.GRU's ``hx``), else a tuple in
    the cell's state order (as nn.LSTM's ``(h_0, c_0)``), each (num_layers * num_directions, B, size)."""
    if isinstance(value, torch.Tensor) and len(names) == 1:
        value = (value,)
    if not isinstance(value, (tuple, list)) or len(value) != len(names):
        kind = "a tensor" if len(names) == 1 else f"a tuple of {len(names)} tensors"
        raise TypeError(
            f"state must be None or {kind} ({', '.join(names)}), each (num_layers * num_directions, B, size)"
        )
    out = []
    for name, array, shape in zip(names, value, shapes):
        what = f"state {name!r}"
        tensor(array, what, dtype)
        if tuple(array.shape) != shape:
            raise ValueError(
                f"{what} has shape {tuple(array.shape)}; expected {shape} (num_layers * num_directions, B, size)"
            )
        out.append(array.contiguous())
    return out


def lengths(value, T: int, B: int):
    """The steps of each batch row: (B,) integers in 1..T, as a CPU int64 tensor."""
    what = "lengths (the number of steps of each batch row)"
    if not isinstance(value, torch.Tensor):
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"{what} must be a tensor or sequence of integers, got {type(value).__name__}") from err
    if value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool:
        raise TypeError(f"{what} must be integers, got dtype {value.dtype}")
    if tuple(value.shape) != (B,):
        raise ValueError(f"{what} has shape {tuple(value.shape)}; expected ({B},), one per batch row")
    value = value.to("cpu", torch.int64)
    low, high = int(value.min()), int(value.max())
    if low < 1 or high > T:
        raise ValueError(f"{what} must each be in 1..T = 1..{T}, got {low if low < 1 else high}")
    return value.contiguous()
