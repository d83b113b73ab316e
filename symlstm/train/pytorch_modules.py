"""``symlstm.from_torch`` and ``symlstm.to_torch``: any ``nn.LSTM``/``nn.GRU``/``nn.RNN``.

A single-layer, unidirectional module maps to a cell and its parameters (``symlstm.interop``); a
stacked or bidirectional one to a ``symlstm.nn.Recurrent`` layer, which is why these live with the
layers. Torch is imported only when they are called.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from symlstm.interop import pytorch as torch_interop
from symlstm.train.nn import Recurrent


def from_torch(module, dtype=None):
    """Return ``(cell, params)`` computing what an ``nn.LSTM``, ``nn.GRU`` or ``nn.RNN`` computes.

    A single-layer, unidirectional module gives a cell and its parameter dict; with
    ``batch_first=True`` the cell takes and returns (B, T, ...) arrays, like the module. A
    multi-layer or bidirectional module gives a ``symlstm.nn.Recurrent`` layer and its own
    ``params``: the same calls work (``forward(x, params, state0)``, ``backward``), and its states
    are ``(num_layers * num_directions, B, size)``, as the module's ``h_n``/``c_n``. An ``nn.LSTM``
    with ``proj_size=P`` gives the cell ``lstmp``, whose ``h`` has P units and ``c`` H. Dropout
    between layers is a training-time operation; the result computes the module in ``eval()`` mode.
    """
    arch = torch_interop.architecture(module)
    if arch.num_layers != 1 or arch.bidirectional:
        layer = Recurrent.from_torch(module, dtype)
        return layer, layer.params
    return torch_interop.cell_from_torch(module, dtype)


def to_torch(cell, params: Mapping[str, Any] | None = None):
    """A ``torch.nn`` module with ``params`` loaded; a folded bias goes into ``bias_ih``.
    A ``BatchFirstCell`` gives a module with ``batch_first=True``. A ``symlstm.nn.Recurrent``
    layer gives a module of the same depth and directions (``params`` defaults to the layer's)."""
    if isinstance(cell, Recurrent):
        return cell.to_torch(params)
    if params is None:
        raise TypeError("to_torch(cell, params) needs the parameters of a cell")
    return torch_interop.cell_to_torch(cell, params)
