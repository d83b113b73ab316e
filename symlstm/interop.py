"""PyTorch interop: ``from_torch(module) -> (cell, params)`` and ``to_torch(cell, params)``.

PyTorch stacks the gates row-wise in ``weight_ih_l0``/``weight_hh_l0`` and keeps two biases,
``bias_ih_l0`` and ``bias_hh_l0``. symlstm keeps one matrix per gate and folds the two biases into
one ``b_k``, except where they are not interchangeable: GRU's ``b_hn`` sits inside the reset
product, so it stays a parameter of its own. Torch is optional: it is imported only when these
functions are called.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .runtime import BatchFirstCell, Cell


@dataclass(frozen=True)
class TorchLayout:
    cell: str
    gates: tuple[str, ...]  # order of the row blocks in weight_ih_l0 / weight_hh_l0
    #: gates whose recurrent bias stays separate, as parameter ``b_h<gate>``
    separate_bias: tuple[str, ...] = ()


def _layout_of(module) -> TorchLayout:
    kind = type(module).__name__
    if kind == "LSTM":
        if getattr(module, "proj_size", 0):
            raise ValueError("from_torch does not support LSTM projections (proj_size > 0)")
        return TorchLayout("lstm", ("i", "f", "g", "o"))
    if kind == "GRU":
        return TorchLayout("gru", ("r", "z", "n"), separate_bias=("n",))
    if kind == "RNN":
        return TorchLayout("rnn" if module.nonlinearity == "tanh" else "rnn_relu", ("h",))
    raise TypeError(f"from_torch supports torch.nn.LSTM, GRU and RNN, got {kind}")


_MODULE_OF_CELL = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN", "rnn_relu": "RNN"}


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("symlstm's PyTorch interop needs torch: pip install 'symlstm[torch]' "
                          "(or pip install torch)") from None
    return torch


def from_torch(module, dtype=None):
    """Return ``(cell, params)`` computing what a single-layer, unidirectional ``nn.LSTM``,
    ``nn.GRU`` or ``nn.RNN`` computes. With ``batch_first=True`` the cell takes and returns
    (B, T, ...) arrays, like the module."""
    _torch()
    from . import cell as load_cell

    layout = _layout_of(module)
    if module.num_layers != 1 or module.bidirectional:
        raise ValueError("from_torch supports single-layer, unidirectional modules")
    H = module.hidden_size

    def array(tensor):
        out = tensor.detach().cpu().numpy()
        return out.astype(dtype) if dtype is not None else out.copy()

    w_ih, w_hh = array(module.weight_ih_l0), array(module.weight_hh_l0)
    zeros = np.zeros(len(layout.gates) * H, w_ih.dtype)
    b_ih = array(module.bias_ih_l0) if module.bias else zeros
    b_hh = array(module.bias_hh_l0) if module.bias else zeros
    params = {}
    for k, gate in enumerate(layout.gates):
        rows = slice(k * H, (k + 1) * H)
        params[f"W_{gate}"], params[f"R_{gate}"] = w_ih[rows], w_hh[rows]
        if gate in layout.separate_bias:
            params[f"b_{gate}"], params[f"b_h{gate}"] = b_ih[rows], b_hh[rows]
        else:
            params[f"b_{gate}"] = b_ih[rows] + b_hh[rows]
    cell = load_cell(layout.cell)
    params = {n: np.ascontiguousarray(params[n]) for n in cell.param_names}
    return (BatchFirstCell(cell) if module.batch_first else cell), params


def to_torch(cell: Cell | BatchFirstCell, params: dict):
    """A ``torch.nn`` module with ``params`` loaded; a folded bias goes into ``bias_ih``.
    A ``BatchFirstCell`` gives a module with ``batch_first=True``."""
    torch = _torch()
    batch_first = isinstance(cell, BatchFirstCell)
    if cell.name not in _MODULE_OF_CELL:
        raise ValueError(f"PyTorch has no module for the cell {cell.name!r}; "
                         f"to_torch supports {sorted(_MODULE_OF_CELL)}")
    kind = _MODULE_OF_CELL[cell.name]
    first = np.asarray(params[cell.param_names[0]])
    H, D = first.shape
    dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[first.dtype]
    options = {"nonlinearity": "relu" if cell.name == "rnn_relu" else "tanh"} if kind == "RNN" else {}
    module = getattr(torch.nn, kind)(D, H, batch_first=batch_first, **options).to(dtype)
    layout = _layout_of(module)

    def stack(name_of):
        return torch.from_numpy(np.concatenate([np.asarray(params[name_of(g)], first.dtype)
                                                for g in layout.gates]))

    with torch.no_grad():
        module.weight_ih_l0.copy_(stack(lambda g: f"W_{g}"))
        module.weight_hh_l0.copy_(stack(lambda g: f"R_{g}"))
        module.bias_ih_l0.copy_(stack(lambda g: f"b_{g}"))
        module.bias_hh_l0.zero_()
        for k, gate in enumerate(layout.gates):
            if gate in layout.separate_bias:
                module.bias_hh_l0[k * H:(k + 1) * H] = torch.from_numpy(np.asarray(params[f"b_h{gate}"]))
    return module
