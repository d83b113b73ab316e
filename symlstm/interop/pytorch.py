"""PyTorch weights <-> a cell's parameters: ``cell_from_torch(module) -> (cell, params)`` and
``cell_to_torch(cell, params)``.

PyTorch stacks the gates row-wise in ``weight_ih_l0``/``weight_hh_l0`` and keeps two biases,
``bias_ih_l0`` and ``bias_hh_l0``. symlstm keeps one matrix per gate and folds the two biases into
one ``b_k``, except where they are not interchangeable: GRU's ``b_hn`` sits inside the reset
product, so it stays a parameter of its own. An ``nn.LSTM(proj_size=P)`` is the cell ``lstmp``,
whose ``W_hr`` is PyTorch's ``weight_hr_l0``; its ``h`` has the P units. Torch is optional: it is
imported only when these functions are called.

The conversions work one (layer, direction) unit at a time, named by PyTorch's suffixes (``l0``,
``l0_reverse``, ``l1``, ...): ``architecture(module)``, ``unit_from_torch``, ``new_module`` and
``unit_to_torch``; ``units_from_torch`` and ``stack_to_torch`` do every unit of a stack at once. A
multi-layer or bidirectional module becomes a ``symlstm.nn.Recurrent`` (``symlstm/train``) or a
``symlstm.torch.Recurrent``, which are built on those: they depend on interop, not the other way round.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from symlstm.runtime import BatchFirstCell, Cell
from symlstm.stack import Stack


@dataclass(frozen=True)
class TorchLayout:
    cell: str
    gates: tuple[str, ...]  # order of the row blocks in weight_ih_l0 / weight_hh_l0
    #: gates whose recurrent bias stays separate, as parameter ``b_h<gate>``
    separate_bias: tuple[str, ...] = ()


def _layout_of(module) -> TorchLayout:
    kind = type(module).__name__
    if kind == "LSTM":
        return TorchLayout("lstmp" if _proj_size(module) else "lstm", ("i", "f", "g", "o"))
    if kind == "GRU":
        return TorchLayout("gru", ("r", "z", "n"), separate_bias=("n",))
    if kind == "RNN":
        return TorchLayout("rnn" if module.nonlinearity == "tanh" else "rnn_relu", ("h",))
    raise TypeError(f"from_torch supports torch.nn.LSTM, GRU and RNN, got {kind}")


def _proj_size(module) -> int:
    """nn.LSTM's proj_size: the size P of h, 0 when there is no projection."""
    return getattr(module, "proj_size", 0)


_MODULE_OF_CELL = {"lstm": "LSTM", "lstmp": "LSTM", "gru": "GRU", "rnn": "RNN", "rnn_relu": "RNN"}


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError(
            "symlstm's PyTorch interop needs torch: pip install 'symlstm[torch]' (or pip install torch)"
        ) from None
    return torch


@dataclass(frozen=True)
class TorchArchitecture:
    """What a ``torch.nn.LSTM``, ``GRU`` or ``RNN`` is, in symlstm's terms."""

    cell: str  # the built-in cell computing one unit
    input_size: int
    hidden_size: int
    num_layers: int
    bidirectional: bool
    batch_first: bool
    dtype: np.dtype  # of the module's weights
    proj_size: int = 0  # nn.LSTM's, the size P of h; 0 without projection

    @property
    def sizes(self) -> dict[str, int]:
        """The cell's sizes besides D and H, as keywords of its ``init_params`` (P for lstmp)."""
        return {"P": self.proj_size} if self.proj_size else {}

    @property
    def suffixes(self) -> list[str]:
        """PyTorch's parameter suffixes, one per (layer, direction) unit: l0, l0_reverse, l1, ..."""
        directions = ("", "_reverse") if self.bidirectional else ("",)
        return [f"l{k}{d}" for k in range(self.num_layers) for d in directions]


def architecture(module) -> TorchArchitecture:
    """The cell, sizes, depth and directions of a module; raises for what symlstm cannot map."""
    _torch()
    layout = _layout_of(module)
    return TorchArchitecture(
        layout.cell,
        module.input_size,
        module.hidden_size,
        module.num_layers,
        bool(module.bidirectional),
        bool(module.batch_first),
        module.weight_ih_l0.detach().cpu().numpy().dtype,
        _proj_size(module),
    )


def unit_from_torch(module, suffix: str = "l0", dtype=None) -> dict[str, np.ndarray]:
    """The symlstm parameters of one (layer, direction) unit of a module, as the parameter dict of
    its cell; ``suffix`` is PyTorch's, e.g. ``l0`` or ``l1_reverse``. The arrays are copies, cast to
    ``dtype`` when given."""
    _torch()
    layout = _layout_of(module)
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
    if _proj_size(module):
        params["W_hr"] = array(getattr(module, f"weight_hr_{suffix}"))
    return {n: np.ascontiguousarray(v) for n, v in params.items()}


