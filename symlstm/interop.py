"""PyTorch interop: ``from_torch(module) -> (cell, params)`` and ``to_torch(cell, params)``.

PyTorch stacks the gates row-wise in ``weight_ih_l0``/``weight_hh_l0`` and keeps two biases
(``bias_ih_l0 + bias_hh_l0``); symlstm keeps one matrix per gate and one folded bias, except where
the two biases are not interchangeable (GRU's ``b_hn`` sits inside the reset product).
Torch is optional: it is imported only here, when these functions are called.
"""
from __future__ import annotations

import numpy as np

# PyTorch module class -> (symlstm cell, gate order of the stacked weights)
_LAYOUTS = {
    "LSTM": ("lstm", ("i", "f", "g", "o")),
}


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("symlstm's PyTorch interop needs torch: pip install 'symlstm[torch]' "
                          "(or pip install torch)") from None
    return torch


def _layout(module):
    kind = type(module).__name__
    if kind not in _LAYOUTS:
        raise TypeError(f"from_torch supports {sorted(_LAYOUTS)}, got {kind}")
    if module.num_layers != 1 or module.bidirectional:
        raise ValueError("from_torch supports single-layer, unidirectional modules")
    if getattr(module, "proj_size", 0):
        raise ValueError("from_torch does not support LSTM projections (proj_size > 0)")
    return _LAYOUTS[kind]


def from_torch(module, dtype=None):
    """Return ``(cell, params)`` computing what ``module`` computes (for time-major input;
    transpose a ``batch_first`` batch with ``x.transpose(1, 0, 2)``)."""
    _torch()
    from . import cell as load_cell

    name, gates = _layout(module)
    H = module.hidden_size

    def array(tensor):
        out = tensor.detach().cpu().numpy()
        return out.astype(dtype) if dtype is not None else out.copy()

    w_ih, w_hh = array(module.weight_ih_l0), array(module.weight_hh_l0)
    if module.bias:
        bias = array(module.bias_ih_l0) + array(module.bias_hh_l0)
    else:
        bias = np.zeros(len(gates) * H, w_ih.dtype)
    params = {}
    for k, gate in enumerate(gates):
        rows = slice(k * H, (k + 1) * H)
        params[f"W_{gate}"], params[f"R_{gate}"], params[f"b_{gate}"] = w_ih[rows], w_hh[rows], bias[rows]
    cell = load_cell(name)
    return cell, {n: np.ascontiguousarray(params[n]) for n in cell.param_names}


def to_torch(cell, params, batch_first: bool = False):
    """A ``torch.nn`` module with ``params`` loaded (the folded bias goes into ``bias_ih``)."""
    torch = _torch()
    kinds = {layout[0]: kind for kind, layout in _LAYOUTS.items()}
    if cell.name not in kinds:
        raise ValueError(f"PyTorch has no module for the cell {cell.name!r}; it has {sorted(kinds)}")
    kind = kinds[cell.name]
    gates = _LAYOUTS[kind][1]
    H, D = params[f"W_{gates[0]}"].shape
    dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[params[f"W_{gates[0]}"].dtype]
    module = getattr(torch.nn, kind)(D, H, batch_first=batch_first).to(dtype)
    stack = lambda prefix: torch.from_numpy(np.concatenate([params[f"{prefix}_{g}"] for g in gates]))  # noqa: E731
    with torch.no_grad():
        module.weight_ih_l0.copy_(stack("W"))
        module.weight_hh_l0.copy_(stack("R"))
        module.bias_ih_l0.copy_(stack("b"))
        module.bias_hh_l0.zero_()
    return module
