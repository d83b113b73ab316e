"""PyTorch interop: ``from_torch(module) -> (cell, params)`` and ``to_torch(cell, params)``.

PyTorch stacks the gates row-wise in ``weight_ih_l0``/``weight_hh_l0`` and keeps two biases,
``bias_ih_l0`` and ``bias_hh_l0``. symlstm keeps one matrix per gate and folds the two biases into
one ``b_k``, except where they are not interchangeable: GRU's ``b_hn`` sits inside the reset
product, so it stays a parameter of its own. A multi-layer or bidirectional module becomes a
``symlstm.nn.Recurrent`` whose (layer, direction) units are named as PyTorch's suffixes
(``l0``, ``l0_reverse``, ``l1``, ...). Torch is optional: it is imported only when these functions
are called.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from symlstm.runtime import BatchFirstCell, Cell


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


def _unit_from_torch(module, layout: TorchLayout, suffix: str, dtype) -> dict[str, np.ndarray]:
    """The symlstm parameters of one (layer, direction) of a module; ``suffix`` is PyTorch's,
    e.g. ``l0`` or ``l1_reverse``."""
    H = module.hidden_size

    def array(tensor):
        out = tensor.detach().cpu().numpy()
        return out.astype(dtype) if dtype is not None else out.copy()

    w_ih, w_hh = array(getattr(module, f"weight_ih_{suffix}")), array(getattr(module, f"weight_hh_{suffix}"))
    zeros = np.zeros(len(layout.gates) * H, w_ih.dtype)
    b_ih = array(getattr(module, f"bias_ih_{suffix}")) if module.bias else zeros
    b_hh = array(getattr(module, f"bias_hh_{suffix}")) if module.bias else zeros
    params = {}
    for k, gate in enumerate(layout.gates):
        rows = slice(k * H, (k + 1) * H)
        params[f"W_{gate}"], params[f"R_{gate}"] = w_ih[rows], w_hh[rows]
        if gate in layout.separate_bias:
            params[f"b_{gate}"], params[f"b_h{gate}"] = b_ih[rows], b_hh[rows]
        else:
            params[f"b_{gate}"] = b_ih[rows] + b_hh[rows]
    return {n: np.ascontiguousarray(v) for n, v in params.items()}


def from_torch(module, dtype=None):
    """Return ``(cell, params)`` computing what an ``nn.LSTM``, ``nn.GRU`` or ``nn.RNN`` computes.

    A single-layer, unidirectional module gives a cell and its parameter dict; with
    ``batch_first=True`` the cell takes and returns (B, T, ...) arrays, like the module. A
    multi-layer or bidirectional module gives a ``symlstm.nn.Recurrent`` layer and its own
    ``params``: the same calls work (``forward(x, params, state0)``, ``backward``), and its states
    are ``(num_layers * num_directions, B, H)``, as the module's ``h_n``. Dropout between layers is
    a training-time operation; the result computes the module in ``eval()`` mode.
    """
    _torch()
    from symlstm.cells import cell as load_cell

    layout = _layout_of(module)
    if module.num_layers != 1 or module.bidirectional:
        layer = recurrent_from_torch(module, dtype)
        return layer, layer.params
    cell = load_cell(layout.cell)
    unit = _unit_from_torch(module, layout, "l0", dtype)
    params = {n: unit[n] for n in cell.param_names}
    return (BatchFirstCell(cell) if module.batch_first else cell), params


def recurrent_from_torch(module, dtype=None):
    """A ``symlstm.nn.Recurrent`` with the architecture and weights of an ``nn.LSTM``, ``nn.GRU``
    or ``nn.RNN`` of any depth and direction."""
    _torch()
    from symlstm.train.nn import Recurrent

    layout = _layout_of(module)
    layer = Recurrent(layout.cell, module.input_size, module.hidden_size, num_layers=module.num_layers,
                      bidirectional=module.bidirectional, batch_first=module.batch_first,
                      dtype=dtype if dtype is not None else module.weight_ih_l0.detach().numpy().dtype)
    for prefix in layer.unit_prefixes():
        for name, value in _unit_from_torch(module, layout, prefix, dtype).items():
            np.copyto(layer.params[f"{prefix}.{name}"], value)
    return layer


def _kind_of(cell) -> str:
    if cell.name not in _MODULE_OF_CELL:
        raise ValueError(f"PyTorch has no module for the cell {cell.name!r}; "
                         f"to_torch supports {sorted(_MODULE_OF_CELL)}")
    return _MODULE_OF_CELL[cell.name]


def _module_for(cell: Cell, D: int, H: int, dtype, **options):
    torch = _torch()
    kind = _kind_of(cell)
    if kind == "RNN":
        options["nonlinearity"] = "relu" if cell.name == "rnn_relu" else "tanh"
    torch_dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(dtype)]
    return getattr(torch.nn, kind)(D, H, **options).to(torch_dtype)


def _unit_to_torch(module, params: dict, suffix: str) -> None:
    """Copy one (layer, direction)'s symlstm parameters into the module; folded biases go into
    ``bias_ih``."""
    torch = _torch()
    layout = _layout_of(module)
    H = module.hidden_size
    dtype = getattr(module, f"weight_ih_{suffix}").detach().numpy().dtype

    def stack(name_of):
        return torch.from_numpy(np.concatenate([np.asarray(params[name_of(g)], dtype) for g in layout.gates]))

    with torch.no_grad():
        getattr(module, f"weight_ih_{suffix}").copy_(stack(lambda g: f"W_{g}"))
        getattr(module, f"weight_hh_{suffix}").copy_(stack(lambda g: f"R_{g}"))
        getattr(module, f"bias_ih_{suffix}").copy_(stack(lambda g: f"b_{g}"))
        bias_hh = getattr(module, f"bias_hh_{suffix}")
        bias_hh.zero_()
        for k, gate in enumerate(layout.gates):
            if gate in layout.separate_bias:
                bias_hh[k * H:(k + 1) * H] = torch.from_numpy(np.asarray(params[f"b_h{gate}"], dtype))


def to_torch(cell, params: dict | None = None):
    """A ``torch.nn`` module with ``params`` loaded; a folded bias goes into ``bias_ih``.
    A ``BatchFirstCell`` gives a module with ``batch_first=True``. A ``symlstm.nn.Recurrent``
    layer gives a module of the same depth and directions (``params`` defaults to the layer's)."""
    from symlstm.train.nn import Recurrent

    if isinstance(cell, Recurrent):
        layer = cell
        params = layer._params(params)
        module = _module_for(layer.cell, layer.input_size, layer.hidden_size, params[next(iter(params))].dtype,
                             num_layers=layer.num_layers, bidirectional=layer.bidirectional,
                             batch_first=layer.batch_first)
        for prefix in layer.unit_prefixes():
            _unit_to_torch(module, layer.unit_params(params, prefix), prefix)
        return module
    if params is None:
        raise TypeError("to_torch(cell, params) needs the parameters of a cell")
    _kind_of(cell)  # an unsupported cell fails before its params are read
    first = np.asarray(params[cell.param_names[0]])
    H, D = first.shape
    module = _module_for(cell, D, H, first.dtype, batch_first=isinstance(cell, BatchFirstCell))
    _unit_to_torch(module, params, "l0")
    return module