def cell_from_torch(module, dtype=None):
    """``(cell, params)`` computing what a single-layer, unidirectional ``nn.LSTM``, ``nn.GRU`` or
    ``nn.RNN`` computes; with ``batch_first=True`` the cell takes and returns (B, T, ...) arrays,
    like the module. (``symlstm.from_torch`` also takes stacked and bidirectional modules.)"""
    from symlstm.cells import cell as load_cell

    arch = architecture(module)
    if arch.num_layers != 1 or arch.bidirectional:
        raise ValueError(
            f"cell_from_torch maps one layer and one direction; this module has {arch.num_layers} "
            f"layer(s){', bidirectional' if arch.bidirectional else ''}: use symlstm.from_torch, "
            "which gives a symlstm.nn.Recurrent layer"
        )
    cell = load_cell(arch.cell)
    unit = unit_from_torch(module, "l0", dtype)
    params = {n: unit[n] for n in cell.param_names}
    return (BatchFirstCell(cell) if arch.batch_first else cell), params


def _kind_of(cell) -> str:
    if cell.name not in _MODULE_OF_CELL:
        raise ValueError(
            f"PyTorch has no module for the cell {cell.name!r}; to_torch supports {sorted(_MODULE_OF_CELL)}"
        )
    return _MODULE_OF_CELL[cell.name]


def new_module(
    cell: Cell | BatchFirstCell,
    input_size: int,
    hidden_size: int,
    dtype,
    *,
    num_layers: int = 1,
    bidirectional: bool = False,
    batch_first: bool = False,
    **sizes: int,
):
    """A new ``torch.nn`` module of the kind that computes ``cell`` (LSTM, GRU or RNN), in ``dtype``
    (float32 or float64), with PyTorch's initial weights; fill it with ``unit_to_torch``. ``sizes``
    are the cell's besides D and H: ``P=`` for lstmp, PyTorch's ``proj_size``."""
    torch = _torch()
    kind = _kind_of(cell)
    expected = [n for n in cell.size_names if n not in ("D", "H")]
    if sorted(sizes) != sorted(expected):
        raise ValueError(f"the cell {cell.name!r} needs the sizes {expected} besides D and H, got {sorted(sizes)}")
    options: dict[str, Any] = {"num_layers": num_layers, "bidirectional": bidirectional, "batch_first": batch_first}
    if kind == "RNN":
        options["nonlinearity"] = "relu" if cell.name == "rnn_relu" else "tanh"
    if cell.name == "lstmp":
        options["proj_size"] = sizes["P"]
    torch_dtype = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}[np.dtype(dtype)]
    return getattr(torch.nn, kind)(input_size, hidden_size, **options).to(torch_dtype)


def unit_to_torch(module, params: Mapping[str, Any], suffix: str = "l0") -> None:
    """Copy the parameter dict of one (layer, direction) unit's cell into the module, at PyTorch's
    ``suffix``; folded biases go into ``bias_ih``, and ``bias_hh`` holds only the separate ones."""
    torch = _torch()
    layout = _layout_of(module)
    H = module.hidden_size
    dtype = getattr(module, f"weight_ih_{suffix}").detach().numpy().dtype

    def stack(name_of):
        return torch.from_numpy(np.concatenate([np.asarray(params[name_of(g)], dtype) for g in layout.gates]))

    with torch.no_grad():
        getattr(module, f"weight_ih_{suffix}").copy_(stack(lambda g: f"W_{g}"))
        getattr(module, f"weight_hh_{suffix}").copy_(stack(lambda g: f"R_{g}"))
        if _proj_size(module):
            getattr(module, f"weight_hr_{suffix}").copy_(torch.from_numpy(np.asarray(params["W_hr"], dtype)))
        getattr(module, f"bias_ih_{suffix}").copy_(stack(lambda g: f"b_{g}"))
        bias_hh = getattr(module, f"bias_hh_{suffix}")
        bias_hh.zero_()
        for k, gate in enumerate(layout.gates):
            if gate in layout.separate_bias:
                bias_hh[k * H : (k + 1) * H] = torch.from_numpy(np.asarray(params[f"b_h{gate}"], dtype))


def units_from_torch(module, dtype=None) -> dict[str, dict[str, np.ndarray]]:
    """Every (layer, direction) unit's parameter dict, by PyTorch's suffix (l0, l0_reverse, ...)."""
    return {suffix: unit_from_torch(module, suffix, dtype) for suffix in architecture(module).suffixes}


def stack_to_torch(stack: Stack, units: Mapping[str, Mapping[str, Any]], dtype, *, batch_first: bool = False):
    """A ``torch.nn`` module of the stack's cell, depth and directions holding each unit's
    parameters (``units`` maps PyTorch's suffixes to parameter dicts), in ``dtype``."""
    module = new_module(
        stack.cell,
        stack.input_size,
        stack.hidden_size,
        dtype,
        num_layers=stack.num_layers,
        bidirectional=stack.bidirectional,
        batch_first=batch_first,
        **stack.sizes,
    )
    for suffix in stack.suffixes:
        unit_to_torch(module, units[suffix], suffix)
    return module


def cell_to_torch(cell, params: Mapping[str, Any]):
    """A ``torch.nn`` module with the cell's ``params`` loaded; a folded bias goes into ``bias_ih``.
    A ``BatchFirstCell`` gives a module with ``batch_first=True``."""
    _kind_of(cell)  # an unsupported cell fails before its params are read
    first = np.asarray(params[cell.param_names[0]])
    H, D = first.shape
    sizes = {"P": np.shape(params["W_hr"])[0]} if cell.name == "lstmp" else {}
    module = new_module(cell, D, H, first.dtype, batch_first=isinstance(cell, BatchFirstCell), **sizes)
    unit_to_torch(module, params, "l0")
    return module
